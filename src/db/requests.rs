//! The request log: recent checks per key (`key_requests`), written in
//! batches by the verifier's flush and pruned to a number of rows a key and
//! a number of days; and ending a key's grace period.

use super::DbConn;
use super::events::{self, AuditContext};
use super::keys::ApiKey;
use super::schema::{api_keys, key_requests};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Integer, Nullable, Text, Timestamp};

/// How a check made with a key's current secret is recorded.
pub const CURRENT: &str = "current";
/// How a check made with a regenerated key's previous secret is recorded.
pub const PREVIOUS: &str = "previous";

/// One check to write.
#[derive(Debug, Clone)]
pub struct Pending<K> {
    /// The key checked (held, not copied: recording a check allocates as
    /// little as it can), in whatever holds its [`super::keys::AuthRecord`]
    /// (the verifier's cached key).
    pub record: K,
    pub at: NaiveDateTime,
    pub ip: Option<std::net::IpAddr>,
    pub method: Option<String>,
    /// Without its query string.
    pub path: Option<String>,
    /// The raw user agent, bounded; recorded as its short form.
    pub user_agent: Option<String>,
    pub outcome: &'static str,
    /// [`CURRENT`] or [`PREVIOUS`].
    pub secret: &'static str,
    /// How many checks the row stands for: 1, n identical calls merged
    /// by the flush, or about n for a busy key's sample (one in n).
    pub one_in: u32,
}

/// Rows per statement on PostgreSQL.
const PG_CHUNK: usize = 2_000;

/// One recorded check.
#[derive(Debug, Clone, Queryable, serde::Serialize)]
pub struct RequestRow {
    pub id: i64,
    pub at: NaiveDateTime,
    pub ip: Option<String>,
    pub method: Option<String>,
    pub path: Option<String>,
    pub outcome: String,
    pub client: Option<String>,
    pub secret: String,
    pub one_in: i32,
}

/// The short client name a user agent is recorded as.
fn client_of(ua: Option<&str>) -> Option<String> {
    let ua = ua?;
    crate::domain::useragent::short(ua).or_else(|| Some(ua.chars().take(60).collect()))
}

