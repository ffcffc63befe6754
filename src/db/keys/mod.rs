//! API keys. Every function that reads keys for the UI takes the workspace
//! id; the one exception is the lookup by digest for authentication, where
//! the secret itself identifies the workspace.
//!
//! This file holds the row and its writes; [`list`] the lists, searches and
//! counts of the key pages and the API; [`auth`] what key checks read and
//! write (the lookup by digest, last-used times, the digest index).

mod auth;
mod list;

pub use auth::*;
pub use list::*;

use super::DbConn;
use super::changes::{self, Change};
use super::events::{self, AuditContext, EventTarget};
use super::schema::api_keys;
use crate::domain::keys::{Environment, SecretFacts, Status, excerpt};
use crate::domain::policy::{KeyOwner, KeyRef};
use chrono::{NaiveDateTime, TimeDelta};
use diesel::prelude::*;
use serde_json::json;

pub const KIND_PERSONAL: &str = "personal";
pub const KIND_WORKSPACE: &str = "workspace";

/// An API key row (its secret is not in it, only the digest).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = api_keys)]
pub struct ApiKey {
    pub id: String,
    pub workspace_id: String,
    pub kind: String,
    pub owner_id: Option<String>,
    pub created_by: String,
    pub name: String,
    pub description: String,
    pub tags: String,
    pub environment: String,
    pub permissions: String,
    pub resources: String,
    pub digest: String,
    pub head: String,
    pub tail: String,
    pub previous_digest: Option<String>,
    pub previous_expires_at: Option<NaiveDateTime>,
    pub expires_at: Option<NaiveDateTime>,
    pub rate_limit: Option<i32>,
    pub disabled_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
    pub revoked_by: Option<String>,
    pub deleted_at: Option<NaiveDateTime>,
    pub creator_removed_at: Option<NaiveDateTime>,
    pub request_nonce: String,
    pub search: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub last_used_at: Option<NaiveDateTime>,
    /// The installation prefix the key was issued with (`sk_`, `acme_`).
    pub key_prefix: String,
    /// Why the key was revoked, when a leak report revoked it:
    /// `leaked_github` or `leaked_public`; `None` otherwise.
    pub revoked_reason: Option<String>,
    /// Created recoverable (issue 27): its secret was kept encrypted in
    /// `key_secrets`, until the key was revoked or deleted.
    pub recoverable: bool,
    /// Set while the owning service account is disabled: the key is
    /// refused like a disabled one.
    pub owner_disabled_at: Option<NaiveDateTime>,
    /// The key's IP allowlist in its stored form (normalised entries,
    /// comma-separated; [`crate::domain::allowlist`]); `None`: usable from
    /// anywhere.
    pub allowed_ips: Option<String>,
    /// The usage quota ([`crate::domain::quota::Quota::from_columns`]).
    pub quota_limit: Option<i64>,
    pub quota_refill: Option<i64>,
    pub quota_period: Option<String>,
    /// The plan the key is on (issue 23); `None`: its own settings only.
    pub plan_id: Option<String>,
    /// The settings it keeps as its own on its plan
    /// ([`crate::domain::plans::overrides`]).
    pub plan_overrides: String,
}

/// The owner kind as the API and the CSV export name it: `service` for a
/// key a service account owns, else `personal` or `workspace`.
pub(crate) fn owner_kind(owner_id: Option<&str>, personal: bool) -> &'static str {
    if owner_id.is_some_and(crate::domain::ids::is_service_account_id) {
        "service"
    } else if personal {
        KIND_PERSONAL
    } else {
        KIND_WORKSPACE
    }
}

pub(crate) fn json_list(raw: &str) -> Vec<String> {
    serde_json::from_str(raw).unwrap_or_default()
}

pub(crate) fn to_json(list: &[String]) -> String {
    serde_json::to_string(list).unwrap_or_else(|_| "[]".into())
}

impl ApiKey {
    /// A key owned by a member: a person's personal key or a service
    /// account's key.
    pub fn is_personal(&self) -> bool {
        self.kind == KIND_PERSONAL
    }

    /// A key owned by a service account (a personal key of its
    /// membership, whose id says so).
    pub fn is_service(&self) -> bool {
        self.owner_id
            .as_deref()
            .is_some_and(crate::domain::ids::is_service_account_id)
    }

