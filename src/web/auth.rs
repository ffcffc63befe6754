//! Sign-in, sign-out, first-run setup and invitation links.

use super::layout::Layout;
use super::session::{self, Flash};
use super::{AppState, FormErrors, client_ip, db, render, see_other, user_agent};
use crate::db::events::{self, AuditContext, EventTarget};
use crate::db::users::{self, UserChangeError};
use crate::db::{people, sessions, workspaces};
use crate::domain::Role;
use crate::domain::input::{Email, NewPassword, PersonName, WorkspaceName};
use crate::domain::throttle::Reservation;
use crate::domain::{ids, password};
use crate::error::AppError;
use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;
use serde_json::json;
use std::time::Instant;

/// The post-login destination: only a plain path on this site. A value
/// that starts with `//`, holds a backslash, white space or a control
/// character (browsers drop tabs and newlines and would read `/\t/host` as
/// another host), or does not parse as a path, sends the user home.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && n.len() <= 2048
                && n.bytes().all(|b| b.is_ascii_graphic() && b != b'\\')
                && n.parse::<actix_web::http::uri::PathAndQuery>().is_ok() =>
        {
            n.to_owned()
        }
        _ => "/".to_owned(),
    }
}

#[derive(Template)]
#[template(path = "auth/login.html")]
struct LoginPage {
    layout: Layout,
    email: String,
    next: String,
    error: Option<String>,
    notice: Option<&'static str>,
}

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    signed_out: Option<String>,
}

#[get("/login")]
pub async fn login_form(
    state: web::Data<AppState>,
    session: Session,
    query: web::Query<LoginQuery>,
) -> Result<HttpResponse, AppError> {
    if !db(&state, |c| Ok(workspaces::any_exists(c)?)).await? {
        let page = LoginPage {
            layout: Layout::anonymous(&session, "Sign in")?,
            email: String::new(),
            next: "/".into(),
            error: None,
            notice: Some(
                "keyward is not set up yet. Open the setup link printed in the server log when keyward started.",
            ),
        };
        return render(&page, StatusCode::OK);
    }
    let page = LoginPage {
        layout: Layout::anonymous(&session, "Sign in")?,
        email: String::new(),
        next: safe_next(query.next.as_deref()),
        error: None,
        notice: query
            .signed_out
            .as_ref()
            .map(|_| "You have been signed out."),
    };
    render(&page, StatusCode::OK)
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
}

fn throttled(wait: std::time::Duration) -> AppError {
    let minutes = wait.as_secs().div_ceil(60).max(1);
    AppError::TooManyRequests {
        message: format!(
            "Too many failed sign-in attempts. Wait {minutes} minute{} and try again.",
            if minutes == 1 { "" } else { "s" }
        ),
        retry_after_secs: wait.as_secs().max(1),
    }
}

