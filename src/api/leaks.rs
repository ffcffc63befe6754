//! Leak reports over HTTP (issue 25): GitHub's secret scanning partner
//! alerts (`POST /api/v1/leaks/github`) and the public report endpoint
//! (`POST /api/v1/leaks/report`). Both are unauthenticated by a key: the
//! first is authenticated by GitHub's signature, the second needs none
//! (see `app::leaks`).

use super::json_error;
use crate::app::leaks::{self, AlertError, ReportError};
use crate::state::AppState;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

/// Register the leak routes (inside the `/api/v1` scope).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/leaks/github")
            .app_data(web::PayloadConfig::new(1024 * 1024))
            .post(github),
    )
    .service(web::resource("/leaks/report").post(report));
}

fn header_text<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

fn app_failure(e: &crate::app::Error) -> HttpResponse {
    tracing::error!(error = %e, "leak report failed");
    json_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "UNAVAILABLE",
        "The report could not be handled now. Try again later.",
    )
}

/// GitHub's secret scanning partner alert (for GitHub only). The body is
/// GitHub's JSON array of matches; `Github-Public-Key-Identifier` names the
/// GitHub key (from `KEYWARD_GITHUB_KEYS_FILE`) whose ECDSA P-256 SHA-256
/// signature of the raw body is `Github-Public-Key-Signature` (base64 DER).
/// Each live key found is revoked or reported as its workspace chose; the
/// answer is GitHub's feedback format, one label per match.
#[utoipa::path(
    post,
    path = "/api/v1/leaks/github",
    tag = "leaks",
    request_body = Vec<crate::app::leaks::GithubMatch>,
    security(("githubSignature" = [])),
    responses(
        (status = 200, description = "GitHub's feedback: true_positive for each live key, false_positive otherwise", body = Vec<crate::app::leaks::Feedback>),
        (status = 400, description = "Signed, but not GitHub's payload", body = super::openapi::ErrorBody),
        (status = 401, description = "No, a wrong or an unknown signature (`BAD_SIGNATURE`): nothing was read or changed", body = super::openapi::ErrorBody),
        (status = 503, description = "The database is unreachable", body = super::openapi::ErrorBody),
    )
)]
pub async fn github(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let key_id = header_text(&req, "github-public-key-identifier");
    let signature = header_text(&req, "github-public-key-signature");
    match leaks::github_alert(&state, key_id, signature, &body).await {
        Ok(feedback) => HttpResponse::Ok().json(feedback),
        Err(AlertError::BadSignature(why)) => {
            tracing::warn!(reason = %why, "refused a GitHub secret scanning alert");
            json_error(StatusCode::UNAUTHORIZED, "BAD_SIGNATURE", &why)
        }
        Err(AlertError::BadPayload(why)) => {
            json_error(StatusCode::BAD_REQUEST, "BAD_REQUEST", &why)
        }
        Err(AlertError::App(e)) => app_failure(&e),
    }
}

/// A public leak report: `{"keys": ["sk_live_…"], "url": "https://…"}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"keys": ["sk_live_…"], "url": "https://github.com/octo/app/blob/0a1b2c/.env"}))]
pub struct ReportBody {
    /// Up to 20 whole keys; a string that is not a well-formed key is ignored.
    #[serde(default)]
    #[schema(max_items = 20)]
    pub keys: Vec<String>,
    /// Where they were found (http or https; optional).
    #[serde(default)]
    pub url: Option<String>,
}

/// The one answer to every accepted public report.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ReportReceived {
    /// Always `received`.
    pub status: String,
    pub message: String,
}

/// What every accepted public report is answered, whatever its keys were.
pub const REPORT_RECEIVED: &str = "Thank you. If any of these is a live key, its workspace has been told and the key is handled as its owners chose.";

/// Report leaked keys: for anyone who finds a key in public, no key or
/// account needed. Always answers 202 with the same body, whether or not
/// any key existed (no oracle); each live key is revoked or reported as its
/// workspace chose. At most 10 reports per client address in 10 minutes.
#[utoipa::path(
    post,
    path = "/api/v1/leaks/report",
    tag = "leaks",
    request_body = ReportBody,
    responses(
        (status = 202, description = "Received (the same answer whatever the keys were)", body = ReportReceived),
        (status = 400, description = "Not JSON of this shape, or more than 20 keys", body = super::openapi::ErrorBody),
        (status = 413, description = "The body is larger than 16 KiB", body = super::openapi::ErrorBody),
        (status = 415, description = "The body is not sent as application/json", body = super::openapi::ErrorBody),
        (status = 429, description = "Too many reports from this address; see Retry-After", body = super::openapi::ErrorBody),
        (status = 503, description = "The database is unreachable", body = super::openapi::ErrorBody),
    )
)]
pub async fn report(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<ReportBody>,
) -> HttpResponse {
    let body = body.into_inner();
    let keys = body.keys;
    let ip = crate::http::client_ip(&req);
    match leaks::public_report(&state, ip.as_deref(), keys, body.url.as_deref()).await {
        Ok(()) => HttpResponse::Accepted()
            .json(json!({ "status": "received", "message": REPORT_RECEIVED })),
        Err(e @ ReportError::TooMany(wait)) => {
            let mut res = json_error(
                StatusCode::TOO_MANY_REQUESTS,
                "RATE_LIMITED",
                &e.to_string(),
            );
            if let Ok(v) = header::HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
                res.headers_mut().insert(header::RETRY_AFTER, v);
            }
            res
        }
        Err(e @ ReportError::TooManyKeys) => {
            json_error(StatusCode::BAD_REQUEST, "TOO_MANY_KEYS", &e.to_string())
        }
        Err(ReportError::App(e)) => app_failure(&e),
    }
}
