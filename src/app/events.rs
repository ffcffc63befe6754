//! The audit trail: one page of events with their sentences, for the Events
//! page and the management API alike.

use super::{Ctx, Error, Result, run};
use crate::db::events::{self, Event, Filter};
use crate::domain::audit::{self, ACTIONS, Facts};
use crate::domain::policy::Action;
use crate::state::AppState;
use std::collections::HashMap;

/// The filters of the Events page and of `GET /api/v1/events`.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// An exact action, e.g. `key.revoked`.
    pub action: String,
    /// Part of the actor's label.
    pub actor: String,
    /// A target's id.
    pub key: String,
}

impl Query {
    /// The database filter, refusing an action keyward does not record.
    pub fn filter(&self) -> Result<Filter> {
        let action = self.action.trim();
        if !action.is_empty() && !ACTIONS.contains(&action) {
            return Err(Error::BadRequest(format!("Unknown action \"{action}\".")));
        }
        let some = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        Ok(Filter {
            action: some(action),
            actor: some(&self.actor),
            target: some(&self.key),
        })
    }
}

/// An event and the sentence that tells it.
pub struct Told {
    pub event: Event,
    pub sentence: String,
}

/// One page of events, newest first, before the event `before`; and the
/// cursor of the next page.
pub async fn page(
    state: &AppState,
    ctx: &Ctx,
    query: &Query,
    before: Option<i64>,
    limit: i64,
) -> Result<(Vec<Told>, Option<i64>)> {
    ctx.authorize(Action::ViewEvents)?;
    let filter = query.filter()?;
    let ws = ctx.workspace_id().to_owned();
    run(state, move |c| {
        let mut found = events::search(c, &ws, &filter, before, limit + 1)?;
        let next = if found.len() as i64 > limit {
            found.truncate(limit as usize);
            found.last().map(|e| e.id)
        } else {
            None
        };
        Ok((tell(c, &ws, found)?, next))
    })
    .await
}

/// Events of a workspace with their sentences: looks up the actors' names
/// and the keys' kinds (both scoped to the workspace) in two queries.
pub fn tell(c: &mut crate::db::DbConn, workspace_id: &str, found: Vec<Event>) -> Result<Vec<Told>> {
    let mut actor_ids: Vec<String> = found.iter().filter_map(|e| e.actor_id.clone()).collect();
    actor_ids.sort();
    actor_ids.dedup();
    let mut key_ids: Vec<String> = found
        .iter()
        .filter(|e| e.target_type.as_deref() == Some("api_key"))
        .filter_map(|e| e.target_id.clone())
        .collect();
    key_ids.sort();
    key_ids.dedup();
    let names: HashMap<String, String> = crate::db::users::names(c, workspace_id, &actor_ids)?
        .into_iter()
        .collect();
    let kinds: HashMap<String, String> = crate::db::keys::kinds(c, workspace_id, &key_ids)?
        .into_iter()
        .collect();
    Ok(found
        .into_iter()
        .map(|event| {
            let sentence = sentence(&event, &names, &kinds);
            Told { event, sentence }
        })
        .collect())
}

fn sentence(e: &Event, names: &HashMap<String, String>, kinds: &HashMap<String, String>) -> String {
    let details: serde_json::Value =
        serde_json::from_str(&e.details).unwrap_or(serde_json::Value::Null);
    let actor = e
        .actor_id
        .as_ref()
        .and_then(|id| names.get(id))
        .filter(|n| !n.trim().is_empty())
        .map_or(e.actor_label.as_str(), String::as_str);
    let key_kind = e
        .target_id
        .as_ref()
        .filter(|_| e.target_type.as_deref() == Some("api_key"))
        .and_then(|id| kinds.get(id))
        .map(String::as_str);
    audit::sentence(&Facts {
        action: &e.action,
        actor,
        target: e.target_label.as_deref(),
        key_kind,
        details: &details,
    })
    .unwrap_or_else(|| format!("{actor}: {}", e.action))
}
