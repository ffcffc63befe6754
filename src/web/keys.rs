//! API key pages: Account → Personal API keys, Workspace → API keys (with
//! the "All keys" view), the create dialog and one-time "Save your key"
//! view, and the row actions. Dialog views are sent as fragments to htmx
//! and as full pages otherwise, so everything works without JavaScript.

use super::layout::Layout;
use super::session::{self, Flash};
use super::{AppState, CurrentUser, FormErrors, authorize, db, is_htmx, render};
use crate::db::keys::{self, ApiKey, Cursor, KeyError, KeyWithOwner, NewKey, Scope};
use crate::db::{permissions, workspaces};
use crate::domain::chart::Bar;
use crate::domain::ids;
use crate::domain::keys::{self as dk, Environment, Expiry, Status, ValueQuery};
use crate::domain::policy::{self, Action};
use crate::error::AppError;
use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;
use chrono::NaiveDateTime;
use serde::Deserialize;

const PAGE_SIZE: i64 = 25;

/// Which list a page shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    Personal,
    Workspace,
    All,
}

impl ListKind {
    pub fn is_all(self) -> bool {
        self == ListKind::All
    }

    pub fn is_personal(self) -> bool {
        self == ListKind::Personal
    }

    pub fn title(self) -> &'static str {
        match self {
            ListKind::Personal => "Personal API keys",
            ListKind::Workspace | ListKind::All => "Workspace API keys",
        }
    }

    pub fn base(self) -> &'static str {
        match self {
            ListKind::Personal => "/account/keys",
            ListKind::Workspace | ListKind::All => "/workspace/keys",
        }
    }

    fn nav(self) -> &'static str {
        match self {
            ListKind::Personal => "personal-keys",
            ListKind::Workspace | ListKind::All => "workspace-keys",
        }
    }

    fn action(self) -> Action<'static> {
        match self {
            ListKind::Personal => Action::ListOwnKeys,
            ListKind::Workspace => Action::ListWorkspaceKeys,
            ListKind::All => Action::ListAllKeys,
        }
    }

    fn scope(self, user: &CurrentUser) -> Scope {
        match self {
            ListKind::Personal => Scope::Owner(user.user.id.clone()),
            ListKind::Workspace => Scope::Workspace,
            ListKind::All => Scope::All,
        }
    }

    /// The list URL with a query and view, for links and redirects.
    fn url(self, q: &str) -> String {
        self.url_with(q, false)
    }

    /// The list URL, optionally showing only keys that expire soon.
    fn url_with(self, q: &str, expiring: bool) -> String {
        let mut params: Vec<(&str, &str)> = Vec::new();
        if self == ListKind::All {
            params.push(("view", "all"));
        }
        if expiring {
            params.push(("expiring", "1"));
        }
        if !q.is_empty() {
            params.push(("q", q));
        }
        if params.is_empty() {
            self.base().to_owned()
        } else {
            format!(
                "{}?{}",
                self.base(),
                serde_urlencoded::to_string(params).unwrap_or_default()
            )
        }
    }
}

/// Human formatting of an optional time.
fn when(t: Option<NaiveDateTime>, none: &str) -> String {
    t.map_or_else(
        || none.to_owned(),
        |t| t.format("%Y-%m-%d %H:%M").to_string(),
    )
}

/// One row of a key list, ready to show.
pub struct Row {
    pub id: String,
    pub name: String,
    pub excerpt: String,
    pub environment: &'static str,
    pub permissions: String,
    pub status: Status,
    pub expires: String,
    pub last_used: String,
    pub created: String,
    pub owner: String,
    pub creator_removed: bool,
    pub grace_until: Option<String>,
    pub can_manage: bool,
    pub can_revoke: bool,
    pub can_review: bool,
    /// "Expires in N days" for active keys within [`EXPIRING_DAYS`].
    pub expiring: Option<String>,
    /// Verifications in the last 24 hours, and their sparkline.
    pub uses_24h: i64,
    pub sparkline: String,
}

/// Days within which an expiry counts as "soon".
pub const EXPIRING_DAYS: i64 = 7;

fn expiring_label(
    expires_at: Option<NaiveDateTime>,
    status: Status,
    now: NaiveDateTime,
) -> Option<String> {
    let left = expires_at? - now;
    if status != Status::Active || left > chrono::TimeDelta::days(EXPIRING_DAYS) {
        return None;
    }
    // Round up: a key created "for 7 days" expires in 7 days, not 6.
    let days = (left.num_seconds() + 86_399) / 86_400;
    Some(match days {
        ..=1 => "Expires within a day".to_owned(),
        n => format!("Expires in {n} days"),
    })
}

fn row(k: &KeyWithOwner, user: &CurrentUser, now: NaiveDateTime) -> Row {
    let key = &k.key;
    let perms = key.permission_list();
    let permissions = match perms.len() {
        0 => "None".to_owned(),
        1..=2 => perms.join(", "),
        n => format!("{}, {} +{}", perms[0], perms[1], n - 2),
    };
    let status = key.status(now);
    let owner = match (&k.owner_name, &k.owner_email) {
        (Some(name), Some(email)) => format!("{name} ({email})"),
        _ => "Workspace".to_owned(),
    };
    Row {
        id: key.id.clone(),
        name: key.name.clone(),
        excerpt: key.excerpt(),
        environment: key.environment().label(),
        permissions,
        status,
        expires: key
            .expires_at
            .map_or_else(|| "Never".to_owned(), |t| t.format("%Y-%m-%d").to_string()),
        last_used: when(key.last_used_at, "Never"),
        created: key.created_at.format("%Y-%m-%d").to_string(),
        owner,
        creator_removed: key.creator_removed_at.is_some(),
        grace_until: key.grace_until(now).map(|t| when(Some(t), "")),
        can_manage: status != Status::Revoked
            && policy::authorize(&user.actor, Action::ManageKey(key.key_ref())).is_allowed(),
        can_revoke: status.can_revoke()
            && policy::authorize(&user.actor, Action::RevokeKey(key.key_ref())).is_allowed(),
        can_review: key.creator_removed_at.is_some()
            && policy::authorize(&user.actor, Action::ReviewKey(key.key_ref())).is_allowed(),
        expiring: expiring_label(key.expires_at, status, now),
        uses_24h: 0,
        sparkline: String::new(),
    }
}

