//! The audit trail in words: one sentence per event ("Ada Admin revoked the
//! workspace key “ERP connector”") and its recorded fields as labelled
//! pairs, for the Events page and a key's History.

use serde_json::Value;

/// Every action the application records (the Events filter offers them).
/// Each must have a sentence: see the tests.
pub const ACTIONS: [&str; 52] = [
    "login.succeeded",
    "login.failed",
    "logout",
    "workspace.setup",
    "workspace.created",
    "user.added",
    "user.joined",
    "user.declined",
    "user.invite_renewed",
    "user.password_set",
    "user.password_changed",
    "user.role_changed",
    "user.removed",
    // Single sign-on (issue 26).
    "user.sso_linked",
    "user.sso_joined",
    "workspace.sso_settings_changed",
    // Service accounts.
    "service_account.created",
    "service_account.changed",
    "service_account.disabled",
    "service_account.enabled",
    "service_account.deleted",
    // Plans (issue 23).
    "plan.created",
    "plan.updated",
    "plan.deleted",
    "key.created",
    "key.updated",
    "key.disabled",
    "key.enabled",
    "key.regenerated",
    "key.grace_ended",
    "key.quota_topped_up",
    "key.revoked",
    "key.deleted",
    "key.reviewed",
    "key.leaked",
    "key.expiring",
    "key.expired",
    // Recoverable keys (issue 27).
    "key.secret_shown",
    "settings.recoverable_keys_enabled",
    "settings.recoverable_keys_disabled",
    "settings.api_keys_disabled",
    "settings.api_keys_enabled",
    "settings.changed",
    "permission.added",
    "permission.described",
    "permission.retired",
    "permission.restored",
    // Notifications.
    "webhook.created",
    "webhook.updated",
    "webhook.deleted",
    "webhook.secret_rolled",
    "webhook.failing",
];

/// An action's name for the Events filter: `key.revoked` → "Key revoked".
pub fn action_label(action: &str) -> String {
    let text = match action {
        "login.succeeded" => "Signed in",
        "login.failed" => "Sign-in failed",
        "logout" => "Signed out",
        "workspace.setup" => "Workspace set up",
        "workspace.created" => "Workspace created",
        "user.joined" => "User joined (invitation accepted)",
        "user.declined" => "Invitation declined",
        "user.invite_renewed" => "User invitation renewed",
        "user.password_set" => "User joined (password chosen)",
        "user.sso_linked" => "Single sign-on linked",
        "user.sso_joined" => "User joined through single sign-on",
        "workspace.sso_settings_changed" => "Single sign-on settings changed",
        "settings.api_keys_disabled" => "API keys switched off",
        "settings.api_keys_enabled" => "API keys switched on",
        "settings.changed" => "Setting changed",
        "key.secret_shown" => "Key secret shown again",
        "settings.recoverable_keys_enabled" => "Recoverable keys turned on",
        "settings.recoverable_keys_disabled" => "Recoverable keys turned off",
        other => return label(&other.split('.').collect::<Vec<_>>()),
    };
    text.to_owned()
}

/// What a sentence is made of.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    pub action: &'a str,
    /// The actor's name, or their email when the name is unknown.
    pub actor: &'a str,
    /// The target's name (a key's name, a user's email, a permission).
    pub target: Option<&'a str>,
    /// For key events: `personal`, `service` or `workspace`, when known.
    pub key_kind: Option<&'a str>,
    /// The recorded details (a JSON object).
    pub details: &'a Value,
}

fn quoted(s: Option<&str>) -> String {
    format!("“{}”", s.unwrap_or("(unnamed)"))
}

/// `text` with its first letter in capitals ("the key …" → "The key …").
fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

fn role_phrase(role: &str) -> &str {
    match role {
        "admin" => "an admin",
        "normal" => "a normal user",
        "operator" => "an operator",
        other => other,
    }
}

