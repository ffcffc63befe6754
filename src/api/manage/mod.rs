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
pub mod shapes;

pub use events::*;
pub use keys::*;
pub use shapes::*;

use actix_web::web;

/// The management API's key routes (the integration endpoint
/// `/api/v1/keys/verify` lies inside and declares its own scope).
pub const KEYS_SCOPE: &str = "/api/v1/keys";
/// The management API's audit trail.
pub const EVENTS_SCOPE: &str = "/api/v1/events";

/// Register the management routes (inside the `/api/v1` scope).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(list_keys)
        .service(create_key)
        .service(get_key)
        .service(update_key)
        .service(delete_key)
        .service(disable_key)
        .service(enable_key)
        .service(revoke_key)
        .service(regenerate_key)
        .service(key_usage)
        .service(list_events);
}
