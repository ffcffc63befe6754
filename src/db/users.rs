//! Users of a workspace (memberships: a person in a workspace with a role),
//! first-run setup, workspace provisioning, invitations and passwords.
//!
//! A person (`people`: email, name, password) may belong to several
//! workspaces; each membership is a `users` row with its own role and status.
//! Everything a workspace shows or scopes by (key owners, actors, sessions)
//! is a membership id, so a person's rows in one workspace never reach
//! another.

use super::DbConn;
use super::events::{self, AuditContext, EventTarget};
use super::people::{self, Person};
use super::schema::{people as people_t, sessions, users};
use super::workspaces::{self, Workspace};
use crate::domain::Role;
use crate::domain::ids::new_id;
use chrono::{NaiveDateTime, TimeDelta};
use diesel::prelude::*;
use serde_json::json;

pub const STATUS_ACTIVE: &str = "active";
pub const STATUS_REMOVED: &str = "removed";

/// How long an invitation link stays valid.
pub const INVITE_VALIDITY: TimeDelta = TimeDelta::days(7);

/// A membership with its person's email, name and password hash.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: String,
    pub workspace_id: String,
    pub person_id: String,
    #[diesel(select_expression = people_t::email)]
    pub email: String,
    #[diesel(select_expression = people_t::name)]
    pub name: String,
    pub role: String,
    #[diesel(select_expression = people_t::password_hash)]
    pub password_hash: Option<String>,
    pub status: String,
    /// When the person joined; `None` while the invitation is pending.
    pub accepted_at: Option<NaiveDateTime>,
    /// The name the admin typed when inviting.
    pub invited_name: Option<String>,
    pub invite_digest: Option<String>,
    pub invite_expires_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub removed_at: Option<NaiveDateTime>,
    /// `person`, or `service` for a service account.
    pub kind: String,
    /// A service account's description (empty for people).
    pub description: String,
    /// When a service account was disabled (its keys refused meanwhile).
    pub disabled_at: Option<NaiveDateTime>,
}

pub const KIND_PERSON: &str = "person";
pub const KIND_SERVICE: &str = "service";

impl User {
    /// Whether this member is a service account, not a person.
    pub fn is_service(&self) -> bool {
        self.kind == KIND_SERVICE
    }

    /// The user's role; rows are constrained to valid roles by the schema.
    pub fn role(&self) -> Role {
        self.role.parse().unwrap_or(Role::Operator)
    }

    pub fn is_active(&self) -> bool {
        self.status == STATUS_ACTIVE
    }

    /// Whether the person has not joined yet (invited: a new person who has
    /// not chosen a password, or an existing one who has not accepted).
    pub fn invite_pending(&self) -> bool {
        self.accepted_at.is_none() && self.is_active()
    }

    /// Who and where, for an event this user causes in their workspace.
    pub fn audit(&self, ip: Option<String>, user_agent: Option<String>) -> AuditContext {
        AuditContext {
            workspace_id: self.workspace_id.clone(),
            actor_id: Some(self.id.clone()),
            actor_label: self.email.clone(),
            ip,
            user_agent,
        }
    }

    /// As the workspace's admins see it: until the person joins, the name
    /// the admin typed, so nothing about an account elsewhere shows.
    fn seen_by_workspace(mut self) -> Self {
        if self.accepted_at.is_none()
            && let Some(name) = self.invited_name.clone()
        {
            self.name = name;
        }
        self
    }
}

/// Memberships joined with their people: every query loading a [`User`].
pub fn with_person() -> diesel::dsl::InnerJoin<users::table, people_t::table> {
    users::table.inner_join(people_t::table)
}

/// Why a user change was refused.
#[derive(Debug, thiserror::Error)]
pub enum UserChangeError {
    #[error("no such user")]
    NotFound,
    #[error("A workspace needs at least one admin: make another user an admin first.")]
    LastAdmin,
    #[error("This person is already a user of this workspace.")]
    EmailTaken,
    #[error("Setup has already been completed.")]
    AlreadySetUp,
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
}

fn is_unique_violation(e: &diesel::result::Error) -> bool {
    matches!(
        e,
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)
    )
}

