//! Workspace → Events (admins): the audit trail, filterable by action,
//! actor and key, with CSV export of the filtered view.

use super::export::{self as csv_export, cell};
use super::layout::Layout;
use super::{AppState, CurrentUser, render};
use crate::app::events::{self as uc, Query, Told};
use crate::db::events::Event;
use crate::domain::audit;
use crate::domain::policy::Action;
use crate::domain::time::Moment;
use crate::domain::useragent;
use crate::error::AppError;
use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, web};
use askama::Template;
use serde::Deserialize;

/// Every action the application records, offered in the filter.
pub use crate::domain::audit::ACTIONS;

/// 25 events a page: with one short entry each, about two screens.
const PAGE: i64 = 25;

/// The Events page's filters (also those of the management API's events).
#[derive(Deserialize, Default, Clone)]
pub struct EventsQuery {
    #[serde(default)]
    pub action: String,
    #[serde(default)]
    pub actor: String,
    #[serde(default)]
    pub key: String,
    /// The page cursor: the id of the last event of the previous page.
    pub before: Option<String>,
}

impl EventsQuery {
    /// The use case's query.
    pub fn query(&self) -> Query {
        Query {
            action: self.action.clone(),
            actor: self.actor.clone(),
            key: self.key.clone(),
        }
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
    events: Vec<EventView>,
    actions: Vec<&'static str>,
    action: String,
    actor: String,
    key: String,
    params: String,
    next_before: Option<String>,
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
    let query = query.into_inner();
    let first_page = query.before.is_none();
    let (told, next_before) = uc::page(
        &state,
        &user.ctx(),
        &query.query(),
        query.before.clone(),
        PAGE,
    )
    .await?;
    let now = crate::db::now();
    let found = told.into_iter().map(|t| view(t, now, true)).collect();
    let page = EventsPage {
        layout: Layout::new(&session, &user, "Events", "events")?,
        events: found,
        actions: ACTIONS.to_vec(),
        params: query.params(),
        action: query.action.trim().to_owned(),
        actor: query.actor.trim().to_owned(),
        key: query.key.trim().to_owned(),
        next_before,
        first_page,
    };
    render(&page, StatusCode::OK)
}

/// One event as people read it: a sentence, when (UTC), from which IP and
/// client; the recorded fields one click away.
pub struct EventView {
    pub sentence: String,
    pub time: Moment,
    pub ip: Option<String>,
    /// The client in short, e.g. "Chrome 156 on Linux".
    pub client: Option<String>,
    /// Everything recorded, as labelled pairs: actor, action, target, the
    /// action's own fields, the whole User-Agent.
    pub fields: Vec<(String, String)>,
    /// The target's id, for the "all events of this key or user" link
    /// (on the Events page only).
    pub target_link: Option<String>,
}

/// Events of a workspace as people read them (a key's page shows its
/// history so).
pub fn views(
    c: &mut crate::db::DbConn,
    workspace_id: &str,
    found: Vec<Event>,
    link_targets: bool,
) -> Result<Vec<EventView>, AppError> {
    let now = crate::db::now();
    Ok(uc::tell(c, workspace_id, found)?
        .into_iter()
        .map(|t| view(t, now, link_targets))
        .collect())
}

fn view(told: Told, now: chrono::NaiveDateTime, link_targets: bool) -> EventView {
    let Told { event: e, sentence } = told;
    let details = e.details_json();
    let mut fields = vec![
        (
            "Time (UTC)".to_owned(),
            e.created_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        ),
        ("Actor".to_owned(), e.actor_label.clone()),
        ("Action".to_owned(), e.action.clone()),
    ];
    if let Some(t) = &e.target_type {
        let what = match t.as_str() {
            "api_key" => "Key",
            "user" => "User",
            "workspace" => "Workspace",
            "permission" => "Permission",
            "service_account" => "Service account",
            _ => "Target",
        };
        if let Some(l) = &e.target_label {
            fields.push((what.to_owned(), l.clone()));
        }
        if let Some(id) = &e.target_id {
            fields.push((format!("{what} ID"), id.clone()));
        }
    }
    fields.extend(audit::fields(&details));
    if let Some(ip) = &e.ip {
        fields.push(("IP address".to_owned(), ip.clone()));
    }
    if let Some(ua) = &e.user_agent {
        fields.push(("User-Agent".to_owned(), ua.clone()));
    }
    EventView {
        sentence,
        time: Moment::new(e.created_at, now),
        client: e.user_agent.as_deref().and_then(useragent::short),
        ip: e.ip,
        fields,
        target_link: e.target_id.filter(|_| link_targets),
    }
}

const EXPORT_HEADER: &[&str] = &[
    "time_utc",
    "actor",
    "action",
    "target_type",
    "target_id",
    "target",
    "ip",
    "user_agent",
    "details",
];

fn export_record(e: &Event) -> Vec<String> {
    vec![
        crate::domain::time::rfc3339(e.created_at),
        cell(&e.actor_label),
        cell(&e.action),
        cell(e.target_type.as_deref().unwrap_or("")),
        cell(e.target_id.as_deref().unwrap_or("")),
        cell(e.target_label.as_deref().unwrap_or("")),
        cell(e.ip.as_deref().unwrap_or("")),
        cell(e.user_agent.as_deref().unwrap_or("")),
        cell(&e.details_json().to_string()),
    ]
}

/// The filtered audit trail as CSV, newest first, however long: streamed in
/// chunks read by event id.
#[get("/workspace/events.csv")]
pub async fn export(
    state: web::Data<AppState>,
    user: CurrentUser,
    query: web::Query<EventsQuery>,
) -> Result<HttpResponse, AppError> {
    let ctx = user.ctx();
    ctx.authorize(Action::ViewEvents)?;
    let filter = query.query().filter()?;
    let next = move |before: Option<i64>| {
        let (state, ctx, filter) = (state.clone(), ctx.clone(), filter.clone());
        async move {
            let rows = uc::export_chunk(&state, &ctx, filter, before, csv_export::CHUNK).await?;
            let more = (rows.len() as i64 == csv_export::CHUNK).then(|| rows.last().map(|e| e.seq));
            Ok((rows.iter().map(export_record).collect(), more))
        }
    };
    csv_export::csv_download("keyward-events", EXPORT_HEADER, None, next).await
}
