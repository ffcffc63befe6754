//! The key lists: personal, workspace and "All keys", their POST searches
//! and the most used keys.

use super::{Call, EXPIRING_DAYS, ListKind, Row, hourly, row};
use crate::app::keys as uc;
use crate::db::keys::{self, Cursor};
use crate::db::workspaces;
use crate::domain::chart::Bar;
use crate::domain::keys::{self as dk, ValueQuery};

use crate::error::AppError;
use crate::web::layout::Layout;
use crate::web::session;
use crate::web::{db, is_htmx, render};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use askama::Template;
use chrono::NaiveDateTime;
use serde::Deserialize;

const PAGE_SIZE: i64 = 25;

/// A row of the "most used keys, last 24 h" table.
pub struct TopKey {
    pub id: String,
    pub name: String,
    pub valid: i64,
    pub rejected: i64,
    /// The key was deleted but is still being presented.
    pub deleted: bool,
}

/// The results part of a list page: what search swaps in.
#[derive(Template)]
#[template(path = "keys/results.html")]
pub struct Results {
    pub csrf: String,
    pub kind: ListKind,
    pub q: String,
    pub rows: Vec<Row>,
    pub next: Option<String>,
    pub first_page: bool,
    pub return_to: String,
    pub expiring: bool,
    /// How many keys the list holds, when it is not filtered: exact up to
    /// [`COUNT_CAP`], "10,000+" beyond.
    pub total: Option<i64>,
}

/// Lists count their keys up to this many.
const COUNT_CAP: i64 = 10_000;

impl Results {
    /// "1 key", "2,345 keys", "10,000+ keys".
    pub fn total_text(&self) -> Option<String> {
        let n = self.total?;
        let digits = n.min(COUNT_CAP).to_string();
        let mut grouped = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(c);
        }
        Some(match n {
            1 => "1 key".to_owned(),
            n if n > COUNT_CAP => format!("{grouped}+ keys"),
            _ => format!("{grouped} keys"),
        })
    }
}

impl Results {
    pub fn show_owner(&self) -> bool {
        self.kind == ListKind::All
    }

    pub fn base(&self) -> &'static str {
        self.kind.base()
    }

    pub fn view_param(&self) -> String {
        let mut out = String::new();
        if let Some(view) = self.kind.view() {
            out.push_str("&view=");
            out.push_str(view);
        }
        if self.expiring {
            out.push_str("&expiring=1");
        }
        out
    }

    pub fn q_param(&self) -> String {
        if self.q.is_empty() {
            String::new()
        } else {
            format!("&q={}", crate::http::middleware::urlencode(&self.q))
        }
    }

    /// `return_to` encoded for a query string.
    pub fn ret(&self) -> String {
        crate::http::middleware::urlencode(&self.return_to)
    }

    pub fn any_revocable(&self) -> bool {
        self.rows.iter().any(|r| r.can_revoke)
    }
}

#[derive(Template)]
#[template(path = "keys/list.html")]
struct ListPage {
    layout: Layout,
    kind: ListKind,
    results: Results,
    api_keys_off: bool,
    can_create: bool,
    /// Own keys that expire within [`EXPIRING_DAYS`] (personal page).
    expiring_soon: Vec<String>,
    /// The most used keys of the last 24 hours (workspace pages).
    top: Vec<TopKey>,
    /// The start of new live keys, e.g. `sk_live_` (search hint).
    key_start: String,
}

impl ListPage {
    fn expiring_url(&self) -> String {
        self.kind.url_with("", true)
    }

    fn all_url(&self) -> String {
        self.kind.url("")
    }

    fn create_url(&self) -> String {
        format!("{}/new", self.kind.base())
    }
}

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    after: Option<String>,
    view: Option<String>,
    expiring: Option<String>,
}

