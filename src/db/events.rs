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
    pub id: i64,
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

/// Append an event. `details` is a JSON object with action-specific facts;
/// it must never contain a secret.
pub fn record(
    conn: &mut DbConn,
    ctx: &AuditContext,
    action: &str,
    target: EventTarget<'_>,
    details: serde_json::Value,
) -> QueryResult<()> {
    diesel::insert_into(events::table)
        .values((
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
            events::created_at.eq(super::now()),
        ))
        .execute(conn)?;
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

/// Events of a workspace matching `filter`, newest first, before the
/// cursor `before` (an event id) when given.
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
        .order(events::id.desc())
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
        query = query.filter(events::id.lt(before));
    }
    query.load(conn)
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
        .order(events::id.asc())
        .limit(500)
        .load(conn)
}
