//! The management API's shapes: what it reads and answers, as the OpenAPI
//! document declares them.

use super::super::problem::Problem;
use crate::db::keys::ApiKey;
use crate::domain::keys::{self as dk, Status};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, IntoResponses, ToSchema};

/// Who owns a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum KeyKind {
    /// Belongs to one person; revoked when they leave the workspace.
    Personal,
    /// Belongs to the workspace (integrations that outlive staff changes).
    Workspace,
    /// Belongs to a service account (`owner` is its `sa_…` id): acts with
    /// the account's role, whoever created it.
    Service,
}

impl KeyKind {
    /// The list filter this kind asks for.
    pub fn owner_kind(self) -> crate::db::keys::OwnerKind {
        use crate::db::keys::OwnerKind;
        match self {
            KeyKind::Personal => OwnerKind::Personal,
            KeyKind::Workspace => OwnerKind::Workspace,
            KeyKind::Service => OwnerKind::Service,
        }
    }
}

/// A key's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum KeyStatus {
    Active,
    /// Switched off (reversible).
    Inactive,
    /// Past its expiry.
    Expired,
    /// Revoked for good.
    Revoked,
}

impl From<KeyStatus> for Status {
    fn from(s: KeyStatus) -> Self {
        match s {
            KeyStatus::Active => Status::Active,
            KeyStatus::Inactive => Status::Inactive,
            KeyStatus::Expired => Status::Expired,
            KeyStatus::Revoked => Status::Revoked,
        }
    }
}

impl From<Status> for KeyStatus {
    fn from(s: Status) -> Self {
        match s {
            Status::Active => KeyStatus::Active,
            Status::Inactive => KeyStatus::Inactive,
            Status::Expired => KeyStatus::Expired,
            Status::Revoked => KeyStatus::Revoked,
        }
    }
}

/// A key's environment: `live` (production), `test` (staging), `dev`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum KeyEnvironment {
    Live,
    Test,
    Dev,
}

impl KeyEnvironment {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyEnvironment::Live => "live",
            KeyEnvironment::Test => "test",
            KeyEnvironment::Dev => "dev",
        }
    }
}

pub fn environment_of(e: dk::Environment) -> KeyEnvironment {
    match e {
        dk::Environment::Live => KeyEnvironment::Live,
        dk::Environment::Test => KeyEnvironment::Test,
        dk::Environment::Dev => KeyEnvironment::Dev,
    }
}

pub fn time(t: chrono::NaiveDateTime) -> String {
    crate::domain::time::rfc3339(t)
}

/// A key as the API shows it: everything but its secret, which keyward
/// does not have (only a digest and a masked excerpt).
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "key_01JD3X5M8Q2W7Y4N6P9R0T1V3B",
    "name": "CI deploy",
    "description": "Deploys from the main branch",
    "tags": ["ci"],
    "kind": "workspace",
    "owner_id": null,
    "created_by": "usr_01JD3X1Z8Q2W7Y4N6P9R0T1V3B",
    "environment": "live",
    "permissions": ["data:read"],
    "resources": [],
    "status": "active",
    "masked": "sk_live_…5G08",
    "expires_at": "2027-02-21T10:00:00Z",
    "rate_limit_per_minute": 600,
    "allowed_ips": ["203.0.113.7", "198.51.100.0/24"],
    "created_at": "2026-11-23T10:00:00Z",
    "updated_at": "2026-11-23T10:00:00Z",
    "last_used_at": null,
    "old_secret_valid_until": null,
    "creator_removed": false
}))]
pub struct KeyView {
    pub id: String,
    pub name: String,
    pub description: String,
    pub tags: Vec<String>,
    pub kind: KeyKind,
    /// The owner's user id (personal keys).
    pub owner_id: Option<String>,
    /// Who created the key (a user id).
    pub created_by: String,
    pub environment: KeyEnvironment,
    pub permissions: Vec<String>,
    /// Resources the key is limited to; empty: the whole workspace.
    pub resources: Vec<String>,
    pub status: KeyStatus,
    /// The masked excerpt, e.g. `sk_live_…5G08`.
    pub masked: String,
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub rate_limit_per_minute: Option<i32>,
    /// The key's IP allowlist: addresses and CIDR ranges, normalised; a
    /// check from elsewhere is refused `IP_NOT_ALLOWED`. Empty: usable
    /// from anywhere.
    pub allowed_ips: Vec<String>,
    /// The key's usage quota; `null`: none. What is left:
    /// `GET /api/v1/keys/{id}/quota`.
    pub quota: Option<QuotaSpec>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    #[schema(format = DateTime)]
    pub last_used_at: Option<String>,
    /// After a regeneration with a grace period: until when the previous
    /// secret still works.
    #[schema(format = DateTime)]
    pub old_secret_valid_until: Option<String>,
    /// A workspace key whose creator left the workspace (for review).
    pub creator_removed: bool,
    /// Its secret is kept encrypted and can be shown again (recoverable
    /// keys, `POST /api/v1/keys/{id}/reveal`).
    pub recoverable: bool,
    /// The plan the key is on (`GET /api/v1/plans/{id}`); `null`: none.
    #[schema(example = "plan_3Qd0sWcTzE1n8mK2pL5vXa")]
    pub plan_id: Option<String>,
    /// The settings the key keeps as its own on its plan (`rate_limit`,
    /// `quota`, `allowed_ips`): the plan's edits leave them alone.
    pub plan_overrides: Vec<String>,
}