async fn list_page(
    call: Call,
    kind: ListKind,
    query: ListQuery,
    posted: bool,
) -> Result<HttpResponse, AppError> {
    // Which keys this person may see here: the use cases' rule.
    let scope = uc::scope_of(&call.ctx(), kind.listing())?;
    let q = query.q.trim().to_owned();
    let expiring = query.expiring.as_deref() == Some("1");
    let full_key = matches!(dk::value_query(&q), Some(ValueQuery::Full(_)));
    // The search form posts, so a pasted key travels in a body and never in
    // a URL. Without htmx the answer is a redirect to the list's address
    // with the query (a pasted key replaced below, after its lookup).
    if posted && !is_htmx(&call.req) && !full_key {
        return Ok(crate::web::see_other(&kind.url_with(&q, expiring)));
    }
    let after = match query.after.as_deref().filter(|a| !a.is_empty()) {
        Some(raw) => Some(Cursor::decode(raw).ok_or_else(|| {
            AppError::BadRequest("The page link is not valid. Go back to the first page.".into())
        })?),
        None => None,
    };
    let ws = call.user.actor.workspace_id.clone();
    let search = q.clone();
    let now = crate::db::now();
    let soon = now + chrono::TimeDelta::days(EXPIRING_DAYS);
    let personal = kind == ListKind::Personal;
    let since = crate::verify::hour_of(now) - chrono::TimeDelta::hours(23);
    let unfiltered = search.is_empty() && !expiring && !kind.is_service();
    let owner = kind.is_service().then_some(keys::OwnerKind::Service);
    let (rows, next, ws_row, usage, expiring_soon, top, total) = db(&call.state, move |c| {
        let (rows, next) = keys::list(
            c,
            &ws,
            &scope,
            &search,
            &keys::Filter {
                expiring_until: expiring.then_some(soon),
                owner,
                ..keys::Filter::default()
            },
            after.as_ref(),
            PAGE_SIZE,
        )?;
        let ws_row = workspaces::get(c, &ws)?;
        let ids: Vec<String> = rows.iter().map(|r| r.key.id.clone()).collect();
        let usage = crate::db::usage::since(c, &ws, Some(&ids), since)?;
        let expiring_soon = if personal {
            keys::list(
                c,
                &ws,
                &scope,
                "",
                &keys::Filter {
                    expiring_until: Some(soon),
                    ..keys::Filter::default()
                },
                None,
                20,
            )?
            .0
            .into_iter()
            .map(|k| k.key.name)
            .collect()
        } else {
            Vec::new()
        };
        let top = if personal {
            Vec::new()
        } else {
            most_used(c, &ws, since)?
        };
        let total = if unfiltered {
            Some(keys::count_capped(c, &ws, &scope, COUNT_CAP)?)
        } else {
            None
        };
        Ok((rows, next, ws_row, usage, expiring_soon, top, total))
    })
    .await?;

    // A pasted full key must not stay in the address bar or history:
    // replace it with the key's id (or its masked excerpt when unknown).
    let mut safe_url = None;
    if let Some(ValueQuery::Full(facts)) = dk::value_query(&q) {
        let replacement = rows
            .iter()
            .find(|r| {
                r.key.digest == facts.digest
                    || r.key.previous_digest.as_deref() == Some(&facts.digest)
            })
            .map_or_else(|| facts.excerpt(), |r| r.key.id.clone());
        let url = kind.url_with(&replacement, expiring);
        if !is_htmx(&call.req) {
            return Ok(crate::web::see_other(&url));
        }
        safe_url = Some(url);
    }
    let per_key = hourly(&usage, since, 24);
    let quotas = crate::app::keys::quotas_left(
        &call.state,
        &rows.iter().map(|r| &r.key).collect::<Vec<_>>(),
    )
    .await?;
    let paused = ws_row.api_keys_disabled_at.is_some();
    let q_shown = match &safe_url {
        Some(_) => String::new(),
        None => q.clone(),
    };
    // Searches post, so htmx is told the address to show for the results.
    let push_url = safe_url
        .clone()
        .or_else(|| posted.then(|| kind.url_with(&q_shown, expiring)));
    let results = Results {
        csrf: session::csrf_token(&call.session)?,
        kind,
        return_to: kind.url_with(&q_shown, expiring),
        q: q_shown,
        expiring,
        rows: rows
            .iter()
            .map(|k| {
                let mut r = row(k, &call.user, now);
                r.paused = paused;
                if let Some(bars) = per_key.get(&r.id) {
                    let totals: Vec<i64> = bars.iter().map(|b| b.total()).collect();
                    r.uses_24h = totals.iter().sum();
                    r.sparkline = crate::domain::chart::sparkline(&totals, 72, 18);
                }
                if let (Some(left), Some(q)) = (quotas.get(&r.id), k.key.quota()) {
                    r.quota_left = Some(format!(
                        "{} of {} left",
                        crate::domain::quota::thousands(*left),
                        crate::domain::quota::thousands(q.limit)
                    ));
                }
                r
            })
            .collect(),
        next: next.map(|c| c.encode()),
        first_page: query.after.is_none(),
        total,
    };
    if is_htmx(&call.req) {
        let mut res = HttpResponse::Ok();
        if let Some(url) = push_url {
            res.insert_header(("HX-Push-Url", url));
        }
        return Ok(res
            .content_type("text/html; charset=utf-8")
            .body(results.render()?));
    }
    let can_create = call.ctx().may(kind.key_kind().create_action());
    let page = ListPage {
        key_start: crate::domain::keys::Environment::Live
            .start(&call.state.config.leaks.key_prefix),
        layout: Layout::new(&call.session, &call.user, kind.title(), kind.nav())?,
        kind,
        results,
        api_keys_off: paused,
        can_create,
        expiring_soon,
        top,
    };
    render(&page, StatusCode::OK)
}

