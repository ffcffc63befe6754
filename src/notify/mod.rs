//! Notifications: the worker that delivers the outbox.
//!
//! Every instance runs one worker. It claims due deliveries (see
//! `db::webhooks` for why a claim is won by one instance only), posts each
//! signed message with timeouts (connect and total) and without following
//! redirects to an address the [`guard`] checked, logs the attempt, and
//! settles the row: delivered, due again after the backoff of
//! `domain::webhooks::RETRY_AFTER_SECS`, or — after about a day — given
//! up, with the endpoint marked failing and a `webhook.failing` event (the
//! Webhooks page shows it to admins). Nothing here runs inside a request,
//! so a slow or hanging receiver never delays one.

pub mod guard;
pub mod mail;

use crate::db::events::{AuditContext, EventTarget};
use crate::db::webhooks::{self, Delivery, Outcome};
use crate::domain::webhooks as hooks;
use crate::state::AppState;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long connecting to a receiver may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a whole delivery (connect, send, answer) may take.
pub const TOTAL_TIMEOUT: Duration = Duration::from_secs(15);
/// How often the worker looks for due deliveries.
pub const POLL_EVERY: Duration = Duration::from_secs(1);
/// How much of an answer the delivery log keeps.
pub const HEAD_BYTES: usize = 256;
/// Deliveries claimed at once.
const BATCH: i64 = 16;

/// The HTTP client of deliveries: no redirects, no proxies from the
/// environment (they would bypass the address check), timeouts, and the
/// guarded resolver.
pub fn client(allow_private: bool) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(TOTAL_TIMEOUT)
        .user_agent(concat!("keyward-webhooks/", env!("CARGO_PKG_VERSION")))
        .dns_resolver(Arc::new(guard::GuardedResolver { allow_private }))
        .build()
}

/// Start the worker on the current runtime; it runs until the runtime
/// stops.
pub fn spawn(state: Arc<AppState>) {
    mail::spawn(state.clone());
    let allow = state.config.webhook_allow_private;
    let client = match client(allow) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "webhooks: the HTTP client could not be built; nothing will be delivered");
            return;
        }
    };
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(POLL_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let claimed = blocking(&state, |c| webhooks::claim_due(c, BATCH)).await;
            let claimed = match claimed {
                Ok(c) => c,
                Err(e) => {
                    tracing::debug!(error = %e, "webhooks: could not claim deliveries");
                    continue;
                }
            };
            let sends = claimed.into_iter().map(|d| deliver(&state, &client, d));
            futures_util::future::join_all(sends).await;
        }
    });
}

/// Database work off the runtime.
async fn blocking<T: Send + 'static>(
    state: &Arc<AppState>,
    f: impl FnOnce(&mut crate::db::DbConn) -> diesel::QueryResult<T> + Send + 'static,
) -> Result<T, String> {
    let pool = state.pool.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = pool.get().map_err(|e| e.to_string())?;
        f(&mut conn).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())?
}

