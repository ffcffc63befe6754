//! The cache of looked-up keys, kept exact by the change feed instead of a
//! short lifetime.
//!
//! - Entries are dropped precisely (by digest, by workspace, or all) when a
//!   [`Change`] arrives; a long safety lifetime only bounds what a missed
//!   notification could cost.
//! - One database read per digest at a time: concurrent misses for the same
//!   key wait for the first one's answer (single flight).
//! - A lookup that read a row before a change committed cannot put its
//!   stale answer into the cache after the change was applied: every change
//!   bumps a generation under the same lock that guards insertion, and an
//!   answer is only cached if nothing touching its key or workspace happened
//!   since its lookup began, or if it read the key at the version the change
//!   announced or a later one.
//! - Key changes from PostgreSQL carry the row's version after the change:
//!   copies already read at that version or later are kept (a notice arrives
//!   up to a poll interval after its commit, often after a check that read
//!   the changed row; dropping that copy lost the key's outage copy).

use super::shards::{Digest, ExpiringMap};
use crate::db::changes::Change;
use crate::db::keys::{AuthRecord, digest_bytes};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a lookup found: the key, or that no key has this digest.
pub type Found = Option<Arc<CachedKey>>;

/// A cached key: the record read from the database, and the key's uses
/// since the last flush in front of it, on the cache line a check touches
/// first anyway (the reference count it increments). Kept in a map of
/// their own, the uses cost a check rotating over 10k keys three more
/// cache misses (see docs/benchmarks.md).
#[derive(Debug)]
#[repr(C)]
pub struct CachedKey {
    pub(super) uses: super::usage::KeyUses,
    record: AuthRecord,
}

impl CachedKey {
    pub fn new(record: AuthRecord) -> Self {
        CachedKey {
            uses: super::usage::KeyUses::default(),
            record,
        }
    }
}

impl std::ops::Deref for CachedKey {
    type Target = AuthRecord;

    fn deref(&self) -> &AuthRecord {
        &self.record
    }
}

/// Why a lookup gave no answer (the database could not be asked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupFailed(pub String);

/// How long change records are kept to judge lookups that began before
/// them. A lookup running longer than this is never cached (it cannot be
/// judged), which is safe; lookups are bounded by the pool and statement
/// timeouts, far below it.
const REMEMBER_CHANGES: Duration = Duration::from_secs(60);

/// `now + lifetime`, a year at most (a configured lifetime too long for
/// the clock must not panic).
fn after(now: Instant, lifetime: Duration) -> Instant {
    now.checked_add(lifetime)
        .unwrap_or_else(|| now + Duration::from_secs(365 * 24 * 3600))
}

/// How long entries live without a change.
struct Lifetimes {
    found: Duration,
    missing: Duration,
    stale: Duration,
}

/// The version a change without one stands for: newer than anything read.
const UNKNOWN_VERSION: i64 = i64::MAX;

/// Whether `found` was read at `version` or later (so it already shows the
/// change that made that version). "No such key" shows no change.
fn shows(found: &Found, version: i64) -> bool {
    found.as_ref().is_some_and(|r| r.version >= version)
}

/// The last change of a digest: its generation, the highest version
/// announced for it while remembered, and when (for pruning).
#[derive(Clone, Copy)]
struct KeyChange {
    generation: u64,
    version: i64,
    at: Instant,
}

#[derive(Default)]
struct Generations {
    current: u64,
    /// The last change of each digest / workspace (see [`KeyChange`]).
    keys: HashMap<Digest, KeyChange>,
    workspaces: HashMap<String, (u64, Instant)>,
    all: u64,
    /// Records older than this generation were pruned.
    forgotten_before: u64,
}

impl Generations {
    /// Whether what a lookup begun at `start` found may not be cached: a
    /// change touched its key or workspace since, and it did not read the
    /// key at the version that change announced (or later).
    fn changed_since(&self, start: u64, digest: &Digest, found: &Found) -> bool {
        let workspace = found.as_ref().map(|r| r.workspace_id());
        start < self.forgotten_before
            || self.all > start
            || self
                .keys
                .get(digest)
                .is_some_and(|c| c.generation > start && !shows(found, c.version))
            || workspace
                .and_then(|w| self.workspaces.get(w))
                .is_some_and(|(g, _)| *g > start)
    }

    fn key_changed(&mut self, digest: Digest, version: i64, now: Instant) {
        let generation = self.current;
        let change = self.keys.entry(digest).or_insert(KeyChange {
            generation,
            version,
            at: now,
        });
        // The highest version seen: a lookup begun before several changes
        // must have read the last of them to be cached.
        *change = KeyChange {
            generation,
            version: change.version.max(version),
            at: now,
        };
    }

