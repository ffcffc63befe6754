//! Authentication of management requests: a key holding the management
//! permission an endpoint needs, acting for the member behind it.

use super::super::problem::ApiError;
use crate::app::Ctx;
use crate::db::events::AuditContext;
use crate::domain::policy::{self, Actor, management};
use crate::state::AppState;
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use std::marker::PhantomData;

/// The management permission an endpoint needs.
pub trait Need {
    const PERMISSION: &'static str;
}

/// `keyward:keys:read`.
pub struct KeysRead;
/// `keyward:keys:write`.
pub struct KeysWrite;
/// `keyward:events:read`.
pub struct EventsRead;

impl Need for KeysRead {
    const PERMISSION: &'static str = management::KEYS_READ;
}
impl Need for KeysWrite {
    const PERMISSION: &'static str = management::KEYS_WRITE;
}
impl Need for EventsRead {
    const PERMISSION: &'static str = management::EVENTS_READ;
}
/// `keyward:keys:reveal`.
pub struct KeysReveal;
impl Need for KeysReveal {
    const PERMISSION: &'static str = management::KEYS_REVEAL;
}
/// `keyward:webhooks:read`.
pub struct WebhooksRead;
/// `keyward:webhooks:write`.
pub struct WebhooksWrite;
impl Need for WebhooksRead {
    const PERMISSION: &'static str = management::WEBHOOKS_READ;
}
impl Need for WebhooksWrite {
    const PERMISSION: &'static str = management::WEBHOOKS_WRITE;
}

/// `keyward:service-accounts:read`.
pub struct ServiceAccountsRead;
/// `keyward:service-accounts:write`.
pub struct ServiceAccountsWrite;
impl Need for ServiceAccountsRead {
    const PERMISSION: &'static str = management::SERVICE_ACCOUNTS_READ;
}
impl Need for ServiceAccountsWrite {
    const PERMISSION: &'static str = management::SERVICE_ACCOUNTS_WRITE;
}

/// `keyward:settings:read`.
pub struct SettingsRead;
/// `keyward:settings:write`.
pub struct SettingsWrite;
impl Need for SettingsRead {
    const PERMISSION: &'static str = management::SETTINGS_READ;
}
impl Need for SettingsWrite {
    const PERMISSION: &'static str = management::SETTINGS_WRITE;
}

/// `keyward:plans:read`.
pub struct PlansRead;
/// `keyward:plans:write`.
pub struct PlansWrite;
impl Need for PlansRead {
    const PERMISSION: &'static str = management::PLANS_READ;
}
impl Need for PlansWrite {
    const PERMISSION: &'static str = management::PLANS_WRITE;
}

/// A request authenticated by a key holding the management permission `N`:
/// the use-case context of the member it acts for, with the key as the
/// audit actor.
pub struct Manager<N> {
    pub state: web::Data<AppState>,
    pub ctx: Ctx,
    need: PhantomData<N>,
}

impl<N: Need + 'static> FromRequest for Manager<N> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = super::super::bearer(req).map(str::to_owned);
        // PostgreSQL refuses a NUL in text, and no id, filter or search
        // holds a control character: refuse them before any query.
        let has_control = |raw: &str| {
            percent_encoding::percent_decode_str(raw)
                .decode_utf8_lossy()
                .chars()
                .any(char::is_control)
        };
        let control = has_control(req.query_string()) || has_control(req.path());
        let ip = crate::http::client_ip(req);
        let user_agent = crate::http::user_agent(req);
        // Described now (the request is not kept): what the request log
        // records, and the address a key's IP allowlist is checked
        // against, as strict as on /me (a repeated X-Forwarded-For from a
        // trusted proxy is refused).
        let direct = crate::api::calls::Direct(req);
        let call = crate::verify::requests::Described {
            info: crate::verify::DescribeCall::describe(&direct),
            address: crate::verify::DescribeCall::address(&direct),
        };
        Box::pin(async move {
            let state = state.ok_or_else(|| {
                ApiError::from(crate::error::AppError::Internal("no state".into()))
            })?;
            let token = token.inspect_err(|outcome| {
                state.verifier.metrics.count_refusal(outcome.code);
            });
            let token = token.map_err(ApiError::refused)?;
            let requirements = crate::verify::Requirements {
                environment: None,
                permission: Some(N::PERMISSION.to_owned()),
                resource: None,
                // A management key acts in its own workspace.
                workspace: crate::verify::WorkspaceRequirement::Any,
                cost: None,
            };
            let verified = state
                .verifier
                .verify(&state.pool, &token, &requirements, &call)
                .await
                .map_err(ApiError::refused)?;
            if control {
                return Err(ApiError::bad_request(
                    "The address contains a control character (such as a NUL byte), which no id, filter or search holds.",
                ));
            }
            // The record the check cached is compact; acting needs the
            // whole row (its grant bounds what the key may hand out).
            let ws = verified.record.workspace_id().to_owned();
            let key_id = verified.record.id().to_owned();
            let found = crate::app::run(&state, move |c| {
                let Some(key) = crate::db::keys::get(c, &ws, &key_id)? else {
                    return Ok(None);
                };
                let person_id = key
                    .owner_id
                    .clone()
                    .unwrap_or_else(|| key.created_by.clone());
                let person = crate::db::users::get(c, &ws, &person_id)?;
                Ok(Some((key, person)))
            })
            .await?;
            let Some((key, person)) = found else {
                // Deleted between the check and now.
                return Err(ApiError::refused(crate::verify::Outcome::new(
                    crate::verify::Code::Revoked,
                    "This key was revoked and can no longer be used. Create a new key.",
                )));
            };
            let person = person
                // An active member who has joined (not one still invited).
                .filter(|u| u.is_active() && !u.invite_pending())
                .ok_or_else(|| {
                    ApiError::forbidden(
                        "The person this key acts for is no longer a member of the workspace, so the key cannot manage anything. An admin can create a new management key.",
                    )
                })?;
            let role = person.role();
            if !policy::management_key_may_act(role, !key.is_personal()) {
                return Err(ApiError::forbidden(format!(
                    "This key acts for {} ({}), whose role may not manage keyward through the API with this kind of key.",
                    person.email,
                    role.label()
                )));
            }
            let actor = Actor {
                user_id: person.id.clone(),
                person_id: person.person_id.clone(),
                workspace_id: key.workspace_id.clone(),
                role,
            };
            let audit = AuditContext {
                workspace_id: key.workspace_id.clone(),
                actor_id: Some(key.id.clone()),
                actor_label: format!("API key “{}” ({})", key.name, key.id),
                ip,
                user_agent,
            };
            Ok(Manager {
                state,
                ctx: Ctx {
                    actor,
                    user: person,
                    audit,
                    via_key: Some(key),
                },
                need: PhantomData,
            })
        })
    }
}
