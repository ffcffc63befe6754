//! API key pages: Account → Personal API keys, Workspace → API keys (with
//! the "All keys" view), the create dialog and one-time "Save your key"
//! view, and the row actions. Dialog views are sent as fragments to htmx
//! and as full pages otherwise, so everything works without JavaScript.
//!
//! One file per page: [`list`], [`create`], [`actions`] (everything done to
//! one key, and bulk revoke) and [`detail`]; this module holds what they
//! share.

pub mod actions;
pub mod create;
// Public rather than re-exported: its handler shares the module's name.
pub mod detail;
mod export;
mod list;
pub mod requests;
pub mod reveal;

pub use actions::{
    bulk_confirm, bulk_revoke, confirm_form, delete, disable, edit, edit_form, enable, regenerate,
    review, revoke,
};
pub use create::{create_personal, create_workspace, new_personal, new_workspace};
pub use export::inventory;
pub use list::{personal_list, personal_search, workspace_list, workspace_search};

use super::layout::Layout;
use super::{AppState, CurrentUser, is_htmx, render};
use crate::app::Ctx;
use crate::app::keys::{self as uc, Act, Kind, Listing};
use crate::db::keys::{ApiKey, KeyWithOwner};
use crate::domain::chart::Bar;
use crate::domain::keys::{Environment, Status};
use crate::domain::policy::{self, Action};
use crate::domain::time::Moment;
use crate::error::AppError;
use actix_session::Session;
use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::NaiveDateTime;
use futures_util::future::LocalBoxFuture;
use serde::Deserialize;

/// Which list a page shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    Personal,
    Workspace,
    All,
    /// The All keys view narrowed to service accounts' keys.
    Service,
}

impl ListKind {
    /// Every owner's keys (the owner column shows): All, or its service
    /// accounts' part.
    pub fn is_all(self) -> bool {
        matches!(self, ListKind::All | ListKind::Service)
    }

    pub fn is_service(self) -> bool {
        self == ListKind::Service
    }

