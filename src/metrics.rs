//! Prometheus metrics, served on their own listener (`KEYWARD_METRICS_BIND`)
//! so they are never public by accident.
//!
//! The hot path only touches atomics: each outcome has its own pre-resolved
//! counter, the duration histogram is the `prometheus` crate's lock-free
//! one, and HTTP counters are looked up in a per-worker map (no lock shared
//! between threads). Everything else (pool, change feed, process) is read
//! when Prometheus scrapes.

use crate::db::Pool;
use crate::verify::Verifier;
use hashbrown::HashMap;
use prometheus::core::Collector;
use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};
use std::cell::RefCell;
use std::sync::Mutex;
use std::sync::atomic::Ordering;

pub use crate::db::pool_events::PoolEvents;
pub use crate::verify::counters::VerifyMetrics;

fn counter(name: &str, help: &str) -> IntCounter {
    IntCounter::new(name, help).expect("valid metric")
}

fn gauge(name: &str, help: &str) -> IntGauge {
    IntGauge::new(name, help).expect("valid metric")
}

/// A counter mirroring an atomic kept elsewhere, brought up to date at
/// scrape time.
struct Mirror(IntCounter);

impl Mirror {
    fn set(&self, value: u64) {
        let have = self.0.get();
        if value > have {
            self.0.inc_by(value - have);
        }
    }
}

/// All metrics of one server.
pub struct Metrics {
    registry: Registry,
    /// Requests by route pattern and status.
    pub http: IntCounterVec,
    pool_in_use: IntGauge,
    pool_idle: IntGauge,
    pool_max: IntGauge,
    pool_checkouts: Mirror,
    pool_wait_seconds: prometheus::Counter,
    pool_timeouts: Mirror,
    feed_connects: Mirror,
    feed_applied: Mirror,
    heap_in_use: IntGauge,
    heap_free: IntGauge,
    give_backs: Mirror,
    /// Serialises scrapes (mirrors are read-modify-write).
    scrape: Mutex<()>,
}