/// A setting's name as the Settings page calls it.
fn setting_name(s: &str) -> String {
    match s {
        "max_expiry_days" => "maximum expiry for new keys".to_owned(),
        "max_keys_per_user" => "maximum keys per user".to_owned(),
        "default_rate_limit" => "default rate limit".to_owned(),
        "reminder_days" => "expiry reminder days".to_owned(),
        "api_keys_enabled" => "API keys enabled".to_owned(),
        "leak_response" => "response to leaked keys".to_owned(),
        other => other.replace('_', " "),
    }
}

/// Write every time among an event's details (fields named `…_at` or
/// `…_until`, at any depth) as [`time::rfc3339`], the form of the event's
/// own `time`: `NaiveDateTime` serialises without a zone, and details
/// recorded before this rule are read through it too. Only those names are
/// touched, so a key named like a date stays as it was typed.
///
/// [`time::rfc3339`]: crate::domain::time::rfc3339
pub fn utc_times(details: &mut Value) {
    match details {
        Value::Object(map) => {
            for (name, v) in map.iter_mut() {
                let timed = name.ends_with("_at") || name.ends_with("_until");
                match v {
                    Value::String(s) if timed => {
                        if let Some(t) = crate::domain::time::parse_utc(s) {
                            *s = crate::domain::time::rfc3339(t);
                        }
                    }
                    other => utc_times(other),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(utc_times),
        _ => {}
    }
}

/// A recorded value in words.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::Null => "none".to_owned(),
        Value::Bool(true) => "yes".to_owned(),
        Value::Bool(false) => "no".to_owned(),
        Value::String(s) if s.is_empty() => "(empty)".to_owned(),
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) if items.is_empty() => "none".to_owned(),
        Value::Array(items) => items.iter().map(value_text).collect::<Vec<_>>().join(", "),
        Value::Object(_) => v.to_string(),
    }
}

