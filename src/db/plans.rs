//! Plans (issue 23, section 3): named settings keys follow.
//!
//! A plan's rate limit, quota and IP allowlist are *copied* into every key
//! on it that does not override them, in the transaction that edits the
//! plan: a key check reads its key's row as before, and pays nothing for
//! plans. Rewriting the keys bumps each one's version (the triggers), so
//! cached copies and quota reserves read before the edit are not kept; the
//! other instances hear of the edit once, as a workspace notice, rather
//! than once per key (see the `plans` migration).
//!
//! Every function is scoped to the workspace it is given; another
//! workspace's plan ids are not found.

use super::DbConn;
use super::changes::{self, Change};
use super::events::{self, AuditContext, EventTarget};
use super::keys::{json_list, to_json};
use super::schema::{api_keys, plans};
use crate::domain::plans::{Field, overrides};
use crate::domain::quota::Quota;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde_json::json;

/// A plan as stored.
#[derive(Debug, Clone, Queryable, Selectable, PartialEq)]
#[diesel(table_name = plans)]
pub struct Plan {
    pub id: String,
    pub workspace_id: String,
    pub name: String,
    pub name_key: String,
    pub description: String,
    pub rate_limit: Option<i32>,
    pub quota_limit: Option<i64>,
    pub quota_refill: Option<i64>,
    pub quota_period: Option<String>,
    /// The stored form of the IP allowlist; `None`: none.
    pub allowed_ips: Option<String>,
    /// A JSON list; `None`: keys on the plan may hold any permission.
    pub permissions: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl Plan {
    pub fn quota(&self) -> Option<Quota> {
        Quota::from_columns(
            self.quota_limit,
            self.quota_refill,
            self.quota_period.as_deref(),
        )
    }

    pub fn settings(&self) -> Settings {
        Settings {
            rate_limit: self.rate_limit,
            quota: self.quota(),
            allowed_ips: self.allowed_ips.clone(),
            permissions: self.permissions.as_deref().map(json_list),
        }
    }

    pub fn allowed_ip_list(&self) -> Vec<String> {
        crate::domain::allowlist::stored_entries(self.allowed_ips.as_deref())
    }

    /// The permissions keys on it may hold; `None`: any.
    pub fn permission_list(&self) -> Option<Vec<String>> {
        self.permissions.as_deref().map(json_list)
    }

    fn audit_json(&self) -> serde_json::Value {
        json!({
            "name": self.name,
            "description": self.description,
            "rate_limit": self.rate_limit,
            "quota": crate::domain::quota::to_json(self.quota().as_ref()),
            "allowed_ips": self.allowed_ip_list(),
            "permissions": self.permission_list(),
        })
    }
}

/// What a plan sets, validated by the caller.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub rate_limit: Option<i32>,
    pub quota: Option<Quota>,
    /// The stored form of the IP allowlist; `None`: none.
    pub allowed_ips: Option<String>,
    /// `None`: any permission.
    pub permissions: Option<Vec<String>>,
}

/// Why a plan change was refused.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("no such plan")]
    NotFound,
    #[error("a plan with this name exists")]
    NameTaken,
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
}

fn target(plan: &Plan) -> EventTarget<'_> {
    EventTarget {
        target_type: Some("plan"),
        target_id: Some(&plan.id),
        target_label: Some(&plan.name),
    }
}

fn is_unique_violation(e: &diesel::result::Error) -> bool {
    matches!(
        e,
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)
    )
}

/// The plan `id` of the workspace.
pub fn get(conn: &mut DbConn, workspace_id: &str, id: &str) -> QueryResult<Option<Plan>> {
    plans::table
        .filter(plans::workspace_id.eq(workspace_id))
        .filter(plans::id.eq(id))
        .select(Plan::as_select())
        .first(conn)
        .optional()
}

/// The workspace's plans by name (what the create and edit dialogs offer:
/// no key is read, so a dialog opens while the keys table is busy).
pub fn all(conn: &mut DbConn, workspace_id: &str) -> QueryResult<Vec<Plan>> {
    plans::table
        .filter(plans::workspace_id.eq(workspace_id))
        .order((plans::name_key.asc(), plans::id.asc()))
        .select(Plan::as_select())
        .load(conn)
}

/// The workspace's plans by name, with how many live keys each reaches.
pub fn list(conn: &mut DbConn, workspace_id: &str) -> QueryResult<Vec<(Plan, i64)>> {
    let all = all(conn, workspace_id)?;
    let counts: Vec<(Option<String>, i64)> = api_keys::table
        .filter(api_keys::workspace_id.eq(workspace_id))
        .filter(api_keys::plan_id.is_not_null())
        .filter(api_keys::revoked_at.is_null())
        .filter(api_keys::deleted_at.is_null())
        .group_by(api_keys::plan_id)
        .select((api_keys::plan_id, diesel::dsl::count_star()))
        .load(conn)?;
    Ok(all
        .into_iter()
        .map(|p| {
            let n = counts
                .iter()
                .find(|(id, _)| id.as_deref() == Some(p.id.as_str()))
                .map_or(0, |(_, n)| *n);
            (p, n)
        })
        .collect())
}

