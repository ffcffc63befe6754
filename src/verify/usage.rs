//! "Last used" times and usage counts, counted in memory on the hot path
//! and written in batches (every `KEYWARD_FLUSH_INTERVAL`, and at graceful
//! shutdown). A failed write keeps its batch for the next attempt.
//!
//! A check counts into its cached key's own [`KeyUses`] (atomics next to
//! the reference count the check has just changed: no lock, no map, no
//! memory the check would not touch anyway). The first check of a key
//! since the last flush puts the key on the flush's list. What does not fit
//! the key's one counter (a second outcome or hour before the next flush)
//! goes to a shared map, as does what a failed write keeps for the next.

use super::cache::CachedKey;
use crate::db::Pool;
use chrono::NaiveDateTime;
use hashbrown::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

/// The start of the hour `t` falls in.
pub fn hour_of(t: NaiveDateTime) -> NaiveDateTime {
    use chrono::Timelike;
    t.date().and_hms_opt(t.hour(), 0, 0).unwrap_or(t)
}

/// Most keys with checks not yet written kept while the database cannot
/// take them (on the flush's list and in the shared map together); beyond it
/// the checks of further keys are dropped (and said so in the log) rather
/// than growing without bound through a long outage.
pub const MAX_PENDING_COUNTERS: usize = 200_000;

/// "Last used" of a key not used since the last flush.
const NEVER: i64 = i64::MIN;

/// The outcomes a key's own counter can hold, numbered from 1 (0 is the
/// empty counter): "VALID", then every refusal code.
fn outcomes() -> impl Iterator<Item = &'static str> {
    std::iter::once(crate::domain::chart::VALID)
        .chain(super::counters::CODES.iter().map(|c| c.as_str()))
}

/// A counter's (hour, outcome) as one number: the hour since the epoch
/// (24 bits: until the year 3884) and the outcome's number (8 bits).
fn tag(hour: NaiveDateTime, outcome: &str) -> Option<u32> {
    let hours = u32::try_from(hour.and_utc().timestamp().div_euclid(3600)).ok()?;
    let number = u32::try_from(outcomes().position(|o| o == outcome)? + 1).ok()?;
    (hours < 1 << 24).then_some(hours << 8 | number)
}

/// The (hour, outcome) a [`tag`] stands for.
fn untag(tag: u32) -> Option<(NaiveDateTime, &'static str)> {
    let hour = chrono::DateTime::from_timestamp(i64::from(tag >> 8) * 3600, 0)?.naive_utc();
    let outcome = outcomes().nth(usize::try_from(tag & 0xff).ok()?.checked_sub(1)?)?;
    Some((hour, outcome))
}

/// A cached key's uses since the last flush, in the key itself.
///
/// A check updates these and then `checks`; a flush takes `checks` first,
/// then the rest. So a check whose `checks` increment came before the
/// flush's had its uses taken by that flush, and one after it finds
/// `checks` at 0 and puts the key on the next flush's list: every use is
/// written exactly once.
#[derive(Debug)]
pub struct KeyUses {
    /// Checks since the last flush (for the request log's sampling); the
    /// first puts the key on the flush's list.
    checks: AtomicU32,
    /// The latest passed check, microseconds since the epoch ([`NEVER`]).
    last_used: AtomicI64,
    /// One (hour, outcome) counter: its [`tag`] in the high half, the count
    /// in the low half; 0 when empty.
    counter: AtomicU64,
}

impl Default for KeyUses {
    fn default() -> Self {
        KeyUses {
            checks: AtomicU32::new(0),
            last_used: AtomicI64::new(NEVER),
            counter: AtomicU64::new(0),
        }
    }
}

