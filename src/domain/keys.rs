//! API keys: format, checksum, digest, display excerpt, status and the rules
//! for the fields a user chooses.
//!
//! Format: `<prefix><env>_<random><checksum>`, where `<prefix>` is the
//! installation's (`KEYWARD_KEY_PREFIX`, default `sk_`), `<env>` is `live`,
//! `test` or `dev`, `<random>` is 43 base62 characters drawn from the CSPRNG
//! (256 bits, the entropy of 32 random bytes, at a fixed length so secret
//! scanners can match `sk_(live|test|dev)_[0-9A-Za-z]{49}`), and
//! `<checksum>` is the CRC32 of everything before it in 6 base62 digits. A
//! truncated or mistyped key fails the checksum without any database lookup.
//!
//! The checker accepts any well-formed prefix, not only the installation's
//! current one: a key keeps working when the operator changes the prefix
//! (its checksum and digest cover the key as it was issued), and no check
//! needs the configuration. Each key row stores the prefix it was issued
//! with, for its masked excerpt.

use chrono::{NaiveDate, NaiveDateTime, TimeDelta};
use rand::distr::{Alphanumeric, SampleString};
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

use super::input::FieldError;

/// Base62 characters of the random part.
pub const RANDOM_LEN: usize = 43;
/// Base62 digits of the checksum.
pub const CHECKSUM_LEN: usize = 6;
/// Characters of the random part stored to let users find a key by its
/// beginning (a prefix); the rest stays secret (about 232 bits).
pub const HEAD_LEN: usize = 4;
/// Characters at the end of the key shown in masked excerpts.
pub const TAIL_LEN: usize = 4;

/// The prefix of keys when the operator sets none.
pub const DEFAULT_PREFIX: &str = "sk_";
/// Longest installation prefix accepted (with its trailing underscore).
pub const MAX_PREFIX_LEN: usize = 16;

/// Check an installation prefix (`KEYWARD_KEY_PREFIX`): 2 to
/// [`MAX_PREFIX_LEN`] lower-case letters, digits and underscores, starting
/// with a letter and ending with `_`, e.g. `acme_` (giving `acme_live_…`).
pub fn parse_prefix(raw: &str) -> Result<String, String> {
    let p = raw.trim();
    if is_prefix(p) {
        Ok(p.to_owned())
    } else {
        Err(format!(
            "must be 2 to {MAX_PREFIX_LEN} lower-case letters, digits or underscores, starting with a letter and ending with _ (e.g. acme_)"
        ))
    }
}

