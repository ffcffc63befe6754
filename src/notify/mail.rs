//! Email, when the operator configured SMTP (`KEYWARD_SMTP_URL`,
//! `KEYWARD_SMTP_FROM`): the sender of the mail outbox and the expiry
//! reminders; and the expiry scan, which runs with or without SMTP.
//!
//! The scan: at each of the workspace's reminder days (by default 14, 7
//! and 1 days before) a live key gets one `key.expiring` event, and at
//! expiry one `key.expired` event — audit events like any other, so
//! webhooks subscribed to them are told. With SMTP, the same crossing
//! mails the key's owner — for a workspace key, the workspace's admins —
//! unless they turned reminders off. "Once" is a row per key and threshold
//! (`expiry_reminders`, primary key) inserted in the same transaction as
//! the event and the queued messages: a second instance, or this one after
//! a restart, finds it and records and sends nothing, and a message the
//! SMTP server refused stays queued and is tried again.

use crate::db::mail::{self as db, Expiring, NewMail};
use crate::db::users::User;
use crate::state::AppState;
use chrono::TimeDelta;
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::sync::Arc;
use std::time::Duration;

/// Days before expiry at which reminders go out by default (0: at
/// expiry); a workspace sets its own on the Webhooks page.
pub const THRESHOLDS: [i32; 4] = [14, 7, 1, 0];
/// How long talking to the SMTP server may take per message.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a claimed message is held (longer than a send).
const CLAIM_FOR: TimeDelta = TimeDelta::seconds(60);
/// Keys that expired longer ago than this get no "expired" reminder (a
/// first start does not mail about keys long dead).
const EXPIRED_WITHIN: TimeDelta = TimeDelta::days(1);

/// Start the expiry scan, and the mail sender when SMTP is configured.
pub fn spawn(state: Arc<AppState>) {
    let mail = start_sender(&state);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(state.config.reminder_scan_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let s = state.clone();
            if let Err(e) = super::blocking(&state, move |c| scan(&s, c, mail)).await {
                tracing::warn!(error = %e, "the expiry scan failed");
            }
        }
    });
}

/// Start the mail sender; whether SMTP is configured (and usable).
fn start_sender(state: &Arc<AppState>) -> bool {
    let (Some(url), Some(from)) = (&state.config.smtp_url, &state.config.smtp_from) else {
        return false;
    };
    let from: Mailbox = match from.parse() {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(error = %e, "email: KEYWARD_SMTP_FROM is not an address; no email will be sent");
            return false;
        }
    };
    let transport = match AsyncSmtpTransport::<Tokio1Executor>::from_url(url) {
        Ok(t) => t.timeout(Some(SEND_TIMEOUT)).build(),
        Err(e) => {
            tracing::error!(error = %e, "email: KEYWARD_SMTP_URL cannot be used; no email will be sent");
            return false;
        }
    };
    let sender = state.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(super::POLL_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            send_due(&sender, &transport, &from).await;
        }
    });
    true
}

async fn send_due(
    state: &Arc<AppState>,
    transport: &AsyncSmtpTransport<Tokio1Executor>,
    from: &Mailbox,
) {
    let claimed = match super::blocking(state, |c| db::claim_due(c, 16, CLAIM_FOR)).await {
        Ok(c) => c,
        Err(_) => return,
    };
    for m in claimed {
        let result = send(transport, from, &m).await;
        let sent = result.is_ok();
        let error = result.err();
        let retry_at = if sent {
            None
        } else {
            crate::domain::webhooks::retry_after(m.attempts + 1).map(|w| crate::db::now() + w)
        };
        if let Some(e) = &error {
            tracing::warn!(mail = %m.id, attempt = m.attempts + 1, error = %e, "email: sending failed; it will be tried again");
        }
        let settle =
            move |c: &mut crate::db::DbConn| db::finish(c, &m, sent, error.as_deref(), retry_at);
        if let Err(e) = super::blocking(state, settle).await {
            tracing::warn!(error = %e, "email: could not record a send");
        }
    }
}

