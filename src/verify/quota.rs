//! Spending keys' usage quotas on the check path (docs/quotas.md).
//!
//! The database holds what is left of each quota ([`crate::db::quotas`]);
//! this instance reserves a batch of uses from it in one short transaction
//! and spends them in memory, one lock per check. Every use spent was
//! handed out by the database first, so all instances together never spend
//! more than the quota, whatever the concurrency. What a crash loses is
//! the unspent reserve: at most [`MAX_BATCH`] uses per instance and key,
//! and never an over-use. A stop gives the reserve back.
//!
//! A reserve belongs to the key's version and the refill window it was
//! taken in: an edit or top-up (which bump the version) or the start of a
//! new period drops it, so nothing spends an old reserve on top of a new
//! balance.

use crate::db::keys::AuthRecord;
use crate::db::{self, Pool, quotas};
use crate::domain::quota::Quota;
use chrono::NaiveDateTime;
use std::sync::{Arc, Mutex};

/// The most uses an instance holds in reserve for one key.
pub const MAX_BATCH: i64 = 64;

/// What a successful spend reports.
#[derive(Debug, Clone, Copy)]
pub struct QuotaLeft {
    pub limit: i64,
    /// What is left after this check: the database's balance when this
    /// instance last asked, plus its reserve (exact with one instance).
    pub remaining: i64,
    /// When the quota next refills (`None`: credits without a refill).
    pub resets_at: Option<NaiveDateTime>,
}

/// What `quota` has left at `now` when `remaining` uses are.
fn quota_left(quota: &Quota, now: NaiveDateTime, remaining: i64) -> QuotaLeft {
    QuotaLeft {
        limit: quota.limit,
        remaining: remaining.max(0),
        resets_at: quota.refills_at(now),
    }
}

/// Why a spend failed.
#[derive(Debug)]
pub enum QuotaRefusal {
    /// Fewer uses are left than the check costs.
    Exceeded(QuotaLeft),
    /// The database could not be asked and the reserve does not cover the
    /// cost: refused rather than guessed.
    Unavailable(String),
}

#[derive(Debug, Default)]
struct Reserve {
    version: i64,
    window: Option<NaiveDateTime>,
    /// The quota the uses were taken under (to give them back).
    quota: Option<Quota>,
    /// Uses taken from the database and not spent yet.
    held: i64,
    /// The database's balance after this instance's last reservation.
    db_left: i64,
    /// Whether the database was asked since the reserve was (re)started:
    /// until then `db_left` is unknown, and even a cost of 0 asks.
    asked: bool,
}

/// One key's reserve, and the lock that lets one request at a time refill
/// it from the database (the others then find it refilled).
#[derive(Default)]
struct KeyReserve {
    reserve: Mutex<Reserve>,
    refill: tokio::sync::Mutex<()>,
}

/// Every reserve of this instance.
#[derive(Default)]
pub struct Quotas {
    /// By key id; hashbrown's default hasher (foldhash), not SipHash: this
    /// is looked up on every check of a metered key.
    keys: Mutex<hashbrown::HashMap<Box<str>, Arc<KeyReserve>>>,
}

impl Reserve {
    /// Current for this key version, quota and window: else emptied (what
    /// it held is lost, never spent under other terms).
    fn align(&mut self, version: i64, window: Option<NaiveDateTime>, quota: Quota) {
        if self.version != version || self.window != window || self.quota != Some(quota) {
            *self = Reserve {
                version,
                window,
                quota: Some(quota),
                held: 0,
                db_left: 0,
                asked: false,
            };
        }
    }

    fn matches(&self, version: i64, window: Option<NaiveDateTime>) -> bool {
        self.version == version && self.window == window
    }

    fn try_spend(&mut self, cost: i64) -> Option<i64> {
        (self.asked && self.held >= cost).then(|| {
            self.held -= cost;
            self.db_left + self.held
        })
    }
}

