//! Single sign-on (issue 26): people's links to providers' subjects, and
//! each workspace's SSO settings.

use super::DbConn;
use super::events::{self, AuditContext, EventTarget};
use super::people::Person;
use super::schema::{oidc_identities, people, sso_settings, users};
use super::users::{STATUS_ACTIVE, User, UserChangeError};
use super::workspaces as ws;
use crate::domain::Role;
use diesel::prelude::*;
use serde_json::json;

/// A workspace's SSO settings, as stored (defaults when it has no row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoSettings {
    /// The provider whose people may join on their first sign-in.
    pub join_provider: Option<String>,
    pub default_role: Role,
    /// Lower-case email domains people joining must have; empty: any.
    pub email_domains: Vec<String>,
    /// Groups claim values and the role each gives on joining (the first
    /// that matches wins).
    pub group_roles: Vec<(String, Role)>,
    /// Password sign-in refused for members (break-glass excepted).
    pub sso_only: bool,
}

impl Default for SsoSettings {
    fn default() -> Self {
        SsoSettings {
            join_provider: None,
            default_role: Role::Normal,
            email_domains: Vec::new(),
            group_roles: Vec::new(),
            sso_only: false,
        }
    }
}

impl SsoSettings {
    /// Whether a verified email may join under these settings.
    pub fn domain_allowed(&self, email: &str) -> bool {
        let domain = email.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
        self.email_domains.is_empty() || self.email_domains.iter().any(|d| d == domain)
    }

    /// The role someone joining with these groups gets.
    pub fn role_for(&self, groups: &[String]) -> Role {
        self.group_roles
            .iter()
            .find(|(g, _)| groups.contains(g))
            .map_or(self.default_role, |(_, r)| *r)
    }

    /// The group mapping as stored and edited: `group=role` lines.
    pub fn group_roles_text(&self) -> String {
        self.group_roles
            .iter()
            .map(|(g, r)| format!("{g}={}", r.as_str()))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

type Row = (Option<String>, String, String, String, bool);

fn from_row((join_provider, role, domains, groups, sso_only): Row) -> SsoSettings {
    SsoSettings {
        join_provider,
        default_role: role.parse().unwrap_or(Role::Normal),
        email_domains: domains
            .lines()
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(str::to_owned)
            .collect(),
        group_roles: groups
            .lines()
            .filter_map(|l| l.rsplit_once('='))
            .filter_map(|(g, r)| Some((g.to_owned(), r.parse().ok()?)))
            .collect(),
        sso_only,
    }
}

fn columns() -> (
    sso_settings::join_provider,
    sso_settings::default_role,
    sso_settings::email_domains,
    sso_settings::group_roles,
    sso_settings::sso_only,
) {
    (
        sso_settings::join_provider,
        sso_settings::default_role,
        sso_settings::email_domains,
        sso_settings::group_roles,
        sso_settings::sso_only,
    )
}

/// The workspace's SSO settings.
pub fn get(conn: &mut DbConn, workspace_id: &str) -> QueryResult<SsoSettings> {
    Ok(sso_settings::table
        .find(workspace_id)
        .select(columns())
        .first::<Row>(conn)
        .optional()?
        .map(from_row)
        .unwrap_or_default())
}

/// Save the workspace's SSO settings and record what changed. Returns
/// whether anything did.
pub fn save(conn: &mut DbConn, ctx: &AuditContext, new: &SsoSettings) -> QueryResult<bool> {
    super::write_transaction(conn, |conn| {
        ws::lock(conn, &ctx.workspace_id)?;
        let current = get(conn, &ctx.workspace_id)?;
        if &current == new {
            return Ok(false);
        }
        let workspace = ws::get(conn, &ctx.workspace_id)?;
        let now = super::now();
        let values = (
            sso_settings::join_provider.eq(new.join_provider.clone()),
            sso_settings::default_role.eq(new.default_role.as_str()),
            sso_settings::email_domains.eq(new.email_domains.join("\n")),
            sso_settings::group_roles.eq(new.group_roles_text()),
            sso_settings::sso_only.eq(new.sso_only),
            sso_settings::updated_at.eq(now),
        );
        let updated = diesel::update(sso_settings::table.find(&ctx.workspace_id))
            .set(values.clone())
            .execute(conn)?;
        if updated == 0 {
            diesel::insert_into(sso_settings::table)
                .values((sso_settings::workspace_id.eq(&ctx.workspace_id), values))
                .execute(conn)?;
        }
        // The settings as they now are, flat (the events page shows each
        // as a labelled pair), and which of them changed.
        let mut changed = Vec::new();
        if current.join_provider != new.join_provider {
            changed.push("join_provider");
        }
        if current.default_role != new.default_role {
            changed.push("default_role");
        }
        if current.email_domains != new.email_domains {
            changed.push("email_domains");
        }
        if current.group_roles != new.group_roles {
            changed.push("group_roles");
        }
        if current.sso_only != new.sso_only {
            changed.push("sso_only");
        }
        events::record(
            conn,
            ctx,
            "workspace.sso_settings_changed",
            EventTarget::workspace(&workspace.id, &workspace.name),
            json!({
                "changed": changed,
                "join_provider": new.join_provider,
                "default_role": new.default_role.as_str(),
                "email_domains": new.email_domains,
                "group_roles": new
                    .group_roles
                    .iter()
                    .map(|(g, r)| format!("{g}={}", r.as_str()))
                    .collect::<Vec<_>>(),
                "sso_only": new.sso_only,
            }),
        )?;
        Ok(true)
    })
}

/// The person a provider's subject is linked to. Like the lookup by email
/// at sign-in, not scoped to a workspace: people are not.
pub fn linked_person(
    conn: &mut DbConn,
    provider: &str,
    subject: &str,
) -> QueryResult<Option<Person>> {
    let Some(person_id) = oidc_identities::table
        .filter(oidc_identities::provider.eq(provider))
        .filter(oidc_identities::subject.eq(subject))
        .select(oidc_identities::person_id)
        .first::<String>(conn)
        .optional()?
    else {
        return Ok(None);
    };
    people::table
        .find(person_id)
        .select(Person::as_select())
        .first(conn)
        .optional()
}

/// Whether the person already has a link to this provider (to another
/// subject: a second account at the provider claiming the same email).
pub fn has_link(conn: &mut DbConn, provider: &str, person_id: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        oidc_identities::table
            .filter(oidc_identities::provider.eq(provider))
            .filter(oidc_identities::person_id.eq(person_id)),
    ))
    .get_result(conn)
}