    fn prune(&mut self, now: Instant) {
        let horizon = now.checked_sub(REMEMBER_CHANGES);
        let Some(horizon) = horizon else { return };
        let mut newest_dropped = 0;
        self.keys.retain(|_, c| {
            let keep = c.at >= horizon;
            if !keep {
                newest_dropped = newest_dropped.max(c.generation);
            }
            keep
        });
        self.workspaces.retain(|_, (g, at)| {
            let keep = *at >= horizon;
            if !keep {
                newest_dropped = newest_dropped.max(*g);
            }
            keep
        });
        self.forgotten_before = self.forgotten_before.max(newest_dropped);
    }
}

type Flight = Arc<tokio::sync::OnceCell<Result<Found, LookupFailed>>>;

/// One digest's entry: the answer, until when it is answered from the
/// cache, and when it was read (a found key is also kept, past that, as
/// the outage copy until its stale lifetime ends: the map's own expiry).
#[derive(Clone)]
struct Entry {
    found: Found,
    /// Milliseconds on the map's clock (see [`ExpiringMap::tick`]).
    fresh_until: u64,
    read_at: u64,
}

/// The key cache.
pub struct KeyCache {
    /// Fresh answers and, for found keys, the outage copy (the last answer
    /// read from the database, used only when it cannot be asked:
    /// stale-if-error), in one entry per digest, kept exact by changes.
    entries: ExpiringMap<Entry>,
    lifetimes: Lifetimes,
    generations: Mutex<Generations>,
    inflight: Mutex<HashMap<Digest, Flight>>,
}

/// Removes a finished flight, also when the waiting request was dropped.
struct Landing<'a> {
    cache: &'a KeyCache,
    digest: &'a Digest,
    flight: Flight,
}

impl Drop for Landing<'_> {
    fn drop(&mut self) {
        let mut inflight = self.cache.lock_inflight();
        if inflight
            .get(self.digest)
            .is_some_and(|f| Arc::ptr_eq(f, &self.flight))
        {
            inflight.remove(self.digest);
        }
    }
}

impl KeyCache {
    /// A cache of at most `capacity` keys; found keys live at most
    /// `found_ttl` (a safety net: changes remove them at once), unknown
    /// digests `missing_ttl`.
    pub fn new(capacity: u64, found_ttl: Duration, missing_ttl: Duration) -> Self {
        Self::with_stale(capacity, found_ttl, missing_ttl, Duration::ZERO)
    }

    /// [`KeyCache::new`], also keeping found keys for `stale_ttl` after
    /// they were read, for answers during a database outage (zero: never).
    pub fn with_stale(
        capacity: u64,
        found_ttl: Duration,
        missing_ttl: Duration,
        stale_ttl: Duration,
    ) -> Self {
        KeyCache {
            entries: ExpiringMap::new(capacity),
            lifetimes: Lifetimes {
                found: found_ttl,
                missing: missing_ttl,
                stale: stale_ttl,
            },
            generations: Mutex::new(Generations::default()),
            inflight: Mutex::new(HashMap::new()),
        }
    }

    fn lock_generations(&self) -> std::sync::MutexGuard<'_, Generations> {
        self.generations.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_inflight(&self) -> std::sync::MutexGuard<'_, HashMap<Digest, Flight>> {
        self.inflight.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached answer for `digest`, if any.
    pub fn get(&self, digest: &Digest) -> Option<Found> {
        self.fresh(digest, Instant::now())
    }

    fn fresh(&self, digest: &Digest, now: Instant) -> Option<Found> {
        let tick = self.entries.tick(now);
        self.entries
            .get(digest, now)
            .filter(|e| e.fresh_until > tick)
            .map(|e| e.found)
    }

    /// The cached answer, or the one `load` gives (one `load` per digest at
    /// a time; concurrent callers share its answer). Failures are not
    /// cached.
    pub async fn get_or_load<F, Fut>(&self, digest: &Digest, load: F) -> Result<Found, LookupFailed>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Option<AuthRecord>, LookupFailed>>,
    {
        if let Some(found) = self.get(digest) {
            return Ok(found);
        }
        let flight = self.lock_inflight().entry(*digest).or_default().clone();
        let _landing = Landing {
            cache: self,
            digest,
            flight: flight.clone(),
        };
        flight
            .get_or_init(|| async {
                let start = self.lock_generations().current;
                let found = load().await?.map(|r| Arc::new(CachedKey::new(r)));
                self.insert_if_unchanged(digest, found.clone(), start);
                Ok(found)
            })
            .await
            .clone()
    }

