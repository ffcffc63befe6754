//! What a write changed for key checks: the change feed's local half.
//!
//! Every function in `db` that changes what a key check would answer
//! (revoke, delete, disable, enable, regenerate, edit, the workspace's API
//! key switch, a user's removal) records a [`Change`] next to its write.
//! The web layer runs all database work through one wrapper that collects
//! what was recorded on that thread and applies it to the key cache before
//! the response is sent, so no handler can forget to. Other instances learn
//! the same through PostgreSQL `NOTIFY`, sent by triggers in the same
//! transaction as the write (see the `change_feed` migration), so they do
//! not depend on the application remembering either.

use std::cell::RefCell;

/// The channel the PostgreSQL triggers notify on.
pub const CHANNEL: &str = "keyward_key_changes";

/// Something that may make key checks answer differently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The keys whose current or previous secret has one of these digests.
    Key {
        workspace_id: String,
        digests: Vec<String>,
        /// The row's version after the change (PostgreSQL notices of
        /// inserts and updates): a cached copy read at this version or a
        /// later one already shows the change and is kept. `None` (changes
        /// recorded in-process, deletions, older triggers): every copy goes.
        version: Option<i64>,
    },
    /// Every key of the workspace (its API key switch).
    Workspace(String),
    /// Anything (the feed reconnected and may have missed changes).
    All,
}

impl Change {
    /// The change for one key row (both of its secrets).
    pub fn key(key: &super::keys::ApiKey) -> Change {
        let mut digests = vec![key.digest.clone()];
        digests.extend(key.previous_digest.clone());
        Change::Key {
            workspace_id: key.workspace_id.clone(),
            digests,
            version: None,
        }
    }

    /// A change of `key` that left it at `version` (known where the writer
    /// read it back in its own transaction).
    pub fn key_at(key: &super::keys::ApiKey, version: i64) -> Change {
        match Change::key(key) {
            Change::Key {
                workspace_id,
                digests,
                ..
            } => Change::Key {
                workspace_id,
                digests,
                version: Some(version),
            },
            other => other,
        }
    }

    /// Read a notification payload written by the triggers:
    /// `k <workspace> <digest> [<digest>…] [#<version>]` or `w <workspace>`.
    pub fn from_payload(payload: &str) -> Option<Change> {
        // `@…` is when it was written (see [`sent_at`]), not a digest.
        let mut parts = payload
            .split(' ')
            .filter(|p| !p.is_empty() && !p.starts_with('@'));
        match (parts.next()?, parts.next()) {
            ("k", Some(ws)) => {
                let mut version = None;
                let mut digests = Vec::new();
                for p in parts {
                    match p.strip_prefix('#') {
                        // An unreadable version is treated as unknown:
                        // every copy goes, which is always safe.
                        Some(v) => version = v.parse::<i64>().ok(),
                        None => digests.push(p.to_owned()),
                    }
                }
                digests.sort_unstable();
                digests.dedup();
                (!digests.is_empty()).then(|| Change::Key {
                    workspace_id: ws.to_owned(),
                    digests,
                    version,
                })
            }
            ("w", Some(ws)) => Some(Change::Workspace(ws.to_owned())),
            _ => None,
        }
    }
}

/// When a notified change was written: the `@<microseconds since the
/// epoch>` the triggers append (PostgreSQL's `clock_timestamp()`).
pub fn sent_at(payload: &str) -> Option<chrono::NaiveDateTime> {
    let micros = payload
        .split(' ')
        .find_map(|p| p.strip_prefix('@'))?
        .parse::<i64>()
        .ok()?;
    chrono::DateTime::from_timestamp_micros(micros).map(|t| t.naive_utc())
}

thread_local! {
    /// Changes recorded on this thread since [`collect`] started; `None`
    /// when nobody is collecting (the CLI), so nothing accumulates.
    static PENDING: RefCell<Option<Vec<Change>>> = const { RefCell::new(None) };
}

/// Note a change made by the current thread's database work.
pub fn record(change: Change) {
    PENDING.with(|p| {
        if let Some(list) = p.borrow_mut().as_mut() {
            list.push(change);
        }
    });
}

/// Run `f` (database work on this thread) and return what it recorded.
pub fn collect<T>(f: impl FnOnce() -> T) -> (T, Vec<Change>) {
    let outer = PENDING.with(|p| p.borrow_mut().replace(Vec::new()));
    let value = f();
    let changes = PENDING.with(|p| {
        let mine = p.borrow_mut().take().unwrap_or_default();
        *p.borrow_mut() = outer;
        mine
    });
    // Whatever an inner collection recorded also belongs to an outer one.
    if !changes.is_empty() {
        for c in &changes {
            record(c.clone());
        }
    }
    (value, changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_junk_is_ignored() {
        assert_eq!(
            Change::from_payload("k wsp_1 bbb aaa bbb"),
            Some(Change::Key {
                workspace_id: "wsp_1".into(),
                digests: vec!["aaa".into(), "bbb".into()],
                version: None,
            })
        );
        assert_eq!(
            Change::from_payload("k wsp_1 aaa bbb #7 @1763900000000000"),
            Some(Change::Key {
                workspace_id: "wsp_1".into(),
                digests: vec!["aaa".into(), "bbb".into()],
                version: Some(7),
            }),
            "the version is read and is not a digest"
        );
        assert_eq!(
            Change::from_payload("k wsp_1 aaa #x"),
            Some(Change::Key {
                workspace_id: "wsp_1".into(),
                digests: vec!["aaa".into()],
                version: None,
            }),
            "an unreadable version drops every copy"
        );
        assert_eq!(
            Change::from_payload("w wsp_1"),
            Some(Change::Workspace("wsp_1".into()))
        );
        for junk in [
            "",
            "k",
            "k wsp_1",
            "x y",
            "w",
            "k wsp_1 @1763900000000000",
            "k wsp_1 #3",
        ] {
            assert_eq!(Change::from_payload(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn the_write_time_is_read_and_is_not_a_digest() {
        let payload = "k wsp_1 aaa bbb @1763900000123456";
        assert_eq!(
            Change::from_payload(payload),
            Some(Change::Key {
                workspace_id: "wsp_1".into(),
                digests: vec!["aaa".into(), "bbb".into()],
                version: None,
            })
        );
        assert_eq!(
            sent_at(payload).map(|t| t.and_utc().timestamp_micros()),
            Some(1_763_900_000_123_456)
        );
        assert_eq!(
            sent_at("w wsp_1 @1763900000000000").map(|t| t.and_utc().timestamp()),
            Some(1_763_900_000)
        );
        assert_eq!(
            sent_at("k wsp_1 aaa"),
            None,
            "from an older instance's trigger"
        );
        assert_eq!(sent_at("k wsp_1 aaa @soon"), None);
    }

    #[test]
    fn collect_sees_only_its_own_thread_and_nothing_leaks_outside() {
        record(Change::All);
        let ((), got) = collect(|| {
            record(Change::Workspace("a".into()));
            std::thread::spawn(|| record(Change::Workspace("other thread".into())))
                .join()
                .unwrap();
        });
        assert_eq!(got, vec![Change::Workspace("a".into())]);
        let (_, outer) = collect(|| {
            let (_, inner) = collect(|| record(Change::All));
            assert_eq!(inner, vec![Change::All]);
        });
        assert_eq!(
            outer,
            vec![Change::All],
            "inner changes reach the outer collector"
        );
    }
}
