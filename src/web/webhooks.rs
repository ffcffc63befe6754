//! Workspace → Settings → Webhooks (admins): endpoints, their signing
//! secrets (shown once), delivery logs, test events and resends. The use
//! cases are `app::webhooks`, which the management API calls too.

use super::layout::Layout;
use super::session::{self, Flash};
use super::{AppState, CurrentUser, FormErrors, render, see_other};
use crate::app::Error;
use crate::app::webhooks::{self as uc, Input};
use crate::db::webhooks::{Attempt, Delivery, Endpoint};
use crate::error::AppError;
use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

/// An endpoint as the pages list it.
pub struct Row {
    pub id: String,
    pub url: String,
    pub description: String,
    pub types: String,
    pub failing_since: Option<String>,
}

fn row(e: &Endpoint) -> Row {
    Row {
        id: e.id.clone(),
        url: e.url.clone(),
        description: e.description.clone(),
        types: e.types().join(", "),
        failing_since: e.failing_since.map(crate::domain::time::rfc3339),
    }
}

/// The add/edit form's state.
pub struct FormState {
    pub url: String,
    pub description: String,
    pub chosen: Vec<String>,
    pub errors: FormErrors,
}

impl FormState {
    fn empty() -> Self {
        FormState {
            url: String::new(),
            description: String::new(),
            chosen: vec!["*".into()],
            errors: FormErrors::default(),
        }
    }

    fn of(e: &Endpoint) -> Self {
        FormState {
            url: e.url.clone(),
            description: e.description.clone(),
            chosen: e.types(),
            errors: FormErrors::default(),
        }
    }

    pub fn has(&self, t: &str) -> bool {
        self.chosen.iter().any(|c| c == t)
    }
}

#[derive(Template)]
#[template(path = "webhooks/list.html")]
struct ListPage {
    layout: Layout,
    /// The workspace's expiry reminder days, and their form's errors.
    reminder_days: String,
    reminder_errors: FormErrors,
    email_configured: bool,
    endpoints: Vec<Row>,
    form: FormState,
    types: Vec<&'static str>,
}

#[derive(Template)]
#[template(path = "webhooks/detail.html")]
struct DetailPage {
    layout: Layout,
    endpoint: Row,
    form: FormState,
    types: Vec<&'static str>,
    attempts: Vec<AttemptRow>,
    deliveries: Vec<DeliveryRow>,
}

pub struct AttemptRow {
    pub time: String,
    pub message_id: String,
    pub event_type: String,
    pub attempt: i32,
    pub status: String,
    pub ok: bool,
    pub latency_ms: i32,
    pub response: String,
}

pub struct DeliveryRow {
    pub message_id: String,
    pub event_type: String,
    pub created_at: String,
    pub attempts: i32,
    pub outcome: String,
}

fn attempt_row(a: Attempt) -> AttemptRow {
    AttemptRow {
        time: crate::domain::time::rfc3339(a.attempted_at),
        ok: a.status.is_some_and(|s| (200..300).contains(&s)),
        status: a.status.map_or("no answer".into(), |s| s.to_string()),
        message_id: a.outbox_id,
        event_type: a.event_type,
        attempt: a.attempt,
        latency_ms: a.latency_ms,
        response: a.response_head,
    }
}

fn delivery_row(d: Delivery) -> DeliveryRow {
    DeliveryRow {
        outcome: match d.outcome.as_deref() {
            Some("delivered") => "Delivered".into(),
            Some("failed") => "Given up".into(),
            _ => format!(
                "Pending (next try {})",
                crate::domain::time::rfc3339(d.next_attempt_at)
            ),
        },
        message_id: d.id,
        event_type: d.event_type,
        created_at: crate::domain::time::rfc3339(d.created_at),
        attempts: d.attempts,
    }
}

#[derive(Template)]
#[template(path = "webhooks/secret.html")]
struct SecretPage {
    layout: Layout,
    endpoint: Row,
    secret: String,
    rolled: bool,
}