#[post("/login")]
pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    let next = safe_next(form.next.as_deref());
    let email = form.email.trim().to_lowercase();
    let ip = client_ip(&req);
    let ua = user_agent(&req);
    if email.is_empty() || form.password.is_empty() {
        let page = LoginPage {
            layout: Layout::anonymous(&session, "Sign in")?,
            email,
            next,
            error: Some("Enter your email and password.".into()),
            notice: None,
        };
        return render(&page, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let attempt = Attempt::reserve(&state, ip.as_deref(), &email)?;
    let lookup_email = email.clone();
    let person = match db(&state, move |c| {
        Ok(people::find_by_email(c, &lookup_email)?)
    })
    .await
    {
        Ok(person) => person,
        Err(e) => {
            // The password was never checked (the database could not be
            // asked): an outage must not count against the account.
            attempt.void(&state);
            return Err(e);
        }
    };
    // Hashing is CPU-heavy: it runs on the blocking pool without holding a
    // database connection, so a burst of sign-ins cannot starve key checks
    // of connections. Unknown accounts cost the same time as known ones.
    let stored = person.as_ref().and_then(|p| p.password_hash.clone());
    let password_input = form.password;
    let ok = web::block(move || match stored {
        Some(hash) => password::verify(&password_input, &hash),
        None => {
            password::verify_dummy(&password_input);
            false
        }
    })
    .await?;
    let lifetime = state.session_lifetime();
    let (ip2, ua2) = (ip.clone(), ua.clone());
    let outcome = match person {
        None => SignIn::Refused,
        Some(person) => {
            let recorded = db(&state, move |c| {
                if !ok {
                    // Every workspace the person belongs to sees the
                    // attempt on its own member; none learns of the others.
                    for m in people::memberships(c, &person.id)? {
                        if m.is_pending() {
                            continue;
                        }
                        let ctx = AuditContext {
                            workspace_id: m.workspace_id.clone(),
                            actor_id: Some(m.user_id.clone()),
                            actor_label: person.email.clone(),
                            ip: ip2.clone(),
                            user_agent: ua2.clone(),
                        };
                        let target = EventTarget::user(&m.user_id, &person.email);
                        events::record(c, &ctx, "login.failed", target, json!({}))?;
                    }
                    return Ok(SignIn::Refused);
                }
                let Some(user) = people::sign_in_membership(c, &person)? else {
                    return Ok(SignIn::NoWorkspace);
                };
                let ctx = user.audit(ip2.clone(), ua2.clone());
                sessions::purge_expired(c, lifetime)?;
                let secret = sessions::create(c, &user, ip2.as_deref(), ua2.as_deref())?;
                let target = EventTarget::user(&user.id, &user.email);
                events::record(c, &ctx, "login.succeeded", target, json!({}))?;
                Ok(SignIn::Session(secret))
            })
            .await;
            match recorded {
                Ok(outcome) => outcome,
                Err(e) => {
                    // A right password whose session could not be stored is
                    // not a failed attempt; a wrong one still counts.
                    if ok {
                        attempt.void(&state);
                    }
                    return Err(e);
                }
            }
        }
    };
    let (status, error) = match outcome {
        SignIn::Session(secret) => {
            attempt.succeeded(&state);
            session::sign_in(&session, secret)?;
            return Ok(see_other(&next));
        }
        SignIn::NoWorkspace => {
            // The right password: not a failed attempt. Only the person
            // themselves learns this.
            attempt.succeeded(&state);
            (
                StatusCode::FORBIDDEN,
                "You are not a member of any workspace. If you were invited, open the invitation link your administrator gave you.",
            )
        }
        SignIn::Refused => {
            // The reservations stay: they were the failures.
            tracing::info!(ip = ?ip, "failed sign-in");
            (
                StatusCode::UNAUTHORIZED,
                "The email or password is incorrect.",
            )
        }
    };
    let page = LoginPage {
        layout: Layout::anonymous(&session, "Sign in")?,
        email,
        next,
        error: Some(error.into()),
        notice: None,
    };
    render(&page, status)
}

/// A sign-in attempt (the form, or an invitation for an existing account),
/// counted against the client's address and the account before the
/// password is checked, so a burst of parallel guesses cannot all be
/// evaluated before the first failure is recorded. A wrong password keeps
/// both slots: they are the failures.
struct Attempt {
    ip_key: String,
    account: String,
    by_ip: Reservation,
    by_account: Reservation,
}

impl Attempt {
    fn reserve(state: &AppState, ip: Option<&str>, account: &str) -> Result<Self, AppError> {
        let ip_key = ip.unwrap_or_default().to_owned();
        let now = Instant::now();
        let by_ip = state.login_by_ip.reserve(&ip_key, now).map_err(throttled)?;
        let by_account = match state.login_by_account.reserve(account, now) {
            Ok(r) => r,
            Err(wait) => {
                state.login_by_ip.refund(&ip_key, by_ip);
                return Err(throttled(wait));
            }
        };
        Ok(Attempt {
            ip_key,
            account: account.to_owned(),
            by_ip,
            by_account,
        })
    }

    /// The right password: the account's failures are forgotten and the
    /// address's slot is given back.
    fn succeeded(&self, state: &AppState) {
        state.login_by_account.clear(&self.account);
        state.login_by_ip.refund(&self.ip_key, self.by_ip);
    }

    /// The attempt does not count: the password could not be checked, or
    /// was right but its session could not be stored.
    fn void(&self, state: &AppState) {
        state
            .login_by_account
            .refund(&self.account, self.by_account);
        state.login_by_ip.refund(&self.ip_key, self.by_ip);
    }
}

/// What a sign-in attempt came to.
enum SignIn {
    /// Signed in: the new session's secret.
    Session(String),
    /// The right password, but the person belongs to no workspace.
    NoWorkspace,
    /// Unknown email or wrong password (not told apart).
    Refused,
}

#[post("/logout")]
pub async fn logout(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, AppError> {
    if let Some(secret) = session::session_secret(&session) {
        let lifetime = state.session_lifetime();
        let (ip, ua) = (client_ip(&req), user_agent(&req));
        db(&state, move |c| {
            if let Some((_, user)) = sessions::load(c, &secret, lifetime)? {
                let ctx = user.audit(ip, ua);
                events::record(
                    c,
                    &ctx,
                    "logout",
                    EventTarget::user(&user.id, &user.email),
                    json!({}),
                )?;
            }
            sessions::delete(c, &secret)?;
            Ok(())
        })
        .await?;
    }
    session::sign_out(&session);
    Ok(see_other("/login?signed_out=1"))
}

#[derive(Template)]
#[template(path = "auth/setup.html")]
struct SetupPage {
    layout: Layout,
    token: String,
    workspace: String,
    name: String,
    email: String,
    errors: FormErrors,
}

#[derive(Deserialize)]
pub struct SetupQuery {
    token: Option<String>,
}

/// Check the first-run token: 404 once set up, 403 for a wrong token.
async fn check_setup_token(
    state: &web::Data<AppState>,
    token: Option<&str>,
) -> Result<(), AppError> {
    if db(state, |c| Ok(workspaces::any_exists(c)?)).await? {
        return Err(AppError::NotFound);
    }
    let expected = state
        .setup_token_digest
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    match (expected, token) {
        (Some(expected), Some(token)) if ids::token_digest(token.trim()) == expected => Ok(()),
        (None, _) => Err(AppError::NotFound),
        _ => Err(AppError::Forbidden(
            "This setup link is not valid. Use the link keyward printed in its log when it started."
                .into(),
        )),
    }
}

#[get("/setup")]
pub async fn setup_form(
    state: web::Data<AppState>,
    session: Session,
    query: web::Query<SetupQuery>,
) -> Result<HttpResponse, AppError> {
    check_setup_token(&state, query.token.as_deref()).await?;
    let page = SetupPage {
        layout: Layout::anonymous(&session, "Set up keyward")?,
        token: query.token.clone().unwrap_or_default(),
        workspace: String::new(),
        name: String::new(),
        email: String::new(),
        errors: FormErrors::default(),
    };
    render(&page, StatusCode::OK)
}

#[derive(Deserialize)]
pub struct SetupForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    workspace: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirm: String,
}

#[post("/setup")]
pub async fn setup(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    form: web::Form<SetupForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    check_setup_token(&state, Some(&form.token)).await?;
    let mut errors = FormErrors::default();
    let workspace = errors.check(WorkspaceName::parse(&form.workspace));
    let name = errors.check(PersonName::parse(&form.name));
    let email = errors.check(Email::parse(&form.email));
    let password = errors.check(NewPassword::parse(&form.password, &form.password_confirm));
    let (Some(workspace), Some(name), Some(email), Some(password)) =
        (workspace, name, email, password)
    else {
        let page = SetupPage {
            layout: Layout::anonymous(&session, "Set up keyward")?,
            token: form.token,
            workspace: form.workspace,
            name: form.name,
            email: form.email,
            errors,
        };
        return render(&page, StatusCode::UNPROCESSABLE_ENTITY);
    };
    let (ip, ua) = (client_ip(&req), user_agent(&req));
    let hash = web::block(move || password::hash(password.as_str())).await??;
    let secret = db(&state, move |c| {
        let result = users::setup_first_workspace_retrying(
            c,
            &workspace.into_inner(),
            email.as_str(),
            &name.into_inner(),
            &hash,
            ip.clone(),
            ua.clone(),
        );
        let (_, admin) = match result {
            Ok(done) => done,
            Err(UserChangeError::AlreadySetUp) => return Err(AppError::NotFound),
            Err(e) => return Err(e.into()),
        };
        Ok(sessions::create(c, &admin, ip.as_deref(), ua.as_deref())?)
    })
    .await?;
    *state
        .setup_token_digest
        .lock()
        .unwrap_or_else(|e| e.into_inner()) = None;
    tracing::info!("first-run setup completed");
    session::sign_in(&session, secret)?;
    session::set_flash(
        &session,
        Flash::success("keyward is set up and you are signed in as its first admin."),
    )?;
    Ok(see_other("/"))
}

#[derive(Template)]
#[template(path = "auth/invite.html")]
struct InvitePage {
    layout: Layout,
    token: String,
    email: String,
    workspace: String,
    role: Role,
    errors: FormErrors,
}

impl InvitePage {
    fn new(
        session: &Session,
        token: String,
        user: &users::User,
        workspace: String,
        errors: FormErrors,
    ) -> Result<Self, AppError> {
        // Whether the email already has an account (a password) is not
        // shown: whoever opens the link, the admin who made it included,
        // sees the same page, which serves both cases (see `invite`).
        Ok(InvitePage {
            layout: Layout::anonymous(session, "Join a workspace")?,
            token,
            email: user.email.clone(),
            workspace,
            role: user.role(),
            errors,
        })
    }
}

fn invalid_invite() -> AppError {
    AppError::Gone(
        "This link is not valid: it was already used, has expired, or was mistyped. Ask your administrator for a new one."
            .into(),
    )
}

#[get("/invite/{token}")]
pub async fn invite_form(
    state: web::Data<AppState>,
    session: Session,
    token: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let digest = ids::token_digest(&token);
    let (user, workspace) = db(&state, move |c| Ok(users::find_by_invite(c, &digest)?))
        .await?
        .ok_or_else(invalid_invite)?;
    let page = InvitePage::new(
        &session,
        token.into_inner(),
        &user,
        workspace,
        FormErrors::default(),
    )?;
    render(&page, StatusCode::OK)
}

#[derive(Deserialize)]
pub struct InviteForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirm: String,
}