/// Whether `p` is an installation prefix as [`parse_prefix`] accepts it
/// (already trimmed). Allocates nothing: every key check asks it.
fn is_prefix(p: &str) -> bool {
    (2..=MAX_PREFIX_LEN).contains(&p.len())
        && p.starts_with(|c: char| c.is_ascii_lowercase())
        && p.ends_with('_')
        && p.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Split the start of a key, `<prefix><env>_<rest>`, into its prefix,
/// environment and rest (the rest holds no underscore: keys' random parts
/// are base62). `None` when it does not start like a key.
pub fn split_start(s: &str) -> Option<(&str, Environment, &str)> {
    let (head, rest) = s.rsplit_once('_')?;
    let (body, env) = head.rsplit_once('_')?;
    let environment = Environment::ALL.into_iter().find(|e| e.as_str() == env)?;
    let prefix = &s[..body.len() + 1];
    // A made-up key's bad prefix must not cost an error message either.
    if !is_prefix(prefix) {
        return None;
    }
    Some((prefix, environment, rest))
}

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The environment a key is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Environment {
    Live,
    Test,
    Dev,
}

impl Environment {
    pub const ALL: [Environment; 3] = [Environment::Live, Environment::Test, Environment::Dev];

    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Live => "live",
            Environment::Test => "test",
            Environment::Dev => "dev",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Environment::Live => "Production",
            Environment::Test => "Staging",
            Environment::Dev => "Development",
        }
    }

    /// The start of this environment's keys with an installation prefix,
    /// e.g. `sk_live_`.
    pub fn start(self, prefix: &str) -> String {
        format!("{prefix}{}_", self.as_str())
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Environment {
    type Err = ();

    /// Accepts the stored names and the usual synonyms.
    fn from_str(s: &str) -> Result<Self, ()> {
        match s.trim().to_ascii_lowercase().as_str() {
            "live" | "production" | "prod" => Ok(Environment::Live),
            "test" | "staging" => Ok(Environment::Test),
            "dev" | "development" => Ok(Environment::Dev),
            _ => Err(()),
        }
    }
}

/// A key's full secret. Exists only between generation and the one
/// response that shows it; never printed by `Debug`.
pub struct Secret(String);

impl Secret {
    /// The full key, for the "Save your key" view.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A recoverable key's secret, opened again (issue 27): it lives only
    /// until the one response that shows it, like a new one.
    pub fn recovered(secret: String) -> Secret {
        Secret(secret)
    }

    /// A second handle on the same secret, for sealing it in the
    /// transaction that stores the key (a recoverable key, issue 27).
    pub fn duplicate(&self) -> Secret {
        Secret(self.0.clone())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// What is stored about a key's secret: never the secret itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretFacts {
    /// The installation prefix the key was issued with, e.g. `sk_`.
    pub prefix: String,
    pub environment: Environment,
    /// Hex SHA-256 of the full key.
    pub digest: String,
    /// First [`HEAD_LEN`] characters of the random part.
    pub head: String,
    /// Last [`TAIL_LEN`] characters of the key.
    pub tail: String,
}

impl SecretFacts {
    /// The masked excerpt shown in lists, e.g. `sk_live_…5G08`.
    pub fn excerpt(&self) -> String {
        excerpt(&self.prefix, self.environment, &self.tail)
    }
}

/// The masked excerpt for a key's prefix, environment and last characters.
pub fn excerpt(prefix: &str, environment: Environment, tail: &str) -> String {
    format!("{}…{tail}", environment.start(prefix))
}

/// The checksum's characters (base62 digits: ASCII).
fn base62_checksum(body: &str) -> [u8; CHECKSUM_LEN] {
    let mut n = crc32fast::hash(body.as_bytes());
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out
}

/// Hex SHA-256 of a full key. Keys are high-entropy, so a fast hash is the
/// right tool (argon2 is for passwords).
pub fn digest(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Generate a new key for an environment with the default prefix.
pub fn generate(environment: Environment) -> (Secret, SecretFacts) {
    generate_with(DEFAULT_PREFIX, environment)
}

/// Generate a new key for an environment with an installation prefix
/// (validated by [`parse_prefix`] when the configuration was read).
pub fn generate_with(prefix: &str, environment: Environment) -> (Secret, SecretFacts) {
    let random = Alphanumeric.sample_string(&mut rand::rng(), RANDOM_LEN);
    let body = format!("{}{random}", environment.start(prefix));
    let checksum = base62_checksum(&body);
    let key = format!("{body}{}", String::from_utf8_lossy(&checksum));
    let facts = facts_of(prefix, environment, &key);
    (Secret(key), facts)
}

fn facts_of(prefix: &str, environment: Environment, key: &str) -> SecretFacts {
    let random = &key[prefix.len() + environment.as_str().len() + 1..];
    SecretFacts {
        prefix: prefix.to_owned(),
        environment,
        digest: digest(key),
        head: random[..HEAD_LEN].to_owned(),
        tail: key[key.len() - TAIL_LEN..].to_owned(),
    }
}

/// Why a string is not a well-formed key. Each says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("The key is empty.")]
    Empty,
    #[error(
        "The key does not start like a key (for example sk_live_, sk_test_ or sk_dev_). Copy the whole key, including its prefix."
    )]
    UnknownPrefix,
    #[error(
        "The key is {got} characters long but should be {expected}; it was probably cut off when copied. Copy the whole key again."
    )]
    WrongLength { expected: usize, got: usize },
    #[error(
        "The key contains characters that never appear in keys (only letters and digits follow the prefix). Check for spaces or quotes around it."
    )]
    InvalidCharacter,
    #[error(
        "The key's checksum does not match, so it was mistyped or changed. Copy the whole key again."
    )]
    BadChecksum,
}

