//! The per-workspace permission catalog keys choose from.

use super::DbConn;
use super::schema::permissions;
use chrono::NaiveDateTime;
use diesel::prelude::*;

/// The catalog a new workspace starts with.
pub const DEFAULTS: [(&str, &str); 5] = [
    (
        "data:read",
        "Read measurements, production data and reports",
    ),
    ("data:write", "Create and change data"),
    ("devices:read", "Read machines, lines and devices"),
    ("devices:write", "Configure machines, lines and devices"),
    ("reports:export", "Export reports"),
];

/// A permission of the catalog.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = permissions)]
pub struct Permission {
    pub id: String,
    pub workspace_id: String,
    pub name: String,
    pub description: String,
    pub retired_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
}

/// Insert the default catalog for a new workspace.
pub fn seed_defaults(conn: &mut DbConn, workspace_id: &str) -> QueryResult<()> {
    let now = super::now();
    for (name, description) in DEFAULTS {
        diesel::insert_into(permissions::table)
            .values((
                permissions::id.eq(crate::domain::ids::new_id("prm")),
                permissions::workspace_id.eq(workspace_id),
                permissions::name.eq(name),
                permissions::description.eq(description),
                permissions::created_at.eq(now),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Permissions that can be given to new keys (not retired), by name.
pub fn active(conn: &mut DbConn, workspace_id: &str) -> QueryResult<Vec<Permission>> {
    permissions::table
        .filter(permissions::workspace_id.eq(workspace_id))
        .filter(permissions::retired_at.is_null())
        .select(Permission::as_select())
        .order(permissions::name.asc())
        .load(conn)
}

/// Why a catalog change was refused.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("A permission with this name already exists.")]
    Duplicate,
    #[error("no such permission")]
    NotFound,
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
}

/// Every permission of the catalog, retired ones last.
pub fn all(conn: &mut DbConn, workspace_id: &str) -> QueryResult<Vec<Permission>> {
    let mut list: Vec<Permission> = permissions::table
        .filter(permissions::workspace_id.eq(workspace_id))
        .select(Permission::as_select())
        .order(permissions::name.asc())
        .load(conn)?;
    list.sort_by_key(|p| p.retired_at.is_some());
    Ok(list)
}

fn target(p: &Permission) -> super::events::EventTarget<'_> {
    super::events::EventTarget {
        target_type: Some("permission"),
        target_id: Some(&p.id),
        target_label: Some(&p.name),
    }
}

fn get(conn: &mut DbConn, workspace_id: &str, id: &str) -> Result<Permission, CatalogError> {
    permissions::table
        .filter(permissions::workspace_id.eq(workspace_id))
        .filter(permissions::id.eq(id))
        .select(Permission::as_select())
        .first(conn)
        .optional()?
        .ok_or(CatalogError::NotFound)
}

/// Add a permission to the catalog.
pub fn add(
    conn: &mut DbConn,
    ctx: &super::events::AuditContext,
    name: &str,
    description: &str,
) -> Result<Permission, CatalogError> {
    super::write_transaction(conn, |conn| {
        let id = crate::domain::ids::new_id("prm");
        let inserted = diesel::insert_into(permissions::table)
            .values((
                permissions::id.eq(&id),
                permissions::workspace_id.eq(&ctx.workspace_id),
                permissions::name.eq(name),
                permissions::description.eq(description),
                permissions::created_at.eq(super::now()),
            ))
            .execute(conn);
        match inserted {
            Err(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            )) => {
                return Err(CatalogError::Duplicate);
            }
            other => other?,
        };
        let p = get(conn, &ctx.workspace_id, &id)?;
        super::events::record(
            conn,
            ctx,
            "permission.added",
            target(&p),
            serde_json::json!({ "description": description }),
        )?;
        Ok(p)
    })
}

/// Change a permission's description.
pub fn describe(
    conn: &mut DbConn,
    ctx: &super::events::AuditContext,
    id: &str,
    description: &str,
) -> Result<Permission, CatalogError> {
    super::write_transaction(conn, |conn| {
        let p = get(conn, &ctx.workspace_id, id)?;
        diesel::update(permissions::table.find(&p.id))
            .set(permissions::description.eq(description))
            .execute(conn)?;
        super::events::record(
            conn,
            ctx,
            "permission.described",
            target(&p),
            serde_json::json!({ "old": p.description, "new": description }),
        )?;
        Ok(p)
    })
}

/// Retire a permission (no longer offered for new keys; existing keys keep
/// it) or restore it.
pub fn set_retired(
    conn: &mut DbConn,
    ctx: &super::events::AuditContext,
    id: &str,
    retired: bool,
) -> Result<Permission, CatalogError> {
    super::write_transaction(conn, |conn| {
        let p = get(conn, &ctx.workspace_id, id)?;
        if p.retired_at.is_some() == retired {
            return Ok(p);
        }
        diesel::update(permissions::table.find(&p.id))
            .set(permissions::retired_at.eq(retired.then(super::now)))
            .execute(conn)?;
        let action = if retired {
            "permission.retired"
        } else {
            "permission.restored"
        };
        super::events::record(conn, ctx, action, target(&p), serde_json::json!({}))?;
        Ok(p)
    })
}