/// Usage rows bucketed per key into `hours` hourly bars starting at `start`
/// (oldest first).
fn hourly(
    usage: &[crate::db::usage::UsageRow],
    start: NaiveDateTime,
    hours: i64,
) -> std::collections::HashMap<String, Vec<Bar>> {
    let mut out: std::collections::HashMap<String, Vec<Bar>> = std::collections::HashMap::new();
    for u in usage {
        let i = (u.hour - start).num_hours();
        if (0..hours).contains(&i) {
            out.entry(u.key_id.clone())
                .or_insert_with(|| vec![Bar::default(); hours as usize])[i as usize]
                .add(&u.outcome, u.count);
        }
    }
    out
}

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
}

impl Results {
    pub fn show_owner(&self) -> bool {
        self.kind == ListKind::All
    }

    pub fn base(&self) -> &'static str {
        self.kind.base()
    }

    pub fn view_param(&self) -> &'static str {
        match (self.kind == ListKind::All, self.expiring) {
            (true, true) => "&view=all&expiring=1",
            (true, false) => "&view=all",
            (false, true) => "&expiring=1",
            (false, false) => "",
        }
    }

    pub fn q_param(&self) -> String {
        if self.q.is_empty() {
            String::new()
        } else {
            format!("&q={}", super::middleware::urlencode(&self.q))
        }
    }

    /// `return_to` encoded for a query string.
    pub fn ret(&self) -> String {
        super::middleware::urlencode(&self.return_to)
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
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    kind: ListKind,
    query: ListQuery,
    posted: bool,
) -> Result<HttpResponse, AppError> {
    authorize(&user, kind.action())?;
    let q = query.q.trim().to_owned();
    let expiring = query.expiring.as_deref() == Some("1");
    let full_key = matches!(dk::value_query(&q), Some(ValueQuery::Full(_)));
    // The search form posts, so a pasted key travels in a body and never in
    // a URL. Without htmx the answer is a redirect to the list's address
    // with the query (a pasted key replaced below, after its lookup).
    if posted && !is_htmx(&req) && !full_key {
        return Ok(super::see_other(&kind.url_with(&q, expiring)));
    }
    let after = match query.after.as_deref().filter(|a| !a.is_empty()) {
        Some(raw) => Some(Cursor::decode(raw).ok_or_else(|| {
            AppError::BadRequest("The page link is not valid. Go back to the first page.".into())
        })?),
        None => None,
    };
    let ws = user.actor.workspace_id.clone();
    let scope = kind.scope(&user);
    let search = q.clone();
    let now = crate::db::now();
    let soon = now + chrono::TimeDelta::days(EXPIRING_DAYS);
    let personal = kind == ListKind::Personal;
    let since = crate::verify::hour_of(now) - chrono::TimeDelta::hours(23);
    let (rows, next, ws_row, usage, expiring_soon, top) = db(&state, move |c| {
        let (rows, next) = keys::list(
            c,
            &ws,
            &scope,
            &search,
            expiring.then_some(soon),
            after.as_ref(),
            PAGE_SIZE,
        )?;
        let ws_row = workspaces::get(c, &ws)?;
        let ids: Vec<String> = rows.iter().map(|r| r.key.id.clone()).collect();
        let usage = crate::db::usage::since(c, &ws, Some(&ids), since)?;
        let expiring_soon = if personal {
            keys::list(c, &ws, &scope, "", Some(soon), None, 20)?
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
        Ok((rows, next, ws_row, usage, expiring_soon, top))
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
        if !is_htmx(&req) {
            return Ok(super::see_other(&url));
        }
        safe_url = Some(url);
    }
    let per_key = hourly(&usage, since, 24);
    let q_shown = match &safe_url {
        Some(_) => String::new(),
        None => q.clone(),
    };
    // Searches post, so htmx is told the address to show for the results.
    let push_url = safe_url
        .clone()
        .or_else(|| posted.then(|| kind.url_with(&q_shown, expiring)));
    let results = Results {
        csrf: session::csrf_token(&session)?,
        kind,
        return_to: kind.url_with(&q_shown, expiring),
        q: q_shown,
        expiring,
        rows: rows
            .iter()
            .map(|k| {
                let mut r = row(k, &user, now);
                if let Some(bars) = per_key.get(&r.id) {
                    let totals: Vec<i64> = bars.iter().map(|b| b.total()).collect();
                    r.uses_24h = totals.iter().sum();
                    r.sparkline = crate::domain::chart::sparkline(&totals, 72, 18);
                }
                r
            })
            .collect(),
        next: next.map(|c| c.encode()),
        first_page: query.after.is_none(),
    };
    if is_htmx(&req) {
        let mut res = HttpResponse::Ok();
        if let Some(url) = push_url {
            res.insert_header(("HX-Push-Url", url));
        }
        return Ok(res
            .content_type("text/html; charset=utf-8")
            .body(results.render()?));
    }
    let can_create = policy::authorize(&user.actor, create_action(kind)).is_allowed();
    let page = ListPage {
        layout: Layout::new(&session, &user, kind.title(), kind.nav())?,
        kind,
        results,
        api_keys_off: ws_row.api_keys_disabled_at.is_some(),
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
            _ => ListKind::Workspace,
        }
    }
}

#[get("/account/keys")]
pub async fn personal_list(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    let query = query.into_inner();
    list_page(req, state, session, user, ListKind::Personal, query, false).await
}

/// Search of the personal list: a POST, so that a pasted key is never in
/// a URL (browser history, proxy logs).
#[post("/account/keys/search")]
pub async fn personal_search(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    form: web::Form<ListQuery>,
) -> Result<HttpResponse, AppError> {
    let query = form.into_inner();
    list_page(req, state, session, user, ListKind::Personal, query, true).await
}

#[get("/workspace/keys")]
pub async fn workspace_list(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    let query = query.into_inner();
    let kind = query.workspace_kind();
    list_page(req, state, session, user, kind, query, false).await
}

/// Search of the workspace lists, by POST like [`personal_search`].
#[post("/workspace/keys/search")]
pub async fn workspace_search(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    form: web::Form<ListQuery>,
) -> Result<HttpResponse, AppError> {
    let query = form.into_inner();
    let kind = query.workspace_kind();
    list_page(req, state, session, user, kind, query, true).await
}

/// A generic page around a fragment, for requests without htmx.
#[derive(Template)]
#[template(path = "shell.html")]
struct Shell {
    layout: Layout,
    content: String,
}

/// The fragment for htmx (into the dialog), or a full page around it.
fn fragment_or_page<T: Template>(
    req: &HttpRequest,
    session: &Session,
    user: &CurrentUser,
    title: &str,
    nav: &'static str,
    fragment: &T,
    status: StatusCode,
) -> Result<HttpResponse, AppError> {
    if is_htmx(req) {
        render(fragment, status)
    } else {
        let page = Shell {
            layout: Layout::new(session, user, title, nav)?,
            content: fragment.render()?,
        };
        render(&page, status)
    }
}

/// After a successful change: back to the list (a full navigation, also
/// for htmx, so the list and its message are fresh).
fn done(req: &HttpRequest, to: &str) -> HttpResponse {
    if is_htmx(req) {
        HttpResponse::Ok()
            .insert_header(("HX-Redirect", to.to_owned()))
            .finish()
    } else {
        super::see_other(to)
    }
}

/// Only our own list pages are accepted as places to return to.
fn safe_return(raw: Option<&str>, key: Option<&ApiKey>) -> String {
    match raw {
        Some(r)
            if (r.starts_with("/account/keys")
                || r.starts_with("/workspace/keys")
                || r.starts_with("/keys/key_"))
                && !r.contains("//") =>
        {
            r.to_owned()
        }
        _ => match key {
            Some(k) if !k.is_personal() => "/workspace/keys".to_owned(),
            _ => "/account/keys".to_owned(),
        },
    }
}

// ---- create -----------------------------------------------------------------

/// The create form's values and errors.
#[derive(Template)]
#[template(path = "keys/new.html")]
pub struct NewKeyForm {
    pub csrf: String,
    pub kind: ListKind,
    pub catalog: Vec<permissions::Permission>,
    pub environments: [Environment; 3],
    /// Expiry presets within the workspace maximum.
    pub presets: Vec<i64>,
    /// The workspace's maximum expiry in days, if any ("never" is then not offered).
    pub max_expiry_days: Option<i32>,
    pub nonce: String,
    pub name: String,
    pub description: String,
    pub tags: String,
    pub environment: String,
    pub permissions: Vec<String>,
    pub expiry: String,
    pub expiry_date: String,
    pub rate_limit: String,
    pub resources: String,
    pub errors: FormErrors,
}

impl NewKeyForm {
    fn action(&self) -> &'static str {
        self.kind.base()
    }

    fn heading(&self) -> &'static str {
        match self.kind {
            ListKind::Personal => "Create a personal API key",
            _ => "Create a workspace API key",
        }
    }

    fn checked(&self, permission: &str) -> bool {
        self.permissions.iter().any(|p| p == permission)
    }

    fn preset_selected(&self, days: &i64) -> bool {
        self.expiry == days.to_string()
    }
}