impl KeyView {
    pub fn of(key: &ApiKey) -> KeyView {
        let now = crate::db::now();
        KeyView {
            id: key.id.clone(),
            name: key.name.clone(),
            description: key.description.clone(),
            tags: key.tag_list(),
            kind: if key.is_service() {
                KeyKind::Service
            } else if key.is_personal() {
                KeyKind::Personal
            } else {
                KeyKind::Workspace
            },
            owner_id: key.owner_id.clone(),
            created_by: key.created_by.clone(),
            environment: environment_of(key.environment()),
            permissions: key.permission_list(),
            resources: key.resource_list(),
            status: key.status(now).into(),
            masked: key.excerpt(),
            expires_at: key.expires_at.map(time),
            rate_limit_per_minute: key.rate_limit,
            allowed_ips: key.allowed_ip_list(),
            quota: key.quota().as_ref().map(QuotaSpec::of),
            created_at: time(key.created_at),
            updated_at: time(key.updated_at),
            last_used_at: key.last_used_at.map(time),
            old_secret_valid_until: key.grace_until(now).map(time),
            creator_removed: key.creator_removed_at.is_some(),
            recoverable: key.recoverable,
            plan_id: key.plan_id.clone(),
            plan_overrides: crate::domain::plans::overrides(&key.plan_overrides)
                .into_iter()
                .map(|f| f.as_str().to_owned())
                .collect(),
        }
    }
}

/// One page of keys.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyPage {
    pub keys: Vec<KeyView>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// A key with its secret: the only time the secret is ever sent.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "key_01JD3X5M8Q2W7Y4N6P9R0T1V3B",
    "secret": "sk_live_…(49 characters, shown once)",
    "idempotent_replay": false,
    "key": {"id": "key_01JD3X5M8Q2W7Y4N6P9R0T1V3B", "name": "CI deploy"}
}))]
pub struct KeyWithSecret {
    pub id: String,
    /// The full key. Sent once; absent when an `Idempotency-Key` repeat is
    /// answered with the key made the first time.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub secret: Option<String>,
    /// Whether this answer repeats an earlier request with the same
    /// `Idempotency-Key` (no secret then).
    pub idempotent_replay: bool,
    pub key: KeyView,
}

/// Refusals every management endpoint may answer.
#[derive(IntoResponses)]
pub enum Refusals {
    /// Malformed JSON, an invalid parameter or cursor.
    #[response(status = 400, content_type = "application/problem+json")]
    BadRequest(Problem),
    /// No key, or a key that is unknown, revoked, inactive or expired.
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthorized(Problem),
    /// The key lacks the management permission, or its person's role does
    /// not allow the action.
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(Problem),
    /// The key's rate limit is exceeded; see `Retry-After`.
    #[response(status = 429, content_type = "application/problem+json")]
    TooManyRequests(Problem),
    /// The database is unreachable (`UNAVAILABLE`: nothing was changed), or
    /// the connection broke as a change was committed (`OUTCOME_UNKNOWN`: it
    /// may have been made; retry a create or regenerate with the same
    /// `Idempotency-Key`, re-read anything else before retrying).
    #[response(status = 503, content_type = "application/problem+json")]
    Unavailable(Problem),
}

