//! Workspace → API keys → "Export CSV": every key of the workspace, for an
//! inventory or an audit. Never a secret: the masked excerpt is what the
//! pages show too.

use crate::app::keys::{self as uc, ListQuery, Listing};
use crate::db::keys::{self, Cursor, KeyWithOwner};
use crate::error::AppError;
use crate::state::AppState;
use crate::web::CurrentUser;
use crate::web::export::{self, cell};
use actix_web::{HttpResponse, get, web};

const HEADER: &[&str] = &[
    "id",
    "name",
    "kind",
    "owner",
    "environment",
    "permissions",
    "tags",
    "status",
    "created_utc",
    "expires_utc",
    "last_used_utc",
    "masked_key",
    // Last, so readers of the earlier columns by position keep working.
    "allowed_ips",
    "quota",
    "plan",
];

/// Plans by id, for the `plan` column.
type PlanNames = std::collections::HashMap<String, String>;

fn record(k: &KeyWithOwner, now: chrono::NaiveDateTime, plans: &PlanNames) -> Vec<String> {
    let key = &k.key;
    let time =
        |t: Option<chrono::NaiveDateTime>| t.map(crate::domain::time::rfc3339).unwrap_or_default();
    vec![
        key.id.clone(),
        cell(&key.name),
        // `personal`, `service` (a service account's key) or `workspace`.
        key.owner_kind().to_owned(),
        // A service account has no email: its name and id say who it is.
        if key.is_service() {
            cell(&format!(
                "{} ({})",
                k.owner_name.as_deref().unwrap_or(""),
                key.owner_id.as_deref().unwrap_or("")
            ))
        } else {
            cell(k.owner_email.as_deref().unwrap_or(""))
        },
        key.environment().as_str().to_owned(),
        cell(&key.permission_list().join(" ")),
        cell(&key.tag_list().join(", ")),
        key.status(now).label().to_owned(),
        crate::domain::time::rfc3339(key.created_at),
        time(key.expires_at),
        time(key.last_used_at),
        key.excerpt(),
        // Space-separated like the permissions; empty: any address.
        cell(&key.allowed_ip_list().join(" ")),
        // "1,000 a day", "5,000 in total, no refill"; empty: none.
        cell(&key.quota().map(|q| q.describe()).unwrap_or_default()),
        // The plan's name; empty: none.
        cell(
            key.plan_id
                .as_ref()
                .and_then(|id| plans.get(id))
                .map_or("", String::as_str),
        ),
    ]
}

/// Every key of the workspace (deleted ones excepted), newest first,
/// streamed in chunks like the events export.
#[get("/workspace/keys.csv")]
pub async fn inventory(
    state: web::Data<AppState>,
    user: CurrentUser,
) -> Result<HttpResponse, AppError> {
    let ctx = user.ctx();
    let scope = uc::scope_of(&ctx, Listing::All)?;
    let plans: std::sync::Arc<PlanNames> = std::sync::Arc::new(
        crate::app::plans::choices(&state, &ctx)
            .await?
            .into_iter()
            .map(|p| (p.id, p.name))
            .collect(),
    );
    let next = move |after: Option<Cursor>| {
        let (state, ctx, scope, plans) = (state.clone(), ctx.clone(), scope.clone(), plans.clone());
        async move {
            let query = ListQuery {
                q: String::new(),
                filter: keys::Filter::default(),
                after,
                limit: export::CHUNK,
            };
            let page = uc::list(&state, &ctx, scope, query).await?;
            let now = crate::db::now();
            Ok((
                page.keys.iter().map(|k| record(k, now, &plans)).collect(),
                page.next.map(Some),
            ))
        }
    };
    export::csv_download("keyward-keys", HEADER, None, next).await
}
