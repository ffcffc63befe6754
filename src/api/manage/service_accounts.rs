//! The management API's service accounts (`/api/v1/service-accounts…`):
//! the use cases of `app::service_accounts`, with
//! `keyward:service-accounts:read` / `keyward:service-accounts:write`, for
//! keys acting as an admin. A key created here for an account is never
//! broader than the key asking (the ceiling of `app::keys`), so a narrow
//! key cannot mint a broader one through an account it created.

use super::auth::{Manager, ServiceAccountsRead, ServiceAccountsWrite};
use super::body::{Body, Parsed, once};
use super::keys::{made, new_key_input, renamed};
use super::shapes::{
    BodyRefusals, CreateKeyRequest, KeyRefusals, KeyView, KeyWithSecret, Refusals, time,
};
use crate::api::problem::ApiError;
use crate::app::service_accounts::{self as uc, Input};
use crate::db::users::User;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A service account: a member of the workspace that is not a person. Its
/// keys act with its role, whoever created them.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceAccountView {
    #[schema(example = "sa_3Qd0sWcTzE1n8mK2pL5vXa")]
    pub id: String,
    pub name: String,
    pub description: String,
    /// `admin` or `normal`.
    pub role: String,
    /// Whether it is disabled (all its keys refused meanwhile).
    pub disabled: bool,
    pub disabled_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl ServiceAccountView {
    pub fn of(a: &User) -> Self {
        ServiceAccountView {
            id: a.id.clone(),
            name: a.name.clone(),
            description: a.description.clone(),
            role: a.role.clone(),
            disabled: a.disabled_at.is_some(),
            disabled_at: a.disabled_at.map(time),
            created_at: time(a.created_at),
            updated_at: time(a.updated_at),
        }
    }
}

/// The workspace's service accounts.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceAccountList {
    pub service_accounts: Vec<ServiceAccountView>,
}

/// A service account with its keys (deleted ones aside; never secrets).
#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceAccountDetail {
    pub service_account: ServiceAccountView,
    pub keys: Vec<KeyView>,
}

/// What a deletion did.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceAccountDeleted {
    pub service_account: ServiceAccountView,
    /// How many of its keys were revoked with it.
    pub keys_revoked: usize,
}

/// A new service account.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "CI deployer", "description": "Rotates the staging keys", "role": "normal"}))]
pub struct CreateServiceAccountRequest {
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    #[serde(default)]
    #[schema(max_length = 500)]
    pub description: Option<String>,
    /// `admin` or `normal` (never `operator`); default `normal`.
    #[serde(default)]
    pub role: Option<String>,
}

/// Fields to change; absent ones stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateServiceAccountRequest {
    #[serde(default)]
    #[schema(min_length = 1, max_length = 100)]
    pub name: Option<String>,
    #[serde(default)]
    #[schema(max_length = 500)]
    pub description: Option<String>,
    /// `admin` or `normal`.
    #[serde(default)]
    pub role: Option<String>,
}

type IdPath = web::Path<String>;

#[utoipa::path(
    get,
    path = "/api/v1/service-accounts",
    tag = "service-accounts",
    security(("bearer" = [])),
    responses((status = 200, description = "The service accounts", body = ServiceAccountList), Refusals)
)]
pub async fn list_service_accounts(
    m: Manager<ServiceAccountsRead>,
) -> Result<HttpResponse, ApiError> {
    let all = uc::list(&m.state, &m.ctx).await?;
    Ok(HttpResponse::Ok().json(ServiceAccountList {
        service_accounts: all.iter().map(ServiceAccountView::of).collect(),
    }))
}

#[utoipa::path(
    post,
    path = "/api/v1/service-accounts",
    tag = "service-accounts",
    request_body = CreateServiceAccountRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = ServiceAccountView),
        Refusals,
        KeyRefusals,
        BodyRefusals,
    )
)]
pub async fn create_service_account(
    m: Manager<ServiceAccountsWrite>,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    let input = body.json::<CreateServiceAccountRequest>(false)?.value;
    let input = Input {
        name: input.name,
        description: input.description.unwrap_or_default(),
        role: input.role.unwrap_or_else(|| "normal".into()),
    };
    let a = uc::create(&m.state, &m.ctx, input).await?;
    Ok(HttpResponse::Created().json(ServiceAccountView::of(&a)))
}

#[utoipa::path(
    get,
    path = "/api/v1/service-accounts/{id}",
    tag = "service-accounts",
    params(("id" = String, Path, description = "The service account's id", pattern = "^sa_[0-9A-Za-z]+$")),
    security(("bearer" = [])),
    responses((status = 200, description = "The service account and its keys", body = ServiceAccountDetail), Refusals, KeyRefusals)
)]
pub async fn get_service_account(
    m: Manager<ServiceAccountsRead>,
    id: IdPath,
) -> Result<HttpResponse, ApiError> {
    let (a, keys) = uc::keys(&m.state, &m.ctx, &id).await?;
    Ok(HttpResponse::Ok().json(ServiceAccountDetail {
        service_account: ServiceAccountView::of(&a),
        keys: keys.iter().map(KeyView::of).collect(),
    }))
}

