//! The JSON API for integrations: bearer-key authentication, `/api/v1/me`,
//! `/api/v1/keys/verify` and `/api/v1/forward-auth` for gateways.

pub mod manage;
pub mod methods;
pub mod openapi;
pub mod problem;

use crate::http::middleware::{Failed, Render};
use crate::state::AppState;
use crate::verify::{Code, Outcome, Requirements, Verified};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde::Deserialize;
use serde_json::json;

/// Register the API routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/v1")
            .app_data(web::JsonConfig::default().limit(16 * 1024).error_handler(|err, _| {
                actix_web::error::InternalError::from_response(
                    err.to_string(),
                    json_error(
                        StatusCode::BAD_REQUEST,
                        "BAD_REQUEST",
                        &format!("The request body must be JSON like {{\"key\": \"sk_live_…\"}}: {err}"),
                    ),
                )
                .into()
            }))
            // Invalid query or path parameters of the management API are
            // problems like its other refusals.
            .app_data(web::QueryConfig::default().error_handler(|err, _| {
                problem::ApiError::bad_request(format!("A query parameter is not valid: {err}."))
                    .into()
            }))
            .app_data(web::PathConfig::default().error_handler(|err, _| {
                problem::ApiError::bad_request(format!("The address is not valid: {err}.")).into()
            }))
            .service(me)
            .service(verify)
            .service(openapi::openapi_json)
            .configure(methods::configure)
            .configure(manage::configure)
            // Any method: gateways forward the original request's method.
            // Any path below it too: Envoy's ext_authz appends the original
            // path to the one it is given.
            .service(
                web::resource(["/forward-auth", "/forward-auth/{tail:.*}"]).to(forward_auth),
            ),
    );
}

/// The API's scopes and how their errors look: the integration endpoints
/// answer `{"error": …}`, the management API problems (RFC 9457), also for
/// refusals made before a handler runs (an unknown route or method).
pub fn error_scopes() -> Vec<(&'static str, Render)> {
    vec![
        ("/api", render_json),
        (manage::KEYS_SCOPE, problem::render),
        (manage::EVENTS_SCOPE, problem::render),
        ("/api/v1/keys/verify", render_json),
    ]
}

fn render_json(failed: &Failed<'_>) -> HttpResponse {
    json_error(failed.status, failed.info.code, &failed.info.message)
}

/// An error body: `{"error": {"code", "message"}}`.
pub fn json_error(status: StatusCode, code: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "error": { "code": code, "message": message } }))
}

/// The bearer token of the request. No `Authorization: Bearer` header is
/// [`Outcome::missing`]; a header that is not visible ASCII (no key ever
/// is) is a malformed key, not a missing one.
fn bearer(req: &HttpRequest) -> Result<&str, Outcome> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Err(Outcome::missing());
    };
    let value = value.to_str().map_err(|_| Outcome::malformed_header())?;
    match value.trim().split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => Ok(token.trim()),
        _ => Err(Outcome::missing()),
    }
}

fn rfc3339(t: Option<chrono::NaiveDateTime>) -> serde_json::Value {
    match t {
        Some(t) => json!(crate::domain::time::rfc3339(t)),
        None => serde_json::Value::Null,
    }
}

/// The facts about a key that its holder may see.
fn key_facts(v: &Verified) -> serde_json::Value {
    let k = &v.record.key;
    json!({
        "id": k.id,
        "name": k.name,
        "kind": k.kind,
        "owner": k.owner_id.as_ref().map(|id| json!({ "id": id, "email": v.record.owner_email })),
        "workspace_id": k.workspace_id,
        "environment": k.environment,
        "permissions": k.permission_list(),
        "resources": k.resource_list(),
        "expires_at": rfc3339(k.expires_at),
        "rate_limit_per_minute": k.rate_limit,
        "created_at": rfc3339(Some(k.created_at)),
    })
}

fn rate_headers(res: &mut actix_web::HttpResponseBuilder, v: &Verified) {
    if let Some(age) = v.stale_age {
        // The database could not be asked: say the answer is the key's
        // last known state, and how old it is.
        res.insert_header(("X-Keyward-Stale", "true"))
            .insert_header((header::AGE, age.as_secs().to_string()));
    }
    if let Some(rate) = &v.rate {
        res.insert_header(("X-RateLimit-Limit", rate.limit.to_string()))
            .insert_header(("X-RateLimit-Remaining", rate.remaining.to_string()))
            .insert_header(("X-RateLimit-Reset", rate.reset_secs.to_string()));
    }
}

/// Check the request's bearer key against `requirements`: the one hot path
/// shared by `/me` and `/forward-auth` (same cache, limiter and counters).
async fn check_bearer(
    req: &HttpRequest,
    state: &AppState,
    requirements: &Requirements,
) -> Result<Verified, Outcome> {
    let token = bearer(req).inspect_err(|outcome| {
        // Refused before the verifier saw it: count it here.
        state.verifier.metrics.count_refusal(outcome.code);
    })?;
    state
        .verifier
        .verify(&state.pool, token, requirements)
        .await
}

