//! Recoverable keys (issue 27), opt-in: the workspace switch, creating a
//! key recoverable, and showing its secret again — the one set of rules
//! for the pages and the management API.
//!
//! Showing a secret again asks for more than managing the key (the policy
//! module's `ManageKey`, through [`keys::load`]): through the pages, the
//! person confirmed their password within [`CONFIRM_WITHIN`]; through the
//! API, the acting key holds `keyward:keys:reveal`. Both are rate-limited
//! ([`REVEALS_PER_WINDOW`] in [`REVEAL_WINDOW`]) and audited (`key.secret_shown`, never with the
//! secret). A secret that cannot be opened (no operator keys, an unknown or
//! wrong one) is refused, never guessed at.

use super::keys::{self as uc, Act};
use super::{Ctx, Error, Result, run};
use crate::db::keys::{self, ApiKey};
use crate::db::workspaces::Workspace;
use crate::db::{events, secrets, settings};
use crate::domain::keys::Secret;
use crate::domain::policy::{Action, management};
use crate::domain::recovery::OperatorKeys;
use crate::state::AppState;
use chrono::{NaiveDateTime, TimeDelta};
use serde_json::json;
use std::time::Instant;

/// How recent a password confirmation must be to show a secret.
pub const CONFIRM_WITHIN: TimeDelta = TimeDelta::minutes(5);

pub use crate::domain::throttle::{REVEAL_WINDOW, REVEALS_PER_WINDOW};

/// The stable code of a refusal because the operator set no keys.
pub const NOT_CONFIGURED: &str = "RECOVERY_NOT_CONFIGURED";

fn not_configured() -> Error {
    Error::conflict(
        NOT_CONFIGURED,
        "Recoverable keys need an operator key: the operator sets KEYWARD_RECOVERY_KEYS_FILE (see docs/recoverable-keys.md) and restarts keyward.",
    )
}

/// Whether the operator configured keys to seal secrets with.
pub fn configured(state: &AppState) -> bool {
    state.config.recovery_keys.is_some()
}

/// Whether a new key of `workspace` may be created recoverable (offered by
/// the create form).
pub fn offered(state: &AppState, workspace: &Workspace) -> bool {
    configured(state) && workspace.recoverable_keys_at.is_some()
}

/// Turn recoverable keys on or off for the workspace (admins). On needs
/// the operator's keys; off destroys every stored secret of the workspace
/// at once (audited with their number). Returns whether anything changed
/// and how many secrets were destroyed.
pub async fn set_enabled(state: &AppState, ctx: &Ctx, enabled: bool) -> Result<(bool, usize)> {
    ctx.authorize(Action::ManageSettings)?;
    if enabled && !configured(state) {
        return Err(not_configured());
    }
    let audit = ctx.audit.clone();
    run(state, move |c| {
        Ok(settings::set_recoverable_keys(c, &audit, enabled)?)
    })
    .await
}

/// The operator keys a new recoverable key is sealed with, once the
/// workspace allows recoverable keys; `None` for a key that is not asked
/// to be recoverable.
pub fn sealer(
    state: &AppState,
    workspace: &Workspace,
    recoverable: bool,
) -> Result<Option<OperatorKeys>> {
    if !recoverable {
        return Ok(None);
    }
    if workspace.recoverable_keys_at.is_none() {
        return Err(Error::invalid(
            "recoverable",
            "Recoverable keys are off for this workspace; an admin can turn them on in Settings.",
        ));
    }
    state
        .config
        .recovery_keys
        .clone()
        .map(Some)
        .ok_or_else(not_configured)
}

