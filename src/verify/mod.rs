//! Checking a presented key: the hot path every integration hits.
//!
//! At most one indexed database read per key (none once cached), no
//! password hashing, no write: "last used" times and usage counts are
//! buffered and written in batches. The cache is kept exact by the change
//! feed ([`crate::db::changes`] in-process, PostgreSQL `NOTIFY` between
//! instances), so entries can live long; expiry and grace periods are
//! checked on every request against the clock.

pub mod cache;
pub mod counters;
pub mod feed;
pub mod index;
pub mod limiter;
pub mod outcome;
pub mod quota;
pub mod requests;
pub mod shards;
pub mod usage;
pub mod workers;

use crate::db::changes::Change;
use crate::db::health::DbHealth;
use crate::db::{self, Pool, keys};
use crate::domain::keys::{Environment, parse_digest};
use cache::{CachedKey, Found, KeyCache, LookupFailed};
use chrono::NaiveDateTime;
use feed::FeedStatus;
use limiter::{Limiter, RetryAfter};
pub use outcome::{Code, Outcome, RateInfo, Requirements, Verified, WorkspaceRequirement};
pub use requests::{CallInfo, CallerAddr, DescribeCall, NoCall};
use std::sync::Arc;
use std::time::Duration;
use usage::UsageBuffers;
pub use usage::hour_of;

pub use crate::config::VerifierSettings as Settings;

/// Key checking with its cache, rate limiter and usage buffers.
pub struct Verifier {
    cache: KeyCache,
    limiter: Limiter,
    usage: UsageBuffers,
    /// Recent checks per key, buffered like the usage counts.
    pub requests: requests::RequestLog,
    feed: FeedStatus,
    workers: workers::LookupWorkers,
    health: Arc<DbHealth>,
    /// Which digests exist: unknown ones are refused without the database.
    pub index: index::DigestIndex,
    /// Lookups allowed for digests the index does not know, when other
    /// instances may have created keys it has not heard of yet (PostgreSQL);
    /// `None` where the index is exact (SQLite, one instance).
    miss_budget: Option<limiter::LocalLimiter>,
    /// Database lookups made (for tests and metrics).
    db_lookups: std::sync::atomic::AtomicU64,
    /// Outcome counters, duration histogram, cache hits and misses.
    pub metrics: counters::VerifyMetrics,
    /// The uses of keys' quotas this instance holds in reserve.
    pub quotas: quota::Quotas,
    /// When answering from stale state was last logged, and how often since.
    stale_log: std::sync::Mutex<(Option<std::time::Instant>, u64)>,
}

/// Lookups a minute (with a burst of as many) for digests the index does
/// not know, on PostgreSQL: enough for keys created elsewhere a moment ago,
/// too few for a flood of made-up keys to matter.
const UNKNOWN_LOOKUPS_PER_MINUTE: i32 = 300;

/// The refusal of a call from outside a key's IP allowlist, naming the
/// address seen; `None` when the allowlist lets it through.
fn ip_refusal(
    list: &crate::domain::allowlist::Allowlist,
    call: &dyn DescribeCall,
) -> Option<Outcome> {
    match call.address() {
        CallerAddr::Known(ip) if list.allows(ip) => None,
        CallerAddr::Known(ip) => Some(Outcome::new(
            Code::IpNotAllowed,
            format!(
                "This key may only be used from the addresses on its IP allowlist, and this request came from {ip}. Call from an allowed address, or ask whoever manages the key to add this one."
            ),
        )),
        CallerAddr::Unknown => Some(Outcome::new(
            Code::IpNotAllowed,
            "This key may only be used from the addresses on its IP allowlist, and the address of this call is not known. A service checking keys on /api/v1/keys/verify sends its caller's address as \"ip\".",
        )),
        CallerAddr::Repeated(header) => Some(Outcome::repeated_header(header)),
    }
}