    /// The owner kind as the API and the CSV export name it: `personal`,
    /// `service` or `workspace`.
    pub fn owner_kind(&self) -> &'static str {
        owner_kind(self.owner_id.as_deref(), self.is_personal())
    }

    pub fn environment(&self) -> Environment {
        self.environment.parse().unwrap_or(Environment::Live)
    }

    pub fn status(&self, now: NaiveDateTime) -> Status {
        Status::derive(
            self.revoked_at.or(self.deleted_at),
            self.disabled_at.or(self.owner_disabled_at),
            self.expires_at,
            now,
        )
    }

    /// The masked excerpt, e.g. `sk_live_…5G08`.
    pub fn excerpt(&self) -> String {
        excerpt(&self.key_prefix, self.environment(), &self.tail)
    }

    pub fn tag_list(&self) -> Vec<String> {
        json_list(&self.tags)
    }

    pub fn permission_list(&self) -> Vec<String> {
        json_list(&self.permissions)
    }

    pub fn resource_list(&self) -> Vec<String> {
        json_list(&self.resources)
    }

    /// The key's usage quota, if it has one.
    pub fn quota(&self) -> Option<crate::domain::quota::Quota> {
        crate::domain::quota::Quota::from_columns(
            self.quota_limit,
            self.quota_refill,
            self.quota_period.as_deref(),
        )
    }

    /// The quota as the audit trail records it: `{limit, period, refill}`
    /// or `null`.
    pub fn quota_json(&self) -> serde_json::Value {
        crate::domain::quota::to_json(self.quota().as_ref())
    }

    /// The IP allowlist's entries (empty: none).
    pub fn allowed_ip_list(&self) -> Vec<String> {
        crate::domain::allowlist::stored_entries(self.allowed_ips.as_deref())
    }

    /// What the policy module needs to know about this key.
    pub fn key_ref(&self) -> KeyRef<'_> {
        KeyRef {
            workspace_id: &self.workspace_id,
            owner: match &self.owner_id {
                Some(owner) if crate::domain::ids::is_service_account_id(owner) => {
                    KeyOwner::Service(owner)
                }
                Some(owner) => KeyOwner::Personal(owner),
                None => KeyOwner::Workspace,
            },
        }
    }

    /// The old secret still works until this time (after a regeneration).
    pub fn grace_until(&self, now: NaiveDateTime) -> Option<NaiveDateTime> {
        // A revoked or deleted key keeps the old digest (so the old secret
        // answers REVOKED) but no secret of it works any more.
        self.previous_expires_at.filter(|t| {
            *t > now
                && self.previous_digest.is_some()
                && self.revoked_at.is_none()
                && self.deleted_at.is_none()
        })
    }
}

/// A key with its owner's email and name (personal keys).
#[derive(Debug, Clone)]
pub struct KeyWithOwner {
    pub key: ApiKey,
    pub owner_email: Option<String>,
    pub owner_name: Option<String>,
}

/// Why a key change was refused.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("no such key")]
    NotFound,
    #[error("This form was already submitted; the key was created then and its secret shown once.")]
    DuplicateRequest,
    #[error("Only active or inactive keys can be revoked.")]
    NotRevocable,
    #[error("This service account is disabled: enable it before creating keys for it.")]
    OwnerDisabled,
    #[error("This key is revoked; it can no longer be changed.")]
    Revoked,
    #[error(
        "You already have {0} personal keys, the most this workspace allows. Revoke or delete one you no longer need, or ask an admin to raise the limit."
    )]
    LimitReached(i64),
    #[error("This key has no quota to top up: give it a quota first.")]
    NoQuota,
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
}

fn is_unique_violation(e: &diesel::result::Error) -> bool {
    matches!(
        e,
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)
    )
}

/// Everything needed to create a key; validated by the caller.
#[derive(Debug)]
pub struct NewKey<'a> {
    /// `Some(user id)` for a personal key, `None` for a workspace key.
    pub owner: Option<(&'a str, &'a str)>,
    /// The person who creates it, when that is not the audit actor (a
    /// management key acts for its owner or creator); `None`: the actor.
    pub created_by: Option<&'a str>,
    pub name: &'a str,
    pub description: &'a str,
    pub tags: &'a [String],
    pub permissions: &'a [String],
    pub resources: &'a [String],
    pub facts: &'a SecretFacts,
    pub expires_at: Option<NaiveDateTime>,
    pub rate_limit: Option<i32>,
    /// The stored form of the key's IP allowlist; `None`: none.
    pub allowed_ips: Option<&'a str>,
    /// The usage quota; `None`: none.
    pub quota: Option<crate::domain::quota::Quota>,
    /// The plan it is on and the fields it overrides (stored form).
    pub plan: Option<(&'a str, &'a str)>,
    pub request_nonce: &'a str,
    /// Created recoverable: the caller stores its sealed secret in the
    /// same transaction ([`super::secrets::store`]).
    pub recoverable: bool,
}

