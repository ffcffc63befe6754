//! Connection pool events, counted where the pool is built and read by
//! `metrics` when Prometheus scrapes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Connection pool events r2d2 reports: checkouts, their waits, timeouts.
#[derive(Debug, Default)]
pub struct PoolEvents {
    pub checkouts: AtomicU64,
    pub wait_micros: AtomicU64,
    pub timeouts: AtomicU64,
}

/// Counts pool events into a shared [`PoolEvents`].
#[derive(Debug)]
pub struct PoolEventCounter(pub Arc<PoolEvents>);

impl diesel::r2d2::HandleEvent for PoolEventCounter {
    fn handle_checkout(&self, event: diesel::r2d2::event::CheckoutEvent) {
        self.0.checkouts.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(event.duration().as_micros()).unwrap_or(u64::MAX);
        self.0.wait_micros.fetch_add(micros, Ordering::Relaxed);
    }

    fn handle_timeout(&self, _event: diesel::r2d2::event::TimeoutEvent) {
        self.0.timeouts.fetch_add(1, Ordering::Relaxed);
    }
}
