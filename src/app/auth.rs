//! Signing in and out, first-run setup, invitation links and password
//! changes: who gets a session, under which throttles, and what the audit
//! trail says about it. The pages own only the cookie.

use super::{Ctx, Error, Result, run};
use crate::db::events::{self, AuditContext, EventTarget};
use crate::db::users::{self, User, UserChangeError};
use crate::db::{people, sessions, workspaces};
use crate::domain::input::{Email, FieldError, NewPassword, PersonName, WorkspaceName};
use crate::domain::policy::Action;
use crate::domain::throttle::Reservation;
use crate::domain::{ids, password};
use crate::state::AppState;
use serde_json::json;
use std::time::{Duration, Instant};

/// Where a request comes from, for throttles and the audit trail.
#[derive(Debug, Clone, Default)]
pub struct Client {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// A password check on the blocking pool (hashing is CPU-heavy; it holds
/// no database connection, so a burst of sign-ins cannot starve key checks
/// of connections).
pub(crate) async fn verify_password(input: String, stored: Option<String>) -> Result<bool> {
    Ok(tokio::task::spawn_blocking(move || match stored {
        Some(hash) => password::verify(&input, &hash),
        // Unknown accounts cost the same time as known ones.
        None => {
            password::verify_dummy(&input);
            false
        }
    })
    .await?)
}

async fn hash_password(new: NewPassword) -> Result<String> {
    tokio::task::spawn_blocking(move || password::hash(new.as_str()))
        .await?
        .map_err(|e| Error::Internal(e.to_string()))
}

/// `what` names the failures; `after` ends the sentence.
pub(crate) fn throttled(wait: Duration, what: &str, after: &str) -> Error {
    let minutes = wait.as_secs().div_ceil(60).max(1);
    Error::TooManyRequests {
        message: format!(
            "Too many {what}. Wait {minutes} minute{} and try again{after}",
            if minutes == 1 { "" } else { "s" }
        ),
        retry_after_secs: wait.as_secs().max(1),
    }
}

/// A sign-in attempt (the form, or an invitation for an existing account),
/// counted against the client's address and the account before the
/// password is checked, so a burst of parallel guesses cannot all be
/// evaluated before the first failure is recorded. A wrong password keeps
/// both slots: they are the failures.
struct Attempt {
    ip_key: String,
    account: String,
    by_ip: Reservation,
    by_account: Reservation,
}

impl Attempt {
    fn reserve(state: &AppState, ip: Option<&str>, account: &str) -> Result<Self> {
        let what = "failed sign-in attempts";
        let ip_key = ip.unwrap_or_default().to_owned();
        let now = Instant::now();
        let by_ip = state
            .login_by_ip
            .reserve(&ip_key, now)
            .map_err(|w| throttled(w, what, "."))?;
        let by_account = match state.login_by_account.reserve(account, now) {
            Ok(r) => r,
            Err(wait) => {
                state.login_by_ip.refund(&ip_key, by_ip);
                return Err(throttled(wait, what, "."));
            }
        };
        Ok(Attempt {
            ip_key,
            account: account.to_owned(),
            by_ip,
            by_account,
        })
    }

    /// The right password: the account's failures are forgotten and the
    /// address's slot is given back.
    fn succeeded(&self, state: &AppState) {
        state.login_by_account.clear(&self.account);
        state.login_by_ip.refund(&self.ip_key, self.by_ip);
    }

