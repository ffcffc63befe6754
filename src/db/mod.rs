//! Database access: one connection type over SQLite and PostgreSQL, the pool,
//! migrations, and one module of plain functions per table. Every function
//! that reads workspace data takes the workspace id.

pub mod backup;
pub mod changes;
pub mod events;
pub mod health;
pub mod idempotency;
pub mod keys;
pub mod leaks;
pub mod mail;
pub mod people;
pub mod permissions;
pub mod plans;
pub mod pool_events;
pub mod quotas;
pub mod requests;
pub mod schema;
pub mod secrets;
pub mod service_accounts;
pub mod sessions;
pub mod settings;
pub mod sso;
pub mod usage;
pub mod users;
pub mod webhooks;
pub mod workspaces;

use crate::config::DatabaseUrl;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{self, ManageConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use std::time::Duration;

/// A connection to either backend. Queries written once against this type
/// run on both.
#[derive(diesel::MultiConnection)]
pub enum DbConn {
    Pg(PgConnection),
    Sqlite(SqliteConnection),
}

/// A pool of [`DbConn`].
pub type Pool = r2d2::Pool<Manager>;
/// A connection checked out of the pool.
pub type PooledConn = r2d2::PooledConnection<Manager>;

pub const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// SQLite settings applied to every new connection: WAL so readers do not
/// block the writer, enforced foreign keys, and a busy timeout so concurrent
/// writers wait instead of failing. `synchronous` is added per pool.
///
/// The busy timeout, like PostgreSQL's statement timeout below, is shorter
/// than the server's 10 s shutdown grace, so a stop never waits on a stuck
/// query longer than that.
const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; \
     PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000; PRAGMA cache_size = -512;";

/// The longest a PostgreSQL statement of a request may run (or wait for a
/// lock) before it is cancelled and the request answers 503. Migrations
/// lift it for their own connection.
const PG_SESSION: &str = "SET statement_timeout = '5s'";

pub use crate::config::SqliteSync;

/// The pragma that applies `sync` to a new SQLite connection.
fn sync_pragma(sync: SqliteSync) -> &'static str {
    match sync {
        SqliteSync::Full => "PRAGMA synchronous = FULL;",
        SqliteSync::Normal => "PRAGMA synchronous = NORMAL;",
    }
}

/// Opens connections for the pool, choosing the backend from the URL scheme
/// (never by trial, which would create a SQLite file named after a
/// PostgreSQL URL when the server is down).
#[derive(Debug, Clone)]
pub struct Manager {
    url: DatabaseUrl,
    sync: SqliteSync,
}

impl ManageConnection for Manager {
    type Connection = DbConn;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<DbConn, r2d2::Error> {
        match &self.url {
            DatabaseUrl::Postgres(url) => {
                let mut conn =
                    PgConnection::establish(url).map_err(r2d2::Error::ConnectionError)?;
                conn.batch_execute(PG_SESSION)
                    .map_err(r2d2::Error::QueryError)?;
                Ok(DbConn::Pg(conn))
            }
            DatabaseUrl::Sqlite(path) => {
                let mut conn = SqliteConnection::establish(&path.to_string_lossy())
                    .map_err(r2d2::Error::ConnectionError)?;
                conn.batch_execute(SQLITE_PRAGMAS)
                    .and_then(|()| conn.batch_execute(sync_pragma(self.sync)))
                    .map_err(r2d2::Error::QueryError)?;
                Ok(DbConn::Sqlite(conn))
            }
        }
    }

    fn is_valid(&self, conn: &mut DbConn) -> Result<(), r2d2::Error> {
        conn.batch_execute("SELECT 1")
            .map_err(r2d2::Error::QueryError)
    }

    fn has_broken(&self, _conn: &mut DbConn) -> bool {
        false
    }
}

/// Errors while opening the database at start-up.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("cannot connect to the database: {0}")]
    Pool(#[from] r2d2::PoolError),
    #[error("cannot apply database migrations: {0}")]
    Migrations(String),
    #[error("{0}")]
    Instance(String),
}

/// Build a pool. Connections are opened lazily beyond the first, so tests
/// that start many apps do not exhaust PostgreSQL's connection limit.
pub fn pool(url: &DatabaseUrl, max_size: u32) -> Result<Pool, InitError> {
    pool_with(url, max_size, SqliteSync::default())
}

/// [`pool`] with a choice of SQLite durability.
pub fn pool_with(url: &DatabaseUrl, max_size: u32, sync: SqliteSync) -> Result<Pool, InitError> {
    pool_counting(url, max_size, sync, Default::default())
}