async fn send(
    transport: &AsyncSmtpTransport<Tokio1Executor>,
    from: &Mailbox,
    m: &db::Mail,
) -> Result<(), String> {
    let to: Mailbox = m.recipient.parse().map_err(|e| format!("{e}"))?;
    let message = Message::builder()
        .from(from.clone())
        .to(to)
        .subject(&m.subject)
        .multipart(MultiPart::alternative_plain_html(
            m.text_body.clone(),
            m.html_body.clone(),
        ))
        .map_err(|e| e.to_string())?;
    match tokio::time::timeout(SEND_TIMEOUT, transport.send(message)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("the SMTP server did not answer in time".into()),
    }
}

/// `text` for HTML.
fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The audit event (recorded by the leak-response part of keyward) that
/// tells admins a key was reported leaked.
pub const LEAKED: &str = "key.leaked";

/// Tell the admins (and a personal key's owner) of each recent
/// `key.leaked` event, once: a `mailed_events` row in the transaction of
/// the queued messages.
fn tell_leaks(state: &AppState, c: &mut crate::db::DbConn) -> diesel::QueryResult<()> {
    for e in db::recent_events(c, LEAKED, TimeDelta::days(1))? {
        if db::was_mailed(c, &e.id)? {
            continue;
        }
        let told = crate::db::write_transaction(c, |c| {
            db::mark_mailed(c, &e.id)?;
            let workspace = crate::db::workspaces::get(c, &e.workspace_id)?;
            let mut to = admin_emails(c, &e.workspace_id)?;
            if let Some(key) = &e.target_id
                && let Some(k) = crate::db::keys::get(c, &e.workspace_id, key)?
                && let Some(owner) = &k.owner_id
                && let Some(u) = crate::db::users::get(c, &e.workspace_id, owner)?
                && u.is_active()
                && !to.contains(&u.email)
            {
                to.push(u.email);
            }
            let name = e.target_label.clone().unwrap_or_default();
            let id = e.target_id.clone().unwrap_or_default();
            let link = format!("{}/keys/{id}", state.base_url);
            let m = Composed {
                subject: format!(
                    "[{}] An API key was reported leaked: “{name}”",
                    workspace.name
                ),
                text: format!(
                    "The API key “{name}” ({id}) in the workspace {} was reported leaked ({}).\n\n\
                     Check what it was used for and revoke or regenerate it: {link}\n",
                    workspace.name, e.actor_label
                ),
                html: format!(
                    "<p>The API key <strong>“{}”</strong> (<code>{}</code>) in the workspace <strong>{}</strong> was reported leaked ({}).</p>\
                     <p><a href=\"{}\">Check what it was used for and revoke or regenerate it</a></p>",
                    esc(&name),
                    esc(&id),
                    esc(&workspace.name),
                    esc(&e.actor_label),
                    esc(&link)
                ),
            };
            queue(state, c, &e.workspace_id, &to, &m)
        });
        if let Err(err) = told {
            tracing::debug!(event = %e.id, error = %err, "email: leak notice skipped");
        }
    }
    Ok(())
}

/// One pass over the keys near their expiry (and, with `mail`, over the
/// leak reports to tell).
fn scan(state: &AppState, c: &mut crate::db::DbConn, mail: bool) -> diesel::QueryResult<()> {
    if mail {
        tell_leaks(state, c)?;
    }
    let max = TimeDelta::days(i64::from(crate::domain::webhooks::MAX_REMINDER_DAYS));
    for key in db::expiring(c, max, EXPIRED_WITHIN)? {
        // A key another instance is reminding about right now fails here
        // (the reminder row exists): nothing to do.
        if let Err(e) = crate::db::write_transaction(c, |c| remind(state, c, &key, mail)) {
            tracing::debug!(key = %key.id, error = %e, "expiry scan: key skipped");
        }
    }
    Ok(())
}

