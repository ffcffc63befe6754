//! Workspace settings: the API keys switch, limits for new keys, and the
//! permission catalog (admins).

use super::{Ctx, Error, Result, run};
use crate::db::permissions::{self, CatalogError, Permission};
use crate::db::settings::{self, Limits};
use crate::db::workspaces::{self, Workspace};
use crate::domain::input::FieldError;
use crate::domain::keys as dk;
use crate::domain::policy::{Action, management};
use crate::state::AppState;

impl From<CatalogError> for Error {
    fn from(e: CatalogError) -> Self {
        match e {
            CatalogError::NotFound => Error::NotFound,
            CatalogError::Duplicate => {
                Error::invalid("perm_name", "A permission with this name already exists.")
            }
            CatalogError::Db(e) => Error::Db(e),
        }
    }
}

/// The workspace and its whole catalog (retired permissions too).
pub async fn load(state: &AppState, ctx: &Ctx) -> Result<(Workspace, Vec<Permission>)> {
    ctx.authorize(Action::ManageSettings)?;
    let ws = ctx.workspace_id().to_owned();
    run(state, move |c| {
        Ok((workspaces::get(c, &ws)?, permissions::all(c, &ws)?))
    })
    .await
}

/// Switch every key of the workspace on (`true`) or off. Returns whether
/// anything changed.
pub async fn set_api_keys(state: &AppState, ctx: &Ctx, enabled: &str) -> Result<(bool, bool)> {
    ctx.authorize(Action::ManageSettings)?;
    let enabled = match enabled {
        "on" => true,
        "off" => false,
        _ => {
            return Err(Error::BadRequest(
                "Choose whether API keys are on or off.".into(),
            ));
        }
    };
    let audit = ctx.audit.clone();
    let written = run(state, move |c| {
        Ok(settings::set_api_keys_enabled(c, &audit, enabled)?)
    })
    .await;
    // A commit in doubt is settled by reading the switch back; found as
    // asked, it is answered as changed (it was, by this request or a twin).
    let ws = ctx.workspace_id().to_owned();
    let changed = super::settle(state, written, move |c| {
        let now = workspaces::get(c, &ws)?;
        Ok((now.api_keys_disabled_at.is_none() == enabled).then_some(true))
    })
    .await?;
    Ok((changed, enabled))
}

fn parse_max_expiry(raw: &str) -> std::result::Result<Option<i32>, FieldError> {
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

fn parse_max_keys(raw: &str) -> std::result::Result<i32, FieldError> {
    match raw.trim().parse::<i32>() {
        Ok(n) if (1..=1000).contains(&n) => Ok(n),
        _ => Err(FieldError::new(
            "max_keys_per_user",
            "Maximum keys per user must be a whole number from 1 to 1000.",
        )),
    }
}

/// Limits as sent: maximum expiry in days (empty: none), personal keys per
/// member, default rate limit (empty: none).
pub struct LimitsInput<'a> {
    pub max_expiry_days: &'a str,
    pub max_keys_per_user: &'a str,
    pub default_rate_limit: &'a str,
}

/// Save the limits for new keys. Returns whether anything changed.
pub async fn set_limits(state: &AppState, ctx: &Ctx, input: LimitsInput<'_>) -> Result<bool> {
    ctx.authorize(Action::ManageSettings)?;
    let mut errors = Vec::new();
    let max_expiry_days = parse_max_expiry(input.max_expiry_days)
        .map_err(|e| errors.push(e))
        .ok();
    let max_keys_per_user = parse_max_keys(input.max_keys_per_user)
        .map_err(|e| errors.push(e))
        .ok();
    let default_rate_limit = dk::parse_rate_limit(input.default_rate_limit)
        .map_err(|e| errors.push(FieldError::new("default_rate_limit", e.message)))
        .ok();
    let (Some(max_expiry_days), Some(max_keys_per_user), Some(default_rate_limit)) =
        (max_expiry_days, max_keys_per_user, default_rate_limit)
    else {
        return Err(Error::Invalid(errors));
    };
    let audit = ctx.audit.clone();
    let new = Limits {
        max_expiry_days,
        max_keys_per_user,
        default_rate_limit,
    };
    let written = run(state, move |c| Ok(settings::update_limits(c, &audit, new)?)).await;
    // As for the switch: the limits read back as sent settle it.
    let ws = ctx.workspace_id().to_owned();
    let changed = super::settle(state, written, move |c| {
        let now = workspaces::get(c, &ws)?;
        Ok((Limits::of(&now) == new).then_some(1))
    })
    .await?;
    Ok(changed > 0)
}

fn parse_permission_name(raw: &str) -> std::result::Result<String, FieldError> {
    let v = raw.trim().to_lowercase();
    let ok = !v.is_empty()
        && v.len() <= 50
        && v.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || ":._-".contains(c));
    if ok && management::is_management(&v) {
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

fn parse_permission_description(raw: &str) -> std::result::Result<String, FieldError> {
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

/// Add a permission to the workspace's catalog.
pub async fn add_permission(
    state: &AppState,
    ctx: &Ctx,
    name: &str,
    description: &str,
) -> Result<Permission> {
    ctx.authorize(Action::ManageSettings)?;
    let mut errors = Vec::new();
    let name = parse_permission_name(name).map_err(|e| errors.push(e)).ok();
    let description = parse_permission_description(description)
        .map_err(|e| errors.push(e))
        .ok();
    let (Some(name), Some(description)) = (name, description) else {
        return Err(Error::Invalid(errors));
    };
    let audit = ctx.audit.clone();
    run(state, move |c| {
        Ok(permissions::add(c, &audit, &name, &description)?)
    })
    .await
}

/// Change a permission's description.
pub async fn describe_permission(
    state: &AppState,
    ctx: &Ctx,
    id: &str,
    description: &str,
) -> Result<Permission> {
    ctx.authorize(Action::ManageSettings)?;
    let description =
        parse_permission_description(description).map_err(|e| Error::Invalid(vec![e]))?;
    let audit = ctx.audit.clone();
    let id = id.to_owned();
    run(state, move |c| {
        Ok(permissions::describe(c, &audit, &id, &description)?)
    })
    .await
}

/// Retire a permission (no longer offered for new keys; keys keep it) or
/// offer it again.
pub async fn retire_permission(
    state: &AppState,
    ctx: &Ctx,
    id: &str,
    retired: bool,
) -> Result<Permission> {
    ctx.authorize(Action::ManageSettings)?;
    let audit = ctx.audit.clone();
    let id = id.to_owned();
    run(state, move |c| {
        Ok(permissions::set_retired(c, &audit, &id, retired)?)
    })
    .await
}
