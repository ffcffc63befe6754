//! Single sign-on pages (issue 26): the start of a sign-in at a provider,
//! its return (the callback), and Settings → Single sign-on (admins).
//!
//! The sign-in in flight (state, nonce, PKCE verifier, provider, where to
//! go next) is kept in a cookie of its own, encrypted and authenticated,
//! for ten minutes and only on `/auth/oidc/`: the session cookie is
//! SameSite=Strict, so a browser does not send it with the provider's
//! cross-site redirect back; this one is SameSite=Lax, which it does send
//! with that top-level GET.

use super::layout::Layout;
use super::session::{self, Flash};
use super::{AppState, CurrentUser, FormErrors, client_ip, render, see_other, user_agent};
use crate::app::Error;
use crate::app::auth::{Client, SignIn};
use crate::app::sso::{self as uc, Pending, ProviderLink, Returned, SettingsInput};
use crate::error::AppError;
use actix_session::Session;
use actix_web::cookie::{Cookie, CookieJar, Key, SameSite};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

const PENDING_COOKIE: &str = "keyward_oidc";
const PENDING_PATH: &str = "/auth/oidc/";

/// The pending cookie's key: derived from the session secret under a
/// label of its own, so it is not the session cookie's key.
fn pending_key(state: &AppState) -> Key {
    use sha2::Digest as _;
    let mut h = sha2::Sha512::new();
    h.update(b"keyward oidc pending sign-in\0");
    h.update(&state.config.secret);
    Key::from(&h.finalize()[..])
}

fn pending_cookie(state: &AppState, pending: &Pending) -> Result<Cookie<'static>, AppError> {
    let value = serde_json::to_string(pending).map_err(|e| AppError::Internal(e.to_string()))?;
    let cookie = Cookie::build(PENDING_COOKIE, value)
        .path(PENDING_PATH)
        .http_only(true)
        .secure(state.config.cookie_secure)
        .same_site(SameSite::Lax)
        .max_age(actix_web::cookie::time::Duration::seconds(
            uc::PENDING_FOR.num_seconds(),
        ))
        .finish();
    let mut jar = CookieJar::new();
    jar.private_mut(&pending_key(state)).add(cookie);
    jar.get(PENDING_COOKIE)
        .cloned()
        .ok_or_else(|| AppError::Internal("pending sign-in cookie".into()))
}

fn read_pending(req: &HttpRequest, state: &AppState) -> Option<Pending> {
    let cookie = req.cookie(PENDING_COOKIE)?;
    let mut jar = CookieJar::new();
    jar.add_original(cookie);
    let plain = jar.private(&pending_key(state)).get(PENDING_COOKIE)?;
    serde_json::from_str(plain.value()).ok()
}

fn removal_cookie() -> Cookie<'static> {
    let mut c = Cookie::build(PENDING_COOKIE, "")
        .path(PENDING_PATH)
        .finish();
    c.make_removal();
    c
}

#[derive(Deserialize)]
pub struct StartForm {
    next: Option<String>,
}

/// Start signing in at a provider (the button beside the password form;
/// a POST with the CSRF token, like every form).
#[post("/auth/oidc/{provider}/start")]
pub async fn start(
    state: web::Data<AppState>,
    session: Session,
    provider: web::Path<String>,
    form: web::Form<StartForm>,
) -> Result<HttpResponse, AppError> {
    let next = super::auth::safe_next(form.next.as_deref());
    let (url, pending) = uc::begin(&state, &provider, next).await?;
    let name = state
        .config
        .oidc_providers
        .iter()
        .find(|p| p.id == *provider)
        .map_or_else(|| provider.to_string(), |p| p.name.clone());
    let page = GoPage {
        layout: Layout::anonymous(&session, "Signing in")?,
        provider: name,
        url: url.to_string(),
    };
    let mut res = render(&page, StatusCode::OK)?;
    res.add_cookie(&pending_cookie(&state, &pending)?)
        .map_err(|e| AppError::Internal(e.to_string()))?;
    Ok(res)
}

