//! The change feed's cross-instance half: a dedicated PostgreSQL connection
//! that `LISTEN`s for the notifications the triggers send on every key and
//! workspace change, and applies them to this instance's cache.
//!
//! libpq reports notifications without blocking, so the listener polls its
//! socket every [`POLL`] (a revoke on another instance is applied here
//! within that, plus the commit). A broken connection is re-made with
//! back-off; after every (re)connect the whole cache is dropped, because
//! notifications sent while it was away are lost.

use crate::db::changes::{CHANNEL, Change};
use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};
use std::sync::Weak;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How often pending notifications are read.
const POLL: Duration = Duration::from_millis(20);
/// How often the connection is checked with a query, so a silently dead
/// connection is noticed even when nothing changes.
const HEALTH_EVERY: Duration = Duration::from_secs(5);
/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// What the listener reports, for `/readyz` and metrics.
#[derive(Debug)]
pub struct FeedStatus {
    /// Notifications applied.
    pub applied: AtomicU64,
    /// Times the listener (re)connected.
    pub connects: AtomicU64,
    /// From the write (the trigger's clock) to the change applied here.
    pub lag: prometheus::Histogram,
}

impl Default for FeedStatus {
    fn default() -> Self {
        FeedStatus {
            applied: AtomicU64::new(0),
            connects: AtomicU64::new(0),
            lag: prometheus::Histogram::with_opts(
                prometheus::HistogramOpts::new(
                    "keyward_change_feed_lag_seconds",
                    "From a change written (PostgreSQL's clock, in the writing transaction) to its notification applied on this instance (this host's clock).",
                )
                .buckets(vec![
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ]),
            )
            .expect("valid metric"),
        }
    }
}

/// Something that takes changes; the listener holds it weakly and stops
/// when it is gone (the server stopped).
pub trait ApplyChange: Send + Sync + 'static {
    fn apply_change(&self, change: &Change);
    fn feed_status(&self) -> &FeedStatus;
    /// Everything that exists now (read after LISTEN, so nothing created
    /// from here on is missed): the digest index is rebuilt from it.
    fn resync(&self, prefixes: Vec<u64>);
    /// The feed lost its connection: changes elsewhere may be missed.
    fn feed_lost(&self);
}

/// Start listening on its own thread. The thread ends when `target` is
/// dropped.
pub fn spawn<T: ApplyChange>(url: String, target: Weak<T>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("keyward-change-feed".into())
        .spawn(move || run(&url, &target))
        .map(|_| ())
}

fn run<T: ApplyChange>(url: &str, target: &Weak<T>) {
    let mut backoff = Duration::from_millis(100);
    let mut warned = false;
    loop {
        if target.strong_count() == 0 {
            return;
        }
        let conn = match PgConnection::establish(url)
            .map_err(|e| e.to_string())
            .and_then(|mut c| {
                c.batch_execute(&format!("LISTEN {CHANNEL}"))
                    .map(|()| c)
                    .map_err(|e| e.to_string())
            }) {
            Ok(conn) => conn,
            Err(e) => {
                if !warned {
                    tracing::warn!(error = %e, "change feed cannot listen; other instances' changes reach this one only after it reconnects");
                    warned = true;
                }
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        let mut db = crate::db::DbConn::Pg(conn);
        let digests = match crate::db::keys::all_digests(&mut db) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "change feed could not read the key index; retrying");
                std::thread::sleep(backoff);
                continue;
            }
        };
        let crate::db::DbConn::Pg(mut conn) = db else {
            return;
        };
        let Some(t) = target.upgrade() else { return };
        // Anything may have changed while we were not listening.
        t.resync(digests);
        t.apply_change(&Change::All);
        t.feed_status().connects.fetch_add(1, Ordering::Relaxed);
        drop(t);
        if warned {
            tracing::info!("change feed listening again");
        }
        warned = false;
        backoff = Duration::from_millis(100);
        if let Err(e) = listen(&mut conn, target) {
            tracing::warn!(error = %e, "change feed connection lost; reconnecting");
            if let Some(t) = target.upgrade() {
                t.feed_lost();
            }
        } else {
            return;
        }
    }
}

/// Apply notifications until the connection breaks (`Err`) or the target
/// is gone (`Ok`).
fn listen<T: ApplyChange>(conn: &mut PgConnection, target: &Weak<T>) -> Result<(), String> {
    let mut checked = Instant::now();
    loop {
        let Some(t) = target.upgrade() else {
            return Ok(());
        };
        for n in conn.notifications_iter() {
            let n = n.map_err(|e| e.to_string())?;
            if let Some(sent) = crate::db::changes::sent_at(&n.payload) {
                let lag = chrono::Utc::now().naive_utc() - sent;
                // A clock behind PostgreSQL's would give a negative lag.
                if let Ok(lag) = lag.to_std() {
                    t.feed_status().lag.observe(lag.as_secs_f64());
                }
            }
            match Change::from_payload(&n.payload) {
                Some(change) => t.apply_change(&change),
                // Unreadable: be safe rather than precise.
                None => t.apply_change(&Change::All),
            }
            t.feed_status().applied.fetch_add(1, Ordering::Relaxed);
        }
        drop(t);
        if checked.elapsed() >= HEALTH_EVERY {
            conn.batch_execute("SELECT 1").map_err(|e| e.to_string())?;
            checked = Instant::now();
        }
        std::thread::sleep(POLL);
    }
}
