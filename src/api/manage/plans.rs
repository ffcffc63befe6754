//! The management API's plans (`/api/v1/plans…`): the use cases of
//! `app::plans` the Settings → Plans page calls, with `keyward:plans:read`
//! / `keyward:plans:write` (admins). A plan's edit changes every key on it
//! in the same transaction; through this API it never gives them more
//! than the asking key holds.

use super::auth::{Manager, PlansRead, PlansWrite};
use super::body::Body;
use super::shapes::{BodyRefusals, KeyRefusals, QuotaSpec, Refusals, time};
use crate::api::problem::ApiError;
use crate::app::keys::ListInput;
use crate::app::plans::{self as uc, Listed, PlanInput};
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A plan: settings keys on it follow, unless they override them.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanView {
    #[schema(example = "plan_3Qd0sWcTzE1n8mK2pL5vXa")]
    pub id: String,
    #[schema(example = "Partner – standard")]
    pub name: String,
    pub description: String,
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub rate_limit_per_minute: Option<i32>,
    /// The usage quota keys on the plan get; `null`: none.
    pub quota: Option<QuotaSpec>,
    /// The IP allowlist keys on the plan get; empty: none.
    pub allowed_ips: Vec<String>,
    /// The permissions keys on the plan may hold; `null`: any.
    pub permissions: Option<Vec<String>>,
    /// How many live keys (neither revoked nor deleted) are on it.
    pub keys: i64,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl PlanView {
    pub fn of(l: &Listed) -> Self {
        let p = &l.plan;
        PlanView {
            id: p.id.clone(),
            name: p.name.clone(),
            description: p.description.clone(),
            rate_limit_per_minute: p.rate_limit,
            quota: p.quota().as_ref().map(QuotaSpec::of),
            allowed_ips: p.allowed_ip_list(),
            permissions: p.permission_list(),
            keys: l.keys,
            created_at: time(p.created_at),
            updated_at: time(p.updated_at),
        }
    }
}

/// The workspace's plans, by name.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanList {
    pub plans: Vec<PlanView>,
}

/// A new plan; absent settings are none (no rate limit, quota or
/// allowlist; any permission).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Partner – standard", "rate_limit_per_minute": 600, "quota": {"limit": 10000, "period": "day"}, "permissions": ["data:read"]}))]
pub struct CreatePlanRequest {
    #[schema(min_length = 1, max_length = 60)]
    pub name: String,
    #[serde(default)]
    #[schema(max_length = 500)]
    pub description: Option<String>,
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub rate_limit_per_minute: Option<i32>,
    #[serde(default)]
    pub quota: Option<QuotaSpec>,
    /// Up to 100 addresses and CIDR ranges.
    #[serde(default)]
    #[schema(max_items = 100)]
    pub allowed_ips: Option<Vec<String>>,
    /// From the workspace's catalog and keyward's management permissions;
    /// absent or `null`: any.
    #[serde(default)]
    pub permissions: Option<Vec<String>>,
}

/// Fields to change; absent ones stay as they are, `null` removes a
/// setting (for `permissions`: any permission). Every key on the plan that
/// does not override a changed setting changes with it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"rate_limit_per_minute": 1200}))]
pub struct UpdatePlanRequest {
    #[serde(default)]
    #[schema(min_length = 1, max_length = 60)]
    pub name: Option<String>,
    #[serde(default)]
    #[schema(max_length = 500)]
    pub description: Option<String>,
    #[serde(default, deserialize_with = "super::shapes::present")]
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub rate_limit_per_minute: Option<Option<i32>>,
    #[serde(default, deserialize_with = "super::shapes::present")]
    pub quota: Option<Option<QuotaSpec>>,
    #[serde(default, deserialize_with = "super::shapes::present")]
    #[schema(max_items = 100)]
    pub allowed_ips: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "super::shapes::present")]
    pub permissions: Option<Option<Vec<String>>>,
}

/// What a deletion did.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanDeleted {
    pub plan: PlanView,
    /// How many live keys were on it: they keep its settings as their own.
    pub keys_released: i64,
}

type IdPath = web::Path<String>;

fn rate(r: Option<i32>) -> String {
    r.map(|r| r.to_string()).unwrap_or_default()
}