/// The page that takes the browser on to the provider. A redirect would
/// not do: it answers a form, and the pages' `form-action 'self'` policy
/// stops a form's redirect to another site (a real Chromium showed it);
/// this page's own navigation is not a form's.
#[derive(Template)]
#[template(path = "auth/sso_go.html")]
struct GoPage {
    layout: Layout,
    provider: String,
    url: String,
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// The page that carries a new session on to where the person was going.
/// A redirect would not do: the browser still counts it as part of the
/// provider's cross-site navigation and would not send the new
/// SameSite=Strict session cookie with it; this page's own navigation is
/// same-site.
#[derive(Template)]
#[template(path = "auth/sso_done.html")]
struct DonePage {
    layout: Layout,
    next: String,
}

/// The provider sends the browser back here, with a code (or an error)
/// and the `state` this sign-in was started with.
#[get("/auth/oidc/{provider}/callback")]
pub async fn callback(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    provider: web::Path<String>,
    query: web::Query<CallbackQuery>,
) -> Result<HttpResponse, AppError> {
    let query = query.into_inner();
    let pending = read_pending(&req, &state);
    // A return that carries this sign-in's state ends it, however it ends:
    // the cookie goes with the answer. One whose state does not match
    // leaves it for the real return.
    let ends_it = pending.as_ref().is_some_and(|p| {
        query
            .state
            .as_deref()
            .is_some_and(|s| crate::domain::input::same(s, &p.state))
    });
    let next = pending
        .as_ref()
        .map(|p| p.next.clone())
        .unwrap_or_else(|| "/".into());
    let returned = Returned {
        code: query.code,
        state: query.state,
        error: query.error,
    };
    let client = Client {
        ip: client_ip(&req),
        user_agent: user_agent(&req),
    };
    let signed = uc::finish(&state, &provider, pending, returned, client).await;
    let refused = |e: AppError| -> Result<HttpResponse, AppError> {
        if !ends_it {
            return Err(e);
        }
        let mut res = actix_web::ResponseError::error_response(&e);
        res.add_removal_cookie(&removal_cookie())
            .map_err(|e| AppError::Internal(e.to_string()))?;
        Ok(res)
    };
    match signed {
        Ok(SignIn::Session { secret, .. }) => {
            session::sign_in(&session, secret)?;
            let page = DonePage {
                layout: Layout::anonymous(&session, "Signed in")?,
                next: super::auth::safe_next(Some(&next)),
            };
            let mut res = render(&page, StatusCode::OK)?;
            res.add_removal_cookie(&removal_cookie())
                .map_err(|e| AppError::Internal(e.to_string()))?;
            Ok(res)
        }
        Ok(SignIn::NoWorkspace) => refused(AppError::Forbidden(
            "You are not a member of any workspace. If you were invited, open the invitation link your administrator gave you.".into(),
        )),
        Ok(SignIn::Refused | SignIn::SsoOnly) => {
            refused(AppError::Forbidden("You were not signed in.".into()))
        }
        Err(e) => refused(e.into()),
    }
}

#[derive(Template)]
#[template(path = "settings/sso.html")]
struct SsoPage {
    layout: Layout,
    providers: Vec<ProviderLink>,
    join_provider: String,
    default_role: String,
    email_domains: String,
    group_roles: String,
    sso_only: bool,
    break_glass: bool,
    errors: FormErrors,
}

impl SsoPage {
    fn new(
        layout: Layout,
        state: &AppState,
        providers: Vec<ProviderLink>,
        input: SettingsInput,
        errors: FormErrors,
    ) -> Self {
        SsoPage {
            layout,
            providers,
            join_provider: input.join_provider,
            default_role: input.default_role,
            email_domains: input.email_domains,
            group_roles: input.group_roles,
            sso_only: input.sso_only,
            break_glass: !state.config.sso_break_glass.is_empty(),
            errors,
        }
    }
}

fn input_of(s: &crate::db::sso::SsoSettings) -> SettingsInput {
    SettingsInput {
        join_provider: s.join_provider.clone().unwrap_or_default(),
        default_role: s.default_role.as_str().to_owned(),
        email_domains: s.email_domains.join("\n"),
        group_roles: s.group_roles_text(),
        sso_only: s.sso_only,
    }
}

#[get("/workspace/settings/sso")]
pub async fn settings_page(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
) -> Result<HttpResponse, AppError> {
    let (current, providers) = uc::settings(&state, &user.ctx()).await?;
    let page = SsoPage::new(
        Layout::new(&session, &user, "Single sign-on", "settings")?,
        &state,
        providers,
        input_of(&current),
        FormErrors::default(),
    );
    render(&page, StatusCode::OK)
}

#[derive(Deserialize)]
pub struct SettingsForm {
    #[serde(default)]
    join_provider: String,
    #[serde(default)]
    default_role: String,
    #[serde(default)]
    email_domains: String,
    #[serde(default)]
    group_roles: String,
    #[serde(default)]
    sso_only: Option<String>,
}

#[post("/workspace/settings/sso")]
pub async fn save_settings(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    form: web::Form<SettingsForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    let input = SettingsInput {
        join_provider: form.join_provider,
        default_role: form.default_role,
        email_domains: form.email_domains,
        group_roles: form.group_roles,
        sso_only: form.sso_only.is_some_and(|v| v == "on" || v == "true"),
    };
    match uc::save_settings(&state, &user.ctx(), &input).await {
        Ok((_, changed)) => {
            let message = if changed {
                "Single sign-on settings saved."
            } else {
                "Nothing changed."
            };
            session::set_flash(&session, Flash::success(message))?;
            Ok(see_other("/workspace/settings/sso"))
        }
        Err(Error::Invalid(errors)) => {
            let page = SsoPage::new(
                Layout::new(&session, &user, "Single sign-on", "settings")?,
                &state,
                uc::providers(&state),
                input,
                FormErrors::from(errors),
            );
            render(&page, StatusCode::UNPROCESSABLE_ENTITY)
        }
        Err(e) => Err(e.into()),
    }
}
