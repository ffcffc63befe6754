//! One's workspaces: switch to another membership, accept or decline an
//! invitation to one.

use super::{Ctx, Error, Result, run};
use crate::db::{sessions, users};
use crate::domain::policy::{Action, MembershipRef};
use crate::state::AppState;

/// One of the person's own memberships: another person's, or one that does
/// not exist or has ended, is not found (through the policy).
async fn own(state: &AppState, ctx: &Ctx, id: &str) -> Result<users::User> {
    let id = id.to_owned();
    let found = run(state, move |c| Ok(users::membership(c, &id)?))
        .await?
        .ok_or(Error::NotFound)?;
    ctx.authorize(Action::UseMembership(MembershipRef {
        person_id: &found.person_id,
    }))?;
    Ok(found)
}

/// Move the session `secret` to a joined membership of the same person,
/// remembered for the next sign-in. Returns the membership and the
/// session's new secret (the old one stops working).
pub async fn switch(
    state: &AppState,
    ctx: &Ctx,
    secret: &str,
    membership_id: &str,
) -> Result<(users::User, String)> {
    let to = own(state, ctx, membership_id).await?;
    if to.invite_pending() {
        return Err(Error::NotFound);
    }
    enter(state, secret, to).await
}

async fn enter(state: &AppState, secret: &str, to: users::User) -> Result<(users::User, String)> {
    let secret = secret.to_owned();
    run(state, move |c| {
        let fresh = sessions::switch(c, &secret, &to)?;
        Ok((to, fresh))
    })
    .await
}

/// Accept one of the person's pending invitations and work there: returns
/// the membership and the session's new secret.
pub async fn accept(
    state: &AppState,
    ctx: &Ctx,
    secret: &str,
    membership_id: &str,
) -> Result<(users::User, String)> {
    let pending = own(state, ctx, membership_id).await?;
    let (person, audit) = (ctx.actor.person_id.clone(), ctx.audit.clone());
    let joined = run(state, move |c| {
        Ok(users::accept_pending(
            c,
            &person,
            &pending.id,
            audit.ip,
            audit.user_agent,
        )?)
    })
    .await?
    .ok_or(Error::NotFound)?;
    enter(state, secret, joined).await
}

/// Decline one of the person's pending invitations: it ends, and the
/// workspace's admins see that.
pub async fn decline(state: &AppState, ctx: &Ctx, membership_id: &str) -> Result<users::User> {
    let pending = own(state, ctx, membership_id).await?;
    let (person, audit) = (ctx.actor.person_id.clone(), ctx.audit.clone());
    run(state, move |c| {
        Ok(users::decline_pending(
            c,
            &person,
            &pending.id,
            audit.ip,
            audit.user_agent,
        )?)
    })
    .await?
    .ok_or(Error::NotFound)
}
