//! Members of a workspace: invite, change a role, renew an invitation,
//! remove (with the key cascade inside the same transaction).

use super::{Ctx, Error, Result, run};
use crate::db::users::{self, User, UserChangeError};
use crate::domain::ids;
use crate::domain::input::{Email, FieldError, PersonName};
use crate::domain::policy::{Action, UserRef};
use crate::domain::role::Role;
use crate::state::AppState;

fn parse_role(raw: &str) -> std::result::Result<Role, FieldError> {
    raw.parse::<Role>()
        .map_err(|_| FieldError::new("role", "Choose a role: admin, normal user or operator."))
}

/// A membership and the one-time link that lets its person join (shown
/// once to the admin; only its digest is stored).
pub struct Invited {
    pub user: User,
    pub link: String,
}

/// A new invitation token and its digest (what is stored).
fn invitation() -> (String, String) {
    let token = ids::new_token();
    let digest = ids::token_digest(&token);
    (token, digest)
}

/// Where an invitation token is opened: the configured public address,
/// never a request's Host header, which a client can forge.
fn link(state: &AppState, token: &str) -> String {
    format!("{}/invite/{token}", state.base_url)
}

/// Queue the invitation email to a member (when email is configured), in
/// the transaction that made the invitation.
fn mail_invitation(
    state: &AppState,
    ctx: &Ctx,
    url: &str,
) -> impl FnOnce(&mut crate::db::DbConn, &User) -> Result<()> + Send + 'static {
    let configured = state.config.smtp_url.is_some();
    let inviter = if ctx.user.name.trim().is_empty() {
        ctx.user.email.clone()
    } else {
        ctx.user.name.clone()
    };
    let url = url.to_owned();
    move |c, user| {
        if !configured {
            return Ok(());
        }
        let workspace = crate::db::workspaces::get(c, &user.workspace_id)?;
        let m = crate::notify::mail::invitation(&workspace.name, &inviter, &url);
        crate::db::mail::enqueue(
            c,
            &crate::db::mail::NewMail {
                workspace_id: &user.workspace_id,
                recipient: &user.email,
                subject: &m.subject,
                text_body: &m.text,
                html_body: &m.html,
            },
        )?;
        Ok(())
    }
}

/// Add someone to the workspace by email: a new person or one with an
/// account elsewhere is invited alike, so nothing reveals other workspaces.
pub async fn invite(
    state: &AppState,
    ctx: &Ctx,
    email: &str,
    name: &str,
    role: &str,
) -> Result<Invited> {
    ctx.authorize(Action::ManageUsers)?;
    let mut errors = Vec::new();
    let email = Email::parse(email).map_err(|e| errors.push(e)).ok();
    let name = PersonName::parse(name).map_err(|e| errors.push(e)).ok();
    let role = parse_role(role).map_err(|e| errors.push(e)).ok();
    let (Some(email), Some(name), Some(role)) = (email, name, role) else {
        return Err(Error::Invalid(errors));
    };
    let (token, digest) = invitation();
    let audit = ctx.audit.clone();
    let url = link(state, &token);
    let mail = mail_invitation(state, ctx, &url);
    let user = run(state, move |c| {
        let user = users::add(c, &audit, email.as_str(), &name.into_inner(), role, &digest)
            .map_err(Error::from)?;
        mail(c, &user)?;
        Ok(user)
    })
    .await?;
    Ok(Invited { user, link: url })
}

/// Change a member's role; the last admin keeps theirs.
pub async fn change_role(state: &AppState, ctx: &Ctx, id: &str, role: &str) -> Result<User> {
    ctx.authorize(Action::ManageUsers)?;
    let role = parse_role(role).map_err(|e| Error::Invalid(vec![e]))?;
    let audit = ctx.audit.clone();
    let id = id.to_owned();
    run(state, move |c| {
        users::change_role(c, &audit, &id, role).map_err(Error::from)
    })
    .await
}

/// A new invitation link for a member who has not joined yet; the old one
/// stops working.
pub async fn renew_invite(state: &AppState, ctx: &Ctx, id: &str) -> Result<Invited> {
    ctx.authorize(Action::ManageUsers)?;
    let (token, digest) = invitation();
    let audit = ctx.audit.clone();
    let id = id.to_owned();
    let url = link(state, &token);
    let mail = mail_invitation(state, ctx, &url);
    let user = run(state, move |c| {
        let user = users::renew_invite(c, &audit, &id, &digest).map_err(Error::from)?;
        mail(c, &user)?;
        Ok(user)
    })
    .await?;
    Ok(Invited { user, link: url })
}

/// The policy's answer on removing member `id`, saying why when it is the
/// actor themselves.
fn authorize_removal(ctx: &Ctx, id: &str) -> Result<()> {
    ctx.authorize(Action::ManageUsers)?;
    let target = UserRef {
        workspace_id: ctx.workspace_id(),
        user_id: id,
    };
    match ctx.authorize(Action::RemoveUser(target)) {
        Err(Error::RoleForbids) if id == ctx.actor.user_id => Err(Error::Forbidden(
            "You cannot remove yourself from the workspace; another admin can.".into(),
        )),
        other => other,
    }
}

/// The active member `id`, to confirm their removal.
pub async fn removable(state: &AppState, ctx: &Ctx, id: &str) -> Result<User> {
    ctx.authorize(Action::ManageUsers)?;
    let ws = ctx.workspace_id().to_owned();
    let wanted = id.to_owned();
    let target = run(state, move |c| Ok(users::get(c, &ws, &wanted)?))
        .await?
        // Service accounts are deleted on their own page.
        .filter(|u| u.is_active() && !u.is_service())
        .ok_or(Error::NotFound)?;
    authorize_removal(ctx, &target.id)?;
    Ok(target)
}

/// Remove a member: their sessions here end, their personal keys here are
/// revoked and the workspace keys they created flagged for review — all in
/// one transaction, so no key outlives its owner's membership.
pub async fn remove(state: &AppState, ctx: &Ctx, id: &str) -> Result<User> {
    authorize_removal(ctx, id)?;
    let audit = ctx.audit.clone();
    let id = id.to_owned();
    let configured = state.config.smtp_url.is_some();
    run(state, move |c| {
        crate::db::write_transaction::<_, UserChangeError, _>(c, |c| {
            let removed = users::remove(c, &audit, &id)?;
            crate::db::keys::on_user_removed(c, &audit, &removed.id)?;
            if configured {
                // What the cascade recorded: the keys it revoked.
                let keys =
                    crate::db::mail::revoked_on_removal(c, &audit.workspace_id, &removed.id)?;
                if !keys.is_empty() {
                    let workspace = crate::db::workspaces::get(c, &audit.workspace_id)?;
                    let m = crate::notify::mail::revoked_on_leave(&workspace.name, &keys);
                    crate::db::mail::enqueue(
                        c,
                        &crate::db::mail::NewMail {
                            workspace_id: &audit.workspace_id,
                            recipient: &removed.email,
                            subject: &m.subject,
                            text_body: &m.text,
                            html_body: &m.html,
                        },
                    )?;
                }
            }
            Ok(removed)
        })
        .map_err(Error::from)
    })
    .await
}
