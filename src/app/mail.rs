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

/// The workspace's reminder days, as a list to show ("14,7,1,0").
pub async fn reminder_days(state: &AppState, ctx: &Ctx) -> Result<String> {
    ctx.authorize(Action::ManageSettings)?;
    let ws = ctx.workspace_id().to_owned();
    run(state, move |c| {
        Ok(crate::db::mail::reminder_days(c, &ws)?
            .unwrap_or_else(|| crate::domain::webhooks::DEFAULT_REMINDER_DAYS.to_owned()))
    })
    .await
}

/// Set when the workspace's expiry reminders go out; whether it changed.
pub async fn set_reminder_days(state: &AppState, ctx: &Ctx, raw: &str) -> Result<bool> {
    ctx.authorize(Action::ManageSettings)?;
    let days = crate::domain::webhooks::parse_reminder_days(raw)
        .map_err(|e| super::Error::invalid("reminder_days", e))?;
    let new = crate::domain::webhooks::reminder_days_text(&days);
    let ws = ctx.workspace_id().to_owned();
    let audit = ctx.audit.clone();
    run(state, move |c| {
        crate::db::write_transaction(c, |c| {
            let old = crate::db::mail::reminder_days(c, &ws)?
                .unwrap_or_else(|| crate::domain::webhooks::DEFAULT_REMINDER_DAYS.to_owned());
            if old == new {
                return Ok(false);
            }
            crate::db::mail::set_reminder_days(c, &ws, &new)?;
            let name = crate::db::workspaces::get(c, &ws)?.name;
            crate::db::events::record(
                c,
                &audit,
                "settings.changed",
                crate::db::events::EventTarget::workspace(&ws, &name),
                serde_json::json!({ "setting": "reminder_days", "old": old, "new": new }),
            )?;
            Ok::<_, super::Error>(true)
        })
    })
    .await
}
