//! Random identifiers and one-time tokens.

use rand::distr::{Alphanumeric, SampleString};
use sha2::{Digest, Sha256};

/// A new public identifier such as `usr_5hG0…`: a prefix naming the kind of
/// row and 22 base62 characters (about 131 bits) from the thread-local CSPRNG.
/// Ids are generated in the application so inserts work the same on both
/// database backends without `RETURNING`.
pub fn new_id(prefix: &str) -> String {
    format!(
        "{prefix}_{}",
        Alphanumeric.sample_string(&mut rand::rng(), 22)
    )
}

/// Whether `s` has the shape of an id made by [`new_id`] with `prefix`.
pub fn is_id(prefix: &str, s: &str) -> bool {
    s.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|r| r.len() == 22 && r.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// The prefix of a service account's membership id (people's are `usr_`).
pub const SERVICE_ACCOUNT_PREFIX: &str = "sa";

/// Whether a membership id is a service account's: the id says so, so a
/// key's owner kind needs no extra column or join (see the
/// `service_accounts` migration).
pub fn is_service_account_id(id: &str) -> bool {
    id.starts_with("sa_")
}

/// A new secret token (setup links, invitations, sessions): 43 base62
/// characters, about 256 bits of entropy.
pub fn new_token() -> String {
    Alphanumeric.sample_string(&mut rand::rng(), 43)
}

/// Hex SHA-256 of a token. Tokens are stored and looked up only by digest, so
/// a copy of the database does not hand out working links or sessions.
pub fn token_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_prefix_and_differ() {
        let a = new_id("usr");
        let b = new_id("usr");
        assert!(a.starts_with("usr_"));
        assert_eq!(a.len(), 4 + 22);
        assert_ne!(a, b);
    }

    #[test]
    fn recognises_whole_ids_only() {
        let id = new_id("key");
        assert!(is_id("key", &id));
        assert!(!is_id("usr", &id));
        assert!(!is_id("key", &id[..20]));
        assert!(!is_id("key", &format!("{id}x")));
        assert!(!is_id("key", "key_0IoiTWlWHIwQfmoNB1ZI-E"));
    }

    #[test]
    fn token_digest_is_stable_hex() {
        let d = token_digest("abc");
        assert_eq!(
            d,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
