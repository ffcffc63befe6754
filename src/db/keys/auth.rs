//! What key checks read and write: the key by digest (with what a check
//! needs about its owner and workspace), coalesced last-used times, and
//! the digests the in-memory index starts from.

use super::{KIND_PERSONAL, json_list};
use crate::db::DbConn;
use crate::db::schema::{api_keys, instance_setup, people, users, workspaces};
use crate::domain::keys::Environment;
use chrono::NaiveDateTime;
use diesel::prelude::*;

/// What a key check needs about a key, read in one indexed query.
///
/// The cache holds one of these per key checked (a million keys, 100k in
/// use), so it is compact: the texts share one allocation, the digest is
/// 32 bytes rather than 64 hex characters, timestamps a check only tests
/// for presence are flags, and the facts the API shows are rendered from
/// it on demand. What the pages and writes need stays in [`ApiKey`].
#[derive(Debug)]
pub struct AuthRecord {
    /// `id`, `workspace_id`, `owner_id`, `name`, the owner's email, the
    /// revocation reason, then the permissions and the resources, each list
    /// joined by newlines (which no permission or resource holds).
    text: Box<str>,
    /// Where each part of `text` ends.
    ends: [u32; PARTS],
    /// The current secret's digest.
    pub digest: [u8; 32],
    /// Until when the previous secret still works (after a regeneration
    /// with a grace period).
    pub previous_expires_at: Option<NaiveDateTime>,
    pub expires_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub rate_limit: Option<i32>,
    /// The row's version when it was read (bumped by the database on every
    /// change a check would see): a change notice for this version or an
    /// older one is already reflected in this record.
    pub version: i64,
    pub environment: Environment,
    flags: u8,
    /// The key's IP allowlist, parsed once when the record is read (never
    /// per check); `None`: usable from anywhere (and 8 bytes only).
    pub allowlist: Option<Box<crate::domain::allowlist::Allowlist>>,
    /// The key's usage quota; `None`: none (8 bytes only).
    pub quota: Option<Box<crate::domain::quota::Quota>>,
}

const PARTS: usize = 8;
const ID: usize = 0;
const WORKSPACE: usize = 1;
const OWNER: usize = 2;
const NAME: usize = 3;
const OWNER_EMAIL: usize = 4;
const REVOKED_REASON: usize = 5;
const PERMISSIONS: usize = 6;
const RESOURCES: usize = 7;

const PERSONAL: u8 = 1;
const DISABLED: u8 = 1 << 1;
const REVOKED: u8 = 1 << 2;
const DELETED: u8 = 1 << 3;
const OWNER_DISABLED: u8 = 1 << 4;
const API_KEYS_OFF: u8 = 1 << 5;
const FIRST_WORKSPACE: u8 = 1 << 6;

/// The columns of [`AuthRecord`] as read.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = api_keys)]
pub struct AuthColumns {
    pub id: String,
    pub workspace_id: String,
    pub kind: String,
    pub owner_id: Option<String>,
    pub name: String,
    pub environment: String,
    pub permissions: String,
    pub resources: String,
    pub digest: String,
    pub previous_expires_at: Option<NaiveDateTime>,
    pub expires_at: Option<NaiveDateTime>,
    pub rate_limit: Option<i32>,
    pub disabled_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
    pub deleted_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub revoked_reason: Option<String>,
    pub owner_disabled_at: Option<NaiveDateTime>,
    pub allowed_ips: Option<String>,
    pub quota_limit: Option<i64>,
    pub quota_refill: Option<i64>,
    pub quota_period: Option<String>,
    pub version: i64,
}

impl AuthColumns {
    /// The columns of a live workspace key without policies, named like
    /// its id, for unit tests to start from.
    #[cfg(test)]
    pub(crate) fn for_test(id: &str, ws: &str, digest: &str, version: i64) -> Self {
        AuthColumns {
            id: id.into(),
            workspace_id: ws.into(),
            kind: "workspace".into(),
            owner_id: None,
            name: id.into(),
            environment: "live".into(),
            permissions: "[]".into(),
            resources: "[]".into(),
            digest: digest.into(),
            previous_expires_at: None,
            expires_at: None,
            rate_limit: None,
            disabled_at: None,
            revoked_at: None,
            deleted_at: None,
            created_at: chrono::Utc::now().naive_utc(),
            revoked_reason: None,
            owner_disabled_at: None,
            allowed_ips: None,
            quota_limit: None,
            quota_refill: None,
            quota_period: None,
            version,
        }
    }
}