/// Record the expiry event a key is due, and queue its reminder (with
/// `mail`), once.
fn remind(
    state: &AppState,
    c: &mut crate::db::DbConn,
    key: &Expiring,
    mail: bool,
) -> diesel::QueryResult<()> {
    let now = crate::db::now();
    let left = key.expires_at - now;
    let mail_days = db::reminder_days(c, &key.workspace_id)?
        .and_then(|d| crate::domain::webhooks::parse_reminder_days(&d).ok())
        .unwrap_or(THRESHOLDS.to_vec());
    // Expiry itself is always an event, whatever days reminders use.
    let mut days = mail_days.clone();
    if !days.contains(&0) {
        days.push(0);
    }
    let crossed: Vec<i32> = days
        .into_iter()
        .filter(|t| left <= TimeDelta::days(i64::from(*t)))
        .collect();
    let Some(&urgent) = crossed.iter().min() else {
        return Ok(());
    };
    let done = db::reminded(c, &key.id)?;
    if done.contains(&urgent) {
        return Ok(());
    }
    // The thresholds passed meanwhile are covered by this one message.
    for t in crossed.iter().filter(|t| !done.contains(t)) {
        db::record_reminder(c, &key.id, *t)?;
    }
    record_expiry(c, key, urgent, left)?;
    if !mail || !mail_days.contains(&urgent) {
        return Ok(());
    }
    let workspace = crate::db::workspaces::get(c, &key.workspace_id)?;
    let members = crate::db::users::list(c, &key.workspace_id)?;
    let joined = |u: &&User| u.is_active() && !u.invite_pending();
    // A service account's keys are the admins' to look after, like
    // workspace keys: nobody reads the account's (placeholder) address.
    let service = key
        .owner_id
        .as_deref()
        .is_some_and(crate::domain::ids::is_service_account_id);
    let recipients: Vec<&User> = if key.kind == "workspace" || service {
        members
            .iter()
            .filter(joined)
            .filter(|u| u.role() == crate::domain::Role::Admin)
            .collect()
    } else {
        members
            .iter()
            .filter(joined)
            .filter(|u| key.owner_id.as_deref() == Some(u.id.as_str()))
            .collect()
    };
    let base = &state.base_url;
    let when = if urgent == 0 {
        "has expired".to_owned()
    } else if left <= TimeDelta::days(1) {
        "expires within a day".to_owned()
    } else {
        format!("expires in {} days", left.num_days().max(1))
    };
    let date = key.expires_at.format("%Y-%m-%d %H:%M UTC");
    let subject = format!("[{}] The API key “{}” {when}", workspace.name, key.name);
    let link = format!("{base}/keys/{}", key.id);
    let regenerate = format!("{base}/keys/{}/regenerate", key.id);
    let whose = if key.kind == "workspace" {
        "a workspace key; every admin of the workspace gets this"
    } else if service {
        "a service account's key; every admin of the workspace gets this"
    } else {
        "your personal key"
    };
    for u in recipients {
        if db::reminders_off(c, &u.person_id)? {
            continue;
        }
        let text = format!(
            "The API key “{name}” ({id}) in the workspace {ws} {when} ({date}).\n\n\
             It is {whose}. When it expires, every integration using it is refused.\n\n\
             See the key: {link}\n\
             Regenerate it (a new secret; you choose when the old one stops): {regenerate}\n\n\
             You can turn expiry reminders off on your Account page: {base}/account\n",
            name = key.name,
            id = key.id,
            ws = workspace.name,
        );
        let html = format!(
            "<p>The API key <strong>“{name}”</strong> (<code>{id}</code>) in the workspace <strong>{ws}</strong> {when} ({date}).</p>\
             <p>It is {whose}. When it expires, every integration using it is refused.</p>\
             <p><a href=\"{link}\">See the key</a> · <a href=\"{regenerate}\">Regenerate it</a> (a new secret; you choose when the old one stops)</p>\
             <p style=\"color:#555\">You can turn expiry reminders off on your <a href=\"{base}/account\">Account page</a>.</p>",
            name = esc(&key.name),
            id = esc(&key.id),
            ws = esc(&workspace.name),
            whose = esc(whose),
            link = esc(&link),
            regenerate = esc(&regenerate),
            base = esc(base),
        );
        db::enqueue(
            c,
            &NewMail {
                workspace_id: &key.workspace_id,
                recipient: &u.email,
                subject: &subject,
                text_body: &text,
                html_body: &html,
            },
        )?;
    }
    Ok(())
}

/// The `key.expiring` (threshold above 0) or `key.expired` event of a
/// key, recorded by "system" with the expiry and the whole days left.
fn record_expiry(
    c: &mut crate::db::DbConn,
    key: &Expiring,
    threshold: i32,
    left: TimeDelta,
) -> diesel::QueryResult<()> {
    use crate::db::events::{AuditContext, EventTarget};
    let ctx = AuditContext::system(&key.workspace_id);
    let (action, details) = if threshold == 0 {
        (
            "key.expired",
            serde_json::json!({ "expires_at": key.expires_at }),
        )
    } else {
        (
            "key.expiring",
            serde_json::json!({
                "expires_at": key.expires_at,
                "days_left": left.num_days().max(0),
                "threshold_days": threshold,
            }),
        )
    };
    crate::db::events::record(
        c,
        &ctx,
        action,
        EventTarget {
            target_type: Some("api_key"),
            target_id: Some(&key.id),
            target_label: Some(&key.name),
        },
        details,
    )
}