#[utoipa::path(
    get,
    path = "/api/v1/plans",
    tag = "plans",
    security(("bearer" = [])),
    responses((status = 200, description = "The plans", body = PlanList), Refusals)
)]
pub async fn list_plans(m: Manager<PlansRead>) -> Result<HttpResponse, ApiError> {
    let all = uc::list(&m.state, &m.ctx).await?;
    Ok(HttpResponse::Ok().json(PlanList {
        plans: all.iter().map(PlanView::of).collect(),
    }))
}

#[utoipa::path(
    post,
    path = "/api/v1/plans",
    tag = "plans",
    request_body = CreatePlanRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = PlanView),
        Refusals,
        KeyRefusals,
        BodyRefusals,
    )
)]
pub async fn create_plan(m: Manager<PlansWrite>, body: Body) -> Result<HttpResponse, ApiError> {
    let input = body.json::<CreatePlanRequest>(false)?.value;
    let input = PlanInput {
        name: input.name,
        description: input.description.unwrap_or_default(),
        rate_limit: rate(input.rate_limit_per_minute),
        quota: QuotaSpec::input(input.quota.as_ref()),
        allowed_ips: ListInput::Items(input.allowed_ips.unwrap_or_default()),
        permissions: input.permissions,
    };
    let plan = uc::create(&m.state, &m.ctx, input).await?;
    Ok(HttpResponse::Created().json(PlanView::of(&Listed { plan, keys: 0 })))
}

#[utoipa::path(
    get,
    path = "/api/v1/plans/{id}",
    tag = "plans",
    params(("id" = String, Path, description = "The plan's id", pattern = "^plan_[0-9A-Za-z]+$")),
    security(("bearer" = [])),
    responses((status = 200, description = "The plan", body = PlanView), Refusals, KeyRefusals)
)]
pub async fn get_plan(m: Manager<PlansRead>, id: IdPath) -> Result<HttpResponse, ApiError> {
    let plan = uc::get(&m.state, &m.ctx, &id).await?;
    Ok(HttpResponse::Ok().json(PlanView::of(&plan)))
}

#[utoipa::path(
    patch,
    path = "/api/v1/plans/{id}",
    tag = "plans",
    request_body = UpdatePlanRequest,
    params(("id" = String, Path, description = "The plan's id", pattern = "^plan_[0-9A-Za-z]+$")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Changed, with every key on it that follows what changed", body = PlanView),
        Refusals,
        KeyRefusals,
        BodyRefusals,
    )
)]
pub async fn update_plan(
    m: Manager<PlansWrite>,
    id: IdPath,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    let current = uc::get(&m.state, &m.ctx, &id).await?;
    let patch = body.json::<UpdatePlanRequest>(false)?.value;
    let now = uc::input_of(&current.plan);
    let input = PlanInput {
        name: patch.name.unwrap_or(now.name),
        description: patch.description.unwrap_or(now.description),
        rate_limit: patch.rate_limit_per_minute.map_or(now.rate_limit, rate),
        quota: match patch.quota {
            Some(q) => QuotaSpec::input(q.as_ref()),
            None => now.quota,
        },
        allowed_ips: match patch.allowed_ips {
            Some(list) => ListInput::Items(list.unwrap_or_default()),
            None => now.allowed_ips,
        },
        permissions: patch.permissions.unwrap_or(now.permissions),
    };
    let saved = uc::update(&m.state, &m.ctx, &id, input).await?;
    Ok(HttpResponse::Ok().json(PlanView::of(&saved)))
}

#[utoipa::path(
    delete,
    path = "/api/v1/plans/{id}",
    tag = "plans",
    params(("id" = String, Path, description = "The plan's id", pattern = "^plan_[0-9A-Za-z]+$")),
    security(("bearer" = [])),
    responses((status = 200, description = "Deleted; its keys keep its settings as their own", body = PlanDeleted), Refusals, KeyRefusals)
)]
pub async fn delete_plan(m: Manager<PlansWrite>, id: IdPath) -> Result<HttpResponse, ApiError> {
    let gone = uc::delete(&m.state, &m.ctx, &id).await?;
    Ok(HttpResponse::Ok().json(PlanDeleted {
        keys_released: gone.keys,
        plan: PlanView::of(&gone),
    }))
}
