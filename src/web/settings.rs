//! Workspace → Settings (admins): the API keys switch, limits for new keys,
//! and the permission catalog.

use super::layout::Layout;
use super::session::{self, Flash};
use super::{AppState, CurrentUser, FormErrors, authorize, db, render, see_other};
use crate::db::permissions::{self, CatalogError, Permission};
use crate::db::settings::{self, Limits};
use crate::db::workspaces::{self, Workspace};
use crate::domain::input::FieldError;
use crate::domain::keys as dk;
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
}

impl SettingsPage {
    fn new(layout: Layout, workspace: Workspace, catalog: Vec<Permission>) -> Self {
        SettingsPage {
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

async fn load(
    state: &web::Data<AppState>,
    user: &CurrentUser,
) -> Result<(Workspace, Vec<Permission>), AppError> {
    let ws = user.actor.workspace_id.clone();
    db(state, move |c| {
        Ok((workspaces::get(c, &ws)?, permissions::all(c, &ws)?))
    })
    .await
}

#[get("/workspace/settings")]
pub async fn settings_page(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
) -> Result<HttpResponse, AppError> {
    authorize(&user, Action::ManageSettings)?;
    let (workspace, catalog) = load(&state, &user).await?;
    let page = SettingsPage::new(
        Layout::new(&session, &user, "Settings", "settings")?,
        workspace,
        catalog,
    );
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
    authorize(&user, Action::ManageSettings)?;
    let enabled = match form.enabled.as_str() {
        "on" => true,
        "off" => false,
        _ => {
            return Err(AppError::BadRequest(
                "Choose whether API keys are on or off.".into(),
            ));
        }
    };
    let ctx = user.audit();
    let changed = db(&state, move |c| {
        Ok(settings::set_api_keys_enabled(c, &ctx, enabled)?)
    })
    .await?;
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

#[derive(Deserialize)]
pub struct LimitsForm {
    #[serde(default)]
    max_expiry_days: String,
    #[serde(default)]
    max_keys_per_user: String,
    #[serde(default)]
    default_rate_limit: String,
}

fn parse_max_expiry(raw: &str) -> Result<Option<i32>, FieldError> {
    let v = raw.trim();
    if v.is_empty() {
        return Ok(None);
    }
    match v.parse::<i32>() {
        Ok(d) if (1..=3650).contains(&d) => Ok(Some(d)),
        _ => Err(FieldError::new(
            "max_expiry_days",
            "Maximum expiry must be a whole number of days from 1 to 3650, or empty for no maximum.",
        )),
    }
}

fn parse_max_keys(raw: &str) -> Result<i32, FieldError> {
    match raw.trim().parse::<i32>() {
        Ok(n) if (1..=1000).contains(&n) => Ok(n),
        _ => Err(FieldError::new(
            "max_keys_per_user",
            "Maximum keys per user must be a whole number from 1 to 1000.",
        )),
    }
}

#[post("/workspace/settings/limits")]
pub async fn limits(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    form: web::Form<LimitsForm>,
) -> Result<HttpResponse, AppError> {
    authorize(&user, Action::ManageSettings)?;
    let form = form.into_inner();
    let mut errors = FormErrors::default();
    let max_expiry_days = errors.check(parse_max_expiry(&form.max_expiry_days));
    let max_keys_per_user = errors.check(parse_max_keys(&form.max_keys_per_user));
    let default_rate_limit = errors.check(
        dk::parse_rate_limit(&form.default_rate_limit)
            .map_err(|e| FieldError::new("default_rate_limit", e.message)),
    );
    let (Some(max_expiry_days), Some(max_keys_per_user), Some(default_rate_limit)) =
        (max_expiry_days, max_keys_per_user, default_rate_limit)
    else {
        let (workspace, catalog) = load(&state, &user).await?;
        let mut page = SettingsPage::new(
            Layout::new(&session, &user, "Settings", "settings")?,
            workspace,
            catalog,
        );
        page.max_expiry_days = form.max_expiry_days;
        page.max_keys_per_user = form.max_keys_per_user;
        page.default_rate_limit = form.default_rate_limit;
        page.limit_errors = errors;
        return render(&page, StatusCode::UNPROCESSABLE_ENTITY);
    };
    let ctx = user.audit();
    let new = Limits {
        max_expiry_days,
        max_keys_per_user,
        default_rate_limit,
    };
    let changed = db(&state, move |c| Ok(settings::update_limits(c, &ctx, new)?)).await?;
    let message = match changed {
        0 => "Nothing changed.".to_owned(),
        _ => "Limits saved. They apply to keys created or regenerated from now on.".to_owned(),
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

fn parse_permission_name(raw: &str) -> Result<String, FieldError> {
    let v = raw.trim().to_lowercase();
    let ok = !v.is_empty()
        && v.len() <= 50
        && v.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || ":._-".contains(c));
    if ok && crate::domain::policy::management::is_management(&v) {
        // Reserved: a catalog entry there could pose as a management
        // permission, or shadow one.
        Err(FieldError::new(
            "perm_name",
            "Names starting with \"keyward:\" are reserved for keyward's own management permissions.",
        ))
    } else if ok {
        Ok(v)
    } else {
        Err(FieldError::new(
            "perm_name",
            "A permission name has 1 to 50 lower-case letters, digits, : . _ or -, like reports:read.",
        ))
    }
}

fn parse_permission_description(raw: &str) -> Result<String, FieldError> {
    let v = raw.trim();
    if v.is_empty()
        || v.chars().count() > 200
        || crate::domain::input::check_display_text("perm_description", "Description", v, false)
            .is_err()
    {
        return Err(FieldError::new(
            "perm_description",
            "Describe the permission in 1 to 200 characters.",
        ));
    }
    Ok(v.to_owned())
}

#[post("/workspace/settings/permissions")]
pub async fn add_permission(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    form: web::Form<PermissionForm>,
) -> Result<HttpResponse, AppError> {
    authorize(&user, Action::ManageSettings)?;
    let form = form.into_inner();
    let mut errors = FormErrors::default();
    let name = errors.check(parse_permission_name(&form.name));
    let description = errors.check(parse_permission_description(&form.description));
    let mut added = None;
    if let (Some(name), Some(description)) = (name, description) {
        let ctx = user.audit();
        let result = db(&state, move |c| {
            match permissions::add(c, &ctx, &name, &description) {
                Ok(p) => Ok(Ok(p)),
                Err(CatalogError::Duplicate) => Ok(Err(())),
                Err(e) => Err(e.into()),
            }
        })
        .await?;
        match result {
            Ok(p) => added = Some(p),
            Err(()) => errors.add("perm_name", "A permission with this name already exists."),
        }
    }
    if let Some(p) = added {
        session::set_flash(
            &session,
            Flash::success(format!("Permission {} was added.", p.name)),
        )?;
        return Ok(see_other("/workspace/settings#permissions"));
    }
    let (workspace, catalog) = load(&state, &user).await?;
    let mut page = SettingsPage::new(
        Layout::new(&session, &user, "Settings", "settings")?,
        workspace,
        catalog,
    );
    page.perm_name = form.name;
    page.perm_description = form.description;
    page.perm_errors = errors;
    render(&page, StatusCode::UNPROCESSABLE_ENTITY)
}

fn catalog_error(e: CatalogError) -> AppError {
    match e {
        CatalogError::NotFound => AppError::NotFound,
        other => AppError::Internal(other.to_string()),
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
    authorize(&user, Action::ManageSettings)?;
    let description = parse_permission_description(&form.description)
        .map_err(|e| AppError::BadRequest(e.message))?;
    let ctx = user.audit();
    let p = db(&state, move |c| {
        permissions::describe(c, &ctx, &id, &description).map_err(catalog_error)
    })
    .await?;
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
    authorize(&user, Action::ManageSettings)?;
    let ctx = user.audit();
    let p = db(&state, move |c| {
        permissions::set_retired(c, &ctx, &id, retired).map_err(catalog_error)
    })
    .await?;
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
