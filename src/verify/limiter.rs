//! Per-key rate limits: requests per minute, with bursts up to the limit.
//!
//! Without Redis every instance keeps its own buckets, so N instances let a
//! key through N times its limit (said in the README and on the key form).
//! With `KEYWARD_REDIS_URL` the limit is shared: one Lua script per check
//! runs GCRA on Redis's clock, so all instances draw from one allowance in
//! one round trip. When Redis does not answer, checks fall back to the local
//! buckets with a warning: a down Redis must never refuse valid keys.
//!
//! The local buckets of that fallback hold each instance's share of the
//! limit, not all of it: every instance notes itself in Redis every
//! [`HEARTBEAT`] and reads how many instances did so lately (N, the last
//! count it read before Redis went away). With Redis away a key then gets
//! at most `limit / N` per minute on each instance, with bursts of
//! `max(1, limit / N)`: `limit` per minute in all, as with Redis (see
//! `docs/operations-rate-limits.md` for the bound and its edges).

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Rate-limit state after an accepted request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateInfo {
    pub limit: i32,
    pub remaining: u32,
    /// Seconds until the allowance is full again.
    pub reset_secs: u64,
}

/// A refused request: how many seconds to wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub u64);

/// A token bucket per key, refilled smoothly at `limit` per minute.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
    /// When it will be full again if untouched: forgetting it from then on
    /// changes nothing, so this is when it may be pruned. (A minute for a
    /// whole limit; longer for a share below one request a minute.)
    full_at: Instant,
}

/// The per-instance limiter.
#[derive(Debug, Default)]
pub struct LocalLimiter {
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl LocalLimiter {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Bucket>> {
        self.buckets.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Take one request from `key`'s bucket at `now`.
    pub fn take(&self, key: &str, limit: i32, now: Instant) -> Result<RateInfo, RetryAfter> {
        self.take_share(key, limit, 1, now)
    }

    /// Take one request from `key`'s bucket at `now`, the bucket holding
    /// this instance's share of `limit` when `instances` share it: it
    /// refills at `limit / instances` per minute and holds at most
    /// `max(1, limit / instances)` (at least one request, or a key limited
    /// below the number of instances would never pass).
    pub fn take_share(
        &self,
        key: &str,
        limit: i32,
        instances: u32,
        now: Instant,
    ) -> Result<RateInfo, RetryAfter> {
        let share = f64::from(limit.max(1)) / f64::from(instances.max(1));
        let capacity = share.max(1.0);
        let per_sec = share / 60.0;
        let mut buckets = self.lock();
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: capacity,
            at: now,
            full_at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_sec).min(capacity);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            bucket.full_at = now + Duration::from_secs_f64((capacity - bucket.tokens) / per_sec);
            Ok(RateInfo {
                limit,
                remaining: bucket.tokens.floor() as u32,
                reset_secs: ((capacity - bucket.tokens) / per_sec).ceil() as u64,
            })
        } else {
            Err(RetryAfter(
                (((1.0 - bucket.tokens) / per_sec).ceil() as u64).max(1),
            ))
        }
    }

    /// Forget buckets that are full again: every key ever checked, revoked
    /// and deleted ones included, would otherwise stay.
    pub fn prune(&self, now: Instant) -> usize {
        let mut buckets = self.lock();
        buckets.retain(|_, b| now < b.full_at);
        buckets.len()
    }