impl KeyUses {
    /// Count one check of (hour `tag`) in the key's counter; false when
    /// it holds another hour or outcome (or is full).
    fn count(&self, tag: u32) -> bool {
        let mut current = self.counter.load(SeqCst);
        loop {
            let next = if current == 0 {
                u64::from(tag) << 32 | 1
            } else if current >> 32 == u64::from(tag) && (current as u32) < u32::MAX {
                current + 1
            } else {
                return false;
            };
            match self
                .counter
                .compare_exchange_weak(current, next, SeqCst, SeqCst)
            {
                Ok(_) => return true,
                Err(seen) => current = seen,
            }
        }
    }

    fn used_at(&self, at: NaiveDateTime) {
        self.last_used
            .fetch_max(at.and_utc().timestamp_micros(), SeqCst);
    }

    fn last_used(micros: i64) -> Option<NaiveDateTime> {
        (micros != NEVER)
            .then(|| chrono::DateTime::from_timestamp_micros(micros))
            .flatten()
            .map(|t| t.naive_utc())
    }

    /// Take what was counted (see the type's comment for the order).
    fn take(&self, into: &mut Uses) {
        self.checks.swap(0, SeqCst);
        let counter = self.counter.swap(0, SeqCst);
        if let Some((hour, outcome)) = untag((counter >> 32) as u32) {
            into.add(hour, outcome, i64::from(counter as u32));
        }
        if let Some(at) = Self::last_used(self.last_used.swap(NEVER, SeqCst)) {
            into.used_at(at);
        }
    }

