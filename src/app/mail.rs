//! One's own email settings: expiry reminders on or off (Account page).

use super::{Ctx, Result, run};
use crate::domain::policy::Action;
use crate::state::AppState;

/// Whether the acting person turned expiry reminders off.
pub async fn reminders_off(state: &AppState, ctx: &Ctx) -> Result<bool> {
    // One's own account settings: allowed to everyone, like one's password.
    ctx.authorize(Action::ChangeOwnPassword)?;
    let person = ctx.actor.person_id.clone();
    run(state, move |c| {
        Ok(crate::db::mail::reminders_off(c, &person)?)
    })
    .await
}

/// Turn the acting person's expiry reminders off (`true`) or on, in all
/// their workspaces.
pub async fn set_reminders_off(state: &AppState, ctx: &Ctx, off: bool) -> Result<()> {
    ctx.authorize(Action::ChangeOwnPassword)?;
    let person = ctx.actor.person_id.clone();
    run(state, move |c| {
        Ok(crate::db::mail::set_reminders_off(c, &person, off)?)
    })
    .await
}