    /// How many buckets are held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// GCRA on Redis's own clock (so instances' clocks need not agree): the
/// key holds the "theoretical arrival time" in microseconds. A burst of up
/// to `limit` passes at once, then one request per `60 s / limit`.
/// Returns `{1, remaining, reset_secs}` or `{0, retry_after_secs, 0}`.
const GCRA: &str = r"
local limit = tonumber(ARGV[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = 60000000 / limit
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - interval * limit
if now < allow_at then
  return {0, math.max(1, math.ceil((allow_at - now) / 1000000)), 0}
end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1000)
return {1, math.floor((now - allow_at) / interval), math.ceil((new_tat - now) / 1000000)}
";

/// Each instance notes itself (`ARGV[1]`) in a sorted set scored by
/// Redis's clock in milliseconds, forgets members not seen for `ARGV[2]`
/// ms, and returns how many remain: the instances sharing the limits.
const HEARTBEAT_SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('PEXPIRE', KEYS[1], window)
return redis.call('ZCARD', KEYS[1])
";

/// The sorted set of live instances.
const INSTANCES_KEY: &str = "keyward:instances";
/// How often an instance notes itself in Redis.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// An instance not seen for this long no longer counts: a few missed
/// heartbeats, so a busy instance is not forgotten, while one that stopped
/// leaves the count (until then the others' shares are smaller, which is
/// stricter, never looser).
const INSTANCE_WINDOW: Duration = Duration::from_secs(15);

/// How long a check waits for Redis before using the local buckets.
const REDIS_TIMEOUT: Duration = Duration::from_millis(250);
/// After Redis failed, how long to use the local buckets before trying it
/// again (so a down Redis does not cost every request a timeout).
const REDIS_BACKOFF: Duration = Duration::from_secs(1);
/// At most one warning about Redis per this interval.
const WARN_EVERY: Duration = Duration::from_secs(10);

struct Shared {
    conn: ConnectionManager,
    script: redis::Script,
    /// Until when Redis is skipped after a failure, and when we last warned.
    state: Mutex<(Option<Instant>, Option<Instant>)>,
}

/// Rate limiting for key checks: shared through Redis when configured,
/// per instance otherwise.
pub struct Limiter {
    local: LocalLimiter,
    shared: Option<Shared>,
    /// How many instances shared Redis when it last answered a heartbeat
    /// (1 until it has): the local buckets hold this instance's share.
    instances: Arc<AtomicU32>,
}

/// Errors at start-up.
#[derive(Debug, thiserror::Error)]
#[error("KEYWARD_REDIS_URL is not a valid Redis URL: {0}")]
pub struct LimiterError(String);

impl Limiter {
    /// A limiter for this process only.
    pub fn local() -> Self {
        Limiter {
            local: LocalLimiter::default(),
            shared: None,
            instances: Arc::new(AtomicU32::new(1)),
        }
    }

    /// A limiter shared through Redis at `url`. The connection is made
    /// lazily (a Redis that is down at start-up is only warned about), and
    /// re-made in the background when it breaks. Must be called inside a
    /// Tokio runtime.
    pub fn with_redis(url: &str) -> Result<Self, LimiterError> {
        let client = redis::Client::open(url).map_err(|e| LimiterError(e.to_string()))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let conn = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| LimiterError(e.to_string()))?;
        let instances = Arc::new(AtomicU32::new(1));
        tokio::spawn(heartbeat(conn.clone(), Arc::downgrade(&instances)));
        Ok(Limiter {
            local: LocalLimiter::default(),
            shared: Some(Shared {
                conn,
                script: redis::Script::new(GCRA),
                state: Mutex::new((None, None)),
            }),
            instances,
        })
    }

    /// How many instances share the limits, as last counted in Redis (1
    /// without Redis, or before it first answered).
    pub fn sharing_instances(&self) -> u32 {
        self.instances.load(Ordering::Relaxed)
    }

    /// Whether limits are shared between instances.
    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// Take one request of `key` against `limit` per minute.
    pub async fn take(&self, key: &str, limit: i32) -> Result<RateInfo, RetryAfter> {
        // Boxed: a Redis call's state would otherwise be part of every
        // check's future (see `Verifier::lookup`).
        if let Some(shared) = &self.shared
            && let Some(answer) = Box::pin(shared.take(key, limit)).await
        {
            return answer;
        }
        self.local
            .take_share(key, limit, self.sharing_instances(), Instant::now())
    }

    /// Drop idle local buckets; returns how many remain.
    pub fn prune(&self) -> usize {
        self.local.prune(Instant::now())
    }

    /// Local buckets held (for tests of the bound).
    pub fn local_buckets(&self) -> usize {
        self.local.len()
    }
}

/// Note this instance in Redis every [`HEARTBEAT`] and keep the count of
/// live instances in `instances`, until the limiter is dropped. While Redis
/// does not answer, the last count stays: it is the best knowledge of how
/// many instances now fall back to their own buckets.
async fn heartbeat(conn: ConnectionManager, instances: std::sync::Weak<AtomicU32>) {
    let me = crate::domain::ids::new_token();
    let script = redis::Script::new(HEARTBEAT_SCRIPT);
    let window = u64::try_from(INSTANCE_WINDOW.as_millis()).unwrap_or(u64::MAX);
    let mut tick = tokio::time::interval(HEARTBEAT);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(instances) = instances.upgrade() else {
            return;
        };
        let mut conn = conn.clone();
        let mut call = script.key(INSTANCES_KEY);
        call.arg(&me).arg(window);
        if let Ok(Ok(n)) =
            tokio::time::timeout(REDIS_TIMEOUT, call.invoke_async::<u32>(&mut conn)).await
        {
            instances.store(n.max(1), Ordering::Relaxed);
        }
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, (Option<Instant>, Option<Instant>)> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The shared answer, or `None` when Redis cannot give one now.
    async fn take(&self, key: &str, limit: i32) -> Option<Result<RateInfo, RetryAfter>> {
        if self.lock().0.is_some_and(|until| Instant::now() < until) {
            return None;
        }
        let mut conn = self.conn.clone();
        let mut call = self.script.key(format!("keyward:rate:{key}"));
        call.arg(limit.max(1));
        let result: Result<(i64, i64, i64), String> =
            match tokio::time::timeout(REDIS_TIMEOUT, call.invoke_async(&mut conn)).await {
                Ok(Ok(v)) => Ok(v),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("no answer within 250 ms".into()),
            };
        match result {
            Ok((1, remaining, reset)) => {
                self.lock().0 = None;
                Some(Ok(RateInfo {
                    limit,
                    remaining: u32::try_from(remaining.max(0)).unwrap_or(u32::MAX),
                    reset_secs: u64::try_from(reset.max(0)).unwrap_or(0),
                }))
            }
            Ok((_, retry, _)) => {
                self.lock().0 = None;
                Some(Err(RetryAfter(u64::try_from(retry.max(1)).unwrap_or(1))))
            }
            Err(e) => {
                let now = Instant::now();
                let mut state = self.lock();
                state.0 = Some(now + REDIS_BACKOFF);
                if state
                    .1
                    .is_none_or(|last| now.duration_since(last) >= WARN_EVERY)
                {
                    state.1 = Some(now);
                    tracing::warn!(error = %e, "Redis is not answering: rate limits are per instance until it is back");
                }
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_a_burst_then_the_steady_rate() {
        let l = LocalLimiter::default();
        let t0 = Instant::now();
        for i in 0..3 {
            let info = l.take("k", 3, t0).unwrap();
            assert_eq!(info.remaining, 2 - i);
        }
        assert_eq!(l.take("k", 3, t0), Err(RetryAfter(20)));
        assert!(l.take("k", 3, t0 + Duration::from_secs(20)).is_ok());
        assert!(l.take("other", 3, t0).is_ok(), "keys are separate");
    }

    #[test]
    fn a_shared_bucket_holds_this_instances_share() {
        let l = LocalLimiter::default();
        let t0 = Instant::now();
        // 60 a minute shared by 3 instances: 20 at once, then one every 3 s.
        let passed = (0..60)
            .filter(|_| l.take_share("k", 60, 3, t0).is_ok())
            .count();
        assert_eq!(passed, 20);
        assert_eq!(l.take_share("k", 60, 3, t0), Err(RetryAfter(3)));
        assert!(
            l.take_share("k", 60, 3, t0 + Duration::from_secs(3))
                .is_ok()
        );
        // A limit below the number of instances still lets one through,
        // then one per instances/limit minutes.
        assert!(l.take_share("small", 2, 4, t0).is_ok());
        assert_eq!(l.take_share("small", 2, 4, t0), Err(RetryAfter(120)));
        // Pruning waits until that slow bucket is full again.
        l.prune(t0 + Duration::from_secs(61));
        assert!(
            l.take_share("small", 2, 4, t0 + Duration::from_secs(61))
                .is_err()
        );
    }

    #[test]
    fn idle_buckets_are_pruned_without_changing_any_answer() {
        let l = LocalLimiter::default();
        let t0 = Instant::now();
        for i in 0..1000 {
            let _ = l.take(&format!("k{i}"), 5, t0);
        }
        let _ = l.take("busy", 1, t0 + Duration::from_secs(59));
        assert_eq!(l.prune(t0 + Duration::from_secs(60)), 1);
        // A pruned key starts again with a full bucket, as it would have had.
        assert_eq!(
            l.take("k1", 5, t0 + Duration::from_secs(61))
                .unwrap()
                .remaining,
            4
        );
    }
}
