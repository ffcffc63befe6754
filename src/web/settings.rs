//! Workspace → Settings (admins): the API keys switch, limits for new keys,
//! and the permission catalog.

use super::layout::Layout;
use super::session::{self, Flash};
use super::{AppState, CurrentUser, FormErrors, authorize, render, see_other};
use crate::app::Error;
use crate::app::settings as uc;
use crate::db::permissions::Permission;
use crate::db::workspaces::Workspace;
use crate::domain::policy::Action;
use crate::error::AppError;
use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

#[derive(Template)]
#[template(path = "settings/page.html")]
struct SettingsPage {
    layout: Layout,
    workspace: Workspace,
    catalog: Vec<Permission>,
    max_expiry_days: String,
    max_keys_per_user: String,
    default_rate_limit: String,
    limit_errors: FormErrors,
    perm_name: String,
    perm_description: String,
    perm_errors: FormErrors,
    /// Whether the operator set keys for recoverable keys (issue 27).
    recovery_configured: bool,
}

impl SettingsPage {
    fn new(layout: Layout, workspace: Workspace, catalog: Vec<Permission>) -> Self {
        SettingsPage {
            recovery_configured: false,
            layout,
            max_expiry_days: workspace
                .max_expiry_days
                .map(|d| d.to_string())
                .unwrap_or_default(),
            max_keys_per_user: workspace.max_keys_per_user.to_string(),
            default_rate_limit: workspace
                .default_rate_limit
                .map(|r| r.to_string())
                .unwrap_or_default(),
            workspace,
            catalog,
            limit_errors: FormErrors::default(),
            perm_name: String::new(),
            perm_description: String::new(),
            perm_errors: FormErrors::default(),
        }
    }
}

/// The settings page, with errors of one of its forms where `errors`
/// holds some.
async fn page(
    state: &web::Data<AppState>,
    session: &Session,
    user: &CurrentUser,
) -> Result<SettingsPage, AppError> {
    let (workspace, catalog) = uc::load(state, &user.ctx()).await?;
    Ok(SettingsPage {
        recovery_configured: crate::app::recover::configured(state),
        ..SettingsPage::new(
            Layout::new(session, user, "Settings", "settings")?,
            workspace,
            catalog,
        )
    })
}

#[get("/workspace/settings")]
pub async fn settings_page(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
) -> Result<HttpResponse, AppError> {
    let page = page(&state, &session, &user).await?;
    render(&page, StatusCode::OK)
}

#[derive(Template)]
#[template(path = "settings/switch_off.html")]
struct SwitchOffPage {
    layout: Layout,
}

/// Confirmation before switching every key off.
#[get("/workspace/settings/api-keys/off")]
pub async fn switch_off_confirm(
    session: Session,
    user: CurrentUser,
) -> Result<HttpResponse, AppError> {
    authorize(&user, Action::ManageSettings)?;
    let page = SwitchOffPage {
        layout: Layout::new(&session, &user, "Switch API keys off", "settings")?,
    };
    render(&page, StatusCode::OK)
}

#[derive(Deserialize)]
pub struct SwitchForm {
    #[serde(default)]
    enabled: String,
}

#[post("/workspace/settings/api-keys")]
pub async fn switch(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    form: web::Form<SwitchForm>,
) -> Result<HttpResponse, AppError> {
    let (changed, enabled) = uc::set_api_keys(&state, &user.ctx(), &form.enabled).await?;
    let message = match (changed, enabled) {
        (false, _) => "Nothing changed.",
        (true, true) => "API keys are on again: every key works as before.",
        (true, false) => {
            "API keys are switched off: every key of this workspace is refused until you turn them back on."
        }
    };
    session::set_flash(&session, Flash::success(message))?;
    Ok(see_other("/workspace/settings"))
}

#[derive(Template)]
#[template(path = "settings/recoverable_off.html")]
struct RecoverableOffPage {
    layout: Layout,
}

/// Confirmation before turning recoverable keys off (their stored secrets
/// are destroyed).
#[get("/workspace/settings/recoverable-keys/off")]
pub async fn recoverable_off_confirm(
    session: Session,
    user: CurrentUser,
) -> Result<HttpResponse, AppError> {
    authorize(&user, Action::ManageSettings)?;
    let page = RecoverableOffPage {
        layout: Layout::new(&session, &user, "Turn recoverable keys off", "settings")?,
    };
    render(&page, StatusCode::OK)
}