/// What else a check needs, read with the key: its owner's email, the
/// workspace's API-keys switch, and whether the key's workspace is the
/// installation's first (the one made at setup; else the oldest): gateways
/// that name no workspace accept only its keys. That is fixed for a key
/// once it exists, so it is cached with the record.
#[derive(Debug, Clone, Default)]
pub struct AuthContext {
    pub owner_email: Option<String>,
    pub api_keys_disabled: bool,
    pub in_first_workspace: bool,
}

/// A digest's 32 bytes from its 64 hex digits. Anything else (never a
/// key's digest) is hashed instead, so that distinct texts stay distinct.
pub fn digest_bytes(hex_digest: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    if hex::decode_to_slice(hex_digest, &mut out).is_err() {
        use sha2::Digest;
        out = sha2::Sha256::digest(hex_digest.as_bytes()).into();
    }
    out
}

impl AuthRecord {
    /// A live workspace key of the first workspace, named like its id, for
    /// unit tests.
    #[cfg(test)]
    pub(crate) fn for_test(id: &str, ws: &str, digest: &str, version: i64) -> Self {
        AuthRecord::new(
            AuthColumns::for_test(id, ws, digest, version),
            AuthContext {
                in_first_workspace: true,
                ..Default::default()
            },
        )
    }

    pub fn new(key: AuthColumns, context: AuthContext) -> Self {
        let list = |raw: &str| -> String {
            // A newline would split an entry in two; none is accepted as
            // input, so this only guards the encoding.
            json_list(raw)
                .iter()
                .map(|s| s.replace('\n', "\u{fffd}"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        // A service account has no email (its person row holds a
        // placeholder): gateways and `/me` get none.
        let is_service = key
            .owner_id
            .as_deref()
            .is_some_and(crate::domain::ids::is_service_account_id);
        let owner_email = context.owner_email.filter(|_| !is_service);
        let parts: [&str; PARTS] = [
            &key.id,
            &key.workspace_id,
            key.owner_id.as_deref().unwrap_or(""),
            &key.name,
            owner_email.as_deref().unwrap_or(""),
            key.revoked_reason.as_deref().unwrap_or(""),
            &list(&key.permissions),
            &list(&key.resources),
        ];
        let mut text = String::with_capacity(parts.iter().map(|p| p.len()).sum());
        let mut ends = [0u32; PARTS];
        for (end, part) in ends.iter_mut().zip(parts) {
            text.push_str(part);
            *end = u32::try_from(text.len()).unwrap_or(u32::MAX);
        }
        let mut flags = 0;
        for (set, flag) in [
            (key.kind == KIND_PERSONAL, PERSONAL),
            (key.disabled_at.is_some(), DISABLED),
            (key.revoked_at.is_some(), REVOKED),
            (key.deleted_at.is_some(), DELETED),
            (key.owner_disabled_at.is_some(), OWNER_DISABLED),
            (context.api_keys_disabled, API_KEYS_OFF),
            (context.in_first_workspace, FIRST_WORKSPACE),
        ] {
            if set {
                flags |= flag;
            }
        }
        AuthRecord {
            text: text.into_boxed_str(),
            ends,
            digest: digest_bytes(&key.digest),
            previous_expires_at: key.previous_expires_at,
            expires_at: key.expires_at,
            created_at: key.created_at,
            rate_limit: key.rate_limit,
            version: key.version,
            environment: key.environment.parse().unwrap_or(Environment::Live),
            flags,
            allowlist: crate::domain::allowlist::Allowlist::from_stored(key.allowed_ips.as_deref())
                .map(Box::new),
            quota: crate::domain::quota::Quota::from_columns(
                key.quota_limit,
                key.quota_refill,
                key.quota_period.as_deref(),
            )
            .map(Box::new),
        }
    }

    fn part(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        self.text
            .get(start..self.ends[i] as usize)
            .unwrap_or_default()
    }

    fn optional(&self, i: usize) -> Option<&str> {
        Some(self.part(i)).filter(|s| !s.is_empty())
    }

    fn list(&self, i: usize) -> List<'_> {
        List(self.part(i))
    }

    fn flag(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }

    pub fn id(&self) -> &str {
        self.part(ID)
    }

    pub fn workspace_id(&self) -> &str {
        self.part(WORKSPACE)
    }

    pub fn owner_id(&self) -> Option<&str> {
        self.optional(OWNER)
    }

    pub fn name(&self) -> &str {
        self.part(NAME)
    }

    /// The owner's email (none for workspace keys and service accounts).
    pub fn owner_email(&self) -> Option<&str> {
        self.optional(OWNER_EMAIL)
    }

    /// Why a leak report revoked the key (`leaked_github`, `leaked_public`).
    pub fn revoked_reason(&self) -> Option<&str> {
        self.optional(REVOKED_REASON)
    }

    pub fn permissions(&self) -> List<'_> {
        self.list(PERMISSIONS)
    }

    /// The resources the key is limited to (none: any).
    pub fn resources(&self) -> List<'_> {
        self.list(RESOURCES)
    }

