//! API keys. Every function that reads keys for the UI takes the workspace
//! id; the one exception is the lookup by digest for authentication, where
//! the secret itself identifies the workspace.

use super::DbConn;
use super::changes::{self, Change};
use super::events::{self, AuditContext, EventTarget};
use super::schema::{api_keys, people, users, workspaces};
use crate::domain::keys::{Environment, SecretFacts, Status, ValueQuery, excerpt, value_query};
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
}

fn json_list(raw: &str) -> Vec<String> {
    serde_json::from_str(raw).unwrap_or_default()
}

fn to_json(list: &[String]) -> String {
    serde_json::to_string(list).unwrap_or_else(|_| "[]".into())
}

impl ApiKey {
    pub fn is_personal(&self) -> bool {
        self.kind == KIND_PERSONAL
    }

    pub fn environment(&self) -> Environment {
        self.environment.parse().unwrap_or(Environment::Live)
    }

    pub fn status(&self, now: NaiveDateTime) -> Status {
        Status::derive(
            self.revoked_at.or(self.deleted_at),
            self.disabled_at,
            self.expires_at,
            now,
        )
    }

    /// The masked excerpt, e.g. `sk_live_…5G08`.
    pub fn excerpt(&self) -> String {
        excerpt(self.environment(), &self.tail)
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

    /// What the policy module needs to know about this key.
    pub fn key_ref(&self) -> KeyRef<'_> {
        KeyRef {
            workspace_id: &self.workspace_id,
            owner: match &self.owner_id {
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
    #[error("This key is revoked; it can no longer be changed.")]
    Revoked,
    #[error(
        "You already have {0} personal keys, the most this workspace allows. Revoke or delete one you no longer need, or ask an admin to raise the limit."
    )]
    LimitReached(i64),
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
    pub request_nonce: &'a str,
    /// For personal keys: the most active and inactive keys the owner may have.
    pub max_personal: Option<i64>,
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
            request_nonce,
            max_personal: None,
        }
    }
}

/// The lower-case text that name/id/owner/tag search matches against.
fn search_text(id: &str, name: &str, owner: Option<&str>, tags: &[String]) -> String {
    let owner = owner.unwrap_or("workspace");
    format!("{name} {id} {owner} {}", tags.join(" ")).to_lowercase()
}

fn key_target(key: &ApiKey) -> EventTarget<'_> {
    EventTarget {
        target_type: Some("api_key"),
        target_id: Some(&key.id),
        target_label: Some(&key.name),
    }
}