/// [`pool_with`], counting checkouts, waits and timeouts into `events`
/// (for metrics).
pub fn pool_counting(
    url: &DatabaseUrl,
    max_size: u32,
    sync: SqliteSync,
    events: std::sync::Arc<pool_events::PoolEvents>,
) -> Result<Pool, InitError> {
    // Short, so that pages answer 503 within two seconds when the database
    // is gone (and then at once: see `health`).
    pool_waiting(url, max_size, sync, events, Duration::from_millis(1500))
}

/// How long a command-line run (`migrate`, `setup`, `workspace …`) waits
/// for a connection: it has no user waiting on a page, and on a busy
/// machine 1.5 s was seen to pass before one was open.
pub const COMMAND_LINE_WAIT: Duration = Duration::from_secs(30);

/// [`pool_counting`] waiting up to `wait` for a connection.
pub fn pool_waiting(
    url: &DatabaseUrl,
    max_size: u32,
    sync: SqliteSync,
    events: std::sync::Arc<pool_events::PoolEvents>,
    wait: Duration,
) -> Result<Pool, InitError> {
    let pool = r2d2::Pool::builder()
        .event_handler(Box::new(pool_events::PoolEventCounter(events)))
        .max_size(max_size)
        .min_idle(Some(1))
        .connection_timeout(wait)
        .build(Manager {
            url: url.clone(),
            sync,
        })?;
    Ok(pool)
}

/// Apply pending migrations for the connection's backend and return the
/// versions applied. On PostgreSQL an advisory lock makes instances that
/// start together take turns.
pub fn migrate(conn: &mut DbConn) -> Result<Vec<String>, InitError> {
    let err = |e: Box<dyn std::error::Error + Send + Sync>| InitError::Migrations(e.to_string());
    let applied = match conn {
        DbConn::Pg(pg) => {
            const LOCK: &str = "SELECT pg_advisory_lock(7306589271)";
            const UNLOCK: &str = "SELECT pg_advisory_unlock(7306589271)";
            // Waiting for another instance's migrations, or building an
            // index over many keys, may take longer than a request may.
            pg.batch_execute("SET statement_timeout = 0")
                .map_err(|e| err(e.into()))?;
            pg.batch_execute(LOCK).map_err(|e| err(e.into()))?;
            let result = pg
                .run_pending_migrations(PG_MIGRATIONS)
                .map(|v| v.iter().map(ToString::to_string).collect::<Vec<_>>());
            pg.batch_execute(UNLOCK).map_err(|e| err(e.into()))?;
            pg.batch_execute(PG_SESSION).map_err(|e| err(e.into()))?;
            result.map_err(err)?
        }
        DbConn::Sqlite(lite) => lite
            .run_pending_migrations(SQLITE_MIGRATIONS)
            .map_err(err)?
            .iter()
            .map(ToString::to_string)
            .collect(),
    };
    Ok(applied)
}

/// Whether migrations this build knows are not applied yet (for `/readyz`).
pub fn has_pending_migrations(conn: &mut DbConn) -> QueryResult<bool> {
    let pending = match conn {
        DbConn::Pg(pg) => pg.has_pending_migration(PG_MIGRATIONS),
        DbConn::Sqlite(lite) => lite.has_pending_migration(SQLITE_MIGRATIONS),
    };
    pending.map_err(|e| diesel::result::Error::QueryBuilderError(e.to_string().into()))
}

/// Whether the database answers a trivial query (for `/readyz`).
pub fn ping(conn: &mut DbConn) -> QueryResult<()> {
    conn.batch_execute("SELECT 1")
}