fn create_action(kind: ListKind) -> Action<'static> {
    match kind {
        ListKind::Personal => Action::CreatePersonalKey,
        _ => Action::CreateWorkspaceKey,
    }
}

async fn new_form(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    kind: ListKind,
) -> Result<HttpResponse, AppError> {
    authorize(&user, create_action(kind))?;
    let ws = user.actor.workspace_id.clone();
    let (catalog, workspace) = db(&state, move |c| {
        Ok((permissions::active(c, &ws)?, workspaces::get(c, &ws)?))
    })
    .await?;
    if workspace.api_keys_disabled_at.is_some() {
        return Err(api_keys_off());
    }
    let max = workspace.max_expiry_days;
    let form = NewKeyForm {
        csrf: session::csrf_token(&session)?,
        kind,
        catalog,
        environments: Environment::ALL,
        presets: presets_within(max),
        max_expiry_days: max,
        nonce: ids::new_token(),
        name: String::new(),
        description: String::new(),
        tags: String::new(),
        environment: Environment::Live.as_str().to_owned(),
        permissions: Vec::new(),
        // 90 days, or the longest preset the workspace allows.
        expiry: presets_within(max)
            .into_iter()
            .rfind(|d| *d <= 90)
            .unwrap_or(7)
            .to_string(),
        expiry_date: String::new(),
        rate_limit: workspace
            .default_rate_limit
            .map(|r| r.to_string())
            .unwrap_or_default(),
        resources: String::new(),
        errors: FormErrors::default(),
    };
    fragment_or_page(
        &req,
        &session,
        &user,
        "Create API key",
        kind.nav(),
        &form,
        StatusCode::OK,
    )
}

