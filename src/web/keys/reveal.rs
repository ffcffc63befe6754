//! "Show secret" of a recoverable key (issue 27): confirm your password,
//! then see the secret again. The rules (who, how recently confirmed, how
//! often, the audit event) are `app::recover`'s; this page keeps only the
//! confirmation's time in the session.

use super::{Call, KeyTarget};
use crate::app::Error;
use crate::app::keys::Act;
use crate::app::recover;
use crate::db::keys::ApiKey;
use crate::error::AppError;
use crate::web::FormErrors;
use crate::web::session;
use actix_session::Session;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, get, post, web};
use askama::Template;
use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

/// The session entry: when this person last confirmed their password.
const CONFIRMED: &str = "password_confirmed";

#[derive(Serialize, Deserialize)]
struct Confirmed {
    person_id: String,
    at: NaiveDateTime,
}

/// When the signed-in person last confirmed their password in this session.
fn confirmed_at(call: &Call) -> Option<NaiveDateTime> {
    confirmed_in(&call.session, &call.user.ctx().user.person_id)
}

fn confirmed_in(session: &Session, person_id: &str) -> Option<NaiveDateTime> {
    session
        .get::<Confirmed>(CONFIRMED)
        .ok()
        .flatten()
        .filter(|c| c.person_id == person_id)
        .map(|c| c.at)
}

#[derive(Template)]
#[template(path = "keys/reveal.html")]
struct RevealView {
    csrf: String,
    key: ApiKey,
    /// Ask for the password first.
    confirm: bool,
    errors: FormErrors,
    /// The secret, once shown.
    secret: Option<String>,
}

fn no_store(mut res: HttpResponse) -> HttpResponse {
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    res
}

fn view(call: &Call, key: ApiKey) -> Result<RevealView, AppError> {
    Ok(RevealView {
        csrf: session::csrf_token(&call.session)?,
        confirm: !recover::is_fresh(confirmed_at(call)),
        key,
        errors: FormErrors::default(),
        secret: None,
    })
}

/// The "Show secret" page: the confirm-password form, or (confirmed within
/// the last minutes) the button that shows the secret.
#[get("/keys/{id}/secret")]
pub async fn reveal_page(target: KeyTarget) -> Result<HttpResponse, AppError> {
    let (call, key) = target.load(Act::Manage).await?;
    if !key.recoverable {
        return Err(AppError::Conflict(
            "This key is not recoverable: its secret was shown once, when it was made, and is not stored.".into(),
        ));
    }
    let v = view(&call, key)?;
    Ok(no_store(call.fragment_or_page(
        "Show secret",
        "",
        &v,
        StatusCode::OK,
    )?))
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    password: String,
}

/// Confirm one's password for showing secrets: remembered in the session
/// for [`recover::CONFIRM_WITHIN`].
#[post("/keys/{id}/confirm-password")]
pub async fn confirm_password(
    target: KeyTarget,
    form: web::Form<PasswordForm>,
) -> Result<HttpResponse, AppError> {
    let (call, key) = target.load(Act::Manage).await?;
    let ctx = call.ctx();
    let form = form.into_inner();
    match recover::confirm_password(&call.state, &ctx, form.password).await {
        Ok(at) => {
            call.session.insert(
                CONFIRMED,
                Confirmed {
                    person_id: ctx.user.person_id.clone(),
                    at,
                },
            )?;
            Ok(call.done(&format!("/keys/{}/secret", key.id)))
        }
        Err(Error::Invalid(errors)) => {
            let v = RevealView {
                errors: FormErrors::from(errors),
                confirm: true,
                ..view(&call, key)?
            };
            call.fragment_or_page("Show secret", "", &v, StatusCode::UNPROCESSABLE_ENTITY)
        }
        Err(e) => Err(e.into()),
    }
}

/// Show the secret (a POST, so it is never in a URL, a history entry or a
/// cache), answered `no-store`.
#[post("/keys/{id}/secret")]
pub async fn reveal(target: KeyTarget) -> Result<HttpResponse, AppError> {
    let (call, key) = target.load(Act::Manage).await?;
    let at = confirmed_at(&call);
    if !recover::is_fresh(at) {
        // Confirmation expired meanwhile: ask again.
        return Ok(call.done(&format!("/keys/{}/secret", key.id)));
    }
    let (key, secret) = recover::reveal(&call.state, &call.ctx(), &key.id, at).await?;
    let v = RevealView {
        secret: Some(secret.expose().to_owned()),
        ..view(&call, key)?
    };
    Ok(no_store(call.fragment_or_page(
        "Your key",
        "",
        &v,
        StatusCode::OK,
    )?))
}