/// Turn recoverable keys on or off (issue 27).
#[post("/workspace/settings/recoverable-keys")]
pub async fn recoverable(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    form: web::Form<SwitchForm>,
) -> Result<HttpResponse, AppError> {
    let enabled = match form.enabled.as_str() {
        "on" => true,
        "off" => false,
        _ => {
            return Err(AppError::BadRequest(
                "Choose whether recoverable keys are on or off.".into(),
            ));
        }
    };
    let (changed, destroyed) =
        crate::app::recover::set_enabled(&state, &user.ctx(), enabled).await?;
    let message = match (changed, enabled) {
        (false, _) => "Nothing changed.".to_owned(),
        (true, true) => "Recoverable keys are on: a new key can be created recoverable.".to_owned(),
        (true, false) => format!(
            "Recoverable keys are off. The stored secrets of {destroyed} key{} were destroyed; those keys keep working.",
            if destroyed == 1 { "" } else { "s" }
        ),
    };
    session::set_flash(&session, Flash::success(message))?;
    Ok(see_other("/workspace/settings"))
}

#[derive(Deserialize)]
pub struct LimitsForm {
    #[serde(default)]
    max_expiry_days: String,
    #[serde(default)]
    max_keys_per_user: String,
    #[serde(default)]
    default_rate_limit: String,
}

#[post("/workspace/settings/limits")]
pub async fn limits(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    form: web::Form<LimitsForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    let input = uc::LimitsInput {
        max_expiry_days: &form.max_expiry_days,
        max_keys_per_user: &form.max_keys_per_user,
        default_rate_limit: &form.default_rate_limit,
    };
    let changed = match uc::set_limits(&state, &user.ctx(), input).await {
        Ok(changed) => changed,
        Err(Error::Invalid(errors)) => {
            let mut page = page(&state, &session, &user).await?;
            page.max_expiry_days = form.max_expiry_days;
            page.max_keys_per_user = form.max_keys_per_user;
            page.default_rate_limit = form.default_rate_limit;
            page.limit_errors = FormErrors::from(errors);
            return render(&page, StatusCode::UNPROCESSABLE_ENTITY);
        }
        Err(e) => return Err(e.into()),
    };
    let message = if changed {
        "Limits saved. They apply to keys created or regenerated from now on."
    } else {
        "Nothing changed."
    };
    session::set_flash(&session, Flash::success(message))?;
    Ok(see_other("/workspace/settings"))
}

#[derive(Deserialize)]
pub struct PermissionForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
}

#[post("/workspace/settings/permissions")]
pub async fn add_permission(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    form: web::Form<PermissionForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    match uc::add_permission(&state, &user.ctx(), &form.name, &form.description).await {
        Ok(p) => {
            session::set_flash(
                &session,
                Flash::success(format!("Permission {} was added.", p.name)),
            )?;
            Ok(see_other("/workspace/settings#permissions"))
        }
        Err(Error::Invalid(errors)) => {
            let mut page = page(&state, &session, &user).await?;
            page.perm_name = form.name;
            page.perm_description = form.description;
            page.perm_errors = FormErrors::from(errors);
            render(&page, StatusCode::UNPROCESSABLE_ENTITY)
        }
        Err(e) => Err(e.into()),
    }
}

#[post("/workspace/settings/permissions/{id}")]
pub async fn describe_permission(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    id: web::Path<String>,
    form: web::Form<PermissionForm>,
) -> Result<HttpResponse, AppError> {
    let p = uc::describe_permission(&state, &user.ctx(), &id, &form.description).await?;
    session::set_flash(
        &session,
        Flash::success(format!("The description of {} was saved.", p.name)),
    )?;
    Ok(see_other("/workspace/settings#permissions"))
}

async fn retire_or_restore(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    id: String,
    retired: bool,
) -> Result<HttpResponse, AppError> {
    let p = uc::retire_permission(&state, &user.ctx(), &id, retired).await?;
    let message = if retired {
        format!(
            "{} is retired: it is no longer offered for new keys. Keys that have it keep it.",
            p.name
        )
    } else {
        format!("{} is offered for new keys again.", p.name)
    };
    session::set_flash(&session, Flash::success(message))?;
    Ok(see_other("/workspace/settings#permissions"))
}

#[post("/workspace/settings/permissions/{id}/retire")]
pub async fn retire_permission(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    retire_or_restore(state, session, user, id.into_inner(), true).await
}

#[post("/workspace/settings/permissions/{id}/restore")]
pub async fn restore_permission(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    retire_or_restore(state, session, user, id.into_inner(), false).await
}
