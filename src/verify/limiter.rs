//! Per-key rate limits: requests per minute, with bursts up to the limit.
//!
//! Without Redis every instance keeps its own buckets, so N instances let a
//! key through N times its limit (said in the README and on the key form).
//! With `KEYWARD_REDIS_URL` the limit is shared: one Lua script per check
//! runs GCRA on Redis's clock, so all instances draw from one allowance in
//! one round trip. When Redis does not answer, checks fall back to the local
//! buckets with a warning: a down Redis must never refuse valid keys.

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::collections::HashMap;
use std::sync::Mutex;
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
}

/// A bucket untouched for a minute has refilled completely, whatever its
/// limit, so forgetting it changes nothing: this is when buckets are pruned.
const IDLE: Duration = Duration::from_secs(60);

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
        let limit_f = f64::from(limit.max(1));
        let per_sec = limit_f / 60.0;
        let mut buckets = self.lock();
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: limit_f,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_sec).min(limit_f);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(RateInfo {
                limit,
                remaining: bucket.tokens.floor() as u32,
                reset_secs: ((limit_f - bucket.tokens) / per_sec).ceil() as u64,
            })
        } else {
            Err(RetryAfter(
                (((1.0 - bucket.tokens) / per_sec).ceil() as u64).max(1),
            ))
        }
    }

    /// Forget buckets idle for a minute (full again): every key ever
    /// checked, revoked and deleted ones included, would otherwise stay.
    pub fn prune(&self, now: Instant) -> usize {
        let mut buckets = self.lock();
        buckets.retain(|_, b| now.saturating_duration_since(b.at) < IDLE);
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
        Ok(Limiter {
            local: LocalLimiter::default(),
            shared: Some(Shared {
                conn,
                script: redis::Script::new(GCRA),
                state: Mutex::new((None, None)),
            }),
        })
    }

    /// Whether limits are shared between instances.
    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// Take one request of `key` against `limit` per minute.
    pub async fn take(&self, key: &str, limit: i32) -> Result<RateInfo, RetryAfter> {
        if let Some(shared) = &self.shared
            && let Some(answer) = shared.take(key, limit).await
        {
            return answer;
        }
        self.local.take(key, limit, Instant::now())
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
