//! Workspace → Events (admins): the audit trail, filterable by action,
//! actor and key, with CSV export of the filtered view.

use super::layout::Layout;
use super::{AppState, CurrentUser, authorize, db, render};
use crate::db::events::{self, Event, Filter};
use crate::domain::audit::{self, Facts};
use crate::domain::policy::Action;
use crate::domain::time::Moment;
use crate::domain::useragent;
use crate::error::AppError;
use actix_session::Session;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, get, web};
use askama::Template;
use serde::Deserialize;

/// Every action the application records, offered in the filter.
pub use crate::domain::audit::ACTIONS;

/// 25 events a page: with one short entry each, about two screens.
const PAGE: i64 = 25;

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
    events: Vec<EventView>,
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
    let (found, next_before) = db(&state, move |c| {
        let mut found = events::search(c, &ws, &filter, before, PAGE + 1)?;
        let next_before = if found.len() as i64 > PAGE {
            found.truncate(PAGE as usize);
            found.last().map(|e| e.id)
        } else {
            None
        };
        Ok((views(c, &ws, found, true)?, next_before))
    })
    .await?;
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

/// Turn events of a workspace into [`EventView`]s: looks up the actors'
/// names and the keys' kinds (both scoped to the workspace) in two queries.
pub fn views(
    c: &mut crate::db::DbConn,
    workspace_id: &str,
    found: Vec<Event>,
    link_targets: bool,
) -> Result<Vec<EventView>, AppError> {
    let mut actor_ids: Vec<String> = found.iter().filter_map(|e| e.actor_id.clone()).collect();
    actor_ids.sort();
    actor_ids.dedup();
    let mut key_ids: Vec<String> = found
        .iter()
        .filter(|e| e.target_type.as_deref() == Some("api_key"))
        .filter_map(|e| e.target_id.clone())
        .collect();
    key_ids.sort();
    key_ids.dedup();
    let names: std::collections::HashMap<String, String> =
        crate::db::users::names(c, workspace_id, &actor_ids)?
            .into_iter()
            .collect();
    let kinds: std::collections::HashMap<String, String> =
        crate::db::keys::kinds(c, workspace_id, &key_ids)?
            .into_iter()
            .collect();
    let now = crate::db::now();
    Ok(found
        .into_iter()
        .map(|e| view(e, &names, &kinds, now, link_targets))
        .collect())
}

fn view(
    e: Event,
    names: &std::collections::HashMap<String, String>,
    kinds: &std::collections::HashMap<String, String>,
    now: chrono::NaiveDateTime,
    link_targets: bool,
) -> EventView {
    let details: serde_json::Value =
        serde_json::from_str(&e.details).unwrap_or(serde_json::Value::Null);
    let actor = e
        .actor_id
        .as_ref()
        .and_then(|id| names.get(id))
        .filter(|n| !n.trim().is_empty())
        .map_or(e.actor_label.as_str(), String::as_str);
    let key_kind = e
        .target_id
        .as_ref()
        .filter(|_| e.target_type.as_deref() == Some("api_key"))
        .and_then(|id| kinds.get(id))
        .map(String::as_str);
    let sentence = audit::sentence(&Facts {
        action: &e.action,
        actor,
        target: e.target_label.as_deref(),
        key_kind,
        details: &details,
    })
    .unwrap_or_else(|| format!("{actor}: {}", e.action));
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

/// Neutralise spreadsheet formulas (CSV injection): a cell starting with
/// `=`, `+`, `-`, `@`, tab or carriage return is prefixed with `'`.
fn cell(s: &str) -> String {
    match s.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{s}"),
        _ => s.to_owned(),
    }
}

/// Events read from the database per chunk of the CSV export.
const EXPORT_CHUNK: i64 = 1_000;

const EXPORT_HEADER: [&str; 9] = [
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

/// One chunk of the export as CSV text (with the header line first).
fn csv_chunk(rows: &[Event], header: bool) -> Result<web::Bytes, AppError> {
    let io = |e: csv::Error| AppError::Internal(e.to_string());
    let mut out = csv::Writer::from_writer(Vec::with_capacity(rows.len() * 200 + 100));
    if header {
        out.write_record(EXPORT_HEADER).map_err(io)?;
    }
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
        .map(web::Bytes::from)
        .map_err(|e| AppError::Internal(e.to_string()))
}

/// Where a streaming export stands: the next chunk starts before `before`.
struct ExportCursor {
    state: web::Data<AppState>,
    workspace_id: String,
    filter: Filter,
    before: Option<i64>,
}

impl ExportCursor {
    /// The next chunk of events, and whether more may follow.
    async fn next_rows(&mut self) -> Result<(Vec<Event>, bool), AppError> {
        let (ws, filter, before) = (self.workspace_id.clone(), self.filter.clone(), self.before);
        let rows = db(&self.state, move |c| {
            Ok(events::search(c, &ws, &filter, before, EXPORT_CHUNK)?)
        })
        .await?;
        self.before = rows.last().map(|e| e.id);
        let more = rows.len() as i64 == EXPORT_CHUNK;
        Ok((rows, more))
    }
}

/// The filtered audit trail as CSV, newest first, however long: streamed in
/// chunks read by event id (a keyset cursor), so memory stays flat and
/// events recorded meanwhile neither shift nor repeat rows.
#[get("/workspace/events.csv")]
pub async fn export(
    state: web::Data<AppState>,
    user: CurrentUser,
    query: web::Query<EventsQuery>,
) -> Result<HttpResponse, AppError> {
    authorize(&user, Action::ViewEvents)?;
    let mut cursor = ExportCursor {
        state,
        workspace_id: user.actor.workspace_id.clone(),
        filter: query.filter()?,
        before: None,
    };
    // The first chunk is read before answering, so an unreachable database
    // is a clear 503 rather than a download that breaks off.
    let (rows, more) = cursor.next_rows().await?;
    let first = csv_chunk(&rows, true)?;
    let rest = futures_util::stream::try_unfold((cursor, more), |(mut cursor, more)| async move {
        if !more {
            return Ok(None);
        }
        let (rows, more) = cursor.next_rows().await.inspect_err(|e| {
            tracing::error!(error = %e, "events export broke off");
        })?;
        if rows.is_empty() {
            return Ok(None);
        }
        Ok::<_, AppError>(Some((csv_chunk(&rows, false)?, (cursor, more))))
    });
    let body = futures_util::StreamExt::chain(
        futures_util::stream::once(async move { Ok::<_, AppError>(first) }),
        rest,
    );
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
        .streaming(body))
}