/// The first bytes of an answer's body, as text.
async fn head(mut res: reqwest::Response) -> String {
    let mut bytes: Vec<u8> = Vec::new();
    while bytes.len() < HEAD_BYTES {
        match res.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    bytes.truncate(HEAD_BYTES);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The signing secrets in force for an endpoint: the current one and,
/// while it lasts, the one it was rolled from.
fn secrets(state: &AppState, e: &webhooks::Endpoint, now: chrono::NaiveDateTime) -> Vec<String> {
    let server = &state.config.secret;
    let mut out: Vec<String> = hooks::unseal(server, &e.secret).into_iter().collect();
    if let (Some(prev), Some(until)) = (&e.previous_secret, e.previous_expires_at)
        && until > now
        && let Some(p) = hooks::unseal(server, prev)
    {
        out.push(p);
    }
    out
}

/// One attempt at one delivery, settled in the database.
async fn deliver(state: &Arc<AppState>, client: &reqwest::Client, d: Delivery) {
    let id = d.endpoint_id.clone();
    let endpoint = match blocking(state, move |c| webhooks::endpoint_by_id(c, &id)).await {
        Ok(Some(e)) => e,
        // Deleted meanwhile (its deliveries go with it), or no database.
        _ => return,
    };
    let attempted_at = crate::db::now();
    let started = Instant::now();
    let result = send(state, client, &endpoint, &d, attempted_at).await;
    let latency_ms = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
    let (status, response_head) = match result {
        Ok((status, head)) => (Some(i32::from(status)), head),
        Err(why) => (None, why),
    };
    let delivered = status.is_some_and(|s| (200..300).contains(&s));
    let retry_at = if delivered {
        None
    } else {
        hooks::retry_after(d.attempts + 1).map(|wait| crate::db::now() + wait)
    };
    let given_up = !delivered && retry_at.is_none();
    if !delivered {
        tracing::info!(endpoint = %endpoint.id, delivery = %d.id, attempt = d.attempts + 1, status = ?status, given_up, "webhooks: delivery failed");
    }
    let st = state.clone();
    let settle = move |c: &mut crate::db::DbConn| {
        crate::db::write_transaction(c, |c| {
            let outcome = Outcome {
                attempted_at,
                status,
                latency_ms,
                response_head: &response_head,
                delivered,
                retry_at,
            };
            webhooks::finish(c, &d, &outcome)?;
            if delivered {
                webhooks::set_failing(c, &d.endpoint_id, None)?;
            } else if given_up && webhooks::set_failing(c, &d.endpoint_id, Some(crate::db::now()))?
            {
                let ctx = AuditContext::system(&d.workspace_id);
                crate::db::events::record(
                    c,
                    &ctx,
                    "webhook.failing",
                    EventTarget {
                        target_type: Some("webhook"),
                        target_id: Some(&d.endpoint_id),
                        target_label: Some(&endpoint.url),
                    },
                    serde_json::json!({
                        "attempts": d.attempts + 1,
                        "last_status": status,
                        "event_type": d.event_type,
                    }),
                )?;
                let workspace = crate::db::workspaces::get(c, &d.workspace_id)?;
                let admins = mail::admin_emails(c, &d.workspace_id)?;
                let page = format!("{}/workspace/webhooks/{}", st.base_url, d.endpoint_id);
                mail::queue(
                    &st,
                    c,
                    &d.workspace_id,
                    &admins,
                    &mail::webhook_failing(&workspace.name, &endpoint.url, &page),
                )?;
            }
            Ok(())
        })
    };
    if let Err(e) = blocking(state, settle).await {
        // The claim lapses and the delivery is tried again.
        tracing::warn!(error = %e, "webhooks: could not record a delivery attempt");
    }
}

/// Post one message; the answer's status and first bytes, or why there
/// was no answer.
async fn send(
    state: &Arc<AppState>,
    client: &reqwest::Client,
    endpoint: &webhooks::Endpoint,
    d: &Delivery,
    now: chrono::NaiveDateTime,
) -> Result<(u16, String), String> {
    let allow = state.config.webhook_allow_private;
    // A literal address never reaches the resolver: check it here.
    guard::check_url(&endpoint.url, allow)
        .await
        .map_err(|e| format!("refused: {e}"))?;
    let secrets = secrets(state, endpoint, now);
    if secrets.is_empty() {
        return Err(
            "not sent: the signing secret cannot be read (was KEYWARD_SECRET changed?); roll the secret"
                .into(),
        );
    }
    let timestamp = chrono::Utc::now().timestamp();
    let signature = hooks::signature_header(&secrets, &d.id, timestamp, &d.payload);
    let res = client
        .post(&endpoint.url)
        .header("content-type", "application/json")
        .header("webhook-id", &d.id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(d.payload.clone())
        .send()
        .await
        .map_err(|e| describe(&e))?;
    let status = res.status().as_u16();
    Ok((status, head(res).await))
}

/// A failed request in words (the whole chain of causes).
fn describe(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "could not connect".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text.chars().take(500).collect()
}
