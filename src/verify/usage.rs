//! "Last used" times and usage counts, counted in memory on the hot path
//! and written in batches (every `KEYWARD_FLUSH_INTERVAL`, and at graceful
//! shutdown). A failed write keeps its batch for the next attempt.

use crate::db::Pool;
use crate::db::keys::AuthRecord;
use chrono::NaiveDateTime;
use hashbrown::HashMap;
use std::sync::{Arc, Mutex};

/// The start of the hour `t` falls in.
pub fn hour_of(t: NaiveDateTime) -> NaiveDateTime {
    use chrono::Timelike;
    t.date().and_hms_opt(t.hour(), 0, 0).unwrap_or(t)
}

/// Most records with checks not yet written kept while the database cannot
/// take them; beyond it the checks of further keys are dropped (and said
/// so in the log) rather than growing without bound through a long outage.
pub const MAX_PENDING_COUNTERS: usize = 200_000;

/// The uses of one cached record since the last flush.
struct Uses {
    /// Held so that its address, the entry's key, is not reused meanwhile;
    /// its id and workspace are what the flush writes, borrowed from here.
    record: Arc<AuthRecord>,
    last_used: Option<NaiveDateTime>,
    /// (hour, outcome, count): one or two almost always, kept inline (in
    /// the map's own table): a small allocation per key, freed by the next
    /// flush, would leave a hole between the cache's long-lived records.
    counts: smallvec::SmallVec<[(NaiveDateTime, &'static str, i64); 2]>,
    /// Checks noted since the last flush (for the request log's sampling).
    checks: u32,
}

impl Uses {
    fn new(record: &Arc<AuthRecord>) -> Self {
        Uses {
            record: record.clone(),
            last_used: None,
            counts: smallvec::SmallVec::new(),
            checks: 0,
        }
    }

    fn add(&mut self, hour: NaiveDateTime, outcome: &'static str, n: i64) {
        match self
            .counts
            .iter_mut()
            .find(|(h, o, _)| *h == hour && *o == outcome)
        {
            Some((_, _, count)) => *count += n,
            None => self.counts.push((hour, outcome, n)),
        }
    }

    fn used_at(&mut self, at: NaiveDateTime) {
        self.last_used = Some(self.last_used.map_or(at, |t| t.max(at)));
    }

    /// Take in what `other` (of the same record) holds.
    fn merge(&mut self, other: Uses) {
        if let Some(at) = other.last_used {
            self.used_at(at);
        }
        for (hour, outcome, n) in other.counts {
            self.add(hour, outcome, n);
        }
    }
}

/// The buffer's key for a record: its address.
fn address(record: &Arc<AuthRecord>) -> usize {
    Arc::as_ptr(record) as usize
}

/// The buffers.
#[derive(Default)]
pub struct UsageBuffers {
    /// What checks noted and no flush has written yet, one entry per
    /// record, found by the record's address: a check hashes and compares
    /// a pointer, where maps keyed by id strings cost it a third of its
    /// cache misses when rotating over 10k keys (each string on the heap,
    /// compared on lookup). A flush writes straight from these entries,
    /// borrowing each record's id and workspace: no per-key text is copied,
    /// so a burst over 100k keys leaves no small freed strings between the
    /// cache's long-lived records (memory the allocator cannot give back).
    pending: Mutex<HashMap<usize, Uses>>,
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
        let mut pending = lock(&self.pending);
        let full = pending.len() >= MAX_PENDING_COUNTERS;
        let uses = match pending.entry(address(record)) {
            hashbrown::hash_map::Entry::Occupied(uses) => uses.into_mut(),
            hashbrown::hash_map::Entry::Vacant(_) if full => {
                tracing::warn!("usage buffer full: a count was dropped");
                return None;
            }
            hashbrown::hash_map::Entry::Vacant(slot) => slot.insert(Uses::new(record)),
        };
        uses.checks = uses.checks.saturating_add(1);
        if used {
            uses.used_at(at);
        }
        uses.add(hour, outcome, 1);
        Some(uses.checks)
    }

    /// Pending entries (last-used times, counters), for tests and metrics.
    pub fn pending(&self) -> (usize, usize) {
        lock(&self.pending).values().fold((0, 0), |(u, c), uses| {
            (
                u + usize::from(uses.last_used.is_some()),
                c + uses.counts.len(),
            )
        })
    }

    /// Write buffered "last used" times and usage counts. On failure they
    /// are kept for the next attempt, so none is lost.
    pub fn flush(&self, pool: &Pool) {
        self.flush_with(|used, counts| {
            let mut conn = match pool.get() {
                Ok(conn) => conn,
                Err(e) => return (Err(e.to_string()), Err(e.to_string())),
            };
            let used = if used.is_empty() {
                Ok(())
            } else {
                crate::db::keys::write_last_used(&mut conn, used).map_err(|e| e.to_string())
            };
            let counts = if counts.is_empty() {
                Ok(())
            } else {
                crate::db::usage::add(&mut conn, counts).map_err(|e| e.to_string())
            };
            (used, counts)
        });
    }

    /// Take everything buffered and hand it to `write` (last-used times,
    /// then counters; each written or not on its own). What could not be
    /// written is put back, merged with what checks noted meanwhile, so the
    /// next flush retries it and nothing is lost.
    fn flush_with(
        &self,
        write: impl FnOnce(&[(&str, NaiveDateTime)], &[Increment<'_>]) -> Written,
    ) {
        let _one_at_a_time = lock(&self.flushing);
        // Taken, not drained: a drained map keeps its capacity, and after a
        // burst over 100k keys that is megabytes held until the next one.
        let mut batch: Vec<Uses> = std::mem::take(&mut *lock(&self.pending))
            .into_values()
            .collect();
        if batch.is_empty() {
            return;
        }
        let used: Vec<(&str, NaiveDateTime)> = batch
            .iter()
            .filter_map(|u| u.last_used.map(|at| (u.record.id(), at)))
            .collect();
        let counts: Vec<Increment<'_>> = batch
            .iter()
            .flat_map(|u| {
                let (id, ws) = (u.record.id(), u.record.workspace_id());
                u.counts.iter().map(move |(h, o, n)| (id, ws, *h, *o, *n))
            })
            .collect();
        let (used_result, counts_result) = write(&used, &counts);
        let (n_used, n_counts) = (used.len(), counts.len());
        drop((used, counts));
        let used_written = report(used_result, n_used, "last-used times");
        let counts_written = report(counts_result, n_counts, "usage counts");
        if used_written && counts_written {
            return;
        }
        for u in &mut batch {
            u.checks = 0;
            if used_written {
                u.last_used = None;
            }
            if counts_written {
                u.counts.clear();
            }
        }
        let mut pending = lock(&self.pending);
        for u in batch {
            if u.last_used.is_none() && u.counts.is_empty() {
                continue;
            }
            match pending.entry(address(&u.record)) {
                hashbrown::hash_map::Entry::Occupied(mut slot) => slot.get_mut().merge(u),
                hashbrown::hash_map::Entry::Vacant(slot) => {
                    slot.insert(u);
                }
            }
        }
    }
}

type Increment<'a> = crate::db::usage::Increment<'a>;

/// What a flush's writer reports: whether each of its two writes (last-used
/// times, counters) succeeded.
type Written = (Result<(), String>, Result<(), String>);

/// Log a failed write of `n` entries; true when it succeeded.
fn report(result: Result<(), String>, n: usize, what: &str) -> bool {
    match result {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e, pending = n, "could not write {what}; will retry");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(hour: u32, minute: u32) -> NaiveDateTime {
        chrono::NaiveDate::from_ymd_opt(2026, 11, 23)
            .unwrap()
            .and_hms_opt(hour, minute, 0)
            .unwrap()
    }

    fn record(id: &str) -> Arc<AuthRecord> {
        Arc::new(AuthRecord::for_test(id, "ws_1", id, 0))
    }

    /// What a flush hands its writer, sorted: last-used times, counters.
    type Seen = (
        Vec<(String, NaiveDateTime)>,
        Vec<(String, String, NaiveDateTime, String, i64)>,
    );

    fn flush_into(b: &UsageBuffers, seen: &mut Seen, answer: Written) {
        b.flush_with(|used, counts| {
            seen.0 = used.iter().map(|(id, t)| ((*id).to_owned(), *t)).collect();
            seen.1 = counts
                .iter()
                .map(|(k, w, h, o, n)| ((*k).into(), (*w).into(), *h, (*o).into(), *n))
                .collect();
            seen.0.sort();
            seen.1.sort();
            answer
        });
    }

    #[test]
    fn repeated_checks_of_a_key_share_one_counter_per_hour_and_outcome() {
        let b = UsageBuffers::default();
        let (a, other) = (record("key_a"), record("key_b"));
        for minute in 0..3 {
            assert_eq!(b.note(&a, at(9, minute), "VALID", true), Some(minute + 1));
        }
        b.note(&a, at(9, 30), "REVOKED", false);
        b.note(&other, at(9, 0), "VALID", true);
        b.note(&a, at(10, 5), "VALID", true);
        assert_eq!(b.pending(), (2, 4));

        let mut seen = Seen::default();
        flush_into(&b, &mut seen, (Ok(()), Ok(())));
        let ws = || "ws_1".to_owned();
        assert_eq!(
            seen.0,
            vec![("key_a".into(), at(10, 5)), ("key_b".into(), at(9, 0))]
        );
        assert_eq!(
            seen.1,
            vec![
                ("key_a".into(), ws(), at(9, 0), "REVOKED".into(), 1),
                ("key_a".into(), ws(), at(9, 0), "VALID".into(), 3),
                ("key_a".into(), ws(), at(10, 0), "VALID".into(), 1),
                ("key_b".into(), ws(), at(9, 0), "VALID".into(), 1),
            ]
        );
        assert_eq!(b.pending(), (0, 0), "a successful flush empties the buffer");
        assert_eq!(
            b.note(&a, at(10, 6), "VALID", true),
            Some(1),
            "checks are counted from the last flush"
        );
    }

    #[test]
    fn a_failed_write_keeps_its_part_and_merges_what_arrived_meanwhile() {
        let b = UsageBuffers::default();
        let (a, other) = (record("key_a"), record("key_b"));
        b.note(&a, at(9, 0), "VALID", true);
        b.note(&a, at(9, 1), "VALID", true);
        b.note(&other, at(9, 2), "EXPIRED", false);
        // The counters cannot be written; the last-used times were. New
        // checks arrive while the database is down.
        b.flush_with(|_, _| {
            b.note(&a, at(9, 5), "VALID", true);
            (Ok(()), Err("database down".into()))
        });
        assert_eq!(b.pending(), (1, 2));

        let mut seen = Seen::default();
        flush_into(&b, &mut seen, (Ok(()), Ok(())));
        let ws = || "ws_1".to_owned();
        assert_eq!(seen.0, vec![("key_a".into(), at(9, 5))]);
        assert_eq!(
            seen.1,
            vec![
                ("key_a".into(), ws(), at(9, 0), "VALID".into(), 3),
                ("key_b".into(), ws(), at(9, 0), "EXPIRED".into(), 1),
            ]
        );
        assert_eq!(b.pending(), (0, 0));

        // Neither written: both kept, the time too.
        b.note(&other, at(9, 10), "VALID", true);
        b.flush_with(|_, _| (Err("down".into()), Err("down".into())));
        assert_eq!(b.pending(), (1, 1));
    }
}
