//! The JSON answers of a key check: `/me`'s key facts and `/keys/verify`'s
//! verdict, written straight into one buffer sized for them.
//!
//! A check is the hot path (issue 29 §3), and `serde_json` through a derived
//! `Serialize` was a third of what `/me` spends beyond `/healthz`: every
//! member name went through its escaping loop byte by byte, each time a
//! time was formatted it allocated a `String`, and the buffer grew twice on
//! the way to 300 bytes. Here the member names and punctuation are written
//! as they are, numbers with `itoa`, times from their parts, and any text
//! that came from a user or the database (names, emails, permissions,
//! messages, even ids) is scanned once: written as it is when nothing in it
//! needs escaping, else escaped by `serde_json` itself. The shapes are the
//! OpenAPI document's `KeyFacts` and `VerifyResponse`: the tests hold the
//! writer to the document's members, and to `serde_json` byte for byte.

use crate::verify::Verified;
use chrono::{Datelike, NaiveDateTime, Timelike};

/// A JSON text being written: `/me`'s answer is about 300 bytes, a
/// verdict's about 360, so one allocation holds either.
pub(super) struct Json(Vec<u8>);

impl Json {
    pub(super) fn new() -> Self {
        Json(Vec::with_capacity(512))
    }

    pub(super) fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    /// JSON syntax and member names: written as they are.
    fn raw(&mut self, s: &str) {
        self.0.extend_from_slice(s.as_bytes());
    }

    /// `null`, or the value as `write` writes it.
    fn nullable<T>(&mut self, value: Option<T>, write: impl FnOnce(&mut Self, T)) {
        match value {
            Some(v) => write(self, v),
            None => self.raw("null"),
        }
    }

    /// A string value. What JSON requires escaped (a quote, a backslash, a
    /// control character) sends the text through `serde_json`'s escaping;
    /// anything else (every id, time and almost every name) is copied.
    fn string(&mut self, s: &str) {
        // No early exit: the compiler checks 16 bytes at a time.
        let escape = s
            .bytes()
            .fold(false, |e, b| e | (b < 0x20) | (b == b'"') | (b == b'\\'));
        if escape {
            serde_json::to_writer(&mut self.0, s).expect("writing to a Vec cannot fail");
        } else {
            self.0.reserve(s.len() + 2);
            self.0.push(b'"');
            self.0.extend_from_slice(s.as_bytes());
            self.0.push(b'"');
        }
    }

    fn int(&mut self, n: impl itoa::Integer) {
        self.0
            .extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    }

    /// A UTC time as [`crate::domain::time::rfc3339`] writes it
    /// (`2026-11-23T10:00:00Z`), from its parts; a year outside 0–9999
    /// (which RFC 3339 cannot hold as four digits) is left to chrono.
    fn time(&mut self, t: NaiveDateTime) {
        let year = t.year();
        if !(0..=9999).contains(&year) {
            return self.string(&crate::domain::time::rfc3339(t));
        }
        let mut text = *b"\"0000-00-00T00:00:00Z\"";
        let mut two = |at: usize, n: u32| {
            text[at] = b'0' + (n / 10) as u8;
            text[at + 1] = b'0' + (n % 10) as u8;
        };
        two(1, year as u32 / 100);
        two(3, year as u32 % 100);
        two(6, t.month());
        two(9, t.day());
        two(12, t.hour());
        two(15, t.minute());
        two(18, t.second());
        self.0.extend_from_slice(&text);
    }

    fn list<'a>(&mut self, items: impl Iterator<Item = &'a str>) {
        self.raw("[");
        for (i, item) in items.enumerate() {
            if i > 0 {
                self.raw(",");
            }
            self.string(item);
        }
        self.raw("]");
    }
}

