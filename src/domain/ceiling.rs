//! A management key can never make or edit a key broader than itself: the
//! acting key's grant is the ceiling of every key it creates, edits or
//! regenerates (a regenerated key's secret is as good as a new key).

use super::allowlist::{self, Allowlist};
use super::input::FieldError;
use chrono::NaiveDateTime;

/// What a key may do, as far as the ceiling compares it.
#[derive(Debug, Clone, Copy)]
pub struct Grant<'a> {
    /// Catalog and management permissions.
    pub permissions: &'a [String],
    /// `live`, `test` or `dev`.
    pub environment: &'a str,
    /// `None`: never expires.
    pub expires_at: Option<NaiveDateTime>,
    /// Resources it is limited to; empty: the whole workspace.
    pub resources: &'a [String],
    /// Requests per minute; `None`: unlimited.
    pub rate_limit: Option<i32>,
    /// The stored IP allowlist; `None`: any address.
    pub allowed_ips: Option<&'a str>,
    /// The usage quota's limit; `None`: no quota.
    pub quota_limit: Option<i64>,
}

/// Every way `wanted` is broader than `ceiling`, one message per field
/// (empty: within the ceiling).
pub fn exceeding(ceiling: &Grant<'_>, wanted: &Grant<'_>) -> Vec<FieldError> {
    let mut out = Vec::new();
    let extra: Vec<&str> = wanted
        .permissions
        .iter()
        .filter(|p| !ceiling.permissions.contains(p))
        .map(String::as_str)
        .collect();
    if !extra.is_empty() {
        out.push(FieldError::new(
            "permissions",
            format!(
                "The key making this request does not hold {}, so it cannot give it.",
                extra
                    .iter()
                    .map(|p| format!("\"{p}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    if wanted.environment != ceiling.environment {
        out.push(FieldError::new(
            "environment",
            format!(
                "The key making this request is a {} key; it can only manage {} keys.",
                ceiling.environment, ceiling.environment
            ),
        ));
    }
    match (ceiling.expires_at, wanted.expires_at) {
        (Some(limit), None) => out.push(FieldError::new(
            "expiry",
            format!(
                "The key making this request expires at {} UTC; a key it manages must expire by then, not never.",
                limit.format("%Y-%m-%d %H:%M")
            ),
        )),
        (Some(limit), Some(at)) if at > limit => out.push(FieldError::new(
            "expiry",
            format!(
                "The key making this request expires at {} UTC; a key it manages cannot outlive it.",
                limit.format("%Y-%m-%d %H:%M")
            ),
        )),
        _ => {}
    }
    if !ceiling.resources.is_empty() {
        let outside: Vec<&str> = wanted
            .resources
            .iter()
            .filter(|r| !ceiling.resources.contains(r))
            .map(String::as_str)
            .collect();
        if wanted.resources.is_empty() {
            out.push(FieldError::new(
                "resources",
                format!(
                    "The key making this request is limited to {}; a key it manages must be limited to some of them.",
                    ceiling.resources.join(", ")
                ),
            ));
        } else if !outside.is_empty() {
            out.push(FieldError::new(
                "resources",
                format!(
                    "The key making this request is not limited to {}, so it cannot give it.",
                    outside.join(", ")
                ),
            ));
        }
    }
    match (ceiling.rate_limit, wanted.rate_limit) {
        (Some(limit), None) => out.push(FieldError::new(
            "rate_limit",
            format!(
                "The key making this request is limited to {limit} requests a minute; a key it manages needs a limit no higher."
            ),
        )),
        (Some(limit), Some(r)) if r > limit => out.push(FieldError::new(
            "rate_limit",
            format!(
                "The key making this request is limited to {limit} requests a minute; a key it manages cannot allow more."
            ),
        )),
        _ => {}
    }
    match (ceiling.quota_limit, wanted.quota_limit) {
        (Some(limit), None) => out.push(FieldError::new(
            super::quota::LIMIT_FIELD,
            format!(
                "The key making this request has a quota of {}; a key it manages needs a quota no larger.",
                super::quota::thousands(limit)
            ),
        )),
        (Some(limit), Some(q)) if q > limit => out.push(FieldError::new(
            super::quota::LIMIT_FIELD,
            format!(
                "The key making this request has a quota of {}; a key it manages cannot have more.",
                super::quota::thousands(limit)
            ),
        )),
        _ => {}
    }
    if let Some(limit) = Allowlist::from_stored(ceiling.allowed_ips) {
        let shown = limit.entries().join(", ");
        match Allowlist::from_stored(wanted.allowed_ips) {
            None => out.push(FieldError::new(
                allowlist::FIELD,
                format!(
                    "The key making this request may only be used from {shown}; a key it manages needs an allowlist within it."
                ),
            )),
            Some(list) => {
                let outside = limit.uncovered(&list);
                if !outside.is_empty() {
                    out.push(FieldError::new(
                        allowlist::FIELD,
                        format!(
                            "The key making this request may only be used from {shown}, so it cannot allow {}.",
                            outside.join(", ")
                        ),
                    ));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn every_way_of_being_broader_is_named_and_nothing_else() {
        let day = |d: u32| {
            chrono::NaiveDate::from_ymd_opt(2027, 1, d)
                .unwrap()
                .and_hms_opt(0, 0, 0)
                .unwrap()
        };
        let perms = strings(&["keyward:keys:write", "data:read"]);
        let plant = strings(&["plant-1", "plant-2"]);
        let ceiling = Grant {
            permissions: &perms,
            environment: "test",
            expires_at: Some(day(10)),
            resources: &plant,
            rate_limit: Some(100),
            allowed_ips: Some("10.0.0.0/8,127.0.0.2"),
            quota_limit: Some(1000),
        };
        let fields = |g: Grant<'_>| {
            exceeding(&ceiling, &g)
                .into_iter()
                .map(|e| e.field)
                .collect::<Vec<_>>()
        };
        assert!(fields(ceiling).is_empty(), "itself fits");
        let fewer = strings(&["data:read"]);
        let one_plant = strings(&["plant-2"]);
        let narrower = Grant {
            permissions: &fewer,
            expires_at: Some(day(2)),
            resources: &one_plant,
            rate_limit: Some(5),
            allowed_ips: Some("10.1.0.0/16,127.0.0.2"),
            quota_limit: Some(10),
            ..ceiling
        };
        assert!(fields(narrower).is_empty(), "narrower fits");
        let more = strings(&["data:read", "data:write"]);
        let events = strings(&["keyward:events:read"]);
        let elsewhere = strings(&["plant-3"]);
        let none: Vec<String> = Vec::new();
        for (wanted, field) in [
            (
                Grant {
                    permissions: &more,
                    ..ceiling
                },
                "permissions",
            ),
            (
                Grant {
                    permissions: &events,
                    ..ceiling
                },
                "permissions",
            ),
            (
                Grant {
                    environment: "live",
                    ..ceiling
                },
                "environment",
            ),
            (
                Grant {
                    expires_at: Some(day(11)),
                    ..ceiling
                },
                "expiry",
            ),
            (
                Grant {
                    expires_at: None,
                    ..ceiling
                },
                "expiry",
            ),
            (
                Grant {
                    resources: &none,
                    ..ceiling
                },
                "resources",
            ),
            (
                Grant {
                    resources: &elsewhere,
                    ..ceiling
                },
                "resources",
            ),
            (
                Grant {
                    rate_limit: None,
                    ..ceiling
                },
                "rate_limit",
            ),
            (
                Grant {
                    rate_limit: Some(101),
                    ..ceiling
                },
                "rate_limit",
            ),
            (
                Grant {
                    allowed_ips: None,
                    ..ceiling
                },
                "allowed_ips",
            ),
            (
                Grant {
                    allowed_ips: Some("10.0.0.0/7"),
                    ..ceiling
                },
                "allowed_ips",
            ),
            (
                Grant {
                    allowed_ips: Some("10.0.0.1,127.0.0.3"),
                    ..ceiling
                },
                "allowed_ips",
            ),
            (
                Grant {
                    quota_limit: None,
                    ..ceiling
                },
                "quota_limit",
            ),
            (
                Grant {
                    quota_limit: Some(1001),
                    ..ceiling
                },
                "quota_limit",
            ),
        ] {
            assert_eq!(fields(wanted), vec![field], "{wanted:?}");
        }
        let outside = exceeding(
            &ceiling,
            &Grant {
                allowed_ips: Some("10.0.0.1,127.0.0.3,::1"),
                ..ceiling
            },
        );
        assert!(
            outside[0].message.ends_with("cannot allow 127.0.0.3, ::1."),
            "only the entries outside are named: {}",
            outside[0].message
        );
        // An unlimited ceiling bounds nothing but permissions and environment.
        let open = Grant {
            permissions: &perms,
            environment: "test",
            expires_at: None,
            resources: &none,
            rate_limit: None,
            allowed_ips: None,
            quota_limit: None,
        };
        let wide = Grant {
            expires_at: None,
            resources: &none,
            rate_limit: None,
            allowed_ips: None,
            quota_limit: None,
            ..ceiling
        };
        assert!(exceeding(&open, &wide).is_empty());
        // Several at once: each named.
        let all = Grant {
            permissions: &more,
            environment: "live",
            expires_at: None,
            resources: &none,
            rate_limit: None,
            allowed_ips: None,
            quota_limit: None,
        };
        assert_eq!(
            fields(all),
            vec![
                "permissions",
                "environment",
                "expiry",
                "resources",
                "rate_limit",
                "quota_limit",
                "allowed_ips"
            ]
        );
    }
}