/// How a new membership starts.
enum Joining<'a> {
    /// Joined now (setup, provisioning by the operator).
    Now,
    /// Invited: pending until the person uses the link with this digest (or
    /// accepts in the app), shown under the name the admin typed.
    Invited { digest: &'a str, name: &'a str },
}

fn insert_user(
    conn: &mut DbConn,
    workspace_id: &str,
    person: &Person,
    role: Role,
    joining: Joining<'_>,
) -> Result<User, UserChangeError> {
    let id = new_id("usr");
    let now = super::now();
    let (accepted_at, digest, invited_name) = match joining {
        Joining::Now => (Some(now), None, None),
        Joining::Invited { digest, name } => (None, Some(digest), Some(name)),
    };
    let inserted = diesel::insert_into(users::table)
        .values((
            users::id.eq(&id),
            users::workspace_id.eq(workspace_id),
            users::person_id.eq(&person.id),
            users::role.eq(role.as_str()),
            users::status.eq(STATUS_ACTIVE),
            users::accepted_at.eq(accepted_at),
            users::invited_name.eq(invited_name),
            users::invite_digest.eq(digest),
            users::invite_expires_at.eq(digest.map(|_| now + INVITE_VALIDITY)),
            users::created_at.eq(now),
            users::updated_at.eq(now),
        ))
        .execute(conn);
    match inserted {
        Err(e) if is_unique_violation(&e) => return Err(UserChangeError::EmailTaken),
        other => other?,
    };
    Ok(with_person()
        .filter(users::id.eq(&id))
        .select(User::as_select())
        .first(conn)?)
}

/// A membership that starts joined (a person arriving through single
/// sign-on, issue 26); the caller records the event.
pub(crate) fn insert_joined(
    conn: &mut DbConn,
    workspace_id: &str,
    person: &Person,
    role: Role,
) -> Result<User, UserChangeError> {
    insert_user(conn, workspace_id, person, role, Joining::Now)
}

/// First-run setup: create the first workspace and its admin, in one
/// transaction, unless a workspace already exists.
pub fn setup_first_workspace(
    conn: &mut DbConn,
    workspace_name: &str,
    email: &str,
    name: &str,
    password_hash: &str,
    ip: Option<String>,
    user_agent: Option<String>,
) -> Result<(Workspace, User), UserChangeError> {
    let result = super::write_transaction(conn, |conn| {
        if workspaces::any_exists(conn)? {
            return Err(UserChangeError::AlreadySetUp);
        }
        let ws = workspaces::insert(conn, workspace_name)?;
        // The once-only marker: a concurrent setup that passed the check
        // above too fails here (PostgreSQL) or at its first write (SQLite)
        // and rolls back everything it did.
        diesel::insert_into(super::schema::instance_setup::table)
            .values((
                super::schema::instance_setup::id.eq(1),
                super::schema::instance_setup::workspace_id.eq(&ws.id),
                super::schema::instance_setup::completed_at.eq(ws.created_at),
            ))
            .execute(conn)?;
        let person = people::insert(conn, email, name, Some(password_hash))?;
        let admin = insert_user(conn, &ws.id, &person, Role::Admin, Joining::Now)?;
        let ctx = AuditContext {
            workspace_id: ws.id.clone(),
            actor_id: Some(admin.id.clone()),
            actor_label: admin.email.clone(),
            ip,
            user_agent,
        };
        events::record(
            conn,
            &ctx,
            "workspace.setup",
            EventTarget::workspace(&ws.id, &ws.name),
            json!({ "admin": admin.email }),
        )?;
        Ok((ws, admin))
    });
    match result {
        // Whatever failed, if another setup won the race, say so.
        Err(UserChangeError::Db(_)) if workspaces::any_exists(conn).unwrap_or(false) => {
            Err(UserChangeError::AlreadySetUp)
        }
        other => other,
    }
}

