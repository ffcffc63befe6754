//! The server-rendered web application: handlers grouped by page, each
//! page's template struct next to its handler.

pub mod account;
pub mod auth;
pub mod events;
pub mod keys;
pub mod layout;
pub mod middleware;
pub mod pages;
pub mod session;
pub mod settings;
pub mod users;

use crate::config::Config;
use crate::db::{DbConn, Pool};
use crate::domain::policy::{self, Action, Decision};
use crate::domain::throttle::Throttle;
use crate::error::AppError;
use actix_web::{HttpRequest, web};
use std::sync::Mutex;
use std::time::Duration;

pub use session::CurrentUser;

/// Shared state of one running server.
pub struct AppState {
    pub pool: Pool,
    pub config: Config,
    /// Failed sign-ins per account.
    pub login_by_account: Throttle,
    /// Failed sign-ins per client address.
    pub login_by_ip: Throttle,
    /// Wrong current passwords on the change-password form, per user.
    pub password_change: Throttle,
    /// Digest of the one-time first-run setup token, while setup is pending.
    pub setup_token_digest: Mutex<Option<String>>,
    /// Key checking: cache, rate limits, last-used buffer.
    pub keys: crate::api::verifier::KeyService,
}

impl AppState {
    pub fn new(pool: Pool, config: Config, setup_token_digest: Option<String>) -> Self {
        AppState {
            pool,
            config,
            login_by_account: Throttle::new(5, Duration::from_secs(15 * 60)),
            login_by_ip: Throttle::new(50, Duration::from_secs(15 * 60)),
            password_change: Throttle::new(5, Duration::from_secs(15 * 60)),
            setup_token_digest: Mutex::new(setup_token_digest),
            keys: crate::api::verifier::KeyService::new(),
        }
    }

    pub fn session_lifetime(&self) -> crate::db::sessions::Lifetime {
        let delta =
            |d: Duration| chrono::TimeDelta::from_std(d).unwrap_or(chrono::TimeDelta::hours(1));
        crate::db::sessions::Lifetime {
            idle: delta(self.config.session_idle),
            max: delta(self.config.session_max),
        }
    }
}

/// Run database work on the blocking pool, never on the event loop.
pub async fn db<F, T>(state: &web::Data<AppState>, f: F) -> Result<T, AppError>
where
    F: FnOnce(&mut DbConn) -> Result<T, AppError> + Send + 'static,
    T: Send + 'static,
{
    let pool = state.pool.clone();
    web::block(move || {
        let mut conn = pool.get()?;
        f(&mut conn)
    })
    .await?
}

/// Ask the policy module; turn a refusal into the matching error page.
pub fn authorize(user: &CurrentUser, action: Action<'_>) -> Result<(), AppError> {
    match policy::authorize(&user.actor, action) {
        Decision::Allow => Ok(()),
        Decision::Forbidden => Err(AppError::forbidden()),
        Decision::NotFound => Err(AppError::NotFound),
    }
}

/// Whether the request was made by htmx (and wants a partial back).
pub fn is_htmx(req: &HttpRequest) -> bool {
    req.headers().contains_key("hx-request")
}

/// The client's address: the TCP peer. Forwarded headers are not trusted,
/// because a client could forge them to dodge sign-in throttling.
pub fn client_ip(req: &HttpRequest) -> Option<String> {
    req.peer_addr().map(|a| a.ip().to_string())
}

/// The User-Agent header, truncated, for the audit trail.
pub fn user_agent(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(actix_web::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(300).collect())
}

/// Register every web route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(pages::healthz)
        .service(pages::readyz)
        .service(pages::static_file)
        .service(pages::home)
        .service(auth::login_form)
        .service(auth::login)
        .service(auth::logout)
        .service(auth::setup_form)
        .service(auth::setup)
        .service(auth::invite_form)
        .service(auth::invite)
        .service(account::overview)
        .service(account::password_form)
        .service(account::change_password)
        .service(keys::personal_list)
        .service(keys::personal_search)
        .service(keys::workspace_list)
        .service(keys::workspace_search)
        .service(keys::new_personal)
        .service(keys::new_workspace)
        .service(keys::create_personal)
        .service(keys::create_workspace)
        .service(keys::bulk_confirm)
        .service(keys::bulk_revoke)
        .service(keys::disable)
        .service(keys::enable)
        .service(keys::review)
        .service(keys::edit_form)
        .service(keys::edit)
        .service(keys::regenerate)
        .service(keys::revoke)
        .service(keys::delete)
        .service(keys::confirm_form)
        .service(keys::detail::detail)
        .service(settings::settings_page)
        .service(settings::switch_off_confirm)
        .service(settings::switch)
        .service(settings::limits)
        .service(settings::add_permission)
        .service(settings::describe_permission)
        .service(settings::retire_permission)
        .service(settings::restore_permission)
        .service(events::list)
        .service(events::export)
        .service(users::list)
        .service(users::add)
        .service(users::change_role)
        .service(users::renew_invite)
        .service(users::remove_confirm)
        .service(users::remove);
}

/// Render a template with a given status (e.g. 422 for a form with errors).
pub fn render<T: askama::Template>(
    template: &T,
    status: actix_web::http::StatusCode,
) -> Result<actix_web::HttpResponse, AppError> {
    Ok(actix_web::HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(template.render()?))
}

/// A 303 redirect (after a successful form post).
pub fn see_other(location: &str) -> actix_web::HttpResponse {
    actix_web::HttpResponse::SeeOther()
        .insert_header((actix_web::http::header::LOCATION, location))
        .finish()
}

/// Field errors of a submitted form, shown next to their inputs.
#[derive(Debug, Default, Clone)]
pub struct FormErrors(Vec<crate::domain::input::FieldError>);

impl FormErrors {
    /// Keep the value, or remember the error and return `None`.
    pub fn check<T>(&mut self, result: Result<T, crate::domain::input::FieldError>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.0.push(e);
                None
            }
        }
    }

    pub fn add(&mut self, field: &'static str, message: impl Into<String>) {
        self.0
            .push(crate::domain::input::FieldError::new(field, message));
    }

    /// The message for `field`, if it has one.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|e| e.field == field)
            .map(|e| e.message.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn all(&self) -> &[crate::domain::input::FieldError] {
        &self.0
    }
}
