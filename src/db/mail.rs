//! Email: the mail outbox, expiry reminders and reminder opt-outs.
//!
//! Mail is queued in the database and sent by the notification worker, so
//! a slow, refusing or hanging SMTP server never holds up a request, and a
//! message that could not be sent is tried again (after a restart too).
//! Claims work as in `db::webhooks`.

use super::DbConn;
use super::schema::{api_keys, expiry_reminders, mail_outbox, reminder_optouts};
use chrono::{NaiveDateTime, TimeDelta};
use diesel::prelude::*;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = mail_outbox)]
pub struct Mail {
    pub id: String,
    pub workspace_id: String,
    pub recipient: String,
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
    pub created_at: NaiveDateTime,
    pub next_attempt_at: NaiveDateTime,
    pub claimed_until: Option<NaiveDateTime>,
    pub attempts: i32,
    pub done_at: Option<NaiveDateTime>,
    pub outcome: Option<String>,
    pub last_error: Option<String>,
}

/// A message to queue.
pub struct NewMail<'a> {
    pub workspace_id: &'a str,
    pub recipient: &'a str,
    pub subject: &'a str,
    pub text_body: &'a str,
    pub html_body: &'a str,
}

pub fn enqueue(conn: &mut DbConn, m: &NewMail<'_>) -> QueryResult<String> {
    let id = crate::domain::ids::new_id("mail");
    let now = super::now();
    diesel::insert_into(mail_outbox::table)
        .values((
            mail_outbox::id.eq(&id),
            mail_outbox::workspace_id.eq(m.workspace_id),
            mail_outbox::recipient.eq(m.recipient),
            mail_outbox::subject.eq(m.subject),
            mail_outbox::text_body.eq(m.text_body),
            mail_outbox::html_body.eq(m.html_body),
            mail_outbox::created_at.eq(now),
            mail_outbox::next_attempt_at.eq(now),
            mail_outbox::attempts.eq(0),
        ))
        .execute(conn)?;
    Ok(id)
}

/// Claim up to `limit` due messages until `now + claim_for`.
pub fn claim_due(conn: &mut DbConn, limit: i64, claim_for: TimeDelta) -> QueryResult<Vec<Mail>> {
    let now = super::now();
    let free = mail_outbox::claimed_until
        .is_null()
        .or(mail_outbox::claimed_until.lt(now));
    let candidates: Vec<String> = mail_outbox::table
        .filter(mail_outbox::done_at.is_null())
        .filter(mail_outbox::next_attempt_at.le(now))
        .filter(free)
        .order(mail_outbox::next_attempt_at.asc())
        .select(mail_outbox::id)
        .limit(limit)
        .load(conn)?;
    let mut claimed = Vec::new();
    for id in candidates {
        let won = diesel::update(
            mail_outbox::table
                .filter(mail_outbox::id.eq(&id))
                .filter(mail_outbox::done_at.is_null())
                .filter(
                    mail_outbox::claimed_until
                        .is_null()
                        .or(mail_outbox::claimed_until.lt(now)),
                ),
        )
        .set(mail_outbox::claimed_until.eq(Some(now + claim_for)))
        .execute(conn)?;
        if won == 1
            && let Some(m) = mail_outbox::table
                .filter(mail_outbox::id.eq(&id))
                .select(Mail::as_select())
                .first(conn)
                .optional()?
        {
            claimed.push(m);
        }
    }
    Ok(claimed)
}

/// Settle a send: done (sent, or given up) or due again at `retry_at`.
pub fn finish(
    conn: &mut DbConn,
    m: &Mail,
    sent: bool,
    error: Option<&str>,
    retry_at: Option<NaiveDateTime>,
) -> QueryResult<()> {
    let row = mail_outbox::table.filter(mail_outbox::id.eq(&m.id));
    match (sent, retry_at) {
        (false, Some(at)) => diesel::update(row)
            .set((
                mail_outbox::attempts.eq(m.attempts + 1),
                mail_outbox::next_attempt_at.eq(at),
                mail_outbox::claimed_until.eq(None::<NaiveDateTime>),
                mail_outbox::last_error.eq(error),
            ))
            .execute(conn)?,
        _ => diesel::update(row)
            .set((
                mail_outbox::attempts.eq(m.attempts + 1),
                mail_outbox::done_at.eq(Some(super::now())),
                mail_outbox::outcome.eq(Some(if sent { "sent" } else { "failed" })),
                mail_outbox::claimed_until.eq(None::<NaiveDateTime>),
                mail_outbox::last_error.eq(error),
                // Done: the bodies (an invitation's link) are not kept.
                mail_outbox::text_body.eq(""),
                mail_outbox::html_body.eq(""),
            ))
            .execute(conn)?,
    };
    Ok(())
}

/// A key that may need an expiry reminder.
#[derive(Debug, Clone, Queryable)]
pub struct Expiring {
    pub id: String,
    pub workspace_id: String,
    pub kind: String,
    pub owner_id: Option<String>,
    pub name: String,
    pub expires_at: NaiveDateTime,
}

/// id, workspace, kind, owner, name, expiry.
type KeyRow = (
    String,
    String,
    String,
    Option<String>,
    String,
    Option<NaiveDateTime>,
);