/// Refusals about one key.
#[derive(IntoResponses)]
pub enum KeyRefusals {
    /// No such key in the workspace, or not visible to this key.
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(Problem),
    /// The key's state does not allow this (revoked, already expired), or a
    /// limit of the workspace.
    #[response(status = 409, content_type = "application/problem+json")]
    Conflict(Problem),
    /// Invalid fields, one message each.
    #[response(status = 422, content_type = "application/problem+json")]
    Invalid(Problem),
}

/// Refusals of a request body.
#[derive(IntoResponses)]
pub enum BodyRefusals {
    /// The body is larger than 64 KiB.
    #[response(status = 413, content_type = "application/problem+json")]
    TooLarge(Problem),
    /// A body sent without `Content-Type: application/json`.
    #[response(status = 415, content_type = "application/problem+json")]
    NotJson(Problem),
}

/// Filters and page of `GET /api/v1/keys`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Search by name, key id, owner, tag, or a masked excerpt / prefix
    /// (`sk_live_…5G08`). Never a full key: check one with
    /// `POST /api/v1/keys/verify`.
    pub q: Option<String>,
    pub status: Option<KeyStatus>,
    pub kind: Option<KeyKind>,
    /// An owner's user id, or `me` (the person the calling key acts for).
    pub owner: Option<String>,
    pub environment: Option<KeyEnvironment>,
    /// Only active keys that expire within 7 days.
    pub expiring: Option<bool>,
    /// Keys per page, 1 to 100 (default 25).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A new key. Expiry: at most one of `expires_in_days`, `expires_at` and
/// `never`; none gives the create dialog's default (90 days, or the
/// longest the workspace allows).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "name": "CI deploy",
    "kind": "workspace",
    "environment": "live",
    "permissions": ["data:read"],
    "expires_in_days": 90,
    "rate_limit_per_minute": 600
}))]
pub struct CreateKeyRequest {
    /// 1 to 100 characters, at least one of them visible; no control
    /// characters, nor invisible, private-use, unassigned or
    /// direction-changing ones (which the pattern cannot list all of).
    /// Spaces around it are dropped.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Up to 10 tags of `a-z 0-9 - _ : .`.
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// `personal` (default: a key of the person the calling key acts for)
    /// or `workspace` (admins).
    #[serde(default)]
    pub kind: Option<KeyKind>,
    /// Default `live`.
    #[serde(default)]
    pub environment: Option<KeyEnvironment>,
    /// From the workspace's catalog, plus the management permissions the
    /// person's role may grant.
    #[serde(default)]
    pub permissions: Option<Vec<String>>,
    #[serde(default)]
    #[schema(minimum = 1, maximum = 3650)]
    pub expires_in_days: Option<i64>,
    /// A date (`YYYY-MM-DD`): the key works until the end of that day, UTC.
    #[serde(default)]
    #[schema(format = Date)]
    pub expires_at: Option<String>,
    /// `true`: the key never expires (if the workspace allows it).
    #[serde(default)]
    pub never: Option<bool>,
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub rate_limit_per_minute: Option<i32>,
    /// Resource identifiers the key is limited to (up to 50).
    #[serde(default)]
    pub resources: Option<Vec<String>>,
    /// IP addresses and CIDR ranges the key may be used from (up to 100,
    /// e.g. `203.0.113.7`, `198.51.100.0/24`, `2001:db8::/32`); absent or
    /// empty: anywhere.
    #[serde(default)]
    #[schema(max_items = 100)]
    pub allowed_ips: Option<Vec<String>>,
    /// A usage quota; absent or `null`: none.
    #[serde(default)]
    pub quota: Option<QuotaSpec>,
    /// `true`: keep the secret encrypted so it can be shown again
    /// (only where an admin turned recoverable keys on).
    #[serde(default)]
    pub recoverable: Option<bool>,
    /// A plan's id: the key follows its rate limit, quota and IP allowlist
    /// where this request sets none (a value set here is the key's own),
    /// and may hold only the permissions the plan allows.
    #[serde(default)]
    pub plan: Option<String>,
}