/// Use an invitation link, from the one page both cases share: a new
/// person chooses their password (and repeats it); a person who already
/// has one enters it and joins, signed in to the workspace.
#[post("/invite/{token}")]
pub async fn invite(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    token: web::Path<String>,
    form: web::Form<InviteForm>,
) -> Result<HttpResponse, AppError> {
    let token = token.into_inner();
    let digest = ids::token_digest(&token);
    let lookup = digest.clone();
    let (user, workspace) = db(&state, move |c| Ok(users::find_by_invite(c, &lookup)?))
        .await?
        .ok_or_else(invalid_invite)?;
    let form = form.into_inner();
    if user.password_hash.is_some() {
        return join_with_password(req, state, session, token, user, workspace, form.password)
            .await;
    }
    let mut errors = FormErrors::default();
    let chosen = NewPassword::parse(&form.password, &form.password_confirm).map_err(|e| {
        if e.field == "password_confirm" && form.password_confirm.is_empty() {
            // The page tells people with an account to leave it empty; a
            // new person who did is told what it is for.
            crate::domain::input::FieldError::new(
                "password_confirm",
                "Repeat the password you chose, to be sure it is the one you meant.",
            )
        } else {
            e
        }
    });
    let Some(password) = errors.check(chosen) else {
        let page = InvitePage::new(&session, token, &user, workspace, errors)?;
        return render(&page, StatusCode::UNPROCESSABLE_ENTITY);
    };
    let (ip, ua) = (client_ip(&req), user_agent(&req));
    let hash = web::block(move || password::hash(password.as_str())).await??;
    db(&state, move |c| {
        users::accept_invite(c, &digest, &hash, ip, ua)?.ok_or_else(invalid_invite)
    })
    .await?;
    session::set_flash(
        &session,
        Flash::success("Your password is set. Sign in with your email and new password."),
    )?;
    Ok(see_other("/login"))
}

