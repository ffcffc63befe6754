//! The management API's webhook endpoints (`/api/v1/webhooks…`): the use
//! cases of `app::webhooks`, with `keyward:webhooks:read` /
//! `keyward:webhooks:write` (admins).

use super::auth::{Manager, WebhooksRead, WebhooksWrite};
use super::body::Body;
use super::shapes::{BodyRefusals, KeyRefusals, Refusals, time};
use crate::api::problem::ApiError;
use crate::app::webhooks::{self as uc, Input};
use crate::db::webhooks::{Attempt, Delivery, Endpoint};
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A webhook endpoint (its signing secret is shown only when created or
/// rolled).
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookView {
    #[schema(example = "whk_3Qd0sWcTzE1n8mK2pL5vXa")]
    pub id: String,
    pub url: String,
    pub description: String,
    /// `*` (all), `key.*` (a family), or event types such as `key.revoked`.
    pub event_types: Vec<String>,
    /// Since when deliveries have been given up on (after about a day of
    /// retries); `null` while it works.
    pub failing_since: Option<String>,
    /// After a roll, until when the previous secret still signs too.
    pub previous_secret_valid_until: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl WebhookView {
    pub fn of(e: &Endpoint) -> Self {
        let now = crate::db::now();
        WebhookView {
            id: e.id.clone(),
            url: e.url.clone(),
            description: e.description.clone(),
            event_types: e.types(),
            failing_since: e.failing_since.map(time),
            previous_secret_valid_until: e.previous_expires_at.filter(|t| *t > now).map(time),
            created_at: time(e.created_at),
            updated_at: time(e.updated_at),
        }
    }
}

/// An endpoint with its signing secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookWithSecret {
    pub webhook: WebhookView,
    /// `whsec_…`: verify deliveries with it (Standard Webhooks).
    pub secret: String,
}

/// The workspace's endpoints.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookList {
    pub webhooks: Vec<WebhookView>,
}

/// A new endpoint.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"url": "https://hooks.example.com/keyward", "event_types": ["key.*", "user.removed"]}))]
pub struct CreateWebhookRequest {
    /// An `https://` (or `http://`) address on the public internet.
    #[schema(min_length = 1, max_length = 2000)]
    pub url: String,
    #[serde(default)]
    #[schema(max_length = 500)]
    pub description: Option<String>,
    /// `*`, `key.*`, or event types (see the audit trail's actions).
    #[schema(min_items = 1, max_items = 64)]
    pub event_types: Vec<String>,
}

/// Fields to change; absent ones stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhookRequest {
    #[serde(default)]
    #[schema(min_length = 1, max_length = 2000)]
    pub url: Option<String>,
    #[serde(default)]
    #[schema(max_length = 500)]
    pub description: Option<String>,
    #[serde(default)]
    #[schema(min_items = 1, max_items = 64)]
    pub event_types: Option<Vec<String>>,
}

/// One delivery attempt.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptView {
    pub time: String,
    /// The message (`webhook-id`) attempted.
    pub message_id: String,
    pub event_type: String,
    /// 1 for the first attempt of a message.
    pub attempt: i32,
    /// The receiver's HTTP status; `null` when there was no answer.
    pub status: Option<i32>,
    pub latency_ms: i32,
    /// The answer's first bytes, or why there was no answer.
    pub response: String,
}

/// One message to an endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    /// The `webhook-id`, the same on every attempt.
    pub message_id: String,
    pub event_id: String,
    pub event_type: String,
    pub created_at: String,
    pub attempts: i32,
    /// `delivered`, `failed` (given up), or `null` while pending.
    pub outcome: Option<String>,
    /// When the next attempt is due, while pending.
    pub next_attempt_at: Option<String>,
}

/// An endpoint's delivery log.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookLog {
    pub webhook: WebhookView,
    /// The last 100 attempts, newest first.
    pub attempts: Vec<AttemptView>,
    /// The last 50 messages, newest first.
    pub deliveries: Vec<DeliveryView>,
}

/// A message queued for delivery.
#[derive(Debug, Serialize, ToSchema)]
pub struct Queued {
    pub message_id: String,
}

fn attempt_view(a: Attempt) -> AttemptView {
    AttemptView {
        time: time(a.attempted_at),
        message_id: a.outbox_id,
        event_type: a.event_type,
        attempt: a.attempt,
        status: a.status,
        latency_ms: a.latency_ms,
        response: a.response_head,
    }
}

fn delivery_view(d: Delivery) -> DeliveryView {
    DeliveryView {
        next_attempt_at: d.done_at.is_none().then(|| time(d.next_attempt_at)),
        message_id: d.id,
        event_id: d.event_id,
        event_type: d.event_type,
        created_at: time(d.created_at),
        attempts: d.attempts,
        outcome: d.outcome,
    }
}

/// The workspace's webhook endpoints (admins).
#[utoipa::path(
    get,
    path = "/api/v1/webhooks",
    tag = "webhooks",
    security(("bearer" = [])),
    responses((status = 200, description = "The endpoints", body = WebhookList), Refusals)
)]
pub async fn list_webhooks(m: Manager<WebhooksRead>) -> Result<HttpResponse, ApiError> {
    let all = uc::list(&m.state, &m.ctx).await?;
    Ok(HttpResponse::Ok().json(WebhookList {
        webhooks: all.iter().map(WebhookView::of).collect(),
    }))
}