/// First-run setup, tried again while SQLite reports a concurrent writer
/// ("database is locked": a deferred transaction that read first cannot
/// wait for the write lock), until one setup wins and the others learn it.
pub fn setup_first_workspace_retrying(
    conn: &mut DbConn,
    workspace_name: &str,
    email: &str,
    name: &str,
    password_hash: &str,
    ip: Option<String>,
    user_agent: Option<String>,
) -> Result<(Workspace, User), UserChangeError> {
    let mut attempt = 0;
    loop {
        let result = setup_first_workspace(
            conn,
            workspace_name,
            email,
            name,
            password_hash,
            ip.clone(),
            user_agent.clone(),
        );
        match result {
            Err(UserChangeError::Db(diesel::result::Error::DatabaseError(_, info)))
                if attempt < 50 && info.message().contains("locked") =>
            {
                attempt += 1;
                std::thread::sleep(std::time::Duration::from_millis(20 * attempt.min(5)));
            }
            other => return other,
        }
    }
}

/// How a provisioned workspace's first admin gets in, when they are new.
#[derive(Debug, Clone, Copy)]
pub enum FirstAdmin<'a> {
    /// With this password (hash).
    Password(&'a str),
    /// Through the invitation link whose token has this digest.
    Invite(&'a str),
}

/// A workspace made by [`create_workspace`].
#[derive(Debug)]
pub struct Provisioned {
    pub workspace: Workspace,
    pub admin: User,
    /// Whether the admin is a new person (else an existing person joined).
    pub new_person: bool,
}

/// Create another workspace with its first admin (the operator's
/// `keyward workspace create`, and tests). An existing person becomes its
/// admin at once, their password untouched; a new person gets the password
/// or the invitation given. Audited in the new workspace as `actor`.
pub fn create_workspace(
    conn: &mut DbConn,
    workspace_name: &str,
    email: &str,
    name: &str,
    first_admin: FirstAdmin<'_>,
    actor: &str,
) -> Result<Provisioned, UserChangeError> {
    super::write_transaction(conn, |conn| {
        let ws = workspaces::insert(conn, workspace_name)?;
        let (person, new_person) = match people::find_by_email(conn, email)? {
            Some(person) => (person, false),
            None => {
                let password = match first_admin {
                    FirstAdmin::Password(hash) => Some(hash),
                    FirstAdmin::Invite(_) => None,
                };
                (people::insert(conn, email, name, password)?, true)
            }
        };
        let joining = match first_admin {
            FirstAdmin::Invite(digest) if new_person => Joining::Invited { digest, name },
            _ => Joining::Now,
        };
        let admin = insert_user(conn, &ws.id, &person, Role::Admin, joining)?;
        let ctx = AuditContext {
            workspace_id: ws.id.clone(),
            actor_id: None,
            actor_label: actor.to_owned(),
            ip: None,
            user_agent: None,
        };
        events::record(
            conn,
            &ctx,
            "workspace.created",
            EventTarget::workspace(&ws.id, &ws.name),
            json!({ "admin": admin.email }),
        )?;
        Ok(Provisioned {
            workspace: ws,
            admin,
            new_person,
        })
    })
}

/// The membership of the person with this (normalised) email that sign-in
/// would pick (see [`people::sign_in_membership`]), else a pending one: for
/// tooling and tests.
pub fn find_active_by_email(conn: &mut DbConn, email: &str) -> QueryResult<Option<User>> {
    let Some(person) = people::find_by_email(conn, email)? else {
        return Ok(None);
    };
    if let Some(user) = people::sign_in_membership(conn, &person)? {
        return Ok(Some(user));
    }
    with_person()
        .filter(users::person_id.eq(&person.id))
        .filter(users::status.eq(STATUS_ACTIVE))
        .order(users::created_at.asc())
        .select(User::as_select())
        .first(conn)
        .optional()
}

/// A user of the workspace by id (removed ones included).
pub fn get(conn: &mut DbConn, workspace_id: &str, id: &str) -> QueryResult<Option<User>> {
    Ok(with_person()
        .filter(users::workspace_id.eq(workspace_id))
        .filter(users::id.eq(id))
        .select(User::as_select())
        .first(conn)
        .optional()?
        .map(User::seen_by_workspace))
}

/// All users of the workspace: active ones first, then by email.
pub fn list(conn: &mut DbConn, workspace_id: &str) -> QueryResult<Vec<User>> {
    Ok(with_person()
        .filter(users::workspace_id.eq(workspace_id))
        // Service accounts have their own list (`db::service_accounts`).
        .filter(users::kind.eq(KIND_PERSON))
        .select(User::as_select())
        .order((users::status.asc(), people_t::email.asc()))
        .load(conn)?
        .into_iter()
        .map(User::seen_by_workspace)
        .collect())
}

/// Invite someone to the workspace: a new person chooses a password through
/// the invitation link whose digest is given; a person who already has an
/// account (in another workspace) signs in to accept through the same link
/// or in the app. Both look the same to the admin.
pub fn add(
    conn: &mut DbConn,
    ctx: &AuditContext,
    email: &str,
    name: &str,
    role: Role,
    invite_digest: &str,
) -> Result<User, UserChangeError> {
    super::write_transaction(conn, |conn| {
        let person = people::find_or_insert(conn, email, name)?;
        let user = insert_user(
            conn,
            &ctx.workspace_id,
            &person,
            role,
            Joining::Invited {
                digest: invite_digest,
                name,
            },
        )?
        .seen_by_workspace();
        events::record(
            conn,
            ctx,
            "user.added",
            EventTarget::user(&user.id, &user.email),
            json!({ "role": role.as_str(), "name": user.name }),
        )?;
        Ok(user)
    })
}

fn active_admins(conn: &mut DbConn, workspace_id: &str) -> QueryResult<i64> {
    users::table
        .filter(users::workspace_id.eq(workspace_id))
        .filter(users::status.eq(STATUS_ACTIVE))
        .filter(users::role.eq(Role::Admin.as_str()))
        // An admin service account keeps no one able to sign in and
        // manage the workspace: only people count.
        .filter(users::kind.eq(KIND_PERSON))
        .count()
        .get_result(conn)
}

/// Load an active user of the workspace for a change, holding the
/// workspace lock so last-admin checks cannot race.
fn locked_active_user(
    conn: &mut DbConn,
    workspace_id: &str,
    id: &str,
) -> Result<User, UserChangeError> {
    workspaces::lock(conn, workspace_id)?;
    match get(conn, workspace_id, id)? {
        // Service accounts change through their own use cases.
        Some(u) if u.is_active() && !u.is_service() => Ok(u),
        _ => Err(UserChangeError::NotFound),
    }
}

/// Change a user's role. The last active admin cannot be demoted.
pub fn change_role(
    conn: &mut DbConn,
    ctx: &AuditContext,
    id: &str,
    role: Role,
) -> Result<User, UserChangeError> {
    super::write_transaction(conn, |conn| {
        let user = locked_active_user(conn, &ctx.workspace_id, id)?;
        let old = user.role();
        if old == role {
            return Ok(user);
        }
        if old == Role::Admin && active_admins(conn, &ctx.workspace_id)? <= 1 {
            return Err(UserChangeError::LastAdmin);
        }
        diesel::update(users::table.find(&user.id))
            .set((
                users::role.eq(role.as_str()),
                users::updated_at.eq(super::now()),
            ))
            .execute(conn)?;
        events::record(
            conn,
            ctx,
            "user.role_changed",
            EventTarget::user(&user.id, &user.email),
            json!({ "old": old.as_str(), "new": role.as_str() }),
        )?;
        get(conn, &ctx.workspace_id, id)?.ok_or(UserChangeError::NotFound)
    })
}

/// End a membership: status `removed` (the row stays for history), its
/// pending invitation dies, and sessions acting in it end at once. The
/// person's other workspaces are untouched.
fn end_membership(conn: &mut DbConn, user: &User) -> QueryResult<()> {
    let now = super::now();
    diesel::update(users::table.find(&user.id))
        .set((
            users::status.eq(STATUS_REMOVED),
            users::removed_at.eq(now),
            users::updated_at.eq(now),
            users::invite_digest.eq(None::<String>),
            users::invite_expires_at.eq(None::<NaiveDateTime>),
        ))
        .execute(conn)?;
    diesel::delete(sessions::table.filter(sessions::user_id.eq(&user.id))).execute(conn)?;
    Ok(())
}

/// Remove a user from the workspace (see [`end_membership`]). The last
/// active admin cannot be removed. What removal entails for keys is the
/// caller's to do in the same transaction (`app::users::remove`).
pub fn remove(conn: &mut DbConn, ctx: &AuditContext, id: &str) -> Result<User, UserChangeError> {
    super::write_transaction(conn, |conn| {
        let user = locked_active_user(conn, &ctx.workspace_id, id)?;
        if user.role() == Role::Admin && active_admins(conn, &ctx.workspace_id)? <= 1 {
            return Err(UserChangeError::LastAdmin);
        }
        end_membership(conn, &user)?;
        events::record(
            conn,
            ctx,
            "user.removed",
            EventTarget::user(&user.id, &user.email),
            json!({ "role": user.role }),
        )?;
        get(conn, &ctx.workspace_id, id)?.ok_or(UserChangeError::NotFound)
    })
}

/// Give a user who has not joined yet a new invitation link (the old one
/// stops working). Users who joined are refused.
pub fn renew_invite(
    conn: &mut DbConn,
    ctx: &AuditContext,
    id: &str,
    invite_digest: &str,
) -> Result<User, UserChangeError> {
    super::write_transaction(conn, |conn| {
        let user = match get(conn, &ctx.workspace_id, id)? {
            Some(u) if u.invite_pending() => u,
            _ => return Err(UserChangeError::NotFound),
        };
        let now = super::now();
        diesel::update(users::table.find(&user.id))
            .set((
                users::invite_digest.eq(invite_digest),
                users::invite_expires_at.eq(now + INVITE_VALIDITY),
                users::updated_at.eq(now),
            ))
            .execute(conn)?;
        events::record(
            conn,
            ctx,
            "user.invite_renewed",
            EventTarget::user(&user.id, &user.email),
            json!({}),
        )?;
        get(conn, &ctx.workspace_id, id)?.ok_or(UserChangeError::NotFound)
    })
}

/// The pending membership whose unexpired invitation has this digest, with
/// its workspace's name.
pub fn find_by_invite(conn: &mut DbConn, digest: &str) -> QueryResult<Option<(User, String)>> {
    with_person()
        .inner_join(super::schema::workspaces::table)
        .filter(users::invite_digest.eq(digest))
        .filter(users::status.eq(STATUS_ACTIVE))
        .filter(users::accepted_at.is_null())
        .filter(users::invite_expires_at.gt(super::now()))
        .select((User::as_select(), super::schema::workspaces::name))
        .first(conn)
        .optional()
}

/// Mark a pending membership as joined (voiding its link) and audit it in
/// its workspace. Returns `false` if it was no longer pending.
fn join(
    conn: &mut DbConn,
    user: &User,
    action: &str,
    ip: Option<String>,
    user_agent: Option<String>,
) -> QueryResult<bool> {
    let now = super::now();
    let updated = diesel::update(
        users::table
            .filter(users::id.eq(&user.id))
            .filter(users::status.eq(STATUS_ACTIVE))
            .filter(users::accepted_at.is_null()),
    )
    .set((
        users::accepted_at.eq(now),
        users::invite_digest.eq(None::<String>),
        users::invite_expires_at.eq(None::<NaiveDateTime>),
        users::updated_at.eq(now),
    ))
    .execute(conn)?;
    if updated != 1 {
        return Ok(false);
    }
    let ctx = user.audit(ip, user_agent);
    events::record(
        conn,
        &ctx,
        action,
        EventTarget::user(&user.id, &user.email),
        json!({}),
    )?;
    Ok(true)
}

/// Use an invitation of a new person: set their password and join, so the
/// link works once. Returns `None` when the link is unknown, used or
/// expired, or the person has chosen a password meanwhile (through another
/// workspace's invitation: they now sign in to accept instead).
pub fn accept_invite(
    conn: &mut DbConn,
    digest: &str,
    password_hash: &str,
    ip: Option<String>,
    user_agent: Option<String>,
) -> QueryResult<Option<User>> {
    super::write_transaction(conn, |conn| {
        let Some((user, _)) = find_by_invite(conn, digest)? else {
            return Ok(None);
        };
        let updated = diesel::update(
            people_t::table
                .filter(people_t::id.eq(&user.person_id))
                .filter(people_t::password_hash.is_null()),
        )
        .set((
            people_t::password_hash.eq(password_hash),
            people_t::updated_at.eq(super::now()),
        ))
        .execute(conn)?;
        if updated != 1 || !join(conn, &user, "user.password_set", ip, user_agent)? {
            return Ok(None);
        }
        Ok(Some(user))
    })
}

/// Use an invitation of a person who already has a password (checked by the
/// caller): join the workspace. Returns `None` when the link is unknown,
/// used or expired, or belongs to another person.
pub fn join_by_invite(
    conn: &mut DbConn,
    digest: &str,
    person_id: &str,
    ip: Option<String>,
    user_agent: Option<String>,
) -> QueryResult<Option<User>> {
    super::write_transaction(conn, |conn| match find_by_invite(conn, digest)? {
        Some((user, _)) if user.person_id == person_id => {
            Ok(join(conn, &user, "user.joined", ip, user_agent)?.then_some(user))
        }
        _ => Ok(None),
    })
}

/// A person's pending membership by id (their own only).
fn pending_of(conn: &mut DbConn, person_id: &str, id: &str) -> QueryResult<Option<User>> {
    with_person()
        .filter(users::id.eq(id))
        .filter(users::person_id.eq(person_id))
        .filter(users::status.eq(STATUS_ACTIVE))
        .filter(users::accepted_at.is_null())
        .select(User::as_select())
        .first(conn)
        .optional()
}

/// Accept, signed in, an invitation to another workspace. `None` if the
/// person has no such pending invitation.
pub fn accept_pending(
    conn: &mut DbConn,
    person_id: &str,
    id: &str,
    ip: Option<String>,
    user_agent: Option<String>,
) -> QueryResult<Option<User>> {
    super::write_transaction(conn, |conn| match pending_of(conn, person_id, id)? {
        Some(user) => Ok(join(conn, &user, "user.joined", ip, user_agent)?.then_some(user)),
        None => Ok(None),
    })
}

/// Decline an invitation: the membership ends as if removed, audited in its
/// workspace. `None` if the person has no such pending invitation.
pub fn decline_pending(
    conn: &mut DbConn,
    person_id: &str,
    id: &str,
    ip: Option<String>,
    user_agent: Option<String>,
) -> QueryResult<Option<User>> {
    super::write_transaction(conn, |conn| {
        let Some(user) = pending_of(conn, person_id, id)? else {
            return Ok(None);
        };
        end_membership(conn, &user)?;
        let ctx = user.audit(ip, user_agent);
        events::record(
            conn,
            &ctx,
            "user.declined",
            EventTarget::user(&user.id, &user.email),
            json!({}),
        )?;
        Ok(Some(user))
    })
}

/// Replace a person's password and end all their sessions, in every
/// workspace, except `keep_session` (the one that made the change).
pub fn change_password(
    conn: &mut DbConn,
    ctx: &AuditContext,
    person_id: &str,
    password_hash: &str,
    keep_session: &str,
) -> QueryResult<usize> {
    super::write_transaction(conn, |conn| {
        diesel::update(people_t::table.find(person_id))
            .set((
                people_t::password_hash.eq(password_hash),
                people_t::updated_at.eq(super::now()),
            ))
            .execute(conn)?;
        let ended = diesel::delete(
            sessions::table
                .filter(sessions::person_id.eq(person_id))
                .filter(sessions::id.ne(keep_session)),
        )
        .execute(conn)?;
        let email = ctx.actor_label.clone();
        let user_id = ctx.actor_id.clone().unwrap_or_default();
        events::record(
            conn,
            ctx,
            "user.password_changed",
            EventTarget::user(&user_id, &email),
            json!({ "sessions_ended": ended }),
        )?;
        Ok(ended)
    })
}

/// The names of these users of the workspace (removed users included), by
/// id, for the audit trail's sentences.
pub fn names(
    conn: &mut DbConn,
    workspace_id: &str,
    ids: &[String],
) -> QueryResult<Vec<(String, String)>> {
    with_person()
        .filter(users::workspace_id.eq(workspace_id))
        .filter(users::id.eq_any(ids))
        .select((users::id, people_t::name))
        .load(conn)
}

/// A membership by id, in whatever workspace: for its own person's
/// switcher and invitations, who the caller checks through the policy.
pub fn membership(conn: &mut DbConn, id: &str) -> QueryResult<Option<User>> {
    with_person()
        .filter(users::id.eq(id))
        .filter(users::status.eq(STATUS_ACTIVE))
        .select(User::as_select())
        .first(conn)
        .optional()
}
