//! What a key check answers: the stable refusal codes, the requirements a
//! caller can state, and the verified key.

use super::cache::CachedKey;
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
    /// A single-valued header (`Authorization`, a requirement) sent twice.
    RepeatedHeader,
    /// The key belongs to a workspace the caller does not accept.
    WrongWorkspace,
    /// The key has an IP allowlist and the call came from elsewhere (or
    /// from an address nobody told).
    IpNotAllowed,
    /// The key's usage quota has fewer uses left than the check costs.
    QuotaExceeded,
    /// A requirement that is not valid (a cost that is not a whole number
    /// from 0 to 1,000,000).
    BadRequest,
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
            Code::RepeatedHeader => "REPEATED_HEADER",
            Code::WrongWorkspace => "WRONG_WORKSPACE",
            Code::IpNotAllowed => "IP_NOT_ALLOWED",
            Code::QuotaExceeded => "QUOTA_EXCEEDED",
            Code::BadRequest => "BAD_REQUEST",
        }
    }

    /// The HTTP status on `/api/v1/me`.
    pub fn status(self) -> StatusCode {
        match self {
            Code::InsufficientPermission
            | Code::ResourceNotAllowed
            | Code::WrongWorkspace
            | Code::IpNotAllowed => StatusCode::FORBIDDEN,
            Code::RepeatedHeader | Code::BadRequest => StatusCode::BAD_REQUEST,
            Code::RateLimited | Code::QuotaExceeded => StatusCode::TOO_MANY_REQUESTS,
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
    pub workspace: WorkspaceRequirement,
    /// How many uses of the key's quota the check spends (`None`: 1; 0
    /// checks without spending).
    pub cost: Option<i64>,
}

/// Which workspaces' keys the caller accepts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum WorkspaceRequirement {
    /// Any workspace's: `/me` (a holder describing their own key) and the
    /// management API (a key acts in its own workspace).
    #[default]
    Any,
    /// A gateway or service that names no workspace: only the
    /// installation's first workspace. Every configuration written before
    /// workspaces could be pinned protects that workspace's services, so
    /// it keeps working, while keys of any workspace added later never
    /// pass it.
    First,
    /// Only the workspace with this id.
    Id(String),
}

impl WorkspaceRequirement {
    /// From what a gateway or service sent: a workspace id, or nothing
    /// (absent or blank) for the first workspace.
    pub fn named(id: Option<&str>) -> Self {
        match id.map(str::trim).filter(|id| !id.is_empty()) {
            Some(id) => WorkspaceRequirement::Id(id.to_owned()),
            None => WorkspaceRequirement::First,
        }
    }
}

impl Requirements {
    /// The refusal of a key of a workspace the caller does not accept,
    /// checked right after the lookup: before anything about the key (its
    /// state, its facts, its rate limit) is used or told, since the key is
    /// none of this caller's business. The answer never names the key's
    /// workspace, and is not counted in the key's usage.
    pub(crate) fn workspace_refusal(&self, record: &AuthRecord) -> Option<Outcome> {
        match &self.workspace {
            WorkspaceRequirement::Any => None,
            WorkspaceRequirement::First if record.in_first_workspace() => None,
            WorkspaceRequirement::First => Some(Outcome::new(
                Code::WrongWorkspace,
                "This key belongs to a workspace that this service does not accept. (A gateway or service for another workspace of this keyward names it: X-Keyward-Workspace, or \"workspace\" on /api/v1/keys/verify.)",
            )),
            WorkspaceRequirement::Id(id) if id == record.workspace_id() => None,
            WorkspaceRequirement::Id(_) => Some(Outcome::new(
                Code::WrongWorkspace,
                "This key belongs to a workspace that this service does not accept. Use a key of the service's workspace.",
            )),
        }
    }
}

/// A key that passed every check.
#[derive(Debug, Clone)]
pub struct Verified {
    pub record: Arc<CachedKey>,
    pub rate: Option<RateInfo>,
    /// What is left of the key's usage quota after this check (keys with
    /// one; when it refills follows from the quota).
    pub quota: Option<i64>,
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

    pub(crate) fn about(mut self, record: &Arc<CachedKey>) -> Self {
        self.identified = Some(Verified {
            record: record.clone(),
            rate: None,
            quota: None,
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

    /// A header that must come once came more than once: which one counts
    /// is up to each proxy on the way (an appended requirement, an empty
    /// first value), so none does.
    pub fn repeated_header(name: &str) -> Self {
        Outcome::new(
            Code::RepeatedHeader,
            format!("The request has more than one {name} header. Send it once."),
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
