//! The request log's side of the hot path: which checks of a key are
//! recorded (all of a quiet key's, a sample of a busy key's), kept in a
//! bounded buffer and written in batches by the usage flush.
//!
//! What a check recorded never holds the key, an `Authorization` header or
//! a query string: the caller describes the call ([`DescribeCall`]) only
//! when the check is to be recorded, and [`CallInfo::clean_path`] cuts the
//! query before anything is kept.

use crate::db::Pool;
use chrono::NaiveDateTime;
use std::hash::BuildHasher;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Checks of one key within one flush interval that are all recorded;
/// beyond it a key is "busy" and only a sample is.
pub const QUIET_CHECKS: u32 = 5;

/// Most records held between two flushes (and while the database cannot
/// take them); beyond it new records are dropped and counted.
pub const MAX_PENDING_REQUESTS: usize = 20_000;

/// Longest path kept, in characters.
const MAX_PATH: usize = 300;
/// Longest user agent kept before it is shortened, in characters.
const MAX_AGENT: usize = 200;

/// What is known about the call a key was presented with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallInfo {
    /// The client's address (through trusted proxies).
    pub ip: Option<std::net::IpAddr>,
    pub method: Option<String>,
    /// Without its query string.
    pub path: Option<String>,
    /// The raw `User-Agent`, cut to a bounded length; shortened when written.
    pub user_agent: Option<String>,
}

impl CallInfo {
    /// A method as recorded: an HTTP token, upper case, at most 16 bytes.
    pub fn clean_method(raw: &str) -> Option<String> {
        let m = raw.trim();
        (!m.is_empty() && m.len() <= 16 && m.bytes().all(|b| b.is_ascii_alphabetic()))
            .then(|| m.to_ascii_uppercase())
    }

    /// A path as recorded: a full URL is reduced to its path, the query
    /// string and fragment are cut, control characters dropped, at most
    /// [`MAX_PATH`] characters.
    pub fn clean_path(raw: &str) -> Option<String> {
        let raw = raw.trim();
        let raw = match raw.find("://") {
            // An absolute URL: keep what follows the authority.
            Some(i) => raw[i + 3..].find('/').map_or("/", |j| &raw[i + 3 + j..]),
            None => raw,
        };
        let end = raw.find(['?', '#']).unwrap_or(raw.len());
        let path = bounded(&raw[..end], MAX_PATH);
        (!path.is_empty()).then_some(path)
    }

    /// An address as recorded: only a valid IP address.
    pub fn clean_ip(raw: &str) -> Option<std::net::IpAddr> {
        raw.trim().parse::<std::net::IpAddr>().ok()
    }

    /// A user agent as held until the flush shortens it.
    pub fn clean_agent(raw: &str) -> Option<String> {
        let ua = bounded(raw, MAX_AGENT);
        (!ua.trim().is_empty()).then_some(ua)
    }
}

/// `text` without control characters, at most `max` characters. Printable
/// ASCII (almost every path and user agent) is copied as it is: checking
/// character by character cost more than the rest of recording a check.
fn bounded(text: &str, max: usize) -> String {
    let bytes = text.as_bytes();
    if bytes.len() <= max && bytes.iter().all(|b| (b' '..=b'~').contains(b)) {
        return text.to_owned();
    }
    text.chars().filter(|c| !c.is_control()).take(max).collect()
}

/// Tells the verifier about the call a key came with. Asked only when the
/// check is recorded, so a busy key's unrecorded checks cost nothing here.
pub trait DescribeCall {
    fn describe(&self) -> CallInfo;

    /// The client's address for a key's IP allowlist: asked only of keys
    /// that have one, so other keys' checks pay nothing for it. By
    /// default the address the description holds.
    fn address(&self) -> CallerAddr {
        self.describe()
            .ip
            .map_or(CallerAddr::Unknown, CallerAddr::Known)
    }
}

/// The address an IP allowlist is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallerAddr {
    Known(std::net::IpAddr),
    /// Not told (a service that sent no `ip` to `/api/v1/keys/verify`).
    Unknown,
    /// The header that would say it came more than once (named here):
    /// which copy counts is up to each proxy on the way, so none does.
    Repeated(&'static str),
}

/// Nothing known about the call.
pub struct NoCall;

impl DescribeCall for NoCall {
    fn describe(&self) -> CallInfo {
        CallInfo::default()
    }
}

/// A description made beforehand.
impl DescribeCall for CallInfo {
    fn describe(&self) -> CallInfo {
        self.clone()
    }
}

/// A call described beforehand together with the address its allowlist
/// check uses (where the request cannot be kept until the check runs:
/// the management API's extractor).
pub struct Described {
    pub info: CallInfo,
    pub address: CallerAddr,
}

impl DescribeCall for Described {
    fn describe(&self) -> CallInfo {
        self.info.clone()
    }

    fn address(&self) -> CallerAddr {
        self.address
    }
}

/// Which secret of a key answered a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secret {
    Current,
    /// The previous secret, in (or past) its grace period.
    Previous,
}

