//! A key's "Recent requests" page (its request log with filters and
//! paging), its CSV, "Still in use by", and ending a grace period now.

use super::{KeyTarget, safe_return};
use crate::app::keys::Act;
use crate::app::requests as uc;
use crate::db::keys::ApiKey;
use crate::db::requests::{Caller, RequestRow};
use crate::error::AppError;
use crate::web::layout::Layout;
use crate::web::session::{self, Flash};
use crate::web::{export, render};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

#[derive(Deserialize)]
pub struct LogQuery {
    outcome: Option<String>,
    ip: Option<String>,
    before: Option<i64>,
}

impl LogQuery {
    /// The filters as query parameters (without the page).
    fn params(&self) -> String {
        let mut p: Vec<(&str, &str)> = Vec::new();
        if let Some(o) = self.outcome.as_deref().filter(|o| !o.trim().is_empty()) {
            p.push(("outcome", o.trim()));
        }
        if let Some(i) = self.ip.as_deref().filter(|i| !i.trim().is_empty()) {
            p.push(("ip", i.trim()));
        }
        serde_urlencoded::to_string(p).unwrap_or_default()
    }
}

/// One recorded check, ready to show.
pub struct RequestView {
    pub at: String,
    pub at_iso: String,
    pub ip: String,
    pub method: String,
    pub path: String,
    pub outcome: String,
    pub client: String,
    pub previous: bool,
    pub one_in: i32,
}

fn view(r: &RequestRow) -> RequestView {
    RequestView {
        at: r.at.format("%Y-%m-%d %H:%M:%S").to_string(),
        at_iso: crate::domain::time::rfc3339(r.at),
        ip: r.ip.clone().unwrap_or_default(),
        method: r.method.clone().unwrap_or_default(),
        path: r.path.clone().unwrap_or_default(),
        outcome: r.outcome.clone(),
        client: r.client.clone().unwrap_or_default(),
        previous: r.secret == crate::verify::requests::Secret::Previous.as_str(),
        one_in: r.one_in,
    }
}

/// One caller of the last 24 hours, ready to show.
pub struct CallerView {
    pub ip: String,
    pub client: String,
    pub checks: i64,
    pub last: String,
    pub previous_checks: i64,
    pub last_previous: String,
}

fn caller_view(c: &Caller) -> CallerView {
    let fmt = |t: chrono::NaiveDateTime| t.format("%Y-%m-%d %H:%M").to_string();
    CallerView {
        ip: c.ip.clone().unwrap_or_else(|| "unknown".into()),
        client: c.client.clone().unwrap_or_else(|| "unknown".into()),
        checks: c.checks,
        last: fmt(c.last_at),
        previous_checks: c.previous_checks,
        last_previous: c.last_previous_at.map(fmt).unwrap_or_default(),
    }
}

/// "Still in use by", as the key page and the requests page show it.
pub struct CallersView {
    pub key_id: String,
    pub callers: Vec<CallerView>,
    /// While the previous secret is in its grace period: until when.
    pub grace_until: Option<String>,
    /// Callers still presenting the previous secret.
    pub on_previous: usize,
    pub may_end_grace: bool,
    /// Where to come back to after ending the grace period, URL-encoded.
    pub ret: String,
}

impl CallersView {
    /// `return_to`: the page showing it.
    pub fn new(c: &uc::Callers, return_to: &str) -> Self {
        CallersView {
            ret: crate::http::middleware::urlencode(return_to),
            key_id: c.key.id.clone(),
            callers: c.callers.iter().map(caller_view).collect(),
            grace_until: c
                .grace_until
                .map(|t| t.format("%Y-%m-%d %H:%M").to_string()),
            on_previous: c.on_previous().count(),
            may_end_grace: c.may_end_grace,
        }
    }
}

#[derive(Template)]
#[template(path = "keys/requests.html")]
struct RequestsPage {
    layout: Layout,
    key: ApiKey,
    rows: Vec<RequestView>,
    callers: CallersView,
    outcome: String,
    ip: String,
    params: String,
    outcomes: &'static [&'static str],
    first_page: bool,
    next_before: Option<i64>,
    sampled: bool,
    per_key: u32,
    days: u32,
    flush_secs: u64,
    log_on: bool,
}

impl RequestsPage {
    fn filtered(&self) -> bool {
        !self.params.is_empty()
    }
}

