//! Counting attempts in a sliding window (sign-in and password-change
//! throttling). Pure logic: the caller passes the current time.
//!
//! An attempt is *reserved* before the slow password check runs, so a burst
//! of parallel requests cannot all pass the check before any failure is
//! recorded: at most `limit` attempts per key are ever evaluated within a
//! window, however many arrive at once. A successful attempt gives its slot
//! back ([`Throttle::refund`]) or clears the key ([`Throttle::clear`]).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most keys tracked at once. Beyond it, keys with no attempt inside the
/// window are dropped first; if a spray of distinct keys still fills it,
/// the oldest half goes (their attempts are forgotten early, which only
/// ever lets a little more through, never blocks anyone wrongly).
const MAX_KEYS: usize = 100_000;

/// Longest key kept; longer ones (a 256 KiB "email") are cut, so memory
/// per entry stays bounded.
const MAX_KEY_LEN: usize = 320;

/// Recoverable keys' secrets shown again per person or management key
/// (issue 27): a bound on how fast stored secrets can be collected.
pub const REVEALS_PER_WINDOW: usize = 20;
/// The window of [`REVEALS_PER_WINDOW`].
pub const REVEAL_WINDOW: Duration = Duration::from_secs(15 * 60);

/// Public leak reports accepted per client address within
/// [`LEAK_REPORT_WINDOW`] (issue 25).
pub const LEAK_REPORTS_PER_WINDOW: usize = 10;
/// The window of the public leak reports' rate limit.
pub const LEAK_REPORT_WINDOW: Duration = Duration::from_secs(10 * 60);

/// At most `limit` attempts per key within `window`.
#[derive(Debug)]
pub struct Throttle {
    limit: usize,
    window: Duration,
    attempts: Mutex<HashMap<String, VecDeque<Instant>>>,
}

/// A reserved attempt; give it back with [`Throttle::refund`] when the
/// attempt turns out not to count (it succeeded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct Reservation(Instant);

fn bounded(key: &str) -> &str {
    match key.char_indices().nth(MAX_KEY_LEN) {
        Some((cut, _)) => &key[..cut],
        None => key,
    }
}

impl Throttle {
    pub fn new(limit: usize, window: Duration) -> Self {
        Throttle {
            limit,
            window,
            attempts: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, VecDeque<Instant>>> {
        // A panic while holding the lock leaves only counters behind.
        self.attempts.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn prune(&self, times: &mut VecDeque<Instant>, now: Instant) {
        while times
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= self.window)
        {
            times.pop_front();
        }
    }

    fn bound_memory(&self, map: &mut HashMap<String, VecDeque<Instant>>, now: Instant) {
        if map.len() < MAX_KEYS {
            return;
        }
        let window = self.window;
        map.retain(|_, t| {
            t.back()
                .is_some_and(|last| now.saturating_duration_since(*last) < window)
        });
        if map.len() >= MAX_KEYS {
            let mut newest: Vec<(Instant, String)> = map
                .iter()
                .map(|(k, t)| (t.back().copied().unwrap_or(now), k.clone()))
                .collect();
            newest.sort_unstable();
            for (_, k) in newest.into_iter().take(MAX_KEYS / 2) {
                map.remove(&k);
            }
        }
    }

    /// Count an attempt for `key` if it has one left; otherwise `Err(wait)`,
    /// where `wait` is how long until the oldest attempt leaves the window.
    /// Checking and counting happen under one lock, so concurrent callers
    /// can never together take more than `limit`.
    pub fn reserve(&self, key: &str, now: Instant) -> Result<Reservation, Duration> {
        let key = bounded(key);
        let mut map = self.lock();
        if let Some(times) = map.get_mut(key) {
            self.prune(times, now);
            if times.len() >= self.limit {
                let oldest = times.front().copied().unwrap_or(now);
                return Err(self
                    .window
                    .saturating_sub(now.saturating_duration_since(oldest))
                    .max(Duration::from_secs(1)));
            }
            times.push_back(now);
            return Ok(Reservation(now));
        }
        self.bound_memory(&mut map, now);
        map.insert(key.to_owned(), VecDeque::from([now]));
        Ok(Reservation(now))
    }

    /// Give a reserved attempt back (it succeeded and should not count).
    pub fn refund(&self, key: &str, reservation: Reservation) {
        let key = bounded(key);
        let mut map = self.lock();
        if let Some(times) = map.get_mut(key) {
            if let Some(pos) = times.iter().rposition(|t| *t == reservation.0) {
                times.remove(pos);
            }
            if times.is_empty() {
                map.remove(key);
            }
        }
    }

    /// Forget every attempt of `key` (after a successful sign-in).
    pub fn clear(&self, key: &str) {
        self.lock().remove(bounded(key));
    }

    /// How many keys are tracked (for tests of the memory bound).
    pub fn tracked(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_limit_until_window_passes() {
        let t = Throttle::new(3, Duration::from_secs(60));
        let start = Instant::now();
        for i in 0..3 {
            assert!(t.reserve("a", start + Duration::from_secs(i)).is_ok());
        }
        let wait = t.reserve("a", start + Duration::from_secs(10)).unwrap_err();
        assert_eq!(wait, Duration::from_secs(50));
        assert!(t.reserve("b", start).is_ok(), "other keys are unaffected");
        // The first attempt leaves the window after 60 s.
        assert!(t.reserve("a", start + Duration::from_secs(60)).is_ok());
        assert!(t.reserve("a", start + Duration::from_secs(60)).is_err());
        t.clear("a");
        assert!(t.reserve("a", start + Duration::from_secs(61)).is_ok());
    }

    #[test]
    fn a_refunded_attempt_does_not_count() {
        let t = Throttle::new(2, Duration::from_secs(60));
        let now = Instant::now();
        let first = t.reserve("a", now).unwrap();
        t.refund("a", first);
        assert_eq!(t.tracked(), 0, "an empty entry is removed");
        let _ = t.reserve("a", now).unwrap();
        let second = t.reserve("a", now).unwrap();
        assert!(t.reserve("a", now).is_err());
        t.refund("a", second);
        assert!(t.reserve("a", now).is_ok());
    }

    #[test]
    fn concurrent_reservations_never_exceed_the_limit() {
        let t = std::sync::Arc::new(Throttle::new(5, Duration::from_secs(900)));
        let now = Instant::now();
        let granted: usize = (0..40)
            .map(|_| {
                let t = t.clone();
                std::thread::spawn(move || t.reserve("victim", now).is_ok())
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| usize::from(h.join().unwrap()))
            .sum();
        assert_eq!(granted, 5);
    }

    #[test]
    fn memory_stays_bounded_under_a_spray_of_keys() {
        let t = Throttle::new(5, Duration::from_secs(900));
        let now = Instant::now();
        for i in 0..(MAX_KEYS + 10) {
            let _ = t.reserve(&format!("user{i}@example.com"), now);
        }
        assert!(t.tracked() <= MAX_KEYS, "{} keys tracked", t.tracked());
        let long = "x".repeat(300_000);
        let _ = t.reserve(&long, now);
        assert!(t.reserve(&long[..MAX_KEY_LEN], now).is_ok());
        assert!(
            t.lock().keys().all(|k| k.len() <= MAX_KEY_LEN),
            "keys are cut to a bounded length"
        );
    }
}
