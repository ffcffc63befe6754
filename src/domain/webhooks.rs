//! Webhooks without I/O: Standard Webhooks signing, the signing secret's
//! form and its sealing at rest, the retry schedule, and the rules for an
//! endpoint's address and event types.
//!
//! Signing follows <https://www.standardwebhooks.com/> (v1, symmetric):
//! `webhook-signature: v1,<base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}"))>`
//! where the key is the base64 part of the `whsec_…` secret; several
//! signatures are separated by spaces (while a rolled secret's old one is
//! still valid, both are sent).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The prefix of a signing secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// The type of the message "send a test event" sends (not an audit event).
pub const TEST_TYPE: &str = "webhook.test";

/// How long a rolled secret's old value keeps signing (both are sent).
pub const ROLL_OVERLAP: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// A new signing secret: `whsec_` and 32 random bytes in base64.
pub fn new_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{SECRET_PREFIX}{}", B64.encode(bytes))
}

/// The key bytes of a `whsec_…` secret.
fn secret_key(secret: &str) -> Option<Vec<u8>> {
    B64.decode(secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret))
        .ok()
}

/// One `v1,…` signature of a message.
pub fn sign(secret: &str, msg_id: &str, timestamp: i64, body: &str) -> Option<String> {
    let key = secret_key(secret)?;
    let mut mac = HmacSha256::new_from_slice(&key).ok()?;
    mac.update(format!("{msg_id}.{timestamp}.{body}").as_bytes());
    Some(format!("v1,{}", B64.encode(mac.finalize().into_bytes())))
}

