//! The workspace's single sign-on settings over JSON
//! (`/api/v1/settings/sso`): the use cases of `app::sso` the settings page
//! calls, with `keyward:settings:read` / `keyward:settings:write` (admins).

use super::auth::{Manager, SettingsRead, SettingsWrite};
use super::body::{Body, Parsed};
use super::shapes::{BodyRefusals, Refusals};
use crate::api::problem::{ApiError, Problem};
use crate::app::sso::{self as uc, SettingsInput};
use crate::db::sso::SsoSettings;
use actix_web::HttpResponse;
use serde::{Deserialize, Serialize};
use utoipa::{IntoResponses, ToSchema};

/// A workspace's single sign-on settings.
#[derive(Debug, Serialize, ToSchema)]
pub struct SsoSettingsView {
    /// The provider whose people may join on their first sign-in; `null`:
    /// only invited people.
    #[schema(example = "corp")]
    pub join_provider: Option<String>,
    /// The role people joining get: `admin`, `normal` or `operator`.
    #[schema(example = "normal")]
    pub default_role: String,
    /// Email domains people joining must have; empty: any verified email.
    pub email_domains: Vec<String>,
    /// Groups claim values giving a role on joining (the first that
    /// matches wins).
    pub group_roles: Vec<GroupRole>,
    /// Password sign-in refused for members (break-glass emails excepted).
    pub sso_only: bool,
    /// The providers the operator configured.
    pub providers: Vec<ProviderView>,
}

/// A groups claim value and the role it gives.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupRole {
    #[schema(example = "platform-admins")]
    pub group: String,
    #[schema(example = "admin")]
    pub role: String,
}

/// A configured OpenID provider.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderView {
    #[schema(example = "corp")]
    pub id: String,
    #[schema(example = "Corp ID")]
    pub name: String,
}

/// The whole settings; absent fields take their defaults (nobody joins,
/// role normal, any domain, no mapping, passwords allowed).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"join_provider": "corp", "default_role": "normal", "email_domains": ["example.com"], "group_roles": [{"group": "platform-admins", "role": "admin"}], "sso_only": false}))]
pub struct SsoSettingsRequest {
    #[serde(default)]
    pub join_provider: Option<String>,
    #[serde(default)]
    pub default_role: Option<String>,
    #[serde(default)]
    pub email_domains: Vec<String>,
    #[serde(default)]
    pub group_roles: Vec<GroupRole>,
    #[serde(default)]
    pub sso_only: bool,
}

/// Refusals of settings as sent.
#[derive(IntoResponses)]
pub enum SettingsRefusals {
    /// Invalid fields, one message each.
    #[response(status = 422, content_type = "application/problem+json")]
    Invalid(Problem),
}

fn view(state: &crate::state::AppState, s: &SsoSettings) -> SsoSettingsView {
    SsoSettingsView {
        join_provider: s.join_provider.clone(),
        default_role: s.default_role.as_str().to_owned(),
        email_domains: s.email_domains.clone(),
        group_roles: s
            .group_roles
            .iter()
            .map(|(g, r)| GroupRole {
                group: g.clone(),
                role: r.as_str().to_owned(),
            })
            .collect(),
        sso_only: s.sso_only,
        providers: uc::providers(state)
            .into_iter()
            .map(|p| ProviderView {
                id: p.id,
                name: p.name,
            })
            .collect(),
    }
}

/// The workspace's single sign-on settings (an admin's key).
#[utoipa::path(
    get,
    path = "/api/v1/settings/sso",
    tag = "settings",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The settings", body = SsoSettingsView),
        Refusals,
    )
)]
pub async fn get_sso_settings(m: Manager<SettingsRead>) -> Result<HttpResponse, ApiError> {
    let (current, _) = uc::settings(&m.state, &m.ctx).await?;
    Ok(HttpResponse::Ok().json(view(&m.state, &current)))
}

/// Replace the workspace's single sign-on settings (an admin's key), with
/// the same checks as the settings page; audited as
/// `workspace.sso_settings_changed` when something changed.
#[utoipa::path(
    put,
    path = "/api/v1/settings/sso",
    tag = "settings",
    request_body = SsoSettingsRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The settings as they now are", body = SsoSettingsView),
        Refusals,
        SettingsRefusals,
        BodyRefusals,
    )
)]
pub async fn put_sso_settings(
    m: Manager<SettingsWrite>,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    let Parsed { value, .. } = body.json::<SsoSettingsRequest>(false)?;
    let input = SettingsInput {
        join_provider: value.join_provider.unwrap_or_default(),
        default_role: value.default_role.unwrap_or_else(|| "normal".into()),
        email_domains: value.email_domains.join("\n"),
        group_roles: value
            .group_roles
            .iter()
            .map(|g| format!("{}={}", g.group, g.role))
            .collect::<Vec<_>>()
            .join("\n"),
        sso_only: value.sso_only,
    };
    let (saved, _) = uc::save_settings(&m.state, &m.ctx, &input).await?;
    Ok(HttpResponse::Ok().json(view(&m.state, &saved)))
}