impl<'a> NewKey<'a> {
    /// A workspace key with only a name: no description, tags, permissions,
    /// scope, expiry or rate limit (tools and tests that make many keys).
    pub fn plain_workspace_key(
        name: &'a str,
        facts: &'a SecretFacts,
        request_nonce: &'a str,
    ) -> Self {
        NewKey {
            owner: None,
            created_by: None,
            name,
            description: "",
            tags: &[],
            permissions: &[],
            resources: &[],
            facts,
            expires_at: None,
            rate_limit: None,
            allowed_ips: None,
            quota: None,
            plan: None,
            request_nonce,
            recoverable: false,
        }
    }
}

/// The lower-case text that name/id/owner/tag search matches against.
fn search_text(id: &str, name: &str, owner: Option<&str>, tags: &[String]) -> String {
    let owner = owner.unwrap_or("workspace");
    format!("{name} {id} {owner} {}", tags.join(" ")).to_lowercase()
}

/// Note, for the key cache, that this transaction changed `key`'s row (any
/// of its secrets' digests), at the version the write left the row at: read
/// back here, after the database's trigger bumped it, so that the change's
/// own late notice (at the same version) and a check that read the new row
/// leave the cached and outage copies alone, while every older copy goes.
pub(crate) fn record_change(conn: &mut DbConn, key: &ApiKey) -> QueryResult<()> {
    let version: i64 = api_keys::table
        .find(&key.id)
        .select(api_keys::version)
        .first(conn)?;
    changes::record(Change::key_at(key, version));
    Ok(())
}

pub(crate) fn key_target(key: &ApiKey) -> EventTarget<'_> {
    EventTarget {
        target_type: Some("api_key"),
        target_id: Some(&key.id),
        target_label: Some(&key.name),
    }
}

/// Create a key and record the event, in one transaction (a savepoint
/// inside the caller's). A form submitted twice (same nonce) creates
/// nothing the second time.
pub fn create(conn: &mut DbConn, ctx: &AuditContext, new: NewKey<'_>) -> Result<ApiKey, KeyError> {
    let id = crate::domain::ids::new_id("key");
    let now = super::now();
    let quota = crate::domain::quota::Quota::columns(new.quota.as_ref());
    let (kind, owner_id, owner_label) = match new.owner {
        Some((owner, label)) => (KIND_PERSONAL, Some(owner), Some(label)),
        None => (KIND_WORKSPACE, None, None),
    };
    // The workspace's limit on personal keys is the caller's to check in
    // the same transaction (`app::keys::create`).
    super::write_transaction(conn, |conn| {
        let inserted = diesel::insert_into(api_keys::table)
            .values((
                api_keys::id.eq(&id),
                api_keys::workspace_id.eq(&ctx.workspace_id),
                api_keys::kind.eq(kind),
                api_keys::owner_id.eq(owner_id),
                api_keys::created_by.eq(new
                    .created_by
                    .or(ctx.actor_id.as_deref())
                    .unwrap_or_default()),
                api_keys::name.eq(new.name),
                api_keys::description.eq(new.description),
                api_keys::tags.eq(to_json(new.tags)),
                api_keys::environment.eq(new.facts.environment.as_str()),
                api_keys::permissions.eq(to_json(new.permissions)),
                api_keys::resources.eq(to_json(new.resources)),
                api_keys::digest.eq(&new.facts.digest),
                api_keys::head.eq(&new.facts.head),
                api_keys::tail.eq(&new.facts.tail),
                api_keys::key_prefix.eq(&new.facts.prefix),
                api_keys::expires_at.eq(new.expires_at),
                api_keys::rate_limit.eq(new.rate_limit),
                api_keys::allowed_ips.eq(new.allowed_ips),
                api_keys::quota_limit.eq(quota.0),
                api_keys::quota_refill.eq(quota.1),
                api_keys::quota_period.eq(quota.2),
                api_keys::plan_id.eq(new.plan.map(|p| p.0)),
                api_keys::plan_overrides.eq(new.plan.map_or("", |p| p.1)),
                api_keys::request_nonce.eq(new.request_nonce),
                api_keys::search.eq(search_text(&id, new.name, owner_label, new.tags)),
                api_keys::created_at.eq(now),
                api_keys::updated_at.eq(now),
            ))
            .execute(conn);
        match inserted {
            Err(e) if is_unique_violation(&e) => return Err(KeyError::DuplicateRequest),
            other => other?,
        };
        let key = get(conn, &ctx.workspace_id, &id)?.ok_or(KeyError::NotFound)?;
        // A "no such key" answer cached for this digest must go.
        // The version the row was created with, read in the creating
        // transaction: the late notice of this very insert carries it too,
        // so a first check racing that notice may still keep what it read
        // (an unknown version here made every such check uncacheable).
        record_change(conn, &key)?;
        events::record(
            conn,
            ctx,
            "key.created",
            key_target(&key),
            json!({
                "kind": kind,
                "environment": key.environment,
                "permissions": new.permissions,
                "resources": new.resources,
                "expires_at": key.expires_at,
                "rate_limit": key.rate_limit,
                "allowed_ips": key.allowed_ip_list(),
                "quota": key.quota_json(),
                "plan": key.plan_id,
                "excerpt": key.excerpt(),
                "recoverable": new.recoverable,
            }),
        )?;
        Ok(key)
    })
}