    fn insert_if_unchanged(&self, digest: &Digest, found: Found, start: u64) {
        let generations = self.lock_generations();
        if !generations.changed_since(start, digest, &found) {
            let now = Instant::now();
            let lifetime = if found.is_some() {
                self.lifetimes.found
            } else {
                self.lifetimes.missing
            };
            let fresh_until = after(now, lifetime);
            // A found key stays as the outage copy after it stops being
            // fresh, for the stale lifetime (if longer).
            let until = match &found {
                Some(_) => fresh_until.max(after(now, self.lifetimes.stale)),
                None => fresh_until,
            };
            let entry = Entry {
                found,
                fresh_until: self.entries.tick(fresh_until),
                read_at: self.entries.tick(now),
            };
            self.entries.insert(digest, entry, until, now);
        }
    }

    /// Apply a change: drop exactly the entries it affects, and keep any
    /// lookup that began before it from caching what it read.
    pub fn apply(&self, change: &Change) {
        let now = Instant::now();
        let mut generations = self.lock_generations();
        generations.current += 1;
        let current = generations.current;
        match change {
            Change::Key {
                digests, version, ..
            } => {
                let version = version.unwrap_or(UNKNOWN_VERSION);
                for d in digests {
                    let key = digest_bytes(d);
                    generations.key_changed(key, version, now);
                    // Insertions take the generations lock too, so nothing
                    // is cached between this look and the invalidation.
                    // A copy read at the announced version or later shows
                    // the change already: it stays, fresh and as the
                    // outage copy; any other goes ("no such key" too).
                    if !self
                        .entries
                        .get(&key, now)
                        .is_some_and(|e| shows(&e.found, version))
                    {
                        self.entries.remove(&key);
                    }
                }
            }
            Change::Workspace(ws) => {
                generations.workspaces.insert(ws.clone(), (current, now));
                self.entries.remove_if(|e| {
                    e.found
                        .as_ref()
                        .is_none_or(|r| r.workspace_id() == ws.as_str())
                });
            }
            Change::All => {
                generations.all = current;
                self.entries.clear();
            }
        }
        generations.prune(now);
    }

    /// The last answer read from the database for `digest` and its age,
    /// for use while the database cannot be asked.
    pub fn get_stale(&self, digest: &Digest) -> Option<(Arc<CachedKey>, Duration)> {
        if self.lifetimes.stale.is_zero() {
            return None;
        }
        let now = Instant::now();
        let entry = self.entries.get(digest, now)?;
        let record = entry.found?;
        let age = self.entries.tick(now).saturating_sub(entry.read_at);
        let age = Duration::from_millis(age);
        (age < self.lifetimes.stale).then_some((record, age))
    }

    /// Drop expired entries (they are never answered, but hold memory).
    pub fn purge_expired(&self) {
        self.entries.purge_expired(Instant::now());
    }

