//! Times as a person reads them: "3 minutes ago" next to the exact UTC
//! time. All times in keyward are UTC `NaiveDateTime`s; every absolute time
//! shown says so.

use chrono::NaiveDateTime;

/// One point in time, ready for a `<time>` element: its machine-readable
/// `datetime`, the exact UTC time (its title) and the relative text shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moment {
    /// RFC 3339, e.g. `2026-11-23T09:42:00Z`.
    pub iso: String,
    /// e.g. `2026-11-23 09:42 UTC`.
    pub exact: String,
    /// e.g. `3 minutes ago`, `in 5 days`.
    pub relative: String,
}

impl Moment {
    pub fn new(t: NaiveDateTime, now: NaiveDateTime) -> Moment {
        Moment {
            iso: rfc3339(t),
            exact: exact(t),
            relative: relative(t, now),
        }
    }

    /// The day alone (`2026-12-01`), for dense lists; the exact time is in
    /// the title.
    pub fn day(&self) -> &str {
        self.exact.get(..10).unwrap_or(&self.exact)
    }
}

/// A UTC time for machines (APIs, exports, `<time datetime>`): RFC 3339,
/// whole seconds, e.g. `2026-11-23T09:42:00Z`.
pub fn rfc3339(t: NaiveDateTime) -> String {
    t.and_utc()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Read a UTC time written by [`rfc3339`], or in the zone-less form
/// (`2026-11-23T09:42:00.123456`) that `NaiveDateTime`'s serialisation gave
/// audit details before they were written with [`rfc3339`]: keyward's
/// times are all UTC, so both mean the same instant.
pub fn parse_utc(s: &str) -> Option<NaiveDateTime> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .filter(|t| t.offset().local_minus_utc() == 0)
        .map(|t| t.naive_utc())
        .or_else(|| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").ok())
}

/// The exact time with its zone: `2026-11-23 09:42 UTC`.
pub fn exact(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn plural(n: i64, unit: &str) -> String {
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

/// How long ago (or how far ahead) `t` is from `now`, in the largest unit
/// that fits, rounded down: "just now", "3 minutes ago", "in 5 days".
pub fn relative(t: NaiveDateTime, now: NaiveDateTime) -> String {
    let secs = (now - t).num_seconds();
    let (past, secs) = (secs >= 0, secs.abs());
    if secs < 60 {
        return if past {
            "just now"
        } else {
            "in less than a minute"
        }
        .to_owned();
    }
    let span = match secs {
        60..3_600 => plural(secs / 60, "minute"),
        3_600..86_400 => plural(secs / 3_600, "hour"),
        86_400..2_592_000 => plural(secs / 86_400, "day"),
        2_592_000..31_536_000 => plural(secs / 2_592_000, "month"),
        _ => plural(secs / 31_536_000, "year"),
    };
    if past {
        format!("{span} ago")
    } else {
        format!("in {span}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    #[test]
    fn relative_times_read_like_speech() {
        let now = at("2026-11-23 12:00:00");
        let ago = |d: TimeDelta| relative(now - d, now);
        assert_eq!(ago(TimeDelta::seconds(5)), "just now");
        assert_eq!(ago(TimeDelta::seconds(60)), "1 minute ago");
        assert_eq!(ago(TimeDelta::seconds(3 * 60 + 59)), "3 minutes ago");
        assert_eq!(ago(TimeDelta::hours(1)), "1 hour ago");
        assert_eq!(ago(TimeDelta::hours(23)), "23 hours ago");
        assert_eq!(ago(TimeDelta::days(2)), "2 days ago");
        assert_eq!(ago(TimeDelta::days(65)), "2 months ago");
        assert_eq!(ago(TimeDelta::days(800)), "2 years ago");
        assert_eq!(ago(TimeDelta::days(-5)), "in 5 days");
        assert_eq!(ago(TimeDelta::seconds(-30)), "in less than a minute");
    }

    #[test]
    fn a_moment_carries_the_exact_utc_time() {
        let now = at("2026-11-23 12:00:00");
        let m = Moment::new(at("2026-11-23 11:57:00"), now);
        assert_eq!(m.iso, "2026-11-23T11:57:00Z");
        assert_eq!(m.exact, "2026-11-23 11:57 UTC");
        assert_eq!(m.relative, "3 minutes ago");
        assert_eq!(m.day(), "2026-11-23");
    }
}
