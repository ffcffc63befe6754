//! Users of a workspace, first-run setup, invitations and passwords.

use super::DbConn;
use super::events::{self, AuditContext, EventTarget};
use super::schema::{sessions, users};
use super::workspaces::{self, Workspace};
use crate::domain::Role;
use crate::domain::ids::new_id;
use chrono::{NaiveDateTime, TimeDelta};
use diesel::prelude::*;
use serde_json::json;

pub const STATUS_ACTIVE: &str = "active";
pub const STATUS_REMOVED: &str = "removed";

/// How long an invitation ("set your password") link stays valid.
pub const INVITE_VALIDITY: TimeDelta = TimeDelta::days(7);

/// A user row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: String,
    pub workspace_id: String,
    pub email: String,
    pub name: String,
    pub role: String,
    pub password_hash: Option<String>,
    pub status: String,
    pub invite_digest: Option<String>,
    pub invite_expires_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub removed_at: Option<NaiveDateTime>,
}

impl User {
    /// The user's role; rows are constrained to valid roles by the schema.
    pub fn role(&self) -> Role {
        self.role.parse().unwrap_or(Role::Operator)
    }

    pub fn is_active(&self) -> bool {
        self.status == STATUS_ACTIVE
    }

    /// Whether the user has not chosen a password yet (invited).
    pub fn invite_pending(&self) -> bool {
        self.password_hash.is_none() && self.is_active()
    }
}