    /// How many entries are cached (expired ones not yet purged included;
    /// for tests and metrics).
    pub fn len(&self) -> u64 {
        self.entries.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cache's key for a test's short digest text (as a record made
    /// with that text holds it).
    fn d(text: &str) -> Digest {
        digest_bytes(text)
    }

    fn record(id: &str, ws: &str, digest: &str) -> AuthRecord {
        at_version(id, ws, digest, 0)
    }

    fn at_version(id: &str, ws: &str, digest: &str, version: i64) -> AuthRecord {
        AuthRecord::for_test(id, ws, digest, version)
    }

    fn cache() -> KeyCache {
        KeyCache::new(1000, Duration::from_secs(600), Duration::from_secs(5))
    }

    #[tokio::test]
    async fn a_change_during_a_lookup_keeps_its_stale_answer_out() {
        let c = cache();
        let (release, wait) = tokio::sync::oneshot::channel::<()>();
        let key = d("d1");
        let lookup = c.get_or_load(&key, || async {
            wait.await.ok();
            Ok(Some(record("key_1", "ws", "d1")))
        });
        let change = async {
            tokio::task::yield_now().await;
            // The revoke commits while the lookup is reading the old row.
            c.apply(&Change::Key {
                workspace_id: "ws".into(),
                digests: vec!["d1".into()],
                version: None,
            });
            release.send(()).ok();
        };
        let (found, ()) = tokio::join!(lookup, change);
        assert!(found.unwrap().is_some(), "the caller gets what was read");
        assert!(c.get(&d("d1")).is_none(), "but it is not cached");
        // A lookup that starts after the change is cached as usual.
        c.get_or_load(&d("d1"), || async { Ok(Some(record("key_1", "ws", "d1"))) })
            .await
            .unwrap();
        assert!(c.get(&d("d1")).is_some());
    }

    fn notice(digest: &str, version: Option<i64>) -> Change {
        Change::Key {
            workspace_id: "ws".into(),
            digests: vec![digest.into()],
            version,
        }
    }

    #[tokio::test]
    async fn a_late_notice_for_what_was_read_keeps_both_copies() {
        let c = KeyCache::with_stale(
            1000,
            Duration::from_secs(600),
            Duration::from_secs(5),
            Duration::from_secs(900),
        );
        c.get_or_load(&d("d"), || async {
            Ok(Some(at_version("k", "ws", "d", 3)))
        })
        .await
        .unwrap();
        for old in [Some(3), Some(2)] {
            c.apply(&notice("d", old));
            assert!(c.get(&d("d")).is_some(), "{old:?}");
            assert!(c.get_stale(&d("d")).is_some(), "{old:?}");
        }
        c.apply(&notice("d", Some(4)));
        assert!(c.get(&d("d")).is_none(), "a newer version drops the copy");
        assert!(c.get_stale(&d("d")).is_none(), "and the outage copy");

        c.get_or_load(&d("d"), || async {
            Ok(Some(at_version("k", "ws", "d", 4)))
        })
        .await
        .unwrap();
        c.apply(&notice("d", None));
        assert!(
            c.get(&d("d")).is_none(),
            "a change of unknown version drops it"
        );
        assert!(c.get_stale(&d("d")).is_none());

        c.get_or_load(&d("gone"), || async { Ok(None) })
            .await
            .unwrap();
        c.apply(&notice("gone", Some(0)));
        assert!(
            c.get(&d("gone")).is_none(),
            "\"no such key\" shows no change"
        );
    }

    #[tokio::test]
    async fn a_lookup_during_a_notice_is_cached_only_if_it_read_that_version() {
        for (read, cached) in [(5, true), (6, true), (4, false)] {
            let c = cache();
            let (release, wait) = tokio::sync::oneshot::channel::<()>();
            let key = d("d");
            let lookup = c.get_or_load(&key, || async move {
                wait.await.ok();
                Ok(Some(at_version("k", "ws", "d", read)))
            });
            let change = async {
                tokio::task::yield_now().await;
                c.apply(&notice("d", Some(5)));
                release.send(()).ok();
            };
            let (found, ()) = tokio::join!(lookup, change);
            assert!(found.unwrap().is_some());
            assert_eq!(c.get(&d("d")).is_some(), cached, "read version {read}");
        }
    }

    #[tokio::test]
    async fn changes_drop_exactly_what_they_affect() {
        let c = cache();
        for (id, ws) in [("a", "ws1"), ("b", "ws1"), ("c", "ws2")] {
            c.get_or_load(&d(id), || async { Ok(Some(record(id, ws, id))) })
                .await
                .unwrap();
        }
        c.get_or_load(&d("unknown"), || async { Ok(None) })
            .await
            .unwrap();
        c.apply(&Change::Key {
            workspace_id: "ws1".into(),
            digests: vec!["a".into()],
            version: None,
        });
        assert!(c.get(&d("a")).is_none());
        assert!(c.get(&d("b")).is_some() && c.get(&d("c")).is_some());
        c.apply(&Change::Workspace("ws1".into()));
        assert!(c.get(&d("b")).is_none());
        assert!(
            c.get(&d("c")).is_some(),
            "other workspaces keep their entries"
        );
        c.apply(&Change::All);
        assert!(c.get(&d("c")).is_none());
    }

    #[tokio::test]
    async fn concurrent_misses_for_one_key_read_the_database_once() {
        let c = Arc::new(cache());
        let reads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let lookups = (0..20).map(|_| {
            let (c, reads) = (c.clone(), reads.clone());
            async move {
                c.get_or_load(&d("hot"), || async move {
                    reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    tokio::task::yield_now().await;
                    Ok(Some(record("key_hot", "ws", "hot")))
                })
                .await
                .unwrap()
            }
        });
        let all = futures_util::future::join_all(lookups).await;
        assert!(all.iter().all(Option::is_some));
        assert_eq!(reads.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn failures_are_not_cached() {
        let c = cache();
        let failed = c
            .get_or_load(&d("d"), || async { Err(LookupFailed("down".into())) })
            .await;
        assert_eq!(failed.err(), Some(LookupFailed("down".into())));
        assert!(c.get(&d("d")).is_none());
        let ok = c.get_or_load(&d("d"), || async { Ok(None) }).await;
        assert_eq!(ok.map(|f| f.is_none()), Ok(true));
    }
}
