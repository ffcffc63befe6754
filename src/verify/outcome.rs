//! What a key check answers: the stable refusal codes, the requirements a
//! caller can state, and the verified key.

use crate::db::keys::AuthRecord;
pub use crate::verify::limiter::RateInfo;
use actix_web::http::StatusCode;
use std::sync::Arc;

/// Why a key was refused: stable codes for machines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    MissingKey,
    Malformed,
    NotFound,
    ApiKeysDisabled,
    Revoked,
    Disabled,
    Expired,
    EnvironmentMismatch,
    InsufficientPermission,
    ResourceNotAllowed,
    RateLimited,
    Unavailable,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::MissingKey => "MISSING_KEY",
            Code::Malformed => "MALFORMED",
            Code::NotFound => "NOT_FOUND",
            Code::ApiKeysDisabled => "API_KEYS_DISABLED",
            Code::Revoked => "REVOKED",
            Code::Disabled => "DISABLED",
            Code::Expired => "EXPIRED",
            Code::EnvironmentMismatch => "ENVIRONMENT_MISMATCH",
            Code::InsufficientPermission => "INSUFFICIENT_PERMISSION",
            Code::ResourceNotAllowed => "RESOURCE_NOT_ALLOWED",
            Code::RateLimited => "RATE_LIMITED",
            Code::Unavailable => "UNAVAILABLE",
        }
    }

    /// The HTTP status on `/api/v1/me`.
    pub fn status(self) -> StatusCode {
        match self {
            Code::InsufficientPermission | Code::ResourceNotAllowed => StatusCode::FORBIDDEN,
            Code::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::UNAUTHORIZED,
        }
    }
}

/// What the caller requires of the key, beyond being valid.
#[derive(Debug, Clone, Default)]
pub struct Requirements {
    pub environment: Option<String>,
    pub permission: Option<String>,
    pub resource: Option<String>,
}

/// A key that passed every check.
#[derive(Debug, Clone)]
pub struct Verified {
    pub record: Arc<AuthRecord>,
    pub rate: Option<RateInfo>,
    /// Set when the database could not be asked and the key's last known
    /// state was used (stale-if-error): how old that state is.
    pub stale_age: Option<std::time::Duration>,
}

/// A refusal: code, a message telling the user what to do, and what was
/// learnt about the key.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub code: Code,
    pub message: String,
    pub retry_after_secs: Option<u64>,
    pub limit: Option<i32>,
    /// The key, when it was identified (for `verify`'s answer).
    pub identified: Option<Verified>,
}

impl Outcome {
    pub(crate) fn new(code: Code, message: impl Into<String>) -> Self {
        Outcome {
            code,
            message: message.into(),
            retry_after_secs: None,
            limit: None,
            identified: None,
        }
    }

    pub(crate) fn about(mut self, record: &Arc<AuthRecord>) -> Self {
        self.identified = Some(Verified {
            record: record.clone(),
            rate: None,
            stale_age: None,
        });
        self
    }

    /// An `Authorization` header with characters no key has.
    pub fn malformed_header() -> Self {
        Outcome::new(
            Code::Malformed,
            "The Authorization header holds characters that no keyward key has. Send \"Authorization: Bearer sk_live_…\" with the key exactly as it was shown.",
        )
    }

    /// No `Authorization: Bearer` header.
    pub fn missing() -> Self {
        Outcome::new(
            Code::MissingKey,
            "Send your API key in the Authorization header: \"Authorization: Bearer sk_live_…\".",
        )
    }
}
