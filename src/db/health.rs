//! Failing fast while the database is down.
//!
//! Without this, every page, readiness probe and key lookup waited for the
//! pool's checkout timeout before answering 503 during an outage. After a
//! connection-class failure the database is marked down: requests are
//! refused at once, and one request a second is let through as a probe;
//! its success marks the database up again. Pure state: callers pass the
//! time and report outcomes.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often a request is let through to probe a database marked down.
pub const PROBE_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
struct State {
    /// When the database was marked down, and when a probe last went out.
    down_since: Option<Instant>,
    last_probe: Option<Instant>,
}

/// The shared view of the database's health.
#[derive(Debug, Default)]
pub struct DbHealth {
    state: Mutex<State>,
}

impl DbHealth {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a request may use the database now: always while it is up;
    /// while it is down, one request per [`PROBE_EVERY`].
    pub fn admit(&self, now: Instant) -> bool {
        let mut s = self.lock();
        if s.down_since.is_none() {
            return true;
        }
        if s.last_probe
            .is_none_or(|p| now.saturating_duration_since(p) >= PROBE_EVERY)
        {
            s.last_probe = Some(now);
            return true;
        }
        false
    }

    /// Report that the database could not be reached.
    pub fn failed(&self, now: Instant) {
        let mut s = self.lock();
        if s.down_since.is_none() {
            tracing::warn!("database unreachable: answering 503 at once and probing every second");
            s.down_since = Some(now);
            s.last_probe = Some(now);
        }
    }

    /// Report that the database answered.
    pub fn succeeded(&self) {
        let mut s = self.lock();
        if let Some(since) = s.down_since.take() {
            tracing::info!(
                down_for_ms = since.elapsed().as_millis() as u64,
                "database reachable again"
            );
        }
        s.last_probe = None;
    }

    /// Whether the database is currently marked down.
    pub fn is_down(&self) -> bool {
        self.lock().down_since.is_some()
    }
}

/// Whether an error means the database could not be reached (rather than
/// refusing a query): these answer 503 and mark the database down.
pub fn is_connection_error(e: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    match e {
        Error::DatabaseError(DatabaseErrorKind::ClosedConnection, _) => true,
        Error::DatabaseError(..) => mentions(
            e,
            &[
                "terminating connection",
                "server closed the connection",
                "no connection to the server",
                "connection refused",
                "could not connect",
                "could not receive data",
                "could not send data",
                "the database system is shutting down",
                "the database system is starting up",
                "does not allow connections",
                "ssl syscall error",
                "eof detected",
            ],
        ),
        Error::BrokenTransactionManager => true,
        _ => false,
    }
}

/// The start of the message of a commit whose outcome is unknown.
const IN_DOUBT: &str = "commit outcome unknown: ";

/// A commit in doubt: the connection broke while `COMMIT` was in flight,
/// so the server may or may not have committed.
#[derive(Debug)]
struct InDoubt(String);

impl diesel::result::DatabaseErrorInformation for InDoubt {
    fn message(&self) -> &str {
        &self.0
    }
    fn details(&self) -> Option<&str> {
        None
    }
    fn hint(&self) -> Option<&str> {
        None
    }
    fn table_name(&self) -> Option<&str> {
        None
    }
    fn column_name(&self) -> Option<&str> {
        None
    }
    fn constraint_name(&self) -> Option<&str> {
        None
    }
    fn statement_position(&self) -> Option<i32> {
        None
    }
}

/// What a failed `COMMIT` means: a lost connection makes it a commit in
/// doubt (still a connection error, so the database is marked down and the
/// answer is a 503); anything else the server refused, and it rolled back.
pub fn commit_failed(e: diesel::result::Error) -> diesel::result::Error {
    use diesel::result::{DatabaseErrorKind, Error};
    // Diesel reports the commit's error together with the rollback's when
    // it tried to roll back after the failed commit.
    let commit = match &e {
        Error::RollbackErrorOnCommit { commit_error, .. } => commit_error.as_ref(),
        other => other,
    };
    if !is_connection_error(commit) {
        return e;
    }
    Error::DatabaseError(
        DatabaseErrorKind::ClosedConnection,
        Box::new(InDoubt(format!("{IN_DOUBT}{commit}"))),
    )
}

