//! A key's usage quota (issue 23, section 1): "how much", next to the rate
//! limit's "how fast". One shape covers both kinds users ask for:
//!
//! - **N per day, week or month**: a limit of N, refilled to N at the start
//!   of each period;
//! - **credits**: N in total, optionally refilled by an amount per period,
//!   never above N (a top-up may go above it); without a refill they run
//!   out for good until someone tops them up.
//!
//! Periods start at 00:00 UTC: days at midnight, weeks on Monday, months
//! on the first.

use super::input::FieldError;
use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime};

/// The largest quota, refill or top-up: far above any real use, far below
/// what a 64-bit counter holds, so sums never overflow.
pub const MAX: i64 = 1_000_000_000;

/// The largest cost one check may spend.
pub const MAX_COST: i64 = 1_000_000;

/// How often a quota refills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Day,
    Week,
    Month,
}

impl Period {
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
        }
    }

    pub fn parse(s: &str) -> Option<Period> {
        match s.trim() {
            "day" => Some(Period::Day),
            "week" => Some(Period::Week),
            "month" => Some(Period::Month),
            _ => None,
        }
    }

    /// The start of the period `at` falls in.
    pub fn start_of(self, at: NaiveDateTime) -> NaiveDateTime {
        let day = at.date();
        let start = match self {
            Period::Day => day,
            Period::Week => day - Duration::days(i64::from(day.weekday().num_days_from_monday())),
            Period::Month => day.with_day(1).unwrap_or(day),
        };
        start.and_hms_opt(0, 0, 0).unwrap_or(at)
    }

    /// The start of the period before the one starting at `start`.
    pub fn previous(self, start: NaiveDateTime) -> NaiveDateTime {
        self.start_of(start - Duration::seconds(1))
    }

    /// The start of the period after the one starting at `start`.
    pub fn next(self, start: NaiveDateTime) -> NaiveDateTime {
        match self {
            Period::Day => start + Duration::days(1),
            Period::Week => start + Duration::days(7),
            Period::Month => {
                let d = start.date();
                let (y, m) = if d.month() == 12 {
                    (d.year() + 1, 1)
                } else {
                    (d.year(), d.month() + 1)
                };
                NaiveDate::from_ymd_opt(y, m, 1)
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
                    .unwrap_or(start + Duration::days(31))
            }
        }
    }

    /// How many period starts lie after `from` up to and including `to`
    /// (both period starts).
    fn between(self, from: NaiveDateTime, to: NaiveDateTime) -> i64 {
        if to <= from {
            return 0;
        }
        match self {
            Period::Day => (to - from).num_days(),
            Period::Week => (to - from).num_days() / 7,
            Period::Month => {
                let months = |d: NaiveDateTime| i64::from(d.year()) * 12 + i64::from(d.month());
                months(to) - months(from)
            }
        }
    }
}

/// A key's quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// The most uses held at once.
    pub limit: i64,
    /// How much comes back at the start of each period; `None`: nothing
    /// (credits).
    pub refill: Option<(i64, Period)>,
}

impl Quota {
    /// From the stored columns; `None` for no quota (or a row no form
    /// would write).
    pub fn from_columns(
        limit: Option<i64>,
        refill: Option<i64>,
        period: Option<&str>,
    ) -> Option<Quota> {
        let limit = limit.filter(|l| *l > 0)?;
        let refill = match (refill, period.and_then(Period::parse)) {
            (Some(amount), Some(period)) if amount > 0 => Some((amount, period)),
            _ => None,
        };
        Some(Quota { limit, refill })
    }

    /// The columns to store: limit, refill, period.
    pub fn columns(quota: Option<&Quota>) -> (Option<i64>, Option<i64>, Option<&'static str>) {
        match quota {
            None => (None, None, None),
            Some(q) => (
                Some(q.limit),
                q.refill.map(|(a, _)| a),
                q.refill.map(|(_, p)| p.as_str()),
            ),
        }
    }

    /// The start of the refill period `now` falls in (`None` without a
    /// refill: one window for ever).
    pub fn window(&self, now: NaiveDateTime) -> Option<NaiveDateTime> {
        self.refill.map(|(_, p)| p.start_of(now))
    }

    /// When what is left grows again: the next period start.
    pub fn refills_at(&self, now: NaiveDateTime) -> Option<NaiveDateTime> {
        self.refill.map(|(_, p)| p.next(p.start_of(now)))
    }