/// The ten keys with the most verifications since `since`.
fn most_used(
    c: &mut crate::db::DbConn,
    ws: &str,
    since: NaiveDateTime,
) -> Result<Vec<TopKey>, AppError> {
    let mut totals: std::collections::HashMap<String, Bar> = std::collections::HashMap::new();
    for u in crate::db::usage::since(c, ws, None, since)? {
        totals.entry(u.key_id).or_default().add(&u.outcome, u.count);
    }
    let mut ranked: Vec<(String, Bar)> = totals.into_iter().collect();
    ranked.sort_by(|a, b| b.1.total().cmp(&a.1.total()).then(a.0.cmp(&b.0)));
    ranked.truncate(10);
    let ids: Vec<String> = ranked.iter().map(|(id, _)| id.clone()).collect();
    let names: std::collections::HashMap<String, (String, bool)> =
        crate::db::usage::key_names(c, ws, &ids)?
            .into_iter()
            .collect();
    Ok(ranked
        .into_iter()
        .map(|(id, Bar { valid, rejected })| TopKey {
            name: names.get(&id).map(|n| n.0.clone()).unwrap_or_default(),
            deleted: names.get(&id).is_some_and(|n| n.1),
            id,
            valid,
            rejected,
        })
        .collect())
}

impl ListQuery {
    /// Which workspace list the query is for.
    fn workspace_kind(&self) -> ListKind {
        match self.view.as_deref() {
            Some("all") => ListKind::All,
            Some("service") => ListKind::Service,
            _ => ListKind::Workspace,
        }
    }
}

#[get("/account/keys")]
pub async fn personal_list(
    call: Call,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    let query = query.into_inner();
    list_page(call, ListKind::Personal, query, false).await
}

/// Search of the personal list: a POST, so that a pasted key is never in
/// a URL (browser history, proxy logs).
#[post("/account/keys/search")]
pub async fn personal_search(
    call: Call,
    form: web::Form<ListQuery>,
) -> Result<HttpResponse, AppError> {
    let query = form.into_inner();
    list_page(call, ListKind::Personal, query, true).await
}

#[get("/workspace/keys")]
pub async fn workspace_list(
    call: Call,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    let query = query.into_inner();
    let kind = query.workspace_kind();
    list_page(call, kind, query, false).await
}

/// Search of the workspace lists, by POST like [`personal_search`].
#[post("/workspace/keys/search")]
pub async fn workspace_search(
    call: Call,
    form: web::Form<ListQuery>,
) -> Result<HttpResponse, AppError> {
    let query = form.into_inner();
    let kind = query.workspace_kind();
    list_page(call, kind, query, true).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn results(total: Option<i64>) -> Results {
        Results {
            csrf: String::new(),
            kind: ListKind::All,
            q: String::new(),
            rows: Vec::new(),
            next: None,
            first_page: true,
            return_to: String::new(),
            expiring: false,
            total,
        }
    }

    #[test]
    fn totals_are_exact_up_to_the_cap() {
        let text = |n| results(Some(n)).total_text().unwrap();
        assert_eq!(text(1), "1 key");
        assert_eq!(text(7), "7 keys");
        assert_eq!(text(999), "999 keys");
        assert_eq!(text(2_609), "2,609 keys");
        assert_eq!(text(10_000), "10,000 keys");
        assert_eq!(text(10_001), "10,000+ keys");
        assert_eq!(results(None).total_text(), None);
    }
}