/// A key of the workspace by id; deleted keys are not found.
pub fn get(conn: &mut DbConn, workspace_id: &str, id: &str) -> QueryResult<Option<ApiKey>> {
    api_keys::table
        .filter(api_keys::workspace_id.eq(workspace_id))
        .filter(api_keys::id.eq(id))
        .filter(api_keys::deleted_at.is_null())
        .select(ApiKey::as_select())
        .first(conn)
        .optional()
}

/// The key of the workspace whose current secret has this digest (not
/// deleted): how a request that generated a secret finds out whether its
/// write was committed.
pub fn get_by_digest(
    conn: &mut DbConn,
    workspace_id: &str,
    digest: &str,
) -> QueryResult<Option<ApiKey>> {
    api_keys::table
        .filter(api_keys::workspace_id.eq(workspace_id))
        .filter(api_keys::digest.eq(digest))
        .filter(api_keys::deleted_at.is_null())
        .select(ApiKey::as_select())
        .first(conn)
        .optional()
}

/// Keys of the workspace with these ids (not deleted).
pub fn get_many(conn: &mut DbConn, workspace_id: &str, ids: &[String]) -> QueryResult<Vec<ApiKey>> {
    api_keys::table
        .filter(api_keys::workspace_id.eq(workspace_id))
        .filter(api_keys::id.eq_any(ids))
        .filter(api_keys::deleted_at.is_null())
        .select(ApiKey::as_select())
        .order((api_keys::created_at.desc(), api_keys::id.desc()))
        .load(conn)
}

/// The key as it is inside a writing transaction, its row locked until the
/// transaction ends, so a change is compared with what it really replaces:
/// concurrent requests with the same change then write (and audit) it
/// once. SQLite's write transactions already hold the database's write
/// lock (`BEGIN IMMEDIATE`); PostgreSQL locks the row.
fn get_locked(conn: &mut DbConn, workspace_id: &str, id: &str) -> QueryResult<Option<ApiKey>> {
    if let DbConn::Pg(pg) = conn {
        api_keys::table
            .filter(api_keys::workspace_id.eq(workspace_id))
            .filter(api_keys::id.eq(id))
            .select(api_keys::id)
            .for_update()
            .first::<String>(pg)
            .optional()?;
    }
    get(conn, workspace_id, id)
}

/// The editable details of a key.
#[derive(Debug, Clone)]
pub struct Details {
    pub name: String,
    pub description: String,
    pub tags: Vec<String>,
    pub rate_limit: Option<i32>,
    /// The stored form of the IP allowlist; `None`: none.
    pub allowed_ips: Option<String>,
    /// The usage quota; `None`: none.
    pub quota: Option<crate::domain::quota::Quota>,
    /// The plan and the overridden fields (stored form).
    pub plan_id: Option<String>,
    pub plan_overrides: String,
}