    /// The attempt does not count: the password could not be checked, or
    /// was right but its session could not be stored.
    fn void(&self, state: &AppState) {
        state
            .login_by_account
            .refund(&self.account, self.by_account);
        state.login_by_ip.refund(&self.ip_key, self.by_ip);
    }
}

/// What a sign-in came to.
pub enum SignIn {
    /// Signed in: the new session's secret, in this membership.
    Session {
        secret: String,
        membership: Box<User>,
    },
    /// The right password, but the person belongs to no workspace (only
    /// the person learns this).
    NoWorkspace,
    /// Unknown email or wrong password (not told apart).
    Refused,
    /// The right password, but a workspace of the person's signs in
    /// through single sign-on only (only the person learns this).
    SsoOnly,
}

/// Sign in with an email and password, throttled per address and account.
pub async fn sign_in(
    state: &AppState,
    email: &str,
    password_input: String,
    client: Client,
) -> Result<SignIn> {
    let email = email.trim().to_lowercase();
    if email.is_empty() || password_input.is_empty() {
        return Err(Error::invalid("email", "Enter your email and password."));
    }
    let attempt = Attempt::reserve(state, client.ip.as_deref(), &email)?;
    let lookup = email.clone();
    let person = match run(state, move |c| Ok(people::find_by_email(c, &lookup)?)).await {
        Ok(person) => person,
        Err(e) => {
            // The password was never checked (the database could not be
            // asked): an outage must not count against the account.
            attempt.void(state);
            return Err(e);
        }
    };
    let stored = person.as_ref().and_then(|p| p.password_hash.clone());
    let ok = verify_password(password_input, stored).await?;
    let Some(person) = person else {
        return Ok(SignIn::Refused);
    };
    let lifetime = state.session_lifetime();
    let break_glass = state.config.sso_break_glass.contains(&person.email);
    let recorded = run(state, move |c| {
        if !ok {
            // Every workspace the person belongs to sees the attempt on
            // its own member; none learns of the others.
            for m in people::memberships(c, &person.id)? {
                if m.is_pending() {
                    continue;
                }
                let ctx = AuditContext {
                    workspace_id: m.workspace_id.clone(),
                    actor_id: Some(m.user_id.clone()),
                    actor_label: person.email.clone(),
                    ip: client.ip.clone(),
                    user_agent: client.user_agent.clone(),
                };
                let target = EventTarget::user(&m.user_id, &person.email);
                events::record(c, &ctx, "login.failed", target, json!({}))?;
            }
            return Ok(SignIn::Refused);
        }
        if !break_glass && crate::db::sso::sso_only_for(c, &person.id)? {
            return Ok(SignIn::SsoOnly);
        }
        let Some(user) = people::sign_in_membership(c, &person)? else {
            return Ok(SignIn::NoWorkspace);
        };
        let ctx = user.audit(client.ip.clone(), client.user_agent.clone());
        sessions::purge_expired(c, lifetime)?;
        let secret =
            sessions::create(c, &user, client.ip.as_deref(), client.user_agent.as_deref())?;
        let target = EventTarget::user(&user.id, &user.email);
        events::record(c, &ctx, "login.succeeded", target, json!({}))?;
        Ok(SignIn::Session {
            secret,
            membership: Box::new(user),
        })
    })
    .await;
    match recorded {
        // The reservations stay: they were the failures.
        Ok(SignIn::Refused) => Ok(SignIn::Refused),
        Ok(done) => {
            // The right password: not a failed attempt.
            attempt.succeeded(state);
            Ok(done)
        }
        Err(e) => {
            // A right password whose session could not be stored is not a
            // failed attempt; a wrong one still counts.
            if ok {
                attempt.void(state);
            }
            Err(e)
        }
    }
}

/// End the session `secret` (and say so in its workspace's trail).
pub async fn sign_out(state: &AppState, secret: String, client: Client) -> Result<()> {
    let lifetime = state.session_lifetime();
    run(state, move |c| {
        if let Some((_, user)) = sessions::load(c, &secret, lifetime)? {
            let ctx = user.audit(client.ip, client.user_agent);
            let target = EventTarget::user(&user.id, &user.email);
            events::record(c, &ctx, "logout", target, json!({}))?;
        }
        sessions::delete(c, &secret)?;
        Ok(())
    })
    .await
}

/// Check the first-run token: not found once set up, forbidden for a
/// wrong token.
pub async fn check_setup_token(state: &AppState, token: Option<&str>) -> Result<()> {
    if run(state, |c| Ok(workspaces::any_exists(c)?)).await? {
        return Err(Error::NotFound);
    }
    let expected = state
        .setup_token_digest
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    match (expected, token) {
        (Some(expected), Some(token)) if ids::token_digest(token.trim()) == expected => Ok(()),
        (None, _) => Err(Error::NotFound),
        _ => Err(Error::Forbidden(
            "This setup link is not valid. Use the link keyward printed in its log when it started."
                .into(),
        )),
    }
}

/// The first workspace and its admin, as the setup form sends them.
pub struct SetupInput<'a> {
    pub token: &'a str,
    pub workspace: &'a str,
    pub name: &'a str,
    pub email: &'a str,
    pub password: &'a str,
    pub password_confirm: &'a str,
}