/// Write a batch of checks, then delete the rows beyond the newest
/// `per_key` of the keys in `prune`, in one transaction.
pub fn insert<K>(
    conn: &mut DbConn,
    batch: &[Pending<K>],
    prune: &[String],
    per_key: u32,
) -> QueryResult<()>
where
    K: std::ops::Deref<Target: std::ops::Deref<Target = super::keys::AuthRecord>>,
{
    let mut prune: Vec<&str> = prune.iter().map(String::as_str).collect();
    // A fixed order, so two instances pruning the same keys lock alike.
    prune.sort_unstable();
    prune.dedup();
    let clients: Vec<Option<String>> = batch
        .iter()
        .map(|p| client_of(p.user_agent.as_deref()))
        .collect();
    super::write_transaction(conn, |conn| match conn {
        DbConn::Pg(pg) => {
            const SQL: &str = "INSERT INTO key_requests \
                 (key_id, workspace_id, at, ip, method, path, outcome, client, secret, one_in) \
                 SELECT * FROM unnest($1::text[], $2::text[], $3::timestamp[], $4::text[], \
                 $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::int[])";
            for (chunk, clients) in batch.chunks(PG_CHUNK).zip(clients.chunks(PG_CHUNK)) {
                let text = |f: fn(&Pending<K>) -> String| chunk.iter().map(f).collect::<Vec<_>>();
                let opt =
                    |f: fn(&Pending<K>) -> Option<String>| chunk.iter().map(f).collect::<Vec<_>>();
                diesel::sql_query(SQL)
                    .bind::<Array<Text>, _>(text(|p| p.record.id().to_owned()))
                    .bind::<Array<Text>, _>(text(|p| p.record.workspace_id().to_owned()))
                    .bind::<Array<Timestamp>, _>(chunk.iter().map(|p| p.at).collect::<Vec<_>>())
                    .bind::<Array<Nullable<Text>>, _>(opt(|p| p.ip.map(|ip| ip.to_string())))
                    .bind::<Array<Nullable<Text>>, _>(opt(|p| p.method.clone()))
                    .bind::<Array<Nullable<Text>>, _>(opt(|p| p.path.clone()))
                    .bind::<Array<Text>, _>(text(|p| p.outcome.to_owned()))
                    .bind::<Array<Nullable<Text>>, _>(clients.to_vec())
                    .bind::<Array<Text>, _>(text(|p| p.secret.to_owned()))
                    .bind::<Array<Integer>, _>(
                        chunk
                            .iter()
                            .map(|p| i32::try_from(p.one_in).unwrap_or(i32::MAX))
                            .collect::<Vec<_>>(),
                    )
                    .execute(pg)?;
            }
            let prune: Vec<String> = prune.iter().map(|k| (*k).to_owned()).collect();
            for keys in prune.chunks(PG_CHUNK) {
                diesel::sql_query(
                    "DELETE FROM key_requests r USING unnest($1::text[]) AS t(key_id) \
                     WHERE r.key_id = t.key_id AND r.id <= (SELECT id FROM key_requests n \
                     WHERE n.key_id = t.key_id ORDER BY id DESC OFFSET $2 LIMIT 1)",
                )
                .bind::<Array<Text>, _>(keys.to_vec())
                .bind::<BigInt, _>(i64::from(per_key))
                .execute(pg)?;
            }
            Ok(())
        }
        DbConn::Sqlite(lite) => {
            // One statement, prepared once and cached by Diesel, run a row:
            // SQLite is in-process, and a statement written out per row or
            // per chunk cost more to parse than the rows to insert.
            for (p, client) in batch.iter().zip(&clients) {
                diesel::insert_into(key_requests::table)
                    .values((
                        key_requests::key_id.eq(p.record.id()),
                        key_requests::workspace_id.eq(p.record.workspace_id()),
                        key_requests::at.eq(p.at),
                        key_requests::ip.eq(p.ip.map(|ip| ip.to_string())),
                        key_requests::method.eq(p.method.as_deref()),
                        key_requests::path.eq(p.path.as_deref()),
                        key_requests::outcome.eq(p.outcome),
                        key_requests::client.eq(client.as_deref()),
                        key_requests::secret.eq(p.secret),
                        key_requests::one_in.eq(i32::try_from(p.one_in).unwrap_or(i32::MAX)),
                    ))
                    .execute(lite)?;
            }
            for key in prune {
                diesel::sql_query(
                    "DELETE FROM key_requests WHERE key_id = ? AND id <= (SELECT id FROM \
                     key_requests WHERE key_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
                )
                .bind::<Text, _>(key)
                .bind::<Text, _>(key)
                .bind::<BigInt, _>(i64::from(per_key))
                .execute(lite)?;
            }
            Ok(())
        }
    })
}

/// Delete every check recorded before `before`.
pub fn prune_before(conn: &mut DbConn, before: NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(key_requests::table.filter(key_requests::at.lt(before))).execute(conn)
}

/// What to show of a key's log.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// An outcome code, or "refused" for every outcome but VALID.
    pub outcome: Option<String>,
    /// An exact client address.
    pub ip: Option<String>,
    /// Rows older than this id (the next page).
    pub before: Option<i64>,
}

/// The newest checks of one key of the workspace matching `filter`, at most
/// `limit`.
pub fn list(
    conn: &mut DbConn,
    workspace_id: &str,
    key_id: &str,
    filter: &Filter,
    limit: i64,
) -> QueryResult<Vec<RequestRow>> {
    let mut q = key_requests::table
        .filter(key_requests::workspace_id.eq(workspace_id))
        .filter(key_requests::key_id.eq(key_id))
        .select((
            key_requests::id,
            key_requests::at,
            key_requests::ip,
            key_requests::method,
            key_requests::path,
            key_requests::outcome,
            key_requests::client,
            key_requests::secret,
            key_requests::one_in,
        ))
        .order(key_requests::id.desc())
        .limit(limit)
        .into_boxed();
    match filter.outcome.as_deref() {
        Some("refused") => q = q.filter(key_requests::outcome.ne(crate::domain::chart::VALID)),
        Some(code) => q = q.filter(key_requests::outcome.eq(code.to_owned())),
        None => {}
    }
    if let Some(ip) = &filter.ip {
        q = q.filter(key_requests::ip.eq(ip.clone()));
    }
    if let Some(before) = filter.before {
        q = q.filter(key_requests::id.lt(before));
    }
    q.load(conn)
}