/// Change a key's name, description, tags, rate limit and IP allowlist. Saving what is
/// already there changes nothing and records no event.
pub fn update_details(
    conn: &mut DbConn,
    ctx: &AuditContext,
    key: &ApiKey,
    owner_label: Option<&str>,
    details: &Details,
) -> Result<ApiKey, KeyError> {
    let Details {
        name,
        description,
        tags,
        rate_limit,
        allowed_ips,
        quota,
        plan_id,
        plan_overrides,
    } = details;
    let rate_limit = *rate_limit;
    let quota_columns = crate::domain::quota::Quota::columns(quota.as_ref());
    if key.revoked_at.is_some() {
        return Err(KeyError::Revoked);
    }
    super::write_transaction(conn, |conn| {
        let key = &get_locked(conn, &ctx.workspace_id, &key.id)?.ok_or(KeyError::NotFound)?;
        if key.revoked_at.is_some() {
            return Err(KeyError::Revoked);
        }
        let unchanged = key.name == *name
            && key.description == *description
            && key.tag_list() == *tags
            && key.rate_limit == rate_limit
            && key.allowed_ips == *allowed_ips
            && key.quota() == *quota
            && key.plan_id == *plan_id
            && key.plan_overrides == *plan_overrides;
        if unchanged {
            return Ok(key.clone());
        }
        diesel::update(
            api_keys::table
                .filter(api_keys::id.eq(&key.id))
                .filter(api_keys::workspace_id.eq(&ctx.workspace_id)),
        )
        .set((
            api_keys::name.eq(name),
            api_keys::description.eq(description),
            api_keys::tags.eq(to_json(tags)),
            api_keys::rate_limit.eq(rate_limit),
            api_keys::allowed_ips.eq(allowed_ips),
            api_keys::quota_limit.eq(quota_columns.0),
            api_keys::quota_refill.eq(quota_columns.1),
            api_keys::quota_period.eq(quota_columns.2),
            api_keys::plan_id.eq(plan_id),
            api_keys::plan_overrides.eq(plan_overrides),
            api_keys::search.eq(search_text(&key.id, name, owner_label, tags)),
            api_keys::updated_at.eq(super::now()),
        ))
        .execute(conn)?;
        super::quotas::quota_changed(
            conn,
            &key.id,
            key.quota().as_ref(),
            quota.as_ref(),
            super::now(),
        )?;
        let updated = get(conn, &ctx.workspace_id, &key.id)?.ok_or(KeyError::NotFound)?;
        record_change(conn, key)?;
        events::record(
            conn,
            ctx,
            "key.updated",
            key_target(&updated),
            json!({
                "old": { "name": key.name, "description": key.description, "tags": key.tag_list(), "rate_limit": key.rate_limit, "allowed_ips": key.allowed_ip_list(), "quota": key.quota_json(), "plan": key.plan_id, "plan_overrides": key.plan_overrides },
                "new": { "name": name, "description": description, "tags": tags, "rate_limit": rate_limit, "allowed_ips": updated.allowed_ip_list(), "quota": updated.quota_json(), "plan": updated.plan_id, "plan_overrides": updated.plan_overrides },
            }),
        )?;
        Ok(updated)
    })
}

/// Top a key's quota up: set what is left to `set`, or add `add` to it.
/// Returns what was left before and after. Audited as
/// `key.quota_topped_up`.
pub fn top_up_quota(
    conn: &mut DbConn,
    ctx: &AuditContext,
    key: &ApiKey,
    set: Option<i64>,
    add: i64,
) -> Result<(i64, i64), KeyError> {
    super::write_transaction(conn, |conn| {
        let key = &get_locked(conn, &ctx.workspace_id, &key.id)?.ok_or(KeyError::NotFound)?;
        if key.revoked_at.is_some() {
            return Err(KeyError::Revoked);
        }
        let Some(quota) = key.quota() else {
            return Err(KeyError::NoQuota);
        };
        let (before, after) = super::quotas::top_up(conn, &key.id, &quota, set, add, super::now())?;
        record_change(conn, key)?;
        events::record(
            conn,
            ctx,
            "key.quota_topped_up",
            key_target(key),
            json!({ "before": before, "after": after, "set": set, "add": (add != 0).then_some(add) }),
        )?;
        Ok((before, after))
    })
}

/// Switch a key off (`disabled = true`) or on again. Disabling a disabled
/// key (or enabling an enabled one) changes nothing and records no event.
pub fn set_disabled(
    conn: &mut DbConn,
    ctx: &AuditContext,
    key: &ApiKey,
    disabled: bool,
) -> Result<ApiKey, KeyError> {
    if key.revoked_at.is_some() {
        return Err(KeyError::Revoked);
    }
    super::write_transaction(conn, |conn| {
        let key = &get_locked(conn, &ctx.workspace_id, &key.id)?.ok_or(KeyError::NotFound)?;
        if key.revoked_at.is_some() {
            return Err(KeyError::Revoked);
        }
        if key.disabled_at.is_some() == disabled {
            return Ok(key.clone());
        }
        let now = super::now();
        diesel::update(
            api_keys::table
                .filter(api_keys::id.eq(&key.id))
                .filter(api_keys::workspace_id.eq(&ctx.workspace_id)),
        )
        .set((
            api_keys::disabled_at.eq(disabled.then_some(now)),
            api_keys::updated_at.eq(now),
        ))
        .execute(conn)?;
        record_change(conn, key)?;
        let action = if disabled {
            "key.disabled"
        } else {
            "key.enabled"
        };
        events::record(conn, ctx, action, key_target(key), json!({}))?;
        get(conn, &ctx.workspace_id, &key.id)?.ok_or(KeyError::NotFound)
    })
}