#[derive(Template)]
#[template(path = "webhooks/confirm.html")]
struct ConfirmPage {
    layout: Layout,
    endpoint: Row,
    /// `delete` or `roll`.
    what: &'static str,
}

const TITLE: &str = "Webhooks";
const NAV: &str = "settings";

async fn list_page(
    state: &web::Data<AppState>,
    session: &Session,
    user: &CurrentUser,
    form: FormState,
) -> Result<ListPage, AppError> {
    let all = uc::list(state, &user.ctx()).await?;
    let reminder_days = crate::app::mail::reminder_days(state, &user.ctx()).await?;
    Ok(ListPage {
        reminder_days,
        reminder_errors: FormErrors::default(),
        email_configured: state.config.smtp_url.is_some(),
        layout: Layout::new(session, user, TITLE, NAV)?,
        endpoints: all.iter().map(row).collect(),
        form,
        types: uc::event_types(),
    })
}

#[get("/workspace/webhooks")]
pub async fn list(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
) -> Result<HttpResponse, AppError> {
    let page = list_page(&state, &session, &user, FormState::empty()).await?;
    render(&page, StatusCode::OK)
}

#[derive(Deserialize)]
struct EndpointForm {
    #[serde(default)]
    url: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    event_types: Vec<String>,
}

fn parse(body: &[u8]) -> Result<EndpointForm, AppError> {
    serde_html_form::from_bytes(body).map_err(|e| {
        AppError::BadRequest(format!(
            "The form could not be read ({e}); nothing was changed."
        ))
    })
}

fn input(f: &EndpointForm) -> Input {
    Input {
        url: f.url.clone(),
        description: f.description.clone(),
        event_types: f.event_types.clone(),
    }
}

fn refill(f: EndpointForm, errors: Vec<crate::domain::input::FieldError>) -> FormState {
    FormState {
        url: f.url,
        description: f.description,
        chosen: f.event_types,
        errors: FormErrors::from(errors),
    }
}

#[post("/workspace/webhooks")]
pub async fn create(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    user.ctx()
        .authorize(crate::domain::policy::Action::ManageSettings)?;
    let form = parse(&body)?;
    match uc::create(&state, &user.ctx(), &input(&form)).await {
        Ok((e, secret)) => {
            let page = SecretPage {
                layout: Layout::new(&session, &user, "Save your signing secret", NAV)?,
                endpoint: row(&e),
                secret,
                rolled: false,
            };
            render(&page, StatusCode::OK)
        }
        Err(Error::Invalid(errors)) => {
            let page = list_page(&state, &session, &user, refill(form, errors)).await?;
            render(&page, StatusCode::UNPROCESSABLE_ENTITY)
        }
        Err(e) => Err(e.into()),
    }
}

async fn detail_page(
    state: &web::Data<AppState>,
    session: &Session,
    user: &CurrentUser,
    id: &str,
    form: Option<FormState>,
) -> Result<DetailPage, AppError> {
    let log = uc::log(state, &user.ctx(), id).await?;
    Ok(DetailPage {
        layout: Layout::new(session, user, TITLE, NAV)?,
        form: form.unwrap_or_else(|| FormState::of(&log.endpoint)),
        endpoint: row(&log.endpoint),
        types: uc::event_types(),
        attempts: log.attempts.into_iter().map(attempt_row).collect(),
        deliveries: log.deliveries.into_iter().map(delivery_row).collect(),
    })
}

#[get("/workspace/webhooks/{id}")]
pub async fn detail(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let page = detail_page(&state, &session, &user, &id, None).await?;
    render(&page, StatusCode::OK)
}