    /// A member's key: a person's or a service account's.
    pub fn is_personal(&self) -> bool {
        self.flag(PERSONAL)
    }

    pub fn is_service(&self) -> bool {
        self.owner_id()
            .is_some_and(crate::domain::ids::is_service_account_id)
    }

    /// The owner kind as the API names it: `personal`, `service` or
    /// `workspace`.
    pub fn owner_kind(&self) -> &'static str {
        super::owner_kind(self.owner_id(), self.is_personal())
    }

    pub fn is_disabled(&self) -> bool {
        self.flag(DISABLED)
    }

    pub fn is_revoked(&self) -> bool {
        self.flag(REVOKED)
    }

    pub fn is_deleted(&self) -> bool {
        self.flag(DELETED)
    }

    /// Its service account is disabled.
    pub fn is_owner_disabled(&self) -> bool {
        self.flag(OWNER_DISABLED)
    }

    /// API keys are switched off for the key's workspace.
    pub fn api_keys_disabled(&self) -> bool {
        self.flag(API_KEYS_OFF)
    }

    /// The key's workspace is the installation's first.
    pub fn in_first_workspace(&self) -> bool {
        self.flag(FIRST_WORKSPACE)
    }
}

/// A list of a record (permissions, resources), read in place; it
/// serializes as a JSON array.
#[derive(Clone, Copy)]
pub struct List<'a>(&'a str);

impl<'a> List<'a> {
    pub fn iter(self) -> impl Iterator<Item = &'a str> + Clone {
        self.0.split('\n').filter(|s| !s.is_empty())
    }
}

impl serde::Serialize for List<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

/// One row of [`find_for_auth`]: the key, its owner's email, the
/// workspace's API-keys switch, whether it is the first workspace.
type AuthRow = (AuthColumns, Option<String>, Option<NaiveDateTime>, InFirst);

/// Find the key whose current or grace-period secret has this digest.
pub fn find_for_auth(conn: &mut DbConn, digest: &str) -> QueryResult<Option<AuthRecord>> {
    // See [`InFirst`]. In Diesel's terms, not as SQL text: a statement with
    // SQL text in it is never cached, and PostgreSQL then planned this one
    // on every lookup (2.6-3.1 ms of planning against 0.34 ms of execution).
    let setup_workspace = instance_setup::table
        .filter(instance_setup::id.eq(1))
        .select(instance_setup::workspace_id)
        .single_value();
    let oldest = diesel::alias!(workspaces as oldest);
    let oldest_workspace = oldest
        .order((
            oldest.field(workspaces::created_at),
            oldest.field(workspaces::id),
        ))
        .select(oldest.field(workspaces::id))
        .single_value();
    let in_first_workspace = api_keys::workspace_id
        .nullable()
        .eq(coalesce(setup_workspace, oldest_workspace));
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
            AuthColumns::as_select(),
            people::email.nullable(),
            workspaces::api_keys_disabled_at,
            in_first_workspace,
        ))
        .first(conn)
        .optional()?;
    Ok(row.map(|(key, owner_email, api_keys_disabled_at, first)| {
        AuthRecord::new(
            key,
            AuthContext {
                owner_email,
                api_keys_disabled: api_keys_disabled_at.is_some(),
                in_first_workspace: first == Some(true),
            },
        )
    }))
}

