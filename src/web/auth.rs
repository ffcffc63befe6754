//! Sign-in, sign-out, first-run setup and invitation links.

use super::layout::Layout;
use super::session::{self, Flash};
use super::{AppState, FormErrors, client_ip, db, render, see_other, user_agent};
use crate::app::Error;
use crate::app::auth::{self as uc, Client, Joined, SignIn};
use crate::db::{users, workspaces};
use crate::domain::Role;
use crate::error::AppError;
use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

/// The post-login destination: only a plain path on this site. A value
/// that starts with `//`, holds a backslash, white space or a control
/// character (browsers drop tabs and newlines and would read `/\t/host` as
/// another host), or does not parse as a path, sends the user home.
pub(crate) fn safe_next(next: Option<&str>) -> String {
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
    /// The OpenID providers offered beside the password form.
    providers: Vec<crate::app::sso::ProviderLink>,
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
            providers: Vec::new(),
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
        providers: crate::app::sso::providers(&state),
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
    let signed = uc::sign_in(&state, &email, form.password, client(&req)).await;
    let (status, error) = match signed {
        Ok(SignIn::Session { secret, .. }) => {
            session::sign_in(&session, secret)?;
            return Ok(see_other(&next));
        }
        Ok(SignIn::NoWorkspace) => (
            StatusCode::FORBIDDEN,
            "You are not a member of any workspace. If you were invited, open the invitation link your administrator gave you.".to_owned(),
        ),
        Ok(SignIn::SsoOnly) => (
            StatusCode::FORBIDDEN,
            "Your workspace signs in through single sign-on only: use the sign-in button of your provider below.".to_owned(),
        ),
        Ok(SignIn::Refused) => {
            tracing::info!(ip = ?ip, "failed sign-in");
            (
                StatusCode::UNAUTHORIZED,
                "The email or password is incorrect.".to_owned(),
            )
        }
        Err(Error::Invalid(errors)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            errors
                .first()
                .map(|e| e.message.clone())
                .unwrap_or_default(),
        ),
        Err(e) => return Err(e.into()),
    };
    let page = LoginPage {
        layout: Layout::anonymous(&session, "Sign in")?,
        email,
        next,
        error: Some(error),
        notice: None,
        providers: crate::app::sso::providers(&state),
    };
    render(&page, status)
}

/// Where the request comes from, for throttles and the audit trail.
fn client(req: &HttpRequest) -> Client {
    Client {
        ip: client_ip(req),
        user_agent: user_agent(req),
    }
}

#[post("/logout")]
pub async fn logout(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, AppError> {
    if let Some(secret) = session::session_secret(&session) {
        uc::sign_out(&state, secret, client(&req)).await?;
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

#[get("/setup")]
pub async fn setup_form(
    state: web::Data<AppState>,
    session: Session,
    query: web::Query<SetupQuery>,
) -> Result<HttpResponse, AppError> {
    uc::check_setup_token(&state, query.token.as_deref()).await?;
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
    let input = uc::SetupInput {
        token: &form.token,
        workspace: &form.workspace,
        name: &form.name,
        email: &form.email,
        password: &form.password,
        password_confirm: &form.password_confirm,
    };
    let secret = match uc::setup(&state, input, client(&req)).await {
        Ok((_, secret)) => secret,
        Err(Error::Invalid(errors)) => {
            let page = SetupPage {
                layout: Layout::anonymous(&session, "Set up keyward")?,
                token: form.token,
                workspace: form.workspace,
                name: form.name,
                email: form.email,
                errors: FormErrors::from(errors),
            };
            return render(&page, StatusCode::UNPROCESSABLE_ENTITY);
        }
        Err(e) => return Err(e.into()),
    };
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

#[get("/invite/{token}")]
pub async fn invite_form(
    state: web::Data<AppState>,
    session: Session,
    token: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let (user, workspace) = uc::open_invite(&state, &token).await?;
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
    let form = form.into_inner();
    let used = uc::use_invite(
        &state,
        &token,
        form.password,
        &form.password_confirm,
        client(&req),
    )
    .await;
    match used {
        Ok(Joined::PasswordSet) => {
            session::set_flash(
                &session,
                Flash::success("Your password is set. Sign in with your email and new password."),
            )?;
            Ok(see_other("/login"))
        }
        Ok(Joined::SignedIn {
            workspace, secret, ..
        }) => {
            session::sign_in(&session, secret)?;
            session::set_flash(&session, Flash::success(format!("You joined {workspace}.")))?;
            Ok(see_other("/"))
        }
        Err(Error::Invalid(errors)) => {
            let (user, workspace) = uc::open_invite(&state, &token).await?;
            let page =
                InvitePage::new(&session, token, &user, workspace, FormErrors::from(errors))?;
            render(&page, StatusCode::UNPROCESSABLE_ENTITY)
        }
        Err(e) => Err(e.into()),
    }
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
