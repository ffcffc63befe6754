//! The key cache's map: digests to values with an expiry each, split into
//! shards under their own locks, holding at most a fixed number of entries.
//!
//! It replaces a general-purpose cache (moka) that kept a frequency sketch
//! and access-order queues, updated on every read: with checks rotating
//! over 10k keys that bookkeeping was a third of a check's misses in a
//! 1 MB cache, against almost none for one hot key. The change feed keeps
//! the entries exact, so the cache needs no clever eviction: a read is one
//! hash, one shard lock and one probe; a full shard first drops its expired
//! entries, then an arbitrary eighth of the others.

use hashbrown::HashTable;
use std::hash::BuildHasher;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Instant;

/// A key of the map: a digest's 32 bytes (half of its hex text, and no
/// allocation of its own).
pub type Digest = [u8; 32];

/// Enough shards that two cores rarely wait for the same lock.
const SHARDS: usize = 64;

/// An entry: 32 bytes of key, the value, and its expiry in milliseconds
/// since the map was made (8 bytes rather than an `Instant`'s 16).
///
/// Aligned to a cache line: with the key cache's values a slot is exactly
/// 64 bytes, and a lookup reads all of it (key, value, expiry). Unaligned,
/// most slots straddled two lines, one more miss per check when rotating
/// over more keys than the cache holds close (callgrind's cache simulation:
/// see docs/benchmarks.md); aligned, the same memory, one line.
#[repr(align(64))]
struct Slot<V> {
    key: Digest,
    value: V,
    until: u64,
}

type Shard<V> = RwLock<HashTable<Slot<V>>>;

/// The map. Values are cloned out (an `Option<Arc<…>>` in practice).
pub struct ExpiringMap<V> {
    shards: Box<[Shard<V>]>,
    per_shard: usize,
    hasher: hashbrown::DefaultHashBuilder,
    /// Times are kept as milliseconds since this instant.
    base: Instant,
}

impl<V: Clone> ExpiringMap<V> {
    /// A map of at most `capacity` entries (rounded up to a multiple of the
    /// shard count).
    pub fn new(capacity: u64) -> Self {
        let capacity = usize::try_from(capacity).unwrap_or(usize::MAX);
        ExpiringMap {
            shards: (0..SHARDS).map(|_| RwLock::default()).collect(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
            hasher: hashbrown::DefaultHashBuilder::default(),
            base: Instant::now(),
        }
    }

    /// `t` as milliseconds since the map was made (0 before).
    pub fn tick(&self, t: Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.base).as_millis()).unwrap_or(u64::MAX)
    }

    fn shard(&self, hash: u64) -> &Shard<V> {
        // The high bits pick the shard; the table uses the low ones.
        &self.shards[(hash >> 58) as usize % SHARDS]
    }

    fn read(shard: &Shard<V>) -> RwLockReadGuard<'_, HashTable<Slot<V>>> {
        shard.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(shard: &Shard<V>) -> RwLockWriteGuard<'_, HashTable<Slot<V>>> {
        shard.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The value for `key` if it has not expired at `now`.
    pub fn get(&self, key: &Digest, now: Instant) -> Option<V> {
        let hash = self.hasher.hash_one(key);
        let now = self.tick(now);
        let table = Self::read(self.shard(hash));
        table
            .find(hash, |s| s.key == *key)
            .filter(|s| s.until > now)
            .map(|s| s.value.clone())
    }

    /// Set `key` to `value` until `until`.
    pub fn insert(&self, key: &Digest, value: V, until: Instant, now: Instant) {
        let hash = self.hasher.hash_one(key);
        let (until, now) = (self.tick(until), self.tick(now));
        let mut table = Self::write(self.shard(hash));
        if let Some(slot) = table.find_mut(hash, |s| s.key == *key) {
            slot.value = value;
            slot.until = until;
            return;
        }
        if table.len() >= self.per_shard {
            table.retain(|s| s.until > now);
            if table.len() >= self.per_shard {
                // Which ones matters little (see the module comment); an
                // eighth at once keeps a full shard from paying a pass over
                // it on every insert.
                let mut to_drop = table.len() / 8 + 1;
                table.retain(|_| {
                    if to_drop == 0 {
                        return true;
                    }
                    to_drop -= 1;
                    false
                });
            }
        }
        let hasher = &self.hasher;
        table.insert_unique(
            hash,
            Slot {
                key: *key,
                value,
                until,
            },
            |s| hasher.hash_one(s.key),
        );
    }

    /// Forget `key`.
    pub fn remove(&self, key: &Digest) {
        let hash = self.hasher.hash_one(key);
        let mut table = Self::write(self.shard(hash));
        if let Ok(entry) = table.find_entry(hash, |s| s.key == *key) {
            entry.remove();
        }
    }

    /// Forget every entry whose value `drop` picks.
    pub fn remove_if(&self, drop: impl Fn(&V) -> bool) {
        for shard in &self.shards {
            Self::write(shard).retain(|s| !drop(&s.value));
        }
    }

    /// Forget everything.
    pub fn clear(&self) {
        for shard in &self.shards {
            Self::write(shard).clear();
        }
    }

    /// Forget entries expired at `now`: nothing reads them, but they would
    /// hold memory until their shard fills.
    pub fn purge_expired(&self, now: Instant) {
        let now = self.tick(now);
        for shard in &self.shards {
            Self::write(shard).retain(|s| s.until > now);
        }
    }

    /// Entries held, expired ones not yet dropped included.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| Self::read(s).len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn d(name: &str) -> Digest {
        let mut key = [0u8; 32];
        key[..name.len()].copy_from_slice(name.as_bytes());
        key
    }

    #[test]
    fn entries_expire_and_go_exactly() {
        let m = ExpiringMap::new(100);
        let now = Instant::now();
        m.insert(&d("a"), 1, now + Duration::from_secs(5), now);
        m.insert(&d("b"), 2, now + Duration::from_secs(1), now);
        assert_eq!(m.get(&d("a"), now), Some(1));
        assert_eq!(
            m.get(&d("b"), now + Duration::from_secs(2)),
            None,
            "expired"
        );
        m.insert(&d("a"), 3, now + Duration::from_secs(5), now);
        assert_eq!((m.get(&d("a"), now), m.len()), (Some(3), 2), "replaced");
        m.remove(&d("a"));
        assert_eq!(m.get(&d("a"), now), None);
        m.insert(&d("c"), 4, now + Duration::from_secs(5), now);
        m.remove_if(|v| *v == 4);
        assert_eq!(m.get(&d("c"), now), None);
        m.purge_expired(now + Duration::from_secs(2));
        assert!(m.is_empty(), "b was expired");
    }

    #[test]
    fn it_never_holds_more_than_its_capacity() {
        let m = ExpiringMap::new(640);
        let now = Instant::now();
        let later = now + Duration::from_secs(60);
        for i in 0..10_000 {
            m.insert(&d(&format!("{i:032x}")), i, later, now);
            assert!(m.len() <= 640);
        }
        // The newest entry is always kept.
        assert_eq!(m.get(&d(&format!("{:032x}", 9_999)), now), Some(9_999));
        // A capacity below the shard count still holds one entry a shard.
        let m = ExpiringMap::new(1);
        for i in 0..1000 {
            m.insert(&d(&format!("{i}")), i, later, now);
        }
        assert!(m.len() <= 64);
        m.clear();
        assert!(m.is_empty());
    }
}
