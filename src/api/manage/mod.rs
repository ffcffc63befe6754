//! The management API: keys, events and usage over JSON, for scripts and
//! provisioning tools.
//!
//! A request is authenticated by a key holding one of the built-in
//! management permissions (`keyward:keys:read`, `keyward:keys:write`,
//! `keyward:events:read`). The key acts with the role of the person behind
//! it (its owner, or for a workspace key its creator), and every handler
//! asks the same policy module as the web pages with that role; every
//! change is recorded with the acting key as the actor. Validation and
//! limits are the use cases of `app::keys`, the very functions the pages
//! call, so the rules cannot drift.

//!
//! One file per room: [`auth`] (management keys), [`body`] (JSON bodies and
//! `Idempotency-Key`), [`shapes`] (what the OpenAPI document declares),
//! [`keys`] and [`events`] (the handlers).

pub mod auth;
pub mod body;
pub mod events;
pub mod keys;
pub mod plans;
pub mod requests;
pub mod service_accounts;
pub mod shapes;
pub mod sso;
pub mod webhooks;

pub use events::*;
pub use keys::*;
pub use plans::*;
pub use requests::{end_grace, key_callers, key_requests};
pub use service_accounts::*;
pub use shapes::*;
pub use sso::*;
pub use webhooks::*;

use actix_web::web;

/// The management API's key routes (the integration endpoint
/// `/api/v1/keys/verify` lies inside and declares its own scope).
pub const KEYS_SCOPE: &str = "/api/v1/keys";
/// The management API's audit trail.
pub const EVENTS_SCOPE: &str = "/api/v1/events";

/// Register the management routes (inside the `/api/v1` scope).
///
/// One resource per path, with a route per method: a method the path does
/// not answer is then 405 with an `Allow` header listing those it does
/// (rendered as a problem by the error scopes), not the 404 of a path
/// that does not exist. Every GET answers HEAD too, the same without a
/// body (RFC 9110); the document leaves HEAD implied, as is usual.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/keys")
            .get(list_keys)
            .head(list_keys)
            .post(create_key),
    )
    .service(
        web::resource("/keys/{id}")
            .get(get_key)
            .head(get_key)
            .patch(update_key)
            .delete(delete_key),
    )
    .service(web::resource("/keys/{id}/disable").post(disable_key))
    .service(web::resource("/keys/{id}/enable").post(enable_key))
    .service(web::resource("/keys/{id}/revoke").post(revoke_key))
    .service(web::resource("/keys/{id}/regenerate").post(regenerate_key))
    .service(
        web::resource("/keys/{id}/quota")
            .get(get_quota)
            .head(get_quota)
            .post(top_up_quota),
    )
    .service(
        web::resource("/keys/{id}/usage")
            .get(key_usage)
            .head(key_usage),
    )
    .service(
        web::resource("/keys/{id}/requests")
            .get(key_requests)
            .head(key_requests),
    )
    .service(
        web::resource("/keys/{id}/callers")
            .get(key_callers)
            .head(key_callers),
    )
    .service(web::resource("/keys/{id}/end-grace").post(end_grace))
    .service(web::resource("/keys/{id}/reveal").post(reveal_key))
    .service(web::resource("/settings/recoverable-keys").put(set_recoverable_keys))
    .service(
        web::resource("/settings/sso")
            .get(get_sso_settings)
            .head(get_sso_settings)
            .put(put_sso_settings),
    )
    // Service accounts (members that are not people) and their keys.
    .service(
        web::resource("/service-accounts")
            .get(list_service_accounts)
            .head(list_service_accounts)
            .post(create_service_account),
    )
    .service(
        web::resource("/service-accounts/{id}")
            .get(get_service_account)
            .head(get_service_account)
            .patch(update_service_account)
            .delete(delete_service_account),
    )
    .service(web::resource("/service-accounts/{id}/disable").post(disable_service_account))
    .service(web::resource("/service-accounts/{id}/enable").post(enable_service_account))
    .service(web::resource("/service-accounts/{id}/keys").post(create_service_account_key))
    .service(
        web::resource("/plans")
            .get(list_plans)
            .head(list_plans)
            .post(create_plan),
    )
    .service(
        web::resource("/plans/{id}")
            .get(get_plan)
            .head(get_plan)
            .patch(update_plan)
            .delete(delete_plan),
    )
    .service(web::resource("/events").get(list_events).head(list_events))
    // Webhook endpoints (notifications).
    .service(
        web::resource("/webhooks")
            .get(list_webhooks)
            .head(list_webhooks)
            .post(create_webhook),
    )
    .service(
        web::resource("/webhooks/{id}")
            .get(get_webhook)
            .head(get_webhook)
            .patch(update_webhook)
            .delete(delete_webhook),
    )
    .service(web::resource("/webhooks/{id}/roll-secret").post(roll_webhook_secret))
    .service(web::resource("/webhooks/{id}/test").post(test_webhook))
    .service(
        web::resource("/webhooks/{id}/deliveries")
            .get(webhook_deliveries)
            .head(webhook_deliveries),
    )
    .service(web::resource("/webhooks/{id}/deliveries/{message_id}/resend").post(resend_webhook));
}