/// One address and client seen with a key, with which secrets it presented.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Caller {
    pub ip: Option<String>,
    pub client: Option<String>,
    /// Checks (as recorded; a sampled check counts for its weight).
    pub checks: i64,
    pub last_at: NaiveDateTime,
    /// Checks made with the previous secret.
    pub previous_checks: i64,
    pub last_previous_at: Option<NaiveDateTime>,
}

/// (address, client, secret, checks, last check) of one group of rows.
type CallerGroup = (
    Option<String>,
    Option<String>,
    String,
    Option<i64>,
    Option<NaiveDateTime>,
);

/// The distinct addresses and clients of a key's checks since `since`,
/// most recent first.
pub fn callers(
    conn: &mut DbConn,
    workspace_id: &str,
    key_id: &str,
    since: NaiveDateTime,
) -> QueryResult<Vec<Caller>> {
    use diesel::dsl::{max, sum};
    let rows: Vec<CallerGroup> = key_requests::table
        .filter(key_requests::workspace_id.eq(workspace_id))
        .filter(key_requests::key_id.eq(key_id))
        .filter(key_requests::at.ge(since))
        .group_by((key_requests::ip, key_requests::client, key_requests::secret))
        .select((
            key_requests::ip,
            key_requests::client,
            key_requests::secret,
            sum(key_requests::one_in),
            max(key_requests::at),
        ))
        .load(conn)?;
    let mut out: Vec<Caller> = Vec::new();
    for (ip, client, secret, checks, last) in rows {
        let (checks, Some(last)) = (checks.unwrap_or(0), last) else {
            continue;
        };
        let previous = secret == PREVIOUS;
        let i = match out.iter().position(|c| c.ip == ip && c.client == client) {
            Some(i) => i,
            None => {
                out.push(Caller {
                    ip,
                    client,
                    checks: 0,
                    last_at: last,
                    previous_checks: 0,
                    last_previous_at: None,
                });
                out.len() - 1
            }
        };
        let c = &mut out[i];
        c.checks += checks;
        c.last_at = c.last_at.max(last);
        if previous {
            c.previous_checks += checks;
            c.last_previous_at = Some(c.last_previous_at.map_or(last, |t| t.max(last)));
        }
    }
    out.sort_by_key(|c| std::cmp::Reverse(c.last_at));
    Ok(out)
}

/// End a key's grace period now: its previous secret stops working (it is
/// answered EXPIRED, "replaced", as after a regeneration without grace).
/// `Ok(None)`: the key had no previous secret in its grace period.
pub fn end_grace(
    conn: &mut DbConn,
    ctx: &AuditContext,
    key: &ApiKey,
) -> Result<Option<ApiKey>, super::keys::KeyError> {
    super::write_transaction(conn, |conn| {
        let now = super::now();
        let Some(key) = super::keys::get(conn, &ctx.workspace_id, &key.id)? else {
            return Err(super::keys::KeyError::NotFound);
        };
        if key.revoked_at.is_some() {
            return Err(super::keys::KeyError::Revoked);
        }
        let Some(until) = key.previous_expires_at.filter(|u| *u > now) else {
            return Ok(None);
        };
        diesel::update(
            api_keys::table
                .filter(api_keys::id.eq(&key.id))
                .filter(api_keys::workspace_id.eq(&ctx.workspace_id)),
        )
        .set((
            api_keys::previous_expires_at.eq(Some(now)),
            api_keys::updated_at.eq(now),
        ))
        .execute(conn)?;
        super::keys::record_change(conn, &key)?;
        events::record(
            conn,
            ctx,
            "key.grace_ended",
            super::keys::key_target(&key),
            serde_json::json!({
                "excerpt": key.excerpt(),
                "grace_was_until": until,
            }),
        )?;
        Ok(super::keys::get(conn, &ctx.workspace_id, &key.id)?)
    })
}