#[post("/workspace/webhooks/{id}")]
pub async fn update(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    user.ctx()
        .authorize(crate::domain::policy::Action::ManageSettings)?;
    let form = parse(&body)?;
    match uc::update(&state, &user.ctx(), &id, &input(&form)).await {
        Ok(_) => {
            session::set_flash(&session, Flash::success("The endpoint was saved."))?;
            Ok(see_other(&format!("/workspace/webhooks/{id}")))
        }
        Err(Error::Invalid(errors)) => {
            let page =
                detail_page(&state, &session, &user, &id, Some(refill(form, errors))).await?;
            render(&page, StatusCode::UNPROCESSABLE_ENTITY)
        }
        Err(e) => Err(e.into()),
    }
}

async fn confirm(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    id: String,
    what: &'static str,
) -> Result<HttpResponse, AppError> {
    let e = uc::get(&state, &user.ctx(), &id).await?;
    let title = if what == "delete" {
        "Delete the endpoint?"
    } else {
        "Roll the signing secret?"
    };
    let page = ConfirmPage {
        layout: Layout::new(&session, &user, title, NAV)?,
        endpoint: row(&e),
        what,
    };
    render(&page, StatusCode::OK)
}

#[get("/workspace/webhooks/{id}/delete")]
pub async fn delete_confirm(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    confirm(state, session, user, id.into_inner(), "delete").await
}

#[post("/workspace/webhooks/{id}/delete")]
pub async fn delete(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    uc::delete(&state, &user.ctx(), &id).await?;
    session::set_flash(
        &session,
        Flash::success("The endpoint was deleted, with its pending deliveries and its log."),
    )?;
    Ok(see_other("/workspace/webhooks"))
}

#[get("/workspace/webhooks/{id}/roll")]
pub async fn roll_confirm(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    confirm(state, session, user, id.into_inner(), "roll").await
}

#[post("/workspace/webhooks/{id}/roll")]
pub async fn roll(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let (e, secret) = uc::roll(&state, &user.ctx(), &id).await?;
    let page = SecretPage {
        layout: Layout::new(&session, &user, "Save your signing secret", NAV)?,
        endpoint: row(&e),
        secret,
        rolled: true,
    };
    render(&page, StatusCode::OK)
}

#[post("/workspace/webhooks/{id}/test")]
pub async fn send_test(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let msg = uc::send_test(&state, &user.ctx(), &id).await?;
    session::set_flash(
        &session,
        Flash::success(format!(
            "A test event ({msg}) is on its way; its attempts appear below."
        )),
    )?;
    Ok(see_other(&format!("/workspace/webhooks/{id}")))
}

#[post("/workspace/webhooks/{id}/deliveries/{message}/resend")]
pub async fn resend(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AppError> {
    let (id, message) = path.into_inner();
    let msg = uc::resend(&state, &user.ctx(), &id, &message).await?;
    session::set_flash(
        &session,
        Flash::success(format!("Sent again as {msg}; its attempts appear below.")),
    )?;
    Ok(see_other(&format!("/workspace/webhooks/{id}")))
}

#[derive(Deserialize)]
struct RemindersForm {
    #[serde(default)]
    reminder_days: String,
}

/// When the workspace's expiry reminders go out.
#[post("/workspace/reminders")]
pub async fn reminders(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    form: web::Form<RemindersForm>,
) -> Result<HttpResponse, AppError> {
    match crate::app::mail::set_reminder_days(&state, &user.ctx(), &form.reminder_days).await {
        Ok(changed) => {
            let message = if changed {
                "Expiry reminders go out at the new days."
            } else {
                "Nothing changed."
            };
            session::set_flash(&session, Flash::success(message))?;
            Ok(see_other("/workspace/webhooks#reminders"))
        }
        Err(Error::Invalid(errors)) => {
            let mut page = list_page(&state, &session, &user, FormState::empty()).await?;
            page.reminder_days = form.into_inner().reminder_days;
            page.reminder_errors = FormErrors::from(errors);
            render(&page, StatusCode::UNPROCESSABLE_ENTITY)
        }
        Err(e) => Err(e.into()),
    }
}