/// A transaction that will write, taking SQLite's write lock at its start
/// (`BEGIN IMMEDIATE`). A deferred SQLite transaction that reads before
/// its first write cannot wait for another writer: it fails at once with
/// "database is locked" (a 503 to the user). Begun immediately, it waits its
/// turn under the busy timeout like any writer. On PostgreSQL it is an
/// ordinary transaction. Every transaction of keyward writes, so all use it.
///
/// The commit is ours rather than Diesel's so that a connection lost while
/// `COMMIT` was in flight is told apart from every other failure: the
/// server may have committed before the connection broke, so that error is
/// returned marked (see [`health::is_commit_in_doubt`]) and nobody is told
/// "nothing was saved". A connection lost before `COMMIT` was sent leaves
/// nothing behind (the server rolls back an unfinished transaction).
pub fn write_transaction<T, E, F>(conn: &mut DbConn, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    fn depth(conn: &mut DbConn) -> QueryResult<bool> {
        Ok(match conn {
            DbConn::Pg(pg) => AnsiTransactionManager::transaction_manager_status_mut(pg)
                .transaction_depth()?
                .is_some(),
            DbConn::Sqlite(lite) => AnsiTransactionManager::transaction_manager_status_mut(lite)
                .transaction_depth()?
                .is_some(),
        })
    }
    // Inside a transaction already (a savepoint then): it holds the lock
    // or will take it as the outer transaction decided, and the outer
    // commit is the one that can be in doubt.
    if depth(conn)? {
        return conn.transaction(f);
    }
    match conn {
        DbConn::Pg(pg) => AnsiTransactionManager::begin_transaction(pg)?,
        DbConn::Sqlite(lite) => {
            AnsiTransactionManager::begin_transaction_sql(lite, "BEGIN IMMEDIATE")?
        }
    }
    let result = f(conn);
    match result {
        Ok(value) => {
            let committed = match conn {
                DbConn::Pg(pg) => AnsiTransactionManager::commit_transaction(pg),
                DbConn::Sqlite(lite) => AnsiTransactionManager::commit_transaction(lite)
                    .inspect_err(|_| {
                        // As Diesel does: a failed COMMIT leaves the
                        // transaction open; end it, then report the
                        // commit's error. (On PostgreSQL Diesel's commit
                        // already did.)
                        let _ = AnsiTransactionManager::rollback_transaction(lite);
                    }),
            };
            match committed {
                Ok(()) => Ok(value),
                Err(e) => Err(health::commit_failed(e).into()),
            }
        }
        Err(e) => {
            let rolled_back = match conn {
                DbConn::Pg(pg) => AnsiTransactionManager::rollback_transaction(pg),
                DbConn::Sqlite(lite) => AnsiTransactionManager::rollback_transaction(lite),
            };
            match rolled_back {
                // A broken connection cannot roll back; the server does,
                // and the first error says more.
                Ok(()) | Err(diesel::result::Error::BrokenTransactionManager) => Err(e),
                Err(rollback) if health::is_connection_error(&rollback) => Err(e),
                Err(rollback) => Err(rollback.into()),
            }
        }
    }
}

/// The current time in UTC, at microsecond precision so values round-trip
/// identically through both backends.
pub fn now() -> chrono::NaiveDateTime {
    let now = chrono::Utc::now().naive_utc();
    chrono::DurationRound::duration_trunc(now, chrono::TimeDelta::microseconds(1)).unwrap_or(now)
}

/// Rows a statement writes when SQLite writes a batch of rows (the usage
/// flush): Diesel prepares an `UPDATE`, an upsert or raw SQL anew every
/// time it runs one (it marks them unsafe to cache), so a statement a row
/// was parsed and planned for every row, about 37k instructions each, while
/// holding SQLite's one write lock. A statement a chunk pays that once a
/// chunk; 5 values a row stay well inside SQLite's 32,766 parameters.
pub(crate) const SQLITE_CHUNK: usize = 250;

/// The placeholders of `rows` rows of `columns` values, as a multi-row
/// `VALUES` list takes them: `(?, ?), (?, ?)`.
pub(crate) fn sqlite_rows(rows: usize, columns: usize) -> String {
    let row = format!("({})", vec!["?"; columns].join(", "));
    vec![row; rows].join(", ")
}

/// Escape `\`, `%` and `_` for a `LIKE … ESCAPE '\'` pattern.
pub(crate) fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// Claim a SQLite database file for this process. SQLite serves one
/// instance: a second `serve` on the same file would keep its own cache and
/// rate limits, and never hear of the first one's revocations, so it must
/// refuse to start. The lock is an advisory lock on `<database>.lock`, held
/// until the returned file is dropped (or the process ends, however it
/// ends).
pub fn claim_sqlite(path: &std::path::Path) -> Result<std::fs::File, InitError> {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    let lock_path = std::path::PathBuf::from(name);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| InitError::Instance(format!("cannot open {}: {e}", lock_path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(InitError::Instance(format!(
            "another keyward is already serving {}; SQLite serves one instance (use PostgreSQL to run several)",
            path.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(InitError::Instance(format!(
            "cannot lock {}: {e}",
            lock_path.display()
        ))),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sqlite_rows_lists_placeholders_row_by_row() {
        assert_eq!(super::sqlite_rows(1, 1), "(?)");
        assert_eq!(super::sqlite_rows(2, 3), "(?, ?, ?), (?, ?, ?)");
    }
}