    /// The `view` parameter of this list, if it has one.
    pub fn view(self) -> Option<&'static str> {
        match self {
            ListKind::All => Some("all"),
            ListKind::Service => Some("service"),
            ListKind::Personal | ListKind::Workspace => None,
        }
    }

    pub fn is_personal(self) -> bool {
        self == ListKind::Personal
    }

    pub fn title(self) -> &'static str {
        match self {
            ListKind::Personal => "Personal API keys",
            ListKind::Workspace | ListKind::All | ListKind::Service => "Workspace API keys",
        }
    }

    pub fn base(self) -> &'static str {
        match self {
            ListKind::Personal => "/account/keys",
            ListKind::Workspace | ListKind::All | ListKind::Service => "/workspace/keys",
        }
    }

    fn nav(self) -> &'static str {
        match self {
            ListKind::Personal => "personal-keys",
            ListKind::Workspace | ListKind::All | ListKind::Service => "workspace-keys",
        }
    }

    /// The list of the use cases this page shows.
    fn listing(self) -> Listing {
        match self {
            ListKind::Personal => Listing::Own,
            ListKind::Workspace => Listing::Workspace,
            ListKind::All | ListKind::Service => Listing::All,
        }
    }

    /// The kind of key this page creates.
    fn key_kind(self) -> Kind {
        match self {
            ListKind::Personal => Kind::Personal,
            ListKind::Workspace | ListKind::All | ListKind::Service => Kind::Workspace,
        }
    }

    /// The list URL with a query and view, for links and redirects.
    fn url(self, q: &str) -> String {
        self.url_with(q, false)
    }

    /// The list URL, optionally showing only keys that expire soon.
    fn url_with(self, q: &str, expiring: bool) -> String {
        let mut params: Vec<(&str, &str)> = Vec::new();
        if let Some(view) = self.view() {
            params.push(("view", view));
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

/// Human formatting of an optional time (templates add " UTC").
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
    /// When the key expires (`None`: never).
    pub expires: Option<Moment>,
    /// When the key was last used (`None`: never).
    pub last_used: Option<Moment>,
    pub created: Moment,
    pub owner: String,
    pub creator_removed: bool,
    pub grace_until: Option<String>,
    /// Edit (name, description, tags, rate limit): not once revoked.
    pub can_manage: bool,
    /// A new secret: only while the key can still be used (Active or
    /// Inactive); an expired key's new secret would be expired too.
    pub can_regenerate: bool,
    /// Delete: any status, revoked and expired included; the events stay.
    pub can_delete: bool,
    pub can_revoke: bool,
    pub can_review: bool,
    /// "Expires in N days" for active keys within [`EXPIRING_DAYS`].
    pub expiring: Option<String>,
    /// The workspace has API keys switched off: an Active key is paused.
    pub paused: bool,
    /// Verifications in the last 24 hours, and their sparkline.
    pub uses_24h: i64,
    pub sparkline: String,
    /// Its secret is kept encrypted and can be shown again (issue 27).
    pub recoverable: bool,
    /// "Show secret": a recoverable key, not revoked, the actor may manage.
    pub can_reveal: bool,
    /// "958 of 1,000 left": a key with a usage quota.
    pub quota_left: Option<String>,
}

impl Row {
    /// The status as a person reads it: an Active key of a workspace whose
    /// API keys are switched off says that it is paused, and why.
    pub fn status_text(&self) -> String {
        if self.paused && self.status == Status::Active {
            format!("{} — paused: API keys are off", self.status.label())
        } else {
            self.status.label().to_owned()
        }
    }
}

pub use crate::app::keys::EXPIRING_DAYS;

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
    let may_manage = policy::authorize(&user.actor, Action::ManageKey(key.key_ref())).is_allowed();
    let owner = match (&k.owner_name, &k.owner_email) {
        // A service account's address is a placeholder: say what it is.
        (Some(name), Some(_)) if key.is_service() => format!("{name} (service account)"),
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
        expires: key.expires_at.map(|t| Moment::new(t, now)),
        last_used: key.last_used_at.map(|t| Moment::new(t, now)),
        created: Moment::new(key.created_at, now),
        owner,
        creator_removed: key.creator_removed_at.is_some(),
        grace_until: key.grace_until(now).map(|t| when(Some(t), "")),
        can_manage: status != Status::Revoked && may_manage,
        can_regenerate: status.can_revoke() && may_manage,
        can_delete: may_manage,
        can_revoke: status.can_revoke()
            && policy::authorize(&user.actor, Action::RevokeKey(key.key_ref())).is_allowed(),
        can_review: key.creator_removed_at.is_some()
            && policy::authorize(&user.actor, Action::ReviewKey(key.key_ref())).is_allowed(),
        expiring: expiring_label(key.expires_at, status, now),
        paused: false,
        uses_24h: 0,
        quota_left: None,
        sparkline: String::new(),
        recoverable: key.recoverable,
        can_reveal: key.recoverable && status != Status::Revoked && may_manage,
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

/// A generic page around a fragment, for requests without htmx.
#[derive(Template)]
#[template(path = "shell.html")]
struct Shell {
    layout: Layout,
    content: String,
}

/// Only our own list pages are accepted as places to return to.
fn safe_return(raw: Option<&str>, key: Option<&ApiKey>) -> String {
    match raw {
        Some(r)
            if (r.starts_with("/account/keys")
                || r.starts_with("/workspace/keys")
                || r.starts_with("/keys/key_")
                || r.starts_with("/workspace/service-accounts/sa_"))
                && !r.contains("//") =>
        {
            r.to_owned()
        }
        _ => match key {
            Some(k) if k.is_service() => format!(
                "/workspace/service-accounts/{}",
                k.owner_id.as_deref().unwrap_or_default()
            ),
            Some(k) if !k.is_personal() => "/workspace/keys".to_owned(),
            _ => "/account/keys".to_owned(),
        },
    }
}

/// The one-time form nonce (what makes a re-submitted create or regenerate
/// form do nothing) must be present and look like one we issued.
pub(crate) fn check_nonce(nonce: &str) -> Result<(), AppError> {
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
pub(crate) fn parse_form<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, AppError> {
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
    /// Where this server answers, for the "check it works" hint.
    api_base: String,
    /// A recoverable key: its secret can be shown again (issue 27).
    recoverable: bool,
}

/// A form submitted twice: nothing new is created, the secret is not shown again.
#[derive(Template)]
#[template(path = "keys/message.html")]
struct Message<'a> {
    title: &'a str,
    text: &'a str,
    back: &'a str,
}

/// What every key page handler extracts, in the order the handlers used to
/// take them: the request, the app state, the session and the signed-in
/// user (without a live session: the sign-in redirect).
/// The rate-limit field's hint: whether a limit holds across instances.
fn rate_limit_hint(state: &AppState) -> &'static str {
    if state.verifier.limits_shared() {
        "Requests per minute, counted across all keyward instances; empty for no limit."
    } else if state.config.verifier.shared_database {
        "Requests per minute, counted by each keyward instance separately (no Redis is configured); empty for no limit."
    } else {
        "Requests per minute; empty for no limit."
    }
}

pub struct Call {
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
}

impl Call {
    /// The use-case context of the signed-in member.
    fn ctx(&self) -> Ctx {
        self.user.ctx()
    }

    /// The fragment for htmx (into the dialog), or a full page around it.
    fn fragment_or_page<T: Template>(
        &self,
        title: &str,
        nav: &'static str,
        fragment: &T,
        status: StatusCode,
    ) -> Result<HttpResponse, AppError> {
        if is_htmx(&self.req) {
            render(fragment, status)
        } else {
            let page = Shell {
                layout: Layout::new(&self.session, &self.user, title, nav)?,
                content: fragment.render()?,
            };
            render(&page, status)
        }
    }

    /// The address integrations reach this server at: the configured public
    /// URL, or else the scheme and host this request came in on (what the
    /// user typed, also behind a proxy that forwards it).
    fn public_base(&self) -> String {
        crate::web::docs::public_base(&self.req, &self.state)
    }

    /// After a successful change: back to the list (a full navigation, also
    /// for htmx, so the list and its message are fresh).
    fn done(&self, to: &str) -> HttpResponse {
        if is_htmx(&self.req) {
            HttpResponse::Ok()
                .insert_header(("HX-Redirect", to.to_owned()))
                .finish()
        } else {
            super::see_other(to)
        }
    }
}

impl FromRequest for Call {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let parts = <(web::Data<AppState>, Session, CurrentUser)>::from_request(req, payload);
        let req = req.clone();
        Box::pin(async move {
            let (state, session, user) = parts.await?;
            Ok(Call {
                req,
                state,
                session,
                user,
            })
        })
    }
}

/// The `{id}` of a key route (`/keys/{id}` and `/keys/{id}/{what}`).
#[derive(Deserialize)]
struct KeyPath {
    id: String,
}

/// The key a `/keys/{id}/…` route is about. The only way to the key itself
/// is [`KeyTarget::load`], which asks the policy first, so no handler can
/// touch a key it forgot to authorize.
///
/// The key is looked up there rather than during extraction, so the body
/// is read and checked before any database work, as before.
pub struct KeyTarget {
    call: Call,
    id: String,
}

impl FromRequest for KeyTarget {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let parts = <(Call, web::Path<KeyPath>)>::from_request(req, payload);
        Box::pin(async move {
            let (call, path) = parts.await?;
            Ok(KeyTarget {
                call,
                id: path.into_inner().id,
            })
        })
    }
}

impl KeyTarget {
    /// The key, from the actor's workspace only (any other id is not
    /// found), once the policy allows `act` on it.
    async fn load(self, act: Act) -> Result<(Call, ApiKey), AppError> {
        let KeyTarget { call, id } = self;
        let key = uc::load(&call.state, &call.ctx(), &id, act).await?;
        Ok((call, key))
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
