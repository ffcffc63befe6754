//! The append-only audit trail.

use super::DbConn;
use super::schema::events;
use chrono::NaiveDateTime;
use diesel::prelude::*;

/// Who did something and from where; attached to every event.
#[derive(Debug, Clone, Default)]
pub struct AuditContext {
    pub workspace_id: String,
    pub actor_id: Option<String>,
    /// The actor's email (or "system") at the time, kept even if the user is
    /// later removed.
    pub actor_label: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl AuditContext {
    /// keyward itself, acting in `workspace_id` (the expiry scan, the
    /// webhook worker): no person, address or client.
    pub fn system(workspace_id: &str) -> Self {
        AuditContext {
            workspace_id: workspace_id.to_owned(),
            actor_label: "system".into(),
            ..AuditContext::default()
        }
    }
}

/// What happened to what.
#[derive(Debug, Clone, Default)]
pub struct EventTarget<'a> {
    pub target_type: Option<&'a str>,
    pub target_id: Option<&'a str>,
    pub target_label: Option<&'a str>,
}

impl<'a> EventTarget<'a> {
    pub fn user(id: &'a str, email: &'a str) -> Self {
        EventTarget {
            target_type: Some("user"),
            target_id: Some(id),
            target_label: Some(email),
        }
    }

    pub fn service_account(id: &'a str, name: &'a str) -> Self {
        EventTarget {
            target_type: Some("service_account"),
            target_id: Some(id),
            target_label: Some(name),
        }
    }

    pub fn workspace(id: &'a str, name: &'a str) -> Self {
        EventTarget {
            target_type: Some("workspace"),
            target_id: Some(id),
            target_label: Some(name),
        }
    }
}

/// One row of the audit trail.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = events)]
pub struct Event {
    /// The private order of all events, across workspaces: pages are cut by
    /// it, but it is never shown, since its gaps would tell one workspace
    /// how busy the others are.
    pub seq: i64,
    /// The public id, `evt_…`: random, reveals nothing.
    pub id: String,
    pub workspace_id: String,
    pub actor_id: Option<String>,
    pub actor_label: String,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub target_label: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub details: String,
    pub created_at: NaiveDateTime,
}

impl Event {
    /// The recorded details as JSON, times in the form of the event's own
    /// (events written before that rule had zone-less times).
    pub fn details_json(&self) -> serde_json::Value {
        let mut details = serde_json::from_str(&self.details)
            .unwrap_or_else(|_| serde_json::Value::Object(Default::default()));
        crate::domain::audit::utc_times(&mut details);
        details
    }
}

/// Append an event. `details` is a JSON object with action-specific facts;
/// it must never contain a secret.
pub fn record(
    conn: &mut DbConn,
    ctx: &AuditContext,
    action: &str,
    target: EventTarget<'_>,
    mut details: serde_json::Value,
) -> QueryResult<()> {
    crate::domain::audit::utc_times(&mut details);
    let id = crate::domain::ids::new_id("evt");
    let created_at = super::now();
    diesel::insert_into(events::table)
        .values((
            events::id.eq(&id),
            events::workspace_id.eq(&ctx.workspace_id),
            events::actor_id.eq(ctx.actor_id.as_deref()),
            events::actor_label.eq(&ctx.actor_label),
            events::action.eq(action),
            events::target_type.eq(target.target_type),
            events::target_id.eq(target.target_id),
            events::target_label.eq(target.target_label),
            events::ip.eq(ctx.ip.as_deref()),
            events::user_agent.eq(ctx.user_agent.as_deref()),
            events::details.eq(details.to_string()),
            events::created_at.eq(created_at),
        ))
        .execute(conn)?;
    // The webhook deliveries of this event, in its transaction.
    let payload = super::webhooks::payload(&id, ctx, action, &target, &details, created_at);
    let skip = (action == "webhook.failing")
        .then_some(target.target_id)
        .flatten();
    super::webhooks::enqueue(
        conn,
        &ctx.workspace_id,
        &id,
        action,
        &payload.to_string(),
        skip,
    )?;
    Ok(())
}

/// What the events page filters by; every part optional.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Exact action, e.g. `key.revoked`.
    pub action: Option<String>,
    /// Part of the actor's email (case-insensitive).
    pub actor: Option<String>,
    /// Exact target id: a key id (or user id) from an incident report.
    pub target: Option<String>,
}

/// Where the event with public id `id` stands in the order of events
/// (its `seq`), if the workspace has it: the position a page cursor (an
/// event id) stands for. Keyset paging by `seq` stays exact while events
/// are added: new ones only ever come after.
pub fn position(conn: &mut DbConn, workspace_id: &str, id: &str) -> QueryResult<Option<i64>> {
    events::table
        .filter(events::workspace_id.eq(workspace_id))
        .filter(events::id.eq(id))
        .select(events::seq)
        .first(conn)
        .optional()
}

/// Events of a workspace matching `filter`, newest first, before the
/// position `before` (a [`position`], an event's `seq`) when given.
pub fn search(
    conn: &mut DbConn,
    workspace_id: &str,
    filter: &Filter,
    before: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<Event>> {
    let mut query = events::table
        .filter(events::workspace_id.eq(workspace_id))
        .select(Event::as_select())
        .order(events::seq.desc())
        .limit(limit)
        .into_boxed();
    if let Some(action) = &filter.action {
        query = query.filter(events::action.eq(action.clone()));
    }
    if let Some(actor) = &filter.actor {
        let pattern = format!("%{}%", super::escape_like(&actor.to_lowercase()));
        query = query.filter(events::actor_label.like(pattern).escape('\\'));
    }
    if let Some(target) = &filter.target {
        query = query.filter(events::target_id.eq(target.clone()));
    }
    if let Some(before) = before {
        query = query.filter(events::seq.lt(before));
    }
    query.load(conn)
}

/// One page of [`search`], older than the event `before` (its public id:
/// the page cursor) when given; `None` when the workspace has no such
/// event, so a made-up or foreign cursor is refused rather than read as
/// "from the start".
pub fn page_before(
    conn: &mut DbConn,
    workspace_id: &str,
    filter: &Filter,
    before: Option<&str>,
    limit: i64,
) -> QueryResult<Option<Vec<Event>>> {
    let before = match before {
        None => None,
        Some(id) => match position(conn, workspace_id, id)? {
            Some(seq) => Some(seq),
            None => return Ok(None),
        },
    };
    search(conn, workspace_id, filter, before, limit).map(Some)
}

/// The history of one target (a key), oldest first.
pub fn for_target(
    conn: &mut DbConn,
    workspace_id: &str,
    target_id: &str,
) -> QueryResult<Vec<Event>> {
    events::table
        .filter(events::workspace_id.eq(workspace_id))
        .filter(events::target_id.eq(target_id))
        .select(Event::as_select())
        .order(events::seq.asc())
        .limit(500)
        .load(conn)
}
