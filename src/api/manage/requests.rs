//! Who uses a key, over the management API: its recent checks, the callers
//! of the last 24 hours and which of them still present the previous
//! secret, and ending the grace period (the use cases of `app::requests`).

use super::auth::{KeysRead, KeysWrite, Manager};
use super::shapes::*;
use crate::api::problem::ApiError;
use crate::app::requests as uc;
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Filters and page of `GET /api/v1/keys/{id}/requests`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RequestParams {
    /// An outcome: `VALID`, a refusal code (`REVOKED`, `RATE_LIMITED`, …)
    /// or `refused` for every refusal.
    pub outcome: Option<String>,
    /// An exact client address.
    pub ip: Option<String>,
    /// Only checks older than this row id: `next_before` of the previous page.
    #[param(minimum = 1)]
    pub before: Option<i64>,
    /// Rows per page, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

/// One recorded check of a key. Never the key, an `Authorization` header
/// or a query string.
#[derive(Debug, Serialize, ToSchema)]
pub struct RequestView {
    /// The row id (for paging).
    pub id: i64,
    #[schema(format = DateTime)]
    pub at: String,
    /// The client's address (through trusted proxies; the gateway's client
    /// for forward-auth); null when not known.
    pub ip: Option<String>,
    /// The method of the request the key came with, when known.
    pub method: Option<String>,
    /// Its path, without the query string, when known.
    pub path: Option<String>,
    /// `VALID` or the refusal code.
    pub outcome: String,
    /// A short name of the client (from its `User-Agent`).
    pub client: Option<String>,
    /// Which secret was presented: `current`, or `previous` (a regenerated
    /// key's old secret).
    pub secret: String,
    /// How many checks this row stands for: 1 for a single check; n for n
    /// identical calls within one flush interval, or (a busy key's
    /// sample) about n checks.
    pub sampled_one_in: i32,
}

/// One page of a key's recent checks, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct RequestPage {
    pub key_id: String,
    pub requests: Vec<RequestView>,
    /// `before` for the next (older) page; null on the last page.
    pub next_before: Option<i64>,
}

/// A client address and client of the last 24 hours.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallerView {
    pub ip: Option<String>,
    pub client: Option<String>,
    /// Checks recorded (sampled rows count for the checks they stand for).
    pub checks: i64,
    #[schema(format = DateTime)]
    pub last_seen: String,
    /// Checks made with the previous secret.
    pub previous_secret_checks: i64,
    #[schema(format = DateTime)]
    pub previous_secret_last_seen: Option<String>,
}

/// Who used a key in the last 24 hours.
#[derive(Debug, Serialize, ToSchema)]
pub struct Callers {
    pub key_id: String,
    #[schema(format = DateTime)]
    pub since: String,
    /// Until when the previous secret works, while it is in its grace
    /// period; null otherwise.
    #[schema(format = DateTime)]
    pub grace_until: Option<String>,
    /// Most recent first.
    pub callers: Vec<CallerView>,
}

/// A key's recent checks (its request log): time, client address, method
/// and path when known, outcome, client, and which secret answered.
#[utoipa::path(
    get,
    path = "/api/v1/keys/{id}/requests",
    tag = "keys",
    params(("id" = String, Path, description = "The key's id", pattern = "^key_[0-9A-Za-z]+$"), RequestParams),
    security(("bearer" = [])),
    responses((status = 200, description = "One page of checks, newest first", body = RequestPage), Refusals, KeyRefusals)
)]
pub async fn key_requests(
    m: Manager<KeysRead>,
    id: web::Path<String>,
    params: web::Query<RequestParams>,
) -> Result<HttpResponse, ApiError> {
    let p = params.into_inner();
    let limit = p.limit.unwrap_or(uc::PAGE_SIZE);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request("limit must be from 1 to 500."));
    }
    let filter = uc::filter(p.outcome.as_deref(), p.ip.as_deref(), p.before)?;
    let page = uc::list(&m.state, &m.ctx, &id, filter, limit).await?;
    Ok(HttpResponse::Ok().json(RequestPage {
        key_id: page.key.id,
        next_before: page.next,
        requests: page
            .rows
            .into_iter()
            .map(|r| RequestView {
                id: r.id,
                at: time(r.at),
                ip: r.ip,
                method: r.method,
                path: r.path,
                outcome: r.outcome,
                client: r.client,
                secret: r.secret,
                sampled_one_in: r.one_in,
            })
            .collect(),
    }))
}

/// Who still uses a key: the distinct client addresses and clients of the
/// last 24 hours, and which of them presented the previous secret.
#[utoipa::path(
    get,
    path = "/api/v1/keys/{id}/callers",
    tag = "keys",
    params(("id" = String, Path, description = "The key's id", pattern = "^key_[0-9A-Za-z]+$")),
    security(("bearer" = [])),
    responses((status = 200, description = "The callers of the last 24 hours", body = Callers), Refusals, KeyRefusals)
)]
pub async fn key_callers(
    m: Manager<KeysRead>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let c = uc::callers(&m.state, &m.ctx, &id).await?;
    Ok(HttpResponse::Ok().json(Callers {
        key_id: c.key.id,
        since: time(c.since),
        grace_until: c.grace_until.map(time),
        callers: c
            .callers
            .into_iter()
            .map(|c| CallerView {
                ip: c.ip,
                client: c.client,
                checks: c.checks,
                last_seen: time(c.last_at),
                previous_secret_checks: c.previous_checks,
                previous_secret_last_seen: c.last_previous_at.map(time),
            })
            .collect(),
    }))
}

/// End the grace period of a regenerated key's previous secret now: it is
/// refused from this moment (`EXPIRED`). 409 `NO_GRACE_PERIOD` when the
/// key has no previous secret in a grace period.
#[utoipa::path(
    post,
    path = "/api/v1/keys/{id}/end-grace",
    tag = "keys",
    params(("id" = String, Path, description = "The key's id", pattern = "^key_[0-9A-Za-z]+$")),
    security(("bearer" = [])),
    responses((status = 200, description = "The key, its previous secret no longer working", body = KeyView), Refusals, KeyRefusals)
)]
pub async fn end_grace(
    m: Manager<KeysWrite>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let key = uc::end_grace(&m.state, &m.ctx, &id).await?;
    Ok(HttpResponse::Ok().json(KeyView::of(&key)))
}
