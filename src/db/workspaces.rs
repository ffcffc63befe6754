//! Workspaces (tenants).

use super::DbConn;
use super::schema::{api_keys, users, workspaces};
use chrono::NaiveDateTime;
use diesel::prelude::*;

/// A workspace row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = workspaces)]
pub struct Workspace {
    pub id: String,
    pub name: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// When set, every API key of the workspace is switched off.
    pub api_keys_disabled_at: Option<NaiveDateTime>,
    /// Longest expiry allowed for new and regenerated keys, in days.
    pub max_expiry_days: Option<i32>,
    /// Active and inactive personal keys a user may have.
    pub max_keys_per_user: i32,
    /// Rate limit proposed for new keys (requests per minute).
    pub default_rate_limit: Option<i32>,
    /// What a leak report of one of its keys does: `revoke` or `report`.
    pub leak_response: String,
    /// Since when keys of the workspace may be created recoverable (issue
    /// 27); `None`: off, the default.
    pub recoverable_keys_at: Option<NaiveDateTime>,
}

/// Whether first-run setup has happened (any workspace exists).
pub fn any_exists(conn: &mut DbConn) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        workspaces::table.select(workspaces::id),
    ))
    .get_result(conn)
}

/// Insert a workspace and return it.
pub fn insert(conn: &mut DbConn, name: &str) -> QueryResult<Workspace> {
    let id = crate::domain::ids::new_id("wsp");
    let now = super::now();
    diesel::insert_into(workspaces::table)
        .values((
            workspaces::id.eq(&id),
            workspaces::name.eq(name),
            workspaces::created_at.eq(now),
            workspaces::updated_at.eq(now),
        ))
        .execute(conn)?;
    super::permissions::seed_defaults(conn, &id)?;
    get(conn, &id)
}

/// Load a workspace by id.
pub fn get(conn: &mut DbConn, id: &str) -> QueryResult<Workspace> {
    workspaces::table
        .find(id)
        .select(Workspace::as_select())
        .first(conn)
}

/// Take the workspace's write lock for the rest of the transaction.
///
/// Checks that must hold across concurrent requests (the last admin, the
/// per-user key limit) start their transaction with this no-op update: on
/// PostgreSQL it locks the workspace row, on SQLite it takes the database
/// write lock before anything is read, so the check and the write that
/// follows cannot interleave with another request's.
pub fn lock(conn: &mut DbConn, id: &str) -> QueryResult<()> {
    diesel::update(workspaces::table.find(id))
        .set(workspaces::updated_at.eq(workspaces::updated_at))
        .execute(conn)?;
    Ok(())
}

/// A workspace with its numbers of members (joined, active) and keys (not
/// deleted), for `keyward workspace list`.
#[derive(Debug, Clone)]
pub struct Summary {
    pub workspace: Workspace,
    pub members: i64,
    pub keys: i64,
}

/// Every workspace, oldest first, with its counts.
pub fn summaries(conn: &mut DbConn) -> QueryResult<Vec<Summary>> {
    let all: Vec<Workspace> = workspaces::table
        .select(Workspace::as_select())
        .order((workspaces::created_at.asc(), workspaces::id.asc()))
        .load(conn)?;
    all.into_iter()
        .map(|workspace| {
            let members = users::table
                .filter(users::workspace_id.eq(&workspace.id))
                .filter(users::status.eq(super::users::STATUS_ACTIVE))
                .filter(users::accepted_at.is_not_null())
                // People: service accounts are not members anyone counts.
                .filter(users::kind.eq(super::users::KIND_PERSON))
                .count()
                .get_result(conn)?;
            let keys = api_keys::table
                .filter(api_keys::workspace_id.eq(&workspace.id))
                .filter(api_keys::deleted_at.is_null())
                .count()
                .get_result(conn)?;
            Ok(Summary {
                workspace,
                members,
                keys,
            })
        })
        .collect()
}