#[derive(Deserialize)]
pub struct MeQuery {
    environment: Option<String>,
}

/// Describe the key the request is authenticated with: the simple request a
/// user sends to check that a key works.
#[utoipa::path(
    get,
    path = "/api/v1/me",
    tag = "integrations",
    params(("environment" = Option<String>, Query, description = "Refuse the key unless it is for this environment (live, test, dev)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The key is valid", body = openapi::KeyFacts),
        (status = 400, description = "An invalid parameter", body = openapi::ErrorBody),
        (status = 401, description = "Missing, malformed, unknown, revoked, inactive or expired key, or another environment", body = openapi::ErrorBody),
        (status = 429, description = "Rate limit exceeded; see Retry-After", body = openapi::ErrorBody),
        (status = 503, description = "The database is unreachable", body = openapi::ErrorBody),
    )
)]
#[get("/me")]
pub async fn me(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<MeQuery>,
) -> HttpResponse {
    let requirements = Requirements {
        environment: query.environment.clone(),
        permission: None,
        resource: None,
    };
    match check_bearer(&req, &state, &requirements).await {
        Ok(v) => {
            let mut res = HttpResponse::Ok();
            rate_headers(&mut res, &v);
            // The facts are the same for every check of this record: they
            // are rendered once, not on every request.
            let body = v
                .record
                .facts_json
                .get_or_init(|| key_facts(&v).to_string().into_boxed_str());
            res.content_type("application/json").body(body.to_string())
        }
        Err(outcome) => failure_response(&outcome),
    }
}

/// The HTTP answer for a failed authentication on `/api/v1/me`.
fn failure_response(outcome: &Outcome) -> HttpResponse {
    failure_builder(outcome).json(error_body(outcome))
}

/// The `{"error": {"code", "message"}}` body of a refusal.
fn error_body(outcome: &Outcome) -> serde_json::Value {
    json!({ "error": { "code": outcome.code.as_str(), "message": outcome.message } })
}

/// Status and headers of a refusal (`WWW-Authenticate`, `Retry-After`,
/// rate-limit headers), without its body.
fn failure_builder(outcome: &Outcome) -> actix_web::HttpResponseBuilder {
    let status = outcome.code.status();
    let mut res = HttpResponse::build(status);
    if status == StatusCode::UNAUTHORIZED {
        // A header value must be visible ASCII: the message can echo what the
        // caller sent (an environment name), so anything else is replaced.
        let description: String = outcome
            .message
            .chars()
            .map(|c| {
                if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                    c
                } else {
                    '?'
                }
            })
            .collect();
        res.insert_header((
            header::WWW_AUTHENTICATE,
            if outcome.code == Code::MissingKey {
                "Bearer realm=\"keyward\"".to_owned()
            } else {
                format!("Bearer realm=\"keyward\", error=\"invalid_token\", error_description=\"{description}\"")
            },
        ));
    }
    if let Some(retry) = outcome.retry_after_secs {
        res.insert_header((header::RETRY_AFTER, retry.to_string()));
        if let Some(limit) = outcome.limit {
            res.insert_header(("X-RateLimit-Limit", limit.to_string()))
                .insert_header(("X-RateLimit-Remaining", "0"))
                .insert_header(("X-RateLimit-Reset", retry.to_string()));
        }
    }
    res
}

/// A key to check, and what it must allow.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"key": "sk_live_…", "permission": "data:read"}))]
pub struct VerifyRequest {
    /// The full key as the caller received it.
    key: String,
    environment: Option<String>,
    permission: Option<String>,
    resource: Option<String>,
}

/// Let the platform's services check a key they received. Always answers
/// 200 with `valid` and a machine-readable `code`; the key's facts are
/// included whenever the key was identified.
#[utoipa::path(
    post,
    path = "/api/v1/keys/verify",
    tag = "integrations",
    request_body = VerifyRequest,
    responses(
        (status = 200, description = "The verdict (valid or not) with a code", body = openapi::VerifyResponse),
        (status = 400, description = "The body is not JSON of this shape", body = openapi::ErrorBody),
        (status = 503, description = "The database is unreachable", body = openapi::ErrorBody),
    )
)]
#[post("/keys/verify")]
pub async fn verify(state: web::Data<AppState>, body: web::Json<VerifyRequest>) -> HttpResponse {
    let body = body.into_inner();
    let requirements = Requirements {
        environment: body.environment,
        permission: body.permission,
        resource: body.resource,
    };
    match state
        .verifier
        .verify(&state.pool, body.key.trim(), &requirements)
        .await
    {
        Ok(v) => {
            let mut res = HttpResponse::Ok();
            rate_headers(&mut res, &v);
            res.json(json!({
                "valid": true,
                "code": crate::domain::chart::VALID,
                "message": "The key is valid.",
                "key": key_facts(&v),
            }))
        }
        Err(outcome) => {
            let mut body = json!({
                "valid": false,
                "code": outcome.code.as_str(),
                "message": outcome.message,
                "status": outcome.code.status().as_u16(),
            });
            if let Some(retry) = outcome.retry_after_secs {
                body["retry_after"] = json!(retry);
            }
            if let Some(v) = &outcome.identified {
                body["key"] = key_facts(v);
            }
            HttpResponse::Ok().json(body)
        }
    }
}

