//! Idempotency keys of the management API: what a create or regenerate
//! made, by acting key and `Idempotency-Key` header value, for 24 hours.

use super::DbConn;
use chrono::TimeDelta;
use diesel::prelude::*;

// Defined here rather than in schema.rs: nothing joins it.
diesel::table! {
    idempotency_keys (actor_key_id, idempotency_key) {
        actor_key_id -> Text,
        idempotency_key -> Text,
        workspace_id -> Text,
        operation -> Text,
        fingerprint -> Text,
        key_id -> Text,
        created_at -> Timestamp,
    }
}

/// How long a request can be retried with the same header value.
pub const WINDOW: TimeDelta = TimeDelta::hours(24);

/// What an earlier request with the same header value did.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = idempotency_keys)]
pub struct Recorded {
    pub operation: String,
    pub fingerprint: String,
    pub key_id: String,
}

/// The earlier request with this acting key and header value, if it was
/// made within [`WINDOW`].
pub fn find(
    conn: &mut DbConn,
    workspace_id: &str,
    actor_key_id: &str,
    idempotency_key: &str,
) -> QueryResult<Option<Recorded>> {
    idempotency_keys::table
        .filter(idempotency_keys::actor_key_id.eq(actor_key_id))
        .filter(idempotency_keys::idempotency_key.eq(idempotency_key))
        .filter(idempotency_keys::workspace_id.eq(workspace_id))
        .filter(idempotency_keys::created_at.gt(super::now() - WINDOW))
        .select(Recorded::as_select())
        .first(conn)
        .optional()
}

/// Remember what a request did; call inside the transaction that did it,
/// so a concurrent twin fails on the primary key and is rolled back.
/// Expired rows of the same value (and any older than the window) go first.
pub fn record(
    conn: &mut DbConn,
    workspace_id: &str,
    actor_key_id: &str,
    idempotency_key: &str,
    operation: &str,
    fingerprint: &str,
    key_id: &str,
) -> QueryResult<()> {
    let now = super::now();
    diesel::delete(idempotency_keys::table.filter(idempotency_keys::created_at.le(now - WINDOW)))
        .execute(conn)?;
    diesel::insert_into(idempotency_keys::table)
        .values((
            idempotency_keys::actor_key_id.eq(actor_key_id),
            idempotency_keys::idempotency_key.eq(idempotency_key),
            idempotency_keys::workspace_id.eq(workspace_id),
            idempotency_keys::operation.eq(operation),
            idempotency_keys::fingerprint.eq(fingerprint),
            idempotency_keys::key_id.eq(key_id),
            idempotency_keys::created_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// Whether an error is the primary-key clash of a concurrent twin request.
pub fn is_duplicate(e: &diesel::result::Error) -> bool {
    matches!(
        e,
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)
    )
}