impl Metrics {
    /// Register everything, the verifier's counters included.
    pub fn new(verifier: &Verifier, pool_max: u32) -> Self {
        let registry = Registry::new();
        let http = IntCounterVec::new(
            Opts::new(
                "keyward_http_requests_total",
                "HTTP requests by route pattern (never the path) and status.",
            ),
            &["route", "status"],
        )
        .expect("valid metric");
        let metrics = Metrics {
            http,
            pool_in_use: gauge(
                "keyward_db_pool_connections_in_use",
                "Database connections checked out of the pool.",
            ),
            pool_idle: gauge(
                "keyward_db_pool_connections_idle",
                "Open database connections waiting in the pool.",
            ),
            pool_max: gauge(
                "keyward_db_pool_connections_max",
                "Most database connections the pool opens.",
            ),
            pool_checkouts: Mirror(counter(
                "keyward_db_pool_checkouts_total",
                "Connections taken from the pool.",
            )),
            pool_wait_seconds: prometheus::Counter::new(
                "keyward_db_pool_wait_seconds_total",
                "Time spent waiting for a pool connection, summed over checkouts.",
            )
            .expect("valid metric"),
            pool_timeouts: Mirror(counter(
                "keyward_db_pool_timeouts_total",
                "Checkouts that gave up waiting for a connection.",
            )),
            feed_connects: Mirror(counter(
                "keyward_change_feed_connects_total",
                "Times the PostgreSQL change feed (re)connected.",
            )),
            feed_applied: Mirror(counter(
                "keyward_change_feed_applied_total",
                "Change notifications from other instances applied.",
            )),
            heap_in_use: gauge(
                "keyward_heap_in_use_bytes",
                "Heap the process uses, as its allocator counts it (glibc builds).",
            ),
            heap_free: gauge(
                "keyward_heap_free_bytes",
                "Heap that is free but still held by the allocator (glibc builds); \
                 resident until returned to the system.",
            ),
            give_backs: Mirror(counter(
                "keyward_heap_give_backs_total",
                "Times free heap was returned to the system after a burst.",
            )),
            scrape: Mutex::new(()),
            registry,
        };
        metrics.pool_max.set(i64::from(pool_max));
        let mut collectors: Vec<Box<dyn Collector>> = vec![
            Box::new(metrics.http.clone()),
            Box::new(metrics.pool_in_use.clone()),
            Box::new(metrics.pool_idle.clone()),
            Box::new(metrics.pool_max.clone()),
            Box::new(metrics.pool_checkouts.0.clone()),
            Box::new(metrics.pool_wait_seconds.clone()),
            Box::new(metrics.pool_timeouts.0.clone()),
            Box::new(metrics.feed_connects.0.clone()),
            Box::new(metrics.feed_applied.0.clone()),
            Box::new(metrics.give_backs.0.clone()),
        ];
        if crate::memory::heap().is_some() {
            collectors.push(Box::new(metrics.heap_in_use.clone()));
            collectors.push(Box::new(metrics.heap_free.clone()));
        }
        collectors.extend(verifier.metrics.collectors());
        collectors.push(Box::new(verifier.feed_status().lag.clone()));
        #[cfg(target_os = "linux")]
        collectors.push(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ));
        for c in collectors {
            metrics.registry.register(c).expect("unique metric names");
        }
        metrics
    }

    /// The text exposition of every metric, read now.
    pub fn render(&self, pool: &Pool, verifier: &Verifier, events: &PoolEvents) -> String {
        let _one_at_a_time = self.scrape.lock().unwrap_or_else(|e| e.into_inner());
        let state = pool.state();
        self.pool_idle.set(i64::from(state.idle_connections));
        self.pool_in_use
            .set(i64::from(state.connections - state.idle_connections));
        self.pool_checkouts
            .set(events.checkouts.load(Ordering::Relaxed));
        self.pool_timeouts
            .set(events.timeouts.load(Ordering::Relaxed));
        let waited = events.wait_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let have = self.pool_wait_seconds.get();
        if waited > have {
            self.pool_wait_seconds.inc_by(waited - have);
        }
        let feed = verifier.feed_status();
        self.feed_connects
            .set(feed.connects.load(Ordering::Relaxed));
        self.feed_applied.set(feed.applied.load(Ordering::Relaxed));
        if let Some((in_use, free)) = crate::memory::heap() {
            self.heap_in_use
                .set(i64::try_from(in_use).unwrap_or(i64::MAX));
            self.heap_free.set(i64::try_from(free).unwrap_or(i64::MAX));
        }
        self.give_backs
            .set(crate::memory::GIVE_BACKS.load(Ordering::Relaxed));
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_default()
    }
}

/// One worker's view of the HTTP counters: a plain map owned by the worker
/// thread (hashed with foldhash, not SipHash: the keys are our own route
/// patterns), so counting a request takes no lock shared with other workers.
pub struct HttpCounters {
    vec: IntCounterVec,
    by_route: RefCell<HashMap<String, Vec<(u16, IntCounter)>>>,
}

impl HttpCounters {
    pub fn new(vec: IntCounterVec) -> Self {
        HttpCounters {
            vec,
            by_route: RefCell::default(),
        }
    }

    /// Count a request to `route` (a pattern, never a raw path).
    pub fn inc(&self, route: &str, status: u16) {
        let mut map = self.by_route.borrow_mut();
        if !map.contains_key(route) {
            map.insert(route.to_owned(), Vec::new());
        }
        let Some(statuses) = map.get_mut(route) else {
            return;
        };
        if let Some((_, c)) = statuses.iter().find(|(s, _)| *s == status) {
            c.inc();
            return;
        }
        let c = self
            .vec
            .with_label_values(&[route, status.to_string().as_str()]);
        c.inc();
        statuses.push((status, c));
    }
}