fn fmt_time(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

impl feed::ApplyChange for Verifier {
    fn apply_change(&self, change: &Change) {
        self.apply(change);
    }

    fn feed_status(&self) -> &FeedStatus {
        &self.feed
    }

    fn resync(&self, prefixes: Vec<u64>) {
        self.index.load(prefixes);
    }

    fn feed_lost(&self) {
        self.index.distrust();
    }
}

impl Verifier {
    pub fn new(settings: &Settings, limiter: Limiter, health: Arc<DbHealth>) -> Self {
        Verifier {
            index: index::DigestIndex::default(),
            miss_budget: settings
                .shared_database
                .then(limiter::LocalLimiter::default),
            db_lookups: std::sync::atomic::AtomicU64::new(0),
            metrics: counters::VerifyMetrics::default(),
            quotas: quota::Quotas::default(),
            cache: KeyCache::with_stale(
                settings.cache_capacity,
                settings.cache_ttl,
                settings.missing_ttl,
                settings.stale_if_error,
            ),
            health,
            stale_log: std::sync::Mutex::new((None, 0)),
            limiter,
            usage: UsageBuffers::default(),
            requests: requests::RequestLog::new(
                settings.request_log_per_key,
                settings.request_log_days,
            ),
            feed: FeedStatus::default(),
            workers: workers::LookupWorkers::new(settings.db_slots),
        }
    }

    /// Apply a change made here or reported by the feed.
    pub fn apply(&self, change: &Change) {
        if let Change::Key { digests, .. } = change {
            // New keys (and new secrets) exist from now on.
            self.index.add(digests);
        }
        self.cache.apply(change);
    }

    /// Database lookups made so far.
    pub fn db_lookups(&self) -> u64 {
        self.db_lookups.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether a digest the index does not know may still be looked up.
    fn may_look_up_unknown(&self) -> bool {
        self.miss_budget.as_ref().is_some_and(|b| {
            b.take(
                "unknown",
                UNKNOWN_LOOKUPS_PER_MINUTE,
                std::time::Instant::now(),
            )
            .is_ok()
        })
    }

    /// The change feed's counters.
    pub fn feed_status(&self) -> &FeedStatus {
        &self.feed
    }

    /// Whether rate limits are shared between instances (Redis).
    pub fn limits_shared(&self) -> bool {
        self.limiter.is_shared()
    }

    /// How many instances share rate limits, as last counted in Redis.
    pub fn sharing_instances(&self) -> u32 {
        self.limiter.sharing_instances()
    }

    /// The key with this digest: from the cache, else from the database;
    /// when the database cannot be reached, a valid key's last known state
    /// (with its age) if it is young enough, else 503.
    async fn lookup(
        &self,
        pool: &Pool,
        digest: &shards::Digest,
    ) -> Result<(Found, Option<Duration>), Outcome> {
        // A cached key first: the index could only agree (it holds every
        // digest a cached record was read by), and skipping it spares a
        // check the one probe into a table of every key (16 MB at 1M keys)
        // that misses the CPU's caches when checks rotate over many keys.
        // A cached "no such key" still goes through the index below, so
        // made-up keys are counted as they were.
        if let Some(record @ Some(_)) = self.cache.get(digest) {
            self.metrics.cache_hits.inc();
            return Ok((record, None));
        }
        if self.index.may_exist(digest) == Some(false) && !self.may_look_up_unknown() {
            self.metrics.index_refusals.inc();
            return Ok((None, None));
        }
        // Boxed: the database path's state would otherwise be part of every
        // check's future, cache hits too, and a request's future over 1 KiB
        // sends each allocation of it down glibc's slow path.
        Box::pin(self.load(pool, digest)).await
    }

    /// [`Self::lookup`] past the cache: the database, or a stale copy.
    async fn load(
        &self,
        pool: &Pool,
        digest: &shards::Digest,
    ) -> Result<(Found, Option<Duration>), Outcome> {
        let missed = std::cell::Cell::new(false);
        let loaded = self
            .cache
            .get_or_load(digest, || async {
                missed.set(true);
                self.db_lookups
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if !self.health.admit(std::time::Instant::now()) {
                    return Err(LookupFailed("the database is marked down".into()));
                }
                let pool = pool.clone();
                let lookup = hex::encode(digest);
                let health = self.health.clone();
                self.workers
                    .run(move || {
                        let mut conn = pool.get().map_err(|e| {
                            health.failed(std::time::Instant::now());
                            LookupFailed(e.to_string())
                        })?;
                        match keys::find_for_auth(&mut conn, &lookup) {
                            Ok(found) => {
                                health.succeeded();
                                Ok(found)
                            }
                            Err(e) => {
                                if db::health::is_connection_error(&e) {
                                    health.failed(std::time::Instant::now());
                                }
                                Err(LookupFailed(e.to_string()))
                            }
                        }
                    })
                    .await
                    .map_err(|_| LookupFailed("shutting down".into()))?
            })
            .await;
        if missed.get() {
            self.metrics.cache_misses.inc();
        } else {
            self.metrics.cache_hits.inc();
        }
        match loaded {
            Ok(found) => Ok((found, None)),
            Err(LookupFailed(e)) => {
                if let Some((record, age)) = self.cache.get_stale(digest) {
                    self.log_stale(&e);
                    return Ok((Some(record), Some(age)));
                }
                if !self.health.is_down() {
                    tracing::error!(error = %e, "key lookup failed");
                }
                Err(Outcome::new(
                    Code::Unavailable,
                    "Keys cannot be checked right now. Retry in a moment.",
                ))
            }
        }
    }

    /// One warning per 10 s while answers come from stale state.
    fn log_stale(&self, error: &str) {
        let mut log = self.stale_log.lock().unwrap_or_else(|e| e.into_inner());
        log.1 += 1;
        if log.0.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
            tracing::warn!(
                error = %error,
                answers = log.1,
                "database unreachable: answering keys seen before from their last known state (stale-if-error)"
            );
            *log = (Some(std::time::Instant::now()), 0);
        }
    }

    /// Check a key and count the outcome for the key's usage statistics
    /// (only for keys that were identified); record the check in the key's
    /// request log with what `call` says about the request (asked only for
    /// the checks that are recorded).
    pub async fn verify(
        &self,
        pool: &Pool,
        raw: &str,
        req: &Requirements,
        call: &dyn DescribeCall,
    ) -> Result<Verified, Outcome> {
        let started = std::time::Instant::now();
        let mut secret = requests::Secret::Current;
        let result = self.check(pool, raw, req, call, &mut secret).await;
        self.metrics
            .observe(result.as_ref().err().map(|o| o.code), started.elapsed());
        // A passed check also sets the key's "last used".
        let counted = match &result {
            Ok(v) => Some((&v.record, crate::domain::chart::VALID, true)),
            Err(o) => o
                .identified
                .as_ref()
                .map(|v| (&v.record, o.code.as_str(), false)),
        };
        if let Some((record, outcome, used)) = counted {
            let now = db::now();
            let checks = self.usage.note(record, now, outcome, used);
            if self.requests.is_on()
                && let Some(one_in) = checks.and_then(requests::sample)
            {
                self.requests
                    .push(record, now, outcome, secret, one_in, call);
            }
        }
        result
    }

    /// Run every check, in the documented order: format and checksum, lookup,
    /// the caller's workspace, workspace switch, revoked or deleted, disabled, expired (and old secrets
    /// past their grace), IP allowlist, environment, permission and resource, rate limit.
    /// `secret` is set to the secret that matched once the key is found.
    async fn check(
        &self,
        pool: &Pool,
        raw: &str,
        req: &Requirements,
        call: &dyn DescribeCall,
        secret: &mut requests::Secret,
    ) -> Result<Verified, Outcome> {
        let digest = parse_digest(raw).map_err(|e| Outcome::new(Code::Malformed, e.to_string()))?;
        let (record, stale_age) = self.lookup(pool, &digest).await?;
        let record = record.ok_or_else(|| {
            Outcome::new(
                Code::NotFound,
                "No key matches. Check that you copied the whole key; if it was regenerated, use the new secret.",
            )
        })?;
        if let Some(refusal) = req.workspace_refusal(&record) {
            return Err(refusal);
        }
        // The record was found by this digest: it is the key's current
        // secret, or else its previous one.
        let previous = record.digest != digest;
        if previous {
            *secret = requests::Secret::Previous;
        }
        let now = db::now();
        if record.api_keys_disabled() {
            return Err(Outcome::new(
                Code::ApiKeysDisabled,
                "API keys are switched off for this workspace. Ask a workspace admin to turn them back on in Settings.",
            )
            .about(&record));
        }
        if record.is_revoked() || record.is_deleted() {
            // A leak revocation says so (the reason is on the row already
            // read: no extra work on this path).
            let message = match record.revoked_reason() {
                Some("leaked_github") if !record.is_deleted() => {
                    "This key was revoked because GitHub secret scanning found it in public. Create a new key and keep it out of code and public places."
                }
                Some(_) if !record.is_deleted() => {
                    "This key was revoked because it was reported leaked. Create a new key and keep it out of code and public places."
                }
                _ => "This key was revoked and can no longer be used. Create a new key.",
            };
            return Err(Outcome::new(Code::Revoked, message).about(&record));
        }
        if record.is_disabled() {
            return Err(Outcome::new(
                Code::Disabled,
                "This key is disabled. Enable it again on the API keys page, or use another key.",
            )
            .about(&record));
        }
        if record.is_owner_disabled() {
            return Err(Outcome::new(
                Code::Disabled,
                "This key's service account is disabled. An admin can enable it again on the Users page, or use another key.",
            )
            .about(&record));
        }
        if let Some(expired) = record.expires_at.filter(|e| *e <= now) {
            return Err(Outcome::new(
                Code::Expired,
                format!(
                    "This key expired on {}. Create a new key.",
                    fmt_time(expired)
                ),
            )
            .about(&record));
        }
        if previous && record.previous_expires_at.is_none_or(|until| until <= now) {
            // The previous secret of a regenerated key, past its grace.
            return Err(Outcome::new(
                Code::Expired,
                "This secret was replaced when the key was regenerated and no longer works. Use the new secret.",
            )
            .about(&record));
        }
        // A key without an allowlist pays this `Option` check only.
        if let Some(list) = &record.allowlist
            && let Some(refusal) = ip_refusal(list, call)
        {
            return Err(refusal.about(&record));
        }
        if let Some(wanted) = req.environment.as_deref().filter(|s| !s.trim().is_empty()) {
            let env = record.environment;
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
            && !record.permissions().iter().any(|have| have == p)
        {
            return Err(Outcome::new(
                Code::InsufficientPermission,
                format!("This key does not have the permission \"{p}\". Permissions are fixed when a key is created: create a key that has it."),
            )
            .about(&record));
        }
        if let Some(r) = req.resource.as_deref().filter(|s| !s.is_empty()) {
            let mut scope = record.resources().iter().peekable();
            if scope.peek().is_some() && !scope.any(|have| have == r) {
                return Err(Outcome::new(
                    Code::ResourceNotAllowed,
                    format!("This key is limited to other resources and may not access \"{r}\"."),
                )
                .about(&record));
            }
        }
        let rate = self.rate(&record).await?;
        // A key without a quota pays this `Option` check only.
        let quota = match record.quota.as_deref() {
            Some(q) => Some(
                self.spend_quota(pool, &record, *q, req, now)
                    .await?
                    .remaining,
            ),
            None => None,
        };
        Ok(Verified {
            record,
            rate,
            quota,
            stale_age,
        })
    }

    /// Take one request of the key's rate limit (keys with one).
    async fn rate(&self, record: &Arc<CachedKey>) -> Result<Option<RateInfo>, Outcome> {
        Ok(match record.rate_limit {
            Some(limit) if limit > 0 => match self.limiter.take(record.id(), limit).await {
                Ok(info) => Some(info),
                Err(RetryAfter(retry)) => {
                    let mut outcome = Outcome::new(
                        Code::RateLimited,
                        format!("This key's rate limit of {limit} requests per minute was exceeded. Retry after {retry} seconds."),
                    )
                    .about(record);
                    outcome.retry_after_secs = Some(retry);
                    outcome.limit = Some(limit);
                    return Err(outcome);
                }
            },
            _ => None,
        })
    }

    /// Spend the check's cost of the key's usage quota.
    async fn spend_quota(
        &self,
        pool: &Pool,
        record: &Arc<CachedKey>,
        quota: crate::domain::quota::Quota,
        req: &Requirements,
        now: chrono::NaiveDateTime,
    ) -> Result<quota::QuotaLeft, Outcome> {
        let cost = req.cost.unwrap_or(1);
        match self
            .quotas
            .spend(pool, &self.workers, record, quota, cost, now)
            .await
        {
            Ok(left) => Ok(left),
            Err(quota::QuotaRefusal::Exceeded(left)) => {
                let mut outcome = Outcome::new(
                    Code::QuotaExceeded,
                    match left.resets_at {
                        Some(at) => format!(
                            "This key's quota of {} has {} left, fewer than this request costs ({cost}). It refills at {}.",
                            crate::domain::quota::thousands(left.limit),
                            crate::domain::quota::thousands(left.remaining),
                            fmt_time(at)
                        ),
                        None => format!(
                            "This key's quota has {} left, fewer than this request costs ({cost}), and it does not refill. Ask whoever manages the key to top it up.",
                            crate::domain::quota::thousands(left.remaining)
                        ),
                    },
                )
                .about(record);
                outcome.retry_after_secs = left
                    .resets_at
                    .map(|at| u64::try_from((at - db::now()).num_seconds().max(1)).unwrap_or(1));
                if let Some(v) = outcome.identified.as_mut() {
                    v.quota = Some(left.remaining);
                }
                Err(outcome)
            }
            Err(quota::QuotaRefusal::Unavailable(e)) => {
                if !self.health.is_down() {
                    tracing::error!(error = %e, "quota reservation failed");
                }
                Err(Outcome::new(
                    Code::Unavailable,
                    "This key's quota cannot be checked right now. Retry in a moment.",
                ))
            }
        }
    }

    /// Write buffered "last used" times and usage counts, and forget idle
    /// rate-limit buckets.
    pub fn flush(&self, pool: &Pool) {
        self.usage.flush(pool);
        self.requests.flush(pool);
        self.limiter.prune();
        self.quotas.prune();
        self.cache.purge_expired();
    }

    /// The last write of buffered "last used" times and usage counts,
    /// before the process exits, waiting at most `budget` for it: a stop
    /// must end within the shutdown grace even when the database is stuck
    /// (a table locked by another session makes every write wait for its
    /// statement timeout, twice). What was not written is logged.
    pub fn flush_before_exit(self: &Arc<Self>, pool: &Pool, budget: Duration) {
        let (last_used, counters) = self.pending();
        if last_used == 0 && counters == 0 && self.quotas.held_total() == 0 {
            return;
        }
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let (verifier, pool) = (self.clone(), pool.clone());
        // A thread of its own, never joined: when the budget is spent the
        // process exits with the write still waiting.
        let spawned = std::thread::Builder::new()
            .name("keyward-final-flush".into())
            .spawn(move || {
                let lost = verifier.quotas.give_back(&pool);
                if lost > 0 {
                    tracing::warn!(
                        uses = lost,
                        "stopping: reserved quota uses could not be given back (the keys' quotas are that much lower)"
                    );
                }
                verifier.usage.flush(&pool);
                verifier.requests.flush(&pool);
                let _ = done_tx.send(());
            });
        if spawned.is_ok() && done_rx.recv_timeout(budget).is_ok() {
            let (last_used, counters) = self.pending();
            if last_used > 0 || counters > 0 {
                tracing::warn!(
                    last_used,
                    usage_counters = counters,
                    "stopping: buffered last-used times and usage counts were not written (the database refused them)"
                );
            }
        } else {
            tracing::warn!(
                last_used,
                usage_counters = counters,
                "stopping: buffered last-used times and usage counts were not written (the database did not take them within {} s)",
                budget.as_secs_f64()
            );
        }
    }

    /// Buffered entries not yet written (last-used times, counters).
    pub fn pending(&self) -> (usize, usize) {
        self.usage.pending()
    }

    /// Local rate-limit buckets held.
    pub fn rate_buckets(&self) -> usize {
        self.limiter.local_buckets()
    }
}