/// Whether the connection broke while a commit was in flight: the change
/// may have been made.
pub fn is_commit_in_doubt(e: &diesel::result::Error) -> bool {
    matches!(e, diesel::result::Error::DatabaseError(_, info) if info.message().starts_with(IN_DOUBT))
}

/// Whether an error means the database was too busy to answer in time: a
/// PostgreSQL statement cancelled by its timeout, or SQLite still locked by
/// another writer after its busy timeout. The database is up; the request
/// answers 503 and may be retried.
pub fn is_busy(e: &diesel::result::Error) -> bool {
    mentions(
        e,
        &[
            "canceling statement due to statement timeout",
            "canceling statement due to lock timeout",
            "database is locked",
            "database table is locked",
            "database is busy",
        ],
    )
}

/// Whether an error means the database's storage could not take a write
/// (a full disk).
pub fn is_storage_full(e: &diesel::result::Error) -> bool {
    mentions(
        e,
        &[
            "database or disk is full",
            "no space left on device",
            // SQLite rolls a transaction back by itself when the disk is
            // full (or on an I/O error); diesel's own ROLLBACK then fails
            // with this, hiding the first error.
            "cannot rollback - no transaction is active",
        ],
    )
}

/// Whether any of these errors means the request cannot be served right
/// now (503) rather than a fault (500).
pub fn is_unavailable(e: &diesel::result::Error) -> bool {
    is_storage_full(e) || is_connection_error(e) || is_busy(e)
}

/// Whether a database error's message contains one of `needles` (given in
/// lower case), case-insensitively.
fn mentions(e: &diesel::result::Error, needles: &[&str]) -> bool {
    match e {
        diesel::result::Error::DatabaseError(_, info) => {
            let m = info.message().to_ascii_lowercase();
            needles.iter().any(|needle| m.contains(needle))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_commit_cut_off_by_a_lost_connection_is_in_doubt() {
        use diesel::result::{DatabaseErrorKind, Error};
        let closed = || {
            Error::DatabaseError(
                DatabaseErrorKind::Unknown,
                Box::new("server closed the connection unexpectedly".to_owned()),
            )
        };
        let doubt = commit_failed(closed());
        assert!(is_commit_in_doubt(&doubt));
        assert!(
            is_connection_error(&doubt),
            "still answered 503, marks down"
        );
        assert!(!is_commit_in_doubt(&closed()), "not at commit: not made");
        let both = commit_failed(Error::RollbackErrorOnCommit {
            rollback_error: Box::new(Error::BrokenTransactionManager),
            commit_error: Box::new(closed()),
        });
        assert!(is_commit_in_doubt(&both));
        let refused = Error::DatabaseError(
            DatabaseErrorKind::SerializationFailure,
            Box::new("could not serialize access".to_owned()),
        );
        assert!(!is_commit_in_doubt(&commit_failed(refused)));
    }

    #[test]
    fn down_admits_one_probe_a_second_until_it_succeeds() {
        let h = DbHealth::default();
        let t0 = Instant::now();
        assert!(h.admit(t0));
        h.failed(t0);
        assert!(h.is_down());
        assert!(!h.admit(t0 + Duration::from_millis(10)), "refused at once");
        assert!(h.admit(t0 + Duration::from_millis(1000)), "the probe");
        assert!(!h.admit(t0 + Duration::from_millis(1100)));
        h.failed(t0 + Duration::from_millis(1100));
        assert!(h.admit(t0 + Duration::from_millis(2000)), "the next probe");
        h.succeeded();
        assert!(!h.is_down());
        assert!(h.admit(t0 + Duration::from_millis(2001)));
        assert!(h.admit(t0 + Duration::from_millis(2002)));
    }
}
