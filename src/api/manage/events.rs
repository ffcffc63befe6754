//! The management API's audit trail.

use super::auth::{EventsRead, Manager};
use super::shapes::*;
use crate::api::problem::ApiError;
use crate::app::events::{self as uc, Query};
use actix_web::{HttpResponse, web};

/// The audit trail, newest first, with the Events page's filters (admins).
#[utoipa::path(
    get,
    path = "/api/v1/events",
    tag = "events",
    params(EventParams),
    security(("bearer" = [])),
    responses((status = 200, description = "One page of events", body = EventPage), Refusals)
)]
pub async fn list_events(
    m: Manager<EventsRead>,
    params: web::Query<EventParams>,
) -> Result<HttpResponse, ApiError> {
    let p = params.into_inner();
    let limit = p.limit.unwrap_or(50);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::bad_request("limit must be from 1 to 100."));
    }
    let query = Query {
        action: p.action.unwrap_or_default(),
        actor: p.actor.unwrap_or_default(),
        key: p.key.unwrap_or_default(),
    };
    let (told, next) = uc::page(&m.state, &m.ctx, &query, p.cursor, limit).await?;
    let events = told
        .into_iter()
        .map(|t| {
            let e = t.event;
            EventView {
                // First: the fields after it move parts of `e`.
                details: e.details_json(),
                id: e.id,
                time: time(e.created_at),
                action: e.action,
                actor: EventActor {
                    id: e.actor_id,
                    label: e.actor_label,
                },
                target: EventTargetView {
                    kind: e.target_type,
                    id: e.target_id,
                    label: e.target_label,
                },
                sentence: t.sentence,
                ip: e.ip,
                user_agent: e.user_agent,
            }
        })
        .collect();
    Ok(HttpResponse::Ok().json(EventPage {
        events,
        next_cursor: next,
    }))
}
