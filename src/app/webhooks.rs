//! Webhook endpoints: the use cases of the Webhooks settings page and of
//! `/api/v1/webhooks…`. Admins only (the policy's `ManageSettings`); every
//! change is an audit event; the signing secret is returned only by
//! [`create`] and [`roll`], the one time it is shown.

use super::{Ctx, Error, Result, run};
use crate::db::events::{self, EventTarget};
use crate::db::webhooks::{self as db, Attempt, Delivery, Endpoint};
use crate::domain::audit::ACTIONS;
use crate::domain::policy::Action;
use crate::domain::webhooks as hooks;
use crate::state::AppState;

/// What an admin sends to add or edit an endpoint.
#[derive(Debug, Clone, Default)]
pub struct Input {
    pub url: String,
    pub description: String,
    /// `*`, `key.*`, or event types; one an entry or comma-separated.
    pub event_types: Vec<String>,
}

/// Every event type an endpoint may subscribe to, for the forms: the
/// audit trail's actions (the expiry scan and leak reports record theirs
/// there too).
pub fn event_types() -> Vec<&'static str> {
    ACTIONS.to_vec()
}

/// Checked input: (url, description, stored event types).
async fn check(state: &AppState, input: &Input) -> Result<(String, String, String)> {
    let mut errors = Vec::new();
    let url = match hooks::parse_url(&input.url) {
        Ok(u) => {
            match crate::notify::guard::check_url(&u, state.config.webhook_allow_private).await {
                Ok(()) => Some(u),
                Err(e) => {
                    errors.push(crate::domain::input::FieldError::new(
                        "url",
                        format!("keyward will not send to this address: {e}."),
                    ));
                    None
                }
            }
        }
        Err(e) => {
            errors.push(crate::domain::input::FieldError::new("url", e));
            None
        }
    };
    // The rule every description follows (keys, plans, service accounts):
    // it also refuses text-direction and invisible characters, which could
    // make the endpoints page show something other than what is stored.
    let description = super::keys::keep(
        crate::domain::keys::parse_description(&input.description),
        &mut errors,
    );
    let types = match hooks::parse_types(&input.event_types, &ACTIONS) {
        Ok(t) => Some(t),
        Err(e) => {
            errors.push(crate::domain::input::FieldError::new("event_types", e));
            None
        }
    };
    match (url, description, types) {
        (Some(u), Some(d), Some(t)) if errors.is_empty() => Ok((u, d, t)),
        _ => Err(Error::Invalid(errors)),
    }
}

/// The workspace's endpoints.
pub async fn list(state: &AppState, ctx: &Ctx) -> Result<Vec<Endpoint>> {
    ctx.authorize(Action::ManageSettings)?;
    let ws = ctx.workspace_id().to_owned();
    run(state, move |c| Ok(db::list(c, &ws)?)).await
}

/// One endpoint.
pub async fn get(state: &AppState, ctx: &Ctx, id: &str) -> Result<Endpoint> {
    ctx.authorize(Action::ManageSettings)?;
    let ws = ctx.workspace_id().to_owned();
    let id = id.to_owned();
    run(state, move |c| db::get(c, &ws, &id)?.ok_or(Error::NotFound)).await
}

fn target(e: &Endpoint) -> EventTarget<'_> {
    EventTarget {
        target_type: Some("webhook"),
        target_id: Some(&e.id),
        target_label: Some(&e.url),
    }
}

/// Add an endpoint; returns it and its signing secret (shown this once).
pub async fn create(state: &AppState, ctx: &Ctx, input: &Input) -> Result<(Endpoint, String)> {
    ctx.authorize(Action::ManageSettings)?;
    let (url, description, types) = check(state, input).await?;
    let secret = hooks::new_secret();
    let sealed = hooks::seal(&state.config.secret, &secret);
    let ws = ctx.workspace_id().to_owned();
    let audit = ctx.audit.clone();
    let endpoint = run(state, move |c| {
        crate::db::write_transaction(c, |c| {
            let id = crate::domain::ids::new_id("whk");
            db::insert(
                c,
                &db::NewEndpoint {
                    id: &id,
                    workspace_id: &ws,
                    url: &url,
                    description: &description,
                    event_types: &types,
                    sealed_secret: &sealed,
                },
            )?;
            let e = db::get(c, &ws, &id)?.ok_or(Error::NotFound)?;
            events::record(
                c,
                &audit,
                "webhook.created",
                target(&e),
                serde_json::json!({ "url": e.url, "event_types": e.types(), "description": e.description }),
            )?;
            Ok::<_, Error>(e)
        })
    })
    .await?;
    Ok((endpoint, secret))
}

/// Change an endpoint's address, description and event types.
pub async fn update(state: &AppState, ctx: &Ctx, id: &str, input: &Input) -> Result<Endpoint> {
    ctx.authorize(Action::ManageSettings)?;
    let (url, description, types) = check(state, input).await?;
    let ws = ctx.workspace_id().to_owned();
    let audit = ctx.audit.clone();
    let id = id.to_owned();
    run(state, move |c| {
        crate::db::write_transaction(c, |c| {
            let old = db::get(c, &ws, &id)?.ok_or(Error::NotFound)?;
            db::update(c, &ws, &id, &url, &description, &types)?;
            let new = db::get(c, &ws, &id)?.ok_or(Error::NotFound)?;
            events::record(
                c,
                &audit,
                "webhook.updated",
                target(&new),
                serde_json::json!({
                    "old": { "url": old.url, "event_types": old.types(), "description": old.description },
                    "new": { "url": new.url, "event_types": new.types(), "description": new.description },
                }),
            )?;
            Ok::<_, Error>(new)
        })
    })
    .await
}

