//! Plans (issue 23, section 3): the one set of rules for the Settings →
//! Plans page and the management API (`/api/v1/plans`). Admins manage them
//! (the policy's `ManageSettings`); anyone who creates keys may put a key
//! on one. Through the management API the acting key is the ceiling of
//! what a plan gives its keys, as it is of a key's own settings.

use super::keys::{ListInput, keep, parse_allowlist};
use super::{Ctx, Error, Result, run};
use crate::db::plans::{self as db, Plan, PlanError, Settings};
use crate::domain::ceiling::Grant;
use crate::domain::input::FieldError;
use crate::domain::keys as dk;
use crate::domain::plans::{self as dp, Field};
use crate::domain::policy::{Action, management};
use crate::domain::quota::QuotaInput;
use crate::state::AppState;

impl From<PlanError> for Error {
    fn from(e: PlanError) -> Self {
        match e {
            PlanError::NotFound => Error::NotFound,
            PlanError::NameTaken => Error::Invalid(vec![FieldError::new(
                "name",
                "A plan with this name exists already: choose another name.",
            )]),
            PlanError::Db(e) => Error::Db(e),
        }
    }
}

/// A plan as sent (the Settings page's form or the management API).
#[derive(Debug, Clone, Default)]
pub struct PlanInput {
    pub name: String,
    pub description: String,
    /// Requests per minute; empty for none.
    pub rate_limit: String,
    pub quota: QuotaInput,
    pub allowed_ips: ListInput,
    /// The permissions keys on the plan may hold; `None`: any.
    pub permissions: Option<Vec<String>>,
}

/// A plan and how many live keys are on it.
#[derive(Debug, Clone)]
pub struct Listed {
    pub plan: Plan,
    pub keys: i64,
}

struct Valid {
    name: String,
    description: String,
    settings: Settings,
}

/// Check a plan: its name, its settings by the rules of a key's, and its
/// permissions against the workspace's catalog and keyward's own.
async fn validate(state: &AppState, ctx: &Ctx, input: &PlanInput) -> Result<Valid> {
    let ws = ctx.workspace_id().to_owned();
    let catalog = run(state, move |c| Ok(crate::db::permissions::active(c, &ws)?)).await?;
    let mut errors = Vec::new();
    let name = keep(dp::parse_name(&input.name), &mut errors);
    let description = keep(dk::parse_description(&input.description), &mut errors);
    let rate_limit = keep(dk::parse_rate_limit(&input.rate_limit), &mut errors);
    let allowed_ips = keep(
        parse_allowlist(&input.allowed_ips, &mut errors),
        &mut errors,
    );
    let quota = input
        .quota
        .parse()
        .map_err(|mut e| errors.append(&mut e))
        .ok();
    let mut permissions: Option<Vec<String>> = None;
    if let Some(list) = &input.permissions {
        let mut chosen = Vec::new();
        for p in list {
            let known = if management::is_management(p) {
                management::ALL.contains(&p.as_str())
            } else {
                catalog.iter().any(|c| &c.name == p)
            };
            if !known {
                errors.push(FieldError::new(
                    "permissions",
                    format!("\"{p}\" is not a permission of this workspace."),
                ));
            } else if !chosen.contains(p) {
                chosen.push(p.clone());
            }
        }
        permissions = Some(chosen);
    }
    match (name, description, rate_limit, allowed_ips, quota) {
        (Some(name), Some(description), Some(rate_limit), Some(allowed_ips), Some(quota))
            if errors.is_empty() =>
        {
            Ok(Valid {
                name,
                description,
                settings: Settings {
                    rate_limit,
                    quota,
                    allowed_ips,
                    permissions,
                },
            })
        }
        _ => Err(Error::Invalid(errors)),
    }
}

/// Through the management API, a plan gives its keys no more than the
/// acting key holds: rate limit, quota and IP allowlist within its own
/// (its permissions only narrow what keys hold, so they are no grant).
fn within_ceiling(ctx: &Ctx, settings: &Settings) -> Result<()> {
    let Some(acting) = &ctx.via_key else {
        return Ok(());
    };
    let (permissions, resources) = (acting.permission_list(), acting.resource_list());
    super::keys::within_ceiling(
        ctx,
        &Grant {
            rate_limit: settings.rate_limit,
            allowed_ips: settings.allowed_ips.as_deref(),
            quota_limit: settings.quota.map(|q| q.limit),
            ..super::keys::grant_of(acting, &permissions, &resources)
        },
    )
}

/// The workspace's plans, by name, with how many keys each reaches (the
/// Settings page and the API: admins).
pub async fn list(state: &AppState, ctx: &Ctx) -> Result<Vec<Listed>> {
    ctx.authorize(Action::ManageSettings)?;
    listed(state, ctx).await
}

async fn listed(state: &AppState, ctx: &Ctx) -> Result<Vec<Listed>> {
    let ws = ctx.workspace_id().to_owned();
    let rows = run(state, move |c| Ok(db::list(c, &ws)?)).await?;
    Ok(rows
        .into_iter()
        .map(|(plan, keys)| Listed { plan, keys })
        .collect())
}

/// The plans a key may be put on, for whoever creates or edits keys.
pub async fn choices(state: &AppState, ctx: &Ctx) -> Result<Vec<Plan>> {
    ctx.authorize(Action::ListOwnKeys)?;
    let ws = ctx.workspace_id().to_owned();
    run(state, move |c| Ok(db::all(c, &ws)?)).await
}

