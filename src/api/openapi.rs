//! The OpenAPI 3.1 document of the whole JSON API, generated from the
//! handlers' own types and annotations, served at `/api/v1/openapi.json`.

use super::manage;
use super::problem::Problem;
use actix_web::{HttpResponse, get};
use serde::Serialize;
use std::sync::OnceLock;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "keyward API",
        description = "Check API keys (`/me`, `/keys/verify`, `/forward-auth`) and manage them \
(keys, events, usage). Send a key as `Authorization: Bearer sk_live_…`. Management endpoints need \
a key with `keyward:keys:read`, `keyward:keys:write`, `keyward:keys:reveal`, `keyward:events:read`, \
`keyward:webhooks:read`, `keyward:webhooks:write`, `keyward:service-accounts:read` or \
`keyward:service-accounts:write`, `keyward:settings:read` or `keyward:settings:write`, \
`keyward:plans:read` or `keyward:plans:write`; such a key acts with the role of the member behind it (a person, \
or a service account, whose keys act with its role whoever created them). Errors of the management \
endpoints are RFC 9457 \
`application/problem+json` bodies with a stable `code`."
    ),
    paths(
        super::me,
        super::verify,
        super::forward_auth_doc,
        manage::list_keys,
        manage::create_key,
        manage::get_key,
        manage::update_key,
        manage::delete_key,
        manage::disable_key,
        manage::enable_key,
        manage::revoke_key,
        manage::regenerate_key,
        manage::get_quota,
        manage::top_up_quota,
        manage::key_usage,
        manage::requests::key_requests,
        manage::requests::key_callers,
        manage::requests::end_grace,
        manage::reveal_key,
        manage::set_recoverable_keys,
        manage::get_sso_settings,
        manage::put_sso_settings,
        manage::list_events,
        super::leaks::github,
        super::leaks::report,
        manage::list_webhooks,
        manage::create_webhook,
        manage::get_webhook,
        manage::update_webhook,
        manage::delete_webhook,
        manage::roll_webhook_secret,
        manage::webhook_deliveries,
        manage::test_webhook,
        manage::resend_webhook,
        manage::list_service_accounts,
        manage::create_service_account,
        manage::get_service_account,
        manage::update_service_account,
        manage::delete_service_account,
        manage::disable_service_account,
        manage::enable_service_account,
        manage::create_service_account_key,
        manage::list_plans,
        manage::create_plan,
        manage::get_plan,
        manage::update_plan,
        manage::delete_plan,
        openapi_json,
    ),
    components(schemas(Problem)),
    modifiers(&BearerAuth, &GithubSignature, &OptionalBodies, &EveryMethod),
    tags(
        (name = "integrations", description = "Checking keys: what integrations and gateways call"),
        (name = "keys", description = "Managing keys (keyward:keys:read / keyward:keys:write; showing a recoverable key's secret again: keyward:keys:reveal)"),
        (name = "events", description = "The audit trail (keyward:events:read)"),
        (name = "leaks", description = "Leaked keys: GitHub secret scanning alerts and public reports"),
        (name = "webhooks", description = "Webhook endpoints (keyward:webhooks:read / keyward:webhooks:write)"),
        (name = "settings", description = "Workspace settings: single sign-on (keyward:settings:read / keyward:settings:write)"),
        (name = "plans", description = "Plans: named rate limits, quotas, IP allowlists and permission ceilings that every key on them follows; an edit changes them all at once (keyward:plans:read / keyward:plans:write)"),
        (name = "service-accounts", description = "Service accounts: members that are not people, owning keys no person's departure takes down (keyward:service-accounts:read / keyward:service-accounts:write)"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "bearer",
                SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
            );
        }
    }
}

/// GitHub secret scanning alerts are authenticated by GitHub's signature
/// of the body (issue 25).
struct GithubSignature;

impl Modify for GithubSignature {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{ApiKey, ApiKeyValue};
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "githubSignature",
                SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                    "Github-Public-Key-Signature",
                    "ECDSA P-256 SHA-256 signature of the raw body by the GitHub key named in Github-Public-Key-Identifier",
                ))),
            );
        }
    }
}

/// An optional request body (`Option<T>` in `request_body`) is one that
/// may be left out, not one that may be the JSON `null`: utoipa declares it
/// as `oneOf: [null, T]`, which tells clients a `null` body is valid, and
/// the server refuses one (a body is a JSON object or nothing). Keep `T`
/// alone, in a body that is not required.
struct OptionalBodies;

impl Modify for OptionalBodies {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::schema::{Schema, SchemaType, Type};
        use utoipa::openapi::{RefOr, Required};
        let is_null = |s: &RefOr<Schema>| matches!(s, RefOr::T(Schema::Object(o)) if o.schema_type == SchemaType::Type(Type::Null));
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.options,
                &mut item.head,
                &mut item.patch,
                &mut item.trace,
            ];
            for operation in operations.into_iter().flatten() {
                let Some(body) = operation.request_body.as_mut() else {
                    continue;
                };
                if body.required == Some(Required::True) {
                    continue;
                }
                body.required = Some(Required::False);
                for content in body.content.values_mut() {
                    if let Some(RefOr::T(Schema::OneOf(one_of))) = &content.schema
                        && let [a, b] = one_of.items.as_slice()
                        && (is_null(a) || is_null(b))
                    {
                        content.schema = Some(if is_null(a) { b.clone() } else { a.clone() });
                    }
                }
            }
        }
    }
}

