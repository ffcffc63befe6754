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