/// The `webhook-signature` header for the given secrets (current first).
pub fn signature_header(secrets: &[String], msg_id: &str, timestamp: i64, body: &str) -> String {
    secrets
        .iter()
        .filter_map(|s| sign(s, msg_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The sealing key of secrets at rest, derived from the server secret.
fn sealing_mac(server_secret: &[u8], nonce: &[u8]) -> HmacSha256 {
    let mut mac =
        HmacSha256::new_from_slice(server_secret).expect("HMAC takes a key of any length");
    mac.update(b"keyward webhook secret v1\0");
    mac.update(nonce);
    mac
}

/// Seal a signing secret for the database, so a copy of the database alone
/// does not let anyone forge this keyward's webhooks: the secret's key
/// bytes XORed with HMAC-SHA256(server secret, random nonce), stored as
/// `s1.<nonce>.<sealed>` (base64).
pub fn seal(server_secret: &[u8], secret: &str) -> String {
    let key = secret_key(secret).unwrap_or_default();
    let nonce: [u8; 16] = rand::random();
    let pad = sealing_mac(server_secret, &nonce).finalize().into_bytes();
    let sealed: Vec<u8> = key
        .iter()
        .zip(pad.iter().cycle())
        .map(|(a, b)| a ^ b)
        .collect();
    format!("s1.{}.{}", B64.encode(nonce), B64.encode(sealed))
}

/// The `whsec_…` secret of a sealed value (`None` when it was sealed with
/// another server secret or is damaged).
pub fn unseal(server_secret: &[u8], sealed: &str) -> Option<String> {
    let mut parts = sealed.split('.');
    if parts.next()? != "s1" {
        return None;
    }
    let nonce = B64.decode(parts.next()?).ok()?;
    let body = B64.decode(parts.next()?).ok()?;
    if body.len() > 32 {
        return None;
    }
    let pad = sealing_mac(server_secret, &nonce).finalize().into_bytes();
    let key: Vec<u8> = body.iter().zip(pad.iter()).map(|(a, b)| a ^ b).collect();
    Some(format!("{SECRET_PREFIX}{}", B64.encode(key)))
}

/// Waits before each retry: 5 s, 30 s, 2 min, 10 min, 30 min, 1 h, 2 h,
/// 4 h, 8 h, 8 h — about a day in all, after which the delivery is given
/// up and the endpoint marked failing.
pub const RETRY_AFTER_SECS: [i64; 10] = [5, 30, 120, 600, 1800, 3600, 7200, 14400, 28800, 28800];

/// When to retry after `attempts` failed attempts (1 after the first), or
/// `None` once the schedule is spent.
pub fn retry_after(attempts: i32) -> Option<chrono::TimeDelta> {
    let i = usize::try_from(attempts.checked_sub(1)?).ok()?;
    RETRY_AFTER_SECS
        .get(i)
        .map(|s| chrono::TimeDelta::seconds(*s))
}

/// The most event types one endpoint lists (the API's `maxItems`).
pub const MAX_TYPES: usize = 64;

/// Check and normalise a list of event types (`*`, `key.*`, exact names
/// from `known`), one a line or comma-separated; the stored form is a
/// comma-separated list. More than [`MAX_TYPES`] items as sent are refused
/// even where repeats would leave fewer.
pub fn parse_types(raw: &[String], known: &[&str]) -> Result<String, String> {
    let too_many = |given: usize| format!("At most {MAX_TYPES} event types ({given} given).");
    if raw.len() > MAX_TYPES {
        return Err(too_many(raw.len()));
    }
    let mut out: Vec<String> = Vec::new();
    for t in raw.iter().flat_map(|r| r.split([',', '\n', ' '])) {
        let t = t.trim();
        if t.is_empty() {
            continue;
        }
        let ok = t == "*"
            || known.contains(&t)
            || t.strip_suffix(".*")
                .is_some_and(|p| known.iter().any(|k| k.split('.').next() == Some(p)));
        if !ok {
            return Err(format!("“{t}” is not an event type keyward sends."));
        }
        if !out.iter().any(|o| o == t) {
            out.push(t.to_owned());
        }
    }
    if out.is_empty() {
        return Err("Choose at least one event type (or “*” for all).".into());
    }
    if out.len() > MAX_TYPES {
        return Err(too_many(out.len()));
    }
    Ok(out.join(","))
}

/// Check an endpoint's address: an absolute `http` or `https` URL with a
/// host, no credentials, at most 2000 characters. (Where it points is
/// checked when delivering, after DNS resolution.)
pub fn parse_url(raw: &str) -> Result<String, String> {
    // As sent (see `input::bounded_text`).
    let too_long = raw.chars().count() > 2000;
    let raw = raw.trim();
    if raw.is_empty() {
        return Err("Enter the address to send events to.".into());
    }
    if too_long || raw.len() > 2000 {
        return Err("The address is too long (at most 2000 characters).".into());
    }
    let rest = raw
        .strip_prefix("https://")
        .or_else(|| raw.strip_prefix("http://"))
        .ok_or("The address must start with https:// (or http://).")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() {
        return Err("The address has no host.".into());
    }
    if authority.contains('@') {
        return Err("The address must not contain a user name or password.".into());
    }
    if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("The address must not contain spaces.".into());
    }
    Ok(raw.to_owned())
}

/// The default days before expiry at which reminders go out (0: at expiry).
pub const DEFAULT_REMINDER_DAYS: &str = "14,7,1,0";
/// The furthest a reminder may be before expiry.
pub const MAX_REMINDER_DAYS: i32 = 60;

/// Read a list of reminder days ("14, 7, 1, 0"): 1 to 6 whole numbers from
/// 0 to 60, largest first, each once.
pub fn parse_reminder_days(raw: &str) -> Result<Vec<i32>, String> {
    let mut days = Vec::new();
    for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let d: i32 = part
            .parse()
            .ok()
            .filter(|d| (0..=MAX_REMINDER_DAYS).contains(d))
            .ok_or(format!(
                "“{part}” is not a number of days from 0 to {MAX_REMINDER_DAYS}."
            ))?;
        if !days.contains(&d) {
            days.push(d);
        }
    }
    if days.is_empty() || days.len() > 6 {
        return Err("Give 1 to 6 numbers of days, like 14, 7, 1, 0.".into());
    }
    days.sort_unstable_by(|a, b| b.cmp(a));
    Ok(days)
}

/// The stored form of reminder days.
pub fn reminder_days_text(days: &[i32]) -> String {
    days.iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification's reference
    /// libraries (secret, id, timestamp, body → signature).
    #[test]
    fn signs_as_the_specification_example() {
        let sig = sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        );
        assert_eq!(
            sig.as_deref(),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
    }

    #[test]
    fn sealed_secrets_open_only_with_the_server_secret() {
        let s = new_secret();
        let sealed = seal(b"server-secret-1", &s);
        assert!(!sealed.contains(s.trim_start_matches(SECRET_PREFIX)));
        assert_eq!(
            unseal(b"server-secret-1", &sealed).as_deref(),
            Some(s.as_str())
        );
        assert_ne!(
            unseal(b"server-secret-2", &sealed).as_deref(),
            Some(s.as_str())
        );
    }

    #[test]
    fn retries_last_about_a_day() {
        let total: i64 = RETRY_AFTER_SECS.iter().sum();
        assert!((20 * 3600..=30 * 3600).contains(&total), "{total}");
        assert_eq!(retry_after(1), Some(chrono::TimeDelta::seconds(5)));
        assert_eq!(retry_after(11), None);
    }

    #[test]
    fn reminder_days_are_read_largest_first() {
        assert_eq!(parse_reminder_days("0, 7,14,7").unwrap(), [14, 7, 0]);
        assert!(parse_reminder_days("61").is_err());
        assert!(parse_reminder_days("-1").is_err());
        assert!(parse_reminder_days("").is_err());
        assert!(parse_reminder_days("1,2,3,4,5,6,7").is_err());
        assert_eq!(
            parse_reminder_days(DEFAULT_REMINDER_DAYS).unwrap(),
            [14, 7, 1, 0]
        );
    }

    #[test]
    fn types_and_urls_are_checked() {
        let known = ["key.created", "key.revoked", "key.leaked", "user.added"];
        let t = |s: &str| parse_types(&[s.to_owned()], &known);
        assert_eq!(
            t("key.revoked, user.added").unwrap(),
            "key.revoked,user.added"
        );
        assert_eq!(t("key.*").unwrap(), "key.*");
        assert_eq!(t("*").unwrap(), "*");
        assert_eq!(t("key.leaked").unwrap(), "key.leaked");
        assert!(t("key.teleported").is_err());
        assert!(t("nope.*").is_err());
        assert!(t("").is_err());
        let many = |n: usize| vec!["key.*".to_owned(); n];
        assert_eq!(parse_types(&many(64), &known).unwrap(), "key.*");
        assert!(
            parse_types(&many(65), &known)
                .unwrap_err()
                .contains("(65 given)")
        );
        assert!(parse_url("https://hooks.example.com/x").is_ok());
        assert!(parse_url("ftp://x").is_err());
        assert!(parse_url("https://u:p@x/").is_err());
        assert!(parse_url("https:///x").is_err());
    }
}