/// Link a person to a provider's subject.
pub fn link(
    conn: &mut DbConn,
    provider: &str,
    subject: &str,
    person_id: &str,
    email: &str,
) -> QueryResult<()> {
    diesel::insert_into(oidc_identities::table)
        .values((
            oidc_identities::provider.eq(provider),
            oidc_identities::subject.eq(subject),
            oidc_identities::person_id.eq(person_id),
            oidc_identities::email.eq(email),
            oidc_identities::created_at.eq(super::now()),
        ))
        .execute(conn)?;
    Ok(())
}

/// The workspaces people from `provider` may join, with their settings.
pub fn joinable(conn: &mut DbConn, provider: &str) -> QueryResult<Vec<(String, SsoSettings)>> {
    let rows: Vec<(String, Row)> = sso_settings::table
        .filter(sso_settings::join_provider.eq(provider))
        .select((sso_settings::workspace_id, columns()))
        .order(sso_settings::workspace_id.asc())
        .load(conn)?;
    Ok(rows.into_iter().map(|(w, r)| (w, from_row(r))).collect())
}

/// Whether the person has ever been a member of the workspace (a removed
/// member does not come back by signing in).
pub fn ever_member(conn: &mut DbConn, workspace_id: &str, person_id: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        users::table
            .filter(users::workspace_id.eq(workspace_id))
            .filter(users::person_id.eq(person_id)),
    ))
    .get_result(conn)
}

/// Whether any workspace the person has joined allows sign-in through SSO
/// only.
pub fn sso_only_for(conn: &mut DbConn, person_id: &str) -> QueryResult<bool> {
    let workspaces: Vec<String> = users::table
        .filter(users::person_id.eq(person_id))
        .filter(users::status.eq(STATUS_ACTIVE))
        .filter(users::accepted_at.is_not_null())
        .select(users::workspace_id)
        .load(conn)?;
    if workspaces.is_empty() {
        return Ok(false);
    }
    diesel::select(diesel::dsl::exists(
        sso_settings::table
            .filter(sso_settings::workspace_id.eq_any(workspaces))
            .filter(sso_settings::sso_only.eq(true)),
    ))
    .get_result(conn)
}

/// A person from a provider joins a workspace that allows it, with `role`,
/// recorded as `user.sso_joined` (the new member is the actor).
pub fn join(
    conn: &mut DbConn,
    workspace_id: &str,
    person: &Person,
    role: Role,
    provider: &str,
    client: (Option<String>, Option<String>),
) -> Result<User, UserChangeError> {
    super::write_transaction(conn, |conn| {
        let user = super::users::insert_joined(conn, workspace_id, person, role)?;
        let ctx = user.audit(client.0.clone(), client.1.clone());
        events::record(
            conn,
            &ctx,
            "user.sso_joined",
            EventTarget::user(&user.id, &user.email),
            json!({ "provider": provider, "role": role.as_str() }),
        )?;
        Ok(user)
    })
}
