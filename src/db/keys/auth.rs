//! What key checks read and write: the key by digest (with what a check
//! needs about its owner and workspace), coalesced last-used times, and
//! the digests the in-memory index starts from.

use super::ApiKey;
use crate::db::DbConn;
use crate::db::schema::{api_keys, people, users, workspaces};
use chrono::NaiveDateTime;
use diesel::prelude::*;

/// What authentication needs about a key, read in one indexed query.
#[derive(Debug, Clone)]
pub struct AuthRecord {
    pub key: ApiKey,
    pub owner_email: Option<String>,
    pub api_keys_disabled_at: Option<NaiveDateTime>,
    /// Whether the key's workspace is the installation's first (the one
    /// made at setup; else the oldest): gateways that name no workspace
    /// accept only its keys. Fixed for a key once it exists, so it is
    /// cached with the record.
    pub in_first_workspace: bool,
    /// The row's version when it was read (bumped by the database on every
    /// change a check would see): a change notice for this version or an
    /// older one is already reflected in this record.
    pub version: i64,
    /// The key's facts as the API shows them, rendered once on first use:
    /// they are the same for every check answered from this record.
    pub facts_json: std::sync::OnceLock<Box<str>>,
    /// The key's IP allowlist, parsed once when the record is read (never
    /// per check); `None`: usable from anywhere.
    pub allowlist: Option<crate::domain::allowlist::Allowlist>,
}

/// One row of [`find_for_auth`]: the key, its owner's email, the
/// workspace's API-keys switch, whether it is the first workspace, the
/// row's version.
type AuthRow = (ApiKey, Option<String>, Option<NaiveDateTime>, InFirst, i64);

/// Find the key whose current or grace-period secret has this digest.
pub fn find_for_auth(conn: &mut DbConn, digest: &str) -> QueryResult<Option<AuthRecord>> {
    let row: Option<AuthRow> = api_keys::table
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
            in_first_workspace(),
            api_keys::version,
        ))
        .first(conn)
        .optional()?;
    Ok(row.map(
        |(key, owner_email, api_keys_disabled_at, first, version)| AuthRecord {
            // A service account has no email (its person row holds a
            // placeholder): gateways and `/me` get none.
            owner_email: owner_email.filter(|_| !key.is_service()),
            allowlist: crate::domain::allowlist::Allowlist::from_stored(key.allowed_ips.as_deref()),
            key,
            api_keys_disabled_at,
            in_first_workspace: first == Some(true),
            version,
            facts_json: std::sync::OnceLock::new(),
        },
    ))
}

/// Whether the key's workspace is the installation's first: read in the
/// same statement as the key, so a gateway naming no workspace costs no
/// query of its own. Installations provisioned from the command line
/// before any setup have no `instance_setup` row: their oldest workspace
/// is the first.
type InFirst = Option<bool>;

/// See [`InFirst`].
fn in_first_workspace()
-> diesel::expression::SqlLiteral<diesel::sql_types::Nullable<diesel::sql_types::Bool>> {
    diesel::dsl::sql(
        "api_keys.workspace_id = COALESCE(\
         (SELECT s.workspace_id FROM instance_setup s WHERE s.id = 1), \
         (SELECT w.id FROM workspaces w ORDER BY w.created_at, w.id LIMIT 1))",
    )
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
    crate::db::write_transaction(conn, |conn| match conn {
        DbConn::Pg(pg) => write_last_used_pg(pg, &sorted),
        DbConn::Sqlite(_) => {
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
        }
    })
}

/// Rows per statement when PostgreSQL writes "last used" times.
const LAST_USED_CHUNK: usize = 5_000;

/// PostgreSQL: a few statements for a whole flush, not one per key (a
/// round trip each, seconds for 10k keys). The rows that need the newer
/// time are first locked in key-id order (`ORDER BY … FOR UPDATE` locks
/// after sorting), so two instances still wait for each other instead of
/// deadlocking; the update then only touches rows this transaction holds.
fn write_last_used_pg(
    pg: &mut diesel::PgConnection,
    sorted: &[&(String, NaiveDateTime)],
) -> QueryResult<()> {
    use diesel::sql_types::{Array, Text, Timestamp};
    const SQL: &str = "WITH used AS (SELECT * FROM unnest($1::text[], $2::timestamp[]) AS u(id, at)), \
         locked AS (SELECT k.id, used.at FROM api_keys k JOIN used ON k.id = used.id \
                    WHERE k.last_used_at IS NULL OR k.last_used_at < used.at \
                    ORDER BY k.id FOR UPDATE OF k) \
         UPDATE api_keys SET last_used_at = locked.at FROM locked \
         WHERE api_keys.id = locked.id \
           AND (api_keys.last_used_at IS NULL OR api_keys.last_used_at < locked.at)";
    for chunk in sorted.chunks(LAST_USED_CHUNK) {
        diesel::sql_query(SQL)
            .bind::<Array<Text>, _>(chunk.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>())
            .bind::<Array<Timestamp>, _>(chunk.iter().map(|(_, at)| *at).collect::<Vec<_>>())
            .execute(pg)?;
    }
    Ok(())
}

/// The start of every current and grace-period digest (for the in-memory
/// index of keys that exist; deleted and revoked keys included, since they still answer
/// REVOKED rather than NOT_FOUND).
///
/// Only each digest's first 16 hex digits (what the index keeps) are read,
/// row by row, and kept as numbers: a million digests as strings cost
/// ~60 MB at start that the allocator then kept, as 16-digit strings still
/// ~50 MB; as numbers 8 MB.
pub fn all_digests(conn: &mut DbConn) -> QueryResult<Vec<u64>> {
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
        prefixes.extend(crate::domain::keys::digest_prefix(&d));
        prefixes.extend(p.as_deref().and_then(crate::domain::keys::digest_prefix));
    }
    Ok(prefixes)
}