/// A header value safe for any gateway: visible ASCII only. Visible ASCII
/// stays as it is except `%` and `,` (the list separator); anything else
/// (spaces, non-ASCII letters of an email address) is percent-encoded as
/// UTF-8, so a reader that percent-decodes always gets the text back.
fn header_safe(text: &str) -> String {
    const UNSAFE: &percent_encoding::AsciiSet =
        &percent_encoding::CONTROLS.add(b' ').add(b'%').add(b',');
    percent_encoding::utf8_percent_encode(text, UNSAFE).to_string()
}

/// A JSON document as visible ASCII (plus spaces), fit for a header value:
/// anything else (non-ASCII characters, DEL, which JSON leaves as it is)
/// becomes a `\uXXXX` escape, which every JSON parser reads back unchanged.
/// Outside strings, compact JSON has nothing to escape.
fn ascii_json(value: &serde_json::Value) -> String {
    let mut out = String::new();
    for c in value.to_string().chars() {
        if c.is_ascii_graphic() || c == ' ' {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

/// What a gateway requires of the key, from an `X-Keyward-…` request
/// header: absent or blank means no requirement. Resource identifiers may
/// be non-ASCII, so the raw bytes are read as UTF-8.
fn required(req: &HttpRequest, name: &str) -> Option<String> {
    let value = req.headers().get(name)?;
    let text = String::from_utf8_lossy(value.as_bytes());
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// Forward authentication for gateways (nginx `auth_request`, Traefik
/// `ForwardAuth`, Envoy `ext_authz`): the gateway sends the client's
/// `Authorization` header and what it requires in `X-Keyward-Permission`,
/// `X-Keyward-Environment` and `X-Keyward-Resource`. A valid key is 200
/// with the key's identity in response headers for the gateway to pass
/// upstream; a refusal is `/me`'s 401 / 403 / 429 / 503, plus the JSON
/// body repeated in `X-Keyward-Error` for gateways (nginx) that drop the
/// body of the auth answer.
pub async fn forward_auth(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let requirements = Requirements {
        environment: required(&req, "X-Keyward-Environment"),
        permission: required(&req, "X-Keyward-Permission"),
        resource: required(&req, "X-Keyward-Resource"),
    };
    match check_bearer(&req, &state, &requirements).await {
        Ok(v) => {
            let key = &v.record.key;
            let mut res = HttpResponse::Ok();
            // A gateway caches nothing of a key check.
            res.insert_header((header::CACHE_CONTROL, "no-store"))
                .insert_header(("X-Keyward-Key-Id", header_safe(&key.id)))
                .insert_header(("X-Keyward-Workspace-Id", header_safe(&key.workspace_id)))
                .insert_header((
                    "X-Keyward-Permissions",
                    key.permission_list()
                        .iter()
                        .map(|p| header_safe(p))
                        .collect::<Vec<_>>()
                        .join(","),
                ));
            if key.owner_id.is_some()
                && let Some(email) = &v.record.owner_email
            {
                res.insert_header(("X-Keyward-Owner", header_safe(email)));
            }
            rate_headers(&mut res, &v);
            res.finish()
        }
        Err(outcome) => {
            let body = error_body(&outcome);
            failure_builder(&outcome)
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .insert_header(("X-Keyward-Error", ascii_json(&body)))
                .json(body)
        }
    }
}

/// Forward authentication for gateways (nginx `auth_request`, Traefik
/// `ForwardAuth`, Envoy `ext_authz`). Any method and any path below it are
/// accepted; requirements come in `X-Keyward-Permission`,
/// `X-Keyward-Environment` and `X-Keyward-Resource`. A valid key answers 200
/// with `X-Keyward-Key-Id`, `X-Keyward-Workspace-Id`, `X-Keyward-Permissions`
/// and `X-Keyward-Owner`.
#[utoipa::path(
    get,
    path = "/api/v1/forward-auth",
    tag = "integrations",
    params(
        ("X-Keyward-Permission" = Option<String>, Header, description = "A permission the key must have"),
        ("X-Keyward-Environment" = Option<String>, Header, description = "The environment the key must be for"),
        ("X-Keyward-Resource" = Option<String>, Header, description = "A resource the key must be allowed"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The key is valid; its identity is in the response headers"),
        (status = 401, description = "No valid key", body = openapi::ErrorBody),
        (status = 403, description = "The key lacks the permission or resource", body = openapi::ErrorBody),
        (status = 429, description = "Rate limit exceeded", body = openapi::ErrorBody),
        (status = 503, description = "The database is unreachable", body = openapi::ErrorBody),
    )
)]
#[expect(
    dead_code,
    reason = "describes forward_auth, which is routed for any method, in the OpenAPI document"
)]
fn forward_auth_doc() {}