/// First-run setup: the first workspace and its admin, signed in. Returns
/// the admin's membership and session secret.
pub async fn setup(
    state: &AppState,
    input: SetupInput<'_>,
    client: Client,
) -> Result<(User, String)> {
    check_setup_token(state, Some(input.token)).await?;
    let mut errors = Vec::new();
    let mut keep = |r: std::result::Result<_, FieldError>| r.map_err(|e| errors.push(e)).ok();
    let workspace = keep(WorkspaceName::parse(input.workspace).map(WorkspaceName::into_inner));
    let name = keep(PersonName::parse(input.name).map(PersonName::into_inner));
    let email = keep(Email::parse(input.email).map(|e| e.as_str().to_owned()));
    let password = NewPassword::parse(input.password, input.password_confirm)
        .map_err(|e| errors.push(e))
        .ok();
    let (Some(workspace), Some(name), Some(email), Some(password)) =
        (workspace, name, email, password)
    else {
        return Err(Error::Invalid(errors));
    };
    let hash = hash_password(password).await?;
    let done = run(state, move |c| {
        let (_, admin) = users::setup_first_workspace_retrying(
            c,
            &workspace,
            &email,
            &name,
            &hash,
            client.ip.clone(),
            client.user_agent.clone(),
        )
        .map_err(|e| match e {
            UserChangeError::AlreadySetUp => Error::NotFound,
            other => other.into(),
        })?;
        let secret = sessions::create(
            c,
            &admin,
            client.ip.as_deref(),
            client.user_agent.as_deref(),
        )?;
        Ok((admin, secret))
    })
    .await?;
    *state
        .setup_token_digest
        .lock()
        .unwrap_or_else(|e| e.into_inner()) = None;
    tracing::info!("first-run setup completed");
    Ok(done)
}

fn invalid_invite() -> Error {
    Error::Gone(
        "This link is not valid: it was already used, has expired, or was mistyped. Ask your administrator for a new one."
            .into(),
    )
}

/// The membership an invitation link is for, and its workspace's name.
pub async fn open_invite(state: &AppState, token: &str) -> Result<(User, String)> {
    let digest = ids::token_digest(token);
    run(state, move |c| Ok(users::find_by_invite(c, &digest)?))
        .await?
        .ok_or_else(invalid_invite)
}

/// What using an invitation link came to.
pub enum Joined {
    /// A new person chose their password; they sign in next.
    PasswordSet,
    /// A person with an account proved their password and is signed in to
    /// the workspace: the membership, its workspace's name, the session.
    SignedIn {
        membership: Box<User>,
        workspace: String,
        secret: String,
    },
}

