//! Workspace → Users → Service accounts (admins): create one, see it with
//! its keys, edit it, disable and enable it, delete it (after a
//! confirmation), and create keys for it. Every handler calls the use
//! cases of `app::service_accounts` (the API calls the same), which ask the
//! policy; the forms post with the CSRF token (checked by the middleware).
//! A key's own page (`/keys/{id}`) rotates, disables and revokes it.

use super::layout::Layout;
use super::session::{self, Flash};
use super::{AppState, CurrentUser, FormErrors, render, see_other};
use crate::app::Error;
use crate::app::keys::{self as key_uc, ListInput, NewKeyInput, Once};
use crate::app::service_accounts::{self as uc, Input};
use crate::db::keys::ApiKey;
use crate::db::permissions::Permission;
use crate::db::users::User;
use crate::domain::ids;
use crate::domain::keys::{Environment, Expiry};
use crate::domain::role::Role;
use crate::error::AppError;
use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

/// The roles a service account may have.
pub const ROLES: [Role; 2] = [Role::Admin, Role::Normal];

#[derive(Template)]
#[template(path = "service_accounts/new.html")]
struct NewPage {
    layout: Layout,
    roles: [Role; 2],
    name: String,
    description: String,
    role: String,
    errors: FormErrors,
}

#[derive(Deserialize)]
pub struct AccountForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    role: String,
}

impl AccountForm {
    fn input(&self) -> Input {
        Input {
            name: self.name.clone(),
            description: self.description.clone(),
            role: self.role.clone(),
        }
    }
}

#[get("/workspace/service-accounts/new")]
pub async fn new_form(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
) -> Result<HttpResponse, AppError> {
    // The list use case asks the policy (admins only).
    uc::list(&state, &user.ctx()).await?;
    let page = NewPage {
        layout: Layout::new(&session, &user, "New service account", "users")?,
        roles: ROLES,
        name: String::new(),
        description: String::new(),
        role: Role::Normal.as_str().to_owned(),
        errors: FormErrors::default(),
    };
    render(&page, StatusCode::OK)
}

#[post("/workspace/service-accounts")]
pub async fn create(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    form: web::Form<AccountForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    match uc::create(&state, &user.ctx(), form.input()).await {
        Ok(account) => {
            session::set_flash(
                &session,
                Flash::success(format!(
                    "The service account “{}” was created. Create its keys below.",
                    account.name
                )),
            )?;
            Ok(see_other(&format!(
                "/workspace/service-accounts/{}",
                account.id
            )))
        }
        Err(Error::Invalid(errors)) => {
            let page = NewPage {
                layout: Layout::new(&session, &user, "New service account", "users")?,
                roles: ROLES,
                name: form.name,
                description: form.description,
                role: form.role,
                errors: FormErrors::from(errors),
            };
            render(&page, StatusCode::UNPROCESSABLE_ENTITY)
        }
        Err(e) => Err(e.into()),
    }
}

/// A key as the account's page lists it.
pub struct KeyRow {
    pub id: String,
    pub name: String,
    pub excerpt: String,
    pub environment: &'static str,
    pub permissions: String,
    pub status: &'static str,
    pub status_class: &'static str,
    pub expires: String,
}

fn key_row(k: &ApiKey, now: chrono::NaiveDateTime) -> KeyRow {
    let status = k.status(now);
    KeyRow {
        id: k.id.clone(),
        name: k.name.clone(),
        excerpt: k.excerpt(),
        environment: k.environment().label(),
        permissions: match k.permission_list() {
            p if p.is_empty() => "None".to_owned(),
            p => p.join(", "),
        },
        status: status.label(),
        status_class: status.css(),
        expires: k
            .expires_at
            .map(|t| t.format("%Y-%m-%d").to_string())
            .unwrap_or_else(|| "Never".into()),
    }
}

/// A key secret shown once, right after it was created.
pub struct ShownSecret {
    pub name: String,
    pub id: String,
    pub secret: String,
}

#[derive(Template)]
#[template(path = "service_accounts/detail.html")]
struct DetailPage {
    layout: Layout,
    account: User,
    roles: [Role; 2],
    keys: Vec<KeyRow>,
    /// Edit form values and errors.
    name: String,
    description: String,
    role: String,
    errors: FormErrors,
    /// New key form.
    nonce: String,
    key_name: String,
    environments: [Environment; 3],
    environment: String,
    presets: Vec<i64>,
    expiry: String,
    catalog: Vec<Permission>,
    management: &'static [&'static str],
    chosen: Vec<String>,
    key_errors: FormErrors,
    secret: Option<ShownSecret>,
    api_base: String,
}

impl DetailPage {
    fn is_chosen(&self, p: &str) -> bool {
        self.chosen.iter().any(|c| c == p)
    }

    fn management_text(&self, p: &str) -> &'static str {
        super::keys::create::management_text(p)
    }
}

async fn detail_page(
    state: &web::Data<AppState>,
    session: &Session,
    user: &CurrentUser,
    id: &str,
) -> Result<DetailPage, AppError> {
    let ctx = user.ctx();
    let (account, keys) = uc::keys(state, &ctx, id).await?;
    let ws = ctx.workspace_id().to_owned();
    let (catalog, workspace) = super::db(state, move |c| {
        Ok((
            crate::db::permissions::active(c, &ws)?,
            crate::db::workspaces::get(c, &ws)?,
        ))
    })
    .await?;
    let now = crate::db::now();
    Ok(DetailPage {
        layout: Layout::new(session, user, account.name.clone(), "users")?,
        roles: ROLES,
        keys: keys.iter().map(|k| key_row(k, now)).collect(),
        name: account.name.clone(),
        description: account.description.clone(),
        role: account.role.clone(),
        errors: FormErrors::default(),
        nonce: ids::new_token(),
        key_name: String::new(),
        environments: Environment::ALL,
        environment: Environment::Live.as_str().to_owned(),
        presets: key_uc::presets_within(workspace.max_expiry_days),
        expiry: key_uc::default_expiry_days(workspace.max_expiry_days).to_string(),
        catalog,
        management: key_uc::grantable(account.role(), key_uc::Kind::Personal),
        chosen: Vec::new(),
        key_errors: FormErrors::default(),
        secret: None,
        api_base: state.base_url.clone(),
        account,
    })
}

