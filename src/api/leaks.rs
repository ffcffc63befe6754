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

/// GitHub's secret scanning alert: verified, handled, answered with
/// GitHub's feedback (one label per match).
async fn github(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
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
#[derive(Debug, Deserialize)]
pub struct ReportBody {
    #[serde(default)]
    pub keys: Vec<serde_json::Value>,
    #[serde(default)]
    pub url: Option<String>,
}

/// What every accepted public report is answered, whatever its keys were.
pub const REPORT_RECEIVED: &str = "Thank you. If any of these is a live key, its workspace has been told and the key is handled as its owners chose.";

async fn report(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<ReportBody>,
) -> HttpResponse {
    let body = body.into_inner();
    // Anything that is not a string is as malformed as a wrong key: ignored.
    let keys: Vec<String> = body
        .keys
        .into_iter()
        .map(|k| k.as_str().map(str::to_owned).unwrap_or_default())
        .collect();
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
