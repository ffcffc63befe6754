//! "Last used" times and usage counts, counted in memory on the hot path
//! and written in batches (every `KEYWARD_FLUSH_INTERVAL`, and at graceful
//! shutdown). A failed write keeps its batch for the next attempt.

use crate::db::Pool;
use crate::db::keys::AuthRecord;
use chrono::NaiveDateTime;
use hashbrown::{Equivalent, HashMap};
use std::sync::{Arc, Mutex};

/// The start of the hour `t` falls in.
pub fn hour_of(t: NaiveDateTime) -> NaiveDateTime {
    use chrono::Timelike;
    t.date().and_hms_opt(t.hour(), 0, 0).unwrap_or(t)
}

type UsageKey = (String, String, NaiveDateTime, &'static str);

/// A [`UsageKey`] made of borrowed parts, to find a counter without
/// allocating its key on every check. Hashes exactly like the tuple.
#[derive(Hash)]
struct UsageRef<'a>(&'a str, &'a str, NaiveDateTime, &'static str);

impl Equivalent<UsageKey> for UsageRef<'_> {
    fn equivalent(&self, k: &UsageKey) -> bool {
        self.0 == k.0 && self.1 == k.1 && self.2 == k.2 && self.3 == k.3
    }
}

/// Most distinct (key, hour, outcome) counters kept while the database
/// cannot take them; beyond it new counters are dropped (and said so in
/// the log) rather than growing without bound through a long outage.
pub const MAX_PENDING_COUNTERS: usize = 200_000;