/// The sentence for an event, or `None` for an action this version does
/// not know (an event written by a newer version, say).
pub fn sentence(f: &Facts<'_>) -> Option<String> {
    let actor = f.actor;
    let d = f.details;
    let field = |name: &str| d.get(name).map(value_text);
    let key = || {
        let kind = match f.key_kind {
            Some("personal") => "personal key",
            Some("workspace") => "workspace key",
            Some("service") => "service account key",
            _ => "key",
        };
        format!("the {kind} {}", quoted(f.target))
    };
    let target = || f.target.unwrap_or("a user").to_owned();
    Some(match f.action {
        "login.succeeded" => match field("provider") {
            Some(p) => format!("{actor} signed in through single sign-on ({p})"),
            None => format!("{actor} signed in"),
        },
        "login.failed" => format!("A sign-in as {} failed: wrong password", target()),
        "logout" => format!("{actor} signed out"),
        "workspace.setup" => format!("{actor} set up the workspace {}", quoted(f.target)),
        "workspace.created" => match field("admin") {
            Some(admin) => format!(
                "{actor} created the workspace {} with {admin} as its admin",
                quoted(f.target)
            ),
            None => format!("{actor} created the workspace {}", quoted(f.target)),
        },
        "user.joined" => format!("{actor} accepted the invitation and joined the workspace"),
        "user.declined" => format!("{actor} declined the invitation to the workspace"),
        "user.added" => match field("role") {
            Some(role) => format!("{actor} added {} as {}", target(), role_phrase(&role)),
            None => format!("{actor} added {}", target()),
        },
        "user.invite_renewed" => format!("{actor} made a new invitation link for {}", target()),
        "user.password_set" => format!("{actor} chose a password and joined the workspace"),
        "user.password_changed" => format!("{actor} changed their password"),
        "user.sso_linked" => match field("provider") {
            Some(p) => format!("{actor} linked their account to single sign-on through {p}"),
            None => format!("{actor} linked their account to single sign-on"),
        },
        "user.sso_joined" => match (field("provider"), field("role")) {
            (Some(p), Some(role)) => {
                format!("{actor} joined the workspace through single sign-on ({p}) as {role}")
            }
            _ => format!("{actor} joined the workspace through single sign-on"),
        },
        "workspace.sso_settings_changed" => match field("changed") {
            Some(what) if what != "none" => format!(
                "{actor} changed the workspace's single sign-on settings ({})",
                what.replace('_', " ")
            ),
            _ => format!("{actor} changed the workspace's single sign-on settings"),
        },
        "user.role_changed" => match (field("old"), field("new")) {
            (Some(old), Some(new)) => format!(
                "{actor} changed the role of {} from {old} to {new}",
                target()
            ),
            _ => format!("{actor} changed the role of {}", target()),
        },
        "user.removed" => format!("{actor} removed {} from the workspace", target()),
        "service_account.created" => match field("role") {
            Some(role) => format!(
                "{actor} created the service account {} as {}",
                quoted(f.target),
                role_phrase(&role)
            ),
            None => format!("{actor} created the service account {}", quoted(f.target)),
        },
        "service_account.changed" => {
            let old_role = d.pointer("/old/role").and_then(Value::as_str);
            let new_role = d.pointer("/new/role").and_then(Value::as_str);
            match (old_role, new_role) {
                (Some(o), Some(n)) if o != n => format!(
                    "{actor} edited the service account {} (role from {o} to {n})",
                    quoted(f.target)
                ),
                _ => format!("{actor} edited the service account {}", quoted(f.target)),
            }
        }
        "service_account.disabled" => format!(
            "{actor} disabled the service account {}; its keys stopped working",
            quoted(f.target)
        ),
        "service_account.enabled" => format!(
            "{actor} enabled the service account {}; its keys work again",
            quoted(f.target)
        ),
        "service_account.deleted" => match field("keys_revoked") {
            Some(n) if n != "0" => format!(
                "{actor} deleted the service account {} and revoked its {n} key(s)",
                quoted(f.target)
            ),
            _ => format!("{actor} deleted the service account {}", quoted(f.target)),
        },
        "plan.created" => format!("{actor} created the plan {}", quoted(f.target)),
        "plan.updated" => match field("keys") {
            Some(n) => format!(
                "{actor} edited the plan {}, which reaches {n} key(s)",
                quoted(f.target)
            ),
            None => format!("{actor} edited the plan {}", quoted(f.target)),
        },
        "plan.deleted" => match field("keys") {
            Some(n) if n != "0" => format!(
                "{actor} deleted the plan {}; its {n} key(s) keep its settings as their own",
                quoted(f.target)
            ),
            _ => format!("{actor} deleted the plan {}", quoted(f.target)),
        },
        "key.created" => format!("{actor} created {}", key()),
        "key.updated" => {
            let old_name = d.pointer("/old/name").and_then(Value::as_str);
            let new_name = d.pointer("/new/name").and_then(Value::as_str);
            // Allowlist and quota changes are what an incident review looks
            // for: the sentence says so (the values are in the details).
            let mut changed = match (d.pointer("/old/allowed_ips"), d.pointer("/new/allowed_ips")) {
                (Some(o), Some(n)) if o != n => "; changed its IP allowlist".to_owned(),
                _ => String::new(),
            };
            if let (Some(o), Some(n)) = (d.pointer("/old/quota"), d.pointer("/new/quota"))
                && o != n
            {
                changed.push_str("; changed its usage quota");
            }
            if let (Some(o), Some(n)) = (d.pointer("/old/plan"), d.pointer("/new/plan"))
                && o != n
            {
                changed.push_str(if n.is_null() {
                    "; took it off its plan"
                } else {
                    "; put it on a plan"
                });
            }
            match (old_name, new_name) {
                (Some(o), Some(n)) if o != n => {
                    format!(
                        "{actor} edited {} (renamed from {}){changed}",
                        key(),
                        quoted(Some(o))
                    )
                }
                _ => format!("{actor} edited {}{changed}", key()),
            }
        }
        "key.quota_topped_up" => match (d.get("set").filter(|v| !v.is_null()), field("add")) {
            (Some(set), _) => format!(
                "{actor} set what is left of the quota of {} to {} (it was {})",
                key(),
                value_text(set),
                field("before").unwrap_or_default()
            ),
            (None, Some(add)) => format!(
                "{actor} topped up the quota of {} by {add} (now {})",
                key(),
                field("after").unwrap_or_default()
            ),
            _ => format!("{actor} topped up the quota of {}", key()),
        },
        "key.grace_ended" => format!(
            "{actor} ended the grace period of the previous secret of {}",
            key()
        ),
        "key.disabled" => format!("{actor} disabled {}", key()),
        "key.enabled" => format!("{actor} enabled {}", key()),
        "key.regenerated" => match d.get("old_secret_valid_until").filter(|v| !v.is_null()) {
            Some(until) => format!(
                "{actor} regenerated {}; the old secret worked until {} UTC",
                key(),
                until
                    .as_str()
                    .and_then(crate::domain::time::parse_utc)
                    .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                    .unwrap_or_else(|| value_text(until))
            ),
            None => format!("{actor} regenerated {}", key()),
        },
        "key.revoked" => match (field("reason"), d.get("bulk")) {
            (Some(reason), _) if reason == "owner removed" => {
                format!("{actor} revoked {} by removing its owner", key())
            }
            (Some(reason), _) if reason == "leaked" => {
                format!("{actor} revoked {} because it was reported leaked", key())
            }
            (_, Some(Value::Bool(true))) => {
                format!("{actor} revoked {} (one of several at once)", key())
            }
            _ => format!("{actor} revoked {}", key()),
        },
        "key.deleted" => format!("{actor} deleted {}", key()),
        "key.leaked" => {
            let found = match field("url") {
                Some(url) => format!(" at {url}"),
                None => String::new(),
            };
            match field("action").as_deref() {
                Some("revoked") => {
                    format!("{actor} reported {} leaked{found}; it was revoked", key())
                }
                _ => format!("{actor} reported {} leaked{found}", key()),
            }
        }
        "key.reviewed" => format!("{actor} marked {} as reviewed", key()),
        // Recorded by the expiry scan ("system"): no one did it.
        "key.expiring" => {
            let when = match d.get("days_left").and_then(Value::as_i64) {
                Some(0) => "within a day".to_owned(),
                Some(1) => "in 1 day".to_owned(),
                Some(n) => format!("in {n} days"),
                None => "soon".to_owned(),
            };
            let at = field("expires_at").map_or_else(String::new, |t| format!(" ({t})"));
            capitalized(&format!("{} expires {when}{at}", key()))
        }
        "key.expired" => {
            let at = field("expires_at").map_or_else(String::new, |t| format!(" at {t}"));
            capitalized(&format!("{} expired{at}", key()))
        }
        "key.secret_shown" => format!("{actor} was shown the secret of {} again", key()),
        "settings.recoverable_keys_enabled" => {
            format!("{actor} turned recoverable keys on for the workspace")
        }
        "settings.recoverable_keys_disabled" => match d.get("destroyed").and_then(Value::as_u64) {
            Some(n) if n > 0 => format!(
                "{actor} turned recoverable keys off; the stored secrets of {n} key{} were destroyed",
                if n == 1 { "" } else { "s" }
            ),
            _ => format!("{actor} turned recoverable keys off"),
        },
        "settings.api_keys_disabled" => {
            format!("{actor} switched API keys off for the workspace")
        }
        "settings.api_keys_enabled" => format!("{actor} switched API keys back on"),
        "settings.changed" => {
            let name =
                field("setting").map_or_else(|| "a setting".to_owned(), |s| setting_name(&s));
            match (field("old"), field("new")) {
                (Some(old), Some(new)) => {
                    format!("{actor} changed the {name} from {old} to {new}")
                }
                _ => format!("{actor} changed the {name}"),
            }
        }
        "permission.added" => format!("{actor} added the permission {}", quoted(f.target)),
        "permission.described" => format!(
            "{actor} changed the description of the permission {}",
            quoted(f.target)
        ),
        "permission.retired" => format!("{actor} retired the permission {}", quoted(f.target)),
        "permission.restored" => {
            format!("{actor} restored the permission {}", quoted(f.target))
        }
        "webhook.created" => format!("{actor} added the webhook endpoint {}", quoted(f.target)),
        "webhook.updated" => format!("{actor} edited the webhook endpoint {}", quoted(f.target)),
        "webhook.deleted" => format!("{actor} deleted the webhook endpoint {}", quoted(f.target)),
        "webhook.secret_rolled" => format!(
            "{actor} rolled the signing secret of the webhook endpoint {}",
            quoted(f.target)
        ),
        "webhook.failing" => format!(
            "Deliveries to the webhook endpoint {} failed for about a day; it is marked failing",
            quoted(f.target)
        ),
        _ => return None,
    })
}