/// Create a key and record the event, in one transaction. A form submitted
/// twice (same nonce) creates nothing the second time.
pub fn create(conn: &mut DbConn, ctx: &AuditContext, new: NewKey<'_>) -> Result<ApiKey, KeyError> {
    let id = crate::domain::ids::new_id("key");
    let now = super::now();
    let (kind, owner_id, owner_label) = match new.owner {
        Some((owner, label)) => (KIND_PERSONAL, Some(owner), Some(label)),
        None => (KIND_WORKSPACE, None, None),
    };
    super::write_transaction(conn, |conn| {
        if let (Some(owner), Some(max)) = (owner_id, new.max_personal) {
            // Serialise creations in this workspace so concurrent requests
            // cannot both pass the count.
            super::workspaces::lock(conn, &ctx.workspace_id)?;
            if count_live_personal(conn, &ctx.workspace_id, owner)? >= max {
                return Err(KeyError::LimitReached(max));
            }
        }
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
                api_keys::expires_at.eq(new.expires_at),
                api_keys::rate_limit.eq(new.rate_limit),
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
        changes::record(Change::key(&key));
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
                "excerpt": key.excerpt(),
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

/// Which keys a list shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// One user's personal keys.
    Owner(String),
    /// Workspace-owned keys.
    Workspace,
    /// Every key of the workspace.
    All,
}

/// A position in a list ordered newest first: the last row's creation time
/// and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: NaiveDateTime,
    pub id: String,
}

impl Cursor {
    /// `<microseconds since epoch>.<id>`, for the URL.
    pub fn encode(&self) -> String {
        format!(
            "{}.{}",
            self.created_at.and_utc().timestamp_micros(),
            self.id
        )
    }

    pub fn decode(raw: &str) -> Option<Cursor> {
        let (micros, id) = raw.split_once('.')?;
        let created_at = chrono::DateTime::from_timestamp_micros(micros.parse().ok()?)?.naive_utc();
        if !id.starts_with("key_") || id.len() > 40 {
            return None;
        }
        Some(Cursor {
            created_at,
            id: id.to_owned(),
        })
    }
}

/// What a key list is narrowed to, besides its scope and search text.
#[derive(Debug, Clone, Copy, Default)]
pub struct Filter {
    /// Keys expiring by then (not yet expired, not revoked).
    pub expiring_until: Option<NaiveDateTime>,
    /// Keys in this status now.
    pub status: Option<Status>,
    pub environment: Option<Environment>,
    /// Only personal keys (`true`) or only workspace keys (`false`).
    pub personal: Option<bool>,
}

/// One page of a key list: newest first, filtered by `query` (name, id,
/// owner, tag, or key value), after `after`. Returns up to `limit` rows and
/// the cursor of the next page, if any.
pub fn list(
    conn: &mut DbConn,
    workspace_id: &str,
    scope: &Scope,
    query: &str,
    filter: &Filter,
    after: Option<&Cursor>,
    limit: i64,
) -> QueryResult<(Vec<KeyWithOwner>, Option<Cursor>)> {
    use diesel::dsl::sql;
    use diesel::sql_types::{Bool, Text};
    let query = query.trim();
    let lowered = query.to_lowercase();
    let value = value_query(query);
    let key_id = crate::domain::ids::is_id("key", query);
    let plain_text = !query.is_empty() && value.is_none() && !key_id;
    let trigram = if plain_text {
        few_trigram_matches(conn, &lowered)?
    } else {
        None
    };
    let mut q = api_keys::table
        .left_join(users::table.on(users::id.nullable().eq(api_keys::owner_id)))
        .left_join(people::table.on(people::id.nullable().eq(users::person_id.nullable())))
        .filter(api_keys::deleted_at.is_null())
        .select((
            ApiKey::as_select(),
            people::email.nullable(),
            people::name.nullable(),
        ))
        .order((api_keys::created_at.desc(), api_keys::id.desc()))
        .limit(limit + 1)
        .into_boxed();
    q = match (&trigram, scope) {
        (None, Scope::Owner(owner)) => q
            .filter(api_keys::workspace_id.eq(workspace_id.to_owned()))
            .filter(api_keys::owner_id.eq(owner.clone())),
        (None, Scope::Workspace) => q
            .filter(api_keys::workspace_id.eq(workspace_id.to_owned()))
            .filter(api_keys::kind.eq(KIND_WORKSPACE)),
        (None, Scope::All) => q.filter(api_keys::workspace_id.eq(workspace_id.to_owned())),
        // SQLite with trigram candidates: they are the way in. A unary `+`
        // takes the workspace's columns out of index selection, or the
        // planner (without statistics) would walk every key of the
        // workspace and test each against the candidates: 1 s at 1M keys.
        (Some(_), scope) => {
            q = q.filter(
                sql::<Bool>("+api_keys.workspace_id = ").bind::<Text, _>(workspace_id.to_owned()),
            );
            match scope {
                Scope::Owner(owner) => {
                    q.filter(sql::<Bool>("+api_keys.owner_id = ").bind::<Text, _>(owner.clone()))
                }
                Scope::Workspace => {
                    q.filter(sql::<Bool>("+api_keys.kind = ").bind::<Text, _>(KIND_WORKSPACE))
                }
                Scope::All => q,
            }
        }
    };
    if !query.is_empty() {
        q = match value {
            Some(ValueQuery::Full(facts)) => q.filter(
                api_keys::digest
                    .eq(facts.digest.clone())
                    .or(api_keys::previous_digest.eq(facts.digest)),
            ),
            Some(ValueQuery::Partial {
                environment,
                head,
                tail,
            }) => {
                if let Some(env) = environment {
                    q = q.filter(api_keys::environment.eq(env.as_str()));
                }
                if !head.is_empty() {
                    q = q.filter(
                        api_keys::head
                            .like(format!("{}%", super::escape_like(&head)))
                            .escape('\\'),
                    );
                }
                if tail.len() == crate::domain::keys::TAIL_LEN {
                    // A whole masked ending: an indexed equality.
                    q = q.filter(api_keys::tail.eq(tail));
                    if matches!(conn, DbConn::Sqlite(_)) {
                        // SQLite (without statistics) would rather walk the
                        // newest-first index of every key than sort the few
                        // matches; a unary `+` takes the order out of index
                        // selection: 46 ms → ~1 ms at 100k keys.
                        q = q.order(newest_first_unindexed());
                    }
                } else if !tail.is_empty() {
                    q = q.filter(
                        api_keys::tail
                            .like(format!("%{}", super::escape_like(&tail)))
                            .escape('\\'),
                    );
                }
                q
            }
            None if key_id => {
                // A whole key id (from an incident report or a log): the
                // primary key, not a scan.
                q.filter(api_keys::id.eq(query.to_owned()))
            }
            None => {
                let pattern = format!("%{}%", super::escape_like(&lowered));
                // The LIKE decides on both backends, so both find exactly
                // the same keys. PostgreSQL answers it from the pg_trgm
                // index when that is cheaper than walking the newest keys;
                // SQLite is told which way to go (it keeps no statistics).
                q = q.filter(api_keys::search.like(pattern).escape('\\'));
                if let Some(fts) = trigram {
                    q = q
                        .filter(
                            sql::<Bool>(
                                "api_keys.seq IN (SELECT rowid FROM api_keys_fts WHERE api_keys_fts MATCH ",
                            )
                            .bind::<Text, _>(fts)
                            .sql(")"),
                        )
                        .order(newest_first_unindexed());
                }
                q
            }
        };
    }
    let now = super::now();
    if let Some(until) = filter.expiring_until {
        q = q
            .filter(api_keys::expires_at.gt(now))
            .filter(api_keys::expires_at.le(until))
            .filter(api_keys::revoked_at.is_null());
    }
    // As [`Status::derive`] decides, in SQL, so pages stay full.
    q = match filter.status {
        None => q,
        Some(Status::Revoked) => q.filter(api_keys::revoked_at.is_not_null()),
        Some(Status::Inactive) => q
            .filter(api_keys::revoked_at.is_null())
            .filter(api_keys::disabled_at.is_not_null()),
        Some(Status::Expired) => q
            .filter(api_keys::revoked_at.is_null())
            .filter(api_keys::disabled_at.is_null())
            .filter(api_keys::expires_at.le(now)),
        Some(Status::Active) => q
            .filter(api_keys::revoked_at.is_null())
            .filter(api_keys::disabled_at.is_null())
            .filter(
                api_keys::expires_at
                    .is_null()
                    .or(api_keys::expires_at.gt(now)),
            ),
    };
    if let Some(env) = filter.environment {
        q = q.filter(api_keys::environment.eq(env.as_str()));
    }
    if let Some(personal) = filter.personal {
        let kind = if personal {
            KIND_PERSONAL
        } else {
            KIND_WORKSPACE
        };
        q = q.filter(api_keys::kind.eq(kind));
    }
    if let Some(c) = after {
        q = q.filter(
            api_keys::created_at
                .lt(c.created_at)
                .or(api_keys::created_at
                    .eq(c.created_at)
                    .and(api_keys::id.lt(c.id.clone()))),
        );
    }
    let mut rows: Vec<(ApiKey, Option<String>, Option<String>)> = q.load(conn)?;
    let next = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|(k, _, _)| Cursor {
            created_at: k.created_at,
            id: k.id.clone(),
        })
    } else {
        None
    };
    let rows = rows
        .into_iter()
        .map(|(key, owner_email, owner_name)| KeyWithOwner {
            key,
            owner_email,
            owner_name,
        })
        .collect();
    Ok((rows, next))
}

