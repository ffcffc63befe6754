//! RFC 9457 problem details for the management API: every refusal is an
//! `application/problem+json` body with a stable machine-readable `code`
//! (the same codes as the rest of the API) and, for invalid input, one
//! message per field.

use crate::domain::input::FieldError;
use crate::error::AppError;
use crate::verify::{Code, Outcome};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

/// The media type of a problem body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem: what went wrong, in words and as a stable code.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "type": "about:blank",
    "title": "Not Found",
    "status": 404,
    "detail": "No key with this id exists, or your key may not see it.",
    "code": "NOT_FOUND"
}))]
pub struct Problem {
    /// Always `about:blank`: the `code` says what happened.
    #[serde(rename = "type")]
    pub kind: String,
    /// The HTTP status's name.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What happened and what to do about it.
    pub detail: String,
    /// Stable machine-readable code, e.g. `NOT_FOUND`,
    /// `INSUFFICIENT_PERMISSION`, `VALIDATION_FAILED`, `RATE_LIMITED`,
    /// `UNAVAILABLE`, `OUTCOME_UNKNOWN` (a change that may have been made).
    pub code: String,
    /// For `VALIDATION_FAILED`: one message per invalid field.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(nullable = false)]
    pub errors: Vec<FieldProblem>,
}

/// One invalid field of a request.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FieldProblem {
    /// The field's name in the request.
    pub field: String,
    pub message: String,
}

/// A refusal of the management API, answered as a [`Problem`].
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    pub errors: Vec<FieldProblem>,
    /// Headers of an authentication refusal (`WWW-Authenticate`,
    /// `Retry-After`, rate-limit headers), from the key check.
    refusal: Option<Box<Outcome>>,
    /// A server-side failure, for the log (never shown).
    cause: Option<String>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.detail)
    }
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            detail: detail.into(),
            errors: Vec::new(),
            refusal: None,
            cause: None,
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "BAD_REQUEST", detail)
    }

    pub fn not_found() -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "No key with this id exists, or your key may not see it.",
        )
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        ApiError::new(StatusCode::FORBIDDEN, "INSUFFICIENT_PERMISSION", detail)
    }

    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        ApiError::new(StatusCode::CONFLICT, code, detail)
    }

    /// Invalid fields: 422 with one message each.
    pub fn validation(errors: &[FieldError]) -> Self {
        let mut e = ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION_FAILED",
            match errors {
                [one] => one.message.clone(),
                _ => "Some fields are not valid; see errors.".to_owned(),
            },
        );
        e.errors = errors
            .iter()
            .map(|f| FieldProblem {
                field: f.field.to_owned(),
                message: f.message.clone(),
            })
            .collect();
        e
    }

    /// A refused key check (missing, unknown, revoked, rate-limited key…).
    pub fn refused(outcome: Outcome) -> Self {
        let mut e = ApiError::new(
            outcome.code.status(),
            outcome.code.as_str(),
            outcome.message.clone(),
        );
        e.refusal = Some(Box::new(outcome));
        e
    }
}

/// The API's one translation of a use case's failure.
impl From<crate::app::Error> for ApiError {
    fn from(e: crate::app::Error) -> Self {
        use crate::app::Error as E;
        match e {
            E::NotFound => ApiError::not_found(),
            E::RoleForbids => {
                ApiError::forbidden("The role of the person this key acts for does not allow this.")
            }
            E::Forbidden(m) => ApiError::forbidden(m),
            E::Conflict { code, message } => ApiError::conflict(code, message),
            E::Invalid(errors) => ApiError::validation(&errors),
            E::Unprocessable { code, message } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
            }
            E::BadRequest(m) => ApiError::bad_request(m),
            E::OutcomeUnknown(cause) => {
                let mut out = ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "OUTCOME_UNKNOWN",
                    "The connection to the database broke while the change was being saved, so it may or may not have been made. Read the resource again to see whether it was; to create or regenerate a key, retry with the same Idempotency-Key, which answers the key made (without its secret) or makes it.",
                );
                out.cause = Some(cause.to_string());
                out
            }
            other @ (E::TooManyRequests { .. }
            | E::Gone(_)
            | E::Unavailable
            | E::NotSaved(_)
            | E::Db(_)
            | E::Pool(_)
            | E::Internal(_)) => AppError::from(other).into(),
        }
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        let status = e.status_code();
        let info = e.info();
        let code = match &e {
            AppError::Forbidden(_) => "INSUFFICIENT_PERMISSION",
            AppError::TooManyRequests { .. } => Code::RateLimited.as_str(),
            _ => info.code,
        };
        let mut out = ApiError::new(status, code, info.message);
        if status.is_server_error() {
            out.cause = Some(e.to_string());
        }
        out
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        if let Some(cause) = &self.cause {
            tracing::error!(error = %cause, "management API request failed");
        }
        let mut res = match &self.refusal {
            Some(outcome) => super::failure_builder(outcome),
            None => HttpResponse::build(self.status),
        };
        let body = Problem {
            kind: "about:blank".to_owned(),
            title: self.status.canonical_reason().unwrap_or("Error").to_owned(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            code: self.code.to_owned(),
            errors: self.errors.clone(),
        };
        res.insert_header((header::CONTENT_TYPE, PROBLEM_JSON))
            .body(serde_json::to_string(&body).unwrap_or_default())
    }
}

/// The management API's error answer (see
/// [`crate::http::middleware::ErrorScopes`]).
pub fn render(failed: &crate::http::middleware::Failed<'_>) -> HttpResponse {
    ApiError::new(failed.status, failed.info.code, failed.info.message.clone()).error_response()
}