/// A field name as a label: `old_secret_valid_until` → "Old secret valid until".
fn label(path: &[&str]) -> String {
    let joined = path.join(" ").replace('_', " ");
    let mut chars = joined.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => joined,
    }
}

/// The recorded details as (label, value) pairs, nested objects flattened
/// ("Old name", "New tags"), in recorded order.
pub fn fields(details: &Value) -> Vec<(String, String)> {
    fn walk<'a>(v: &'a Value, path: &mut Vec<&'a str>, out: &mut Vec<(String, String)>) {
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    path.push(k);
                    walk(v, path, out);
                    path.pop();
                }
            }
            other if !path.is_empty() => out.push((label(path), value_text(other))),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(details, &mut Vec::new(), &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn say(action: &str, details: Value) -> Option<String> {
        sentence(&Facts {
            action,
            actor: "Ada Admin",
            target: Some("ERP connector"),
            key_kind: Some("workspace"),
            details: &details,
        })
    }

    #[test]
    fn every_recorded_action_has_a_sentence() {
        for action in ACTIONS {
            let s = say(action, json!({})).unwrap_or_else(|| panic!("no sentence for {action}"));
            assert!(!s.contains(action), "{action}: {s}");
        }
        assert_eq!(say("key.teleported", json!({})), None);
    }

    /// Every action literal in a file that records events is in
    /// [`ACTIONS`], so a new `events::record(…, "x.y", …)` without a
    /// sentence fails here.
    #[test]
    fn every_action_the_code_records_is_listed() {
        let mut found = Vec::new();
        let mut stack = vec![std::path::PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src"
        ))];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                if !text.contains("events::record(") || path.ends_with("domain/audit.rs") {
                    continue;
                }
                // Quotes that do not open or close a string literal (escaped
                // ones, the char '"') would shift which parts are strings.
                let text = text
                    .replace("\\\\", "")
                    .replace("\\\"", "")
                    .replace("'\"'", "''");
                for (i, part) in text.split('"').enumerate() {
                    let (a, b) = part.split_once('.').unwrap_or((part, ""));
                    let word = |s: &str| {
                        !s.is_empty() && s.bytes().all(|c| c.is_ascii_lowercase() || c == b'_')
                    };
                    let dotted =
                        word(a) && word(b) && !matches!(b, "db" | "css" | "js" | "html" | "local");
                    if i % 2 == 1 && (dotted || part == "logout") {
                        found.push((part.to_owned(), path.display().to_string()));
                    }
                }
            }
        }
        assert!(
            found.len() >= ACTIONS.len(),
            "the scan finds the actions: {found:?}"
        );
        for (action, file) in found {
            assert!(
                ACTIONS.contains(&action.as_str()),
                "{file} records \"{action}\", which has no sentence: add it to ACTIONS and sentence()"
            );
        }
    }

    #[test]
    fn expiry_sentences_say_when_without_an_actor() {
        assert_eq!(
            say(
                "key.expiring",
                json!({"days_left": 7, "expires_at": "2026-12-12T10:00:00Z"})
            )
            .unwrap(),
            "The workspace key “ERP connector” expires in 7 days (2026-12-12T10:00:00Z)"
        );
        assert_eq!(
            say("key.expiring", json!({"days_left": 0})).unwrap(),
            "The workspace key “ERP connector” expires within a day"
        );
        assert_eq!(
            say("key.expired", json!({"expires_at": "2026-12-12T10:00:00Z"})).unwrap(),
            "The workspace key “ERP connector” expired at 2026-12-12T10:00:00Z"
        );
    }

    #[test]
    fn sentences_name_who_did_what_to_which_key() {
        assert_eq!(
            say("key.revoked", json!({})).unwrap(),
            "Ada Admin revoked the workspace key “ERP connector”"
        );
        assert_eq!(
            say("key.revoked", json!({"reason": "owner removed"})).unwrap(),
            "Ada Admin revoked the workspace key “ERP connector” by removing its owner"
        );
        assert_eq!(
            say(
                "key.updated",
                json!({"old": {"name": "ERP"}, "new": {"name": "ERP connector"}})
            )
            .unwrap(),
            "Ada Admin edited the workspace key “ERP connector” (renamed from “ERP”)"
        );
        assert_eq!(
            say(
                "key.updated",
                json!({"old": {"name": "ERP", "allowed_ips": []}, "new": {"name": "ERP", "allowed_ips": ["10.0.0.0/8"]}})
            )
            .unwrap(),
            "Ada Admin edited the workspace key “ERP connector”; changed its IP allowlist"
        );
        assert_eq!(
            say(
                "settings.changed",
                json!({"setting": "max_keys_per_user", "old": 3, "new": 5})
            )
            .unwrap(),
            "Ada Admin changed the maximum keys per user from 3 to 5"
        );
    }

    #[test]
    fn times_in_details_are_utc_like_the_events_own() {
        let mut d = json!({
            "expires_at": "2026-12-04T16:35:09.123456",
            "old_secret_valid_until": "2026-12-04T17:35:09",
            "name": "2026-12-04T16:35:09",
            "new": {"expires_at": "2026-12-05T00:00:00Z", "created_at": null},
            "list": [{"revoked_at": "2026-01-02T03:04:05"}],
        });
        utc_times(&mut d);
        assert_eq!(
            d,
            json!({
                "expires_at": "2026-12-04T16:35:09Z",
                "old_secret_valid_until": "2026-12-04T17:35:09Z",
                "name": "2026-12-04T16:35:09",
                "new": {"expires_at": "2026-12-05T00:00:00Z", "created_at": null},
                "list": [{"revoked_at": "2026-01-02T03:04:05Z"}],
            })
        );
        assert_eq!(
            say(
                "key.regenerated",
                json!({"old_secret_valid_until": "2026-12-04T17:35:09Z"})
            )
            .unwrap(),
            "Ada Admin regenerated the workspace key “ERP connector”; the old secret worked until 2026-12-04 17:35:09 UTC"
        );
    }

    #[test]
    fn actions_have_readable_names() {
        assert_eq!(action_label("key.revoked"), "Key revoked");
        assert_eq!(action_label("user.role_changed"), "User role changed");
        assert_eq!(action_label("logout"), "Signed out");
    }

    #[test]
    fn details_are_labelled_pairs_not_json() {
        let f = fields(&json!({
            "old": {"name": "a", "tags": ["x", "y"]},
            "expires_at": null,
            "bulk": true,
        }));
        assert!(f.contains(&("Old name".into(), "a".into())), "{f:?}");
        assert!(f.contains(&("Old tags".into(), "x, y".into())));
        assert!(f.contains(&("Expires at".into(), "none".into())));
        assert!(f.contains(&("Bulk".into(), "yes".into())));
        assert!(fields(&json!({})).is_empty());
    }
}