/// Give a key a new secret. The old one stops working now (`grace` zero) or
/// when the grace period ends. A form submitted twice regenerates once.
pub fn regenerate(
    conn: &mut DbConn,
    ctx: &AuditContext,
    key: &ApiKey,
    facts: &SecretFacts,
    grace: TimeDelta,
    request_nonce: &str,
    expiry_cap: Option<NaiveDateTime>,
) -> Result<ApiKey, KeyError> {
    if key.revoked_at.is_some() {
        return Err(KeyError::Revoked);
    }
    if key.request_nonce == request_nonce {
        return Err(KeyError::DuplicateRequest);
    }
    super::write_transaction(conn, |conn| {
        let now = super::now();
        // The old digest is kept even without a grace period (ending now), so
        // the old secret is answered "replaced" (EXPIRED) instead of
        // "no such key" when an integration still sends it.
        let previous_until = now + grace.max(TimeDelta::zero());
        let (previous, previous_until) = (Some(key.digest.clone()), Some(previous_until));
        // The workspace maximum applies to regenerations: shorten, never extend.
        let expires_at = match (key.expires_at, expiry_cap) {
            (None, Some(cap)) => Some(cap),
            (Some(e), Some(cap)) if e > cap => Some(cap),
            (e, _) => e,
        };
        let updated = diesel::update(
            api_keys::table
                .filter(api_keys::id.eq(&key.id))
                .filter(api_keys::workspace_id.eq(&ctx.workspace_id)),
        )
        .set((
            api_keys::digest.eq(&facts.digest),
            api_keys::head.eq(&facts.head),
            api_keys::tail.eq(&facts.tail),
            api_keys::key_prefix.eq(&facts.prefix),
            api_keys::previous_digest.eq(previous),
            api_keys::previous_expires_at.eq(previous_until),
            api_keys::expires_at.eq(expires_at),
            api_keys::request_nonce.eq(request_nonce),
            api_keys::updated_at.eq(now),
        ))
        .execute(conn);
        match updated {
            Err(e) if is_unique_violation(&e) => return Err(KeyError::DuplicateRequest),
            other => other?,
        };
        let fresh = get(conn, &ctx.workspace_id, &key.id)?.ok_or(KeyError::NotFound)?;
        // Both the old secret's digests and the new one's, at the version
        // this write left the row at.
        record_change(conn, key)?;
        record_change(conn, &fresh)?;
        events::record(
            conn,
            ctx,
            "key.regenerated",
            key_target(&fresh),
            json!({
                "old_excerpt": key.excerpt(),
                "new_excerpt": fresh.excerpt(),
                "old_secret_valid_until": (grace > TimeDelta::zero()).then_some(previous_until),
                "expires_at": expires_at,
                "expiry_shortened": expires_at != key.expires_at,
            }),
        )?;
        Ok(fresh)
    })
}

/// Mark a key revoked by the actor; its grace-period secret dies too.
///
/// The old secret's digest is kept (not cleared): the verifier finds the
/// key by it and answers REVOKED, where a cleared digest answered
/// NOT_FOUND, which sent integrators looking for a typo. The revocation
/// itself is what refuses the old secret, checked before any digest.
fn mark_revoked(
    conn: &mut DbConn,
    ctx: &AuditContext,
    key: &ApiKey,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    let revoked = diesel::update(
        api_keys::table
            .filter(api_keys::id.eq(&key.id))
            .filter(api_keys::workspace_id.eq(&ctx.workspace_id))
            .filter(api_keys::revoked_at.is_null()),
    )
    .set((
        api_keys::revoked_at.eq(now),
        api_keys::revoked_by.eq(ctx.actor_id.as_deref()),
        api_keys::updated_at.eq(now),
    ))
    .execute(conn)?;
    // A revoked key's secret is never shown again: its sealed copy goes in
    // the same transaction (issue 27).
    super::secrets::destroy(conn, &ctx.workspace_id, &key.id)?;
    record_change(conn, key)?;
    Ok(revoked)
}

fn revoke_in_tx(
    conn: &mut DbConn,
    ctx: &AuditContext,
    key: &ApiKey,
    details: serde_json::Value,
) -> Result<(), KeyError> {
    let now = super::now();
    if !key.status(now).can_revoke() {
        return Err(KeyError::NotRevocable);
    }
    mark_revoked(conn, ctx, key, now)?;
    events::record(conn, ctx, "key.revoked", key_target(key), details)?;
    Ok(())
}

