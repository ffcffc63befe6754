//! Health checks, static assets and the home redirect.

use super::{AppState, CurrentUser, db};
use crate::domain::Role;
use crate::error::AppError;
use actix_web::http::header;
use actix_web::{HttpResponse, get, route, web};

/// Liveness: the process is up.
#[route("/healthz", method = "GET", method = "HEAD")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok")
}

/// Readiness: the database answers and its schema is up to date. When not
/// ready, a small JSON body says why (never connection details).
#[route("/readyz", method = "GET", method = "HEAD")]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let checked = db(&state, |c| {
        crate::db::ping(c)?;
        Ok(crate::db::has_pending_migrations(c)?)
    })
    .await;
    let (reason, message) = match checked {
        Ok(false) => {
            return HttpResponse::Ok().json(serde_json::json!({ "status": "ready" }));
        }
        Ok(true) => {
            tracing::warn!("readiness check failed: database migrations are pending");
            (
                "migrations_pending",
                "The database schema is older than this keyward: run `keyward migrate`.",
            )
        }
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            ("database_unreachable", "The database cannot be reached.")
        }
    };
    HttpResponse::ServiceUnavailable().json(serde_json::json!({
        "status": "not_ready",
        "reason": reason,
        "message": message,
    }))
}

/// Static assets, compiled into the binary so it runs from any directory.
#[get("/static/{file}")]
pub async fn static_file(file: web::Path<String>) -> Result<HttpResponse, AppError> {
    let (body, content_type): (&'static [u8], &str) = match file.as_str() {
        "app.css" => (
            include_bytes!("../../static/app.css"),
            "text/css; charset=utf-8",
        ),
        "app.js" => (
            include_bytes!("../../static/app.js"),
            "text/javascript; charset=utf-8",
        ),
        "htmx.min.js" => (
            include_bytes!("../../static/vendor/htmx-2.0.11/htmx.min.js"),
            "text/javascript; charset=utf-8",
        ),
        "docs.js" => (
            include_bytes!("../../static/docs.js"),
            "text/javascript; charset=utf-8",
        ),
        "swagger-ui-bundle.js" => (
            include_bytes!("../../static/vendor/swagger-ui-5.35.0/swagger-ui-bundle.js"),
            "text/javascript; charset=utf-8",
        ),
        "swagger-ui.css" => (
            include_bytes!("../../static/vendor/swagger-ui-5.35.0/swagger-ui.css"),
            "text/css; charset=utf-8",
        ),
        _ => return Err(AppError::NotFound),
    };
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(body))
}

/// Send each role to its main page.
#[get("/")]
pub async fn home(user: CurrentUser) -> HttpResponse {
    let target = match user.actor.role {
        Role::Admin => "/workspace/keys",
        Role::Normal => "/account/keys",
        Role::Operator => "/account",
    };
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, target))
        .finish()
}
