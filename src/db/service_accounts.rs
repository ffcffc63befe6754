//! Service accounts: members of a workspace that are not people (issue 26).
//!
//! A service account is a membership (`users` row, kind `service`, id
//! `sa_…`) with a role, so everything that works for a member's keys works
//! for its keys: it owns them as a person owns personal keys, and its
//! management keys act with its role. Its `people` row exists only so that
//! every join from a member to a name keeps working: it has no password and
//! an address that is not one (no `@`), so nobody can sign in as it, be
//! invited as it or reset its password.
//!
//! Every function is scoped to the workspace of the audit context; ids of
//! another workspace are not found.

use super::DbConn;
use super::events::{self, AuditContext, EventTarget};
use super::schema::{people, users};
use super::users::{KIND_SERVICE, STATUS_ACTIVE, STATUS_REMOVED, User, with_person};
use crate::domain::Role;
use crate::domain::ids::{SERVICE_ACCOUNT_PREFIX, new_id};
use diesel::prelude::*;
use serde_json::json;

/// Why a service-account change was refused.
#[derive(Debug, thiserror::Error)]
pub enum ServiceAccountError {
    #[error("no such service account")]
    NotFound,
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
}

/// The address stored on a service account's person row: unique, and not
/// an email address, so sign-in and invitations (which parse an email
/// first) can never reach it.
fn placeholder_address(id: &str) -> String {
    format!("service-account:{id}")
}

/// The active service account `id` of the workspace.
pub fn get(conn: &mut DbConn, workspace_id: &str, id: &str) -> QueryResult<Option<User>> {
    with_person()
        .filter(users::workspace_id.eq(workspace_id))
        .filter(users::id.eq(id))
        .filter(users::kind.eq(KIND_SERVICE))
        .filter(users::status.eq(STATUS_ACTIVE))
        .select(User::as_select())
        .first(conn)
        .optional()
}

/// The workspace's service accounts (deleted ones aside), by name.
pub fn list(conn: &mut DbConn, workspace_id: &str) -> QueryResult<Vec<User>> {
    with_person()
        .filter(users::workspace_id.eq(workspace_id))
        .filter(users::kind.eq(KIND_SERVICE))
        .filter(users::status.eq(STATUS_ACTIVE))
        .order((people::name.asc(), users::id.asc()))
        .select(User::as_select())
        .load(conn)
}

/// Create a service account with its role (validated by the caller:
/// admin or normal), audited.
pub fn create(
    conn: &mut DbConn,
    ctx: &AuditContext,
    name: &str,
    description: &str,
    role: Role,
) -> Result<User, ServiceAccountError> {
    super::write_transaction(conn, |conn| {
        let id = new_id(SERVICE_ACCOUNT_PREFIX);
        let person = super::people::insert(conn, &placeholder_address(&id), name, None)?;
        let now = super::now();
        diesel::insert_into(users::table)
            .values((
                users::id.eq(&id),
                users::workspace_id.eq(&ctx.workspace_id),
                users::person_id.eq(&person.id),
                users::role.eq(role.as_str()),
                users::status.eq(STATUS_ACTIVE),
                // Nobody joins: it is a member from the start.
                users::accepted_at.eq(now),
                users::kind.eq(KIND_SERVICE),
                users::description.eq(description),
                users::created_at.eq(now),
                users::updated_at.eq(now),
            ))
            .execute(conn)?;
        let account = get(conn, &ctx.workspace_id, &id)?.ok_or(ServiceAccountError::NotFound)?;
        events::record(
            conn,
            ctx,
            "service_account.created",
            EventTarget::service_account(&account.id, &account.name),
            json!({ "role": role.as_str(), "description": description }),
        )?;
        Ok(account)
    })
}