/// Live keys (not revoked, deleted or switched off) expiring within
/// `within` from now, or that expired less than `since` ago.
pub fn expiring(
    conn: &mut DbConn,
    within: TimeDelta,
    since: TimeDelta,
) -> QueryResult<Vec<Expiring>> {
    let now = super::now();
    let rows: Vec<KeyRow> = api_keys::table
        .filter(api_keys::expires_at.le(now + within))
        .filter(api_keys::expires_at.gt(now - since))
        .filter(api_keys::revoked_at.is_null())
        .filter(api_keys::deleted_at.is_null())
        .filter(api_keys::disabled_at.is_null())
        .select((
            api_keys::id,
            api_keys::workspace_id,
            api_keys::kind,
            api_keys::owner_id,
            api_keys::name,
            api_keys::expires_at,
        ))
        .order(api_keys::expires_at.asc())
        .limit(1000)
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, workspace_id, kind, owner_id, name, expires_at)| {
            Some(Expiring {
                id,
                workspace_id,
                kind,
                owner_id,
                name,
                expires_at: expires_at?,
            })
        })
        .collect())
}

/// The thresholds (days) already reminded of for a key.
pub fn reminded(conn: &mut DbConn, key_id: &str) -> QueryResult<Vec<i32>> {
    expiry_reminders::table
        .filter(expiry_reminders::key_id.eq(key_id))
        .select(expiry_reminders::threshold_days)
        .load(conn)
}

/// Record a key's reminder at `threshold`; fails (unique violation) when
/// it is already recorded, by this or another instance.
pub fn record_reminder(conn: &mut DbConn, key_id: &str, threshold: i32) -> QueryResult<()> {
    diesel::insert_into(expiry_reminders::table)
        .values((
            expiry_reminders::key_id.eq(key_id),
            expiry_reminders::threshold_days.eq(threshold),
            expiry_reminders::created_at.eq(super::now()),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Whether the person turned expiry reminders off.
pub fn reminders_off(conn: &mut DbConn, person_id: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        reminder_optouts::table.filter(reminder_optouts::person_id.eq(person_id)),
    ))
    .get_result(conn)
}

/// Turn a person's expiry reminders off or on.
pub fn set_reminders_off(conn: &mut DbConn, person_id: &str, off: bool) -> QueryResult<()> {
    if off {
        if !reminders_off(conn, person_id)? {
            diesel::insert_into(reminder_optouts::table)
                .values((
                    reminder_optouts::person_id.eq(person_id),
                    reminder_optouts::created_at.eq(super::now()),
                ))
                .execute(conn)?;
        }
    } else {
        diesel::delete(reminder_optouts::table.filter(reminder_optouts::person_id.eq(person_id)))
            .execute(conn)?;
    }
    Ok(())
}

/// The keys (id, name) revoked when member `user_id` was removed: their
/// personal keys whose `key.revoked` event says "owner removed", as the
/// removal cascade records it (read in its transaction).
pub fn revoked_on_removal(
    conn: &mut DbConn,
    workspace_id: &str,
    user_id: &str,
) -> QueryResult<Vec<(String, String)>> {
    use super::schema::events;
    let owned: Vec<(String, String)> = api_keys::table
        .filter(api_keys::workspace_id.eq(workspace_id))
        .filter(api_keys::owner_id.eq(user_id))
        .filter(api_keys::revoked_at.is_not_null())
        .select((api_keys::id, api_keys::name))
        .load(conn)?;
    let ids: Vec<&str> = owned.iter().map(|(id, _)| id.as_str()).collect();
    let revoked: Vec<(Option<String>, String)> = events::table
        .filter(events::workspace_id.eq(workspace_id))
        .filter(events::action.eq("key.revoked"))
        .filter(events::target_id.eq_any(ids))
        .select((events::target_id, events::details))
        .load(conn)?;
    Ok(owned
        .into_iter()
        .filter(|(id, _)| {
            revoked
                .iter()
                .any(|(t, d)| t.as_deref() == Some(id.as_str()) && d.contains("owner removed"))
        })
        .collect())
}

/// Recent events of type `action` (within `since`), oldest first.
pub fn recent_events(
    conn: &mut DbConn,
    action: &str,
    since: TimeDelta,
) -> QueryResult<Vec<super::events::Event>> {
    use super::schema::events;
    events::table
        .filter(events::action.eq(action))
        .filter(events::created_at.gt(super::now() - since))
        .select(super::events::Event::as_select())
        .order(events::seq.asc())
        .limit(200)
        .load(conn)
}

/// Whether an event was already told by email.
pub fn was_mailed(conn: &mut DbConn, event_id: &str) -> QueryResult<bool> {
    use super::schema::mailed_events;
    diesel::select(diesel::dsl::exists(
        mailed_events::table.filter(mailed_events::event_id.eq(event_id)),
    ))
    .get_result(conn)
}

/// Record that an event is told by email; fails when it already was.
pub fn mark_mailed(conn: &mut DbConn, event_id: &str) -> QueryResult<()> {
    use super::schema::mailed_events;
    diesel::insert_into(mailed_events::table)
        .values((
            mailed_events::event_id.eq(event_id),
            mailed_events::created_at.eq(super::now()),
        ))
        .execute(conn)
        .map(|_| ())
}

/// A workspace's reminder days as stored, if it set them.
pub fn reminder_days(conn: &mut DbConn, workspace_id: &str) -> QueryResult<Option<String>> {
    use super::schema::reminder_settings as r;
    r::table
        .filter(r::workspace_id.eq(workspace_id))
        .select(r::days)
        .first(conn)
        .optional()
}

/// Set a workspace's reminder days (stored form).
pub fn set_reminder_days(conn: &mut DbConn, workspace_id: &str, days: &str) -> QueryResult<()> {
    use super::schema::reminder_settings as r;
    let now = super::now();
    let n = diesel::update(r::table.filter(r::workspace_id.eq(workspace_id)))
        .set((r::days.eq(days), r::updated_at.eq(now)))
        .execute(conn)?;
    if n == 0 {
        diesel::insert_into(r::table)
            .values((
                r::workspace_id.eq(workspace_id),
                r::days.eq(days),
                r::updated_at.eq(now),
            ))
            .execute(conn)?;
    }
    Ok(())
}
