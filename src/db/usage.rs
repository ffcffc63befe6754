//! Hourly verification counts per key and outcome.

use super::DbConn;
use super::schema::{api_keys, key_usage};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamp};

/// One counter to add: key, workspace, hour, outcome, how many. Borrowed:
/// a flush passes what its buffers hold, with no copy of the texts.
pub type Increment<'a> = (&'a str, &'a str, NaiveDateTime, &'a str, i64);

/// Add counts, creating rows as needed.
///
/// Rows are written in a fixed order (key, hour, outcome) so that two
/// instances adding to the same rows lock them in the same order and never
/// deadlock. On PostgreSQL a whole flush is a few statements (one per
/// [`PG_CHUNK`] rows, the rows passed as arrays): one statement per row made
/// a flush of 10k keys' counts take seconds of round trips on the cores that
/// answer key checks. On SQLite a statement per [`super::SQLITE_CHUNK`]
/// rows: no round trips there, but a statement a row was parsed again for
/// every row.
pub fn add(conn: &mut DbConn, batch: &[Increment<'_>]) -> QueryResult<()> {
    let sorted = merged_in_lock_order(batch);
    super::write_transaction(conn, |conn| match conn {
        DbConn::Pg(pg) => add_pg(pg, &sorted),
        DbConn::Sqlite(lite) => add_sqlite(lite, &sorted),
    })
}

/// Rows per statement on PostgreSQL: well under its limits, large enough
/// that a flush of 10k keys is a handful of statements.
const PG_CHUNK: usize = 5_000;

/// The batch sorted by (key, hour, outcome), with any repeated counter
/// summed: PostgreSQL refuses a statement that would update one row twice.
fn merged_in_lock_order<'a>(batch: &[Increment<'a>]) -> Vec<Increment<'a>> {
    let mut sorted: Vec<Increment> = batch.to_vec();
    sorted.sort_unstable_by(|a, b| (a.0, a.2, a.3).cmp(&(b.0, b.2, b.3)));
    sorted.dedup_by(|later, kept| {
        let same = (later.0, later.2, later.3) == (kept.0, kept.2, kept.3);
        if same {
            kept.4 += later.4;
        }
        same
    });
    sorted
}

fn add_pg<'a>(pg: &mut diesel::PgConnection, sorted: &[Increment<'a>]) -> QueryResult<()> {
    use diesel::sql_types::Array;
    // `unnest` yields the rows in array order, and the insert takes its row
    // locks in that order: the sorted order above.
    const SQL: &str = "INSERT INTO key_usage (key_id, workspace_id, hour, outcome, count) \
         SELECT * FROM unnest($1::text[], $2::text[], $3::timestamp[], $4::text[], $5::bigint[]) \
         ON CONFLICT (key_id, hour, outcome) DO UPDATE SET count = key_usage.count + excluded.count";
    for chunk in sorted.chunks(PG_CHUNK) {
        let column = |f: fn(&Increment<'a>) -> &'a str| chunk.iter().map(f).collect::<Vec<_>>();
        diesel::sql_query(SQL)
            .bind::<Array<Text>, _>(column(|r| r.0))
            .bind::<Array<Text>, _>(column(|r| r.1))
            .bind::<Array<Timestamp>, _>(chunk.iter().map(|r| r.2).collect::<Vec<_>>())
            .bind::<Array<Text>, _>(column(|r| r.3))
            .bind::<Array<BigInt>, _>(chunk.iter().map(|r| r.4).collect::<Vec<_>>())
            .execute(pg)?;
    }
    Ok(())
}

/// SQLite: a statement per [`super::SQLITE_CHUNK`] rows (see there).
fn add_sqlite(lite: &mut diesel::SqliteConnection, sorted: &[Increment<'_>]) -> QueryResult<()> {
    for chunk in sorted.chunks(super::SQLITE_CHUNK) {
        let sql = format!(
            "INSERT INTO key_usage (key_id, workspace_id, hour, outcome, count) VALUES {} \
             ON CONFLICT (key_id, hour, outcome) DO UPDATE SET count = key_usage.count + excluded.count",
            super::sqlite_rows(chunk.len(), 5)
        );
        let mut query = diesel::sql_query(sql).into_boxed::<diesel::sqlite::Sqlite>();
        for (key_id, ws, hour, outcome, n) in chunk {
            query = query
                .bind::<Text, _>(*key_id)
                .bind::<Text, _>(*ws)
                .bind::<Timestamp, _>(*hour)
                .bind::<Text, _>(*outcome)
                .bind::<BigInt, _>(*n);
        }
        query.execute(lite)?;
    }
    Ok(())
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