/// Check a key's shape and checksum and compute what is needed to look it up.
pub fn parse(key: &str) -> Result<SecretFacts, FormatError> {
    let (prefix, environment) = check_shape(key)?;
    Ok(facts_of(prefix, environment, key))
}

/// Check a key's shape and checksum, and give its SHA-256 digest's bytes:
/// [`parse`] for a key check, which needs nothing else (no hex text, no
/// excerpt), so it allocates nothing.
pub fn parse_digest(key: &str) -> Result<[u8; 32], FormatError> {
    check_shape(key)?;
    Ok(Sha256::digest(key.as_bytes()).into())
}

/// A well-formed key's installation prefix and environment.
fn check_shape(key: &str) -> Result<(&str, Environment), FormatError> {
    if key.is_empty() {
        return Err(FormatError::Empty);
    }
    let (prefix, environment, rest) = split_start(key).ok_or(FormatError::UnknownPrefix)?;
    if !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(FormatError::InvalidCharacter);
    }
    let start = prefix.len() + environment.as_str().len() + 1;
    let expected = start + RANDOM_LEN + CHECKSUM_LEN;
    if key.len() != expected {
        return Err(FormatError::WrongLength {
            expected,
            got: key.chars().count(),
        });
    }
    let (body, checksum) = key.split_at(key.len() - CHECKSUM_LEN);
    if base62_checksum(body) != checksum.as_bytes() {
        return Err(FormatError::BadChecksum);
    }
    Ok((prefix, environment))
}

/// What a search string says about a key's value: a full key (found by
/// digest), or a prefix and/or masked ending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueQuery {
    Full(SecretFacts),
    Partial {
        environment: Option<Environment>,
        /// Beginning of the random part (at most [`HEAD_LEN`] characters are compared).
        head: String,
        /// End of the key (at most [`TAIL_LEN`] characters are compared).
        tail: String,
    },
}

/// Interpret a search query as (part of) a key value, if it looks like one:
/// `sk_live_…5G08`, `sk_live_...5G08`, `sk_live_Ab3x`, or a whole key (with
/// any installation prefix, e.g. `acme_live_…5G08`).
pub fn value_query(q: &str) -> Option<ValueQuery> {
    let q = q.trim();
    if let Ok(facts) = parse(q) {
        return Some(ValueQuery::Full(facts));
    }
    let (start, tail) = match q.split_once('…').or_else(|| q.split_once("...")) {
        Some((s, t)) => (s, t.trim_matches('.')),
        None => (q, ""),
    };
    let (environment, head) = match split_start(start) {
        Some((_, e, head)) => (Some(e), head),
        None if q.starts_with(DEFAULT_PREFIX) => (None, ""),
        None => return None,
    };
    let clean = |s: &str| s.chars().all(|c| c.is_ascii_alphanumeric());
    if !clean(head) || !clean(tail) {
        return None;
    }
    let head: String = head.chars().take(HEAD_LEN).collect();
    let tail: String = tail
        .chars()
        .rev()
        .take(TAIL_LEN)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    Some(ValueQuery::Partial {
        environment,
        head,
        tail,
    })
}

/// A key's status, derived from its timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Active,
    Inactive,
    Expired,
    Revoked,
}

impl Status {
    pub fn derive(
        revoked_at: Option<NaiveDateTime>,
        disabled_at: Option<NaiveDateTime>,
        expires_at: Option<NaiveDateTime>,
        now: NaiveDateTime,
    ) -> Status {
        if revoked_at.is_some() {
            Status::Revoked
        } else if disabled_at.is_some() {
            Status::Inactive
        } else if expires_at.is_some_and(|e| e <= now) {
            Status::Expired
        } else {
            Status::Active
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Status::Active => "Active",
            Status::Inactive => "Inactive",
            Status::Expired => "Expired",
            Status::Revoked => "Revoked",
        }
    }

