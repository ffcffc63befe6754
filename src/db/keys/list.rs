//! Key lists, searches and counts: newest first, by cursor, through the
//! search indexes of each backend.

use super::{ApiKey, KIND_PERSONAL, KIND_WORKSPACE, KeyWithOwner};
use crate::db::DbConn;
use crate::db::schema::{api_keys, people, users};
use crate::domain::keys::{Environment, Status, ValueQuery, value_query};
use chrono::NaiveDateTime;
use diesel::prelude::*;

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

/// Who owns a key, as lists filter by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerKind {
    /// A person's personal key.
    Personal,
    /// A service account's key.
    Service,
    /// A workspace key.
    Workspace,
}

/// What a key list is narrowed to, besides its scope and search text.
#[derive(Debug, Clone, Copy, Default)]
pub struct Filter {
    /// Keys expiring by then (not yet expired, not revoked).
    pub expiring_until: Option<NaiveDateTime>,
    /// Keys in this status now.
    pub status: Option<Status>,
    pub environment: Option<Environment>,
    /// Only keys of this owner kind.
    pub owner: Option<OwnerKind>,
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
                            .like(format!("{}%", crate::db::escape_like(&head)))
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
                            .like(format!("%{}", crate::db::escape_like(&tail)))
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
                let pattern = format!("%{}%", crate::db::escape_like(&lowered));
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
    let now = crate::db::now();
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
        // A key of a disabled service account counts as switched off.
        Some(Status::Inactive) => q.filter(api_keys::revoked_at.is_null()).filter(
            api_keys::disabled_at
                .is_not_null()
                .or(api_keys::owner_disabled_at.is_not_null()),
        ),
        Some(Status::Expired) => q
            .filter(api_keys::revoked_at.is_null())
            .filter(api_keys::disabled_at.is_null())
            .filter(api_keys::owner_disabled_at.is_null())
            .filter(api_keys::expires_at.le(now)),
        Some(Status::Active) => q
            .filter(api_keys::revoked_at.is_null())
            .filter(api_keys::disabled_at.is_null())
            .filter(api_keys::owner_disabled_at.is_null())
            .filter(
                api_keys::expires_at
                    .is_null()
                    .or(api_keys::expires_at.gt(now)),
            ),
    };
    if let Some(env) = filter.environment {
        q = q.filter(api_keys::environment.eq(env.as_str()));
    }
    // A service account's keys are personal keys whose owner id starts
    // `sa_` (see `domain::ids::is_service_account_id`).
    let service_owner = || api_keys::owner_id.like("sa\\_%").escape('\\');
    q = match filter.owner {
        None => q,
        Some(OwnerKind::Personal) => q
            .filter(api_keys::kind.eq(KIND_PERSONAL))
            .filter(diesel::dsl::not(service_owner())),
        Some(OwnerKind::Service) => q
            .filter(api_keys::kind.eq(KIND_PERSONAL))
            .filter(service_owner()),
        Some(OwnerKind::Workspace) => q.filter(api_keys::kind.eq(KIND_WORKSPACE)),
    };
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
