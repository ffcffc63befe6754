//! One error type for the web application. Handlers return it; the response
//! it makes carries an [`ErrorInfo`] that the error-rendering middleware turns
//! into a full HTML page, an htmx partial or a JSON body, depending on the
//! request.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpResponse, ResponseError};

/// What the user is told about an error; attached to the response.
#[derive(Debug, Clone)]
pub struct ErrorInfo {
    /// Stable machine-readable code (used in JSON bodies).
    pub code: &'static str,
    pub title: &'static str,
    pub message: String,
}

/// What a person is told when the connection broke while their change was
/// being committed and the database could not be asked again in time.
const OUTCOME_UNKNOWN: &str = "The connection to the database broke while your change was being saved, so it may or may not have been made. Reload the page in a moment to see whether it was before trying again.";

/// Everything that can go wrong while handling a request.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("database error: {0}")]
    Db(#[from] diesel::result::Error),
    #[error("database pool error: {0}")]
    Pool(#[from] diesel::r2d2::PoolError),
    /// The database is known to be unreachable (failing fast).
    #[error("the database is unreachable")]
    Unavailable,
    /// The connection broke while a change was being committed: it may
    /// have been made (the cause, for the log).
    #[error("the change may have been made: {0}")]
    OutcomeUnknown(String),
    /// The connection broke while a change was being committed, and the
    /// database, asked again, shows it was not made.
    #[error("the change was not made: {0}")]
    NotSaved(String),
    #[error("blocking task failed: {0}")]
    Blocking(#[from] actix_web::error::BlockingError),
    #[error("template error: {0}")]
    Template(#[from] askama::Error),
    #[error("session error: {0}")]
    Session(String),
    #[error("{0}")]
    Internal(String),
    #[error("not signed in")]
    Unauthenticated,
    #[error("{0}")]
    Forbidden(String),
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    BadRequest(String),
    /// The request conflicts with the current state (a limit, a switch).
    #[error("{0}")]
    Conflict(String),
    /// Input that breaks a rule (a form re-rendered with its field errors
    /// handles the usual case; this is the answer where none is shown).
    #[error("{0}")]
    Unprocessable(String),
    /// A one-time link that is unknown, used or expired.
    #[error("{0}")]
    Gone(String),
    #[error("missing or invalid CSRF token")]
    Csrf,
    /// A form loaded in another workspace than the session works in now.
    #[error("a form of another workspace")]
    OtherWorkspace,
    #[error("{message}")]
    TooManyRequests {
        message: String,
        retry_after_secs: u64,
    },
}

impl From<actix_session::SessionInsertError> for AppError {
    fn from(e: actix_session::SessionInsertError) -> Self {
        AppError::Session(e.to_string())
    }
}

impl From<actix_session::SessionGetError> for AppError {
    fn from(e: actix_session::SessionGetError) -> Self {
        AppError::Session(e.to_string())
    }
}

/// Database failures inside the `db` layer's own error types keep their
/// cause, so an unreachable database or a full disk is a 503, not a 500.
impl From<crate::db::users::UserChangeError> for AppError {
    fn from(e: crate::db::users::UserChangeError) -> Self {
        match e {
            crate::db::users::UserChangeError::Db(e) => AppError::Db(e),
            other => AppError::Internal(other.to_string()),
        }
    }
}

/// The pages' one translation of a use case's failure.
impl From<crate::app::Error> for AppError {
    fn from(e: crate::app::Error) -> Self {
        use crate::app::Error as E;
        match e {
            E::NotFound => AppError::NotFound,
            E::RoleForbids => AppError::forbidden(),
            E::Forbidden(m) => AppError::Forbidden(m),
            E::Conflict { message, .. } => AppError::Conflict(message),
            E::Invalid(errors) => AppError::Unprocessable(
                errors
                    .iter()
                    .map(|e| e.message.as_str())
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            E::Unprocessable { message, .. } => AppError::Unprocessable(message),
            E::BadRequest(m) => AppError::BadRequest(m),
            E::TooManyRequests {
                message,
                retry_after_secs,
            } => AppError::TooManyRequests {
                message,
                retry_after_secs,
            },
            E::Gone(m) => AppError::Gone(m),
            E::Unavailable => AppError::Unavailable,
            E::OutcomeUnknown(e) => AppError::OutcomeUnknown(e.to_string()),
            E::NotSaved(e) => AppError::NotSaved(e.to_string()),
            E::Db(e) => AppError::Db(e),
            E::Pool(e) => AppError::Pool(e),
            E::Internal(m) => AppError::Internal(m),
        }
    }
}

impl crate::app::DbFailure for AppError {
    fn unavailable() -> Self {
        AppError::Unavailable
    }

    fn blocking(e: tokio::task::JoinError) -> Self {
        AppError::Internal(format!("blocking task failed: {e}"))
    }

    fn lost_connection(&self) -> bool {
        matches!(self, AppError::Db(e) if crate::db::health::is_connection_error(e))
    }
}

impl From<crate::db::permissions::CatalogError> for AppError {
    fn from(e: crate::db::permissions::CatalogError) -> Self {
        match e {
            crate::db::permissions::CatalogError::Db(e) => AppError::Db(e),
            other => AppError::Internal(other.to_string()),
        }
    }
}

impl From<crate::domain::password::HashError> for AppError {
    fn from(e: crate::domain::password::HashError) -> Self {
        AppError::Internal(e.to_string())
    }
}

impl AppError {
    /// A 403 for a role that may not use a page.
    pub fn forbidden() -> Self {
        AppError::Forbidden("Your role does not give you access to this page.".into())
    }

    /// The code, title and safe message this error shows.
    pub fn info(&self) -> ErrorInfo {
        let (code, title, message) = match self {
            AppError::Db(e) if crate::db::health::is_storage_full(e) => (
                "UNAVAILABLE",
                "Storage is full",
                "keyward's storage is full, so nothing was saved. Try again later; an administrator has to free disk space.".to_owned(),
            ),
            AppError::OutcomeUnknown(_) => (
                "OUTCOME_UNKNOWN",
                "Change may have been made",
                OUTCOME_UNKNOWN.to_owned(),
            ),
            AppError::Db(e) if crate::db::health::is_commit_in_doubt(e) => (
                "OUTCOME_UNKNOWN",
                "Change may have been made",
                OUTCOME_UNKNOWN.to_owned(),
            ),
            AppError::NotSaved(_) => (
                "UNAVAILABLE",
                "Not saved",
                "The connection to the database broke while your change was being saved, and it was not made. Try again.".to_owned(),
            ),
            AppError::Db(e) if crate::db::health::is_connection_error(e) => (
                "UNAVAILABLE",
                "Service unavailable",
                "The database is not reachable right now, so nothing was saved. Try again in a moment.".to_owned(),
            ),
            AppError::Db(e) if crate::db::health::is_busy(e) => (
                "UNAVAILABLE",
                "Service busy",
                "The database is too busy to answer right now, so nothing was saved. Try again in a moment.".to_owned(),
            ),
            AppError::Pool(_) | AppError::Unavailable => (
                "UNAVAILABLE",
                "Service unavailable",
                "The database is not reachable right now. Try again in a moment.".to_owned(),
            ),
            AppError::Db(_)
            | AppError::Blocking(_)
            | AppError::Template(_)
            | AppError::Session(_)
            | AppError::Internal(_) => (
                "INTERNAL",
                "Something went wrong",
                "An unexpected error occurred and has been logged. Try again; if it keeps happening, contact your administrator.".to_owned(),
            ),
            AppError::Unauthenticated => (
                "UNAUTHENTICATED",
                "Sign in required",
                "Sign in to continue.".to_owned(),
            ),
            AppError::Forbidden(m) => ("FORBIDDEN", "Access denied", m.clone()),
            AppError::NotFound => (
                "NOT_FOUND",
                "Not found",
                "This page does not exist, or you do not have access to it.".to_owned(),
            ),
            AppError::BadRequest(m) => ("BAD_REQUEST", "Invalid request", m.clone()),
            AppError::Unprocessable(m) => ("VALIDATION_FAILED", "Not saved", m.clone()),
            AppError::Gone(m) => ("LINK_INVALID", "Link not valid", m.clone()),
            AppError::Conflict(m) => ("CONFLICT", "Not possible right now", m.clone()),
            AppError::OtherWorkspace => (
                "OTHER_WORKSPACE",
                "Form of another workspace",
                "This form was loaded while you worked in another workspace, and you have switched workspaces since (perhaps in another tab). Nothing was changed. Reload the page to work in the workspace you are in now.".to_owned(),
            ),
            AppError::Csrf => (
                "CSRF",
                "Form expired",
                "This form has expired or was not sent from keyward. Reload the page and try again; nothing was changed.".to_owned(),
            ),
            AppError::TooManyRequests { message, .. } => {
                ("TOO_MANY_REQUESTS", "Too many attempts", message.clone())
            }
        };
        ErrorInfo {
            code,
            title,
            message,
        }
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::Pool(_)
            | AppError::Unavailable
            | AppError::OutcomeUnknown(_)
            | AppError::NotSaved(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Db(e) if crate::db::health::is_unavailable(e) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            AppError::Db(_)
            | AppError::Blocking(_)
            | AppError::Template(_)
            | AppError::Session(_)
            | AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            AppError::Unauthenticated => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) | AppError::Csrf => StatusCode::FORBIDDEN,
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::Gone(_) => StatusCode::GONE,
            AppError::Conflict(_) | AppError::OtherWorkspace => StatusCode::CONFLICT,
            AppError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if status.is_server_error() {
            // The full chain goes to the log; the user sees a safe message.
            tracing::error!(error = %self, "request failed");
        }
        let mut res = HttpResponse::build(status);
        if let AppError::TooManyRequests {
            retry_after_secs, ..
        } = self
        {
            res.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
        }
        let mut res = res.finish();
        res.extensions_mut().insert(self.info());
        res
    }
}
