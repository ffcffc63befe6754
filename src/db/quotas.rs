//! What is left of keys' usage quotas, in the database: the one place every
//! instance takes its reserves from (docs/quotas.md).
//!
//! A check never spends here directly: an instance reserves a batch of
//! uses in one short transaction (the row locked) and spends them in
//! memory. What every instance spends together is therefore never more
//! than what the database handed out, which never exceeds the quota.

use super::DbConn;
use super::schema::{api_keys, key_quotas};
use crate::domain::quota::Quota;
use chrono::NaiveDateTime;
use diesel::prelude::*;

/// The outcome of asking for uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reserved {
    /// `taken` uses were handed out; `left` remain in the database.
    Granted { taken: i64, left: i64 },
    /// Fewer than asked remain: `left` (nothing was taken).
    Short { left: i64 },
}

/// The row as it is now, its refill periods applied, locked for the
/// transaction (PostgreSQL; SQLite's write transaction holds the database).
/// A key with a quota but no row yet (never checked) starts full: the row
/// is made first, so that two instances asking at once cannot both find
/// "no row" (which `FOR UPDATE` does not lock) and both hand out the whole
/// quota. The second insert waits for the first transaction and then
/// does nothing; its `FOR UPDATE` then waits for the row.
fn current(conn: &mut DbConn, key_id: &str, quota: &Quota, now: NaiveDateTime) -> QueryResult<i64> {
    let fresh = (
        key_quotas::key_id.eq(key_id),
        key_quotas::remaining.eq(quota.limit),
        key_quotas::window_start.eq(quota.window(now)),
    );
    match conn {
        DbConn::Pg(pg) => diesel::insert_into(key_quotas::table)
            .values(fresh)
            .on_conflict_do_nothing()
            .execute(pg)?,
        DbConn::Sqlite(lite) => diesel::insert_into(key_quotas::table)
            .values(fresh)
            .on_conflict_do_nothing()
            .execute(lite)?,
    };
    let row = match conn {
        DbConn::Pg(pg) => key_quotas::table
            .find(key_id)
            .select((key_quotas::remaining, key_quotas::window_start))
            .for_update()
            .first(pg)
            .optional()?,
        DbConn::Sqlite(lite) => key_quotas::table
            .find(key_id)
            .select((key_quotas::remaining, key_quotas::window_start))
            .first(lite)
            .optional()?,
    };
    Ok(left_in(row, quota, now))
}

/// What a row says is left at `now`, its refill periods applied; no row
/// (a key never checked): the whole quota.
fn left_in(row: Option<(i64, Option<NaiveDateTime>)>, quota: &Quota, now: NaiveDateTime) -> i64 {
    match row {
        Some((remaining, window)) => quota.rolled(remaining, window, now),
        None => quota.limit,
    }
}

/// Store what is left in the window of `now`.
fn store(
    conn: &mut DbConn,
    key_id: &str,
    quota: &Quota,
    remaining: i64,
    now: NaiveDateTime,
) -> QueryResult<()> {
    let window = quota.window(now);
    let row = (
        key_quotas::key_id.eq(key_id),
        key_quotas::remaining.eq(remaining),
        key_quotas::window_start.eq(window),
    );
    let update = (
        key_quotas::remaining.eq(remaining),
        key_quotas::window_start.eq(window),
    );
    match conn {
        DbConn::Pg(pg) => diesel::insert_into(key_quotas::table)
            .values(row)
            .on_conflict(key_quotas::key_id)
            .do_update()
            .set(update)
            .execute(pg),
        DbConn::Sqlite(lite) => diesel::insert_into(key_quotas::table)
            .values(row)
            .on_conflict(key_quotas::key_id)
            .do_update()
            .set(update)
            .execute(lite),
    }
    .map(drop)
}

/// Take `need` uses and up to `extra` more for the instance's reserve, or
/// nothing when fewer than `need` are left.
pub fn reserve(
    conn: &mut DbConn,
    key_id: &str,
    quota: &Quota,
    need: i64,
    extra: i64,
    now: NaiveDateTime,
) -> QueryResult<Reserved> {
    super::write_transaction(conn, |c| {
        let left = current(c, key_id, quota, now)?;
        if left < need {
            // Keep the refill applied, so the row says what is true.
            store(c, key_id, quota, left, now)?;
            return Ok(Reserved::Short { left });
        }
        let taken = need + extra.min(left - need).max(0);
        store(c, key_id, quota, left - taken, now)?;
        Ok(Reserved::Granted {
            taken,
            left: left - taken,
        })
    })
}