/// An invitation for someone who already has an account: their password,
/// checked under the sign-in throttle, joins them and signs them in to the
/// workspace.
async fn join_with_password(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    token: String,
    user: users::User,
    workspace: String,
    password_input: String,
) -> Result<HttpResponse, AppError> {
    let ip = client_ip(&req);
    let ua = user_agent(&req);
    let attempt = Attempt::reserve(&state, ip.as_deref(), &user.email)?;
    let stored = user.password_hash.clone().unwrap_or_default();
    let ok = !password_input.is_empty()
        && web::block(move || password::verify(&password_input, &stored)).await?;
    if !ok {
        let mut errors = FormErrors::default();
        errors.add(
            "password",
            "The password is not correct: enter the password you sign in to keyward with.",
        );
        let page = InvitePage::new(&session, token, &user, workspace, errors)?;
        return render(&page, StatusCode::UNPROCESSABLE_ENTITY);
    }
    attempt.succeeded(&state);
    let digest = ids::token_digest(&token);
    let person_id = user.person_id.clone();
    let lifetime = state.session_lifetime();
    let secret = db(&state, move |c| {
        let joined = users::join_by_invite(c, &digest, &person_id, ip.clone(), ua.clone())?
            .ok_or_else(invalid_invite)?;
        sessions::purge_expired(c, lifetime)?;
        let secret = sessions::create(c, &joined, ip.as_deref(), ua.as_deref())?;
        people::set_last_workspace(c, &joined.person_id, &joined.workspace_id)?;
        Ok(secret)
    })
    .await?;
    session::sign_in(&session, secret)?;
    session::set_flash(&session, Flash::success(format!("You joined {workspace}.")))?;
    Ok(see_other("/"))
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_is_only_ever_a_path_on_this_site() {
        for good in [
            "/",
            "/workspace/keys",
            "/workspace/keys?q=grafana&view=all",
            "/keys/key_1%20x",
        ] {
            assert_eq!(safe_next(Some(good)), good);
        }
        for bad in [
            "https://evil.example/",
            "//evil.example",
            "/\\evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r\nSet-Cookie: x=1",
            "/ /evil.example",
            "/caf\u{e9}",
            "evil",
            "",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(safe_next(None), "/");
    }
}
