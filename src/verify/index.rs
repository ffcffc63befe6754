//! Which digests exist, in memory, so that a made-up key costs what a
//! malformed one costs.
//!
//! Anyone can mint well-formed keys (the checksum is public), and each used
//! to cost a database lookup: a flood of them took most real traffic down.
//! The index holds the first 8 bytes of every key's current and previous
//! digest (about 16 MB per million keys with the set's overhead). It is
//! loaded at start, grows with every change the feed reports (creations and
//! regenerations carry the new digest), and is reloaded whenever the feed
//! reconnects. A digest absent from it is refused without the database,
//! except for a small per-instance budget of lookups on PostgreSQL, which
//! covers a key created on another instance whose notification has not
//! arrived yet.

use hashbrown::HashSet;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};

use super::shards::Digest;
pub use crate::domain::keys::digest_prefix as prefix;

/// The set of known digest prefixes.
#[derive(Default)]
pub struct DigestIndex {
    set: RwLock<HashSet<u64>>,
    /// Whether the set is complete (loaded, and kept by the feed).
    trusted: AtomicBool,
}

impl DigestIndex {
    /// Replace the whole set (at start, and after the feed reconnects) with
    /// these digest prefixes (see [`prefix`]).
    pub fn load(&self, prefixes: impl IntoIterator<Item = u64>) {
        let set: HashSet<u64> = prefixes.into_iter().collect();
        *self.set.write().unwrap_or_else(|e| e.into_inner()) = set;
        self.trusted.store(true, Ordering::SeqCst);
    }

    /// Add digests that now exist.
    pub fn add<'a>(&self, digests: impl IntoIterator<Item = &'a String>) {
        let mut set = self.set.write().unwrap_or_else(|e| e.into_inner());
        set.extend(digests.into_iter().filter_map(|d| prefix(d)));
    }

    /// Stop trusting the set until the next [`DigestIndex::load`] (the feed
    /// lost its connection, so creations elsewhere may be missing).
    pub fn distrust(&self) {
        self.trusted.store(false, Ordering::SeqCst);
    }

    /// `Some(false)` when no key can have this digest; `None` when the set
    /// cannot tell (not loaded or not trusted).
    pub fn may_exist(&self, digest: &Digest) -> Option<bool> {
        if !self.trusted.load(Ordering::SeqCst) {
            return None;
        }
        // The first 8 bytes, as [`prefix`] reads their 16 hex digits.
        let p = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
        Some(
            self.set
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&p),
        )
    }

    /// Digest prefixes held.
    pub fn len(&self) -> usize {
        self.set.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::keys::digest_bytes;

    #[test]
    fn answers_only_once_loaded_and_grows_with_changes() {
        let i = DigestIndex::default();
        let a = "0123456789abcdef".repeat(4);
        let b = "fedcba9876543210".repeat(4);
        let (a_bytes, b_bytes) = (digest_bytes(&a), digest_bytes(&b));
        assert_eq!(i.may_exist(&a_bytes), None, "unknown until loaded");
        i.load(prefix(&a));
        assert_eq!(i.may_exist(&a_bytes), Some(true));
        assert_eq!(i.may_exist(&b_bytes), Some(false));
        // Only the first 8 bytes are held.
        let mut near_a = a_bytes;
        near_a[8] ^= 1;
        assert_eq!(i.may_exist(&near_a), Some(true));
        near_a[7] ^= 1;
        assert_eq!(i.may_exist(&near_a), Some(false));
        i.add([&b]);
        assert_eq!(i.may_exist(&b_bytes), Some(true));
        i.distrust();
        assert_eq!(i.may_exist(&b_bytes), None);
    }
}
