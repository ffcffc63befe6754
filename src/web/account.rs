//! Account: one's own profile and password.

use super::layout::Layout;
use super::session::{self, Flash};
use super::{AppState, CurrentUser, FormErrors, authorize, render, see_other};
use crate::app::Error;
use crate::app::auth as uc;
use crate::db::users;
use crate::domain::policy::Action;
use crate::error::AppError;
use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use askama::Template;
use askama_web::WebTemplate;
use serde::Deserialize;

/// Account overview (also the home page of operators, who have no keys).
#[derive(Template, WebTemplate)]
#[template(path = "account/overview.html")]
pub struct Overview {
    layout: Layout,
    user: users::User,
    workspace: String,
    /// Whether expiry reminders are off for this person.
    reminders_off: bool,
    /// Whether the operator configured email at all.
    email_configured: bool,
}

#[get("/account")]
pub async fn overview(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
) -> Result<Overview, AppError> {
    let reminders_off = crate::app::mail::reminders_off(&state, &user.ctx()).await?;
    Ok(Overview {
        layout: Layout::new(&session, &user, "Your account", "account")?,
        workspace: user.workspace_name().to_owned(),
        user: user.user,
        reminders_off,
        email_configured: state.config.smtp_url.is_some(),
    })
}

#[derive(Deserialize)]
pub struct RemindersForm {
    #[serde(default)]
    reminders: String,
}

/// Turn one's expiry reminders on or off.
#[post("/account/reminders")]
pub async fn reminders(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    form: web::Form<RemindersForm>,
) -> Result<HttpResponse, AppError> {
    let off = form.reminders != "on";
    crate::app::mail::set_reminders_off(&state, &user.ctx(), off).await?;
    let message = if off {
        "Expiry reminders are off: keyward will not email you before your keys expire."
    } else {
        "Expiry reminders are on."
    };
    session::set_flash(&session, Flash::success(message))?;
    Ok(see_other("/account"))
}

#[derive(Template)]
#[template(path = "account/password.html")]
struct PasswordPage {
    layout: Layout,
    errors: FormErrors,
}

#[get("/account/password")]
pub async fn password_form(session: Session, user: CurrentUser) -> Result<HttpResponse, AppError> {
    authorize(&user, Action::ChangeOwnPassword)?;
    let page = PasswordPage {
        layout: Layout::new(&session, &user, "Change password", "account")?,
        errors: FormErrors::default(),
    };
    render(&page, StatusCode::OK)
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirm: String,
}

/// Change one's password (the person's, in every workspace). Every other
/// session of theirs ends at once.
#[post("/account/password")]
pub async fn change_password(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    form: web::Form<PasswordForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    let changed = uc::change_password(
        &state,
        &user.ctx(),
        &user.session_secret,
        form.current_password,
        &form.password,
        &form.password_confirm,
    )
    .await;
    let ended = match changed {
        Ok(ended) => ended,
        Err(Error::Invalid(errors)) => {
            let page = PasswordPage {
                layout: Layout::new(&session, &user, "Change password", "account")?,
                errors: FormErrors::from(errors),
            };
            return render(&page, StatusCode::UNPROCESSABLE_ENTITY);
        }
        Err(e) => return Err(e.into()),
    };
    let message = match ended {
        0 => "Your password was changed.".to_owned(),
        1 => "Your password was changed and your other session was signed out.".to_owned(),
        n => format!("Your password was changed and your {n} other sessions were signed out."),
    };
    session::set_flash(&session, Flash::success(message))?;
    Ok(see_other("/account"))
}
