//! Counting failed attempts in a sliding window (sign-in throttling).
//! Pure logic: the caller passes the current time.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// At most `limit` failures per key within `window`.
#[derive(Debug)]
pub struct Throttle {
    limit: usize,
    window: Duration,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl Throttle {
    pub fn new(limit: usize, window: Duration) -> Self {
        Throttle {
            limit,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, VecDeque<Instant>>> {
        // A panic while holding the lock leaves only counters behind.
        self.failures.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `Err(wait)` when `key` has used up its failures; `wait` is how long
    /// until the oldest one falls out of the window.
    pub fn check(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let mut map = self.lock();
        let Some(times) = map.get_mut(key) else {
            return Ok(());
        };
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            times.pop_front();
        }
        if times.len() >= self.limit {
            let oldest = times.front().copied().unwrap_or(now);
            return Err(self.window.saturating_sub(now.duration_since(oldest)));
        }
        Ok(())
    }

    /// Count a failure for `key`.
    pub fn record(&self, key: &str, now: Instant) {
        let mut map = self.lock();
        if map.len() > 100_000 {
            // Bound memory under a spray of distinct keys: drop idle entries.
            let window = self.window;
            map.retain(|_, t| {
                t.back()
                    .is_some_and(|last| now.duration_since(*last) < window)
            });
        }
        let times = map.entry(key.to_owned()).or_default();
        times.push_back(now);
        while times.len() > self.limit {
            times.pop_front();
        }
    }

    /// Forget `key`'s failures (after a successful sign-in).
    pub fn clear(&self, key: &str) {
        self.lock().remove(key);
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
            assert!(t.check("a", start).is_ok());
            t.record("a", start + Duration::from_secs(i));
        }
        let wait = t.check("a", start + Duration::from_secs(10)).unwrap_err();
        assert_eq!(wait, Duration::from_secs(50));
        assert!(t.check("b", start).is_ok(), "other keys are unaffected");
        assert!(t.check("a", start + Duration::from_secs(60)).is_ok());
        t.record("a", start);
        t.clear("a");
        assert!(t.check("a", start).is_ok());
    }
}
