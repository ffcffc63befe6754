//! Leak reports (issue 25): a key's secret found in public, reported by
//! GitHub secret scanning or by anyone through the public form. A report of
//! a live key is kept, recorded as a `key.leaked` event naming where it was
//! found, and, when the workspace says so (the default), revokes the key.
//!
//! Nothing here is on the key check's path: a leaked key is a revoked one
//! there, with its reason on the row it already reads.

use super::DbConn;
use super::events::{self, AuditContext};
use super::keys::{self, ApiKey};
use super::schema::{key_leaks, workspaces};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde_json::json;

/// What a workspace does when one of its keys is reported leaked.
pub const RESPONSE_REVOKE: &str = "revoke";
/// Only record and tell: the key keeps working.
pub const RESPONSE_REPORT: &str = "report";

/// Who reported a leak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A signed GitHub secret scanning alert.
    Github,
    /// The public "report a leaked key" form or endpoint.
    Public,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Github => "github",
            Source::Public => "public",
        }
    }

    /// Who the audit trail names as the actor.
    pub fn actor_label(self) -> &'static str {
        match self {
            Source::Github => "GitHub secret scanning",
            Source::Public => "An anonymous reporter",
        }
    }

    /// What a revocation by this source keeps as the key's reason.
    pub fn revoked_reason(self) -> &'static str {
        match self {
            Source::Github => "leaked_github",
            Source::Public => "leaked_public",
        }
    }

    /// Words for a page: "GitHub secret scanning", "the public report form".
    pub fn label(source: &str) -> &'static str {
        match source {
            "github" => "GitHub secret scanning",
            _ => "the public report form",
        }
    }
}

/// What became of one reported secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finding {
    /// A live key, now revoked.
    Revoked,
    /// A live key, reported only (its workspace chose "report only").
    Reported,
    /// No live key has this secret: unknown, already revoked, deleted,
    /// expired or replaced. Nothing was recorded.
    NotLive,
}

impl Finding {
    /// Whether the secret was a live key (GitHub's `true_positive`).
    pub fn is_live(self) -> bool {
        !matches!(self, Finding::NotLive)
    }
}

/// One stored report of a key.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = key_leaks)]
pub struct KeyLeak {
    pub id: String,
    pub workspace_id: String,
    pub key_id: String,
    pub source: String,
    pub url: Option<String>,
    pub reported_at: NaiveDateTime,
    pub reporter: Option<String>,
}

impl KeyLeak {
    pub fn source_label(&self) -> &'static str {
        Source::label(&self.source)
    }
}

/// Whether this secret (by digest) is the current or grace-period secret of
/// a key that still works (not revoked, deleted or expired).
fn is_live(key: &ApiKey, digest: &str, now: NaiveDateTime) -> bool {
    key.status(now).can_revoke() && (key.digest == digest || key.grace_until(now).is_some())
}

/// Handle one reported secret, by its digest, in its own transaction.
/// `url` is where it was found; `reporter` a keyed hash of a public
/// reporter's address (never the address).
pub fn report(
    conn: &mut DbConn,
    source: Source,
    digest: &str,
    url: Option<&str>,
    reporter: Option<&str>,
) -> QueryResult<Finding> {
    super::write_transaction(conn, |conn| {
        let Some(key) = keys::find_leaked_locked(conn, digest)? else {
            return Ok(Finding::NotLive);
        };
        let now = super::now();
        if !is_live(&key, digest, now) {
            return Ok(Finding::NotLive);
        }
        let response: String = workspaces::table
            .find(&key.workspace_id)
            .select(workspaces::leak_response)
            .first(conn)?;
        diesel::insert_into(key_leaks::table)
            .values((
                key_leaks::id.eq(crate::domain::ids::new_id("lek")),
                key_leaks::workspace_id.eq(&key.workspace_id),
                key_leaks::key_id.eq(&key.id),
                key_leaks::source.eq(source.as_str()),
                key_leaks::url.eq(url),
                key_leaks::reported_at.eq(now),
                key_leaks::reporter.eq(reporter),
            ))
            .execute(conn)?;
        let ctx = AuditContext {
            workspace_id: key.workspace_id.clone(),
            actor_id: None,
            actor_label: source.actor_label().to_owned(),
            ip: None,
            user_agent: None,
        };
        let revoke = response != RESPONSE_REPORT;
        events::record(
            conn,
            &ctx,
            "key.leaked",
            keys::target_of(&key),
            json!({
                "source": source.as_str(),
                "url": url,
                "excerpt": key.excerpt(),
                "action": if revoke { "revoked" } else { "reported" },
            }),
        )?;
        if revoke {
            keys::revoke_leaked(conn, &ctx, &key, source.revoked_reason())?;
            Ok(Finding::Revoked)
        } else {
            Ok(Finding::Reported)
        }
    })
}

/// The reports of a key of the workspace, newest first.
pub fn of_key(conn: &mut DbConn, workspace_id: &str, key_id: &str) -> QueryResult<Vec<KeyLeak>> {
    key_leaks::table
        .filter(key_leaks::workspace_id.eq(workspace_id))
        .filter(key_leaks::key_id.eq(key_id))
        .order((key_leaks::reported_at.desc(), key_leaks::id.desc()))
        .limit(50)
        .select(KeyLeak::as_select())
        .load(conn)
}

/// Set what a leak report does in the workspace (`revoke` or `report`),
/// audited as a setting change. Returns whether anything changed.
pub fn set_response(conn: &mut DbConn, ctx: &AuditContext, response: &str) -> QueryResult<bool> {
    super::write_transaction(conn, |conn| {
        super::workspaces::lock(conn, &ctx.workspace_id)?;
        let current = super::workspaces::get(conn, &ctx.workspace_id)?;
        if current.leak_response == response {
            return Ok(false);
        }
        diesel::update(workspaces::table.find(&ctx.workspace_id))
            .set((
                workspaces::leak_response.eq(response),
                workspaces::updated_at.eq(super::now()),
            ))
            .execute(conn)?;
        events::record(
            conn,
            ctx,
            "settings.changed",
            events::EventTarget::workspace(&current.id, &current.name),
            json!({ "setting": "leak_response", "old": current.leak_response, "new": response }),
        )?;
        Ok(true)
    })
}
