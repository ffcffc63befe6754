//! The verification engine: the change feed between instances, the race
//! between checks and a revoke, shared rate limits, one instance per SQLite
//! file.
//!
//! Tests named `pg_only_…` need two instances on one PostgreSQL database;
//! they are ignored by a plain `cargo test` and run by `.ci/run` with
//! `KEYWARD_TEST_DATABASE_URL` set and `--ignored`.

use crate::helpers::*;
use reqwest::StatusCode;
use std::time::{Duration, Instant};

/// Caches on every instance live ten minutes in these tests, so a refusal
/// can only come from the change feed, never from an entry expiring.
fn long_cache(c: &mut keyward::config::Config) {
    c.verifier.cache_ttl = Duration::from_secs(600);
}

/// Ask `base` with `key` until the answer is `code`; panics after 10 s.
/// Returns how long it took (printed by the tests; the 1 s target is
/// measured by `scripts/bench-verify revoke`, not asserted here).
async fn until_refused(base: &str, key: &str, code: &str) -> Duration {
    let started = Instant::now();
    loop {
        let (status, got) = me_code(base, key).await;
        if got == code {
            assert_eq!(status, StatusCode::UNAUTHORIZED);
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{base} still answers {status} {got:?}, not {code}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn require_postgres() {
    assert!(
        std::env::var("KEYWARD_TEST_DATABASE_URL").is_ok_and(|u| !u.trim().is_empty()),
        "this test needs two instances on one PostgreSQL: set KEYWARD_TEST_DATABASE_URL"
    );
}

#[tokio::test]
#[ignore = "needs PostgreSQL: run with KEYWARD_TEST_DATABASE_URL and --ignored"]
async fn pg_only_changes_on_one_instance_are_refused_by_the_other() {
    require_postgres();
    let (a, admin) = spawn_ready_with(long_cache).await;
    let b = a.another_instance(long_cache).await;

    // Revoke.
    let k = admin.create_key("/workspace/keys", &[("name", "r")]).await;
    assert_eq!(
        me(&b.base, &k.secret).await.0,
        StatusCode::OK,
        "cached on B"
    );
    let res = admin
        .post_form(&format!("/keys/{}/revoke", k.id), &[])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    println!(
        "revoke: {:?}",
        until_refused(&b.base, &k.secret, "REVOKED").await
    );

    // Disable, then enable again.
    let k = admin.create_key("/workspace/keys", &[("name", "d")]).await;
    assert_eq!(me(&b.base, &k.secret).await.0, StatusCode::OK);
    admin
        .post_form(&format!("/keys/{}/disable", k.id), &[])
        .await;
    println!(
        "disable: {:?}",
        until_refused(&b.base, &k.secret, "DISABLED").await
    );
    admin
        .post_form(&format!("/keys/{}/enable", k.id), &[])
        .await;
    let started = Instant::now();
    while me(&b.base, &k.secret).await.0 != StatusCode::OK {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "never enabled on B"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // Regenerate without a grace period: the old secret is replaced.
    let (_, confirm) = admin.page(&format!("/keys/{}/regenerate", k.id)).await;
    let nonce = hidden(&confirm, "nonce").unwrap();
    let res = admin
        .post_form(
            &format!("/keys/{}/regenerate", k.id),
            &[("grace", "0"), ("nonce", &nonce)],
        )
        .await;
    let new_secret = shown_secret(&res.text().await.unwrap()).unwrap();
    println!(
        "regenerate: {:?}",
        until_refused(&b.base, &k.secret, "EXPIRED").await
    );
    assert_eq!(me(&b.base, &new_secret).await.0, StatusCode::OK);

    // The workspace switch turns every key off on B, and back on.
    assert_eq!(me(&b.base, &new_secret).await.0, StatusCode::OK);
    admin
        .post_form("/workspace/settings/api-keys", &[("enabled", "off")])
        .await;
    println!(
        "switch off: {:?}",
        until_refused(&b.base, &new_secret, "API_KEYS_DISABLED").await
    );
    admin
        .post_form("/workspace/settings/api-keys", &[("enabled", "on")])
        .await;
    let started = Instant::now();
    while me(&b.base, &new_secret).await.0 != StatusCode::OK {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "never back on B"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // A key created on A works on B at once, even after B was asked for it
    // before it existed (a cached "no such key").
    let fresh = admin
        .create_key("/workspace/keys", &[("name", "new")])
        .await;
    assert_eq!(me(&b.base, &fresh.secret).await.0, StatusCode::OK);
}

/// Checks race a revoke on one instance: whatever was sent before the
/// revoke's response may pass, nothing sent after it may.
#[tokio::test]
async fn no_check_sent_after_a_revoke_answered_is_accepted() {
    let (app, admin) = spawn_ready_with(long_cache).await;
    for round in 0..3 {
        let k = admin
            .create_key("/workspace/keys", &[("name", &format!("race {round}"))])
            .await;
        let revoked_at = std::sync::Arc::new(std::sync::Mutex::new(None::<Instant>));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let checkers: Vec<_> = (0..8)
            .map(|_| {
                let (base, secret) = (app.base.clone(), k.secret.clone());
                let (revoked_at, stop) = (revoked_at.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut late_accepts = 0;
                    let mut checks = 0;
                    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                        let sent = Instant::now();
                        let after_revoke = revoked_at.lock().unwrap().is_some_and(|r| sent > r);
                        let (status, _) = me_code(&base, &secret).await;
                        checks += 1;
                        if after_revoke && status == StatusCode::OK {
                            late_accepts += 1;
                        }
                    }
                    (checks, late_accepts)
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let res = admin
            .post_form(&format!("/keys/{}/revoke", k.id), &[])
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        *revoked_at.lock().unwrap() = Some(Instant::now());
        tokio::time::sleep(Duration::from_millis(200)).await;
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let mut total = 0;
        for c in checkers {
            let (checks, late) = c.await.unwrap();
            total += checks;
            assert_eq!(late, 0, "a check sent after the revoke was accepted");
        }
        assert!(total > 16, "the checks really raced the revoke ({total})");
    }
}

pub(crate) fn redis_url() -> String {
    std::env::var("KEYWARD_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

#[tokio::test]
#[ignore = "needs PostgreSQL: run with KEYWARD_TEST_DATABASE_URL and --ignored"]
async fn pg_only_rate_limits_are_shared_through_redis() {
    require_postgres();
    let with_redis = |c: &mut keyward::config::Config| c.redis_url = Some(redis_url());
    let (a, admin) = spawn_ready_with(with_redis).await;
    let b = a.another_instance(with_redis).await;
    let k = admin
        .create_key(
            "/workspace/keys",
            &[("name", "limited"), ("rate_limit", "6")],
        )
        .await;
    let mut passed = 0;
    let mut limited = Vec::new();
    for i in 0..12 {
        let base = if i % 2 == 0 { &a.base } else { &b.base };
        let (status, headers, _) = me(base, &k.secret).await;
        match status {
            StatusCode::OK => passed += 1,
            StatusCode::TOO_MANY_REQUESTS => limited.push(headers),
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(passed, 6, "6 per minute across both instances");
    assert!(limited.iter().all(|h| h.contains_key("retry-after")));
}

/// A `redis-server` of the test's own on a free port, so that the test can
/// take it away without touching the machine's shared Redis; killed (only
/// it) when stopped or dropped.
struct PrivateRedis {
    child: std::process::Child,
    url: String,
}

impl PrivateRedis {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let child = std::process::Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server (Debian package redis-server)");
        let started = Instant::now();
        loop {
            use std::io::{Read, Write};
            let pong = std::net::TcpStream::connect(("127.0.0.1", port)).and_then(|mut s| {
                s.write_all(b"PING\r\n")?;
                let mut buf = [0u8; 7];
                s.read_exact(&mut buf)?;
                Ok(buf)
            });
            if pong.is_ok_and(|b| &b == b"+PONG\r\n") {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(10), "no Redis");
            std::thread::sleep(Duration::from_millis(20));
        }
        PrivateRedis {
            child,
            url: format!("redis://127.0.0.1:{port}"),
        }
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Redis goes away while two instances share a key's limit of 60 a
/// minute: together they let through about 60 (each its share of 30 at
/// once, refilled at 30 a minute), not 60 each.
#[tokio::test]
#[ignore = "needs PostgreSQL and redis-server: run with KEYWARD_TEST_DATABASE_URL and --ignored"]
async fn pg_only_instances_split_a_keys_limit_without_redis() {
    require_postgres();
    let mut redis = tokio::task::spawn_blocking(PrivateRedis::start)
        .await
        .unwrap();
    let url = redis.url.clone();
    let (a, admin) = spawn_ready_with({
        let url = url.clone();
        move |c| c.redis_url = Some(url)
    })
    .await;
    let b = a.another_instance(move |c| c.redis_url = Some(url)).await;
    // Each instance notes itself in Redis every few seconds and counts the
    // others: wait until both know they are two.
    let started = Instant::now();
    while [&a, &b]
        .iter()
        .any(|i| i.state.verifier.sharing_instances() != 2)
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "instances never counted each other"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let k = admin
        .create_key(
            "/workspace/keys",
            &[("name", "limited"), ("rate_limit", "60")],
        )
        .await;
    redis.stop();

    let started = Instant::now();
    let mut passed = [0usize; 2];
    for i in 0..240 {
        let app = if i % 2 == 0 { &a } else { &b };
        match me(&app.base, &k.secret).await.0 {
            StatusCode::OK => passed[i % 2] += 1,
            StatusCode::TOO_MANY_REQUESTS => {}
            other => panic!("unexpected {other}"),
        }
    }
    // What refilled while the requests were sent: 60 a minute in all,
    // rounded up on each instance.
    let refilled = started.elapsed().as_secs_f64().ceil() as usize + 2;
    let total = passed[0] + passed[1];
    println!("accepted {passed:?} in {:?}", started.elapsed());
    assert!(
        total <= 60 + refilled,
        "{total} accepted of a limit of 60 a minute: {passed:?}"
    );
    assert!(
        passed.iter().all(|p| *p >= 30),
        "each instance accepts its share: {passed:?}"
    );
}

#[tokio::test]
async fn rate_limits_fall_back_to_each_instance_when_redis_is_down() {
    // Nothing listens on port 1: every call to "Redis" fails at once.
    let (app, admin) = spawn_ready_with(|c| c.redis_url = Some("redis://127.0.0.1:1".into())).await;
    let k = admin
        .create_key(
            "/workspace/keys",
            &[("name", "limited"), ("rate_limit", "3")],
        )
        .await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(me(&app.base, &k.secret).await.0);
    }
    assert_eq!(
        statuses,
        [
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::TOO_MANY_REQUESTS
        ],
        "valid keys keep working and the local limit still holds"
    );
}

#[tokio::test]
#[ignore = "needs Redis on 127.0.0.1:6379 (or KEYWARD_TEST_REDIS_URL): run with --ignored"]
async fn redis_rate_limits_hold_on_one_instance() {
    let (app, admin) = spawn_ready_with(|c| c.redis_url = Some(redis_url())).await;
    let k = admin
        .create_key(
            "/workspace/keys",
            &[("name", "limited"), ("rate_limit", "3")],
        )
        .await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(me(&app.base, &k.secret).await);
    }
    let codes: Vec<_> = statuses.iter().map(|s| s.0).collect();
    assert_eq!(
        codes,
        [
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    assert_eq!(statuses[0].1["x-ratelimit-remaining"], "2");
    assert_eq!(statuses[2].1["x-ratelimit-remaining"], "0");
    let retry: u64 = statuses[3].1["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=20).contains(&retry), "{retry}");
}

/// A second `serve` on the same SQLite file refuses to start, naming why.
#[tokio::test]
async fn a_second_instance_on_one_sqlite_file_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let db = keyward::config::DatabaseUrl::Sqlite(dir.path().join("one.db"));
    let first = spawn_app_on(db.clone()).await;
    let second = {
        let db = db.clone();
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                keyward::build(test_config(db))
                    .await
                    .err()
                    .map(|e| e.to_string())
            })
        })
        .join()
        .unwrap()
    };
    let message = second.expect("the second instance must not start");
    assert!(
        message.contains("another keyward is already serving") && message.contains("one.db"),
        "{message}"
    );
    assert_eq!(first.browser().page("/healthz").await.0, StatusCode::OK);
    // Once the first is gone, the file can be served again. (Its last
    // background flush may still be finishing on a blocking thread for a
    // moment after the server stopped.)
    drop(first);
    let keyward::config::DatabaseUrl::Sqlite(path) = db else {
        unreachable!()
    };
    let started = Instant::now();
    while let Err(e) = keyward::db::claim_sqlite(&path) {
        assert!(started.elapsed() < Duration::from_secs(10), "{e}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Made-up keys with a valid checksum (anyone can mint them) are refused
/// from the in-memory index of existing keys: no database lookup on SQLite,
/// and at most a small budget of them on PostgreSQL (for keys created on
/// another instance a moment ago). Real keys keep working throughout.
#[tokio::test]
async fn made_up_keys_are_refused_without_the_database() {
    let (app, admin) = spawn_ready().await;
    let real = admin
        .create_key("/workspace/keys", &[("name", "real")])
        .await;
    assert_eq!(me(&app.base, &real.secret).await.0, StatusCode::OK);
    let before = app.state.verifier.db_lookups();
    let started = Instant::now();
    let made_up: Vec<String> = (0..400)
        .map(|_| {
            let (secret, _) =
                keyward::domain::keys::generate(keyward::domain::keys::Environment::Live);
            secret.expose().to_owned()
        })
        .collect();
    for chunk in made_up.chunks(8) {
        let answers =
            futures_util::future::join_all(chunk.iter().map(|k| me_code(&app.base, k))).await;
        for (status, code) in answers {
            assert_eq!(
                (status, code.as_str()),
                (StatusCode::UNAUTHORIZED, "NOT_FOUND")
            );
        }
    }
    let looked_up = app.state.verifier.db_lookups() - before;
    let budget = match app.database {
        keyward::config::DatabaseUrl::Sqlite(_) => 0,
        // A burst of 300, refilled at 5 a second while the test runs.
        keyward::config::DatabaseUrl::Postgres(_) => {
            301 + (5.0 * started.elapsed().as_secs_f64()).ceil() as u64
        }
    };
    assert!(looked_up <= budget, "{looked_up} lookups for made-up keys");
    assert_eq!(me(&app.base, &real.secret).await.0, StatusCode::OK);
    // A key created after start is known at once.
    let fresh = admin
        .create_key("/workspace/keys", &[("name", "fresh")])
        .await;
    assert_eq!(me(&app.base, &fresh.secret).await.0, StatusCode::OK);
}

/// A revoke on A refuses the key's grace-period secret on B too, with
/// REVOKED (B had it cached as valid).
#[tokio::test]
#[ignore = "needs PostgreSQL: run with KEYWARD_TEST_DATABASE_URL and --ignored"]
async fn pg_only_a_revoked_keys_old_secret_is_refused_on_every_instance() {
    require_postgres();
    let (a, admin) = spawn_ready_with(long_cache).await;
    let b = a.another_instance(long_cache).await;
    let k = admin.create_key("/workspace/keys", &[("name", "g")]).await;
    let (_, confirm) = admin.page(&format!("/keys/{}/regenerate", k.id)).await;
    let nonce = hidden(&confirm, "nonce").unwrap();
    let res = admin
        .post_form(
            &format!("/keys/{}/regenerate", k.id),
            &[("grace", "24h"), ("nonce", &nonce)],
        )
        .await;
    let new_secret = shown_secret(&res.text().await.unwrap()).unwrap();
    assert_eq!(me(&b.base, &k.secret).await.0, StatusCode::OK, "old on B");
    assert_eq!(me(&b.base, &new_secret).await.0, StatusCode::OK, "new on B");
    admin
        .post_form(&format!("/keys/{}/revoke", k.id), &[])
        .await;
    println!(
        "old secret: {:?}",
        until_refused(&b.base, &k.secret, "REVOKED").await
    );
    until_refused(&b.base, &new_secret, "REVOKED").await;
    // And on A, which made the change.
    assert_eq!(me_code(&a.base, &k.secret).await.1, "REVOKED");
}

#[tokio::test]
async fn the_key_forms_say_whether_rate_limits_hold_across_instances() {
    let (app, admin) = spawn_ready().await;
    let (_, body) = admin.page("/workspace/keys/new").await;
    let expected = match app.database {
        // Several instances may share PostgreSQL; without Redis each one
        // counts on its own, and the person setting a limit must know.
        keyward::config::DatabaseUrl::Postgres(_) => {
            "counted by each keyward instance separately (no Redis is configured)"
        }
        keyward::config::DatabaseUrl::Sqlite(_) => "Requests per minute; empty for no limit.",
    };
    assert!(body.contains(expected), "{body}");
    let key = admin
        .create_key("/workspace/keys", &[("name", "limited")])
        .await;
    let (_, edit) = admin.page(&format!("/keys/{}/edit", key.id)).await;
    assert!(edit.contains(expected), "{edit}");
}

#[tokio::test]
#[ignore = "needs Redis on 127.0.0.1:6379 (or KEYWARD_TEST_REDIS_URL): run with --ignored"]
async fn redis_shared_rate_limits_say_so_on_the_key_form() {
    let (_app, shared) = spawn_ready_with(|c| c.redis_url = Some(redis_url())).await;
    let (_, body) = shared.page("/workspace/keys/new").await;
    assert!(
        body.contains("counted across all keyward instances"),
        "{body}"
    );
}
