//! The search box's key-value reading (`domain::keys::value_query`): every
//! search string typed into the key lists and `?q=` of the management API.
//! Partial queries must stay within the lengths the database compares and
//! hold only characters a key has.
#![no_main]

use keyward::domain::keys::{self, HEAD_LEN, TAIL_LEN, ValueQuery};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(q) = std::str::from_utf8(data) else {
        return;
    };
    let reading = keys::value_query(q);
    // Only something that starts like a key is read as one (a key-like
    // string with other characters in it is None too: a plain search):
    // the default prefix, or any installation prefix followed by an
    // environment.
    let start = q
        .trim()
        .split_once('…')
        .or_else(|| q.trim().split_once("..."))
        .map_or(q.trim(), |(s, _)| s);
    if !q.trim().starts_with(keys::DEFAULT_PREFIX) && keys::split_start(start).is_none() {
        assert!(reading.is_none());
    }
    match reading {
        None => {}
        Some(ValueQuery::Full(facts)) => {
            assert_eq!(facts.digest, keys::digest(q.trim()));
        }
        Some(ValueQuery::Partial { head, tail, .. }) => {
            assert!(head.chars().count() <= HEAD_LEN);
            assert!(tail.chars().count() <= TAIL_LEN);
            assert!(
                head.chars()
                    .chain(tail.chars())
                    .all(|c| c.is_ascii_alphanumeric())
            );
        }
    }
});