    pub fn css(self) -> &'static str {
        match self {
            Status::Active => "status-active",
            Status::Inactive => "status-inactive",
            Status::Expired => "status-expired",
            Status::Revoked => "status-revoked",
        }
    }

    /// Only Active and Inactive keys can be revoked (PRODUCT.md).
    pub fn can_revoke(self) -> bool {
        matches!(self, Status::Active | Status::Inactive)
    }
}

/// The expiry chosen when creating a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    Days(i64),
    Date(NaiveDate),
    Never,
}

/// The expiry presets offered in the create dialog.
pub const EXPIRY_PRESETS: [i64; 5] = [7, 30, 60, 90, 365];

impl Expiry {
    /// Parse the form's `expiry` choice and `expiry_date` (for "custom").
    pub fn parse(choice: &str, date: &str, today: NaiveDate) -> Result<Expiry, FieldError> {
        match choice.trim() {
            "never" => Ok(Expiry::Never),
            "custom" => {
                let date = NaiveDate::parse_from_str(date.trim(), "%Y-%m-%d").map_err(|_| {
                    FieldError::new("expiry_date", "Enter the expiry date as YYYY-MM-DD.")
                })?;
                if date <= today {
                    return Err(FieldError::new(
                        "expiry_date",
                        "The expiry date must be in the future.",
                    ));
                }
                if date > today + TimeDelta::days(3650) {
                    return Err(FieldError::new(
                        "expiry_date",
                        "The expiry date must be within 10 years.",
                    ));
                }
                Ok(Expiry::Date(date))
            }
            other => match other.parse::<i64>() {
                Ok(d) if EXPIRY_PRESETS.contains(&d) => Ok(Expiry::Days(d)),
                _ => Err(FieldError::new(
                    "expiry",
                    "Choose an expiry: 7, 30, 60, 90 or 365 days, a custom date, or never.",
                )),
            },
        }
    }

    /// The moment the key stops working (a custom date expires at the end of
    /// that day, UTC).
    pub fn expires_at(self, now: NaiveDateTime) -> Option<NaiveDateTime> {
        match self {
            Expiry::Days(d) => Some(now + TimeDelta::days(d)),
            Expiry::Date(date) => date.and_hms_opt(23, 59, 59),
            Expiry::Never => None,
        }
    }
}

/// Check an expiry against the workspace's maximum (in days), if any.
pub fn within_max(
    expiry: Expiry,
    max_days: Option<i32>,
    today: NaiveDate,
) -> Result<Expiry, FieldError> {
    let Some(max) = max_days else {
        return Ok(expiry);
    };
    let too_long = || {
        FieldError::new(
            "expiry",
            format!(
                "This workspace allows keys to live at most {max} days. Choose a shorter expiry."
            ),
        )
    };
    match expiry {
        Expiry::Never => Err(too_long()),
        Expiry::Days(d) if d > i64::from(max) => Err(too_long()),
        Expiry::Date(date) if date > today + TimeDelta::days(i64::from(max)) => {
            Err(FieldError::new(
                "expiry_date",
                format!(
                    "This workspace allows keys to live at most {max} days: choose a date up to {}.",
                    today + TimeDelta::days(i64::from(max))
                ),
            ))
        }
        ok => Ok(ok),
    }
}

/// How long the old secret keeps working after a regeneration.
pub fn parse_grace(raw: &str) -> Result<TimeDelta, FieldError> {
    match raw.trim() {
        "0" | "" | "now" => Ok(TimeDelta::zero()),
        "1h" => Ok(TimeDelta::hours(1)),
        "24h" => Ok(TimeDelta::hours(24)),
        "7d" => Ok(TimeDelta::days(7)),
        _ => Err(FieldError::new(
            "grace",
            "Choose when the old secret stops working: now, after 1 hour, 24 hours or 7 days.",
        )),
    }
}