/// `/api/v1/forward-auth` answers every method (a gateway forwards the
/// original request's), so the document says so: the GET operation, as
/// `forward_auth_doc` declares it, under every method OpenAPI has, each
/// with an operation id of its own; HEAD's answers have no body.
struct EveryMethod;

impl Modify for EveryMethod {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Some(item) = openapi.paths.paths.get_mut("/api/v1/forward-auth") else {
            return;
        };
        let Some(get) = item.get.clone() else {
            return;
        };
        let like_get = |method: &str| {
            let mut op = get.clone();
            op.operation_id = get.operation_id.as_ref().map(|id| format!("{id}_{method}"));
            op
        };
        let mut head = like_get("head");
        for response in head.responses.responses.values_mut() {
            if let utoipa::openapi::RefOr::T(r) = response {
                r.content.clear();
            }
        }
        item.head = Some(head);
        item.post = Some(like_get("post"));
        item.put = Some(like_get("put"));
        item.patch = Some(like_get("patch"));
        item.delete = Some(like_get("delete"));
        item.options = Some(like_get("options"));
        item.trace = Some(like_get("trace"));
    }
}

/// The document as JSON, built once.
pub fn document() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| ApiDoc::openapi().to_json().unwrap_or_default())
}

/// The OpenAPI 3.1 document of this API.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "integrations",
    responses((status = 200, description = "This document", content_type = "application/json", body = Object))
)]
#[get("/openapi.json")]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(document())
}

/// A key's owner, as `/me` shows it.
#[derive(Serialize, ToSchema)]
pub struct KeyOwner {
    pub id: String,
    pub email: Option<String>,
}

/// What `/me` and `/keys/verify` tell about a key.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({
    "id": "key_01JD3X5M8Q2W7Y4N6P9R0T1V3B",
    "name": "Grafana prod",
    "kind": "personal",
    "owner": {"id": "usr_01JD3X1Z8Q2W7Y4N6P9R0T1V3B", "email": "ada@example.com"},
    "workspace_id": "wsp_01JD3X0Z8Q2W7Y4N6P9R0T1V3B",
    "environment": "live",
    "permissions": ["data:read"],
    "resources": [],
    "expires_at": "2027-02-21T10:00:00Z",
    "rate_limit_per_minute": null,
    "allowed_ips": ["203.0.113.7", "198.51.100.0/24"],
    "created_at": "2026-11-23T10:00:00Z"
}))]
pub struct KeyFacts {
    pub id: String,
    pub name: String,
    pub kind: manage::KeyKind,
    pub owner: Option<KeyOwner>,
    pub workspace_id: String,
    pub environment: manage::KeyEnvironment,
    pub permissions: Vec<String>,
    pub resources: Vec<String>,
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
    pub rate_limit_per_minute: Option<i32>,
    /// The key's usage quota and what is left of it; `null`: none.
    pub quota: Option<QuotaFacts>,
    /// The addresses and CIDR ranges the key may be used from; empty: any.
    pub allowed_ips: Vec<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
}

/// A key's usage quota as a check reports it.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"limit": 1000, "period": "day", "refill": null, "remaining": 958, "resets_at": "2026-12-06T00:00:00Z"}))]
pub struct QuotaFacts {
    /// The most uses held at once.
    pub limit: i64,
    /// `day`, `week` or `month`: the limit comes back whole at the start of
    /// each (00:00 UTC; weeks start on Monday). `total`: credits, refilled
    /// only by `refill` or a top-up.
    pub period: manage::QuotaPeriod,
    /// Credits' refill: an amount added at the start of each period, up to
    /// the limit; `null`: none.
    pub refill: Option<manage::QuotaRefill>,
    /// What is left after this check (`null` on a refusal before the
    /// quota was consulted).
    pub remaining: Option<i64>,
    /// When the quota next refills; `null`: it does not.
    #[schema(format = DateTime)]
    pub resets_at: Option<String>,
}

/// A refusal of `/me` or `/forward-auth`.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// Why a key was refused.
#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable code: `MISSING_KEY`, `MALFORMED`, `NOT_FOUND`, `REVOKED`,
    /// `DISABLED`, `EXPIRED`, `ENVIRONMENT_MISMATCH`, `API_KEYS_DISABLED`,
    /// `INSUFFICIENT_PERMISSION`, `RESOURCE_NOT_ALLOWED`, `WRONG_WORKSPACE`,
    /// `IP_NOT_ALLOWED` (403: the key has an IP allowlist and the call came
    /// from elsewhere; the message names the address seen), `RATE_LIMITED`, `UNAVAILABLE`, `REPEATED_HEADER`, `BAD_REQUEST`.
    pub code: String,
    pub message: String,
}

/// The answer of `/keys/verify`: always 200, `valid` says whether the key
/// passed.
#[derive(Serialize, ToSchema)]
pub struct VerifyResponse {
    pub valid: bool,
    /// `VALID`, or why the key was refused (the codes of [`ErrorDetail`]).
    pub code: String,
    pub message: String,
    /// The HTTP status `/me` would have answered (refusals only).
    #[schema(nullable = false)]
    pub status: Option<u16>,
    /// Seconds until the rate limit lets the key through again.
    #[schema(nullable = false)]
    pub retry_after: Option<u64>,
    /// The key's facts, whenever it was identified.
    #[schema(nullable = false)]
    pub key: Option<KeyFacts>,
}