#[get("/workspace/service-accounts/{id}")]
pub async fn detail(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let page = detail_page(&state, &session, &user, &id).await?;
    render(&page, StatusCode::OK)
}

fn back(id: &str) -> HttpResponse {
    see_other(&format!("/workspace/service-accounts/{id}"))
}

#[post("/workspace/service-accounts/{id}")]
pub async fn update(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    id: web::Path<String>,
    form: web::Form<AccountForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    match uc::update(&state, &user.ctx(), &id, form.input()).await {
        Ok(account) => {
            session::set_flash(
                &session,
                Flash::success(format!("“{}” was saved.", account.name)),
            )?;
            Ok(back(&id))
        }
        Err(Error::Invalid(errors)) => {
            let mut page = detail_page(&state, &session, &user, &id).await?;
            page.name = form.name;
            page.description = form.description;
            page.role = form.role;
            page.errors = FormErrors::from(errors);
            render(&page, StatusCode::UNPROCESSABLE_ENTITY)
        }
        Err(e) => Err(e.into()),
    }
}

async fn switch(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    id: &str,
    disabled: bool,
) -> Result<HttpResponse, AppError> {
    let account = uc::set_disabled(&state, &user.ctx(), id, disabled).await?;
    let text = if disabled {
        format!(
            "“{}” is disabled: all its keys are refused until you enable it.",
            account.name
        )
    } else {
        format!("“{}” is enabled: its keys work again.", account.name)
    };
    session::set_flash(&session, Flash::success(text))?;
    Ok(back(id))
}

#[post("/workspace/service-accounts/{id}/disable")]
pub async fn disable(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    switch(state, session, user, &id, true).await
}

#[post("/workspace/service-accounts/{id}/enable")]
pub async fn enable(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    switch(state, session, user, &id, false).await
}

#[derive(Template)]
#[template(path = "service_accounts/delete.html")]
struct DeletePage {
    layout: Layout,
    account: User,
    live_keys: usize,
}

/// Confirmation before deleting (works without JavaScript).
#[get("/workspace/service-accounts/{id}/delete")]
pub async fn delete_confirm(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let ctx = user.ctx();
    let account = uc::removable(&state, &ctx, &id).await?;
    let (_, keys) = uc::keys(&state, &ctx, &id).await?;
    let now = crate::db::now();
    let page = DeletePage {
        layout: Layout::new(&session, &user, "Delete service account", "users")?,
        live_keys: keys.iter().filter(|k| k.status(now).can_revoke()).count(),
        account,
    };
    render(&page, StatusCode::OK)
}

#[post("/workspace/service-accounts/{id}/delete")]
pub async fn delete(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let (account, revoked) = uc::delete(&state, &user.ctx(), &id).await?;
    session::set_flash(
        &session,
        Flash::success(format!(
            "The service account “{}” was deleted; {revoked} of its keys were revoked.",
            account.name
        )),
    )?;
    Ok(see_other("/workspace/users#service-accounts"))
}

#[derive(Deserialize)]
struct KeyForm {
    #[serde(default)]
    nonce: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    environment: String,
    #[serde(default)]
    permissions: Vec<String>,
    #[serde(default)]
    expiry: String,
}

/// Create a key for the account: its secret is shown once on the page.
#[post("/workspace/service-accounts/{id}/keys")]
pub async fn create_key(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let ctx = user.ctx();
    // Refused before the form is read, as every page does.
    uc::get(&state, &ctx, &id).await?;
    let form: KeyForm = super::keys::parse_form(&body)?;
    super::keys::check_nonce(&form.nonce)?;
    let today = crate::db::now().date();
    let input = NewKeyInput {
        name: form.name.clone(),
        environment: form.environment.clone(),
        permissions: form.permissions.clone(),
        expiry: Some(Expiry::parse(&form.expiry, "", today)),
        tags: ListInput::Text(String::new()),
        resources: ListInput::Text(String::new()),
        ..NewKeyInput::default()
    };
    let made = uc::create_key(&state, &ctx, &id, input, Once::Nonce(form.nonce.clone())).await;
    let mut page = detail_page(&state, &session, &user, &id).await?;
    match made {
        Ok(made) => {
            let secret = made
                .secret
                .ok_or_else(|| AppError::Internal("a new key without its secret".into()))?;
            page.secret = Some(ShownSecret {
                name: made.key.name.clone(),
                id: made.key.id.clone(),
                secret: secret.expose().to_owned(),
            });
            render(&page, StatusCode::OK)
        }
        Err(Error::Invalid(errors)) => {
            page.nonce = form.nonce;
            page.key_name = form.name;
            page.environment = form.environment;
            page.chosen = form.permissions;
            page.expiry = form.expiry;
            page.key_errors = FormErrors::from(errors);
            render(&page, StatusCode::UNPROCESSABLE_ENTITY)
        }
        Err(e) => Err(e.into()),
    }
}
