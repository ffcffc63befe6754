//! Health checks, static assets, the home redirect and pages that later
//! work fills in.

use super::layout::Layout;
use super::{AppState, CurrentUser, authorize, db};
use crate::db::events::Event;
use crate::domain::Role;
use crate::domain::policy::Action;
use crate::error::AppError;
use actix_session::Session;
use actix_web::http::header;
use actix_web::{HttpResponse, get, web};
use askama::Template;
use askama_web::WebTemplate;
use serde::Deserialize;

/// Liveness: the process is up.
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok")
}

/// Readiness: the database answers.
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    match db(&state, |c| Ok(crate::db::ping(c)?)).await {
        Ok(()) => HttpResponse::Ok().content_type("text/plain").body("ready"),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            HttpResponse::ServiceUnavailable()
                .content_type("text/plain")
                .body("database unavailable")
        }
    }
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

/// A page whose feature is not built yet.
#[derive(Template, WebTemplate)]
#[template(path = "coming_soon.html")]
pub struct ComingSoon {
    layout: Layout,
    heading: &'static str,
    text: &'static str,
}

#[get("/workspace/settings")]
pub async fn settings(session: Session, user: CurrentUser) -> Result<ComingSoon, AppError> {
    authorize(&user, Action::ManageSettings)?;
    Ok(ComingSoon {
        layout: Layout::new(&session, &user, "Settings", "settings")?,
        heading: "Workspace settings",
        text: "Workspace settings for API keys are coming soon.",
    })
}

/// Workspace → Events: the audit trail, newest first.
#[derive(Template, WebTemplate)]
#[template(path = "events/list.html")]
pub struct EventsPage {
    layout: Layout,
    events: Vec<Event>,
    next_before: Option<i64>,
}

#[derive(Deserialize)]
pub struct EventsQuery {
    before: Option<i64>,
}

const EVENTS_PAGE: i64 = 50;

#[get("/workspace/events")]
pub async fn events(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    query: web::Query<EventsQuery>,
) -> Result<EventsPage, AppError> {
    authorize(&user, Action::ViewEvents)?;
    let ws = user.actor.workspace_id.clone();
    let before = query.before;
    let mut events = db(&state, move |c| {
        Ok(crate::db::events::recent(c, &ws, before, EVENTS_PAGE + 1)?)
    })
    .await?;
    let next_before = if events.len() as i64 > EVENTS_PAGE {
        events.truncate(EVENTS_PAGE as usize);
        events.last().map(|e| e.id)
    } else {
        None
    };
    Ok(EventsPage {
        layout: Layout::new(&session, &user, "Events", "events")?,
        events,
        next_before,
    })
}
