//! Failure modes under concurrency and load, on real databases.

use crate::helpers::*;
use keyward::db::events::AuditContext;
use keyward::db::keys::{self, NewKey};
use keyward::domain::keys::{Environment, generate};
use reqwest::StatusCode;
use std::sync::{Arc, Barrier};

/// Insert `n` workspace keys straight into the database (the web form costs
/// a round trip each) and return their ids.
async fn many_keys(app: &TestApp, n: usize) -> Vec<String> {
    app.with_db(move |c| {
        let admin = keyward::db::users::find_active_by_email(c, ADMIN_EMAIL)
            .unwrap()
            .unwrap();
        let ctx = AuditContext {
            workspace_id: admin.workspace_id,
            actor_id: Some(admin.id),
            actor_label: "test".into(),
            ip: None,
            user_agent: None,
        };
        (0..n)
            .map(|i| {
                let (_, facts) = generate(Environment::Live);
                let name = format!("bulk {i}");
                let nonce = format!("nonce-{i}");
                keys::create(c, &ctx, NewKey::plain_workspace_key(&name, &facts, &nonce))
                    .unwrap()
                    .id
            })
            .collect()
    })
    .await
}

/// Write `batch` from two connections at the same moment, one of them in
/// reverse order (as two instances' hash maps may hold the same keys), and
/// return the errors.
async fn flush_both_ways<T: Clone + Send + 'static>(
    app: &TestApp,
    batch: Vec<T>,
    write: fn(&mut keyward::db::DbConn, &[T]) -> Result<(), String>,
) -> Vec<String> {
    let pool = app.pool.clone();
    tokio::task::spawn_blocking(move || {
        let backward: Vec<T> = batch.iter().rev().cloned().collect();
        let barrier = Arc::new(Barrier::new(2));
        let handles: Vec<_> = [batch, backward]
            .into_iter()
            .map(|batch| {
                let (pool, barrier) = (pool.clone(), barrier.clone());
                std::thread::spawn(move || {
                    let mut conn = pool.get().unwrap();
                    barrier.wait();
                    write(&mut conn, &batch)
                })
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|h| h.join().unwrap().err())
            .collect()
    })
    .await
    .unwrap()
}

/// Two instances flush "last used" times of the same keys at the same
/// moment, their batches in opposite orders (as two hash maps may hold
/// them). Every flush must succeed: no deadlock, nothing left unwritten,
/// and no time moves backwards. 300 keys: more than one SQLite statement's
/// worth of rows (`SQLITE_CHUNK`).
#[tokio::test]
async fn concurrent_last_used_flushes_of_the_same_keys_never_deadlock() {
    let (app, _admin) = spawn_ready().await;
    let ids = many_keys(&app, 300).await;
    let mut failed = Vec::new();
    for round in 0..10i64 {
        let at = keyward::db::now() + chrono::TimeDelta::seconds(round);
        let forward: Vec<(String, chrono::NaiveDateTime)> =
            ids.iter().map(|id| (id.clone(), at)).collect();
        failed.extend(
            flush_both_ways(&app, forward, |c, batch| {
                keys::write_last_used(c, batch).map_err(|e| e.to_string())
            })
            .await,
        );
    }
    assert!(failed.is_empty(), "flushes failed: {failed:?}");

    // An older time never overwrites a newer one.
    let some = app
        .with_db(|c| {
            use diesel::prelude::*;
            keyward::db::schema::api_keys::table
                .select(keyward::db::schema::api_keys::last_used_at)
                .load::<Option<chrono::NaiveDateTime>>(c)
                .unwrap()
        })
        .await;
    let newest = some.iter().flatten().max().copied().unwrap();
    let pool = app.pool.clone();
    let all: Vec<_> = some.iter().flatten().copied().collect();
    assert_eq!(all.len(), 300);
    let stale = newest - chrono::TimeDelta::hours(1);
    let ids_again: Vec<String> = app
        .with_db(|c| {
            use diesel::prelude::*;
            keyward::db::schema::api_keys::table
                .select(keyward::db::schema::api_keys::id)
                .load(c)
                .unwrap()
        })
        .await;
    tokio::task::spawn_blocking(move || {
        let mut conn = pool.get().unwrap();
        let batch: Vec<_> = ids_again.into_iter().map(|id| (id, stale)).collect();
        keys::write_last_used(&mut conn, &batch).unwrap();
    })
    .await
    .unwrap();
    let after = app
        .with_db(|c| {
            use diesel::prelude::*;
            keyward::db::schema::api_keys::table
                .select(keyward::db::schema::api_keys::last_used_at)
                .load::<Option<chrono::NaiveDateTime>>(c)
                .unwrap()
        })
        .await;
    assert!(
        after.iter().all(|t| *t == Some(newest)),
        "times never move back"
    );
}

/// A flush may name a key twice (two cached records of it, before and
/// after a change, each with its own uses): the newest time is the one kept,
/// whichever comes first in the batch.
#[tokio::test]
async fn a_last_used_batch_naming_a_key_twice_keeps_the_newest_time() {
    let (app, _admin) = spawn_ready().await;
    let ids = many_keys(&app, 2).await;
    let t = keyward::db::now();
    let (older, newer) = (t - chrono::TimeDelta::minutes(5), t);
    let batch = vec![
        (ids[0].clone(), newer),
        (ids[1].clone(), older),
        (ids[0].clone(), older),
        (ids[1].clone(), newer),
    ];
    app.with_db(move |c| keys::write_last_used(c, &batch).unwrap())
        .await;
    let times = app
        .with_db(|c| {
            use diesel::prelude::*;
            use keyward::db::schema::api_keys::dsl::*;
            api_keys
                .select(last_used_at)
                .load::<Option<chrono::NaiveDateTime>>(c)
                .unwrap()
        })
        .await;
    // Timestamps as the database keeps them (PostgreSQL: microseconds).
    let micros = |t: chrono::NaiveDateTime| t.and_utc().timestamp_micros();
    assert_eq!(
        times.iter().map(|t| t.map(micros)).collect::<Vec<_>>(),
        vec![Some(micros(newer)); 2]
    );
}

/// The same for usage counters: two instances adding to the same hourly
/// rows in opposite orders both succeed, and no count is lost. 300 keys:
/// more than one SQLite statement's worth of rows (`SQLITE_CHUNK`).
#[tokio::test]
async fn concurrent_usage_flushes_of_the_same_rows_never_deadlock_or_lose_counts() {
    let (app, _admin) = spawn_ready().await;
    let ids = many_keys(&app, 300).await;
    let ws = app
        .with_db(|c| {
            keyward::db::users::find_active_by_email(c, ADMIN_EMAIL)
                .unwrap()
                .unwrap()
                .workspace_id
        })
        .await;
    let hour = keyward::verify::hour_of(keyward::db::now());
    let mut failed = Vec::new();
    for _ in 0..5 {
        let forward: Vec<(String, String, chrono::NaiveDateTime)> = ids
            .iter()
            .map(|id| (id.clone(), ws.clone(), hour))
            .collect();
        failed.extend(
            flush_both_ways(&app, forward, |c, batch| {
                let rows: Vec<keyward::db::usage::Increment> = batch
                    .iter()
                    .map(|(id, ws, hour)| (id.as_str(), ws.as_str(), *hour, "VALID", 1))
                    .collect();
                keyward::db::usage::add(c, &rows).map_err(|e| e.to_string())
            })
            .await,
        );
    }
    assert!(failed.is_empty(), "flushes failed: {failed:?}");
    let counts = app
        .with_db(|c| {
            use diesel::prelude::*;
            keyward::db::schema::key_usage::table
                .select(keyward::db::schema::key_usage::count)
                .load::<i64>(c)
                .unwrap()
        })
        .await;
    assert_eq!(counts.len(), 300);
    assert!(counts.iter().all(|n| *n == 10), "every use counted once");
}

/// Uses buffered on the hot path are all written by a flush (what the
/// interval and a graceful stop do), and the buffers are empty afterwards.
#[tokio::test]
async fn a_flush_writes_every_buffered_use() {
    let (app, admin) = spawn_ready().await;
    let k = admin
        .create_key("/workspace/keys", &[("name", "counted")])
        .await;
    let revoked = admin
        .create_key("/workspace/keys", &[("name", "refused")])
        .await;
    admin
        .post_form(&format!("/keys/{}/revoke", revoked.id), &[])
        .await;
    for _ in 0..5 {
        assert_eq!(me(&app.base, &k.secret).await.0, reqwest::StatusCode::OK);
    }
    for _ in 0..2 {
        assert_eq!(me_code(&app.base, &revoked.secret).await.1, "REVOKED");
    }
    let state = app.state.clone();
    tokio::task::spawn_blocking(move || state.verifier.flush(&state.pool))
        .await
        .unwrap();
    assert_eq!(app.state.verifier.pending(), (0, 0));
    // The app's own flush (every 100 ms here) may have taken the buffers
    // first and be writing them still: wait for its commit.
    let started = std::time::Instant::now();
    let mut expected = vec![
        (k.id.clone(), "VALID".to_owned(), 5),
        (revoked.id.clone(), "REVOKED".to_owned(), 2),
    ];
    expected.sort();
    let (ids, ks) = (vec![k.id.clone(), revoked.id.clone()], k.id.clone());
    let (counted, last_used) = loop {
        let ids = ids.clone();
        let (mut counted, last_used) = app
            .with_db(move |c| {
                use diesel::prelude::*;
                use keyward::db::schema::{api_keys, key_usage};
                let counts = key_usage::table
                    .select((key_usage::key_id, key_usage::outcome, key_usage::count))
                    .load::<(String, String, i64)>(c)
                    .unwrap();
                let used = api_keys::table
                    .filter(api_keys::id.eq_any(ids))
                    .select((api_keys::id, api_keys::last_used_at.is_not_null()))
                    .load::<(String, bool)>(c)
                    .unwrap();
                (counts, used)
            })
            .await;
        counted.sort();
        if counted == expected || started.elapsed() > std::time::Duration::from_secs(10) {
            break (counted, last_used);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(counted, expected);
    for (id, used) in last_used {
        assert_eq!(used, id == ks, "only a passed check sets last used: {id}");
    }
}

/// A full disk (SQLite at its page limit) is a clear 503 that says storage
/// is full and nothing was saved, not the generic 500.
#[tokio::test]
async fn a_full_disk_is_a_clear_503_and_saves_nothing() {
    // SQLite's page limit stands in for a full disk (PostgreSQL's disk
    // cannot be filled from a test without root; the same mapping covers
    // its "No space left on device").
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_on(keyward::config::DatabaseUrl::Sqlite(
        dir.path().join("full.db"),
    ))
    .await;
    let admin = app.browser();
    let res = admin
        .complete_setup(&app, "Acme", "Ada Admin", ADMIN_EMAIL, ADMIN_PASSWORD)
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    // Cap every pooled connection at the file's current size.
    let pool = app.pool.clone();
    tokio::task::spawn_blocking(move || {
        use diesel::connection::SimpleConnection;
        let mut conns: Vec<_> = (0..8).map(|_| pool.get().unwrap()).collect();
        for c in &mut conns {
            // Never below the current size: this caps the file where it is.
            c.batch_execute("PRAGMA max_page_count = 1").unwrap();
        }
    })
    .await
    .unwrap();
    // Keys fit into the file's free space for a while; then it is full.
    let mut created = 0;
    let refused = loop {
        let res = admin
            .submit_new_key(
                "/workspace/keys",
                &[("name", "filler"), ("description", &"x".repeat(500))],
            )
            .await;
        if res.status() != StatusCode::OK {
            break res;
        }
        created += 1;
        assert!(created < 500, "the database never filled up");
    };
    let status = refused.status();
    let body = refused.text().await.unwrap();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(
        body.contains("storage is full") && body.contains("nothing was saved"),
        "{body}"
    );
    let keys_created = app
        .event_actions()
        .await
        .iter()
        .filter(|a| *a == "key.created")
        .count();
    assert_eq!(keys_created, created, "the refused key left no trace");
}

#[derive(diesel::QueryableByName)]
struct Synchronous {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    synchronous: i32,
}

/// SQLite commits are durable by default (a revoke that was answered
/// survives a power cut); `normal` is a choice.
#[tokio::test]
async fn sqlite_commits_are_fully_synchronous_unless_chosen_otherwise() {
    for (choice, expected) in [
        (keyward::db::SqliteSync::Full, 2),
        (keyward::db::SqliteSync::Normal, 1),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sync.db");
        let app = spawn_app_on_with(keyward::config::DatabaseUrl::Sqlite(path), move |c| {
            c.sqlite_synchronous = choice;
        })
        .await;
        let got = app
            .with_db(|c| {
                use diesel::RunQueryDsl;
                diesel::sql_query("PRAGMA synchronous")
                    .get_result::<Synchronous>(c)
                    .unwrap()
                    .synchronous
            })
            .await;
        assert_eq!(got, expected, "{choice:?}");
    }
}

/// Holds a lock on the keys table from outside the app (another client's
/// long transaction) until dropped.
struct HeldLock {
    release: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HeldLock {
    fn take(database: &keyward::config::DatabaseUrl) -> HeldLock {
        use diesel::connection::SimpleConnection;
        let pool = keyward::db::pool(database, 1).expect("own connection");
        let (locked_tx, locked_rx) = std::sync::mpsc::channel();
        let (release, release_rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let mut conn = pool.get().unwrap();
            let lock = match &*conn {
                keyward::db::DbConn::Pg(_) => {
                    "BEGIN; LOCK TABLE api_keys IN ACCESS EXCLUSIVE MODE;"
                }
                keyward::db::DbConn::Sqlite(_) => "BEGIN IMMEDIATE;",
            };
            conn.batch_execute(lock).unwrap();
            locked_tx.send(()).unwrap();
            let _ = release_rx.recv();
            conn.batch_execute("ROLLBACK").unwrap();
        });
        locked_rx.recv().expect("lock taken");
        HeldLock {
            release: Some(release),
            thread: Some(thread),
        }
    }
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        drop(self.release.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[tokio::test]
async fn a_write_stuck_behind_a_lock_gives_up_with_a_503_and_saves_nothing() {
    // A request's query must not wait for ever (nor past the 10 s shutdown
    // grace): PostgreSQL cancels it by its statement timeout, SQLite gives
    // up after its busy timeout. Either way the person is told, nothing is
    // saved, and the lock holder is undisturbed.
    let (app, admin) = spawn_ready().await;
    let lock = HeldLock::take(&app.database);
    // Without a timeout the request would wait for the lock for ever: give
    // up on it (and fail) long after the database should have.
    let res = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        admin.submit_new_key("/workspace/keys", &[("name", "blocked")]),
    )
    .await
    .expect("the request was still waiting for the lock after 30 s");
    let status = res.status();
    let body = res.text().await.unwrap();
    // The answer came while the lock is still held.
    assert!(lock.thread.as_ref().is_some_and(|t| !t.is_finished()));
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(
        body.contains("too busy") && body.contains("nothing was saved"),
        "{body}"
    );
    drop(lock);
    assert!(
        !app.event_actions().await.iter().any(|a| a == "key.created"),
        "the refused key left no trace"
    );
    let created = admin
        .create_key("/workspace/keys", &[("name", "after")])
        .await;
    assert_eq!(me(&app.base, &created.secret).await.0, StatusCode::OK);
}

#[derive(diesel::QueryableByName)]
struct Terminated {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

#[tokio::test]
#[ignore = "needs PostgreSQL: run with KEYWARD_TEST_DATABASE_URL and --ignored"]
async fn pg_only_a_connection_lost_mid_request_is_a_503_and_saves_nothing() {
    assert!(
        std::env::var("KEYWARD_TEST_DATABASE_URL").is_ok_and(|u| !u.is_empty()),
        "set KEYWARD_TEST_DATABASE_URL"
    );
    // A key creation is inside its transaction, waiting on a lock, when
    // PostgreSQL ends its connection (as a restart or an administrator
    // does): "terminating connection due to administrator command".
    let (app, admin) = spawn_ready().await;
    let lock = HeldLock::take(&app.database);
    let creating = {
        let admin = admin.clone();
        tokio::spawn(async move {
            admin
                .submit_new_key("/workspace/keys", &[("name", "cut off")])
                .await
        })
    };
    let own = keyward::db::pool(&app.database, 1).unwrap();
    let terminated = tokio::task::spawn_blocking(move || {
        let mut conn = own.get().unwrap();
        for _ in 0..400 {
            let rows: Vec<Terminated> = diesel::RunQueryDsl::load(
                diesel::sql_query(
                    "SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity \
                     WHERE datname = current_database() AND wait_event_type = 'Lock'",
                ),
                &mut *conn,
            )
            .unwrap();
            if rows[0].n > 0 {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        false
    })
    .await
    .unwrap();
    assert!(terminated, "the creation never waited on the lock");
    let res = creating.await.unwrap();
    let status = res.status();
    let body = res.text().await.unwrap();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(
        body.contains("not reachable") && body.contains("nothing was saved"),
        "{body}"
    );
    drop(lock);
    assert!(
        !app.event_actions().await.iter().any(|a| a == "key.created"),
        "the cut-off key left no trace"
    );
    // The lost connection marked the database down for a moment (it looks
    // like a restart); the next probe finds it back and the pool replaces
    // the connection by itself.
    let probe = app.browser();
    for _ in 0..100 {
        if probe.page("/readyz").await.0 == StatusCode::OK {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let created = admin
        .create_key("/workspace/keys", &[("name", "after")])
        .await;
    assert_eq!(me(&app.base, &created.secret).await.0, StatusCode::OK);
}