    /// What [`KeyUses::take`] would take, without taking it.
    fn peek(&self) -> (Option<NaiveDateTime>, Option<(NaiveDateTime, &'static str)>) {
        let counter = self.counter.load(SeqCst);
        (
            Self::last_used(self.last_used.load(SeqCst)),
            untag((counter >> 32) as u32),
        )
    }
}

/// The uses of one cached key not in the key's own counter: those of a
/// second hour or outcome since the last flush, and those a failed write
/// kept.
struct Uses {
    /// Held so that its address, the entry's key, is not reused meanwhile;
    /// its id and workspace are what the flush writes, borrowed from here.
    record: Arc<CachedKey>,
    last_used: Option<NaiveDateTime>,
    /// (hour, outcome, count): one or two almost always, kept inline (in
    /// the map's own table): a small allocation per key, freed by the next
    /// flush, would leave a hole between the cache's long-lived records.
    counts: smallvec::SmallVec<[(NaiveDateTime, &'static str, i64); 2]>,
}

impl Uses {
    fn new(record: &Arc<CachedKey>) -> Self {
        Uses {
            record: record.clone(),
            last_used: None,
            counts: smallvec::SmallVec::new(),
        }
    }

    fn is_empty(&self) -> bool {
        self.last_used.is_none() && self.counts.is_empty()
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
fn address(record: &Arc<CachedKey>) -> usize {
    Arc::as_ptr(record) as usize
}

/// The buffers.
#[derive(Default)]
pub struct UsageBuffers {
    /// The keys checked since the last flush, each once: their own
    /// [`KeyUses`] hold what the checks noted.
    checked: Mutex<Vec<Arc<CachedKey>>>,
    /// What did not fit a key's own counter, and what a failed write kept:
    /// one entry per key, found by the key's address (a pointer hashed and
    /// compared, not an id string on the heap). A flush writes straight
    /// from these entries, borrowing each record's id and workspace: no
    /// per-key text is copied, so a burst over 100k keys leaves no small
    /// freed strings between the cache's long-lived records (memory the
    /// allocator cannot give back).
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
        record: &Arc<CachedKey>,
        at: NaiveDateTime,
        outcome: &'static str,
        used: bool,
    ) -> Option<u32> {
        let uses = &record.uses;
        if uses.checks.load(SeqCst) == 0 && self.full_without(record) {
            tracing::warn!("usage buffer full: a count was dropped");
            return None;
        }
        let hour = hour_of(at);
        if !tag(hour, outcome).is_some_and(|tag| uses.count(tag)) {
            let mut pending = lock(&self.pending);
            let full = pending.len() >= MAX_PENDING_COUNTERS;
            match pending.entry(address(record)) {
                hashbrown::hash_map::Entry::Occupied(other) => {
                    other.into_mut().add(hour, outcome, 1)
                }
                hashbrown::hash_map::Entry::Vacant(_) if full => {
                    tracing::warn!("usage buffer full: a count was dropped");
                    return None;
                }
                hashbrown::hash_map::Entry::Vacant(slot) => {
                    slot.insert(Uses::new(record)).add(hour, outcome, 1)
                }
            }
        }
        if used {
            uses.used_at(at);
        }
        // Last: see `KeyUses`.
        let checks = uses.checks.fetch_add(1, SeqCst);
        if checks == 0 {
            lock(&self.checked).push(record.clone());
        }
        Some(checks.saturating_add(1))
    }

    /// Whether as many keys as are kept wait for a flush, `record`'s not
    /// among them (its first check since the last flush: a failed write
    /// may have kept some of its uses).
    fn full_without(&self, record: &Arc<CachedKey>) -> bool {
        let checked = lock(&self.checked).len();
        let pending = lock(&self.pending);
        checked + pending.len() >= MAX_PENDING_COUNTERS && !pending.contains_key(&address(record))
    }

    /// Pending entries (last-used times, counters), for tests and metrics.
    pub fn pending(&self) -> (usize, usize) {
        let checked = lock(&self.checked);
        let pending = lock(&self.pending);
        let (mut used, mut counters) = pending.values().fold((0, 0), |(u, c), uses| {
            (
                u + usize::from(uses.last_used.is_some()),
                c + uses.counts.len(),
            )
        });
        for key in checked.iter() {
            let kept = pending.get(&address(key));
            let (last_used, counter) = key.uses.peek();
            if last_used.is_some() && kept.is_none_or(|u| u.last_used.is_none()) {
                used += 1;
            }
            if counter.is_some_and(|(h, o)| {
                kept.is_none_or(|u| !u.counts.iter().any(|c| (c.0, c.1) == (h, o)))
            }) {
                counters += 1;
            }
        }
        (used, counters)
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
        let checked = std::mem::take(&mut *lock(&self.checked));
        let mut batch = std::mem::take(&mut *lock(&self.pending));
        for key in checked {
            let mut uses = Uses::new(&key);
            key.uses.take(&mut uses);
            add_to(&mut batch, uses);
        }
        let mut batch: Vec<Uses> = batch.into_values().collect();
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
            if used_written {
                u.last_used = None;
            }
            if counts_written {
                u.counts.clear();
            }
        }
        let mut pending = lock(&self.pending);
        for u in batch {
            add_to(&mut pending, u);
        }
    }
}

/// Put `uses` into `map`, merged with what the map holds for its key;
/// nothing when there is nothing to keep.
fn add_to(map: &mut HashMap<usize, Uses>, uses: Uses) {
    if uses.is_empty() {
        return;
    }
    match map.entry(address(&uses.record)) {
        hashbrown::hash_map::Entry::Occupied(mut kept) => kept.get_mut().merge(uses),
        hashbrown::hash_map::Entry::Vacant(slot) => {
            slot.insert(uses);
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

    fn record(id: &str) -> Arc<CachedKey> {
        Arc::new(CachedKey::new(crate::db::keys::AuthRecord::for_test(
            id, "ws_1", id, 0,
        )))
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

    #[test]
    fn keys_beyond_the_bound_are_dropped_until_a_flush_writes() {
        let b = UsageBuffers::default();
        let keys: Vec<_> = (0..MAX_PENDING_COUNTERS)
            .map(|i| record(&format!("key_{i}")))
            .collect();
        for key in &keys {
            assert_eq!(b.note(key, at(9, 0), "VALID", true), Some(1));
        }
        let late = record("key_late");
        assert_eq!(b.note(&late, at(9, 1), "VALID", true), None, "full");
        assert_eq!(
            b.note(&keys[0], at(9, 1), "REVOKED", false),
            Some(2),
            "a key already waiting is still counted"
        );
        // The database is down: everything is kept, and still full.
        b.flush_with(|_, _| (Err("down".into()), Err("down".into())));
        assert_eq!(
            b.pending(),
            (MAX_PENDING_COUNTERS, MAX_PENDING_COUNTERS + 1)
        );
        assert_eq!(b.note(&late, at(9, 2), "VALID", true), None);
        assert_eq!(
            b.note(&keys[1], at(9, 2), "VALID", true),
            Some(1),
            "a key whose uses were kept is counted"
        );
        let mut seen = Seen::default();
        flush_into(&b, &mut seen, (Ok(()), Ok(())));
        assert_eq!(seen.1.len(), MAX_PENDING_COUNTERS + 1);
        assert_eq!(
            seen.1.iter().map(|c| c.4).sum::<i64>(),
            MAX_PENDING_COUNTERS as i64 + 2
        );
        assert_eq!(b.note(&late, at(9, 3), "VALID", true), Some(1));
    }

    #[test]
    fn checks_racing_flushes_are_written_exactly_once() {
        // Two threads check three keys (two outcomes, two hours: the keys'
        // own counters and the shared map both in play) while a third
        // flushes over and over, every third write failing. Every check
        // must be written once: none lost to a flush that took a key's
        // list entry mid-check, none written twice.
        const IDS: [&str; 3] = ["key_a", "key_b", "key_c"];
        const CHECKS: u32 = 100_000;
        // Thread `t`'s `i`-th check: which key, at what hour, and how.
        fn nth(t: u32, i: u32) -> (usize, NaiveDateTime, &'static str) {
            let outcome = if i % 7 == t { "REVOKED" } else { "VALID" };
            let hour = if i % 1000 < 500 { 9 } else { 10 };
            ((i % 3) as usize, at(hour, 0), outcome)
        }
        let b = Arc::new(UsageBuffers::default());
        let keys: Vec<_> = IDS.map(record).into();
        let written = Arc::new(Mutex::new(std::collections::BTreeMap::new()));
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flusher = {
            let (b, written, done) = (b.clone(), written.clone(), done.clone());
            std::thread::spawn(move || {
                for round in 1u32.. {
                    let last = done.load(SeqCst);
                    b.flush_with(|_, counts| {
                        if round.is_multiple_of(3) && !last {
                            return (Ok(()), Err("down".into()));
                        }
                        let mut written = written.lock().unwrap();
                        for (id, _, hour, outcome, n) in counts {
                            *written
                                .entry((id.to_string(), *hour, outcome.to_string()))
                                .or_insert(0) += n;
                        }
                        (Ok(()), Ok(()))
                    });
                    if last {
                        break;
                    }
                }
            })
        };
        let checkers: Vec<_> = (0..2)
            .map(|t| {
                let (b, keys) = (b.clone(), keys.clone());
                std::thread::spawn(move || {
                    for i in 0..CHECKS {
                        let (key, hour, outcome) = nth(t, i);
                        assert!(b.note(&keys[key], hour, outcome, true).is_some());
                    }
                })
            })
            .collect();
        for c in checkers {
            c.join().unwrap();
        }
        done.store(true, SeqCst);
        flusher.join().unwrap();
        assert_eq!(b.pending(), (0, 0), "the last flush wrote everything");
        let mut expected = std::collections::BTreeMap::new();
        for t in 0..2 {
            for i in 0..CHECKS {
                let (key, hour, outcome) = nth(t, i);
                *expected
                    .entry((IDS[key].to_string(), hour, outcome.to_string()))
                    .or_insert(0i64) += 1;
            }
        }
        assert_eq!(*written.lock().unwrap(), expected);
    }
}