/// Use an invitation link: a new person chooses their password (and
/// repeats it); a person who already has one enters it, under the sign-in
/// throttle, and joins, signed in.
pub async fn use_invite(
    state: &AppState,
    token: &str,
    password_input: String,
    password_confirm: &str,
    client: Client,
) -> Result<Joined> {
    let (user, workspace) = open_invite(state, token).await?;
    let digest = ids::token_digest(token);
    if user.password_hash.is_some() {
        let attempt = Attempt::reserve(state, client.ip.as_deref(), &user.email)?;
        let ok = !password_input.is_empty()
            && verify_password(password_input, user.password_hash.clone()).await?;
        if !ok {
            return Err(Error::invalid(
                "password",
                "The password is not correct: enter the password you sign in to keyward with.",
            ));
        }
        attempt.succeeded(state);
        // A password must not open a session that SSO-only workspaces
        // refuse it at sign-in (issue 26): the invitation waits on the
        // Workspaces page, for after signing in through the provider.
        let break_glass = state.config.sso_break_glass.contains(&user.email);
        let person = user.person_id.clone();
        if !break_glass
            && run(state, move |c| {
                Ok(crate::db::sso::sso_only_for(c, &person)?)
            })
            .await?
        {
            return Err(Error::Forbidden(
                "Your workspace signs in through single sign-on only: sign in with your provider, then accept this invitation on the Workspaces page."
                    .into(),
            ));
        }
        let person_id = user.person_id.clone();
        let lifetime = state.session_lifetime();
        let (membership, secret) = run(state, move |c| {
            let joined = users::join_by_invite(
                c,
                &digest,
                &person_id,
                client.ip.clone(),
                client.user_agent.clone(),
            )?
            .ok_or_else(invalid_invite)?;
            sessions::purge_expired(c, lifetime)?;
            let secret = sessions::create(
                c,
                &joined,
                client.ip.as_deref(),
                client.user_agent.as_deref(),
            )?;
            people::set_last_workspace(c, &joined.person_id, &joined.workspace_id)?;
            Ok((joined, secret))
        })
        .await?;
        return Ok(Joined::SignedIn {
            membership: Box::new(membership),
            workspace,
            secret,
        });
    }
    let chosen = NewPassword::parse(&password_input, password_confirm).map_err(|e| {
        if e.field == "password_confirm" && password_confirm.is_empty() {
            // The page tells people with an account to leave it empty; a
            // new person who did is told what it is for.
            FieldError::new(
                "password_confirm",
                "Repeat the password you chose, to be sure it is the one you meant.",
            )
        } else {
            e
        }
    });
    let hash = hash_password(chosen.map_err(|e| Error::Invalid(vec![e]))?).await?;
    run(state, move |c| {
        users::accept_invite(c, &digest, &hash, client.ip, client.user_agent)?
            .ok_or_else(invalid_invite)
    })
    .await?;
    Ok(Joined::PasswordSet)
}

/// Change one's own password (the person's, in every workspace): every
/// other session of theirs ends at once. Returns how many ended.
pub async fn change_password(
    state: &AppState,
    ctx: &Ctx,
    session_secret: &str,
    current: String,
    new: &str,
    confirm: &str,
) -> Result<usize> {
    ctx.authorize(Action::ChangeOwnPassword)?;
    let mut errors = Vec::new();
    let new = NewPassword::parse(new, confirm)
        .map_err(|e| errors.push(e))
        .ok();
    // Like sign-in: the attempt counts before the slow check, so parallel
    // guesses of the current password cannot outrun the limit.
    let person = ctx.user.person_id.clone();
    let attempt = state
        .password_change
        .reserve(&person, Instant::now())
        .map_err(|w| throttled(w, "wrong current passwords", "; nothing was changed."))?;
    if verify_password(current, ctx.user.password_hash.clone()).await? {
        state.password_change.refund(&person, attempt);
    } else {
        errors.push(FieldError::new(
            "current_password",
            "Your current password is not correct.",
        ));
    }
    let Some(new) = new.filter(|_| errors.is_empty()) else {
        return Err(Error::Invalid(errors));
    };
    let hash = hash_password(new).await?;
    let audit = ctx.audit.clone();
    let keep = ids::token_digest(session_secret);
    run(state, move |c| {
        Ok(users::change_password(c, &audit, &person, &hash, &keep)?)
    })
    .await
}