/// Give back uses an instance reserved and did not spend (at shutdown),
/// if the window they were taken in is still the current one.
pub fn give_back(
    conn: &mut DbConn,
    key_id: &str,
    quota: &Quota,
    uses: i64,
    window: Option<NaiveDateTime>,
    now: NaiveDateTime,
) -> QueryResult<()> {
    if uses <= 0 || quota.window(now) != window {
        return Ok(());
    }
    super::write_transaction(conn, |c| {
        let left = current(c, key_id, quota, now)?;
        store(c, key_id, quota, left.saturating_add(uses), now)
    })
}

/// What is left in the database now (a key never checked: its limit).
pub fn remaining(
    conn: &mut DbConn,
    key_id: &str,
    quota: &Quota,
    now: NaiveDateTime,
) -> QueryResult<i64> {
    let row = key_quotas::table
        .find(key_id)
        .select((key_quotas::remaining, key_quotas::window_start))
        .first(conn)
        .optional()?;
    Ok(left_in(row, quota, now))
}

/// What is left of several keys' quotas (a page of the key list), in one
/// query: `(key id, what is left)` for each of `keys`.
pub fn remaining_of(
    conn: &mut DbConn,
    keys: &[(String, Quota)],
    now: NaiveDateTime,
) -> QueryResult<Vec<(String, i64)>> {
    let ids: Vec<&str> = keys.iter().map(|(id, _)| id.as_str()).collect();
    let rows: Vec<(String, i64, Option<NaiveDateTime>)> = key_quotas::table
        .filter(key_quotas::key_id.eq_any(&ids))
        .select((
            key_quotas::key_id,
            key_quotas::remaining,
            key_quotas::window_start,
        ))
        .load(conn)?;
    Ok(keys
        .iter()
        .map(|(id, quota)| {
            let row = rows
                .iter()
                .find(|(k, _, _)| k == id)
                .map(|(_, left, window)| (*left, *window));
            (id.clone(), left_in(row, quota, now))
        })
        .collect())
}

/// A key's quota changed from `old` to `new` (inside the edit's
/// transaction): what is left moves by the change of the limit (a daily
/// quota raised from 100 to 150 with 30 left has 80 left), never below
/// zero; no quota any more forgets it; a new one starts full.
pub fn quota_changed(
    conn: &mut DbConn,
    key_id: &str,
    old: Option<&Quota>,
    new: Option<&Quota>,
    now: NaiveDateTime,
) -> QueryResult<()> {
    match (old, new) {
        (_, None) => {
            diesel::delete(key_quotas::table.find(key_id)).execute(conn)?;
        }
        (None, Some(new)) => store(conn, key_id, new, new.limit, now)?,
        (Some(old), Some(new)) if old != new => {
            let left = current(conn, key_id, old, now)?;
            let moved = left.saturating_add(new.limit - old.limit).max(0);
            store(conn, key_id, new, moved, now)?;
        }
        _ => {}
    }
    Ok(())
}

/// Set or add to what is left (a top-up, inside its transaction), and
/// touch the key's quota so every instance drops its reserve and cached
/// copy (the version trigger): after "set to 10" no instance spends an old
/// reserve on top. Returns what is left after.
pub fn top_up(
    conn: &mut DbConn,
    key_id: &str,
    quota: &Quota,
    set: Option<i64>,
    add: i64,
    now: NaiveDateTime,
) -> QueryResult<(i64, i64)> {
    let before = current(conn, key_id, quota, now)?;
    let after = set
        .unwrap_or(before)
        .saturating_add(add)
        .clamp(0, crate::domain::quota::MAX);
    store(conn, key_id, quota, after, now)?;
    diesel::update(api_keys::table.find(key_id))
        .set(api_keys::quota_limit.eq(api_keys::quota_limit))
        .execute(conn)?;
    Ok((before, after))
}