/// Expiry presets no longer than the workspace maximum.
fn presets_within(max: Option<i32>) -> Vec<i64> {
    dk::EXPIRY_PRESETS
        .into_iter()
        .filter(|d| max.is_none_or(|m| *d <= i64::from(m)))
        .collect()
}

fn api_keys_off() -> AppError {
    AppError::Conflict(
        "API keys are switched off for this workspace, so no key can be created. An admin can turn them back on in Settings."
            .into(),
    )
}

#[get("/account/keys/new")]
pub async fn new_personal(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
) -> Result<HttpResponse, AppError> {
    new_form(req, state, session, user, ListKind::Personal).await
}

#[get("/workspace/keys/new")]
pub async fn new_workspace(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
) -> Result<HttpResponse, AppError> {
    new_form(req, state, session, user, ListKind::Workspace).await
}

#[derive(Deserialize, Default)]
pub struct CreateForm {
    #[serde(default)]
    nonce: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    tags: String,
    #[serde(default)]
    environment: String,
    #[serde(default)]
    permissions: Vec<String>,
    #[serde(default)]
    expiry: String,
    #[serde(default)]
    expiry_date: String,
    #[serde(default)]
    rate_limit: String,
    #[serde(default)]
    resources: String,
}

/// The one-time form nonce (what makes a re-submitted create or regenerate
/// form do nothing) must be present and look like one we issued.
fn check_nonce(nonce: &str) -> Result<(), AppError> {
    let ok =
        !nonce.is_empty() && nonce.len() <= 64 && nonce.bytes().all(|b| b.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(AppError::BadRequest(
            "The form is incomplete. Reload the page and try again.".into(),
        ))
    }
}

/// Parse a form body that may repeat a field (checkboxes).
fn parse_form<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, AppError> {
    serde_html_form::from_bytes(body).map_err(|e| {
        AppError::BadRequest(format!(
            "The form could not be read ({e}); nothing was changed."
        ))
    })
}

/// The "Save your key" view: the only place the secret ever appears.
#[derive(Template)]
#[template(path = "keys/secret.html")]
struct SecretView<'a> {
    name: &'a str,
    id: &'a str,
    secret: &'a str,
    environment: Environment,
    back: String,
    regenerated: bool,
    grace_until: Option<String>,
    /// New expiry when regeneration had to shorten it to the workspace maximum.
    shortened_to: Option<String>,
}

/// A form submitted twice: nothing new is created, the secret is not shown again.
#[derive(Template)]
#[template(path = "keys/message.html")]
struct Message<'a> {
    title: &'a str,
    text: &'a str,
    back: &'a str,
}

