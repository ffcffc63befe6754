//! Checking a presented key: the hot path. At most one indexed database
//! read per request (none when cached), no password hashing, no write: "last
//! used" times are coalesced in memory and written in batches.

use crate::db::keys::{self, AuthRecord};
use crate::db::{self, Pool};
use crate::domain::keys::{Environment, parse};
use crate::web::AppState;
use actix_web::http::StatusCode;
use actix_web::web;
use chrono::NaiveDateTime;
use moka::sync::Cache;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a looked-up key is trusted without asking the database again.
/// Changes made through this instance invalidate the cache at once; this
/// bounds how late another instance sharing the database notices them.
pub const CACHE_TTL: Duration = Duration::from_secs(5);

/// Why a key was refused: stable codes for machines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    MissingKey,
    Malformed,
    NotFound,
    ApiKeysDisabled,
    Revoked,
    Disabled,
    Expired,
    EnvironmentMismatch,
    InsufficientPermission,
    ResourceNotAllowed,
    RateLimited,
    Unavailable,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::MissingKey => "MISSING_KEY",
            Code::Malformed => "MALFORMED",
            Code::NotFound => "NOT_FOUND",
            Code::ApiKeysDisabled => "API_KEYS_DISABLED",
            Code::Revoked => "REVOKED",
            Code::Disabled => "DISABLED",
            Code::Expired => "EXPIRED",
            Code::EnvironmentMismatch => "ENVIRONMENT_MISMATCH",
            Code::InsufficientPermission => "INSUFFICIENT_PERMISSION",
            Code::ResourceNotAllowed => "RESOURCE_NOT_ALLOWED",
            Code::RateLimited => "RATE_LIMITED",
            Code::Unavailable => "UNAVAILABLE",
        }
    }

    /// The HTTP status on `/api/v1/me`.
    pub fn status(self) -> StatusCode {
        match self {
            Code::InsufficientPermission | Code::ResourceNotAllowed => StatusCode::FORBIDDEN,
            Code::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::UNAUTHORIZED,
        }
    }
}

/// What the caller requires of the key, beyond being valid.
#[derive(Debug, Clone, Default)]
pub struct Requirements {
    pub environment: Option<String>,
    pub permission: Option<String>,
    pub resource: Option<String>,
}

/// Rate-limit state after an accepted request.
#[derive(Debug, Clone, Copy)]
pub struct RateInfo {
    pub limit: i32,
    pub remaining: u32,
    pub reset_secs: u64,
}

/// A key that passed every check.
#[derive(Debug, Clone)]
pub struct Verified {
    pub record: Arc<AuthRecord>,
    pub rate: Option<RateInfo>,
}

/// A refusal: code, a message telling the user what to do, and what was
/// learnt about the key.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub code: Code,
    pub message: String,
    pub retry_after_secs: Option<u64>,
    pub limit: Option<i32>,
    /// The key, when it was identified (for `verify`'s answer).
    pub identified: Option<Verified>,
}

impl Outcome {
    fn new(code: Code, message: impl Into<String>) -> Self {
        Outcome {
            code,
            message: message.into(),
            retry_after_secs: None,
            limit: None,
            identified: None,
        }
    }

    fn about(mut self, record: &Arc<AuthRecord>) -> Self {
        self.identified = Some(Verified {
            record: record.clone(),
            rate: None,
        });
        self
    }

    /// An `Authorization` header with characters no key has.
    pub fn malformed_header() -> Self {
        Outcome::new(
            Code::Malformed,
            "The Authorization header holds characters that no keyward key has. Send \"Authorization: Bearer sk_live_…\" with the key exactly as it was shown.",
        )
    }

    /// No `Authorization: Bearer` header.
    pub fn missing() -> Self {
        Outcome::new(
            Code::MissingKey,
            "Send your API key in the Authorization header: \"Authorization: Bearer sk_live_…\".",
        )
    }
}

/// A token bucket per key: `limit` requests per minute, refilled smoothly,
/// so bursts up to the limit pass and a steady rate above it does not.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Key checking with its cache, rate limiter and last-used buffer.
pub struct KeyService {
    cache: Cache<String, Option<Arc<AuthRecord>>>,
    buckets: Mutex<HashMap<String, Bucket>>,
    last_used: Mutex<HashMap<String, NaiveDateTime>>,
    /// Verifications per (key, workspace, hour, outcome) not yet written.
    usage: Mutex<HashMap<UsageKey, i64>>,
}

