//! Who uses a key: its recent checks (the request log), the addresses and
//! clients of the last day with the secret each presented, and ending a
//! grace period once nobody is on the old secret (issue 27).

use super::keys::{Act, load, refuse_revoked};
use super::{Ctx, Error, Result, run};
use crate::db::keys::ApiKey;
use crate::db::requests::{self, Caller, Filter, RequestRow};
use crate::state::AppState;
use chrono::NaiveDateTime;

/// Rows a page of the log shows.
pub const PAGE_SIZE: i64 = 50;

/// Most rows a CSV holds (the log keeps at most
/// `KEYWARD_REQUEST_LOG_PER_KEY` rows a key anyway).
pub const CSV_MAX: i64 = 100_000;

/// Hours "still in use by" looks back.
pub const CALLERS_HOURS: i64 = 24;

/// The outcome filter's values besides the codes: "refused" is every
/// outcome but VALID.
pub const REFUSED: &str = "refused";

/// The outcomes a recorded check can have (only checks of a key that was
/// identified are recorded).
pub const OUTCOMES: [&str; 12] = [
    crate::domain::chart::VALID,
    "API_KEYS_DISABLED",
    "REVOKED",
    "DISABLED",
    "EXPIRED",
    "ENVIRONMENT_MISMATCH",
    "INSUFFICIENT_PERMISSION",
    "RESOURCE_NOT_ALLOWED",
    "RATE_LIMITED",
    "WRONG_WORKSPACE",
    "IP_NOT_ALLOWED",
    "QUOTA_EXCEEDED",
];

/// A filter as a surface received it, checked.
pub fn filter(outcome: Option<&str>, ip: Option<&str>, before: Option<i64>) -> Result<Filter> {
    let outcome = match outcome.map(str::trim).filter(|o| !o.is_empty()) {
        None => None,
        Some(o) if o.eq_ignore_ascii_case(REFUSED) => Some(REFUSED.to_owned()),
        Some(o) => {
            let code = o.to_ascii_uppercase();
            if !OUTCOMES.contains(&code.as_str()) {
                return Err(Error::invalid(
                    "outcome",
                    format!(
                        "Unknown outcome \"{o}\": use VALID, refused or a refusal code such as REVOKED."
                    ),
                ));
            }
            Some(code)
        }
    };
    let ip = match ip.map(str::trim).filter(|i| !i.is_empty()) {
        None => None,
        Some(i) => Some(
            crate::verify::requests::CallInfo::clean_ip(i)
                .ok_or_else(|| Error::invalid("ip", format!("\"{i}\" is not an IP address.")))?
                .to_string(),
        ),
    };
    if before.is_some_and(|b| b < 1) {
        return Err(Error::BadRequest(
            "before must be a positive row id.".into(),
        ));
    }
    Ok(Filter {
        outcome,
        ip,
        before,
    })
}

/// One page of a key's log, newest first.
#[derive(Debug, Clone)]
pub struct LogPage {
    pub key: ApiKey,
    pub rows: Vec<RequestRow>,
    /// The `before` of the next (older) page, if there is one.
    pub next: Option<i64>,
    /// Whether some rows shown were sampled (a busy key).
    pub sampled: bool,
}

/// A page of the recent checks of the key `id`.
pub async fn list(
    state: &AppState,
    ctx: &Ctx,
    id: &str,
    filter: Filter,
    limit: i64,
) -> Result<LogPage> {
    let key = load(state, ctx, id, Act::View).await?;
    let (ws, kid) = (key.workspace_id.clone(), key.id.clone());
    let mut rows = run(state, move |c| {
        Ok(requests::list(c, &ws, &kid, &filter, limit + 1)?)
    })
    .await?;
    let next = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|r| r.id)
    } else {
        None
    };
    let sampled = rows.iter().any(|r| r.one_in > 1);
    Ok(LogPage {
        key,
        rows,
        next,
        sampled,
    })
}

/// Who used a key lately.
#[derive(Debug, Clone)]
pub struct Callers {
    pub key: ApiKey,
    pub since: NaiveDateTime,
    pub callers: Vec<Caller>,
    /// Until when the previous secret works, while it is in its grace period.
    pub grace_until: Option<NaiveDateTime>,
    /// Whether the actor may end the grace period.
    pub may_end_grace: bool,
}

impl Callers {
    /// Callers that presented the previous secret (during the grace period).
    pub fn on_previous(&self) -> impl Iterator<Item = &Caller> {
        self.callers.iter().filter(|c| c.previous_checks > 0)
    }
}

/// The distinct addresses and clients of the key `id` over the last
/// [`CALLERS_HOURS`], and which of them still present the previous secret.
pub async fn callers(state: &AppState, ctx: &Ctx, id: &str) -> Result<Callers> {
    let key = load(state, ctx, id, Act::View).await?;
    let now = crate::db::now();
    let since = now - chrono::TimeDelta::hours(CALLERS_HOURS);
    let (ws, kid) = (key.workspace_id.clone(), key.id.clone());
    let callers = run(state, move |c| Ok(requests::callers(c, &ws, &kid, since)?)).await?;
    let grace_until = grace_until(&key, now);
    let may_end_grace =
        grace_until.is_some() && ctx.may(crate::domain::policy::Action::ManageKey(key.key_ref()));
    Ok(Callers {
        key,
        since,
        callers,
        grace_until,
        may_end_grace,
    })
}

/// Until when a key's previous secret still works, if it does.
pub fn grace_until(key: &ApiKey, now: NaiveDateTime) -> Option<NaiveDateTime> {
    if key.revoked_at.is_some() || key.deleted_at.is_some() {
        return None;
    }
    key.previous_expires_at.filter(|u| *u > now)
}

/// The refusal when a key has no previous secret in its grace period.
pub fn no_grace() -> Error {
    Error::conflict(
        "NO_GRACE_PERIOD",
        "This key has no previous secret in a grace period: there is nothing to end.",
    )
}

/// The key `id` for ending its grace period (to show the confirmation).
pub async fn grace_to_end(
    state: &AppState,
    ctx: &Ctx,
    id: &str,
) -> Result<(ApiKey, NaiveDateTime)> {
    let key = load(state, ctx, id, Act::Manage).await?;
    refuse_revoked(&key)?;
    let until = grace_until(&key, crate::db::now()).ok_or_else(no_grace)?;
    Ok((key, until))
}

/// End the grace period of the key `id`'s previous secret now: from this
/// moment it is refused (EXPIRED, "replaced"). Recorded as
/// `key.grace_ended`.
pub async fn end_grace(state: &AppState, ctx: &Ctx, id: &str) -> Result<ApiKey> {
    let (key, _) = grace_to_end(state, ctx, id).await?;
    let audit = ctx.audit.clone();
    let k = key.clone();
    let written = run(state, move |c| {
        requests::end_grace(c, &audit, &k)?.ok_or_else(no_grace)
    })
    .await;
    let (ws, kid) = (key.workspace_id.clone(), key.id.clone());
    super::settle(state, written, move |c| {
        let now = crate::db::now();
        Ok(crate::db::keys::get(c, &ws, &kid)?
            .filter(|k| k.previous_expires_at.is_none_or(|u| u <= now)))
    })
    .await
}
