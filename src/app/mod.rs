//! The use cases, once: what a person does through a page and a script does
//! through the management API is the same function here.
//!
//! A use case takes a [`Ctx`] (who acts: a signed-in membership, or a
//! management key acting for one) and typed input; it asks the policy
//! module, runs its transaction through [`run`], which applies the key-cache
//! changes before it returns (a revoke is final on this instance when the
//! use case returns), records the audit event (the `db` functions do, inside
//! the transaction), and returns a domain result or one [`Error`].
//!
//! No HTTP here: the two surfaces, `web` (pages) and `api` (JSON), each turn
//! an [`Error`] into their own answer, and `lib.rs` tests that they answer
//! every failure with the same status.

pub mod auth;
pub mod events;
pub mod keys;
pub mod leaks;
pub mod mail;
pub mod plans;
pub mod recover;
pub mod requests;
pub mod service_accounts;
pub mod settings;
pub mod sso;
pub mod users;
pub mod webhooks;
pub mod workspaces;

use crate::db::DbConn;
use crate::db::events::AuditContext;
use crate::db::keys::ApiKey;
use crate::db::users::User;
use crate::domain::input::FieldError;
use crate::domain::policy::{self, Action, Actor, Decision};
use crate::state::AppState;

/// Why a use case did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No such thing in the actor's workspace, or one the actor may not
    /// even see: the same answer, so ids reveal nothing.
    #[error("not found")]
    NotFound,
    /// The actor's role does not allow this (each surface words it for
    /// its audience).
    #[error("the actor's role does not allow this")]
    RoleForbids,
    /// A refusal with its own reason.
    #[error("{0}")]
    Forbidden(String),
    /// The request conflicts with the current state (a revoked key, a limit,
    /// a switch, a form sent twice). `code` is stable for scripts.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// Input that breaks a rule, with a message per field.
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    /// A well-formed request that cannot be acted on as sent (an
    /// `Idempotency-Key` reused for another request).
    #[error("{message}")]
    Unprocessable { code: &'static str, message: String },
    /// A request that cannot be read at all (a parameter out of range, a
    /// cursor that is not one of ours).
    #[error("{0}")]
    BadRequest(String),
    /// Too many attempts (sign-in, password checks): wait and try again.
    #[error("{message}")]
    TooManyRequests {
        message: String,
        retry_after_secs: u64,
    },
    /// A one-time link that is unknown, used or expired.
    #[error("{0}")]
    Gone(String),
    /// The database is known to be unreachable (failing fast).
    #[error("the database is unreachable")]
    Unavailable,
    /// The connection to the database broke while a change was being
    /// committed: it may or may not have been made (the cause, for the log).
    #[error("the change may have been made: {0}")]
    OutcomeUnknown(diesel::result::Error),
    /// The connection broke while a change was being committed, and the
    /// database, asked again, shows it was not made.
    #[error("the change was not made: {0}")]
    NotSaved(diesel::result::Error),
    /// A database failure: the surfaces tell an unreachable, busy or full
    /// database (503) from anything else (500).
    #[error("database error: {0}")]
    Db(#[from] diesel::result::Error),
    #[error("database pool error: {0}")]
    Pool(#[from] diesel::r2d2::PoolError),
    #[error("{0}")]
    Internal(String),
}

impl Error {
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Error::Conflict {
            code,
            message: message.into(),
        }
    }

    /// One field's error.
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Error::Invalid(vec![FieldError::new(field, message)])
    }

    /// The stable code of a conflict, if this is one.
    pub fn conflict_code(&self) -> Option<&'static str> {
        match self {
            Error::Conflict { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// Refusals of key changes, as the one failure type.
impl From<crate::db::keys::KeyError> for Error {
    fn from(e: crate::db::keys::KeyError) -> Self {
        use crate::db::keys::KeyError;
        match e {
            KeyError::NotFound => Error::NotFound,
            KeyError::Revoked => Error::conflict("KEY_REVOKED", e.to_string()),
            KeyError::NotRevocable => Error::conflict("KEY_NOT_REVOCABLE", e.to_string()),
            KeyError::OwnerDisabled => Error::conflict("SERVICE_ACCOUNT_DISABLED", e.to_string()),
            KeyError::LimitReached(_) => Error::conflict("KEY_LIMIT_REACHED", e.to_string()),
            KeyError::NoQuota => Error::conflict("NO_QUOTA", e.to_string()),
            KeyError::DuplicateRequest => Error::conflict("DUPLICATE_REQUEST", e.to_string()),
            KeyError::Db(e) => Error::Db(e),
        }
    }
}

/// Refusals of membership changes, as the one failure type.
impl From<crate::db::users::UserChangeError> for Error {
    fn from(e: crate::db::users::UserChangeError) -> Self {
        use crate::db::users::UserChangeError as U;
        match e {
            U::NotFound => Error::NotFound,
            U::LastAdmin => Error::conflict("LAST_ADMIN", e.to_string()),
            U::EmailTaken => Error::invalid("email", e.to_string()),
            U::Db(e) => Error::Db(e),
            other @ U::AlreadySetUp => Error::Internal(other.to_string()),
        }
    }
}

impl From<tokio::task::JoinError> for Error {
    fn from(e: tokio::task::JoinError) -> Self {
        Error::Internal(format!("blocking task failed: {e}"))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Who is acting, in which workspace, and what their changes are recorded
/// as: a signed-in membership, or a management key acting for the member
/// behind it (its owner, or a workspace key's creator).
#[derive(Debug, Clone)]
pub struct Ctx {
    pub actor: Actor,
    /// The acting membership, with its person's email and name.
    pub user: User,
    /// Who the audit trail names, and from where.
    pub audit: AuditContext,
    /// The management key making this request, when it comes through the
    /// API (the audit actor is then that key).
    pub via_key: Option<ApiKey>,
}

impl Ctx {
    /// The workspace every query of this use case is scoped to.
    pub fn workspace_id(&self) -> &str {
        &self.actor.workspace_id
    }

    /// Ask the policy module.
    pub fn authorize(&self, action: Action<'_>) -> Result<()> {
        authorize(&self.actor, action)
    }

    /// Whether the policy allows `action` (for what a page offers).
    pub fn may(&self, action: Action<'_>) -> bool {
        policy::authorize(&self.actor, action).is_allowed()
    }
}

/// Ask the policy module whether `actor` may do `action`, as a failure:
/// what the role forbids, or not found for what the actor may not see.
pub fn authorize(actor: &Actor, action: Action<'_>) -> Result<()> {
    match policy::authorize(actor, action) {
        Decision::Allow => Ok(()),
        Decision::Forbidden => Err(forbidden()),
        Decision::NotFound => Err(Error::NotFound),
    }
}

/// The refusal for a role that may not do something.
pub fn forbidden() -> Error {
    Error::RoleForbids
}

/// What [`run_as`] needs of a failure type: to say the database could not
/// be reached (known down, or no connection from the pool), that the
/// blocking task failed, and whether a failure was a lost connection.
pub trait DbFailure: From<diesel::r2d2::PoolError> + Send + 'static {
    fn unavailable() -> Self;
    fn blocking(e: tokio::task::JoinError) -> Self;
    fn lost_connection(&self) -> bool;
}

impl DbFailure for Error {
    fn unavailable() -> Self {
        Error::Unavailable
    }

    fn blocking(e: tokio::task::JoinError) -> Self {
        e.into()
    }

    fn lost_connection(&self) -> bool {
        matches!(self, Error::Db(e) | Error::OutcomeUnknown(e) if crate::db::health::is_connection_error(e))
    }
}

/// Database work off the async runtime, failing as [`Error`]. This is the
/// one way use cases reach the database: whatever the work changed for key
/// checks (recorded by the `db` functions that wrote it) is applied to the
/// key cache here, before the result is returned, so a revoke answered to
/// anyone is already refused by this instance.
pub async fn run<F, T>(state: &AppState, f: F) -> Result<T>
where
    F: FnOnce(&mut DbConn) -> Result<T> + Send + 'static,
    T: Send + 'static,
{
    run_as(state, f).await.map_err(|e| match e {
        Error::Db(e) if crate::db::health::is_commit_in_doubt(&e) => Error::OutcomeUnknown(e),
        other => other,
    })
}

/// [`run`] with another failure type (reads that only a page makes).
pub async fn run_as<F, T, E>(state: &AppState, f: F) -> std::result::Result<T, E>
where
    F: FnOnce(&mut DbConn) -> std::result::Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: DbFailure,
{
    if !state.db_health.admit(std::time::Instant::now()) {
        return Err(E::unavailable());
    }
    let pool = state.pool.clone();
    let health = state.db_health.clone();
    let (result, changes) = tokio::task::spawn_blocking(move || {
        crate::db::changes::collect(|| {
            let mut conn = pool.get().inspect_err(|_| {
                health.failed(std::time::Instant::now());
            })?;
            let result = f(&mut conn);
            match &result {
                Err(e) if e.lost_connection() => health.failed(std::time::Instant::now()),
                _ => health.succeeded(),
            }
            result
        })
    })
    .await
    .map_err(E::blocking)?;
    for change in &changes {
        state.verifier.apply(change);
    }
    result
}

/// How long a request whose change is in doubt waits for the database to
/// answer again before it says the change may have been made.
pub const SETTLE_WITHIN: std::time::Duration = std::time::Duration::from_secs(5);

/// How often it asks meanwhile (mostly answered at once by the health
/// gate, which lets one probe a second reach a database marked down).
const SETTLE_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

/// The truth about a write whose commit was in doubt, for writes that can
/// be checked afterwards (the state they set can be read back). `result`
/// is the write's; when it is [`Error::OutcomeUnknown`], `made` is asked
/// until the database answers or [`SETTLE_WITHIN`] passes: `Some` (the
/// change is there) answers as a success, `None` as [`Error::NotSaved`],
/// and no answer in time leaves the outcome unknown. Each attempt takes a
/// pooled connection only for its one read, never while waiting; a client
/// that hangs up drops this future and the asking stops.
pub async fn settle<T, F>(state: &AppState, result: Result<T>, made: F) -> Result<T>
where
    F: Fn(&mut DbConn) -> Result<Option<T>> + Clone + Send + 'static,
    T: Send + 'static,
{
    let cause = match result {
        Err(Error::OutcomeUnknown(cause)) => cause,
        other => return other,
    };
    tracing::warn!(error = %cause, "the connection broke while a change was committed; asking the database whether it was made");
    let deadline = tokio::time::Instant::now() + SETTLE_WITHIN;
    loop {
        let ask = made.clone();
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, run(state, move |c| ask(c))).await {
            Ok(Ok(Some(done))) => {
                tracing::info!("the change in doubt was made");
                return Ok(done);
            }
            Ok(Ok(None)) => {
                tracing::info!("the change in doubt was not made");
                return Err(Error::NotSaved(cause));
            }
            // Still unreachable (or refused at once while marked down).
            Ok(Err(_)) | Err(_) => {}
        }
        let now = tokio::time::Instant::now();
        if now + SETTLE_EVERY >= deadline {
            return Err(Error::OutcomeUnknown(cause));
        }
        tokio::time::sleep(SETTLE_EVERY).await;
    }
}