async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    kind: ListKind,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    authorize(&user, create_action(kind))?;
    let form: CreateForm = parse_form(&body)?;
    let ws = user.actor.workspace_id.clone();
    let (catalog, workspace) = db(&state, move |c| {
        Ok((permissions::active(c, &ws)?, workspaces::get(c, &ws)?))
    })
    .await?;
    if workspace.api_keys_disabled_at.is_some() {
        return Err(api_keys_off());
    }
    let max_days = workspace.max_expiry_days;

    let mut errors = FormErrors::default();
    let name = errors.check(dk::parse_name(&form.name));
    let description = errors.check(dk::parse_description(&form.description));
    let tags = errors.check(dk::parse_tags(&form.tags));
    let environment = form.environment.parse::<Environment>().ok();
    if environment.is_none() {
        errors.add(
            "environment",
            "Choose an environment: production, staging or development.",
        );
    }
    let today = crate::db::now().date();
    let expiry = errors.check(
        Expiry::parse(&form.expiry, &form.expiry_date, today)
            .and_then(|e| dk::within_max(e, max_days, today)),
    );
    let rate_limit = errors.check(dk::parse_rate_limit(&form.rate_limit));
    let resources = errors.check(dk::parse_resources(&form.resources));
    let mut chosen: Vec<String> = Vec::new();
    for p in &form.permissions {
        if !catalog.iter().any(|c| &c.name == p) {
            errors.add(
                "permissions",
                format!("\"{p}\" is not a permission of this workspace."),
            );
        } else if !chosen.contains(p) {
            chosen.push(p.clone());
        }
    }
    check_nonce(&form.nonce)?;
    let parsed = match (
        name,
        description,
        tags,
        environment,
        expiry,
        rate_limit,
        resources,
    ) {
        (Some(a), Some(b), Some(c), Some(d), Some(e), Some(f), Some(g)) if errors.is_empty() => {
            Some((a, b, c, d, e, f, g))
        }
        _ => None,
    };
    let Some((name, description, tags, environment, expiry, rate_limit, resources)) = parsed else {
        let view = NewKeyForm {
            csrf: session::csrf_token(&session)?,
            kind,
            catalog,
            environments: Environment::ALL,
            presets: presets_within(max_days),
            max_expiry_days: max_days,
            nonce: form.nonce,
            name: form.name,
            description: form.description,
            tags: form.tags,
            environment: form.environment,
            permissions: form.permissions,
            expiry: form.expiry,
            expiry_date: form.expiry_date,
            rate_limit: form.rate_limit,
            resources: form.resources,
            errors,
        };
        return fragment_or_page(
            &req,
            &session,
            &user,
            "Create API key",
            kind.nav(),
            &view,
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    };

    let (secret, facts) = dk::generate(environment);
    let ctx = user.audit();
    let owner = (kind == ListKind::Personal).then(|| {
        (
            user.user.id.clone(),
            format!("{} {}", user.user.email, user.user.name),
        )
    });
    let nonce = form.nonce.clone();
    let expires_at = expiry.expires_at(crate::db::now());
    let max_personal =
        (kind == ListKind::Personal).then_some(i64::from(workspace.max_keys_per_user));
    let created = db(&state, move |c| {
        let new = NewKey {
            owner: owner
                .as_ref()
                .map(|(id, label)| (id.as_str(), label.as_str())),
            name: &name,
            description: &description,
            tags: &tags,
            permissions: &chosen,
            resources: &resources,
            facts: &facts,
            expires_at,
            rate_limit,
            request_nonce: &nonce,
            max_personal,
        };
        match keys::create(c, &ctx, new) {
            Ok(k) => Ok(Some(k)),
            Err(KeyError::DuplicateRequest) => Ok(None),
            Err(e @ KeyError::LimitReached(_)) => Err(AppError::Conflict(e.to_string())),
            Err(e) => Err(e.into()),
        }
    })
    .await?;
    let back = kind.url("");
    let Some(key) = created else {
        let view = Message {
            title: "Already created",
            text: "This form was already submitted and the key was created then. Its secret was shown once and cannot be shown again; if you did not save it, regenerate the key.",
            back: &back,
        };
        return fragment_or_page(
            &req,
            &session,
            &user,
            "Already created",
            kind.nav(),
            &view,
            StatusCode::CONFLICT,
        );
    };
    let view = SecretView {
        name: &key.name,
        id: &key.id,
        secret: secret.expose(),
        environment,
        back,
        regenerated: false,
        grace_until: None,
        shortened_to: None,
    };
    fragment_or_page(
        &req,
        &session,
        &user,
        "Save your key",
        kind.nav(),
        &view,
        StatusCode::OK,
    )
}

#[post("/account/keys")]
pub async fn create_personal(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    create(req, state, session, user, ListKind::Personal, body).await
}

#[post("/workspace/keys")]
pub async fn create_workspace(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    create(req, state, session, user, ListKind::Workspace, body).await
}

// ---- one key ----------------------------------------------------------------

/// What is about to be done to one key, for the policy check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyAct {
    View,
    Manage,
    Revoke,
    Review,
}