#[utoipa::path(
    patch,
    path = "/api/v1/service-accounts/{id}",
    tag = "service-accounts",
    request_body = UpdateServiceAccountRequest,
    params(("id" = String, Path, description = "The service account's id", pattern = "^sa_[0-9A-Za-z]+$")),
    security(("bearer" = [])),
    responses((status = 200, description = "Changed", body = ServiceAccountView), Refusals, KeyRefusals, BodyRefusals)
)]
pub async fn update_service_account(
    m: Manager<ServiceAccountsWrite>,
    id: IdPath,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    let patch = body.json::<UpdateServiceAccountRequest>(false)?.value;
    let now = uc::get(&m.state, &m.ctx, &id).await?;
    let input = Input {
        name: patch.name.unwrap_or(now.name),
        description: patch.description.unwrap_or(now.description),
        role: patch.role.unwrap_or(now.role),
    };
    let a = uc::update(&m.state, &m.ctx, &id, input).await?;
    Ok(HttpResponse::Ok().json(ServiceAccountView::of(&a)))
}

#[utoipa::path(
    post,
    path = "/api/v1/service-accounts/{id}/disable",
    tag = "service-accounts",
    params(("id" = String, Path, description = "The service account's id", pattern = "^sa_[0-9A-Za-z]+$")),
    security(("bearer" = [])),
    responses((status = 200, description = "Disabled: all its keys are refused from now on", body = ServiceAccountView), Refusals, KeyRefusals)
)]
pub async fn disable_service_account(
    m: Manager<ServiceAccountsWrite>,
    id: IdPath,
) -> Result<HttpResponse, ApiError> {
    let a = uc::set_disabled(&m.state, &m.ctx, &id, true).await?;
    Ok(HttpResponse::Ok().json(ServiceAccountView::of(&a)))
}

#[utoipa::path(
    post,
    path = "/api/v1/service-accounts/{id}/enable",
    tag = "service-accounts",
    params(("id" = String, Path, description = "The service account's id", pattern = "^sa_[0-9A-Za-z]+$")),
    security(("bearer" = [])),
    responses((status = 200, description = "Enabled: its keys work as before", body = ServiceAccountView), Refusals, KeyRefusals)
)]
pub async fn enable_service_account(
    m: Manager<ServiceAccountsWrite>,
    id: IdPath,
) -> Result<HttpResponse, ApiError> {
    let a = uc::set_disabled(&m.state, &m.ctx, &id, false).await?;
    Ok(HttpResponse::Ok().json(ServiceAccountView::of(&a)))
}

#[utoipa::path(
    delete,
    path = "/api/v1/service-accounts/{id}",
    tag = "service-accounts",
    params(("id" = String, Path, description = "The service account's id", pattern = "^sa_[0-9A-Za-z]+$")),
    security(("bearer" = [])),
    responses((status = 200, description = "Deleted, its keys revoked in the same transaction", body = ServiceAccountDeleted), Refusals, KeyRefusals)
)]
pub async fn delete_service_account(
    m: Manager<ServiceAccountsWrite>,
    id: IdPath,
) -> Result<HttpResponse, ApiError> {
    let (a, keys_revoked) = uc::delete(&m.state, &m.ctx, &id).await?;
    Ok(HttpResponse::Ok().json(ServiceAccountDeleted {
        service_account: ServiceAccountView::of(&a),
        keys_revoked,
    }))
}

/// Create a key owned by the service account. The body is that of
/// `POST /api/v1/keys` without `kind`; management permissions it asks for
/// must be ones the account's role may hold and the asking key holds.
/// Rotate and revoke its keys at `/api/v1/keys/{id}/…`.
#[utoipa::path(
    post,
    path = "/api/v1/service-accounts/{id}/keys",
    tag = "service-accounts",
    request_body = CreateKeyRequest,
    params(
        ("id" = String, Path, description = "The service account's id", pattern = "^sa_[0-9A-Za-z]+$"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retried create return the first one's key (24 hours): 1 to 255 visible ASCII characters, sent once; the same JSON (members in any order) is the same request", min_length = 1, max_length = 255, pattern = "^[!-~]+$", nullable = false),
    ),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created; `secret` is shown this once", body = KeyWithSecret),
        (status = 200, description = "A repeat of an earlier request with this Idempotency-Key: the same key, no secret", body = KeyWithSecret),
        Refusals,
        KeyRefusals,
        BodyRefusals,
    )
)]
pub async fn create_service_account_key(
    m: Manager<ServiceAccountsWrite>,
    req: HttpRequest,
    id: IdPath,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    let Parsed {
        value: input,
        canonical,
    } = body.json::<CreateKeyRequest>(false)?;
    if input.kind.is_some() {
        return Err(ApiError::from(crate::app::Error::invalid(
            "kind",
            "A service account's key is always its own: leave kind out.",
        )));
    }
    let once = once(
        &req,
        &[b"create-sa-key", id.as_bytes(), canonical.as_bytes()],
    )?;
    let (input, expiry_field) = new_key_input(input);
    let key = uc::create_key(&m.state, &m.ctx, &id, input, once)
        .await
        .map_err(|e| renamed(e, expiry_field))?;
    Ok(made(key, true))
}