/// A key's recent requests with filters and paging, and who still uses it.
#[get("/keys/{id}/requests")]
pub async fn requests_page(
    target: KeyTarget,
    query: web::Query<LogQuery>,
) -> Result<HttpResponse, AppError> {
    let (call, key) = target.load(Act::View).await?;
    let ctx = call.ctx();
    let filter = uc::filter(query.outcome.as_deref(), query.ip.as_deref(), query.before)?;
    let page = uc::list(&call.state, &ctx, &key.id, filter, uc::PAGE_SIZE).await?;
    let callers = uc::callers(&call.state, &ctx, &key.id).await?;
    let log = &call.state.verifier.requests;
    let view = RequestsPage {
        layout: Layout::new(
            &call.session,
            &call.user,
            format!("Recent requests — {}", key.name),
            if key.is_personal() {
                "personal-keys"
            } else {
                "workspace-keys"
            },
        )?,
        rows: page.rows.iter().map(view).collect(),
        callers: CallersView::new(&callers, &format!("/keys/{}/requests", key.id)),
        outcome: query.outcome.clone().unwrap_or_default().trim().to_owned(),
        ip: query.ip.clone().unwrap_or_default().trim().to_owned(),
        params: query.params(),
        outcomes: &uc::OUTCOMES,
        first_page: query.before.is_none(),
        next_before: page.next,
        sampled: page.sampled,
        per_key: log.per_key,
        days: log.days,
        flush_secs: call.state.config.usage_flush_interval.as_secs().max(1),
        log_on: log.is_on(),
        key,
    };
    render(&view, StatusCode::OK)
}

const CSV_HEADER: &[&str] = &[
    "at_utc",
    "ip",
    "method",
    "path",
    "outcome",
    "client",
    "secret",
    "sampled_one_in",
];

/// A key's recorded checks (with the page's filters) as CSV, newest first.
#[get("/keys/{id}/requests.csv")]
pub async fn requests_csv(
    target: KeyTarget,
    query: web::Query<LogQuery>,
) -> Result<HttpResponse, AppError> {
    let (call, key) = target.load(Act::View).await?;
    let ctx = call.ctx();
    let filter = uc::filter(query.outcome.as_deref(), query.ip.as_deref(), None)?;
    let state = call.state.clone();
    let id = key.id.clone();
    let next = move |before: Option<i64>| {
        let (state, ctx, id) = (state.clone(), ctx.clone(), id.clone());
        let filter = crate::db::requests::Filter {
            before,
            ..filter.clone()
        };
        async move {
            let page = uc::list(&state, &ctx, &id, filter, export::CHUNK).await?;
            let rows = page
                .rows
                .iter()
                .map(|r| {
                    vec![
                        crate::domain::time::rfc3339(r.at),
                        r.ip.clone().unwrap_or_default(),
                        r.method.clone().unwrap_or_default(),
                        export::cell(r.path.as_deref().unwrap_or("")),
                        r.outcome.clone(),
                        export::cell(r.client.as_deref().unwrap_or("")),
                        r.secret.clone(),
                        r.one_in.to_string(),
                    ]
                })
                .collect();
            Ok((rows, page.next.map(Some)))
        }
    };
    export::csv_download(
        &format!("keyward-requests-{}", key.id),
        CSV_HEADER,
        None,
        next,
    )
    .await
}

#[derive(Template)]
#[template(path = "keys/end_grace.html")]
struct EndGraceConfirm {
    csrf: String,
    key: ApiKey,
    until: String,
    on_previous: usize,
    return_to: String,
}

#[derive(Deserialize)]
pub struct ReturnQuery {
    return_to: Option<String>,
}

/// The confirmation before ending a grace period.
#[get("/keys/{id}/end-grace")]
pub async fn end_grace_form(
    target: KeyTarget,
    query: web::Query<ReturnQuery>,
) -> Result<HttpResponse, AppError> {
    let (call, key) = target.load(Act::Manage).await?;
    let ctx = call.ctx();
    let (key, until) = uc::grace_to_end(&call.state, &ctx, &key.id).await?;
    let callers = uc::callers(&call.state, &ctx, &key.id).await?;
    let view = EndGraceConfirm {
        csrf: session::csrf_token(&call.session)?,
        return_to: safe_return(query.return_to.as_deref(), Some(&key)),
        until: until.format("%Y-%m-%d %H:%M").to_string(),
        on_previous: callers.on_previous().count(),
        key,
    };
    call.fragment_or_page("Confirm", "", &view, StatusCode::OK)
}

#[derive(Deserialize)]
pub struct ReturnForm {
    return_to: Option<String>,
}

/// End the grace period of a key's previous secret now.
#[post("/keys/{id}/end-grace")]
pub async fn end_grace(
    target: KeyTarget,
    form: web::Form<ReturnForm>,
) -> Result<HttpResponse, AppError> {
    let (call, key) = target.load(Act::Manage).await?;
    let key = uc::end_grace(&call.state, &call.ctx(), &key.id).await?;
    session::set_flash(
        &call.session,
        Flash::success(format!(
            "The previous secret of “{}” no longer works.",
            key.name
        )),
    )?;
    let back = safe_return(form.return_to.as_deref(), Some(&key));
    Ok(call.done(&back))
}