/// The newest-first order of the lists, kept out of SQLite's index
/// selection with a unary `+`: for searches that find a few keys through
/// another index, which SQLite (without statistics) would otherwise give
/// up for walking every key in order.
fn newest_first_unindexed() -> (
    diesel::helper_types::Desc<diesel::expression::SqlLiteral<diesel::sql_types::Timestamp>>,
    diesel::helper_types::Desc<api_keys::id>,
) {
    (
        diesel::dsl::sql::<diesel::sql_types::Timestamp>("+api_keys.created_at").desc(),
        api_keys::id.desc(),
    )
}

/// One `count(*) AS n` row of a hand-written counting query.
#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// How many keys of the workspace the scope holds (deleted ones aside),
/// counted up to `cap` + 1 so that a million keys cost no more than `cap`:
/// lists show "10,000+" beyond.
pub fn count_capped(
    conn: &mut DbConn,
    workspace_id: &str,
    scope: &Scope,
    cap: i64,
) -> QueryResult<i64> {
    use diesel::sql_types::Text;
    let (filter, value) = match scope {
        Scope::Owner(owner) => (" AND owner_id = {}", Some(owner.as_str())),
        // The same keys as kind = 'workspace' (a schema CHECK), in the index.
        Scope::Workspace => (" AND owner_id IS NULL", None),
        Scope::All => ("", None),
    };
    let sql = |p1: &str, p2: &str| {
        format!(
            "SELECT count(*) AS n FROM (SELECT 1 FROM api_keys WHERE workspace_id = {p1}{} AND deleted_at IS NULL LIMIT {}) AS capped",
            filter.replace("{}", p2),
            cap + 1
        )
    };
    let found: Count = match conn {
        DbConn::Pg(pg) => {
            let q = diesel::sql_query(sql("$1", "$2")).bind::<Text, _>(workspace_id);
            match value {
                Some(v) => q.bind::<Text, _>(v).get_result(pg)?,
                None => q.get_result(pg)?,
            }
        }
        DbConn::Sqlite(lite) => {
            let q = diesel::sql_query(sql("?", "?")).bind::<Text, _>(workspace_id);
            match value {
                Some(v) => q.bind::<Text, _>(v).get_result(lite)?,
                None => q.get_result(lite)?,
            }
        }
    };
    Ok(found.n)
}

