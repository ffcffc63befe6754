//! One key's page: every field, its usage and its history.

use super::{KeyTarget, Row, hourly, row};
use crate::app::keys::Act;
use crate::db::keys::{ApiKey, KeyWithOwner};
use crate::domain::chart::{self, Bar};
use crate::error::AppError;
use crate::web::layout::Layout;
use crate::web::{db, render};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get};
use askama::Template;

#[derive(Template)]
#[template(path = "keys/detail.html")]
struct DetailPage {
    layout: Layout,
    key: ApiKey,
    row: Row,
    owner: String,
    created_by: String,
    revoked_by: Option<String>,
    chart: String,
    valid_7d: i64,
    rejected_7d: i64,
    outcomes: Vec<(String, i64)>,
    history: Vec<crate::web::events::EventView>,
    /// Verifications per UTC day, oldest first: the time axis and the
    /// chart's text alternative.
    days: Vec<DayUsage>,
    /// The busiest hour, in words.
    busiest: Option<String>,
    return_to: String,
    /// "Use this key" examples, with the key's masked excerpt.
    snippets: Vec<crate::web::docs::Snippet>,
    /// Leak reports of this key, newest first (issue 25).
    leaks: Vec<crate::db::leaks::KeyLeak>,
    /// "Still in use by" (the request log's last 24 hours).
    callers: super::requests::CallersView,
    /// The usage quota and what is left of it.
    quota: Option<QuotaView>,
    /// The plan the key is on, by name.
    plan: Option<String>,
    /// Checks in the quota's last periods, the current one first.
    periods: Vec<PeriodRow>,
}

/// One period of a quota's history as the key's page shows it.
struct PeriodRow {
    /// "Today", "Sat 5 December", "Week of 30 November", "December 2026".
    label: String,
    accepted: i64,
    refused: i64,
}

impl PeriodRow {
    fn of(p: &crate::app::keys::PeriodUse, current: bool) -> Self {
        use crate::domain::quota::Period;
        let label = match (p.period, current) {
            (Period::Day, true) => "Today".to_owned(),
            (Period::Week, true) => "This week".to_owned(),
            (Period::Month, true) => "This month".to_owned(),
            (Period::Day, false) => p.start.format("%a %-d %B").to_string(),
            (Period::Week, false) => p.start.format("Week of %-d %B").to_string(),
            (Period::Month, false) => p.start.format("%B %Y").to_string(),
        };
        PeriodRow {
            label,
            accepted: p.accepted,
            refused: p.refused,
        }
    }
}

/// A key's quota as its page shows it.
struct QuotaView {
    /// "1,000 a day".
    describe: String,
    /// "958".
    remaining: String,
    /// When it refills, exactly (UTC).
    resets: Option<String>,
}

/// One day of the usage chart.
pub struct DayUsage {
    /// "Mon 17", under the chart.
    pub short: String,
    /// "Monday 17 November 2026", in the table.
    pub long: String,
    pub valid: i64,
    pub rejected: i64,
}

impl DetailPage {
    /// How a setting relates to the key's plan: "" off a plan.
    fn source(&self, field: &str) -> &'static str {
        if self.plan.is_none() {
            return "";
        }
        let own = crate::domain::plans::overrides(&self.key.plan_overrides);
        if own.iter().any(|f| f.as_str() == field) {
            "the key's own (overrides the plan)"
        } else {
            "from the plan"
        }
    }

    fn ret(&self) -> String {
        crate::http::middleware::urlencode(&self.return_to)
    }
}

/// Hours shown in the usage chart.
const CHART_HOURS: i64 = 7 * 24;

