//! The JSON API for integrations: bearer-key authentication, `/api/v1/me`,
//! `/api/v1/keys/verify` and `/api/v1/forward-auth` for gateways.

mod answer;
pub mod calls;
pub mod leaks;
pub mod manage;
pub mod methods;
pub mod openapi;
pub mod problem;

use crate::http::middleware::{Failed, Render};
use crate::state::AppState;
use crate::verify::{Code, Outcome, Requirements, Verified, WorkspaceRequirement};
use actix_web::http::header::HeaderName;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde::Deserialize;
use serde_json::json;

/// Register the API routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/v1")
            .app_data(web::JsonConfig::default().limit(16 * 1024).error_handler(|err, _| {
                // The same statuses as the management API's bodies: 415
                // without a JSON content type, 413 over the limit, else 400.
                use actix_web::error::JsonPayloadError as E;
                let (status, code) = match &err {
                    E::ContentType => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE"),
                    E::Overflow { .. } | E::OverflowKnownLength { .. } => {
                        (StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE")
                    }
                    _ => (StatusCode::BAD_REQUEST, "BAD_REQUEST"),
                };
                actix_web::error::InternalError::from_response(
                    err.to_string(),
                    json_error(
                        status,
                        code,
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
            // Forward auth first, and its usual address as a static path:
            // routing (and the route name the request log and metrics read)
            // tries resources in order, a dynamic one by regular expression.
            // Registered last, behind the management API's `{id}` routes,
            // with its two patterns matched as one set, routing cost more
            // than the key check (about 47k instructions of 128k a check).
            // Any method: gateways forward the original request's method.
            .service(web::resource("/forward-auth").to(forward_auth))
            .service(me)
            .service(verify)
            .service(openapi::openapi_json)
            .configure(methods::configure)
            .configure(manage::configure)
            .configure(leaks::configure)
            // Any path below it too: Envoy's ext_authz appends the original
            // path to the one it is given.
            .service(web::resource("/forward-auth/{tail:.*}").to(forward_auth)),
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
/// is) is a malformed key, not a missing one; two or more are refused
/// ([`single`]). Public for the fuzz target that feeds it any header
/// (`fuzz/fuzz_targets/bearer.rs`).
pub fn bearer(req: &HttpRequest) -> Result<&str, Outcome> {
    let Some(value) = single(req, &header::AUTHORIZATION)? else {
        return Err(Outcome::missing());
    };
    let value = value.to_str().map_err(|_| Outcome::malformed_header())?;
    match value.trim().split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => Ok(token.trim()),
        _ => Err(Outcome::missing()),
    }
}

/// A 200 whose body `write` puts in one buffer ([`answer::Json`]).
fn json_answer(
    mut res: actix_web::HttpResponseBuilder,
    write: impl FnOnce(&mut answer::Json),
) -> HttpResponse {
    let mut out = answer::Json::new();
    write(&mut out);
    res.insert_header(header::ContentType::json())
        .body(out.into_bytes())
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
    if let Some(quota) = &v.quota {
        res.insert_header((QUOTA_REMAINING.clone(), quota.to_string()));
    }
}

/// Check the request's bearer key against `requirements`: the one hot path
/// shared by `/me` and `/forward-auth` (same cache, limiter and counters).
async fn check_bearer(
    req: &HttpRequest,
    state: &AppState,
    requirements: &Requirements,
    call: &dyn crate::verify::DescribeCall,
) -> Result<Verified, Outcome> {
    let token = bearer(req).inspect_err(|outcome| {
        // Refused before the verifier saw it: count it here.
        state.verifier.metrics.count_refusal(outcome.code);
    })?;
    state
        .verifier
        .verify(&state.pool, token, requirements, call)
        .await
}

#[derive(Deserialize)]
pub struct MeQuery {
    environment: Option<String>,
    workspace: Option<String>,
}

/// Describe the key the request is authenticated with: the simple request a
/// user sends to check that a key works.
#[utoipa::path(
    get,
    path = "/api/v1/me",
    tag = "integrations",
    params(
        ("environment" = Option<String>, Query, description = "Refuse the key unless it is for this environment (live, test, dev)"),
        ("workspace" = Option<String>, Query, description = "Refuse the key unless it belongs to the workspace with this id (wsp_…); absent: any workspace"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The key is valid", body = openapi::KeyFacts,
            headers(("X-Keyward-Quota-Remaining" = Option<i64>, description = "What is left of the key's quota after this check (keys with a quota)"))),
        (status = 400, description = "An invalid parameter, or more than one Authorization header, or more than one X-Forwarded-For header from a trusted proxy for a key with an IP allowlist (REPEATED_HEADER)", body = openapi::ErrorBody),
        (status = 401, description = "Missing, malformed, unknown, revoked, inactive or expired key, or another environment", body = openapi::ErrorBody),
        (status = 403, description = "The key belongs to another workspace than `workspace` (WRONG_WORKSPACE), or has an IP allowlist the caller's address is not on (IP_NOT_ALLOWED; the TCP peer, or X-Forwarded-For from a proxy in KEYWARD_TRUSTED_PROXIES)", body = openapi::ErrorBody),
        (status = 429, description = "Rate limit exceeded (RATE_LIMITED), or the key's quota is used up (QUOTA_EXCEEDED); see Retry-After", body = openapi::ErrorBody),
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
        // A holder describing their own key: any workspace unless asked.
        workspace: match query.workspace.as_deref().map(str::trim) {
            Some(id) if !id.is_empty() => WorkspaceRequirement::Id(id.to_owned()),
            _ => WorkspaceRequirement::Any,
        },
        cost: None,
    };
    match check_bearer(&req, &state, &requirements, &calls::Direct(&req)).await {
        Ok(v) => {
            let mut res = HttpResponse::Ok();
            rate_headers(&mut res, &v);
            json_answer(res, |out| answer::key_facts(out, &v))
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

/// A key to check, and what it must allow. A member given twice is
/// refused (400), like a repeated requirement header.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"key": "sk_live_…", "workspace": "wsp_01JD3X0Z8Q2W7Y4N6P9R0T1V3B", "permission": "data:read"}))]
pub struct VerifyRequest {
    /// The full key as the caller received it.
    key: String,
    /// The environment the key must be for (live, test, dev).
    environment: Option<String>,
    /// A permission the key must have.
    permission: Option<String>,
    /// A resource the key must be allowed.
    resource: Option<String>,
    /// The id of the workspace whose keys the calling service accepts
    /// (wsp_…); a key of any other workspace is `WRONG_WORKSPACE`. Absent
    /// or blank: only the installation's first workspace (the one made at
    /// setup). Required for the services of every other workspace.
    workspace: Option<String>,
    /// The method of the request the key came with, for the key's request
    /// log (optional).
    method: Option<String>,
    /// The path of that request, for the request log (optional; a query
    /// string is cut off and never recorded).
    path: Option<String>,
    /// The address of the client that sent the key (an IP address): for
    /// the request log, and checked against the key's IP allowlist. A key
    /// with an allowlist is refused (`IP_NOT_ALLOWED`) when it is absent
    /// or not an IP address, as when it is not on the list.
    ip: Option<String>,
    /// How many uses of the key's quota this check spends (a whole number
    /// from 0 to 1,000,000; absent: 1; 0 checks without spending). Keys
    /// without a quota ignore it.
    cost: Option<i64>,
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
        (status = 413, description = "The body is larger than 16 KiB", body = openapi::ErrorBody),
        (status = 415, description = "The body is not sent as application/json", body = openapi::ErrorBody),
        (status = 503, description = "The database is unreachable", body = openapi::ErrorBody),
    )
)]
#[post("/keys/verify")]
pub async fn verify(state: web::Data<AppState>, body: web::Json<VerifyRequest>) -> HttpResponse {
    let body = body.into_inner();
    // The service states the call it checks; only what it states is
    // recorded (its own address is not the key holder's).
    let call = crate::verify::CallInfo {
        ip: body
            .ip
            .as_deref()
            .and_then(crate::verify::CallInfo::clean_ip),
        method: body
            .method
            .as_deref()
            .and_then(crate::verify::CallInfo::clean_method),
        path: body
            .path
            .as_deref()
            .and_then(crate::verify::CallInfo::clean_path),
        user_agent: None,
    };
    if let Some(refusal) = body.cost.and_then(cost_refusal) {
        return json_error(StatusCode::BAD_REQUEST, "BAD_REQUEST", &refusal.message);
    }
    let requirements = Requirements {
        environment: body.environment,
        permission: body.permission,
        resource: body.resource,
        workspace: WorkspaceRequirement::named(body.workspace.as_deref()),
        cost: body.cost,
    };
    match state
        .verifier
        .verify(&state.pool, body.key.trim(), &requirements, &call)
        .await
    {
        Ok(v) => {
            let mut res = HttpResponse::Ok();
            rate_headers(&mut res, &v);
            json_answer(res, |out| {
                answer::verdict(
                    out,
                    &answer::Verdict {
                        valid: true,
                        code: crate::domain::chart::VALID,
                        message: "The key is valid.",
                        status: None,
                        retry_after: None,
                        key: Some(&v),
                    },
                )
            })
        }
        Err(outcome) => json_answer(HttpResponse::Ok(), |out| {
            answer::verdict(
                out,
                &answer::Verdict {
                    valid: false,
                    code: outcome.code.as_str(),
                    message: &outcome.message,
                    status: Some(outcome.code.status().as_u16()),
                    retry_after: outcome.retry_after_secs,
                    key: outcome.identified.as_ref(),
                },
            )
        }),
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

// Header names as statics: looking a custom name up by `&str` parses and
// allocates it on every request.
static PERMISSION: HeaderName = HeaderName::from_static("x-keyward-permission");
static ENVIRONMENT: HeaderName = HeaderName::from_static("x-keyward-environment");
static RESOURCE: HeaderName = HeaderName::from_static("x-keyward-resource");
static WORKSPACE: HeaderName = HeaderName::from_static("x-keyward-workspace");
static KEY_ID: HeaderName = HeaderName::from_static("x-keyward-key-id");
static WORKSPACE_ID: HeaderName = HeaderName::from_static("x-keyward-workspace-id");
static PERMISSIONS: HeaderName = HeaderName::from_static("x-keyward-permissions");
static OWNER: HeaderName = HeaderName::from_static("x-keyward-owner");
static COST: HeaderName = HeaderName::from_static("x-keyward-cost");
static QUOTA_REMAINING: HeaderName = HeaderName::from_static("x-keyward-quota-remaining");

/// The refusal of a cost outside 0 ..= 1,000,000.
fn cost_refusal(cost: i64) -> Option<Outcome> {
    let max = crate::domain::quota::MAX_COST;
    (!(0..=max).contains(&cost)).then(|| {
        Outcome::new(
            Code::BadRequest,
            format!("A check's cost is a whole number from 0 to {max}; {cost} is not."),
        )
    })
}

/// The cost a gateway states in `X-Keyward-Cost` (absent or blank: 1).
fn gateway_cost(req: &HttpRequest) -> Result<Option<i64>, Outcome> {
    let Some(text) = required(req, &COST)? else {
        return Ok(None);
    };
    // Digits only: `+5` or `5.0` is a gateway's mistake, not a cost.
    let digits = text.bytes().all(|b| b.is_ascii_digit()) && text.len() <= 7;
    let cost = (if digits {
        text.parse::<i64>().ok()
    } else {
        None
    })
    .ok_or_else(|| {
        Outcome::new(
            Code::BadRequest,
            format!(
                "X-Keyward-Cost is a whole number from 0 to {}, not \"{}\".",
                crate::domain::quota::MAX_COST,
                text.chars().take(40).collect::<String>()
            ),
        )
    })?;
    match cost_refusal(cost) {
        Some(refusal) => Err(refusal),
        None => Ok(Some(cost)),
    }
}

/// The one value of a header that must come at most once. Sent twice (any
/// values, an empty first one included) it is refused: proxies differ on
/// which of two values counts (nginx and actix read the first, gateways
/// that append a requirement add a second), so a client could void a
/// requirement or choose the key. Counts without allocating.
fn single<'a>(
    req: &'a HttpRequest,
    name: &HeaderName,
) -> Result<Option<&'a header::HeaderValue>, Outcome> {
    let mut values = req.headers().get_all(name);
    let first = values.next();
    if values.next().is_some() {
        return Err(Outcome::repeated_header(header_label(name)));
    }
    Ok(first)
}

/// How a header is named in messages and the docs.
fn header_label(name: &HeaderName) -> &'static str {
    match name.as_str() {
        "authorization" => "Authorization",
        "x-keyward-permission" => "X-Keyward-Permission",
        "x-keyward-environment" => "X-Keyward-Environment",
        "x-keyward-resource" => "X-Keyward-Resource",
        "x-keyward-workspace" => "X-Keyward-Workspace",
        "x-keyward-cost" => "X-Keyward-Cost",
        _ => "such a",
    }
}

/// What a gateway requires of the key, from an `X-Keyward-…` request
/// header: absent or blank means no requirement; repeated is refused.
/// Resource identifiers may be non-ASCII, so the raw bytes are read as
/// UTF-8.
fn required(req: &HttpRequest, name: &HeaderName) -> Result<Option<String>, Outcome> {
    let Some(value) = single(req, name)? else {
        return Ok(None);
    };
    let text = String::from_utf8_lossy(value.as_bytes());
    let text = text.trim();
    Ok((!text.is_empty()).then(|| text.to_owned()))
}

/// The requirements a gateway states in `X-Keyward-…` headers.
fn gateway_requirements(req: &HttpRequest) -> Result<Requirements, Outcome> {
    Ok(Requirements {
        environment: required(req, &ENVIRONMENT)?,
        permission: required(req, &PERMISSION)?,
        resource: required(req, &RESOURCE)?,
        workspace: WorkspaceRequirement::named(required(req, &WORKSPACE)?.as_deref()),
        cost: gateway_cost(req)?,
    })
}

/// Forward authentication for gateways (nginx `auth_request`, Caddy
/// `forward_auth`, Traefik `ForwardAuth`, Envoy `ext_authz`): the gateway
/// sends the client's `Authorization` header and what it requires in
/// `X-Keyward-Workspace`, `X-Keyward-Permission`, `X-Keyward-Environment`
/// and `X-Keyward-Resource` (each at most once, else 400). A valid key is
/// 200 with the key's identity in response headers for the gateway to pass
/// upstream; a refusal is `/me`'s 401 / 403 / 429 / 503, plus the JSON
/// body repeated in `X-Keyward-Error` for gateways (nginx) that drop the
/// body of the auth answer.
pub async fn forward_auth(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let requirements = match gateway_requirements(&req) {
        Ok(requirements) => requirements,
        Err(outcome) => {
            state.verifier.metrics.count_refusal(outcome.code);
            return forward_auth_refusal(&outcome);
        }
    };
    match check_bearer(&req, &state, &requirements, &calls::Gateway(&req)).await {
        Ok(v) => {
            let key = &v.record;
            let mut res = HttpResponse::Ok();
            // Every identity header on every 200, empty when it does not
            // apply (no owner for a workspace key): gateways that copy
            // headers copy only those present, so a missing one would let
            // the client's own value through (or, in Caddy, a literal
            // placeholder).
            let owner = match (key.owner_id(), key.owner_email()) {
                (Some(_), Some(email)) => header_safe(email),
                _ => String::new(),
            };
            // A gateway caches nothing of a key check.
            res.insert_header((header::CACHE_CONTROL, "no-store"))
                .insert_header((KEY_ID.clone(), header_safe(key.id())))
                .insert_header((WORKSPACE_ID.clone(), header_safe(key.workspace_id())))
                .insert_header((
                    PERMISSIONS.clone(),
                    key.permissions()
                        .iter()
                        .map(header_safe)
                        .collect::<Vec<_>>()
                        .join(","),
                ))
                .insert_header((OWNER.clone(), owner));
            rate_headers(&mut res, &v);
            // Always present, for the same reason: empty without a quota.
            if v.quota.is_none() {
                res.insert_header((QUOTA_REMAINING.clone(), ""));
            }
            res.finish()
        }
        Err(outcome) => forward_auth_refusal(&outcome),
    }
}

/// A refusal of forward-auth: `/me`'s status, headers and body, with the
/// body repeated in `X-Keyward-Error`.
fn forward_auth_refusal(outcome: &Outcome) -> HttpResponse {
    let body = error_body(outcome);
    failure_builder(outcome)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("X-Keyward-Error", ascii_json(&body)))
        .json(body)
}

/// Forward authentication for gateways (nginx `auth_request`, Caddy
/// `forward_auth`, Traefik `ForwardAuth`, Envoy `ext_authz`). Any method and
/// any path below it are accepted; requirements come in
/// `X-Keyward-Workspace`, `X-Keyward-Permission`, `X-Keyward-Environment`
/// and `X-Keyward-Resource`, each at most once. A valid key answers 200 with
/// `X-Keyward-Key-Id`, `X-Keyward-Workspace-Id`, `X-Keyward-Permissions` and
/// `X-Keyward-Owner`, always all four (empty when one does not apply).
#[utoipa::path(
    get,
    path = "/api/v1/forward-auth",
    tag = "integrations",
    params(
        ("X-Keyward-Workspace" = Option<String>, Header, description = "The id of the workspace whose keys this gateway accepts (wsp_…). Absent or empty: only the installation's first workspace (the one made at setup); required for every other workspace's services"),
        ("X-Keyward-Permission" = Option<String>, Header, description = "A permission the key must have"),
        ("X-Keyward-Environment" = Option<String>, Header, description = "The environment the key must be for"),
        ("X-Keyward-Resource" = Option<String>, Header, description = "A resource the key must be allowed"),
        ("X-Keyward-Cost" = Option<String>, Header, description = "How many uses of the key's quota this request spends: a whole number from 0 to 1000000 (absent: 1)", pattern = "^[0-9]{0,7}$"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The key is valid; its identity is in the response headers",
            headers(
                ("X-Keyward-Quota-Remaining" = String, description = "What is left of the key's quota after this request; empty for a key without a quota (always sent, so gateways that copy headers never pass the client's own)"),
                ("X-Keyward-Key-Id" = String, description = "The key's id"),
                ("X-Keyward-Workspace-Id" = String, description = "The key's workspace"),
                ("X-Keyward-Permissions" = String, description = "The key's permissions, comma-separated (empty: none)"),
                ("X-Keyward-Owner" = String, description = "The owner's email, percent-encoded; empty for a workspace key"),
            )),
        (status = 400, description = "A requirement header or Authorization sent more than once, or X-Forwarded-For more than once from a trusted gateway for a key with an IP allowlist (REPEATED_HEADER)", body = openapi::ErrorBody),
        (status = 401, description = "No valid key", body = openapi::ErrorBody),
        (status = 403, description = "The key lacks the permission or resource, belongs to another workspace (WRONG_WORKSPACE), or has an IP allowlist the client's address is not on (IP_NOT_ALLOWED; the gateway's X-Forwarded-For when the gateway is in KEYWARD_TRUSTED_PROXIES, else the gateway's own address)", body = openapi::ErrorBody),
        (status = 429, description = "Rate limit exceeded (RATE_LIMITED), or the key's quota has fewer uses left than X-Keyward-Cost (QUOTA_EXCEEDED; Retry-After when it refills)", body = openapi::ErrorBody),
        (status = 503, description = "The database is unreachable", body = openapi::ErrorBody),
    )
)]
#[expect(
    dead_code,
    reason = "describes forward_auth, which is routed for any method, in the OpenAPI document"
)]
fn forward_auth_doc() {}