/// Above this many candidates from SQLite's trigram index, a substring
/// search walks the workspace's keys newest first instead: matches are then
/// common enough that a page fills after a short walk, while sorting every
/// candidate would cost more.
const TRIGRAM_CANDIDATES: i64 = 2000;

/// On SQLite, for a substring of at least three characters (the trigram
/// index cannot help with less) that fewer than [`TRIGRAM_CANDIDATES`] keys
/// of any workspace contain: the FTS5 query that finds them (the LIKE then
/// decides). `None` where the LIKE walking the newest keys is the better
/// plan, and always on PostgreSQL, whose planner makes that choice itself
/// with its statistics. Counting stops at the cap, so a common text costs
/// no more than a rare one (measured at 1M keys: 2 ms).
fn few_trigram_matches(conn: &mut DbConn, lowered: &str) -> QueryResult<Option<String>> {
    let DbConn::Sqlite(lite) = conn else {
        return Ok(None);
    };
    if lowered.chars().count() < 3 {
        return Ok(None);
    }
    // A quoted FTS5 string: the trigram tokenizer matches it as a
    // substring, whatever characters it holds.
    let phrase = format!("\"{}\"", lowered.replace('"', "\"\""));
    let found: Count = diesel::sql_query(format!(
        "SELECT count(*) AS n FROM (SELECT 1 FROM api_keys_fts WHERE api_keys_fts MATCH ? LIMIT {TRIGRAM_CANDIDATES})"
    ))
    .bind::<diesel::sql_types::Text, _>(&phrase)
    .get_result(lite)?;
    Ok((found.n < TRIGRAM_CANDIDATES).then_some(phrase))
}

/// The editable details of a key.
#[derive(Debug, Clone)]
pub struct Details {
    pub name: String,
    pub description: String,
    pub tags: Vec<String>,
    pub rate_limit: Option<i32>,
}

/// Change a key's name, description, tags and rate limit.
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
    } = details;
    let rate_limit = *rate_limit;
    if key.revoked_at.is_some() {
        return Err(KeyError::Revoked);
    }
    super::write_transaction(conn, |conn| {
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
            api_keys::search.eq(search_text(&key.id, name, owner_label, tags)),
            api_keys::updated_at.eq(super::now()),
        ))
        .execute(conn)?;
        let updated = get(conn, &ctx.workspace_id, &key.id)?.ok_or(KeyError::NotFound)?;
        changes::record(Change::key(key));
        events::record(
            conn,
            ctx,
            "key.updated",
            key_target(&updated),
            json!({
                "old": { "name": key.name, "description": key.description, "tags": key.tag_list(), "rate_limit": key.rate_limit },
                "new": { "name": name, "description": description, "tags": tags, "rate_limit": rate_limit },
            }),
        )?;
        Ok(updated)
    })
}