/// A key's facts as its holder may see them (`KeyFacts` in the OpenAPI
/// document), from the cached record of the check.
pub(super) fn key_facts(out: &mut Json, v: &Verified) {
    let k = &v.record;
    out.raw("{\"id\":");
    out.string(k.id());
    out.raw(",\"name\":");
    out.string(k.name());
    out.raw(",\"kind\":");
    out.string(k.owner_kind());
    out.raw(",\"owner\":");
    out.nullable(k.owner_id(), |out, id| {
        out.raw("{\"id\":");
        out.string(id);
        out.raw(",\"email\":");
        out.nullable(k.owner_email(), Json::string);
        out.raw("}");
    });
    out.raw(",\"workspace_id\":");
    out.string(k.workspace_id());
    out.raw(",\"environment\":");
    out.string(k.environment.as_str());
    out.raw(",\"permissions\":");
    out.list(k.permissions().iter());
    out.raw(",\"resources\":");
    out.list(k.resources().iter());
    out.raw(",\"expires_at\":");
    out.nullable(k.expires_at, Json::time);
    out.raw(",\"rate_limit_per_minute\":");
    out.nullable(k.rate_limit, Json::int);
    out.raw(",\"quota\":");
    out.nullable(k.quota.as_deref(), |out, q| {
        out.raw("{\"limit\":");
        out.int(q.limit);
        out.raw(",\"period\":");
        out.string(crate::domain::quota::period_name(q));
        out.raw(",\"refill\":");
        let refill = q.refill.filter(|(amount, _)| *amount < q.limit);
        out.nullable(refill, |out, (amount, period)| {
            out.raw("{\"amount\":");
            out.int(amount);
            out.raw(",\"period\":");
            out.string(period.as_str());
            out.raw("}");
        });
        out.raw(",\"remaining\":");
        out.nullable(v.quota, Json::int);
        // The next period's start: the clock's microseconds do not
        // matter here (no truncation, unlike a stored time).
        out.raw(",\"resets_at\":");
        out.nullable(q.refills_at(chrono::Utc::now().naive_utc()), Json::time);
        out.raw("}");
    });
    out.raw(",\"allowed_ips\":");
    match &k.allowlist {
        Some(list) => out.list(list.entries().iter().map(String::as_str)),
        None => out.raw("[]"),
    }
    out.raw(",\"created_at\":");
    out.time(k.created_at);
    out.raw("}");
}

/// `/keys/verify`'s answer (`VerifyResponse` in the OpenAPI document):
/// `status` and `retry_after` only when set, `key` whenever the key was
/// identified.
pub(super) struct Verdict<'a> {
    pub valid: bool,
    pub code: &'a str,
    pub message: &'a str,
    pub status: Option<u16>,
    pub retry_after: Option<u64>,
    pub key: Option<&'a Verified>,
}