/// Whether the key's workspace is the installation's first: read in the
/// same statement as the key, so a gateway naming no workspace costs no
/// query of its own. Installations provisioned from the command line
/// before any setup have no `instance_setup` row: their oldest workspace
/// is the first.
type InFirst = Option<bool>;

#[diesel::declare_sql_function]
extern "SQL" {
    /// SQL's `COALESCE` of two texts.
    fn coalesce(
        first: diesel::sql_types::Nullable<diesel::sql_types::Text>,
        second: diesel::sql_types::Nullable<diesel::sql_types::Text>,
    ) -> diesel::sql_types::Nullable<diesel::sql_types::Text>;
}

/// Write coalesced "last used" times; never moves a time backwards.
///
/// Rows are updated in key-id order: two instances flushing the same keys
/// then lock them in the same order and wait for each other instead of
/// deadlocking (in hash-map order PostgreSQL aborted one of them on every
/// flush, and its batch grew until a crash would have lost it).
pub fn write_last_used<S: AsRef<str>>(
    conn: &mut DbConn,
    used: &[(S, NaiveDateTime)],
) -> QueryResult<()> {
    // One time per key, the newest: a batch may hold a key twice (from two
    // cached records of it, before and after a change), and PostgreSQL's
    // `UPDATE … FROM` would pick either of two rows for one key.
    let mut sorted: Vec<(&str, NaiveDateTime)> =
        used.iter().map(|(id, at)| (id.as_ref(), *at)).collect();
    sorted.sort_unstable_by(|a, b| a.0.cmp(b.0).then(b.1.cmp(&a.1)));
    sorted.dedup_by(|later, kept| later.0 == kept.0);
    crate::db::write_transaction(conn, |conn| match conn {
        DbConn::Pg(pg) => write_last_used_pg(pg, &sorted),
        DbConn::Sqlite(lite) => write_last_used_sqlite(lite, &sorted),
    })
}

/// SQLite: a statement per [`crate::db::SQLITE_CHUNK`] keys (see there),
/// each key looked up by its primary key (`SCAN used`, then `SEARCH
/// api_keys USING INDEX`), the chunks in key-id order.
fn write_last_used_sqlite(
    lite: &mut diesel::SqliteConnection,
    sorted: &[(&str, NaiveDateTime)],
) -> QueryResult<()> {
    use diesel::sql_types::{Text, Timestamp};
    for chunk in sorted.chunks(crate::db::SQLITE_CHUNK) {
        let sql = format!(
            "WITH used(id, at) AS (VALUES {}) \
             UPDATE api_keys SET last_used_at = used.at FROM used \
             WHERE api_keys.id = used.id \
               AND (api_keys.last_used_at IS NULL OR api_keys.last_used_at < used.at)",
            crate::db::sqlite_rows(chunk.len(), 2)
        );
        let mut query = diesel::sql_query(sql).into_boxed::<diesel::sqlite::Sqlite>();
        for (id, at) in chunk {
            query = query.bind::<Text, _>(*id).bind::<Timestamp, _>(*at);
        }
        query.execute(lite)?;
    }
    Ok(())
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
    sorted: &[(&str, NaiveDateTime)],
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
            .bind::<Array<Text>, _>(chunk.iter().map(|(id, _)| *id).collect::<Vec<_>>())
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
    use diesel::sql_types::Text;
    // Each column on its own, so that each query reads only its unique
    // index (a covering scan of 64-character entries) rather than every
    // row of the table: at a million keys the start-up read went from the
    // table's size to the indexes'.
    let current = api_keys::table
        .select(sql::<Text>("substr(digest, 1, 16)"))
        .load_iter::<String, diesel::connection::DefaultLoadingMode>(conn)?;
    let mut prefixes = Vec::new();
    for d in current {
        prefixes.extend(crate::domain::keys::digest_prefix(&d?));
    }
    let previous = api_keys::table
        .filter(api_keys::previous_digest.is_not_null())
        .select(sql::<Text>("substr(previous_digest, 1, 16)"))
        .load_iter::<String, diesel::connection::DefaultLoadingMode>(conn)?;
    for p in previous {
        prefixes.extend(crate::domain::keys::digest_prefix(&p?));
    }
    Ok(prefixes)
}