/// A recoverable key's secret, shown again.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "key_01JD3X5M8Q2W7Y4N6P9R0T1V3B",
    "secret": "sk_live_…(the full key)",
    "key": {"id": "key_01JD3X5M8Q2W7Y4N6P9R0T1V3B", "name": "CI deploy"}
}))]
pub struct RevealedSecret {
    pub id: String,
    /// The full key.
    pub secret: String,
    pub key: KeyView,
}

/// Turn recoverable keys on or off for the workspace.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecoverableKeysRequest {
    /// `false` destroys every stored secret of the workspace at once.
    pub enabled: bool,
}

/// The workspace's recoverable keys setting.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecoverableKeysView {
    pub enabled: bool,
    /// Whether this request changed it.
    pub changed: bool,
    /// Stored secrets destroyed by turning it off.
    pub destroyed: usize,
}

/// Fields to change; absent ones stay as they are. Permissions, environment
/// and expiry are fixed at creation.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "CI deploy (main)", "rate_limit_per_minute": null}))]
pub struct UpdateKeyRequest {
    /// As in [`CreateKeyRequest`]; `null` keeps the name.
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// `null` removes the limit.
    #[serde(default, deserialize_with = "present")]
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub rate_limit_per_minute: Option<Option<i32>>,
    /// The IP allowlist, replaced as a whole (up to 100 addresses and CIDR
    /// ranges); `null` or `[]` removes it, absent keeps it.
    #[serde(default, deserialize_with = "present")]
    #[schema(max_items = 100)]
    pub allowed_ips: Option<Option<Vec<String>>>,
    /// The usage quota, replaced as a whole; `null` removes it, absent
    /// keeps it. What is left moves by the change of the limit.
    #[serde(default, deserialize_with = "present")]
    pub quota: Option<Option<QuotaSpec>>,
    /// Put the key on this plan (its settings apply where the key has not
    /// changed its own); `null` takes it off its plan, keeping its
    /// settings as its own; absent keeps it. A setting changed on a key on
    /// a plan becomes the key's own, unless it equals the plan's.
    #[serde(default, deserialize_with = "present")]
    pub plan: Option<Option<String>>,
}

/// How often a quota comes back whole: `day`, `week` or `month` (from
/// 00:00 UTC; weeks start on Monday), or `total`: credits, refilled only by
/// `refill` or a top-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum QuotaPeriod {
    Day,
    Week,
    Month,
    Total,
}

/// When credits' refill comes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RefillPeriod {
    Day,
    Week,
    Month,
}

/// Credits' refill: `amount` uses added at the start of each `period`, up
/// to the quota's limit.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuotaRefill {
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    pub amount: i64,
    pub period: RefillPeriod,
}

/// A key's usage quota: at most `limit` uses per `period`, or `limit`
/// credits in total (`period` `total`), optionally refilled.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"limit": 10000, "period": "total", "refill": {"amount": 1000, "period": "month"}}))]
pub struct QuotaSpec {
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    pub limit: i64,
    pub period: QuotaPeriod,
    /// Only with `period` `total`; `null`: credits never refill.
    #[serde(default)]
    pub refill: Option<QuotaRefill>,
}

impl QuotaSpec {
    pub fn of(q: &crate::domain::quota::Quota) -> QuotaSpec {
        use crate::domain::quota::Period;
        let period = |p: Period| match p {
            Period::Day => RefillPeriod::Day,
            Period::Week => RefillPeriod::Week,
            Period::Month => RefillPeriod::Month,
        };
        let (period_of, refill) = match q.refill {
            Some((amount, p)) if amount >= q.limit => (
                match p {
                    Period::Day => QuotaPeriod::Day,
                    Period::Week => QuotaPeriod::Week,
                    Period::Month => QuotaPeriod::Month,
                },
                None,
            ),
            Some((amount, p)) => (
                QuotaPeriod::Total,
                Some(QuotaRefill {
                    amount,
                    period: period(p),
                }),
            ),
            None => (QuotaPeriod::Total, None),
        };
        QuotaSpec {
            limit: q.limit,
            period: period_of,
            refill,
        }
    }