/// A key's name: required, at most 100 characters.
pub fn parse_name(raw: &str) -> Result<String, FieldError> {
    let v = raw.trim();
    if v.is_empty() {
        return Err(FieldError::new(
            "name",
            "Name is required, e.g. \"Grafana production\".",
        ));
    }
    // As sent (see `input::bounded_text`).
    if raw.chars().count() > 100 {
        return Err(FieldError::new(
            "name",
            "Name must be at most 100 characters.",
        ));
    }
    crate::domain::input::check_display_text("name", "Name", v, false)?;
    Ok(v.to_owned())
}

/// A description: optional, at most 500 characters.
pub fn parse_description(raw: &str) -> Result<String, FieldError> {
    let v = raw.trim();
    if raw.chars().count() > 500 {
        return Err(FieldError::new(
            "description",
            "Description must be at most 500 characters.",
        ));
    }
    crate::domain::input::check_display_text("description", "Description", v, true)?;
    Ok(v.to_owned())
}

fn split_list(raw: &str) -> impl Iterator<Item = &str> {
    raw.split([',', '\n', '\r'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// Tags: comma-separated, lower-cased, each 1–30 of `a-z 0-9 - _ : .`, at most 10.
pub fn parse_tags(raw: &str) -> Result<Vec<String>, FieldError> {
    let mut tags: Vec<String> = Vec::new();
    for tag in split_list(raw) {
        let tag = tag.to_lowercase();
        let ok = tag.chars().count() <= 30
            && tag
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_:.".contains(c));
        if !ok {
            return Err(FieldError::new(
                "tags",
                format!(
                    "Tag \"{tag}\" is not valid: use up to 30 letters, digits, - _ : or ., separated by commas."
                ),
            ));
        }
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    if tags.len() > 10 {
        return Err(FieldError::new("tags", "Use at most 10 tags."));
    }
    Ok(tags)
}

/// Resource scope: identifiers separated by commas or new lines, each at
/// most 100 printable characters without spaces, at most 50. Empty means
/// the whole workspace.
pub fn parse_resources(raw: &str) -> Result<Vec<String>, FieldError> {
    let mut out: Vec<String> = Vec::new();
    for r in split_list(raw) {
        if r.chars().count() > 100 || r.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(FieldError::new(
                "resources",
                format!(
                    "Resource \"{r}\" is not valid: identifiers have no spaces and at most 100 characters."
                ),
            ));
        }
        crate::domain::input::check_display_text("resources", "A resource", r, false)?;
        if !out.iter().any(|x| x == r) {
            out.push(r.to_owned());
        }
    }
    if out.len() > 50 {
        return Err(FieldError::new(
            "resources",
            "Limit a key to at most 50 resources.",
        ));
    }
    Ok(out)
}

/// Highest rate limit accepted, in requests per minute.
pub const MAX_RATE_LIMIT: i32 = 1_000_000;

/// Rate limit in requests per minute: empty means none.
pub fn parse_rate_limit(raw: &str) -> Result<Option<i32>, FieldError> {
    let v = raw.trim();
    if v.is_empty() {
        return Ok(None);
    }
    match v.parse::<i32>() {
        Ok(n) if (1..=MAX_RATE_LIMIT).contains(&n) => Ok(Some(n)),
        _ => Err(FieldError::new(
            "rate_limit",
            format!(
                "Rate limit must be a whole number of requests per minute from 1 to {MAX_RATE_LIMIT}, or empty for no limit."
            ),
        )),
    }
}

/// The first 8 bytes of a hex SHA-256 digest (16 hex digits or more), as a
/// number: what the in-memory index of existing keys holds.
pub fn digest_prefix(digest: &str) -> Option<u64> {
    digest
        .get(..16)
        .and_then(|h| u64::from_str_radix(h, 16).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn env_strategy() -> impl Strategy<Value = Environment> {
        prop_oneof![
            Just(Environment::Live),
            Just(Environment::Test),
            Just(Environment::Dev)
        ]
    }

    #[test]
    fn generated_keys_have_the_documented_shape() {
        let (secret, facts) = generate(Environment::Live);
        let key = secret.expose();
        assert!(key.starts_with("sk_live_"));
        assert_eq!(key.len(), 8 + 43 + 6);
        assert!(key[8..].bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(facts.digest, digest(key));
        assert_eq!(facts.digest.len(), 64);
        assert_eq!(
            facts.excerpt(),
            format!("sk_live_…{}", &key[key.len() - 4..])
        );
        assert_eq!(parse(key).unwrap(), facts);
        assert!(!format!("{secret:?}").contains(&key[8..]));
        let (other, _) = generate(Environment::Live);
        assert_ne!(other.expose(), key);
    }

    #[test]
    fn parse_says_what_is_wrong() {
        let (secret, _) = generate(Environment::Test);
        let key = secret.expose();
        assert_eq!(parse(""), Err(FormatError::Empty));
        assert_eq!(parse("pk-test-abc"), Err(FormatError::UnknownPrefix));
        assert_eq!(parse("Sk_test_abc"), Err(FormatError::UnknownPrefix));
        assert_eq!(
            parse(&key[..key.len() - 3]),
            Err(FormatError::WrongLength {
                expected: 57,
                got: 54
            })
        );
        assert_eq!(
            parse(&format!("{key} ")),
            Err(FormatError::InvalidCharacter)
        );
        let mut swapped: Vec<char> = key.chars().collect();
        let i = 12;
        swapped[i] = if swapped[i] == 'a' { 'b' } else { 'a' };
        assert_eq!(
            parse(&swapped.into_iter().collect::<String>()),
            Err(FormatError::BadChecksum)
        );
    }

    proptest! {
        #[test]
        fn every_generated_key_parses(env in env_strategy()) {
            let (secret, facts) = generate(env);
            prop_assert_eq!(parse(secret.expose()), Ok(facts.clone()));
            // The key check's path: the same digest, as bytes.
            prop_assert_eq!(
                parse_digest(secret.expose()).map(hex::encode),
                Ok(facts.digest)
            );
        }

        #[test]
        fn any_single_character_change_is_rejected(env in env_strategy(), pos in 0usize..57, c in proptest::char::any()) {
            let (secret, _) = generate(env);
            let mut chars: Vec<char> = secret.expose().chars().collect();
            let pos = pos % chars.len();
            prop_assume!(chars[pos] != c);
            chars[pos] = c;
            let changed: String = chars.into_iter().collect();
            prop_assert!(parse(&changed).is_err(), "{} accepted", changed);
            prop_assert_eq!(parse_digest(&changed).err(), parse(&changed).err());
        }

        #[test]
        fn any_truncation_is_rejected(env in env_strategy(), cut in 1usize..57) {
            let (secret, _) = generate(env);
            let key = secret.expose();
            let cut = cut.min(key.len());
            prop_assert!(parse(&key[..key.len() - cut]).is_err());
            prop_assert!(parse(&key[cut..]).is_err());
        }
    }

    #[test]
    fn installation_prefixes() {
        assert_eq!(parse_prefix("acme_").as_deref(), Ok("acme_"));
        for bad in [
            "",
            "_",
            "acme",
            "Acme_",
            "1acme_",
            "ac-me_",
            "abcdefghijklmnop_",
        ] {
            assert!(parse_prefix(bad).is_err(), "{bad} accepted");
        }
        let (secret, facts) = generate_with("acme_", Environment::Test);
        let key = secret.expose();
        assert!(key.starts_with("acme_test_"));
        assert_eq!(key.len(), 10 + 43 + 6);
        assert_eq!(parse(key).unwrap(), facts);
        assert_eq!(facts.prefix, "acme_");
        assert_eq!(
            facts.excerpt(),
            format!("acme_test_…{}", &key[key.len() - 4..])
        );
        // The default prefix's keys still parse: nothing depends on the
        // configured prefix.
        let (old, old_facts) = generate(Environment::Live);
        assert_eq!(parse(old.expose()).unwrap(), old_facts);
        // A prefix made of a prefix and an environment is still one prefix.
        let (odd, odd_facts) = generate_with("acme_live_", Environment::Dev);
        assert_eq!(parse(odd.expose()).unwrap(), odd_facts);
        assert_eq!(
            value_query("acme_live_…5G08"),
            Some(ValueQuery::Partial {
                environment: Some(Environment::Live),
                head: String::new(),
                tail: "5G08".into()
            })
        );
    }

    #[test]
    fn value_queries() {
        let (secret, facts) = generate(Environment::Live);
        assert_eq!(value_query(secret.expose()), Some(ValueQuery::Full(facts)));
        assert_eq!(
            value_query("sk_live_…5G08"),
            Some(ValueQuery::Partial {
                environment: Some(Environment::Live),
                head: String::new(),
                tail: "5G08".into()
            })
        );
        assert_eq!(
            value_query("sk_dev_...x5G08"),
            Some(ValueQuery::Partial {
                environment: Some(Environment::Dev),
                head: String::new(),
                tail: "5G08".into()
            })
        );
        assert_eq!(
            value_query("sk_test_AbC9zz"),
            Some(ValueQuery::Partial {
                environment: Some(Environment::Test),
                head: "AbC9".into(),
                tail: String::new()
            })
        );
        assert_eq!(value_query("grafana"), None);
        assert_eq!(value_query("sk_live_ab cd"), None);
    }

    #[test]
    fn status_precedence() {
        let now = NaiveDate::from_ymd_opt(2026, 1, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap();
        let past = Some(now - TimeDelta::days(1));
        assert_eq!(Status::derive(None, None, None, now), Status::Active);
        assert_eq!(
            Status::derive(None, None, Some(now + TimeDelta::days(1)), now),
            Status::Active
        );
        assert_eq!(Status::derive(None, None, past, now), Status::Expired);
        assert_eq!(Status::derive(None, past, past, now), Status::Inactive);
        assert_eq!(Status::derive(past, past, past, now), Status::Revoked);
        assert!(
            Status::Inactive.can_revoke()
                && !Status::Expired.can_revoke()
                && !Status::Revoked.can_revoke()
        );
    }

    #[test]
    fn field_rules() {
        let today = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        assert_eq!(Expiry::parse("30", "", today), Ok(Expiry::Days(30)));
        assert_eq!(Expiry::parse("never", "", today), Ok(Expiry::Never));
        assert_eq!(
            Expiry::parse("custom", "2026-02-01", today),
            Ok(Expiry::Date(NaiveDate::from_ymd_opt(2026, 2, 1).unwrap()))
        );
        assert!(Expiry::parse("custom", "2025-12-31", today).is_err());
        assert!(Expiry::parse("custom", "tomorrow", today).is_err());
        assert!(Expiry::parse("31", "", today).is_err());
        assert_eq!(
            within_max(Expiry::Days(90), Some(90), today),
            Ok(Expiry::Days(90))
        );
        assert!(within_max(Expiry::Days(365), Some(90), today).is_err());
        assert!(within_max(Expiry::Never, Some(90), today).is_err());
        assert!(within_max(Expiry::Date(today + TimeDelta::days(91)), Some(90), today).is_err());
        assert_eq!(within_max(Expiry::Never, None, today), Ok(Expiry::Never));
        assert_eq!(
            parse_tags("Grafana, prod,grafana").unwrap(),
            vec!["grafana", "prod"]
        );
        assert!(parse_tags("has space").is_err());
        assert_eq!(
            parse_resources("line-1\nline-2, line-1").unwrap(),
            vec!["line-1", "line-2"]
        );
        assert!(parse_resources("a b").is_err());
        assert_eq!(parse_rate_limit(" ").unwrap(), None);
        assert_eq!(parse_rate_limit("600").unwrap(), Some(600));
        assert!(parse_rate_limit("0").is_err() && parse_rate_limit("ten").is_err());
        assert!(parse_name("  ").is_err());
        assert_eq!(parse_grace("24h").unwrap(), TimeDelta::hours(24));
        assert!(parse_grace("8d").is_err());
    }
}