    /// What is left at `now`, given what was left in the window starting
    /// at `window` (`None`: never refilled): each period start since adds
    /// the refill, up to the limit (a balance above it, after a top-up,
    /// is kept).
    pub fn rolled(&self, remaining: i64, window: Option<NaiveDateTime>, now: NaiveDateTime) -> i64 {
        let Some((amount, period)) = self.refill else {
            return remaining;
        };
        let current = period.start_of(now);
        let periods = match window {
            Some(w) => period.between(period.start_of(w), current),
            None => 1,
        };
        if periods <= 0 {
            return remaining;
        }
        let refilled = remaining
            .saturating_add(amount.saturating_mul(periods))
            .min(self.limit);
        remaining.max(refilled)
    }

    /// How a quota reads: "1,000 a day", "5,000 in total, 100 more each
    /// week".
    pub fn describe(&self) -> String {
        match self.refill {
            Some((amount, period)) if amount >= self.limit => {
                format!("{} a {}", thousands(self.limit), period.as_str())
            }
            Some((amount, period)) => format!(
                "{} in total, {} more each {} (up to {})",
                thousands(self.limit),
                thousands(amount),
                period.as_str(),
                thousands(self.limit)
            ),
            None => format!("{} in total, no refill", thousands(self.limit)),
        }
    }
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// The field names the forms and the API use.
pub const LIMIT_FIELD: &str = "quota_limit";
pub const PERIOD_FIELD: &str = "quota_period";
pub const REFILL_FIELD: &str = "quota_refill";

/// A quota as typed: a limit (blank: none), a period (`day`, `week`,
/// `month`, or `total` for credits) and, for credits, an optional refill
/// (an amount per `refill_period`). Every mistake is named per field.
pub fn parse(
    limit: Option<i64>,
    period: &str,
    refill: Option<i64>,
    refill_period: &str,
) -> Result<Option<Quota>, Vec<FieldError>> {
    let mut errors = Vec::new();
    let Some(limit) = limit else {
        return Ok(None);
    };
    if !(1..=MAX).contains(&limit) {
        errors.push(FieldError::new(
            LIMIT_FIELD,
            format!(
                "A quota is between 1 and {} uses; leave it empty for none.",
                thousands(MAX)
            ),
        ));
    }
    let quota_refill = match period.trim() {
        "total" | "" => match refill {
            None => None,
            Some(amount) => {
                if amount < 1 {
                    errors.push(FieldError::new(
                        REFILL_FIELD,
                        "A refill adds at least 1 use; leave it empty for none.",
                    ));
                } else if amount > limit {
                    errors.push(FieldError::new(
                        REFILL_FIELD,
                        format!(
                            "A refill of {} is larger than the quota of {}: it can never add more than the quota holds.",
                            thousands(amount),
                            thousands(limit)
                        ),
                    ));
                }
                match Period::parse(refill_period) {
                    Some(p) => Some((amount, p)),
                    None => {
                        errors.push(FieldError::new(
                            REFILL_FIELD,
                            "Choose when the refill comes: each day, week or month.",
                        ));
                        None
                    }
                }
            }
        },
        other => match Period::parse(other) {
            Some(_) if refill.is_some() => {
                errors.push(FieldError::new(
                    REFILL_FIELD,
                    "A refill is for credits (a total): a quota per day, week or month comes back whole by itself. Clear the refill or choose total.",
                ));
                None
            }
            Some(p) => Some((limit, p)),
            None => {
                errors.push(FieldError::new(
                    PERIOD_FIELD,
                    "Choose a period: day, week, month, or total (credits).",
                ));
                None
            }
        },
    };
    if errors.is_empty() {
        Ok(Some(Quota {
            limit,
            refill: quota_refill,
        }))
    } else {
        Err(errors)
    }
}

/// A quota as a form or the API sent it, as text (blank limit: none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QuotaInput {
    pub limit: String,
    /// `day`, `week`, `month` or `total`.
    pub period: String,
    /// For `total`: uses added each `refill_period`; blank: none.
    pub refill: String,
    pub refill_period: String,
}

impl QuotaInput {
    /// The input that describes `quota` (to fill a form, or to keep it).
    pub fn of(quota: Option<&Quota>) -> QuotaInput {
        match quota {
            None => QuotaInput {
                period: "day".into(),
                refill_period: "day".into(),
                ..QuotaInput::default()
            },
            Some(q) => {
                let period = period_name(q);
                let (refill, refill_period) = match q.refill {
                    Some((amount, p)) if period == "total" => (amount.to_string(), p.as_str()),
                    _ => (String::new(), "day"),
                };
                QuotaInput {
                    limit: q.limit.to_string(),
                    period: period.into(),
                    refill,
                    refill_period: refill_period.into(),
                }
            }
        }
    }