/// Check a person's password for showing secrets (pages): returns the
/// time to remember as their confirmation. Wrong passwords are throttled
/// per person, as on the change-password form.
pub async fn confirm_password(
    state: &AppState,
    ctx: &Ctx,
    password: String,
) -> Result<NaiveDateTime> {
    if ctx.via_key.is_some() {
        return Err(super::forbidden());
    }
    let person = ctx.user.person_id.clone();
    let attempt = state
        .password_confirm
        .reserve(&person, Instant::now())
        .map_err(|w| super::auth::throttled(w, "wrong passwords", "."))?;
    if super::auth::verify_password(password, ctx.user.password_hash.clone()).await? {
        state.password_confirm.refund(&person, attempt);
        Ok(crate::db::now())
    } else {
        Err(Error::invalid("password", "The password is not correct."))
    }
}

/// Whether a confirmation made at `confirmed_at` still counts.
pub fn is_fresh(confirmed_at: Option<NaiveDateTime>) -> bool {
    confirmed_at.is_some_and(|at| {
        let age = crate::db::now() - at;
        age >= TimeDelta::zero() && age <= CONFIRM_WITHIN
    })
}

/// Show a recoverable key's secret again. Through the pages `confirmed_at`
/// is when the person last confirmed their password (it must be within
/// [`CONFIRM_WITHIN`]); through the API the acting key must hold
/// `keyward:keys:reveal`. Rate-limited, audited as `key.secret_shown`.
pub async fn reveal(
    state: &AppState,
    ctx: &Ctx,
    id: &str,
    confirmed_at: Option<NaiveDateTime>,
) -> Result<(ApiKey, Secret)> {
    let key = uc::load(state, ctx, id, Act::Manage).await?;
    uc::refuse_revoked(&key)?;
    let (limit_key, via) = match &ctx.via_key {
        Some(acting) => {
            if !acting
                .permission_list()
                .iter()
                .any(|p| p == management::KEYS_REVEAL)
            {
                return Err(Error::Forbidden(format!(
                    "Showing a secret again needs a key with the {} permission.",
                    management::KEYS_REVEAL
                )));
            }
            (format!("key:{}", acting.id), "api")
        }
        None => {
            if !is_fresh(confirmed_at) {
                return Err(Error::Forbidden(
                    "Confirm your password to show this secret (a confirmation counts for 5 minutes).".into(),
                ));
            }
            (format!("person:{}", ctx.user.person_id), "page")
        }
    };
    if !key.recoverable {
        return Err(not_recoverable());
    }
    let operator = state
        .config
        .recovery_keys
        .clone()
        .ok_or_else(not_configured)?;
    let slot = state
        .secret_reveals
        .reserve(&limit_key, Instant::now())
        .map_err(|w| super::auth::throttled(w, "secrets shown", "."))?;
    let audit = ctx.audit.clone();
    let k = key.clone();
    let shown = run(state, move |c| {
        crate::db::write_transaction::<_, Error, _>(c, |c| {
            // Read again in the writing transaction: a key revoked (its
            // secret destroyed) meanwhile shows nothing.
            let now = keys::get(c, &audit.workspace_id, &k.id)?.ok_or(Error::NotFound)?;
            uc::refuse_revoked(&now)?;
            let sealed = secrets::get(c, &audit.workspace_id, &k.id)?.ok_or_else(not_recoverable)?;
            let secret = operator
                .open(&audit.workspace_id, &k.id, &sealed)
                .map_err(|e| {
                    tracing::error!(key = %k.id, error = %e, "a recoverable key's secret could not be opened");
                    Error::conflict(
                        "RECOVERY_FAILED",
                        format!("The secret cannot be shown: {e}. Ask the operator to check KEYWARD_RECOVERY_KEYS_FILE."),
                    )
                })?;
            events::record(
                c,
                &audit,
                "key.secret_shown",
                keys::target_of(&now),
                json!({ "excerpt": now.excerpt(), "via": via }),
            )?;
            Ok((now, Secret::recovered(secret)))
        })
    })
    .await;
    if shown.is_err() {
        state.secret_reveals.refund(&limit_key, slot);
    }
    shown
}

fn not_recoverable() -> Error {
    Error::conflict(
        "KEY_NOT_RECOVERABLE",
        "This key is not recoverable: its secret was shown once, when it was made, and is not stored.",
    )
}
