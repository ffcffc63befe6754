//! Hourly verification counts per key and outcome.

use super::DbConn;
use super::schema::{api_keys, key_usage};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamp};

/// One counter to add: key, workspace, hour, outcome, how many.
pub type Increment = (String, String, NaiveDateTime, String, i64);

/// Add counts, creating rows as needed. Both backends support the same
/// `ON CONFLICT … DO UPDATE`; only the placeholder syntax differs.
pub fn add(conn: &mut DbConn, batch: &[Increment]) -> QueryResult<()> {
    const PG: &str = "INSERT INTO key_usage (key_id, workspace_id, hour, outcome, count) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (key_id, hour, outcome) DO UPDATE SET count = key_usage.count + excluded.count";
    const LITE: &str = "INSERT INTO key_usage (key_id, workspace_id, hour, outcome, count) VALUES (?, ?, ?, ?, ?) \
         ON CONFLICT (key_id, hour, outcome) DO UPDATE SET count = key_usage.count + excluded.count";
    // A fixed order (key, hour, outcome) so that two instances adding to the
    // same rows lock them in the same order and never deadlock.
    let mut sorted: Vec<&Increment> = batch.iter().collect();
    sorted.sort_unstable_by(|a, b| (&a.0, a.2, &a.3).cmp(&(&b.0, b.2, &b.3)));
    super::write_transaction(conn, |conn| {
        for (key_id, ws, hour, outcome, n) in sorted {
            match conn {
                DbConn::Pg(pg) => diesel::sql_query(PG)
                    .bind::<Text, _>(key_id)
                    .bind::<Text, _>(ws)
                    .bind::<Timestamp, _>(hour)
                    .bind::<Text, _>(outcome)
                    .bind::<BigInt, _>(n)
                    .execute(pg)?,
                DbConn::Sqlite(lite) => diesel::sql_query(LITE)
                    .bind::<Text, _>(key_id)
                    .bind::<Text, _>(ws)
                    .bind::<Timestamp, _>(hour)
                    .bind::<Text, _>(outcome)
                    .bind::<BigInt, _>(n)
                    .execute(lite)?,
            };
        }
        Ok(())
    })
}

/// A count for one key, hour and outcome.
#[derive(Debug, Clone, Queryable)]
pub struct UsageRow {
    pub key_id: String,
    pub hour: NaiveDateTime,
    pub outcome: String,
    pub count: i64,
}

/// Counts since `since` for some keys of the workspace (all when `ids` is None).
pub fn since(
    conn: &mut DbConn,
    workspace_id: &str,
    ids: Option<&[String]>,
    since: NaiveDateTime,
) -> QueryResult<Vec<UsageRow>> {
    let mut q = key_usage::table
        .filter(key_usage::workspace_id.eq(workspace_id))
        .filter(key_usage::hour.ge(since))
        .select((
            key_usage::key_id,
            key_usage::hour,
            key_usage::outcome,
            key_usage::count,
        ))
        .order(key_usage::hour.asc())
        .into_boxed();
    if let Some(ids) = ids {
        q = q.filter(key_usage::key_id.eq_any(ids.to_vec()));
    }
    q.load(conn)
}

/// Names of keys by id, and whether each was deleted (for the most-used
/// table: a deleted key that is still being tried is worth seeing).
pub fn key_names(
    conn: &mut DbConn,
    workspace_id: &str,
    ids: &[String],
) -> QueryResult<Vec<(String, (String, bool))>> {
    let rows: Vec<(String, String, Option<NaiveDateTime>)> = api_keys::table
        .filter(api_keys::workspace_id.eq(workspace_id))
        .filter(api_keys::id.eq_any(ids.to_vec()))
        .select((api_keys::id, api_keys::name, api_keys::deleted_at))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, name, deleted)| (id, (name, deleted.is_some())))
        .collect())
}