/// Why a user change was refused.
#[derive(Debug, thiserror::Error)]
pub enum UserChangeError {
    #[error("no such user")]
    NotFound,
    #[error("A workspace needs at least one admin: make another user an admin first.")]
    LastAdmin,
    #[error("An active user with this email already exists.")]
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

fn insert_user(
    conn: &mut DbConn,
    workspace_id: &str,
    email: &str,
    name: &str,
    role: Role,
    password_hash: Option<&str>,
    invite_digest: Option<&str>,
) -> Result<User, UserChangeError> {
    let id = new_id("usr");
    let now = super::now();
    let inserted = diesel::insert_into(users::table)
        .values((
            users::id.eq(&id),
            users::workspace_id.eq(workspace_id),
            users::email.eq(email),
            users::name.eq(name),
            users::role.eq(role.as_str()),
            users::password_hash.eq(password_hash),
            users::status.eq(STATUS_ACTIVE),
            users::invite_digest.eq(invite_digest),
            users::invite_expires_at.eq(invite_digest.map(|_| now + INVITE_VALIDITY)),
            users::created_at.eq(now),
            users::updated_at.eq(now),
        ))
        .execute(conn);
    match inserted {
        Err(e) if is_unique_violation(&e) => return Err(UserChangeError::EmailTaken),
        other => other?,
    };
    Ok(users::table
        .find(&id)
        .select(User::as_select())
        .first(conn)?)
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
    let result = conn.transaction(|conn| {
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
        let admin = insert_user(
            conn,
            &ws.id,
            email,
            name,
            Role::Admin,
            Some(password_hash),
            None,
        )?;
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

/// Create an additional workspace with its first admin (used by operators'
/// tooling and tests; the web UI creates only the first).
pub fn create_workspace(
    conn: &mut DbConn,
    workspace_name: &str,
    email: &str,
    name: &str,
    password_hash: &str,
) -> Result<(Workspace, User), UserChangeError> {
    conn.transaction(|conn| {
        let ws = workspaces::insert(conn, workspace_name)?;
        let admin = insert_user(
            conn,
            &ws.id,
            email,
            name,
            Role::Admin,
            Some(password_hash),
            None,
        )?;
        Ok((ws, admin))
    })
}

/// The active account with this (normalised) email, in whatever workspace.
/// Sign-in is the one lookup not scoped by workspace: the email is what
/// tells us the workspace.
pub fn find_active_by_email(conn: &mut DbConn, email: &str) -> QueryResult<Option<User>> {
    users::table
        .filter(users::email.eq(email))
        .filter(users::status.eq(STATUS_ACTIVE))
        .select(User::as_select())
        .first(conn)
        .optional()
}

/// A user of the workspace by id (removed ones included).
pub fn get(conn: &mut DbConn, workspace_id: &str, id: &str) -> QueryResult<Option<User>> {
    users::table
        .filter(users::workspace_id.eq(workspace_id))
        .filter(users::id.eq(id))
        .select(User::as_select())
        .first(conn)
        .optional()
}

/// All users of the workspace: active ones first, then by email.
pub fn list(conn: &mut DbConn, workspace_id: &str) -> QueryResult<Vec<User>> {
    users::table
        .filter(users::workspace_id.eq(workspace_id))
        .select(User::as_select())
        .order((users::status.asc(), users::email.asc()))
        .load(conn)
}

/// Add a user who will choose a password through the invitation link whose
/// digest is given.
pub fn add(
    conn: &mut DbConn,
    ctx: &AuditContext,
    email: &str,
    name: &str,
    role: Role,
    invite_digest: &str,
) -> Result<User, UserChangeError> {
    conn.transaction(|conn| {
        let user = insert_user(
            conn,
            &ctx.workspace_id,
            email,
            name,
            role,
            None,
            Some(invite_digest),
        )?;
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
        Some(u) if u.is_active() => Ok(u),
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
    conn.transaction(|conn| {
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

/// Remove a user from the workspace: the row stays (status `removed`) for
/// history, their sessions end at once, and their pending invitation dies.
/// The last active admin cannot be removed. `also` runs inside the same
/// transaction, for what removal entails elsewhere (revoking keys).
pub fn remove(
    conn: &mut DbConn,
    ctx: &AuditContext,
    id: &str,
    also: impl FnOnce(&mut DbConn, &User) -> Result<(), UserChangeError>,
) -> Result<User, UserChangeError> {
    conn.transaction(|conn| {
        let user = locked_active_user(conn, &ctx.workspace_id, id)?;
        if user.role() == Role::Admin && active_admins(conn, &ctx.workspace_id)? <= 1 {
            return Err(UserChangeError::LastAdmin);
        }
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
        events::record(
            conn,
            ctx,
            "user.removed",
            EventTarget::user(&user.id, &user.email),
            json!({ "role": user.role }),
        )?;
        also(conn, &user)?;
        get(conn, &ctx.workspace_id, id)?.ok_or(UserChangeError::NotFound)
    })
}

/// Give a user who has not chosen a password yet a new invitation link
/// (the old one stops working). Users with a password are refused.
pub fn renew_invite(
    conn: &mut DbConn,
    ctx: &AuditContext,
    id: &str,
    invite_digest: &str,
) -> Result<User, UserChangeError> {
    conn.transaction(|conn| {
        let user = match get(conn, &ctx.workspace_id, id)? {
            Some(u) if u.is_active() && u.password_hash.is_none() => u,
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

/// The active user whose unexpired invitation has this digest.
pub fn find_by_invite(conn: &mut DbConn, digest: &str) -> QueryResult<Option<User>> {
    users::table
        .filter(users::invite_digest.eq(digest))
        .filter(users::status.eq(STATUS_ACTIVE))
        .filter(users::invite_expires_at.gt(super::now()))
        .select(User::as_select())
        .first(conn)
        .optional()
}

/// Use an invitation: set the password and void the link, so it works once.
/// Returns `None` when the link is unknown, used or expired.
pub fn accept_invite(
    conn: &mut DbConn,
    digest: &str,
    password_hash: &str,
    ip: Option<String>,
    user_agent: Option<String>,
) -> QueryResult<Option<User>> {
    conn.transaction(|conn| {
        let Some(user) = find_by_invite(conn, digest)? else {
            return Ok(None);
        };
        let updated = diesel::update(
            users::table
                .filter(users::id.eq(&user.id))
                .filter(users::invite_digest.eq(digest)),
        )
        .set((
            users::password_hash.eq(password_hash),
            users::invite_digest.eq(None::<String>),
            users::invite_expires_at.eq(None::<NaiveDateTime>),
            users::updated_at.eq(super::now()),
        ))
        .execute(conn)?;
        if updated != 1 {
            return Ok(None);
        }
        let ctx = AuditContext {
            workspace_id: user.workspace_id.clone(),
            actor_id: Some(user.id.clone()),
            actor_label: user.email.clone(),
            ip,
            user_agent,
        };
        events::record(
            conn,
            &ctx,
            "user.password_set",
            EventTarget::user(&user.id, &user.email),
            json!({}),
        )?;
        Ok(Some(user))
    })
}

/// Replace a user's password and end all their sessions except
/// `keep_session` (the one that made the change).
pub fn change_password(
    conn: &mut DbConn,
    ctx: &AuditContext,
    user_id: &str,
    password_hash: &str,
    keep_session: &str,
) -> QueryResult<usize> {
    conn.transaction(|conn| {
        diesel::update(
            users::table
                .filter(users::workspace_id.eq(&ctx.workspace_id))
                .filter(users::id.eq(user_id)),
        )
        .set((
            users::password_hash.eq(password_hash),
            users::updated_at.eq(super::now()),
        ))
        .execute(conn)?;
        let ended = diesel::delete(
            sessions::table
                .filter(sessions::workspace_id.eq(&ctx.workspace_id))
                .filter(sessions::user_id.eq(user_id))
                .filter(sessions::id.ne(keep_session)),
        )
        .execute(conn)?;
        let email = ctx.actor_label.clone();
        events::record(
            conn,
            ctx,
            "user.password_changed",
            EventTarget::user(user_id, &email),
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
    users::table
        .filter(users::workspace_id.eq(workspace_id))
        .filter(users::id.eq_any(ids))
        .select((users::id, users::name))
        .load(conn)
}