/// The key (of any workspace, deleted ones included) whose current or
/// previous secret has this digest, its row locked for the rest of the
/// transaction: what a leak report names. Only leak reports look keys up
/// across workspaces this way, and they never tell the reporter more than
/// whether the secret is a live key.
pub fn find_leaked_locked(conn: &mut DbConn, digest: &str) -> QueryResult<Option<ApiKey>> {
    let matching = api_keys::digest
        .eq(digest)
        .or(api_keys::previous_digest.eq(digest));
    if let DbConn::Pg(pg) = conn {
        api_keys::table
            .filter(matching)
            .select(api_keys::id)
            .for_update()
            .first::<String>(pg)
            .optional()?;
    }
    api_keys::table
        .filter(matching)
        .select(ApiKey::as_select())
        .first(conn)
        .optional()
}

/// Revoke a key because it was reported leaked (inside the caller's write
/// transaction): `reason` is kept on the row (`leaked_github`,
/// `leaked_public`) so checks and pages can say why.
pub fn revoke_leaked(
    conn: &mut DbConn,
    ctx: &AuditContext,
    key: &ApiKey,
    reason: &str,
) -> QueryResult<()> {
    let now = super::now();
    // The reason first: the revocation then bumps the row's version, so
    // every copy that sees the revocation sees its reason.
    diesel::update(api_keys::table.filter(api_keys::id.eq(&key.id)))
        .set(api_keys::revoked_reason.eq(reason))
        .execute(conn)?;
    mark_revoked(conn, ctx, key, now)?;
    events::record(
        conn,
        ctx,
        "key.revoked",
        key_target(key),
        json!({ "reason": "leaked" }),
    )
}

/// The audit target naming a key.
pub fn target_of(key: &ApiKey) -> EventTarget<'_> {
    key_target(key)
}

/// Revoke a key: irreversible; the row and its history stay.
pub fn revoke(conn: &mut DbConn, ctx: &AuditContext, key: &ApiKey) -> Result<(), KeyError> {
    super::write_transaction(conn, |conn| revoke_in_tx(conn, ctx, key, json!({})))
}

/// Revoke several keys in one transaction (all or none). Keys that cannot
/// be revoked (already revoked or expired) are skipped and returned.
pub fn revoke_many(
    conn: &mut DbConn,
    ctx: &AuditContext,
    keys: &[ApiKey],
) -> Result<(usize, Vec<String>), KeyError> {
    super::write_transaction(conn, |conn| {
        let now = super::now();
        let mut revoked = 0;
        let mut skipped = Vec::new();
        for key in keys {
            if key.status(now).can_revoke() {
                revoke_in_tx(
                    conn,
                    ctx,
                    key,
                    json!({ "bulk": true, "selected": keys.len() }),
                )?;
                revoked += 1;
            } else {
                skipped.push(key.name.clone());
            }
        }
        Ok((revoked, skipped))
    })
}

/// Delete a key: it leaves every list and stops working; its events stay.
pub fn delete(conn: &mut DbConn, ctx: &AuditContext, key: &ApiKey) -> Result<(), KeyError> {
    super::write_transaction(conn, |conn| {
        let now = super::now();
        diesel::update(
            api_keys::table
                .filter(api_keys::id.eq(&key.id))
                .filter(api_keys::workspace_id.eq(&ctx.workspace_id)),
        )
        // The old secret's digest stays, as on revoke: it answers REVOKED.
        .set((api_keys::deleted_at.eq(now), api_keys::updated_at.eq(now)))
        .execute(conn)?;
        super::secrets::destroy(conn, &ctx.workspace_id, &key.id)?;
        record_change(conn, key)?;
        events::record(
            conn,
            ctx,
            "key.deleted",
            key_target(key),
            json!({ "status": key.status(now).label() }),
        )?;
        Ok(())
    })
}

/// Clear the "creator removed" flag after an admin reviewed the key.
pub fn mark_reviewed(conn: &mut DbConn, ctx: &AuditContext, key: &ApiKey) -> Result<(), KeyError> {
    super::write_transaction(conn, |conn| {
        diesel::update(
            api_keys::table
                .filter(api_keys::id.eq(&key.id))
                .filter(api_keys::workspace_id.eq(&ctx.workspace_id)),
        )
        .set(api_keys::creator_removed_at.eq(None::<NaiveDateTime>))
        .execute(conn)?;
        events::record(conn, ctx, "key.reviewed", key_target(key), json!({}))?;
        Ok(())
    })
}

