//! Leak response pages (issue 25): the public "report a leaked key" page,
//! and the workspace setting of what a leak report does.

use super::layout::Layout;
use super::session::{self, Flash};
use super::{AppState, CurrentUser, client_ip, render, see_other};
use crate::app::Error;
use crate::app::leaks::{self as uc, ReportError};
use crate::error::AppError;
use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

#[derive(Template)]
#[template(path = "leaks/report.html")]
struct ReportPage {
    layout: Layout,
    example: String,
    max_keys: usize,
    notice: Option<&'static str>,
    error: Option<String>,
}

/// What the page answers every accepted report, whatever the keys were.
const RECEIVED: &str = "Thank you. If any of these is a live key, its workspace has been told and the key is handled as its owners chose.";

fn page(state: &AppState, session: &Session) -> Result<ReportPage, AppError> {
    Ok(ReportPage {
        layout: Layout::anonymous(session, "Report a leaked key")?,
        example: format!(
            "{}…",
            crate::domain::keys::Environment::Live.start(&state.config.leaks.key_prefix)
        ),
        max_keys: uc::MAX_KEYS_PER_REPORT,
        notice: None,
        error: None,
    })
}

/// The public report page: no account needed.
#[get("/report-leak")]
pub async fn report_form(
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, AppError> {
    render(&page(&state, &session)?, StatusCode::OK)
}

#[derive(Deserialize)]
pub struct ReportForm {
    #[serde(default)]
    keys: String,
    #[serde(default)]
    url: String,
}

/// A report from the page (CSRF-checked like every form).
#[post("/report-leak")]
pub async fn report(
    state: web::Data<AppState>,
    session: Session,
    req: HttpRequest,
    form: web::Form<ReportForm>,
) -> Result<HttpResponse, AppError> {
    let keys: Vec<String> = form
        .keys
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|k| !k.is_empty())
        .map(str::to_owned)
        .collect();
    let url = Some(form.url.as_str()).filter(|u| !u.trim().is_empty());
    let ip = client_ip(&req);
    let mut view = page(&state, &session)?;
    let status = match uc::public_report(&state, ip.as_deref(), keys, url).await {
        Ok(()) => {
            view.notice = Some(RECEIVED);
            StatusCode::OK
        }
        Err(e @ ReportError::TooMany(_)) => {
            view.error = Some(e.to_string());
            StatusCode::TOO_MANY_REQUESTS
        }
        Err(e @ ReportError::TooManyKeys) => {
            view.error = Some(e.to_string());
            StatusCode::UNPROCESSABLE_ENTITY
        }
        Err(ReportError::App(e)) => return Err(e.into()),
    };
    render(&view, status)
}

#[derive(Deserialize)]
pub struct LeakSettingForm {
    #[serde(default)]
    leak_response: String,
}

/// Settings → Leaked keys: revoke at once, or only report.
#[post("/workspace/settings/leaks")]
pub async fn set_response(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    form: web::Form<LeakSettingForm>,
) -> Result<HttpResponse, AppError> {
    let message = match uc::set_response(&state, &user.ctx(), &form.leak_response).await {
        Ok(true) if form.leak_response == "report" => {
            "Saved: a key reported leaked keeps working; its report shows on its page and in Events."
        }
        Ok(true) => "Saved: a key reported leaked is revoked at once.",
        Ok(false) => "Nothing changed.",
        Err(Error::Invalid(errors)) => {
            let text = errors
                .first()
                .map(|e| e.message.clone())
                .unwrap_or_default();
            session::set_flash(&session, Flash::error(text))?;
            return Ok(see_other("/workspace/settings#s-leaks"));
        }
        Err(e) => return Err(e.into()),
    };
    session::set_flash(&session, Flash::success(message))?;
    Ok(see_other("/workspace/settings#s-leaks"))
}