/// A key's detail page: every field, its usage and its history.
#[get("/keys/{id}")]
pub async fn detail(target: KeyTarget) -> Result<HttpResponse, AppError> {
    let (call, key) = target.load(Act::View).await?;
    let now = crate::db::now();
    // Seven whole UTC days, today last, so the chart's time axis can name
    // each day under its own part of the chart.
    let start = now.date().and_time(chrono::NaiveTime::MIN) - chrono::TimeDelta::days(6);
    let k = key.clone();
    let (owner, created_by, revoked_by, usage, history, paused, leaks) =
        db(&call.state, move |c| {
            let label = |c: &mut crate::db::DbConn, id: &str| -> Result<String, AppError> {
                Ok(crate::db::users::get(c, &k.workspace_id, id)?
                    .map_or_else(|| id.to_owned(), |u| format!("{} ({})", u.name, u.email)))
            };
            let owner = match &k.owner_id {
                Some(o) => label(c, o)?,
                None => "Workspace".to_owned(),
            };
            let created_by = label(c, &k.created_by)?;
            let revoked_by = match &k.revoked_by {
                Some(r) => Some(label(c, r)?),
                None => None,
            };
            let usage = crate::db::usage::since(
                c,
                &k.workspace_id,
                Some(std::slice::from_ref(&k.id)),
                start,
            )?;
            let history = crate::db::events::for_target(c, &k.workspace_id, &k.id)?;
            let history = crate::web::events::views(c, &k.workspace_id, history, false)?;
            let paused = crate::db::workspaces::get(c, &k.workspace_id)?
                .api_keys_disabled_at
                .is_some();
            let leaks = crate::db::leaks::of_key(c, &k.workspace_id, &k.id)?;
            Ok((owner, created_by, revoked_by, usage, history, paused, leaks))
        })
        .await?;
    let bars = hourly(&usage, start, CHART_HOURS)
        .remove(&key.id)
        .unwrap_or_else(|| vec![Bar::default(); CHART_HOURS as usize]);
    let mut by_outcome: std::collections::BTreeMap<String, i64> = std::collections::BTreeMap::new();
    for u in &usage {
        *by_outcome.entry(u.outcome.clone()).or_default() += u.count;
    }
    let callers = crate::app::requests::callers(&call.state, &call.ctx(), &key.id).await?;
    let quota = crate::app::keys::quota_state(&call.state, &call.ctx(), &key.id)
        .await?
        .map(|q| QuotaView {
            describe: q.quota.describe(),
            remaining: crate::domain::quota::thousands(q.remaining),
            resets: q
                .resets_at
                .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string()),
        });
    let callers = super::requests::CallersView::new(&callers, &format!("/keys/{}", key.id));
    let periods = crate::app::keys::quota_periods(&call.state, &call.ctx(), &key.id)
        .await?
        .iter()
        .enumerate()
        .map(|(i, p)| PeriodRow::of(p, i == 0))
        .collect();
    let plan = match key.plan_id.clone() {
        Some(id) => {
            let ws = key.workspace_id.clone();
            db(&call.state, move |c| {
                Ok(crate::db::plans::get(c, &ws, &id)?.map(|p| p.name))
            })
            .await?
        }
        None => None,
    };
    let key_with_owner = KeyWithOwner {
        key: key.clone(),
        owner_email: None,
        owner_name: None,
    };
    let page = DetailPage {
        layout: Layout::new(
            &call.session,
            &call.user,
            key.name.clone(),
            if key.is_personal() {
                "personal-keys"
            } else {
                "workspace-keys"
            },
        )?,
        row: Row {
            paused,
            ..row(&key_with_owner, &call.user, now)
        },
        return_to: format!("/keys/{}", key.id),
        snippets: crate::web::docs::use_your_key(&call.public_base(), &key.excerpt()),
        valid_7d: bars.iter().map(|b| b.valid).sum(),
        rejected_7d: bars.iter().map(|b| b.rejected).sum(),
        chart: crate::domain::chart::stacked_bars_divided(&bars, 24, 840, 140),
        days: chart::totals_per(&bars, 24)
            .into_iter()
            .enumerate()
            .map(|(i, b)| {
                let day = (start + chrono::TimeDelta::days(i as i64)).date();
                DayUsage {
                    short: day.format("%a %-d").to_string(),
                    long: day.format("%A %-d %B %Y").to_string(),
                    valid: b.valid,
                    rejected: b.rejected,
                }
            })
            .collect(),
        busiest: chart::busiest(&bars).map(|(i, b)| {
            let hour = start + chrono::TimeDelta::hours(i as i64);
            format!(
                "{} to {}:00 UTC ({} verifications)",
                hour.format("%A %-d %B, %H:00"),
                (hour + chrono::TimeDelta::hours(1)).format("%H"),
                b.total()
            )
        }),
        outcomes: by_outcome.into_iter().collect(),
        key,
        owner,
        created_by,
        revoked_by,
        history,
        leaks,
        callers,
        quota,
        plan,
        periods,
    };
    render(&page, StatusCode::OK)
}