/// On a user's removal (inside that transaction): revoke all their personal
/// keys, one event each, and flag the workspace keys they created.
pub fn on_user_removed(conn: &mut DbConn, ctx: &AuditContext, user_id: &str) -> QueryResult<usize> {
    let now = super::now();
    let personal: Vec<ApiKey> = api_keys::table
        .filter(api_keys::workspace_id.eq(&ctx.workspace_id))
        .filter(api_keys::owner_id.eq(user_id))
        .filter(api_keys::deleted_at.is_null())
        .filter(api_keys::revoked_at.is_null())
        .select(ApiKey::as_select())
        .load(conn)?;
    for key in &personal {
        mark_revoked(conn, ctx, key, now)?;
        events::record(
            conn,
            ctx,
            "key.revoked",
            key_target(key),
            json!({ "reason": "owner removed" }),
        )?;
    }
    diesel::update(
        api_keys::table
            .filter(api_keys::workspace_id.eq(&ctx.workspace_id))
            .filter(api_keys::kind.eq(KIND_WORKSPACE))
            .filter(api_keys::created_by.eq(user_id))
            .filter(api_keys::deleted_at.is_null()),
    )
    .set(api_keys::creator_removed_at.eq(now))
    .execute(conn)?;
    Ok(personal.len())
}

/// A service account was disabled (`at` set) or enabled (`None`), inside
/// that transaction: mark or clear all its keys (revoked and deleted ones
/// too, so nothing of it answers differently later), each noted for the
/// key cache and, on PostgreSQL, notified by the change feed's trigger.
/// Returns how many keys were marked.
pub fn set_owner_disabled(
    conn: &mut DbConn,
    workspace_id: &str,
    owner_id: &str,
    at: Option<NaiveDateTime>,
) -> QueryResult<usize> {
    let owned: Vec<ApiKey> = api_keys::table
        .filter(api_keys::workspace_id.eq(workspace_id))
        .filter(api_keys::owner_id.eq(owner_id))
        .select(ApiKey::as_select())
        .load(conn)?;
    for key in &owned {
        diesel::update(api_keys::table.filter(api_keys::id.eq(&key.id)))
            .set(api_keys::owner_disabled_at.eq(at))
            .execute(conn)?;
        record_change(conn, key)?;
    }
    Ok(owned.len())
}

/// How many personal keys a user has that count against limits (active or
/// inactive: not revoked, not deleted).
pub fn count_live_personal(
    conn: &mut DbConn,
    workspace_id: &str,
    owner_id: &str,
) -> QueryResult<i64> {
    api_keys::table
        .filter(api_keys::workspace_id.eq(workspace_id))
        .filter(api_keys::owner_id.eq(owner_id))
        .filter(api_keys::revoked_at.is_null())
        .filter(api_keys::deleted_at.is_null())
        .count()
        .get_result(conn)
}

/// The kind (`personal`, `service` or `workspace`) of these keys of the workspace,
/// deleted ones included, by id: the audit trail names a key's kind.
pub fn kinds(
    conn: &mut DbConn,
    workspace_id: &str,
    ids: &[String],
) -> QueryResult<Vec<(String, String)>> {
    let query = api_keys::table
        .filter(api_keys::id.eq_any(ids))
        .select((api_keys::id, api_keys::kind, api_keys::owner_id))
        .into_boxed();
    let rows: Vec<(String, String, Option<String>)> = match conn {
        // Without planner statistics SQLite preferred scanning the
        // workspace's keys through (workspace_id, …) to finding 25 ids by
        // primary key: 124 ms for the events page at 100k keys. A unary
        // `+` keeps the scope but takes it out of index selection. (With
        // statistics from a sampled ANALYZE it was worse: the key check
        // itself then scanned every key.)
        DbConn::Sqlite(_) => query
            .filter(
                diesel::dsl::sql::<diesel::sql_types::Bool>("+api_keys.workspace_id = ")
                    .bind::<diesel::sql_types::Text, _>(workspace_id.to_owned()),
            )
            .load(conn),
        DbConn::Pg(_) => query
            .filter(api_keys::workspace_id.eq(workspace_id))
            .load(conn),
    }?;
    // A service account's keys are personal keys of an `sa_` owner.
    Ok(rows
        .into_iter()
        .map(|(id, kind, owner)| {
            let service = owner
                .as_deref()
                .is_some_and(crate::domain::ids::is_service_account_id);
            (id, if service { "service".to_owned() } else { kind })
        })
        .collect())
}