    /// Check it: [`parse`] after reading the numbers.
    pub fn parse(&self) -> Result<Option<Quota>, Vec<FieldError>> {
        let number = |text: &str, field: &'static str| -> Result<Option<i64>, FieldError> {
            if text.trim().is_empty() {
                return Ok(None);
            }
            uses(text).map(Some).ok_or_else(|| {
                FieldError::new(field, "Enter a whole number of uses, or leave it empty.")
            })
        };
        let limit = number(&self.limit, LIMIT_FIELD).map_err(|e| vec![e])?;
        let refill = number(&self.refill, REFILL_FIELD).map_err(|e| vec![e])?;
        if limit.is_none() {
            return Ok(None);
        }
        parse(limit, &self.period, refill, &self.refill_period)
    }
}

/// A number of uses as typed ("10,000", "10 000" and "10_000" alike);
/// `None` when it is not a whole number. The one reading for the quota
/// fields and top-ups.
pub fn uses(text: &str) -> Option<i64> {
    text.trim().replace([',', '_', ' '], "").parse().ok()
}

/// A quota as the audit trail and the API record it.
pub fn to_json(quota: Option<&Quota>) -> serde_json::Value {
    match quota {
        None => serde_json::Value::Null,
        Some(q) => serde_json::json!({
            "limit": q.limit,
            "period": period_name(q),
            "refill": match q.refill {
                Some((amount, p)) if amount < q.limit => serde_json::json!({"amount": amount, "period": p.as_str()}),
                _ => serde_json::Value::Null,
            },
        }),
    }
}

/// The period as the forms and the API name it: `day`, `week`, `month`
/// for a quota per period, `total` for credits.
pub fn period_name(quota: &Quota) -> &'static str {
    match quota.refill {
        Some((amount, period)) if amount >= quota.limit => period.as_str(),
        _ => "total",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
    }

    #[test]
    fn periods_start_at_midnight_utc_monday_and_the_first() {
        let t = at("2026-12-05 17:30"); // a Saturday
        assert_eq!(Period::Day.start_of(t), at("2026-12-05 00:00"));
        assert_eq!(Period::Week.start_of(t), at("2026-11-30 00:00"));
        assert_eq!(Period::Month.start_of(t), at("2026-12-01 00:00"));
        assert_eq!(
            Period::Month.next(at("2026-12-01 00:00")),
            at("2027-01-01 00:00")
        );
        assert_eq!(
            Period::Week.next(at("2026-11-30 00:00")),
            at("2026-12-07 00:00")
        );
    }

    #[test]
    fn refills_add_per_period_up_to_the_limit_and_keep_a_larger_balance() {
        let daily = Quota {
            limit: 100,
            refill: Some((100, Period::Day)),
        };
        let w = Some(at("2026-12-04 00:00"));
        assert_eq!(daily.rolled(3, w, at("2026-12-04 23:59")), 3, "same day");
        assert_eq!(daily.rolled(3, w, at("2026-12-05 00:00")), 100, "next day");
        let credits = Quota {
            limit: 1000,
            refill: Some((100, Period::Month)),
        };
        let w = Some(at("2026-10-01 00:00"));
        assert_eq!(
            credits.rolled(50, w, at("2026-12-05 10:00")),
            250,
            "two months"
        );
        assert_eq!(
            credits.rolled(950, w, at("2026-12-05 10:00")),
            1000,
            "capped"
        );
        assert_eq!(
            credits.rolled(5000, w, at("2026-12-05 10:00")),
            5000,
            "topped up above"
        );
        let fixed = Quota {
            limit: 10,
            refill: None,
        };
        assert_eq!(
            fixed.rolled(0, None, at("2030-01-01 00:00")),
            0,
            "never refills"
        );
    }

    #[test]
    fn bad_input_is_named_per_field() {
        let fields = |r: Result<Option<Quota>, Vec<FieldError>>| -> Vec<&'static str> {
            r.err().unwrap().into_iter().map(|e| e.field).collect()
        };
        assert_eq!(parse(None, "day", None, ""), Ok(None));
        assert_eq!(fields(parse(Some(0), "day", None, "")), vec![LIMIT_FIELD]);
        assert_eq!(
            fields(parse(Some(MAX + 1), "day", None, "")),
            vec![LIMIT_FIELD]
        );
        assert_eq!(
            fields(parse(Some(10), "year", None, "")),
            vec![PERIOD_FIELD]
        );
        assert_eq!(
            fields(parse(Some(10), "total", Some(11), "day")),
            vec![REFILL_FIELD]
        );
        assert_eq!(
            fields(parse(Some(10), "total", Some(5), "")),
            vec![REFILL_FIELD]
        );
        let q = parse(Some(10), "total", Some(5), "week").unwrap().unwrap();
        assert_eq!(q.refill, Some((5, Period::Week)));
        assert_eq!(period_name(&q), "total");
        let q = parse(Some(1000), "month", None, "").unwrap().unwrap();
        assert_eq!(period_name(&q), "month");
        assert_eq!(q.describe(), "1,000 a month");
    }
}