/// Change a service account's name, description and role; audited with
/// what changed (nothing changed: no event).
pub fn update(
    conn: &mut DbConn,
    ctx: &AuditContext,
    id: &str,
    name: &str,
    description: &str,
    role: Role,
) -> Result<User, ServiceAccountError> {
    super::write_transaction(conn, |conn| {
        let old = get(conn, &ctx.workspace_id, id)?.ok_or(ServiceAccountError::NotFound)?;
        if old.name == name && old.description == description && old.role() == role {
            return Ok(old);
        }
        let now = super::now();
        diesel::update(people::table.find(&old.person_id))
            .set((people::name.eq(name), people::updated_at.eq(now)))
            .execute(conn)?;
        diesel::update(users::table.find(&old.id))
            .set((
                users::description.eq(description),
                users::role.eq(role.as_str()),
                users::updated_at.eq(now),
            ))
            .execute(conn)?;
        events::record(
            conn,
            ctx,
            "service_account.changed",
            EventTarget::service_account(&old.id, name),
            json!({
                "old": { "name": old.name, "description": old.description, "role": old.role },
                "new": { "name": name, "description": description, "role": role.as_str() },
            }),
        )?;
        get(conn, &ctx.workspace_id, id)?.ok_or(ServiceAccountError::NotFound)
    })
}

/// Disable (`true`) or enable a service account: all its keys are refused,
/// or answered as before, from the moment this commits — on this instance
/// through the key cache changes recorded here, on others through the
/// change feed. Switching to the state it is in changes nothing.
pub fn set_disabled(
    conn: &mut DbConn,
    ctx: &AuditContext,
    id: &str,
    disabled: bool,
) -> Result<User, ServiceAccountError> {
    super::write_transaction(conn, |conn| {
        // Serialised with key creation (which holds the same lock), so no
        // key of the account is created unmarked meanwhile.
        super::workspaces::lock(conn, &ctx.workspace_id)?;
        let account = get(conn, &ctx.workspace_id, id)?.ok_or(ServiceAccountError::NotFound)?;
        if account.disabled_at.is_some() == disabled {
            return Ok(account);
        }
        let now = super::now();
        let at = disabled.then_some(now);
        diesel::update(users::table.find(&account.id))
            .set((users::disabled_at.eq(at), users::updated_at.eq(now)))
            .execute(conn)?;
        let keys = super::keys::set_owner_disabled(conn, &ctx.workspace_id, &account.id, at)?;
        // Its sessions: none (nobody signs in as it); its management keys
        // are among the keys above.
        let action = if disabled {
            "service_account.disabled"
        } else {
            "service_account.enabled"
        };
        events::record(
            conn,
            ctx,
            action,
            EventTarget::service_account(&account.id, &account.name),
            json!({ "keys": keys }),
        )?;
        get(conn, &ctx.workspace_id, id)?.ok_or(ServiceAccountError::NotFound)
    })
}

/// Delete a service account: its membership ends (the row stays for the
/// audit trail's names) and every key it owns is revoked, one event each,
/// in the same transaction.
pub fn delete(
    conn: &mut DbConn,
    ctx: &AuditContext,
    id: &str,
) -> Result<(User, usize), ServiceAccountError> {
    super::write_transaction(conn, |conn| {
        // As in `set_disabled`: no key is created for it meanwhile.
        super::workspaces::lock(conn, &ctx.workspace_id)?;
        let account = get(conn, &ctx.workspace_id, id)?.ok_or(ServiceAccountError::NotFound)?;
        let now = super::now();
        diesel::update(users::table.find(&account.id))
            .set((
                users::status.eq(STATUS_REMOVED),
                users::removed_at.eq(now),
                users::updated_at.eq(now),
            ))
            .execute(conn)?;
        let revoked = super::keys::on_user_removed(conn, ctx, &account.id)?;
        events::record(
            conn,
            ctx,
            "service_account.deleted",
            EventTarget::service_account(&account.id, &account.name),
            json!({ "role": account.role, "keys_revoked": revoked }),
        )?;
        Ok((account, revoked))
    })
}
