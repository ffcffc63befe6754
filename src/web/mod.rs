//! The server-rendered web application: handlers grouped by page, each
//! page's template struct next to its handler.

pub mod account;
pub mod auth;
pub mod docs;
pub mod errors;
pub mod events;
pub mod export;
pub mod keys;
pub mod layout;
pub mod leaks;
pub mod pages;
pub mod plans;
pub mod service_accounts;
pub mod session;
pub mod settings;
pub mod sso;
pub mod users;
pub mod webhooks;
pub mod workspaces;

use crate::db::DbConn;
use crate::domain::policy::Action;
use crate::error::AppError;
use actix_web::web;

pub use crate::http::{client_ip, is_htmx, user_agent};

pub use crate::state::AppState;
pub use session::CurrentUser;

/// Database work for a page: [`crate::app::run_as`] with the pages' error
/// type (key-cache changes are applied before it returns, as for every use
/// case).
pub async fn db<F, T>(state: &web::Data<AppState>, f: F) -> Result<T, AppError>
where
    F: FnOnce(&mut DbConn) -> Result<T, AppError> + Send + 'static,
    T: Send + 'static,
{
    crate::app::run_as(state, f).await
}

/// Ask the policy module; turn a refusal into the matching error page.
pub fn authorize(user: &CurrentUser, action: Action<'_>) -> Result<(), AppError> {
    Ok(crate::app::authorize(&user.actor, action)?)
}

/// The pages' scope and how its errors look: every path the API does not
/// claim.
pub fn error_scopes() -> Vec<(&'static str, crate::http::middleware::Render)> {
    vec![("/", errors::render)]
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
        .service(sso::start)
        .service(sso::callback)
        .service(account::overview)
        .service(account::password_form)
        .service(account::change_password)
        .service(account::reminders)
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
        .service(keys::actions::top_up)
        .service(keys::regenerate)
        .service(keys::revoke)
        .service(keys::delete)
        // Before the catch-all confirmation route `/keys/{id}/{what}`.
        .service(keys::requests::requests_page)
        .service(keys::requests::requests_csv)
        .service(keys::requests::end_grace_form)
        .service(keys::requests::end_grace)
        .service(keys::reveal::reveal_page)
        .service(keys::reveal::confirm_password)
        .service(keys::reveal::reveal)
        .service(keys::confirm_form)
        .service(keys::detail::detail)
        .service(settings::settings_page)
        .service(settings::switch_off_confirm)
        .service(settings::switch)
        .service(settings::recoverable_off_confirm)
        .service(settings::recoverable)
        .service(settings::limits)
        .service(settings::add_permission)
        .service(settings::describe_permission)
        .service(settings::retire_permission)
        .service(settings::restore_permission)
        // Settings → Single sign-on.
        .service(sso::settings_page)
        .service(sso::save_settings)
        .service(plans::plans_page)
        .service(plans::create)
        .service(plans::delete_confirm)
        .service(plans::delete)
        .service(plans::plan_detail)
        .service(plans::save)
        // Settings → Webhooks.
        .service(webhooks::list)
        .service(webhooks::create)
        .service(webhooks::detail)
        .service(webhooks::update)
        .service(webhooks::delete_confirm)
        .service(webhooks::delete)
        .service(webhooks::roll_confirm)
        .service(webhooks::roll)
        .service(webhooks::send_test)
        .service(webhooks::resend)
        .service(webhooks::reminders)
        .service(events::list)
        .service(events::export)
        .service(users::list)
        .service(users::add)
        .service(users::change_role)
        .service(users::renew_invite)
        .service(users::remove_confirm)
        .service(users::remove)
        // Before `/workspace/service-accounts/{id}`.
        .service(service_accounts::new_form)
        .service(service_accounts::create)
        .service(service_accounts::detail)
        .service(service_accounts::update)
        .service(service_accounts::disable)
        .service(service_accounts::enable)
        .service(service_accounts::delete_confirm)
        .service(service_accounts::delete)
        .service(service_accounts::create_key)
        .service(workspaces::list)
        .service(workspaces::switch)
        .service(workspaces::accept)
        .service(workspaces::decline)
        .service(leaks::report_form)
        .service(leaks::report)
        .service(leaks::set_response);
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

impl From<Vec<crate::domain::input::FieldError>> for FormErrors {
    fn from(errors: Vec<crate::domain::input::FieldError>) -> Self {
        FormErrors(errors)
    }
}

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