/// Add an endpoint; its signing secret is in the answer, this once.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks",
    tag = "webhooks",
    request_body = CreateWebhookRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Added; `secret` is shown this once", body = WebhookWithSecret),
        Refusals,
        KeyRefusals,
        BodyRefusals,
    )
)]
pub async fn create_webhook(
    m: Manager<WebhooksWrite>,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    let input = body.json::<CreateWebhookRequest>(false)?.value;
    let input = Input {
        url: input.url,
        description: input.description.unwrap_or_default(),
        event_types: input.event_types,
    };
    let (e, secret) = uc::create(&m.state, &m.ctx, &input).await?;
    Ok(HttpResponse::Created().json(WebhookWithSecret {
        webhook: WebhookView::of(&e),
        secret,
    }))
}

type IdPath = web::Path<String>;

/// One endpoint.
#[utoipa::path(
    get,
    path = "/api/v1/webhooks/{id}",
    tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint's id", pattern = "^whk_[0-9A-Za-z]+$")),
    security(("bearer" = [])),
    responses((status = 200, description = "The endpoint", body = WebhookView), Refusals, KeyRefusals)
)]
pub async fn get_webhook(m: Manager<WebhooksRead>, id: IdPath) -> Result<HttpResponse, ApiError> {
    let e = uc::get(&m.state, &m.ctx, &id).await?;
    Ok(HttpResponse::Ok().json(WebhookView::of(&e)))
}

/// Change an endpoint's address, description or event types.
#[utoipa::path(
    patch,
    path = "/api/v1/webhooks/{id}",
    tag = "webhooks",
    request_body = UpdateWebhookRequest,
    params(("id" = String, Path, description = "The endpoint's id", pattern = "^whk_[0-9A-Za-z]+$")),
    security(("bearer" = [])),
    responses((status = 200, description = "Changed", body = WebhookView), Refusals, KeyRefusals, BodyRefusals)
)]
pub async fn update_webhook(
    m: Manager<WebhooksWrite>,
    id: IdPath,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    let patch = body.json::<UpdateWebhookRequest>(false)?.value;
    let now = uc::get(&m.state, &m.ctx, &id).await?;
    let input = Input {
        url: patch.url.unwrap_or(now.url.clone()),
        description: patch.description.unwrap_or(now.description.clone()),
        event_types: patch.event_types.unwrap_or_else(|| now.types()),
    };
    let e = uc::update(&m.state, &m.ctx, &id, &input).await?;
    Ok(HttpResponse::Ok().json(WebhookView::of(&e)))
}

/// Delete an endpoint, its pending messages and its log.
#[utoipa::path(
    delete,
    path = "/api/v1/webhooks/{id}",
    tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint's id", pattern = "^whk_[0-9A-Za-z]+$")),
    security(("bearer" = [])),
    responses((status = 204, description = "Deleted"), Refusals, KeyRefusals)
)]
pub async fn delete_webhook(
    m: Manager<WebhooksWrite>,
    id: IdPath,
) -> Result<HttpResponse, ApiError> {
    uc::delete(&m.state, &m.ctx, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Roll the signing secret: the new one is in the answer, this once; the
/// previous one keeps signing beside it for 24 hours.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/{id}/roll-secret",
    tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint's id", pattern = "^whk_[0-9A-Za-z]+$")),
    security(("bearer" = [])),
    responses((status = 200, description = "Rolled; `secret` is shown this once", body = WebhookWithSecret), Refusals, KeyRefusals)
)]
pub async fn roll_webhook_secret(
    m: Manager<WebhooksWrite>,
    id: IdPath,
) -> Result<HttpResponse, ApiError> {
    let (e, secret) = uc::roll(&m.state, &m.ctx, &id).await?;
    Ok(HttpResponse::Ok().json(WebhookWithSecret {
        webhook: WebhookView::of(&e),
        secret,
    }))
}

/// The endpoint's delivery log.
#[utoipa::path(
    get,
    path = "/api/v1/webhooks/{id}/deliveries",
    tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint's id", pattern = "^whk_[0-9A-Za-z]+$")),
    security(("bearer" = [])),
    responses((status = 200, description = "Attempts and messages, newest first", body = WebhookLog), Refusals, KeyRefusals)
)]
pub async fn webhook_deliveries(
    m: Manager<WebhooksRead>,
    id: IdPath,
) -> Result<HttpResponse, ApiError> {
    let log = uc::log(&m.state, &m.ctx, &id).await?;
    Ok(HttpResponse::Ok().json(WebhookLog {
        webhook: WebhookView::of(&log.endpoint),
        attempts: log.attempts.into_iter().map(attempt_view).collect(),
        deliveries: log.deliveries.into_iter().map(delivery_view).collect(),
    }))
}

/// Queue a `webhook.test` message to the endpoint.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/{id}/test",
    tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint's id", pattern = "^whk_[0-9A-Za-z]+$")),
    security(("bearer" = [])),
    responses((status = 202, description = "Queued", body = Queued), Refusals, KeyRefusals)
)]
pub async fn test_webhook(m: Manager<WebhooksWrite>, id: IdPath) -> Result<HttpResponse, ApiError> {
    let message_id = uc::send_test(&m.state, &m.ctx, &id).await?;
    Ok(HttpResponse::Accepted().json(Queued { message_id }))
}

/// Send one of the endpoint's messages again (as a new message, same body).
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/{id}/deliveries/{message_id}/resend",
    tag = "webhooks",
    params(
        ("id" = String, Path, description = "The endpoint's id", pattern = "^whk_[0-9A-Za-z]+$"),
        ("message_id" = String, Path, description = "The message to send again", pattern = "^msg_[0-9A-Za-z]+$"),
    ),
    security(("bearer" = [])),
    responses((status = 202, description = "Queued", body = Queued), Refusals, KeyRefusals)
)]
pub async fn resend_webhook(
    m: Manager<WebhooksWrite>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, message) = path.into_inner();
    let message_id = uc::resend(&m.state, &m.ctx, &id, &message).await?;
    Ok(HttpResponse::Accepted().json(Queued { message_id }))
}
