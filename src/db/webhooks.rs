//! Webhook endpoints, the outbox of deliveries and the delivery log.
//!
//! Outbox rows are written by [`enqueue`], which `events::record` calls in
//! the transaction of the event itself: an event that is committed has its
//! deliveries committed with it, and one rolled back has none.
//!
//! Claims work alike on both backends: a conditional `UPDATE … WHERE
//! claimed_until IS NULL OR claimed_until < now` that only one instance can
//! win (PostgreSQL re-checks the condition on the row it waited for), so
//! with several instances on one PostgreSQL each delivery is attempted by
//! one of them at a time; a claim lapses after [`CLAIM_FOR`], so a crashed
//! instance's rows are delivered by another (at least once).

use super::DbConn;
use super::schema::{outbox, webhook_attempts, webhook_endpoints};
use chrono::{NaiveDateTime, TimeDelta};
use diesel::prelude::*;

/// How long a claimed delivery is held by the instance working on it:
/// longer than a delivery's total timeout.
pub const CLAIM_FOR: TimeDelta = TimeDelta::seconds(60);

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = webhook_endpoints)]
pub struct Endpoint {
    pub id: String,
    pub workspace_id: String,
    pub url: String,
    pub description: String,
    pub event_types: String,
    /// Sealed (see `notify::sign::seal`).
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_expires_at: Option<NaiveDateTime>,
    pub failing_since: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl Endpoint {
    /// The event types, as listed.
    pub fn types(&self) -> Vec<String> {
        split_types(&self.event_types)
    }

    /// Whether this endpoint wants events of type `action`.
    pub fn wants(&self, action: &str) -> bool {
        subscribed(&self.event_types, action)
    }
}

/// A stored list of event types as a list.
pub fn split_types(stored: &str) -> Vec<String> {
    stored
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Whether a stored list of event types (`*`, `key.*`, `key.revoked`)
/// takes `action`.
pub fn subscribed(stored: &str, action: &str) -> bool {
    split_types(stored).iter().any(|t| {
        t == "*"
            || t == action
            || t.strip_suffix(".*")
                .is_some_and(|p| action.strip_prefix(p).is_some_and(|r| r.starts_with('.')))
    })
}

/// A new endpoint's row.
pub struct NewEndpoint<'a> {
    pub id: &'a str,
    pub workspace_id: &'a str,
    pub url: &'a str,
    pub description: &'a str,
    pub event_types: &'a str,
    pub sealed_secret: &'a str,
}

pub fn insert(conn: &mut DbConn, e: &NewEndpoint<'_>) -> QueryResult<()> {
    let now = super::now();
    diesel::insert_into(webhook_endpoints::table)
        .values((
            webhook_endpoints::id.eq(e.id),
            webhook_endpoints::workspace_id.eq(e.workspace_id),
            webhook_endpoints::url.eq(e.url),
            webhook_endpoints::description.eq(e.description),
            webhook_endpoints::event_types.eq(e.event_types),
            webhook_endpoints::secret.eq(e.sealed_secret),
            webhook_endpoints::created_at.eq(now),
            webhook_endpoints::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn list(conn: &mut DbConn, workspace_id: &str) -> QueryResult<Vec<Endpoint>> {
    webhook_endpoints::table
        .filter(webhook_endpoints::workspace_id.eq(workspace_id))
        .select(Endpoint::as_select())
        .order((
            webhook_endpoints::created_at.asc(),
            webhook_endpoints::id.asc(),
        ))
        .load(conn)
}

pub fn get(conn: &mut DbConn, workspace_id: &str, id: &str) -> QueryResult<Option<Endpoint>> {
    webhook_endpoints::table
        .filter(webhook_endpoints::workspace_id.eq(workspace_id))
        .filter(webhook_endpoints::id.eq(id))
        .select(Endpoint::as_select())
        .first(conn)
        .optional()
}

/// Change an endpoint's address, description and event types.
pub fn update(
    conn: &mut DbConn,
    workspace_id: &str,
    id: &str,
    url: &str,
    description: &str,
    event_types: &str,
) -> QueryResult<usize> {
    diesel::update(
        webhook_endpoints::table
            .filter(webhook_endpoints::workspace_id.eq(workspace_id))
            .filter(webhook_endpoints::id.eq(id)),
    )
    .set((
        webhook_endpoints::url.eq(url),
        webhook_endpoints::description.eq(description),
        webhook_endpoints::event_types.eq(event_types),
        webhook_endpoints::updated_at.eq(super::now()),
    ))
    .execute(conn)
}

/// Replace the secret; the old one keeps signing until `previous_until`.
pub fn roll(
    conn: &mut DbConn,
    workspace_id: &str,
    id: &str,
    sealed_new: &str,
    sealed_old: &str,
    previous_until: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        webhook_endpoints::table
            .filter(webhook_endpoints::workspace_id.eq(workspace_id))
            .filter(webhook_endpoints::id.eq(id)),
    )
    .set((
        webhook_endpoints::secret.eq(sealed_new),
        webhook_endpoints::previous_secret.eq(Some(sealed_old)),
        webhook_endpoints::previous_expires_at.eq(Some(previous_until)),
        webhook_endpoints::updated_at.eq(super::now()),
    ))
    .execute(conn)
}

/// Delete an endpoint with its pending deliveries and its log.
pub fn delete(conn: &mut DbConn, workspace_id: &str, id: &str) -> QueryResult<usize> {
    diesel::delete(
        webhook_attempts::table
            .filter(webhook_attempts::workspace_id.eq(workspace_id))
            .filter(webhook_attempts::endpoint_id.eq(id)),
    )
    .execute(conn)?;
    diesel::delete(
        outbox::table
            .filter(outbox::workspace_id.eq(workspace_id))
            .filter(outbox::endpoint_id.eq(id)),
    )
    .execute(conn)?;
    diesel::delete(
        webhook_endpoints::table
            .filter(webhook_endpoints::workspace_id.eq(workspace_id))
            .filter(webhook_endpoints::id.eq(id)),
    )
    .execute(conn)
}

/// Mark an endpoint failing (from now) or, with `None`, working again.
/// Returns whether the state changed.
pub fn set_failing(conn: &mut DbConn, id: &str, since: Option<NaiveDateTime>) -> QueryResult<bool> {
    let target = webhook_endpoints::table.filter(webhook_endpoints::id.eq(id));
    let n = match since {
        Some(t) => diesel::update(target.filter(webhook_endpoints::failing_since.is_null()))
            .set(webhook_endpoints::failing_since.eq(Some(t)))
            .execute(conn)?,
        None => diesel::update(target.filter(webhook_endpoints::failing_since.is_not_null()))
            .set(webhook_endpoints::failing_since.eq(None::<NaiveDateTime>))
            .execute(conn)?,
    };
    Ok(n == 1)
}

/// One delivery in the outbox.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = outbox)]
pub struct Delivery {
    pub id: String,
    pub workspace_id: String,
    pub endpoint_id: String,
    pub event_id: String,
    pub event_type: String,
    pub payload: String,
    pub created_at: NaiveDateTime,
    pub next_attempt_at: NaiveDateTime,
    pub claimed_until: Option<NaiveDateTime>,
    pub attempts: i32,
    pub done_at: Option<NaiveDateTime>,
    pub outcome: Option<String>,
}

/// Queue `payload` (the message body, JSON) for every endpoint of the
/// workspace that wants events of type `action`; `skip` is an endpoint not
/// to send it to (an event about that endpoint's own failure). Part of the
/// caller's transaction.
pub fn enqueue(
    conn: &mut DbConn,
    workspace_id: &str,
    event_id: &str,
    action: &str,
    payload: &str,
    skip: Option<&str>,
) -> QueryResult<usize> {
    let endpoints: Vec<(String, String)> = webhook_endpoints::table
        .filter(webhook_endpoints::workspace_id.eq(workspace_id))
        .select((webhook_endpoints::id, webhook_endpoints::event_types))
        .load(conn)?;
    let mut queued = 0;
    for (id, types) in &endpoints {
        if subscribed(types, action) && Some(id.as_str()) != skip {
            enqueue_one(conn, workspace_id, id, event_id, action, payload)?;
            queued += 1;
        }
    }
    Ok(queued)
}

/// Queue one message for one endpoint, due now (a test event, a resend).
pub fn enqueue_one(
    conn: &mut DbConn,
    workspace_id: &str,
    endpoint_id: &str,
    event_id: &str,
    event_type: &str,
    payload: &str,
) -> QueryResult<String> {
    let id = crate::domain::ids::new_id("msg");
    let now = super::now();
    diesel::insert_into(outbox::table)
        .values((
            outbox::id.eq(&id),
            outbox::workspace_id.eq(workspace_id),
            outbox::endpoint_id.eq(endpoint_id),
            outbox::event_id.eq(event_id),
            outbox::event_type.eq(event_type),
            outbox::payload.eq(payload),
            outbox::created_at.eq(now),
            outbox::next_attempt_at.eq(now),
            outbox::attempts.eq(0),
        ))
        .execute(conn)?;
    Ok(id)
}

/// Claim up to `limit` due deliveries for this instance until
/// `now + CLAIM_FOR`: each row is claimed by one conditional update, which
/// only one instance can win.
pub fn claim_due(conn: &mut DbConn, limit: i64) -> QueryResult<Vec<Delivery>> {
    let now = super::now();
    let candidates: Vec<String> = outbox::table
        .filter(outbox::done_at.is_null())
        .filter(outbox::next_attempt_at.le(now))
        .filter(
            outbox::claimed_until
                .is_null()
                .or(outbox::claimed_until.lt(now)),
        )
        .order(outbox::next_attempt_at.asc())
        .select(outbox::id)
        .limit(limit)
        .load(conn)?;
    let until = now + CLAIM_FOR;
    let mut claimed = Vec::new();
    for id in candidates {
        let won = diesel::update(
            outbox::table
                .filter(outbox::id.eq(&id))
                .filter(outbox::done_at.is_null())
                .filter(
                    outbox::claimed_until
                        .is_null()
                        .or(outbox::claimed_until.lt(now)),
                ),
        )
        .set(outbox::claimed_until.eq(Some(until)))
        .execute(conn)?;
        if won == 1
            && let Some(d) = outbox::table
                .filter(outbox::id.eq(&id))
                .select(Delivery::as_select())
                .first(conn)
                .optional()?
        {
            claimed.push(d);
        }
    }
    Ok(claimed)
}

/// The endpoint of a delivery, whatever its workspace (the worker's view).
pub fn endpoint_by_id(conn: &mut DbConn, id: &str) -> QueryResult<Option<Endpoint>> {
    webhook_endpoints::table
        .filter(webhook_endpoints::id.eq(id))
        .select(Endpoint::as_select())
        .first(conn)
        .optional()
}

/// One line of the delivery log.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = webhook_attempts)]
pub struct Attempt {
    pub id: String,
    pub workspace_id: String,
    pub endpoint_id: String,
    pub outbox_id: String,
    pub event_type: String,
    pub attempt: i32,
    pub attempted_at: NaiveDateTime,
    pub status: Option<i32>,
    pub latency_ms: i32,
    pub response_head: String,
}

/// What one attempt came to.
pub struct Outcome<'a> {
    pub attempted_at: NaiveDateTime,
    pub status: Option<i32>,
    pub latency_ms: i32,
    pub response_head: &'a str,
    /// Delivered (a 2xx answer).
    pub delivered: bool,
    /// When to try again; `None`: give up (marked failed).
    pub retry_at: Option<NaiveDateTime>,
}

/// Log an attempt and settle its delivery: done (delivered or given up)
/// or due again at `retry_at`, unclaimed. Only the claim's holder writes
/// (the row must still be claimed).
pub fn finish(conn: &mut DbConn, d: &Delivery, o: &Outcome<'_>) -> QueryResult<()> {
    super::write_transaction(conn, |conn| {
        diesel::insert_into(webhook_attempts::table)
            .values((
                webhook_attempts::id.eq(crate::domain::ids::new_id("att")),
                webhook_attempts::workspace_id.eq(&d.workspace_id),
                webhook_attempts::endpoint_id.eq(&d.endpoint_id),
                webhook_attempts::outbox_id.eq(&d.id),
                webhook_attempts::event_type.eq(&d.event_type),
                webhook_attempts::attempt.eq(d.attempts + 1),
                webhook_attempts::attempted_at.eq(o.attempted_at),
                webhook_attempts::status.eq(o.status),
                webhook_attempts::latency_ms.eq(o.latency_ms),
                webhook_attempts::response_head.eq(o.response_head),
            ))
            .execute(conn)?;
        let row = outbox::table.filter(outbox::id.eq(&d.id));
        if o.delivered || o.retry_at.is_none() {
            diesel::update(row)
                .set((
                    outbox::attempts.eq(d.attempts + 1),
                    outbox::done_at.eq(Some(super::now())),
                    outbox::outcome.eq(Some(if o.delivered { "delivered" } else { "failed" })),
                    outbox::claimed_until.eq(None::<NaiveDateTime>),
                ))
                .execute(conn)?;
        } else if let Some(at) = o.retry_at {
            diesel::update(row)
                .set((
                    outbox::attempts.eq(d.attempts + 1),
                    outbox::next_attempt_at.eq(at),
                    outbox::claimed_until.eq(None::<NaiveDateTime>),
                ))
                .execute(conn)?;
        }
        Ok(())
    })
}

/// An endpoint's delivery log, newest first.
pub fn attempts(
    conn: &mut DbConn,
    workspace_id: &str,
    endpoint_id: &str,
    limit: i64,
) -> QueryResult<Vec<Attempt>> {
    webhook_attempts::table
        .filter(webhook_attempts::workspace_id.eq(workspace_id))
        .filter(webhook_attempts::endpoint_id.eq(endpoint_id))
        .select(Attempt::as_select())
        .order((
            webhook_attempts::attempted_at.desc(),
            webhook_attempts::attempt.desc(),
        ))
        .limit(limit)
        .load(conn)
}

/// An endpoint's most recent deliveries (for "resend"), newest first.
pub fn deliveries(
    conn: &mut DbConn,
    workspace_id: &str,
    endpoint_id: &str,
    limit: i64,
) -> QueryResult<Vec<Delivery>> {
    outbox::table
        .filter(outbox::workspace_id.eq(workspace_id))
        .filter(outbox::endpoint_id.eq(endpoint_id))
        .select(Delivery::as_select())
        .order((outbox::created_at.desc(), outbox::id.desc()))
        .limit(limit)
        .load(conn)
}

/// One delivery of an endpoint.
pub fn delivery(
    conn: &mut DbConn,
    workspace_id: &str,
    endpoint_id: &str,
    id: &str,
) -> QueryResult<Option<Delivery>> {
    outbox::table
        .filter(outbox::workspace_id.eq(workspace_id))
        .filter(outbox::endpoint_id.eq(endpoint_id))
        .filter(outbox::id.eq(id))
        .select(Delivery::as_select())
        .first(conn)
        .optional()
}

/// The body of an event's webhook message (Standard Webhooks' shape:
/// `type`, `timestamp`, `data`): ids, names, the actor and the recorded
/// change — the event's details, which never hold a secret.
pub fn payload(
    event_id: &str,
    ctx: &super::events::AuditContext,
    action: &str,
    target: &super::events::EventTarget<'_>,
    details: &serde_json::Value,
    created_at: NaiveDateTime,
) -> serde_json::Value {
    serde_json::json!({
        "type": action,
        "timestamp": crate::domain::time::rfc3339(created_at),
        "data": {
            "event_id": event_id,
            "workspace_id": ctx.workspace_id,
            "actor": { "id": ctx.actor_id, "label": ctx.actor_label },
            "target": {
                "type": target.target_type,
                "id": target.target_id,
                "label": target.target_label,
            },
            "details": details,
        }
    })
}
