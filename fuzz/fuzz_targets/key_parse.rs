//! The key parser and checksum (`domain::keys::parse`, and `parse_digest`,
//! the hot path's form of it): the first thing done with every presented
//! key. Any input must come back Ok or Err without a panic, both parsers
//! must agree on it (the same refusal, or the same digest), and whatever
//! passes must be a well-formed key whose facts agree with it.
#![no_main]

use keyward::domain::keys::{self, CHECKSUM_LEN, HEAD_LEN, RANDOM_LEN, TAIL_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(key) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = keys::parse(key);
    match (&parsed, keys::parse_digest(key)) {
        (Ok(facts), Ok(bytes)) => {
            assert_eq!(keyward::db::keys::digest_bytes(&facts.digest), bytes)
        }
        (Err(a), Err(b)) => assert_eq!(*a, b),
        (a, b) => panic!("parse and parse_digest disagree on {key:?}: {a:?} / {b:?}"),
    }
    if let Ok(facts) = parsed {
        let prefix = &facts.environment.start(&facts.prefix);
        assert!(key.starts_with(prefix));
        assert!(keys::parse_prefix(&facts.prefix).is_ok());
        assert_eq!(key.len(), prefix.len() + RANDOM_LEN + CHECKSUM_LEN);
        assert!(
            key[prefix.len()..]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric())
        );
        assert_eq!(facts.digest, keys::digest(key));
        assert_eq!(facts.head, key[prefix.len()..prefix.len() + HEAD_LEN]);
        assert_eq!(facts.tail, key[key.len() - TAIL_LEN..]);
        // A checksum catches every single-character change of the body.
        let body_at = prefix.len();
        let mut changed = key.as_bytes().to_vec();
        changed[body_at] = if changed[body_at] == b'A' { b'B' } else { b'A' };
        let changed = String::from_utf8(changed).unwrap_or_default();
        assert!(keys::parse(&changed).is_err(), "{key} vs {changed}");
    }
});
