//! The server-rendered web application: handlers grouped by page, each
//! page's template struct next to its handler.

pub mod account;
pub mod auth;
pub mod docs;
pub mod events;
pub mod export;
pub mod keys;
pub mod layout;
pub mod middleware;
pub mod pages;
pub mod session;
pub mod settings;
pub mod users;
pub mod workspaces;

use crate::db::DbConn;
use crate::domain::policy::{self, Action, Decision};
use crate::error::AppError;
use actix_web::{HttpRequest, web};

pub use crate::state::AppState;
pub use session::CurrentUser;

/// Run database work on the blocking pool, never on the event loop. This is
/// the one way handlers reach the database: whatever the work changed for
/// key checks (recorded by the `db` functions that wrote it) is applied to
/// the key cache here, before the response is sent, so a revoke answered
/// to the user is already refused by this instance.
pub async fn db<F, T>(state: &web::Data<AppState>, f: F) -> Result<T, AppError>
where
    F: FnOnce(&mut DbConn) -> Result<T, AppError> + Send + 'static,
    T: Send + 'static,
{
    if !state.db_health.admit(std::time::Instant::now()) {
        return Err(AppError::Unavailable);
    }
    let pool = state.pool.clone();
    let health = state.db_health.clone();
    let (result, changes) = web::block(move || {
        crate::db::changes::collect(|| {
            let mut conn = pool.get().inspect_err(|_| {
                health.failed(std::time::Instant::now());
            })?;
            let result = f(&mut conn);
            match &result {
                Err(AppError::Db(e)) if crate::db::health::is_connection_error(e) => {
                    health.failed(std::time::Instant::now());
                }
                _ => health.succeeded(),
            }
            result
        })
    })
    .await?;
    for change in &changes {
        state.verifier.apply(change);
    }
    result
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

/// The client's address, for sign-in throttling and the audit trail: the
/// TCP peer, unless the peer is one of `KEYWARD_TRUSTED_PROXIES`; only then
/// is `X-Forwarded-For` believed (a client could forge it to dodge
/// throttling otherwise).
pub fn client_ip(req: &HttpRequest) -> Option<String> {
    let peer = req.peer_addr()?.ip();
    let trusted = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.config.trusted_proxies.clone())
        .unwrap_or_default();
    let forwarded: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .collect();
    Some(forwarded_client(peer, &forwarded.join(","), &trusted).to_string())
}

/// Walk `X-Forwarded-For` from the right (the hop nearest to us) past
/// trusted proxies; the first untrusted address is the client. Anything
/// left of it was written by the client and is ignored. An unreadable hop
/// stops the walk at the last address known to be good.
pub fn forwarded_client(
    peer: std::net::IpAddr,
    forwarded_for: &str,
    trusted: &[ipnet::IpNet],
) -> std::net::IpAddr {
    let is_trusted = |ip: &std::net::IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let mut client = peer;
    for hop in forwarded_for
        .rsplit(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
    {
        let Ok(ip) = hop.parse::<std::net::IpAddr>() else {
            break;
        };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    client
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
        .service(docs::docs)
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
        .service(keys::inventory)
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
        .service(users::remove)
        .service(workspaces::list)
        .service(workspaces::switch)
        .service(workspaces::accept)
        .service(workspaces::decline);
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

#[cfg(test)]
mod tests {
    use super::forwarded_client;

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let nets: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        // A client talking to us directly cannot claim another address.
        assert_eq!(
            forwarded_client(ip("203.0.113.9"), "1.2.3.4", &nets),
            ip("203.0.113.9")
        );
        // Behind two proxies: the first untrusted hop from the right.
        assert_eq!(
            forwarded_client(ip("10.0.0.2"), "6.6.6.6, 198.51.100.7, 10.0.0.1", &nets),
            ip("198.51.100.7")
        );
        // Junk stops the walk at the last good address.
        assert_eq!(
            forwarded_client(ip("10.0.0.2"), "nonsense", &nets),
            ip("10.0.0.2")
        );
        assert_eq!(forwarded_client(ip("10.0.0.2"), "", &nets), ip("10.0.0.2"));
        assert_eq!(
            forwarded_client(ip("10.0.0.2"), "10.0.0.5", &nets),
            ip("10.0.0.5")
        );
    }
}