/// How many live keys are on the plan.
pub fn key_count(conn: &mut DbConn, workspace_id: &str, plan_id: &str) -> QueryResult<i64> {
    api_keys::table
        .filter(api_keys::workspace_id.eq(workspace_id))
        .filter(api_keys::plan_id.eq(plan_id))
        .filter(api_keys::revoked_at.is_null())
        .filter(api_keys::deleted_at.is_null())
        .count()
        .get_result(conn)
}

/// Create a plan, audited.
pub fn create(
    conn: &mut DbConn,
    ctx: &AuditContext,
    name: &str,
    description: &str,
    settings: &Settings,
) -> Result<Plan, PlanError> {
    super::write_transaction(conn, |conn| {
        let id = crate::domain::ids::new_id("plan");
        let now = super::now();
        let quota = Quota::columns(settings.quota.as_ref());
        let inserted = diesel::insert_into(plans::table)
            .values((
                plans::id.eq(&id),
                plans::workspace_id.eq(&ctx.workspace_id),
                plans::name.eq(name),
                plans::name_key.eq(crate::domain::plans::name_key(name)),
                plans::description.eq(description),
                plans::rate_limit.eq(settings.rate_limit),
                plans::quota_limit.eq(quota.0),
                plans::quota_refill.eq(quota.1),
                plans::quota_period.eq(quota.2),
                plans::allowed_ips.eq(&settings.allowed_ips),
                plans::permissions.eq(settings.permissions.as_deref().map(to_json)),
                plans::created_at.eq(now),
                plans::updated_at.eq(now),
            ))
            .execute(conn);
        match inserted {
            Err(e) if is_unique_violation(&e) => return Err(PlanError::NameTaken),
            other => other?,
        };
        let plan = get(conn, &ctx.workspace_id, &id)?.ok_or(PlanError::NotFound)?;
        events::record(conn, ctx, "plan.created", target(&plan), plan.audit_json())?;
        Ok(plan)
    })
}

/// The plan, locked against a concurrent edit until the transaction ends.
fn get_locked(conn: &mut DbConn, workspace_id: &str, id: &str) -> QueryResult<Option<Plan>> {
    if let DbConn::Pg(pg) = conn {
        plans::table
            .filter(plans::workspace_id.eq(workspace_id))
            .filter(plans::id.eq(id))
            .select(plans::id)
            .for_update()
            .first::<String>(pg)
            .optional()?;
    }
    get(conn, workspace_id, id)
}

/// A key on a plan as its edit needs it.
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = api_keys)]
struct OnPlan {
    id: String,
    permissions: String,
    plan_overrides: String,
    rate_limit: Option<i32>,
    allowed_ips: Option<String>,
    quota_limit: Option<i64>,
    quota_refill: Option<i64>,
    quota_period: Option<String>,
}

/// Edit a plan: its name, description and settings, and every live key on
/// it, in one transaction. Keys take the plan's rate limit, quota and IP
/// allowlist where they do not override them (a quota's balance moves by
/// the change of its limit, as a key's own edit does), and drop the
/// permissions the plan no longer allows. Audited once, with how many keys
/// the plan reaches; saving what is already there changes nothing. Returns
/// the plan and that number.
pub fn update(
    conn: &mut DbConn,
    ctx: &AuditContext,
    id: &str,
    name: &str,
    description: &str,
    settings: &Settings,
) -> Result<(Plan, i64), PlanError> {
    super::write_transaction(conn, |conn| {
        let old = get_locked(conn, &ctx.workspace_id, id)?.ok_or(PlanError::NotFound)?;
        // Saving what is already there changes nothing and records nothing.
        if old.name == name && old.description == description && old.settings() == *settings {
            let reached = key_count(conn, &ctx.workspace_id, id)?;
            return Ok((old, reached));
        }
        let now = super::now();
        let quota = Quota::columns(settings.quota.as_ref());
        let written = diesel::update(
            plans::table
                .filter(plans::workspace_id.eq(&ctx.workspace_id))
                .filter(plans::id.eq(id)),
        )
        .set((
            plans::name.eq(name),
            plans::name_key.eq(crate::domain::plans::name_key(name)),
            plans::description.eq(description),
            plans::rate_limit.eq(settings.rate_limit),
            plans::quota_limit.eq(quota.0),
            plans::quota_refill.eq(quota.1),
            plans::quota_period.eq(quota.2),
            plans::allowed_ips.eq(&settings.allowed_ips),
            plans::permissions.eq(settings.permissions.as_deref().map(to_json)),
            plans::updated_at.eq(now),
        ))
        .execute(conn);
        match written {
            Err(e) if is_unique_violation(&e) => return Err(PlanError::NameTaken),
            other => other?,
        };
        let plan = get(conn, &ctx.workspace_id, id)?.ok_or(PlanError::NotFound)?;
        let reached = apply_to_keys(conn, &ctx.workspace_id, &plan, settings, now)?;
        let details = json!({
            "old": old.audit_json(),
            "new": plan.audit_json(),
            "keys": reached,
        });
        events::record(conn, ctx, "plan.updated", target(&plan), details)?;
        Ok((plan, reached))
    })
}