pub(super) fn verdict(out: &mut Json, v: &Verdict<'_>) {
    out.raw(if v.valid {
        "{\"valid\":true,\"code\":"
    } else {
        "{\"valid\":false,\"code\":"
    });
    out.string(v.code);
    out.raw(",\"message\":");
    out.string(v.message);
    if let Some(status) = v.status {
        out.raw(",\"status\":");
        out.int(status);
    }
    if let Some(retry) = v.retry_after {
        out.raw(",\"retry_after\":");
        out.int(retry);
    }
    if let Some(key) = v.key {
        out.raw(",\"key\":");
        key_facts(out, key);
    }
    out.raw("}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::keys::{AuthColumns, AuthContext, AuthRecord};
    use crate::domain::time::rfc3339;
    use chrono::{DateTime, NaiveDate};
    use proptest::prelude::*;
    use serde_json::{Value, json};
    use std::sync::Arc;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, mo, d)
            .unwrap()
            .and_hms_micro_opt(h, mi, s, 123_456)
            .unwrap()
    }

    /// A cached record as the database gives it, with `edit` applied to
    /// the columns first.
    fn verified(edit: impl FnOnce(&mut AuthColumns), email: Option<&str>) -> Verified {
        let mut columns = AuthColumns {
            name: "Grafana (production)".into(),
            created_at: at(2026, 11, 23, 10, 0, 7),
            ..AuthColumns::for_test(
                "key_7Hq2LmZ0aB3cD4eF5gH6iJ",
                "wsp_X3nEMhOfzKymd3CjJBKQny",
                &"00".repeat(32),
                1,
            )
        };
        edit(&mut columns);
        let context = AuthContext {
            owner_email: email.map(str::to_owned),
            ..Default::default()
        };
        Verified {
            record: Arc::new(crate::verify::cache::CachedKey::new(AuthRecord::new(
                columns, context,
            ))),
            rate: None,
            quota: None,
            stale_age: None,
        }
    }

    fn facts(v: &Verified) -> Value {
        let mut out = Json::new();
        key_facts(&mut out, v);
        serde_json::from_slice(&out.into_bytes()).expect("the answer is JSON")
    }

    #[test]
    fn a_plain_workspace_key_answers_every_member_with_nulls_and_empty_lists() {
        assert_eq!(
            facts(&verified(|_| {}, None)),
            json!({
                "id": "key_7Hq2LmZ0aB3cD4eF5gH6iJ",
                "name": "Grafana (production)",
                "kind": "workspace",
                "owner": null,
                "workspace_id": "wsp_X3nEMhOfzKymd3CjJBKQny",
                "environment": "live",
                "permissions": [],
                "resources": [],
                "expires_at": null,
                "rate_limit_per_minute": null,
                "quota": null,
                "allowed_ips": [],
                "created_at": "2026-11-23T10:00:07Z",
            })
        );
    }

    #[test]
    fn a_personal_key_with_every_policy_answers_them_all() {
        let v = Verified {
            quota: Some(958),
            ..verified(
                |k| {
                    k.kind = "personal".into();
                    k.owner_id = Some("usr_5tY6uI7oP8aS9dF0gH1jK2".into());
                    k.environment = "test".into();
                    k.name = "ERP \"nightly\" \\ export\n\tline two ✓ 🔑".into();
                    k.permissions = r#"["data:read","reports:write"]"#.into();
                    k.resources = r#"["plant/7","line \"A\""]"#.into();
                    k.expires_at = Some(at(2027, 1, 2, 3, 4, 5));
                    k.rate_limit = Some(600);
                    k.allowed_ips = Some("203.0.113.7, 198.51.100.0/24".into());
                    k.quota_limit = Some(1000);
                    k.quota_refill = Some(100);
                    k.quota_period = Some("day".into());
                },
                Some("zoë.o'neil@example.com"),
            )
        };
        let answer = facts(&v);
        let resets = v
            .record
            .quota
            .as_deref()
            .unwrap()
            .refills_at(chrono::Utc::now().naive_utc());
        assert_eq!(
            answer,
            json!({
                "id": "key_7Hq2LmZ0aB3cD4eF5gH6iJ",
                "name": "ERP \"nightly\" \\ export\n\tline two ✓ 🔑",
                "kind": "personal",
                "owner": {"id": "usr_5tY6uI7oP8aS9dF0gH1jK2", "email": "zoë.o'neil@example.com"},
                "workspace_id": "wsp_X3nEMhOfzKymd3CjJBKQny",
                "environment": "test",
                "permissions": ["data:read", "reports:write"],
                "resources": ["plant/7", "line \"A\""],
                "expires_at": "2027-01-02T03:04:05Z",
                "rate_limit_per_minute": 600,
                "quota": {
                    "limit": 1000,
                    "period": "total",
                    "refill": {"amount": 100, "period": "day"},
                    "remaining": 958,
                    "resets_at": resets.map(rfc3339),
                },
                "allowed_ips": ["203.0.113.7", "198.51.100.0/24"],
                "created_at": "2026-11-23T10:00:07Z",
            })
        );
        assert!(answer["quota"]["resets_at"].is_string());
    }

    #[test]
    fn a_quota_that_comes_back_whole_is_named_by_its_period_without_a_refill() {
        let v = verified(
            |k| {
                k.quota_limit = Some(50);
                k.quota_refill = Some(50);
                k.quota_period = Some("month".into());
            },
            None,
        );
        let quota = &facts(&v)["quota"];
        assert_eq!(quota["period"], "month");
        assert_eq!(quota["refill"], Value::Null);
        assert_eq!(quota["remaining"], Value::Null);
    }

    #[test]
    fn verdicts_carry_status_retry_and_key_only_when_set() {
        let v = verified(|_| {}, None);
        let write = |verdict: &Verdict<'_>| -> Value {
            let mut out = Json::new();
            super::verdict(&mut out, verdict);
            serde_json::from_slice(&out.into_bytes()).unwrap()
        };
        assert_eq!(
            write(&Verdict {
                valid: false,
                code: "RATE_LIMITED",
                message: "Too many \"checks\".",
                status: Some(429),
                retry_after: Some(17),
                key: Some(&v),
            }),
            json!({
                "valid": false,
                "code": "RATE_LIMITED",
                "message": "Too many \"checks\".",
                "status": 429,
                "retry_after": 17,
                "key": facts(&v),
            })
        );
        assert_eq!(
            write(&Verdict {
                valid: false,
                code: "NOT_FOUND",
                message: "No key matches.",
                status: Some(401),
                retry_after: None,
                key: None,
            }),
            json!({"valid": false, "code": "NOT_FOUND", "message": "No key matches.", "status": 401})
        );
    }

    /// The members written are the OpenAPI document's, nested objects too:
    /// what the document promises is what is written.
    #[test]
    fn members_are_the_openapi_documents() {
        let doc: Value = serde_json::from_str(crate::api::openapi::document()).unwrap();
        let schema = |name: &str| -> Vec<String> {
            let mut names: Vec<String> = doc["components"]["schemas"][name]["properties"]
                .as_object()
                .unwrap_or_else(|| panic!("{name} has properties"))
                .keys()
                .cloned()
                .collect();
            names.sort();
            names
        };
        let members = |v: &Value| -> Vec<String> {
            let mut names: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
            names.sort();
            names
        };
        let v = verified(
            |k| {
                k.owner_id = Some("usr_5tY6uI7oP8aS9dF0gH1jK2".into());
                k.kind = "personal".into();
                k.quota_limit = Some(1000);
                k.quota_refill = Some(100);
                k.quota_period = Some("day".into());
            },
            Some("a@example.com"),
        );
        let answer = facts(&v);
        assert_eq!(members(&answer), schema("KeyFacts"));
        assert_eq!(members(&answer["owner"]), schema("KeyOwner"));
        assert_eq!(members(&answer["quota"]), schema("QuotaFacts"));
        assert_eq!(members(&answer["quota"]["refill"]), schema("QuotaRefill"));
        let mut out = Json::new();
        verdict(
            &mut out,
            &Verdict {
                valid: false,
                code: "RATE_LIMITED",
                message: "Slow down.",
                status: Some(429),
                retry_after: Some(3),
                key: Some(&v),
            },
        );
        let answer: Value = serde_json::from_slice(&out.into_bytes()).unwrap();
        assert_eq!(members(&answer), schema("VerifyResponse"));
    }

    proptest! {
        /// Any text is written exactly as serde_json writes it.
        #[test]
        fn strings_are_written_byte_for_byte_as_serde_json_writes_them(s in any::<String>()) {
            let mut out = Json::new();
            out.string(&s);
            prop_assert_eq!(out.into_bytes(), serde_json::to_vec(&s).unwrap());
        }

        /// Any time chrono can hold, the years RFC 3339 cannot write as
        /// four digits too, is written as `rfc3339` writes it.
        #[test]
        fn times_are_written_as_rfc3339_writes_them(secs in -300_000_000_000i64..300_000_000_000) {
            let t = DateTime::from_timestamp(secs, 999_999_000).unwrap().naive_utc();
            let mut out = Json::new();
            out.time(t);
            prop_assert_eq!(out.into_bytes(), serde_json::to_vec(&rfc3339(t)).unwrap());
        }

        #[test]
        fn numbers_are_written_as_serde_json_writes_them(n in any::<i64>()) {
            let mut out = Json::new();
            out.int(n);
            prop_assert_eq!(out.into_bytes(), serde_json::to_vec(&n).unwrap());
        }
    }
}