    /// The pages' input for the same quota (`None`: none).
    pub fn input(spec: Option<&QuotaSpec>) -> crate::domain::quota::QuotaInput {
        let Some(s) = spec else {
            return crate::domain::quota::QuotaInput::default();
        };
        let name = |p: RefillPeriod| match p {
            RefillPeriod::Day => "day",
            RefillPeriod::Week => "week",
            RefillPeriod::Month => "month",
        };
        crate::domain::quota::QuotaInput {
            limit: s.limit.to_string(),
            period: match s.period {
                QuotaPeriod::Day => "day",
                QuotaPeriod::Week => "week",
                QuotaPeriod::Month => "month",
                QuotaPeriod::Total => "total",
            }
            .into(),
            refill: s
                .refill
                .as_ref()
                .map(|r| r.amount.to_string())
                .unwrap_or_default(),
            refill_period: s.refill.as_ref().map_or("", |r| name(r.period)).into(),
        }
    }
}

/// What is left of a key's quota.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"key_id": "key_01JD3X5M8Q2W7Y4N6P9R0T1V3B", "quota": {"limit": 1000, "period": "day", "refill": null}, "remaining": 958, "resets_at": "2026-12-06T00:00:00Z"}))]
pub struct QuotaStateView {
    pub key_id: String,
    pub quota: QuotaSpec,
    /// What is left in the database plus this instance's unspent reserve;
    /// other instances may hold up to 64 uses each in reserve.
    pub remaining: i64,
    /// When the quota next refills; `null`: it does not.
    #[schema(format = DateTime)]
    pub resets_at: Option<String>,
}

/// A top-up: exactly one of `set` (what is left becomes this) or `add`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"add": 5000}))]
pub struct TopUpRequest {
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub set: Option<i64>,
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    pub add: Option<i64>,
}

/// A field that may be absent (`None`), `null` (`Some(None)`) or a value.
pub(super) fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// When the old secret stops working after a regeneration.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"grace": "24h"}))]
pub struct RegenerateRequest {
    /// `0` (now, the default), `1h`, `24h` or `7d`.
    #[serde(default)]
    #[schema(pattern = "^(0|1h|24h|7d)$")]
    pub grace: Option<String>,
}

/// How far back `GET /api/v1/keys/{id}/usage` reads.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsageParams {
    /// Hours back from now, 1 to 720 (default 168: seven days).
    #[param(minimum = 1, maximum = 720)]
    pub hours: Option<i64>,
}

/// Verifications of a key in one hour with one outcome.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsageBucket {
    /// The hour's start, UTC.
    #[schema(format = DateTime)]
    pub hour: String,
    /// `VALID`, or the refusal code (`REVOKED`, `RATE_LIMITED`, …).
    pub outcome: String,
    pub count: i64,
}

/// A key's verifications per hour and outcome.
#[derive(Debug, Serialize, ToSchema)]
pub struct Usage {
    pub key_id: String,
    #[schema(format = DateTime)]
    pub since: String,
    /// Only hours and outcomes with at least one verification, oldest first.
    pub buckets: Vec<UsageBucket>,
    pub valid: i64,
    pub rejected: i64,
}

/// A key's usage: hourly counts of verifications by outcome.
/// Filters and page of `GET /api/v1/events`: the Events page's own.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventParams {
    /// An exact action, e.g. `key.revoked`.
    pub action: Option<String>,
    /// Part of the actor's label (an email, or an API key's name).
    pub actor: Option<String>,
    /// A target's id: a key id or user id.
    pub key: Option<String>,
    /// Events per page, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page (an event id).
    pub cursor: Option<String>,
}

/// Who did it.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventActor {
    /// A user id, an API key id (changes made through this API), or null.
    pub id: Option<String>,
    /// The actor's email or the key's name, as it was then.
    pub label: String,
}

/// What it was done to.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventTargetView {
    /// `api_key`, `user`, `workspace` or `permission`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub id: Option<String>,
    pub label: Option<String>,
}

/// One entry of the audit trail.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    /// `evt_…`: random, so ids say nothing about other workspaces.
    pub id: String,
    #[schema(format = DateTime)]
    pub time: String,
    /// e.g. `key.created`, `key.revoked`.
    pub action: String,
    pub actor: EventActor,
    pub target: EventTargetView,
    /// The event in words, as on the Events page.
    pub sentence: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// The action's recorded facts (never a secret).
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

/// One page of events.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventPage {
    pub events: Vec<EventView>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}