/// Switch a key off (`disabled = true`) or on again.
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
        changes::record(Change::key(key));
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
        changes::record(Change::key(key));
        changes::record(Change::key(&fresh));
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
    changes::record(Change::key(key));
    diesel::update(
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
    .execute(conn)
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
        changes::record(Change::key(key));
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

/// What authentication needs about a key, read in one indexed query.
#[derive(Debug, Clone)]
pub struct AuthRecord {
    pub key: ApiKey,
    pub owner_email: Option<String>,
    pub api_keys_disabled_at: Option<NaiveDateTime>,
    /// The row's version when it was read (bumped by the database on every
    /// change a check would see): a change notice for this version or an
    /// older one is already reflected in this record.
    pub version: i64,
    /// The key's facts as the API shows them, rendered once on first use:
    /// they are the same for every check answered from this record.
    pub facts_json: std::sync::OnceLock<Box<str>>,
}

/// Find the key whose current or grace-period secret has this digest.
pub fn find_for_auth(conn: &mut DbConn, digest: &str) -> QueryResult<Option<AuthRecord>> {
    let row: Option<(ApiKey, Option<String>, Option<NaiveDateTime>, i64)> = api_keys::table
        .inner_join(workspaces::table)
        .left_join(users::table.on(users::id.nullable().eq(api_keys::owner_id)))
        .left_join(people::table.on(people::id.nullable().eq(users::person_id.nullable())))
        .filter(
            api_keys::digest
                .eq(digest)
                .or(api_keys::previous_digest.eq(digest)),
        )
        .select((
            ApiKey::as_select(),
            people::email.nullable(),
            workspaces::api_keys_disabled_at,
            api_keys::version,
        ))
        .first(conn)
        .optional()?;
    Ok(row.map(
        |(key, owner_email, api_keys_disabled_at, version)| AuthRecord {
            key,
            owner_email,
            api_keys_disabled_at,
            version,
            facts_json: std::sync::OnceLock::new(),
        },
    ))
}

/// Write coalesced "last used" times; never moves a time backwards.
///
/// Rows are updated in key-id order: two instances flushing the same keys
/// then lock them in the same order and wait for each other instead of
/// deadlocking (in hash-map order PostgreSQL aborted one of them on every
/// flush, and its batch grew until a crash would have lost it).
pub fn write_last_used(conn: &mut DbConn, used: &[(String, NaiveDateTime)]) -> QueryResult<()> {
    let mut sorted: Vec<&(String, NaiveDateTime)> = used.iter().collect();
    sorted.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    super::write_transaction(conn, |conn| {
        for (id, at) in sorted {
            diesel::update(
                api_keys::table.filter(api_keys::id.eq(id)).filter(
                    api_keys::last_used_at
                        .is_null()
                        .or(api_keys::last_used_at.lt(*at)),
                ),
            )
            .set(api_keys::last_used_at.eq(*at))
            .execute(conn)?;
        }
        Ok(())
    })
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

/// The start of every current and grace-period digest (for the in-memory
/// index of keys that exist; deleted and revoked keys included, since they still answer
/// REVOKED rather than NOT_FOUND).
///
/// Only each digest's first 16 hex digits (what the index keeps) are read,
/// row by row: a full load of 100k digests as strings cost ~20 MB at start
/// that the allocator then kept.
pub fn all_digests(conn: &mut DbConn) -> QueryResult<Vec<String>> {
    use diesel::dsl::sql;
    use diesel::sql_types::{Nullable, Text};
    let rows = api_keys::table
        .select((
            sql::<Text>("substr(digest, 1, 16)"),
            sql::<Nullable<Text>>("substr(previous_digest, 1, 16)"),
        ))
        .load_iter::<(String, Option<String>), diesel::connection::DefaultLoadingMode>(conn)?;
    let mut prefixes = Vec::new();
    for row in rows {
        let (d, p) = row?;
        prefixes.push(d);
        prefixes.extend(p);
    }
    Ok(prefixes)
}

/// The kind (`personal` or `workspace`) of these keys of the workspace,
/// deleted ones included, by id: the audit trail names a key's kind.
pub fn kinds(
    conn: &mut DbConn,
    workspace_id: &str,
    ids: &[String],
) -> QueryResult<Vec<(String, String)>> {
    let query = api_keys::table
        .filter(api_keys::id.eq_any(ids))
        .select((api_keys::id, api_keys::kind))
        .into_boxed();
    match conn {
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
    }
}