impl KeyReserve {
    /// Spend `cost` of what this instance holds of the key's quota, after
    /// aligning the reserve with the key's version and window: what is
    /// left, or the locked reserve when it holds too little.
    fn spend_held(
        &self,
        version: i64,
        window: Option<NaiveDateTime>,
        quota: Quota,
        cost: i64,
    ) -> Result<i64, std::sync::MutexGuard<'_, Reserve>> {
        let mut r = self.reserve.lock().unwrap_or_else(|e| e.into_inner());
        r.align(version, window, quota);
        r.try_spend(cost).ok_or(r)
    }

    /// [`Quotas::spend`] when this instance holds too few uses: ask the
    /// database for them.
    async fn ask_database(
        &self,
        pool: &Pool,
        workers: &super::workers::LookupWorkers,
        record: &AuthRecord,
        quota: Quota,
        cost: i64,
        now: NaiveDateTime,
    ) -> Result<QuotaLeft, QuotaRefusal> {
        let window = quota.window(now);
        let left = |remaining: i64| quota_left(&quota, now, remaining);
        let version = record.version;
        // One request per key refills at a time; the rest find the reserve
        // refilled when they get the lock.
        let _refilling = self.refill.lock().await;
        // This request takes what is held, and asks the database for the
        // rest (plus a batch for the next checks).
        let held = match self.spend_held(version, window, quota, cost) {
            Ok(remaining) => return Ok(left(remaining)),
            Err(mut r) => std::mem::take(&mut r.held),
        };
        let need = cost - held;
        // A batch in proportion to the quota, so that a small quota is
        // barely held: a sixteenth of it, at most 64.
        let extra = (quota.limit / 16).clamp(0, MAX_BATCH);
        let (pool, id) = (pool.clone(), record.id().to_owned());
        let asked = workers
            .run(move || {
                let mut conn = pool.get().map_err(|e| e.to_string())?;
                quotas::reserve(&mut conn, &id, &quota, need, extra, now).map_err(|e| e.to_string())
            })
            .await
            .unwrap_or_else(|_| Err("shutting down".into()));
        let mut r = self.reserve.lock().unwrap_or_else(|e| e.into_inner());
        let current = r.matches(version, window);
        let (own, db_left, result) = match asked {
            Ok(quotas::Reserved::Granted {
                taken,
                left: db_left,
            }) => (held + taken - cost, db_left, Ok(())),
            Ok(quotas::Reserved::Short { left: db_left }) => (held, db_left, Err(None)),
            Err(e) => (held, r.db_left, Err(Some(e))),
        };
        // What this request owns and did not spend goes back to the
        // reserve, unless the reserve moved on (an edit, a new window):
        // then it is lost, an under-use.
        if current {
            r.held += own;
            r.db_left = db_left;
            r.asked = true;
        }
        let remaining = db_left + if current { r.held } else { own };
        match result {
            Ok(()) => Ok(left(remaining)),
            Err(None) => Err(QuotaRefusal::Exceeded(left(remaining))),
            Err(Some(e)) => Err(QuotaRefusal::Unavailable(e)),
        }
    }
}

impl Quotas {
    fn entry(&self, key_id: &str) -> Arc<KeyReserve> {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(k) = keys.get(key_id) {
            return k.clone();
        }
        let k = Arc::new(KeyReserve::default());
        keys.insert(key_id.into(), k.clone());
        k
    }

    /// Spend `cost` uses of the key's quota (0: look without spending), at
    /// `now` (the check's own clock reading: one per check).
    pub async fn spend(
        &self,
        pool: &Pool,
        workers: &super::workers::LookupWorkers,
        record: &AuthRecord,
        quota: Quota,
        cost: i64,
        now: NaiveDateTime,
    ) -> Result<QuotaLeft, QuotaRefusal> {
        let key = self.entry(record.id());
        if let Ok(remaining) = key.spend_held(record.version, quota.window(now), quota, cost) {
            return Ok(quota_left(&quota, now, remaining));
        }
        // Boxed: the database path's state would otherwise be part of every
        // check's future (see `Verifier::lookup`).
        Box::pin(key.ask_database(pool, workers, record, quota, cost, now)).await
    }

    /// This instance's unspent reserve of a key (for the key page).
    pub fn held(&self, key_id: &str) -> i64 {
        let keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        keys.get(key_id).map_or(0, |k| {
            k.reserve.lock().unwrap_or_else(|e| e.into_inner()).held
        })
    }

    /// Give every unspent reserve back to the database (at shutdown).
    /// Returns how many uses could not be given back.
    pub fn give_back(&self, pool: &Pool) -> i64 {
        let reserves: Vec<(Box<str>, Arc<KeyReserve>)> = {
            let keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
            keys.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
        };
        let now = db::now();
        let mut lost = 0;
        for (id, key) in reserves {
            let (held, window, quota) = {
                let mut r = key.reserve.lock().unwrap_or_else(|e| e.into_inner());
                (std::mem::take(&mut r.held), r.window, r.quota)
            };
            let Some(quota) = quota.filter(|_| held > 0) else {
                continue;
            };
            let given = pool.get().map_err(|e| e.to_string()).and_then(|mut c| {
                quotas::give_back(&mut c, &id, &quota, held, window, now).map_err(|e| e.to_string())
            });
            if given.is_err() {
                lost += held;
            }
        }
        lost
    }

    /// Unspent uses held in all reserves.
    pub fn held_total(&self) -> i64 {
        let keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        keys.values()
            .map(|k| k.reserve.lock().unwrap_or_else(|e| e.into_inner()).held)
            .sum()
    }

    /// Forget reserves of keys not checked since the last prune and
    /// holding nothing.
    pub fn prune(&self) {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        keys.retain(|_, k| {
            Arc::strong_count(k) > 1 || k.reserve.lock().unwrap_or_else(|e| e.into_inner()).held > 0
        });
    }
}
