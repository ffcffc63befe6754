//! Workspace → Events (admins): the audit trail, filterable by action,
//! actor and key, with CSV export of the filtered view.

use super::layout::Layout;
use super::{AppState, CurrentUser, authorize, db, render};
use crate::db::events::{self, Event, Filter};
use crate::domain::policy::Action;
use crate::error::AppError;
use actix_session::Session;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, get, web};
use askama::Template;
use serde::Deserialize;

/// Every action the application records, offered in the filter.
pub const ACTIONS: [&str; 25] = [
    "login.succeeded",
    "login.failed",
    "logout",
    "workspace.setup",
    "user.added",
    "user.invite_renewed",
    "user.password_set",
    "user.password_changed",
    "user.role_changed",
    "user.removed",
    "key.created",
    "key.updated",
    "key.disabled",
    "key.enabled",
    "key.regenerated",
    "key.revoked",
    "key.deleted",
    "key.reviewed",
    "settings.api_keys_disabled",
    "settings.api_keys_enabled",
    "settings.changed",
    "permission.added",
    "permission.described",
    "permission.retired",
    "permission.restored",
];

const PAGE: i64 = 50;
const EXPORT_MAX: i64 = 100_000;

#[derive(Deserialize, Default, Clone)]
pub struct EventsQuery {
    #[serde(default)]
    action: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    key: String,
    before: Option<i64>,
}

impl EventsQuery {
    fn filter(&self) -> Result<Filter, AppError> {
        let action = self.action.trim();
        if !action.is_empty() && !ACTIONS.contains(&action) {
            return Err(AppError::BadRequest(format!(
                "Unknown action \"{action}\"."
            )));
        }
        let some = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        Ok(Filter {
            action: some(action),
            actor: some(&self.actor),
            target: some(&self.key),
        })
    }

    /// The filter as URL parameters (without the cursor).
    fn params(&self) -> String {
        let pairs: Vec<(&str, &str)> = [
            ("action", self.action.trim()),
            ("actor", self.actor.trim()),
            ("key", self.key.trim()),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .collect();
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    }
}

#[derive(Template)]
#[template(path = "events/list.html")]
struct EventsPage {
    layout: Layout,
    events: Vec<Event>,
    actions: Vec<&'static str>,
    action: String,
    actor: String,
    key: String,
    params: String,
    next_before: Option<i64>,
    first_page: bool,
}

impl EventsPage {
    fn filtered(&self) -> bool {
        !self.params.is_empty()
    }
}

#[get("/workspace/events")]
pub async fn list(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    query: web::Query<EventsQuery>,
) -> Result<HttpResponse, AppError> {
    authorize(&user, Action::ViewEvents)?;
    let query = query.into_inner();
    let filter = query.filter()?;
    let ws = user.actor.workspace_id.clone();
    let before = query.before;
    let mut found = db(&state, move |c| {
        Ok(events::search(c, &ws, &filter, before, PAGE + 1)?)
    })
    .await?;
    let next_before = if found.len() as i64 > PAGE {
        found.truncate(PAGE as usize);
        found.last().map(|e| e.id)
    } else {
        None
    };
    let page = EventsPage {
        layout: Layout::new(&session, &user, "Events", "events")?,
        events: found,
        actions: ACTIONS.to_vec(),
        params: query.params(),
        action: query.action.trim().to_owned(),
        actor: query.actor.trim().to_owned(),
        key: query.key.trim().to_owned(),
        next_before,
        first_page: before.is_none(),
    };
    render(&page, StatusCode::OK)
}

/// Neutralise spreadsheet formulas (CSV injection): a cell starting with
/// `=`, `+`, `-`, `@`, tab or carriage return is prefixed with `'`.
fn cell(s: &str) -> String {
    match s.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{s}"),
        _ => s.to_owned(),
    }
}

/// The filtered audit trail as CSV, newest first.
#[get("/workspace/events.csv")]
pub async fn export(
    state: web::Data<AppState>,
    user: CurrentUser,
    query: web::Query<EventsQuery>,
) -> Result<HttpResponse, AppError> {
    authorize(&user, Action::ViewEvents)?;
    let filter = query.filter()?;
    let ws = user.actor.workspace_id.clone();
    let body = db(&state, move |c| {
        let rows = events::search(c, &ws, &filter, None, EXPORT_MAX)?;
        let mut out = csv::Writer::from_writer(Vec::new());
        let io = |e: csv::Error| AppError::Internal(e.to_string());
        out.write_record([
            "time_utc",
            "actor",
            "action",
            "target_type",
            "target_id",
            "target",
            "ip",
            "user_agent",
            "details",
        ])
        .map_err(io)?;
        for e in rows {
            out.write_record([
                e.created_at
                    .and_utc()
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                cell(&e.actor_label),
                cell(&e.action),
                cell(e.target_type.as_deref().unwrap_or("")),
                cell(e.target_id.as_deref().unwrap_or("")),
                cell(e.target_label.as_deref().unwrap_or("")),
                cell(e.ip.as_deref().unwrap_or("")),
                cell(e.user_agent.as_deref().unwrap_or("")),
                cell(&e.details),
            ])
            .map_err(io)?;
        }
        out.into_inner()
            .map_err(|e| AppError::Internal(e.to_string()))
    })
    .await?;
    let name = format!(
        "keyward-events-{}.csv",
        chrono::Utc::now().format("%Y%m%d-%H%M%S")
    );
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        ))
        .body(body))
}