/// The uses of one cached record since the last flush.
struct Uses {
    /// Held so that its address, the entry's key, is not reused meanwhile.
    record: Arc<AuthRecord>,
    last_used: Option<NaiveDateTime>,
    /// (hour, outcome, count): one or two almost always.
    counts: Vec<(NaiveDateTime, &'static str, i64)>,
    /// Checks noted since the last flush (for the request log's sampling).
    checks: u32,
}

/// The buffers.
#[derive(Default)]
pub struct UsageBuffers {
    /// What checks noted since the last flush, one entry per record, found
    /// by the record's address: a check hashes and compares a pointer, where
    /// two maps keyed by id strings cost it a third of its cache misses when
    /// rotating over 10k keys (each string on the heap, compared on lookup).
    recent: Mutex<HashMap<usize, Uses>>,
    last_used: Mutex<HashMap<String, NaiveDateTime>>,
    /// Verifications per (key, workspace, hour, outcome) not yet written.
    counts: Mutex<HashMap<UsageKey, i64>>,
    /// Held for a whole flush: a flush that returns has written what was
    /// buffered when it began, also what another flush (the interval's)
    /// had taken and was still writing. Never taken on the hot path.
    flushing: Mutex<()>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl UsageBuffers {
    /// Note one check of `record`'s key at `at` with its outcome, and that
    /// the key was used (`used`: the check passed) for "last used".
    /// Returns how many checks of the record were noted since the last
    /// flush, this one included (`None`: the buffer was full).
    pub fn note(
        &self,
        record: &Arc<AuthRecord>,
        at: NaiveDateTime,
        outcome: &'static str,
        used: bool,
    ) -> Option<u32> {
        let hour = hour_of(at);
        let mut recent = lock(&self.recent);
        let address = Arc::as_ptr(record) as usize;
        let full = recent.len() >= MAX_PENDING_COUNTERS;
        let uses = match recent.entry(address) {
            hashbrown::hash_map::Entry::Occupied(uses) => uses.into_mut(),
            hashbrown::hash_map::Entry::Vacant(_) if full => {
                tracing::warn!("usage buffer full: a count was dropped");
                return None;
            }
            hashbrown::hash_map::Entry::Vacant(slot) => slot.insert(Uses {
                record: record.clone(),
                last_used: None,
                counts: Vec::new(),
                checks: 0,
            }),
        };
        uses.checks = uses.checks.saturating_add(1);
        if used {
            uses.last_used = Some(uses.last_used.map_or(at, |t| t.max(at)));
        }
        match uses
            .counts
            .iter_mut()
            .find(|(h, o, _)| *h == hour && *o == outcome)
        {
            Some((_, _, n)) => *n += 1,
            None => uses.counts.push((hour, outcome, 1)),
        }
        Some(uses.checks)
    }

    /// Move what checks noted into the per-id buffers the flush writes.
    fn absorb_recent(&self) {
        // Taken, not drained: a drained map keeps its capacity, and after a
        // burst over 100k keys that is megabytes held until the next one.
        let recent: Vec<Uses> = std::mem::take(&mut *lock(&self.recent))
            .into_values()
            .collect();
        if recent.is_empty() {
            return;
        }
        {
            let mut last_used = lock(&self.last_used);
            for u in &recent {
                if let Some(at) = u.last_used {
                    match last_used.get_mut(u.record.id()) {
                        Some(t) => *t = (*t).max(at),
                        None => {
                            last_used.insert(u.record.id().to_owned(), at);
                        }
                    }
                }
            }
        }
        for u in &recent {
            for (hour, outcome, n) in &u.counts {
                self.add_count(u.record.id(), u.record.workspace_id(), *hour, outcome, *n);
            }
        }
    }

    fn add_count(
        &self,
        key_id: &str,
        workspace_id: &str,
        hour: NaiveDateTime,
        outcome: &'static str,
        n: i64,
    ) {
        let mut counts = lock(&self.counts);
        if let Some(count) = counts.get_mut(&UsageRef(key_id, workspace_id, hour, outcome)) {
            *count += n;
        } else if counts.len() < MAX_PENDING_COUNTERS {
            counts.insert(
                (key_id.to_owned(), workspace_id.to_owned(), hour, outcome),
                n,
            );
        } else {
            tracing::warn!(
                "usage buffer full while the database is unavailable: a count was dropped"
            );
        }
    }

    /// Count one check of a key with its outcome.
    pub fn count(
        &self,
        key_id: &str,
        workspace_id: &str,
        at: NaiveDateTime,
        outcome: &'static str,
    ) {
        self.add_count(key_id, workspace_id, hour_of(at), outcome, 1);
    }

    /// Pending entries (last-used times, counters), for tests and metrics
    /// (what checks noted since the last flush counted per record).
    pub fn pending(&self) -> (usize, usize) {
        let (recent_used, recent_counts) =
            lock(&self.recent).values().fold((0, 0), |(u, c), uses| {
                (
                    u + usize::from(uses.last_used.is_some()),
                    c + uses.counts.len(),
                )
            });
        (
            lock(&self.last_used).len() + recent_used,
            lock(&self.counts).len() + recent_counts,
        )
    }

    /// Write buffered "last used" times and usage counts. On failure they
    /// are kept for the next attempt, so none is lost.
    pub fn flush(&self, pool: &Pool) {
        let _one_at_a_time = lock(&self.flushing);
        self.absorb_recent();
        drain_and_write(
            &self.last_used,
            |batch| {
                let mut conn = pool.get().map_err(|e| e.to_string())?;
                crate::db::keys::write_last_used(&mut conn, batch).map_err(|e| e.to_string())
            },
            |at, newer| *at = (*at).max(newer),
            "last-used times",
        );
        drain_and_write(
            &self.counts,
            |batch| {
                let rows: Vec<crate::db::usage::Increment> = batch
                    .iter()
                    .map(|((k, w, h, o), n)| (k.as_str(), w.as_str(), *h, *o, *n))
                    .collect();
                let mut conn = pool.get().map_err(|e| e.to_string())?;
                crate::db::usage::add(&mut conn, &rows).map_err(|e| e.to_string())
            },
            |count, n| *count += n,
            "usage counts",
        );
    }
}

/// Take everything buffered in `map` and write it. If writing fails, put it
/// back, merging with what arrived meanwhile, so the next flush retries and
/// nothing is lost.
fn drain_and_write<K: std::hash::Hash + Eq, V>(
    map: &Mutex<HashMap<K, V>>,
    write: impl FnOnce(&[(K, V)]) -> Result<(), String>,
    merge: impl Fn(&mut V, V),
    what: &str,
) {
    // Taken, not drained (which would keep the map's capacity).
    let batch: Vec<(K, V)> = std::mem::take(&mut *map.lock().unwrap_or_else(|e| e.into_inner()))
        .into_iter()
        .collect();
    if batch.is_empty() {
        return;
    }
    if let Err(e) = write(&batch) {
        tracing::warn!(error = %e, pending = batch.len(), "could not write {what}; will retry");
        let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
        for (k, v) in batch {
            match map.entry(k) {
                hashbrown::hash_map::Entry::Occupied(mut slot) => merge(slot.get_mut(), v),
                hashbrown::hash_map::Entry::Vacant(slot) => {
                    slot.insert(v);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_checks_of_a_key_share_one_counter_per_hour_and_outcome() {
        let b = UsageBuffers::default();
        let t = chrono::NaiveDate::from_ymd_opt(2026, 11, 23)
            .unwrap()
            .and_hms_opt(9, 15, 0)
            .unwrap();
        for minute in 0..3 {
            b.count(
                "key_a",
                "ws_1",
                t + chrono::TimeDelta::minutes(minute),
                "VALID",
            );
        }
        b.count("key_a", "ws_1", t, "REVOKED");
        b.count("key_b", "ws_1", t, "VALID");
        b.count("key_a", "ws_1", t + chrono::TimeDelta::hours(1), "VALID");
        assert_eq!(b.pending().1, 4);
        let counts = b.counts.lock().unwrap();
        let valid = ("key_a".to_owned(), "ws_1".to_owned(), hour_of(t), "VALID");
        assert_eq!(counts[&valid], 3);
    }

    #[test]
    fn a_failed_write_keeps_the_batch_and_merges_what_arrived_meanwhile() {
        let map: Mutex<HashMap<&str, i64>> = Mutex::new(HashMap::from_iter([("a", 5), ("b", 1)]));
        drain_and_write(
            &map,
            |batch| {
                assert_eq!(batch.len(), 2);
                // New counts arrive while the database is down.
                map.lock().unwrap().insert("a", 2);
                Err("database down".into())
            },
            |count, n| *count += n,
            "test counts",
        );
        assert_eq!(
            *map.lock().unwrap(),
            HashMap::from_iter([("a", 7), ("b", 1)])
        );

        let mut written = Vec::new();
        drain_and_write(
            &map,
            |batch| {
                written.extend_from_slice(batch);
                Ok(())
            },
            |count, n| *count += n,
            "test counts",
        );
        written.sort();
        assert_eq!(written, vec![("a", 7), ("b", 1)]);
        assert!(
            map.lock().unwrap().is_empty(),
            "a successful write empties the buffer"
        );
    }
}