impl KeyAct {
    fn action(self, key: policy::KeyRef<'_>) -> Action<'_> {
        match self {
            KeyAct::View => Action::ViewKey(key),
            KeyAct::Manage => Action::ManageKey(key),
            KeyAct::Revoke => Action::RevokeKey(key),
            KeyAct::Review => Action::ReviewKey(key),
        }
    }
}

/// Load a key of the actor's workspace and check the action on it.
async fn load_key(
    state: &web::Data<AppState>,
    user: &CurrentUser,
    id: String,
    act: KeyAct,
) -> Result<ApiKey, AppError> {
    let ws = user.actor.workspace_id.clone();
    let key = db(state, move |c| Ok(keys::get(c, &ws, &id)?))
        .await?
        .ok_or(AppError::NotFound)?;
    authorize(user, act.action(key.key_ref()))?;
    Ok(key)
}

fn key_error(e: KeyError) -> AppError {
    match e {
        KeyError::NotFound => AppError::NotFound,
        KeyError::NotRevocable | KeyError::Revoked => AppError::BadRequest(e.to_string()),
        KeyError::DuplicateRequest => AppError::BadRequest(e.to_string()),
        KeyError::LimitReached(_) => AppError::Conflict(e.to_string()),
        KeyError::Db(e) => AppError::Db(e),
    }
}

#[derive(Deserialize)]
pub struct ReturnQuery {
    return_to: Option<String>,
}

#[derive(Deserialize)]
pub struct ReturnForm {
    return_to: Option<String>,
}

/// Disable or enable a key (row action; a plain form).
async fn toggle(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    id: String,
    form: ReturnForm,
    disabled: bool,
) -> Result<HttpResponse, AppError> {
    let key = load_key(&state, &user, id, KeyAct::Revoke).await?;
    let ctx = user.audit();
    let k = key.clone();
    db(&state, move |c| {
        keys::set_disabled(c, &ctx, &k, disabled).map_err(key_error)
    })
    .await?;
    let message = if disabled {
        format!(
            "\"{}\" is disabled: requests with it are refused until you enable it again.",
            key.name
        )
    } else {
        format!("\"{}\" is enabled again.", key.name)
    };
    session::set_flash(&session, Flash::success(message))?;
    Ok(done(
        &req,
        &safe_return(form.return_to.as_deref(), Some(&key)),
    ))
}

#[post("/keys/{id}/disable")]
pub async fn disable(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    id: web::Path<String>,
    form: web::Form<ReturnForm>,
) -> Result<HttpResponse, AppError> {
    toggle(
        req,
        state,
        session,
        user,
        id.into_inner(),
        form.into_inner(),
        true,
    )
    .await
}

#[post("/keys/{id}/enable")]
pub async fn enable(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    id: web::Path<String>,
    form: web::Form<ReturnForm>,
) -> Result<HttpResponse, AppError> {
    toggle(
        req,
        state,
        session,
        user,
        id.into_inner(),
        form.into_inner(),
        false,
    )
    .await
}

/// Clear the "creator removed" flag (admins).
#[post("/keys/{id}/review")]
pub async fn review(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    id: web::Path<String>,
    form: web::Form<ReturnForm>,
) -> Result<HttpResponse, AppError> {
    let key = load_key(&state, &user, id.into_inner(), KeyAct::Review).await?;
    let ctx = user.audit();
    let k = key.clone();
    db(&state, move |c| {
        keys::mark_reviewed(c, &ctx, &k).map_err(key_error)
    })
    .await?;
    session::set_flash(
        &session,
        Flash::success(format!("\"{}\" was marked as reviewed.", key.name)),
    )?;
    Ok(done(
        &req,
        &safe_return(form.return_to.as_deref(), Some(&key)),
    ))
}

// ---- edit -------------------------------------------------------------------

#[derive(Template)]
#[template(path = "keys/edit.html")]
struct EditForm {
    csrf: String,
    key: ApiKey,
    return_to: String,
    name: String,
    description: String,
    tags: String,
    rate_limit: String,
    errors: FormErrors,
}

#[get("/keys/{id}/edit")]
pub async fn edit_form(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    id: web::Path<String>,
    query: web::Query<ReturnQuery>,
) -> Result<HttpResponse, AppError> {
    let key = load_key(&state, &user, id.into_inner(), KeyAct::Manage).await?;
    let view = EditForm {
        csrf: session::csrf_token(&session)?,
        return_to: safe_return(query.return_to.as_deref(), Some(&key)),
        name: key.name.clone(),
        description: key.description.clone(),
        tags: key.tag_list().join(", "),
        rate_limit: key.rate_limit.map(|r| r.to_string()).unwrap_or_default(),
        key,
        errors: FormErrors::default(),
    };
    fragment_or_page(
        &req,
        &session,
        &user,
        "Edit API key",
        "",
        &view,
        StatusCode::OK,
    )
}

#[derive(Deserialize)]
pub struct EditBody {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    tags: String,
    #[serde(default)]
    rate_limit: String,
    return_to: Option<String>,
}

#[post("/keys/{id}/edit")]
pub async fn edit(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    id: web::Path<String>,
    form: web::Form<EditBody>,
) -> Result<HttpResponse, AppError> {
    let key = load_key(&state, &user, id.into_inner(), KeyAct::Manage).await?;
    let form = form.into_inner();
    let return_to = safe_return(form.return_to.as_deref(), Some(&key));
    let mut errors = FormErrors::default();
    let name = errors.check(dk::parse_name(&form.name));
    let description = errors.check(dk::parse_description(&form.description));
    let tags = errors.check(dk::parse_tags(&form.tags));
    let rate_limit = errors.check(dk::parse_rate_limit(&form.rate_limit));
    let (Some(name), Some(description), Some(tags), Some(rate_limit)) =
        (name, description, tags, rate_limit)
    else {
        let view = EditForm {
            csrf: session::csrf_token(&session)?,
            key,
            return_to,
            name: form.name,
            description: form.description,
            tags: form.tags,
            rate_limit: form.rate_limit,
            errors,
        };
        return fragment_or_page(
            &req,
            &session,
            &user,
            "Edit API key",
            "",
            &view,
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    };
    let ctx = user.audit();
    let k = key.clone();
    let saved_name = name.clone();
    db(&state, move |c| {
        let owner = match &k.owner_id {
            Some(owner) => crate::db::users::get(c, &k.workspace_id, owner)?
                .map(|u| format!("{} {}", u.email, u.name)),
            None => None,
        };
        keys::update_details(
            c,
            &ctx,
            &k,
            owner.as_deref(),
            &keys::Details {
                name,
                description,
                tags,
                rate_limit,
            },
        )
        .map_err(key_error)
    })
    .await?;
    session::set_flash(
        &session,
        Flash::success(format!("\"{saved_name}\" was saved.")),
    )?;
    Ok(done(&req, &return_to))
}

// ---- regenerate, revoke, delete --------------------------------------------

/// The confirmation shown before regenerate, revoke and delete.
#[derive(Template)]
#[template(path = "keys/confirm.html")]
struct Confirm {
    csrf: String,
    key: ApiKey,
    what: &'static str,
    return_to: String,
    nonce: String,
    errors: FormErrors,
}

impl Confirm {
    fn action(&self) -> String {
        format!("/keys/{}/{}", self.key.id, self.what)
    }
}

async fn confirm(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    id: String,
    query: ReturnQuery,
    what: &'static str,
) -> Result<HttpResponse, AppError> {
    let act = if what == "revoke" {
        KeyAct::Revoke
    } else {
        KeyAct::Manage
    };
    let key = load_key(&state, &user, id, act).await?;
    let now = crate::db::now();
    if what == "revoke" && !key.status(now).can_revoke() {
        return Err(AppError::BadRequest(
            "Only active or inactive keys can be revoked.".into(),
        ));
    }
    if what == "regenerate" && key.revoked_at.is_some() {
        return Err(AppError::BadRequest(
            "A revoked key cannot be regenerated. Create a new key instead.".into(),
        ));
    }
    let view = Confirm {
        csrf: session::csrf_token(&session)?,
        return_to: safe_return(query.return_to.as_deref(), Some(&key)),
        key,
        what,
        nonce: ids::new_token(),
        errors: FormErrors::default(),
    };
    fragment_or_page(&req, &session, &user, "Confirm", "", &view, StatusCode::OK)
}

/// The confirmation before regenerate, revoke or delete.
#[get("/keys/{id}/{what}")]
pub async fn confirm_form(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    path: web::Path<(String, String)>,
    query: web::Query<ReturnQuery>,
) -> Result<HttpResponse, AppError> {
    let (id, what) = path.into_inner();
    let what = match what.as_str() {
        "regenerate" => "regenerate",
        "revoke" => "revoke",
        "delete" => "delete",
        _ => return Err(AppError::NotFound),
    };
    confirm(req, state, session, user, id, query.into_inner(), what).await
}

#[derive(Deserialize)]
pub struct RegenerateBody {
    #[serde(default)]
    grace: String,
    #[serde(default)]
    nonce: String,
    return_to: Option<String>,
}

#[post("/keys/{id}/regenerate")]
pub async fn regenerate(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    id: web::Path<String>,
    form: web::Form<RegenerateBody>,
) -> Result<HttpResponse, AppError> {
    let key = load_key(&state, &user, id.into_inner(), KeyAct::Manage).await?;
    let form = form.into_inner();
    let return_to = safe_return(form.return_to.as_deref(), Some(&key));
    let mut errors = FormErrors::default();
    let Some(grace) = errors.check(dk::parse_grace(&form.grace)) else {
        let view = Confirm {
            csrf: session::csrf_token(&session)?,
            key,
            what: "regenerate",
            return_to,
            nonce: form.nonce,
            errors,
        };
        return fragment_or_page(
            &req,
            &session,
            &user,
            "Confirm",
            "",
            &view,
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    };
    check_nonce(&form.nonce)?;
    let (secret, facts) = dk::generate(key.environment());
    let ctx = user.audit();
    let k = key.clone();
    let nonce = form.nonce.clone();
    let fresh = db(&state, move |c| {
        let ws = workspaces::get(c, &k.workspace_id)?;
        let cap = ws
            .max_expiry_days
            .map(|d| crate::db::now() + chrono::TimeDelta::days(i64::from(d)));
        match keys::regenerate(c, &ctx, &k, &facts, grace, &nonce, cap) {
            Ok(k) => Ok(Some(k)),
            Err(KeyError::DuplicateRequest) => Ok(None),
            Err(e) => Err(key_error(e)),
        }
    })
    .await?;
    let Some(fresh) = fresh else {
        let view = Message {
            title: "Already regenerated",
            text: "This form was already submitted and the key was regenerated then. The new secret was shown once and cannot be shown again; if you did not save it, regenerate the key again.",
            back: &return_to,
        };
        return fragment_or_page(
            &req,
            &session,
            &user,
            "Already regenerated",
            "",
            &view,
            StatusCode::CONFLICT,
        );
    };
    let now = crate::db::now();
    let view = SecretView {
        name: &fresh.name,
        id: &fresh.id,
        secret: secret.expose(),
        environment: fresh.environment(),
        back: return_to.clone(),
        regenerated: true,
        grace_until: fresh.grace_until(now).map(|t| when(Some(t), "")),
        shortened_to: (fresh.expires_at != key.expires_at).then(|| when(fresh.expires_at, "")),
    };
    fragment_or_page(
        &req,
        &session,
        &user,
        "Save your key",
        "",
        &view,
        StatusCode::OK,
    )
}

#[post("/keys/{id}/revoke")]
pub async fn revoke(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    id: web::Path<String>,
    form: web::Form<ReturnForm>,
) -> Result<HttpResponse, AppError> {
    let key = load_key(&state, &user, id.into_inner(), KeyAct::Revoke).await?;
    let ctx = user.audit();
    let k = key.clone();
    db(&state, move |c| {
        keys::revoke(c, &ctx, &k).map_err(key_error)
    })
    .await?;
    session::set_flash(
        &session,
        Flash::success(format!(
            "\"{}\" was revoked. Requests with it are refused from now on.",
            key.name
        )),
    )?;
    Ok(done(
        &req,
        &safe_return(form.return_to.as_deref(), Some(&key)),
    ))
}

#[post("/keys/{id}/delete")]
pub async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    id: web::Path<String>,
    form: web::Form<ReturnForm>,
) -> Result<HttpResponse, AppError> {
    let key = load_key(&state, &user, id.into_inner(), KeyAct::Manage).await?;
    let ctx = user.audit();
    let k = key.clone();
    db(&state, move |c| {
        keys::delete(c, &ctx, &k).map_err(key_error)
    })
    .await?;
    session::set_flash(
        &session,
        Flash::success(format!(
            "\"{}\" was deleted. Its events stay in the audit trail.",
            key.name
        )),
    )?;
    // The key's own page is gone: go back to its list instead.
    let back = safe_return(form.return_to.as_deref(), Some(&key));
    let back = if back.starts_with("/keys/") {
        safe_return(None, Some(&key))
    } else {
        back
    };
    Ok(done(&req, &back))
}

// ---- bulk revoke -------------------------------------------------------------

#[derive(Deserialize, Default)]
pub struct BulkBody {
    #[serde(default)]
    ids: Vec<String>,
    return_to: Option<String>,
}

#[derive(Template)]
#[template(path = "keys/bulk.html")]
struct BulkConfirm {
    csrf: String,
    keys: Vec<ApiKey>,
    return_to: String,
}

/// Load the selected keys, all of which the actor must be allowed to
/// revoke; any unknown or foreign id fails the whole request.
async fn load_selected(
    state: &web::Data<AppState>,
    user: &CurrentUser,
    ids: Vec<String>,
) -> Result<Vec<ApiKey>, AppError> {
    if ids.is_empty() {
        return Err(AppError::BadRequest(
            "Select at least one key to revoke.".into(),
        ));
    }
    if ids.len() > 500 {
        return Err(AppError::BadRequest(
            "Select at most 500 keys at a time.".into(),
        ));
    }
    let ws = user.actor.workspace_id.clone();
    let wanted = ids.clone();
    let found = db(state, move |c| Ok(keys::get_many(c, &ws, &wanted)?)).await?;
    let mut unique = ids;
    unique.sort();
    unique.dedup();
    if found.len() != unique.len() {
        return Err(AppError::NotFound);
    }
    for key in &found {
        authorize(user, Action::RevokeKey(key.key_ref()))?;
    }
    Ok(found)
}

#[post("/keys/bulk-revoke")]
pub async fn bulk_confirm(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let form: BulkBody = parse_form(&body)?;
    let selected = load_selected(&state, &user, form.ids).await?;
    let view = BulkConfirm {
        csrf: session::csrf_token(&session)?,
        return_to: safe_return(form.return_to.as_deref(), selected.first()),
        keys: selected,
    };
    fragment_or_page(
        &req,
        &session,
        &user,
        "Revoke selected keys",
        "",
        &view,
        StatusCode::OK,
    )
}

#[post("/keys/bulk-revoke/confirm")]
pub async fn bulk_revoke(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let form: BulkBody = parse_form(&body)?;
    let selected = load_selected(&state, &user, form.ids).await?;
    let return_to = safe_return(form.return_to.as_deref(), selected.first());
    let ctx = user.audit();
    let (revoked, skipped) = db(&state, move |c| {
        keys::revoke_many(c, &ctx, &selected).map_err(key_error)
    })
    .await?;
    let mut message = format!(
        "{revoked} key{} revoked.",
        if revoked == 1 { "" } else { "s" }
    );
    if !skipped.is_empty() {
        message.push_str(&format!(
            " Skipped (already revoked or expired): {}.",
            skipped.join(", ")
        ));
    }
    session::set_flash(&session, Flash::success(message))?;
    Ok(done(&req, &return_to))
}

// ---- detail -------------------------------------------------------------------

#[derive(Template)]
#[template(path = "keys/detail.html")]
struct DetailPage {
    layout: Layout,
    key: ApiKey,
    row: Row,
    owner: String,
    created_by: String,
    revoked_by: Option<String>,
    chart: String,
    valid_7d: i64,
    rejected_7d: i64,
    outcomes: Vec<(String, i64)>,
    history: Vec<crate::db::events::Event>,
    return_to: String,
}

impl DetailPage {
    fn ret(&self) -> String {
        super::middleware::urlencode(&self.return_to)
    }
}

/// Hours shown in the usage chart.
const CHART_HOURS: i64 = 7 * 24;

/// A key's detail page: every field, its usage and its history.
#[get("/keys/{id}")]
pub async fn detail(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let key = load_key(&state, &user, id.into_inner(), KeyAct::View).await?;
    let now = crate::db::now();
    let start = crate::verify::hour_of(now) - chrono::TimeDelta::hours(CHART_HOURS - 1);
    let k = key.clone();
    let (owner, created_by, revoked_by, usage, history) = db(&state, move |c| {
        let label = |c: &mut crate::db::DbConn, id: &str| -> Result<String, AppError> {
            Ok(crate::db::users::get(c, &k.workspace_id, id)?
                .map_or_else(|| id.to_owned(), |u| format!("{} ({})", u.name, u.email)))
        };
        let owner = match &k.owner_id {
            Some(o) => label(c, o)?,
            None => "Workspace".to_owned(),
        };
        let created_by = label(c, &k.created_by)?;
        let revoked_by = match &k.revoked_by {
            Some(r) => Some(label(c, r)?),
            None => None,
        };
        let usage =
            crate::db::usage::since(c, &k.workspace_id, Some(std::slice::from_ref(&k.id)), start)?;
        let history = crate::db::events::for_target(c, &k.workspace_id, &k.id)?;
        Ok((owner, created_by, revoked_by, usage, history))
    })
    .await?;
    let bars = hourly(&usage, start, CHART_HOURS)
        .remove(&key.id)
        .unwrap_or_else(|| vec![Bar::default(); CHART_HOURS as usize]);
    let mut by_outcome: std::collections::BTreeMap<String, i64> = std::collections::BTreeMap::new();
    for u in &usage {
        *by_outcome.entry(u.outcome.clone()).or_default() += u.count;
    }
    let key_with_owner = KeyWithOwner {
        key: key.clone(),
        owner_email: None,
        owner_name: None,
    };
    let page = DetailPage {
        layout: Layout::new(
            &session,
            &user,
            key.name.clone(),
            if key.is_personal() {
                "personal-keys"
            } else {
                "workspace-keys"
            },
        )?,
        row: row(&key_with_owner, &user, now),
        return_to: format!("/keys/{}", key.id),
        valid_7d: bars.iter().map(|b| b.valid).sum(),
        rejected_7d: bars.iter().map(|b| b.rejected).sum(),
        chart: crate::domain::chart::stacked_bars(&bars, 840, 140),
        outcomes: by_outcome.into_iter().collect(),
        key,
        owner,
        created_by,
        revoked_by,
        history,
    };
    render(&page, StatusCode::OK)
}