/// A message about to be queued: subject, plain text, HTML.
pub struct Composed {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Queue `m` to each of `to` (no-op when email is not configured).
pub fn queue(
    state: &AppState,
    c: &mut crate::db::DbConn,
    workspace_id: &str,
    to: &[String],
    m: &Composed,
) -> diesel::QueryResult<()> {
    if state.config.smtp_url.is_none() {
        return Ok(());
    }
    for r in to {
        db::enqueue(
            c,
            &NewMail {
                workspace_id,
                recipient: r,
                subject: &m.subject,
                text_body: &m.text,
                html_body: &m.html,
            },
        )?;
    }
    Ok(())
}

/// The emails of a workspace's joined admins.
pub fn admin_emails(
    c: &mut crate::db::DbConn,
    workspace_id: &str,
) -> diesel::QueryResult<Vec<String>> {
    Ok(crate::db::users::list(c, workspace_id)?
        .into_iter()
        .filter(|u| u.is_active() && !u.invite_pending())
        .filter(|u| u.role() == crate::domain::Role::Admin)
        .map(|u| u.email)
        .collect())
}

/// An invitation: the link, which the admin is also shown once.
pub fn invitation(workspace: &str, inviter: &str, link: &str) -> Composed {
    Composed {
        subject: format!("[{workspace}] You are invited to keyward"),
        text: format!(
            "{inviter} invited you to the workspace {workspace} on keyward, where API keys are managed.\n\n\
             Accept the invitation and choose your password: {link}\n\n\
             The link works once and expires in 7 days. If you did not expect this, ignore it.\n"
        ),
        html: format!(
            "<p>{inviter} invited you to the workspace <strong>{workspace}</strong> on keyward, where API keys are managed.</p>\
             <p><a href=\"{link}\">Accept the invitation and choose your password</a></p>\
             <p style=\"color:#555\">The link works once and expires in 7 days. If you did not expect this, ignore it.</p>",
            inviter = esc(inviter),
            workspace = esc(workspace),
            link = esc(link),
        ),
    }
}

/// Your personal keys were revoked because you left the workspace.
pub fn revoked_on_leave(workspace: &str, keys: &[(String, String)]) -> Composed {
    let list_text: String = keys
        .iter()
        .map(|(id, name)| format!("- “{name}” ({id})\n"))
        .collect();
    let list_html: String = keys
        .iter()
        .map(|(id, name)| format!("<li>“{}” (<code>{}</code>)</li>", esc(name), esc(id)))
        .collect();
    Composed {
        subject: format!("[{workspace}] Your API keys were revoked: you left the workspace"),
        text: format!(
            "You are no longer a member of the workspace {workspace}, so your personal API keys there were revoked; integrations using them are refused from now on:\n\n{list_text}\n\
             Workspace keys are not affected. If this is a mistake, ask an admin of the workspace to invite you again.\n"
        ),
        html: format!(
            "<p>You are no longer a member of the workspace <strong>{}</strong>, so your personal API keys there were revoked; integrations using them are refused from now on:</p><ul>{list_html}</ul>\
             <p>Workspace keys are not affected. If this is a mistake, ask an admin of the workspace to invite you again.</p>",
            esc(workspace)
        ),
    }
}

/// A webhook endpoint is failing.
pub fn webhook_failing(workspace: &str, url: &str, page: &str) -> Composed {
    Composed {
        subject: format!("[{workspace}] A webhook endpoint is failing"),
        text: format!(
            "keyward retried delivering to the webhook endpoint {url} for about a day and gave up; the endpoint is marked failing.\n\n\
             See its delivery log, then send a test event or resend what was missed: {page}\n"
        ),
        html: format!(
            "<p>keyward retried delivering to the webhook endpoint <code>{}</code> for about a day and gave up; the endpoint is marked failing.</p>\
             <p><a href=\"{}\">See its delivery log</a>, then send a test event or resend what was missed.</p>",
            esc(url),
            esc(page)
        ),
    }
}
