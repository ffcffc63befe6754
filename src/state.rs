//! The state one running server shares between its API and web handlers.

use crate::config::Config;
use crate::db::Pool;
use crate::domain::throttle::Throttle;
use crate::verify::Verifier;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Shared state of one running server.
pub struct AppState {
    pub pool: Pool,
    pub config: Config,
    /// Failed sign-ins per account.
    pub login_by_account: Throttle,
    /// Failed sign-ins per client address.
    pub login_by_ip: Throttle,
    /// Wrong current passwords on the change-password form, per user.
    pub password_change: Throttle,
    /// Public leak reports per client address (issue 25).
    pub leak_reports: Throttle,
    /// Wrong passwords on the confirm-password form, per person (issue 27).
    pub password_confirm: Throttle,
    /// Recoverable keys' secrets shown again, per person or management key
    /// (issue 27): a bound on how fast secrets can be collected.
    pub secret_reveals: Throttle,
    /// Digest of the one-time first-run setup token, while setup is pending.
    pub setup_token_digest: Mutex<Option<String>>,
    /// Key checking: cache, change feed, rate limits, usage buffers.
    pub verifier: Arc<Verifier>,
    /// On SQLite, the lock that keeps a second instance off the file.
    pub instance_lock: Option<std::fs::File>,
    /// Where people reach this keyward (`KEYWARD_PUBLIC_URL`, else the bound
    /// address), for links in invitations: never a request's Host header,
    /// which a client can forge.
    pub base_url: String,
    /// Whether the database is reachable: while it is not, requests fail
    /// at once instead of waiting for the pool.
    pub db_health: Arc<crate::db::health::DbHealth>,
    /// Prometheus metrics (served only on `KEYWARD_METRICS_BIND`).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Pool checkouts, waits and timeouts, for metrics.
    pub pool_events: Arc<crate::metrics::PoolEvents>,
    /// The metrics listener's port, when there is one.
    pub metrics_port: Option<u16>,
}

impl AppState {
    pub fn new(
        pool: Pool,
        config: Config,
        setup_token_digest: Option<String>,
        verifier: Arc<Verifier>,
    ) -> Self {
        let metrics = Arc::new(crate::metrics::Metrics::new(&verifier, config.pool_size));
        AppState {
            metrics,
            pool_events: Arc::default(),
            metrics_port: None,
            pool,
            config,
            login_by_account: Throttle::new(5, Duration::from_secs(15 * 60)),
            login_by_ip: Throttle::new(50, Duration::from_secs(15 * 60)),
            password_change: Throttle::new(5, Duration::from_secs(15 * 60)),
            password_confirm: Throttle::new(5, Duration::from_secs(15 * 60)),
            secret_reveals: Throttle::new(
                crate::domain::throttle::REVEALS_PER_WINDOW,
                crate::domain::throttle::REVEAL_WINDOW,
            ),
            leak_reports: Throttle::new(
                crate::domain::throttle::LEAK_REPORTS_PER_WINDOW,
                crate::domain::throttle::LEAK_REPORT_WINDOW,
            ),
            setup_token_digest: Mutex::new(setup_token_digest),
            verifier,
            instance_lock: None,
            base_url: String::new(),
            db_health: Arc::default(),
        }
    }

    pub fn session_lifetime(&self) -> crate::db::sessions::Lifetime {
        let delta =
            |d: Duration| chrono::TimeDelta::from_std(d).unwrap_or(chrono::TimeDelta::hours(1));
        crate::db::sessions::Lifetime {
            idle: delta(self.config.session_idle),
            max: delta(self.config.session_max),
        }
    }
}
