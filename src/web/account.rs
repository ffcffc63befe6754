//! Account: one's own profile and password.

use super::layout::Layout;
use super::session::{self, Flash};
use super::{AppState, CurrentUser, FormErrors, authorize, db, render, see_other};
use crate::db::users;
use crate::domain::input::NewPassword;
use crate::domain::password;
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
}

#[get("/account")]
pub async fn overview(session: Session, user: CurrentUser) -> Result<Overview, AppError> {
    Ok(Overview {
        layout: Layout::new(&session, &user, "Your account", "account")?,
        workspace: user.workspace_name().to_owned(),
        user: user.user,
    })
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
    authorize(&user, Action::ChangeOwnPassword)?;
    let form = form.into_inner();
    let mut errors = FormErrors::default();
    let new = errors.check(NewPassword::parse(&form.password, &form.password_confirm));
    // Like sign-in: the attempt counts before the slow check, so parallel
    // guesses of the current password cannot outrun the limit.
    let attempt = state
        .password_change
        .reserve(&user.user.person_id, std::time::Instant::now())
        .map_err(|wait| {
            let minutes = wait.as_secs().div_ceil(60).max(1);
            AppError::TooManyRequests {
                message: format!(
                    "Too many wrong current passwords. Wait {minutes} minute{} and try again; nothing was changed.",
                    if minutes == 1 { "" } else { "s" }
                ),
                retry_after_secs: wait.as_secs().max(1),
            }
        })?;
    let stored = user.user.password_hash.clone().unwrap_or_default();
    let current = form.current_password;
    let current_ok = web::block(move || password::verify(&current, &stored)).await?;
    if current_ok {
        state.password_change.refund(&user.user.person_id, attempt);
    } else {
        errors.add("current_password", "Your current password is not correct.");
    }
    let Some(new) = new.filter(|_| errors.is_empty()) else {
        let page = PasswordPage {
            layout: Layout::new(&session, &user, "Change password", "account")?,
            errors,
        };
        return render(&page, StatusCode::UNPROCESSABLE_ENTITY);
    };
    let ctx = user.audit();
    let person_id = user.user.person_id.clone();
    let keep = crate::domain::ids::token_digest(&user.session_secret);
    let hash = web::block(move || password::hash(new.as_str())).await??;
    let ended = db(&state, move |c| {
        Ok(users::change_password(c, &ctx, &person_id, &hash, &keep)?)
    })
    .await?;
    let message = match ended {
        0 => "Your password was changed.".to_owned(),
        1 => "Your password was changed and your other session was signed out.".to_owned(),
        n => format!("Your password was changed and your {n} other sessions were signed out."),
    };
    session::set_flash(&session, Flash::success(message))?;
    Ok(see_other("/account"))
}