/// Rewrite the live keys on `plan` to its settings (see [`update`]);
/// returns how many keys are on it.
fn apply_to_keys(
    conn: &mut DbConn,
    workspace_id: &str,
    plan: &Plan,
    settings: &Settings,
    now: NaiveDateTime,
) -> QueryResult<i64> {
    let keys: Vec<OnPlan> = api_keys::table
        .filter(api_keys::workspace_id.eq(workspace_id))
        .filter(api_keys::plan_id.eq(&plan.id))
        .filter(api_keys::revoked_at.is_null())
        .filter(api_keys::deleted_at.is_null())
        .order(api_keys::id.asc())
        .select(OnPlan::as_select())
        .load(conn)?;
    // One notice for the whole edit: the rows' own notices are held back
    // for this transaction (PostgreSQL; SQLite serves one instance).
    if let DbConn::Pg(_) = conn {
        diesel::sql_query("SELECT set_config('keyward.quiet_keys', 'on', true)").execute(conn)?;
    }
    let (quota_limit, quota_refill, quota_period) = Quota::columns(settings.quota.as_ref());
    for key in &keys {
        let own = overrides(&key.plan_overrides);
        let follows = |f: Field| !own.contains(&f);
        let rate_limit = if follows(Field::RateLimit) {
            settings.rate_limit
        } else {
            key.rate_limit
        };
        let allowed_ips = if follows(Field::AllowedIps) {
            settings.allowed_ips.clone()
        } else {
            key.allowed_ips.clone()
        };
        let old_quota = Quota::from_columns(
            key.quota_limit,
            key.quota_refill,
            key.quota_period.as_deref(),
        );
        let quota = if follows(Field::Quota) {
            settings.quota
        } else {
            old_quota
        };
        let held = json_list(&key.permissions);
        let permissions: Vec<String> = match &settings.permissions {
            Some(allowed) => held
                .iter()
                .filter(|p| allowed.contains(p))
                .cloned()
                .collect(),
            None => held.clone(),
        };
        if rate_limit == key.rate_limit
            && allowed_ips == key.allowed_ips
            && quota == old_quota
            && permissions == held
        {
            continue;
        }
        let q = if follows(Field::Quota) {
            (quota_limit, quota_refill, quota_period)
        } else {
            Quota::columns(old_quota.as_ref())
        };
        diesel::update(api_keys::table.find(&key.id))
            .set((
                api_keys::rate_limit.eq(rate_limit),
                api_keys::allowed_ips.eq(&allowed_ips),
                api_keys::quota_limit.eq(q.0),
                api_keys::quota_refill.eq(q.1),
                api_keys::quota_period.eq(q.2),
                api_keys::permissions.eq(to_json(&permissions)),
                api_keys::updated_at.eq(now),
            ))
            .execute(conn)?;
        super::quotas::quota_changed(conn, &key.id, old_quota.as_ref(), quota.as_ref(), now)?;
    }
    if let DbConn::Pg(_) = conn {
        diesel::sql_query("SELECT set_config('keyward.quiet_keys', 'off', true)").execute(conn)?;
        diesel::sql_query(
            "SELECT pg_notify($1, 'w ' || $2 || ' @' \
             || floor(extract(epoch FROM clock_timestamp()) * 1000000)::bigint)",
        )
        .bind::<diesel::sql_types::Text, _>(changes::CHANNEL)
        .bind::<diesel::sql_types::Text, _>(workspace_id)
        .execute(conn)?;
    }
    changes::record(Change::Workspace(workspace_id.to_owned()));
    Ok(keys.len() as i64)
}

/// Delete a plan. The keys on it keep the settings they have, as their
/// own. Audited with how many live keys were on it.
pub fn delete(conn: &mut DbConn, ctx: &AuditContext, id: &str) -> Result<(Plan, i64), PlanError> {
    super::write_transaction(conn, |conn| {
        let plan = get_locked(conn, &ctx.workspace_id, id)?.ok_or(PlanError::NotFound)?;
        let reached = key_count(conn, &ctx.workspace_id, id)?;
        diesel::update(
            api_keys::table
                .filter(api_keys::workspace_id.eq(&ctx.workspace_id))
                .filter(api_keys::plan_id.eq(id)),
        )
        .set((
            api_keys::plan_id.eq(None::<String>),
            api_keys::plan_overrides.eq(""),
        ))
        .execute(conn)?;
        diesel::delete(
            plans::table
                .filter(plans::workspace_id.eq(&ctx.workspace_id))
                .filter(plans::id.eq(id)),
        )
        .execute(conn)?;
        events::record(
            conn,
            ctx,
            "plan.deleted",
            target(&plan),
            json!({ "keys": reached }),
        )?;
        Ok((plan, reached))
    })
}