/// The plan `id` of the actor's workspace (admins).
pub async fn get(state: &AppState, ctx: &Ctx, id: &str) -> Result<Listed> {
    ctx.authorize(Action::ManageSettings)?;
    let (ws, wanted) = (ctx.workspace_id().to_owned(), id.to_owned());
    run(state, move |c| {
        let plan = db::get(c, &ws, &wanted)?.ok_or(Error::NotFound)?;
        let keys = db::key_count(c, &ws, &plan.id)?;
        Ok(Listed { plan, keys })
    })
    .await
}

/// The plan a key is put on, by id, in the actor's workspace; another
/// workspace's id or a made-up one is a field error, not a 404 (the key
/// is what the request is about).
pub async fn for_key(state: &AppState, ctx: &Ctx, id: &str) -> Result<Plan> {
    let (ws, wanted) = (ctx.workspace_id().to_owned(), id.trim().to_owned());
    run(state, move |c| Ok(db::get(c, &ws, &wanted)?))
        .await?
        .ok_or_else(|| {
            Error::Invalid(vec![FieldError::new(
                "plan",
                "Choose one of this workspace's plans.",
            )])
        })
}

/// Create a plan.
pub async fn create(state: &AppState, ctx: &Ctx, input: PlanInput) -> Result<Plan> {
    ctx.authorize(Action::ManageSettings)?;
    let valid = validate(state, ctx, &input).await?;
    within_ceiling(ctx, &valid.settings)?;
    let audit = ctx.audit.clone();
    run(state, move |c| {
        Ok(db::create(
            c,
            &audit,
            &valid.name,
            &valid.description,
            &valid.settings,
        )?)
    })
    .await
}

/// Edit a plan: every key on it changes in the same transaction, on every
/// instance. Returns the plan and how many keys it reaches.
pub async fn update(state: &AppState, ctx: &Ctx, id: &str, input: PlanInput) -> Result<Listed> {
    let current = get(state, ctx, id).await?;
    let valid = validate(state, ctx, &input).await?;
    within_ceiling(ctx, &valid.settings)?;
    let audit = ctx.audit.clone();
    let plan_id = current.plan.id.clone();
    let (plan, keys) = run(state, move |c| {
        Ok(db::update(
            c,
            &audit,
            &plan_id,
            &valid.name,
            &valid.description,
            &valid.settings,
        )?)
    })
    .await?;
    Ok(Listed { plan, keys })
}

/// Delete a plan; its keys keep their settings as their own.
pub async fn delete(state: &AppState, ctx: &Ctx, id: &str) -> Result<Listed> {
    let current = get(state, ctx, id).await?;
    let audit = ctx.audit.clone();
    let plan_id = current.plan.id.clone();
    let (plan, keys) = run(state, move |c| Ok(db::delete(c, &audit, &plan_id)?)).await?;
    Ok(Listed { plan, keys })
}

/// The input that describes `plan` (to fill its edit form).
pub fn input_of(plan: &Plan) -> PlanInput {
    PlanInput {
        name: plan.name.clone(),
        description: plan.description.clone(),
        rate_limit: plan.rate_limit.map(|r| r.to_string()).unwrap_or_default(),
        quota: QuotaInput::of(plan.quota().as_ref()),
        allowed_ips: ListInput::Text(plan.allowed_ip_list().join("\n")),
        permissions: plan.permission_list(),
    }
}

/// A key's settings on `plan`, field by field: what the key's own values
/// would be, and which of them it overrides. `given` holds the values the
/// sender chose (`None`: not chosen, so the plan's); a chosen value equal
/// to the plan's follows the plan.
pub struct OnPlan {
    pub rate_limit: Option<i32>,
    pub allowed_ips: Option<String>,
    pub quota: Option<crate::domain::quota::Quota>,
    pub overrides: Vec<Field>,
}

/// Settle a key's three plan fields: each is `Keep(value)` (the key keeps
/// its value, overridden), `Follow` (the plan's value), or `Choose(value)`
/// (overridden unless it equals the plan's).
#[derive(Debug, Clone)]
pub enum Choice<T> {
    Follow,
    Keep(T),
    Choose(T),
}

/// Resolve the choices for a key on `plan`.
pub fn resolve(
    plan: &Plan,
    rate_limit: Choice<Option<i32>>,
    allowed_ips: Choice<Option<String>>,
    quota: Choice<Option<crate::domain::quota::Quota>>,
) -> OnPlan {
    fn one<T: PartialEq + Clone>(
        field: Field,
        choice: Choice<T>,
        plans: T,
        overrides: &mut Vec<Field>,
    ) -> T {
        match choice {
            Choice::Follow => plans,
            Choice::Choose(v) if v == plans => plans,
            Choice::Choose(v) | Choice::Keep(v) => {
                overrides.push(field);
                v
            }
        }
    }
    let mut overrides = Vec::new();
    let rate_limit = one(
        Field::RateLimit,
        rate_limit,
        plan.rate_limit,
        &mut overrides,
    );
    let quota = one(Field::Quota, quota, plan.quota(), &mut overrides);
    let allowed_ips = one(
        Field::AllowedIps,
        allowed_ips,
        plan.allowed_ips.clone(),
        &mut overrides,
    );
    OnPlan {
        rate_limit,
        allowed_ips,
        quota,
        overrides,
    }
}

/// Refuse a key whose permissions its plan does not allow.
pub fn allows_permissions(plan: &Plan, permissions: &[String]) -> Result<()> {
    let allowed = plan.permission_list();
    let outside = dp::outside(permissions, allowed.as_deref());
    if outside.is_empty() {
        return Ok(());
    }
    Err(Error::Invalid(vec![FieldError::new(
        "plan",
        format!(
            "The plan \u{201c}{}\u{201d} does not allow {}: choose another plan, or fewer permissions.",
            plan.name,
            outside
                .iter()
                .map(|p| format!("\"{p}\""))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    )]))
}
