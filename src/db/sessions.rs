//! Server-side sessions. The cookie holds a random secret; the table holds
//! only its SHA-256, so sessions can be ended from the server (logout, user
//! removal, password change) and expire when idle or too old.

use super::DbConn;
use super::schema::{sessions, users};
use super::users::{STATUS_ACTIVE, User, with_person};
use crate::domain::ids::{new_token, token_digest};
use chrono::{NaiveDateTime, TimeDelta};
use diesel::prelude::*;

/// A session row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = sessions)]
pub struct Session {
    pub id: String,
    /// The workspace and membership the person is acting in now.
    pub workspace_id: String,
    pub user_id: String,
    pub person_id: String,
    pub created_at: NaiveDateTime,
    pub last_seen_at: NaiveDateTime,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// Session lifetime limits.
#[derive(Debug, Clone, Copy)]
pub struct Lifetime {
    pub idle: TimeDelta,
    pub max: TimeDelta,
}

/// Start a session for `user` (a membership: the session's person and its
/// first workspace); returns the secret for the cookie.
pub fn create(
    conn: &mut DbConn,
    user: &User,
    ip: Option<&str>,
    user_agent: Option<&str>,
) -> QueryResult<String> {
    let secret = new_token();
    let now = super::now();
    diesel::insert_into(sessions::table)
        .values((
            sessions::id.eq(token_digest(&secret)),
            sessions::workspace_id.eq(&user.workspace_id),
            sessions::user_id.eq(&user.id),
            sessions::person_id.eq(&user.person_id),
            sessions::created_at.eq(now),
            sessions::last_seen_at.eq(now),
            sessions::ip.eq(ip),
            sessions::user_agent.eq(user_agent),
        ))
        .execute(conn)?;
    Ok(secret)
}

/// The live session for a cookie secret, with the (active, joined)
/// membership it acts in. Expired
/// sessions are deleted on sight; `last_seen_at` is refreshed at most once a
/// minute so that browsing does not write on every request.
pub fn load(
    conn: &mut DbConn,
    secret: &str,
    lifetime: Lifetime,
) -> QueryResult<Option<(Session, User)>> {
    let id = token_digest(secret);
    let found: Option<(Session, User)> = sessions::table
        .inner_join(with_person())
        .filter(sessions::id.eq(&id))
        .filter(users::status.eq(STATUS_ACTIVE))
        .filter(users::accepted_at.is_not_null())
        .select((Session::as_select(), User::as_select()))
        .first(conn)
        .optional()?;
    let Some((session, user)) = found else {
        return Ok(None);
    };
    let now = super::now();
    if now - session.last_seen_at > lifetime.idle || now - session.created_at > lifetime.max {
        diesel::delete(sessions::table.find(&id)).execute(conn)?;
        return Ok(None);
    }
    if now - session.last_seen_at > TimeDelta::minutes(1) {
        diesel::update(sessions::table.find(&id))
            .set(sessions::last_seen_at.eq(now))
            .execute(conn)?;
    }
    Ok(Some((session, user)))
}

/// Move a session to another of its person's memberships (the workspace
/// switcher) under a new secret, returned: the old one stops working, so a
/// copy of the cookie from before the switch acts nowhere. The session
/// keeps its start (the absolute limit). The caller has checked that
/// `user` is theirs and joined.
pub fn switch(conn: &mut DbConn, secret: &str, user: &User) -> QueryResult<String> {
    let fresh = new_token();
    diesel::update(
        sessions::table
            .filter(sessions::id.eq(token_digest(secret)))
            .filter(sessions::person_id.eq(&user.person_id)),
    )
    .set((
        sessions::id.eq(token_digest(&fresh)),
        sessions::user_id.eq(&user.id),
        sessions::workspace_id.eq(&user.workspace_id),
    ))
    .execute(conn)?;
    super::people::set_last_workspace(conn, &user.person_id, &user.workspace_id)?;
    Ok(fresh)
}

/// End one session (logout).
pub fn delete(conn: &mut DbConn, secret: &str) -> QueryResult<()> {
    diesel::delete(sessions::table.find(token_digest(secret))).execute(conn)?;
    Ok(())
}

/// Delete sessions that have expired, to keep the table small.
pub fn purge_expired(conn: &mut DbConn, lifetime: Lifetime) -> QueryResult<usize> {
    let now = super::now();
    diesel::delete(
        sessions::table.filter(
            sessions::last_seen_at
                .lt(now - lifetime.idle)
                .or(sessions::created_at.lt(now - lifetime.max)),
        ),
    )
    .execute(conn)
}