type UsageKey = (String, String, NaiveDateTime, &'static str);

/// The start of the hour `t` falls in.
pub fn hour_of(t: NaiveDateTime) -> NaiveDateTime {
    use chrono::Timelike;
    t.date().and_hms_opt(t.hour(), 0, 0).unwrap_or(t)
}

impl Default for KeyService {
    fn default() -> Self {
        KeyService::new()
    }
}

fn fmt_time(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

impl KeyService {
    pub fn new() -> Self {
        KeyService {
            cache: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(CACHE_TTL)
                .build(),
            buckets: Mutex::new(HashMap::new()),
            last_used: Mutex::new(HashMap::new()),
            usage: Mutex::new(HashMap::new()),
        }
    }

    /// Forget every cached key. Called after any change to keys or to a
    /// workspace's API-key switch; changes are rare next to checks.
    pub fn invalidate(&self) {
        self.cache.invalidate_all();
    }

    async fn lookup(
        &self,
        state: &web::Data<AppState>,
        digest: &str,
    ) -> Result<Option<Arc<AuthRecord>>, Outcome> {
        if let Some(hit) = self.cache.get(digest) {
            return Ok(hit);
        }
        let pool = state.pool.clone();
        let lookup = digest.to_owned();
        let found = web::block(move || -> Result<_, String> {
            let mut conn = pool.get().map_err(|e| e.to_string())?;
            keys::find_for_auth(&mut conn, &lookup).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r)
        .map_err(|e| {
            tracing::error!(error = %e, "key lookup failed");
            Outcome::new(
                Code::Unavailable,
                "Keys cannot be checked right now. Retry in a moment.",
            )
        })?;
        let found = found.map(Arc::new);
        self.cache.insert(digest.to_owned(), found.clone());
        Ok(found)
    }

    /// Check a key and count the outcome for the key's usage statistics
    /// (only for keys that were identified).
    pub async fn verify(
        &self,
        state: &web::Data<AppState>,
        raw: &str,
        req: &Requirements,
    ) -> Result<Verified, Outcome> {
        let result = self.check(state, raw, req).await;
        let counted = match &result {
            Ok(v) => Some((&v.record, crate::domain::chart::VALID)),
            Err(o) => o.identified.as_ref().map(|v| (&v.record, o.code.as_str())),
        };
        if let Some((record, outcome)) = counted {
            let key = (
                record.key.id.clone(),
                record.key.workspace_id.clone(),
                hour_of(db::now()),
                outcome,
            );
            *self
                .usage
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(key)
                .or_insert(0) += 1;
        }
        result
    }

    /// Run every check, in the documented order: format and checksum, lookup,
    /// workspace switch, revoked or deleted, disabled, expired (and old secrets
    /// past their grace), environment, permission and resource, rate limit.
    async fn check(
        &self,
        state: &web::Data<AppState>,
        raw: &str,
        req: &Requirements,
    ) -> Result<Verified, Outcome> {
        let facts = parse(raw).map_err(|e| Outcome::new(Code::Malformed, e.to_string()))?;
        let record = self.lookup(state, &facts.digest).await?.ok_or_else(|| {
            Outcome::new(
                Code::NotFound,
                "No key matches. Check that you copied the whole key; if it was regenerated, use the new secret.",
            )
        })?;
        let key = &record.key;
        let now = db::now();
        if record.api_keys_disabled_at.is_some() {
            return Err(Outcome::new(
                Code::ApiKeysDisabled,
                "API keys are switched off for this workspace. Ask a workspace admin to turn them back on in Settings.",
            )
            .about(&record));
        }
        if key.revoked_at.is_some() || key.deleted_at.is_some() {
            return Err(Outcome::new(
                Code::Revoked,
                "This key was revoked and can no longer be used. Create a new key.",
            )
            .about(&record));
        }
        if key.disabled_at.is_some() {
            return Err(Outcome::new(
                Code::Disabled,
                "This key is disabled. Enable it again on the API keys page, or use another key.",
            )
            .about(&record));
        }
        if let Some(expired) = key.expires_at.filter(|e| *e <= now) {
            return Err(Outcome::new(
                Code::Expired,
                format!(
                    "This key expired on {}. Create a new key.",
                    fmt_time(expired)
                ),
            )
            .about(&record));
        }
        if key.digest != facts.digest {
            // The previous secret of a regenerated key.
            match key.previous_expires_at {
                Some(until)
                    if until > now && key.previous_digest.as_deref() == Some(&facts.digest) => {}
                _ => {
                    return Err(Outcome::new(
                        Code::Expired,
                        "This secret was replaced when the key was regenerated and no longer works. Use the new secret.",
                    )
                    .about(&record));
                }
            }
        }
        if let Some(wanted) = req.environment.as_deref().filter(|s| !s.trim().is_empty()) {
            let env = key.environment();
            match wanted.parse::<Environment>() {
                Ok(w) if w == env => {}
                Ok(w) => {
                    return Err(Outcome::new(
                        Code::EnvironmentMismatch,
                        format!(
                            "This is a {} ({}) key, but the request is for {} ({}). Use a key made for that environment.",
                            env.label(),
                            env.as_str(),
                            w.label(),
                            w.as_str()
                        ),
                    )
                    .about(&record));
                }
                Err(()) => {
                    return Err(Outcome::new(
                        Code::EnvironmentMismatch,
                        format!("Unknown environment \"{wanted}\": use live, test or dev."),
                    )
                    .about(&record));
                }
            }
        }
        if let Some(p) = req.permission.as_deref().filter(|s| !s.is_empty())
            && !key.permission_list().iter().any(|have| have == p)
        {
            {
                return Err(Outcome::new(
                    Code::InsufficientPermission,
                    format!("This key does not have the permission \"{p}\". Permissions are fixed when a key is created: create a key that has it."),
                )
                .about(&record));
            }
        }
        if let Some(r) = req.resource.as_deref().filter(|s| !s.is_empty()) {
            let scope = key.resource_list();
            if !scope.is_empty() && !scope.iter().any(|have| have == r) {
                return Err(Outcome::new(
                    Code::ResourceNotAllowed,
                    format!("This key is limited to other resources and may not access \"{r}\"."),
                )
                .about(&record));
            }
        }
        let rate = match key.rate_limit {
            Some(limit) if limit > 0 => match self.take_token(&key.id, limit) {
                Ok(info) => Some(info),
                Err(retry) => {
                    let mut outcome = Outcome::new(
                        Code::RateLimited,
                        format!("This key's rate limit of {limit} requests per minute was exceeded. Retry after {retry} seconds."),
                    )
                    .about(&record);
                    outcome.retry_after_secs = Some(retry);
                    outcome.limit = Some(limit);
                    return Err(outcome);
                }
            },
            _ => None,
        };
        self.record_use(&key.id, now);
        Ok(Verified { record, rate })
    }

    /// Take one request from the key's bucket, or say how many seconds to wait.
    fn take_token(&self, key_id: &str, limit: i32) -> Result<RateInfo, u64> {
        let limit_f = f64::from(limit);
        let per_sec = limit_f / 60.0;
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let bucket = buckets.entry(key_id.to_owned()).or_insert(Bucket {
            tokens: limit_f,
            at: now,
        });
        let elapsed = now.duration_since(bucket.at).as_secs_f64();
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
            Err((((1.0 - bucket.tokens) / per_sec).ceil() as u64).max(1))
        }
    }

    fn record_use(&self, key_id: &str, at: NaiveDateTime) {
        let mut used = self.last_used.lock().unwrap_or_else(|e| e.into_inner());
        used.insert(key_id.to_owned(), at);
    }

    /// Write buffered "last used" times and usage counts. On failure they
    /// are kept for the next attempt, so none is lost.
    pub fn flush(&self, pool: &Pool) {
        self.flush_last_used(pool);
        self.flush_usage(pool);
    }

    fn flush_usage(&self, pool: &Pool) {
        drain_and_write(
            &self.usage,
            |batch| {
                let rows: Vec<crate::db::usage::Increment> = batch
                    .iter()
                    .map(|((k, w, h, o), n)| (k.clone(), w.clone(), *h, (*o).to_owned(), *n))
                    .collect();
                let mut conn = pool.get().map_err(|e| e.to_string())?;
                crate::db::usage::add(&mut conn, &rows).map_err(|e| e.to_string())
            },
            |count, n| *count += n,
            "usage counts",
        );
    }

    fn flush_last_used(&self, pool: &Pool) {
        drain_and_write(
            &self.last_used,
            |batch| {
                let mut conn = pool.get().map_err(|e| e.to_string())?;
                keys::write_last_used(&mut conn, batch).map_err(|e| e.to_string())
            },
            |at, newer| *at = (*at).max(newer),
            "last-used times",
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
    let batch: Vec<(K, V)> = map
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .drain()
        .collect();
    if batch.is_empty() {
        return;
    }
    if let Err(e) = write(&batch) {
        tracing::warn!(error = %e, pending = batch.len(), "could not write {what}; will retry");
        let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
        for (k, v) in batch {
            match map.entry(k) {
                std::collections::hash_map::Entry::Occupied(mut slot) => merge(slot.get_mut(), v),
                std::collections::hash_map::Entry::Vacant(slot) => {
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
    fn a_failed_write_keeps_the_batch_and_merges_what_arrived_meanwhile() {
        let map: Mutex<HashMap<&str, i64>> = Mutex::new(HashMap::from([("a", 5), ("b", 1)]));
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
        assert_eq!(*map.lock().unwrap(), HashMap::from([("a", 7), ("b", 1)]));

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