/// Delete an endpoint, its pending deliveries and its log.
pub async fn delete(state: &AppState, ctx: &Ctx, id: &str) -> Result<()> {
    ctx.authorize(Action::ManageSettings)?;
    let ws = ctx.workspace_id().to_owned();
    let audit = ctx.audit.clone();
    let id = id.to_owned();
    run(state, move |c| {
        crate::db::write_transaction(c, |c| {
            let e = db::get(c, &ws, &id)?.ok_or(Error::NotFound)?;
            // Recorded first: the endpoint's own copy of this event goes
            // with its other deliveries.
            events::record(
                c,
                &audit,
                "webhook.deleted",
                target(&e),
                serde_json::json!({ "url": e.url }),
            )?;
            db::delete(c, &ws, &id)?;
            Ok::<_, Error>(())
        })
    })
    .await
}

/// Roll the signing secret: returns the new one (shown this once); the
/// old one keeps signing, beside it, for [`hooks::ROLL_OVERLAP`].
pub async fn roll(state: &AppState, ctx: &Ctx, id: &str) -> Result<(Endpoint, String)> {
    ctx.authorize(Action::ManageSettings)?;
    let secret = hooks::new_secret();
    let sealed = hooks::seal(&state.config.secret, &secret);
    let ws = ctx.workspace_id().to_owned();
    let audit = ctx.audit.clone();
    let id = id.to_owned();
    let until = crate::db::now() + hooks::ROLL_OVERLAP;
    let e = run(state, move |c| {
        crate::db::write_transaction(c, |c| {
            let e = db::get(c, &ws, &id)?.ok_or(Error::NotFound)?;
            db::roll(c, &ws, &id, &sealed, &e.secret, until)?;
            events::record(
                c,
                &audit,
                "webhook.secret_rolled",
                target(&e),
                serde_json::json!({ "previous_valid_until": until }),
            )?;
            db::get(c, &ws, &id)?.ok_or(Error::NotFound)
        })
    })
    .await?;
    Ok((e, secret))
}

/// An endpoint with its delivery log and its latest deliveries.
pub struct Log {
    pub endpoint: Endpoint,
    pub attempts: Vec<Attempt>,
    pub deliveries: Vec<Delivery>,
}

/// An endpoint's delivery log (newest first, the last 100 attempts) and
/// its latest 50 deliveries.
pub async fn log(state: &AppState, ctx: &Ctx, id: &str) -> Result<Log> {
    ctx.authorize(Action::ManageSettings)?;
    let ws = ctx.workspace_id().to_owned();
    let id = id.to_owned();
    run(state, move |c| {
        let endpoint = db::get(c, &ws, &id)?.ok_or(Error::NotFound)?;
        Ok(Log {
            attempts: db::attempts(c, &ws, &id, 100)?,
            deliveries: db::deliveries(c, &ws, &id, 50)?,
            endpoint,
        })
    })
    .await
}

/// Queue a `webhook.test` message to one endpoint; returns its message id.
pub async fn send_test(state: &AppState, ctx: &Ctx, id: &str) -> Result<String> {
    ctx.authorize(Action::ManageSettings)?;
    let ws = ctx.workspace_id().to_owned();
    let id = id.to_owned();
    let actor = (ctx.audit.actor_id.clone(), ctx.audit.actor_label.clone());
    run(state, move |c| {
        let e = db::get(c, &ws, &id)?.ok_or(Error::NotFound)?;
        let event_id = crate::domain::ids::new_id("tst");
        let payload = serde_json::json!({
            "type": hooks::TEST_TYPE,
            "timestamp": crate::domain::time::rfc3339(crate::db::now()),
            "data": {
                "event_id": event_id,
                "workspace_id": ws,
                "actor": { "id": actor.0, "label": actor.1 },
                "target": { "type": "webhook", "id": e.id, "label": e.url },
                "details": { "test": true },
            }
        });
        Ok(db::enqueue_one(
            c,
            &ws,
            &e.id,
            &event_id,
            hooks::TEST_TYPE,
            &payload.to_string(),
        )?)
    })
    .await
}

/// Queue one of an endpoint's deliveries again, as a new message with the
/// same body; returns its message id.
pub async fn resend(state: &AppState, ctx: &Ctx, id: &str, delivery: &str) -> Result<String> {
    ctx.authorize(Action::ManageSettings)?;
    let ws = ctx.workspace_id().to_owned();
    let id = id.to_owned();
    let delivery = delivery.to_owned();
    run(state, move |c| {
        let d = db::delivery(c, &ws, &id, &delivery)?.ok_or(Error::NotFound)?;
        Ok(db::enqueue_one(
            c,
            &ws,
            &id,
            &d.event_id,
            &d.event_type,
            &d.payload,
        )?)
    })
    .await
}
