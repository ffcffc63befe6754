//! Workspace settings that govern keys. Every change is audited with its old
//! and new value.

use super::DbConn;
use super::changes::{self, Change};
use super::events::{self, AuditContext, EventTarget};
use super::schema::workspaces;
use super::workspaces::{self as ws, Workspace};
use diesel::prelude::*;
use serde_json::json;

/// Switch all API keys of the workspace off (`enabled = false`) or on.
/// Returns whether anything changed.
pub fn set_api_keys_enabled(
    conn: &mut DbConn,
    ctx: &AuditContext,
    enabled: bool,
) -> QueryResult<bool> {
    super::write_transaction(conn, |conn| {
        ws::lock(conn, &ctx.workspace_id)?;
        let current = ws::get(conn, &ctx.workspace_id)?;
        if current.api_keys_disabled_at.is_none() == enabled {
            return Ok(false);
        }
        let now = super::now();
        diesel::update(workspaces::table.find(&ctx.workspace_id))
            .set((
                workspaces::api_keys_disabled_at.eq((!enabled).then_some(now)),
                workspaces::updated_at.eq(now),
            ))
            .execute(conn)?;
        changes::record(Change::Workspace(ctx.workspace_id.clone()));
        let action = if enabled {
            "settings.api_keys_enabled"
        } else {
            "settings.api_keys_disabled"
        };
        events::record(
            conn,
            ctx,
            action,
            EventTarget::workspace(&current.id, &current.name),
            json!({ "setting": "api_keys_enabled", "old": !enabled, "new": enabled }),
        )?;
        Ok(true)
    })
}

/// The limits an admin sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_expiry_days: Option<i32>,
    pub max_keys_per_user: i32,
    pub default_rate_limit: Option<i32>,
}

impl Limits {
    pub fn of(w: &Workspace) -> Limits {
        Limits {
            max_expiry_days: w.max_expiry_days,
            max_keys_per_user: w.max_keys_per_user,
            default_rate_limit: w.default_rate_limit,
        }
    }
}

/// Save the limits; one event per changed value. Returns how many changed.
pub fn update_limits(conn: &mut DbConn, ctx: &AuditContext, new: Limits) -> QueryResult<usize> {
    super::write_transaction(conn, |conn| {
        ws::lock(conn, &ctx.workspace_id)?;
        let current = ws::get(conn, &ctx.workspace_id)?;
        let old = Limits::of(&current);
        let mut changes = Vec::new();
        if old.max_expiry_days != new.max_expiry_days {
            changes.push((
                "max_expiry_days",
                json!(old.max_expiry_days),
                json!(new.max_expiry_days),
            ));
        }
        if old.max_keys_per_user != new.max_keys_per_user {
            changes.push((
                "max_keys_per_user",
                json!(old.max_keys_per_user),
                json!(new.max_keys_per_user),
            ));
        }
        if old.default_rate_limit != new.default_rate_limit {
            changes.push((
                "default_rate_limit",
                json!(old.default_rate_limit),
                json!(new.default_rate_limit),
            ));
        }
        if changes.is_empty() {
            return Ok(0);
        }
        diesel::update(workspaces::table.find(&ctx.workspace_id))
            .set((
                workspaces::max_expiry_days.eq(new.max_expiry_days),
                workspaces::max_keys_per_user.eq(new.max_keys_per_user),
                workspaces::default_rate_limit.eq(new.default_rate_limit),
                workspaces::updated_at.eq(super::now()),
            ))
            .execute(conn)?;
        for (setting, old, new) in &changes {
            events::record(
                conn,
                ctx,
                "settings.changed",
                EventTarget::workspace(&current.id, &current.name),
                json!({ "setting": setting, "old": old, "new": new }),
            )?;
        }
        Ok(changes.len())
    })
}

/// Turn recoverable keys on or off for the workspace (issue 27). Turning
/// them off destroys every sealed secret of the workspace in the same
/// transaction. Returns whether anything changed and how many secrets were
/// destroyed.
pub fn set_recoverable_keys(
    conn: &mut DbConn,
    ctx: &AuditContext,
    enabled: bool,
) -> QueryResult<(bool, usize)> {
    super::write_transaction(conn, |conn| {
        ws::lock(conn, &ctx.workspace_id)?;
        let current = ws::get(conn, &ctx.workspace_id)?;
        if current.recoverable_keys_at.is_some() == enabled {
            return Ok((false, 0));
        }
        let now = super::now();
        diesel::update(workspaces::table.find(&ctx.workspace_id))
            .set((
                workspaces::recoverable_keys_at.eq(enabled.then_some(now)),
                workspaces::updated_at.eq(now),
            ))
            .execute(conn)?;
        let destroyed = if enabled {
            0
        } else {
            super::secrets::destroy_all(conn, &ctx.workspace_id)?
        };
        let action = if enabled {
            "settings.recoverable_keys_enabled"
        } else {
            "settings.recoverable_keys_disabled"
        };
        events::record(
            conn,
            ctx,
            action,
            EventTarget::workspace(&current.id, &current.name),
            json!({ "setting": "recoverable_keys", "old": !enabled, "new": enabled, "destroyed": destroyed }),
        )?;
        Ok((true, destroyed))
    })
}