impl Secret {
    pub fn as_str(self) -> &'static str {
        match self {
            Secret::Current => crate::db::requests::CURRENT,
            Secret::Previous => crate::db::requests::PREVIOUS,
        }
    }
}

use super::cache::CachedKey;

/// A check to write, holding its cached key.
type Pending = crate::db::requests::Pending<std::sync::Arc<CachedKey>>;

/// Whether the `checks`-th check of a key within a flush interval is
/// recorded, and as one of how many: every check up to [`QUIET_CHECKS`],
/// then one in 2 up to twice that, one in 4 up to four times, …, so a key
/// records about `QUIET_CHECKS / 2` checks more each time its checks double.
pub fn sample(checks: u32) -> Option<u32> {
    if checks <= QUIET_CHECKS {
        return Some(1);
    }
    // 1 in 2 up to twice the quiet count, 1 in 4 up to four times, …
    let one_in = ((checks - 1) / QUIET_CHECKS + 1).next_power_of_two();
    checks.is_multiple_of(one_in).then_some(one_in)
}

/// The buffer of checks to record.
pub struct RequestLog {
    /// Rows kept a key (`KEYWARD_REQUEST_LOG_PER_KEY`); 0: the log is off.
    pub per_key: u32,
    /// Days kept (`KEYWARD_REQUEST_LOG_DAYS`).
    pub days: u32,
    pending: Mutex<Vec<Pending>>,
    /// Records dropped because the buffer was full, since the last flush.
    pub dropped: AtomicU64,
    /// When rows past the retention period were last deleted.
    last_age_prune: Mutex<Option<std::time::Instant>>,
    /// Rows written per key since its rows were last cut to `per_key`: a
    /// key is pruned once it may hold a tenth more than that (a delete
    /// per key and flush cost more than the inserts).
    ///
    /// It holds every key checked since its last prune (most keys, on a
    /// busy installation), so it is keyed by a 64-bit hash of the key's id,
    /// 16 bytes an entry instead of an id's `String` (about 140 bytes a
    /// key with its allocation). Two ids sharing a hash only make one of
    /// them be pruned early, which is harmless.
    unpruned: Mutex<hashbrown::HashMap<u64, u32>>,
    ids: hashbrown::DefaultHashBuilder,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl RequestLog {
    pub fn new(per_key: u32, days: u32) -> Self {
        RequestLog {
            per_key,
            days,
            pending: Mutex::new(Vec::new()),
            dropped: AtomicU64::new(0),
            last_age_prune: Mutex::new(None),
            unpruned: Mutex::new(hashbrown::HashMap::new()),
            ids: hashbrown::DefaultHashBuilder::default(),
        }
    }

    pub fn is_on(&self) -> bool {
        self.per_key > 0 && self.days > 0
    }

    /// Keep one check of `record`'s key.
    pub fn push(
        &self,
        record: &std::sync::Arc<CachedKey>,
        at: NaiveDateTime,
        outcome: &'static str,
        secret: Secret,
        one_in: u32,
        call: &dyn DescribeCall,
    ) {
        let call = call.describe();
        let mut pending = lock(&self.pending);
        if pending.len() >= MAX_PENDING_REQUESTS {
            drop(pending);
            // Said once a flush (see `flush`), not on the hot path.
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        pending.push(Pending {
            record: record.clone(),
            at,
            ip: call.ip,
            method: call.method,
            path: call.path,
            user_agent: call.user_agent,
            outcome,
            secret: secret.as_str(),
            one_in,
        });
    }

    /// Records not yet written.
    pub fn pending(&self) -> usize {
        lock(&self.pending).len()
    }

    /// Write what is buffered, then prune the written keys' rows to the
    /// newest `per_key` and (every few minutes) every row older than
    /// `days`. A failed write keeps the batch (within the bound) for the
    /// next flush.
    pub fn flush(&self, pool: &Pool) {
        let batch = merge_identical(std::mem::take(&mut *lock(&self.pending)));
        let dropped = self.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            tracing::info!(
                dropped,
                "request log: checks not recorded since the last flush (more than {MAX_PENDING_REQUESTS} waiting)"
            );
        }
        if !batch.is_empty() {
            let slack = (self.per_key / 10).max(1);
            let mut rows: hashbrown::HashMap<&str, u32> = hashbrown::HashMap::new();
            for p in &batch {
                *rows.entry(p.record.id()).or_insert(0) += 1;
            }
            // A key whose prune failed is pruned when it is next written.
            let prune: Vec<String> = {
                let mut unpruned = lock(&self.unpruned);
                rows.into_iter()
                    .filter_map(|(id, n)| {
                        let count = unpruned.entry(self.ids.hash_one(id)).or_insert(0);
                        *count += n;
                        (*count >= slack).then(|| id.to_owned())
                    })
                    .collect()
            };
            let written = pool.get().map_err(|e| e.to_string()).and_then(|mut conn| {
                crate::db::requests::insert(&mut conn, &batch, &prune, self.per_key)
                    .map_err(|e| e.to_string())
            });
            if written.is_ok() {
                let mut unpruned = lock(&self.unpruned);
                for id in &prune {
                    unpruned.remove(&self.ids.hash_one(id.as_str()));
                }
            }
            if let Err(e) = written {
                tracing::warn!(error = %e, pending = batch.len(), "could not write the request log; will retry");
                let mut pending = lock(&self.pending);
                let room = MAX_PENDING_REQUESTS.saturating_sub(pending.len());
                let kept: Vec<Pending> = batch.into_iter().take(room).collect();
                pending.splice(0..0, kept);
                return;
            }
        }
        let due = {
            let mut last = lock(&self.last_age_prune);
            let due = last.is_none_or(|t| t.elapsed() >= std::time::Duration::from_secs(300));
            if due {
                *last = Some(std::time::Instant::now());
            }
            due
        };
        if due {
            let before = crate::db::now() - chrono::TimeDelta::days(i64::from(self.days));
            let pruned = pool.get().map_err(|e| e.to_string()).and_then(|mut conn| {
                crate::db::requests::prune_before(&mut conn, before).map_err(|e| e.to_string())
            });
            if let Err(e) = pruned {
                tracing::warn!(error = %e, "could not prune the request log");
            }
        }
    }
}

/// One row for identical calls of a key within a batch (same address,
/// method, path, client, outcome and secret): the newest time, standing
/// for all of them (the weights add up, as a sampled row's do). A quiet
/// key polled by one client writes one row a flush instead of one a check:
/// a row costs the database far more than a check costs keyward.
fn merge_identical(batch: Vec<Pending>) -> Vec<Pending> {
    if batch.len() < 2 {
        return batch;
    }
    let mut out: Vec<Pending> = Vec::with_capacity(batch.len());
    let mut seen: hashbrown::HashMap<u64, Vec<usize>> = hashbrown::HashMap::new();
    let hasher = hashbrown::DefaultHashBuilder::default();
    for p in batch {
        let h = std::hash::BuildHasher::hash_one(
            &hasher,
            (
                p.record.id(),
                p.ip,
                p.method.as_deref(),
                p.path.as_deref(),
                p.user_agent.as_deref(),
                p.outcome,
                p.secret,
            ),
        );
        let same = |q: &Pending| {
            q.record.id() == p.record.id()
                && q.ip == p.ip
                && q.method == p.method
                && q.path == p.path
                && q.user_agent == p.user_agent
                && q.outcome == p.outcome
                && q.secret == p.secret
        };
        let slots = seen.entry(h).or_default();
        match slots.iter().copied().find(|&i| same(&out[i])) {
            Some(i) => {
                let kept = &mut out[i];
                kept.one_in = kept.one_in.saturating_add(p.one_in);
                kept.at = kept.at.max(p.at);
            }
            None => {
                slots.push(out.len());
                out.push(p);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quiet_key_is_recorded_whole_and_a_busy_one_sampled() {
        assert!((1..=QUIET_CHECKS).all(|n| sample(n) == Some(1)));
        // Then one in 2 up to twice the quiet count, one in 4 up to four times.
        let q = QUIET_CHECKS;
        for n in q + 1..=2 * q {
            assert_eq!(sample(n), n.is_multiple_of(2).then_some(2), "{n}");
        }
        for n in 2 * q + 1..=4 * q {
            assert_eq!(sample(n), n.is_multiple_of(4).then_some(4), "{n}");
        }
        let recorded: Vec<(u32, u32)> = (1..=100_000)
            .filter_map(|n| sample(n).map(|w| (n, w)))
            .collect();
        // Logarithmic: far fewer records than checks.
        assert!(recorded.len() < 600, "{} records", recorded.len());
        // The weights add up to about the checks made.
        let weight: u64 = recorded.iter().map(|(_, w)| u64::from(*w)).sum();
        assert!((50_000..200_000).contains(&weight), "weight {weight}");
    }

    #[test]
    fn no_query_string_or_fragment_is_kept() {
        assert_eq!(
            CallInfo::clean_path("/v1/items?api_key=sk_live_x#top").as_deref(),
            Some("/v1/items")
        );
        assert_eq!(
            CallInfo::clean_path("https://api.example.com/v1/a?token=1").as_deref(),
            Some("/v1/a")
        );
        assert_eq!(CallInfo::clean_path("?only=query"), None);
        assert_eq!(CallInfo::clean_method("get").as_deref(), Some("GET"));
        assert_eq!(CallInfo::clean_method("GET /x"), None);
        assert_eq!(
            CallInfo::clean_ip("203.0.113.9 ").map(|ip| ip.to_string()),
            Some("203.0.113.9".to_owned())
        );
        assert_eq!(
            CallInfo::clean_path("/a\u{0}b\u{85}c").as_deref(),
            Some("/abc")
        );
        assert_eq!(CallInfo::clean_agent(&"x".repeat(500)).unwrap().len(), 200);
        assert_eq!(CallInfo::clean_ip("not an address"), None);
    }
}
