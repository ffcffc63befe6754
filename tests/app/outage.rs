//! A database outage (PostgreSQL refusing connections, every session
//! terminated) while the app runs: clear 503s at once, keys seen before keep
//! working from their last known state, nothing revoked comes back, and
//! everything recovers by itself.

use crate::helpers::*;
use diesel::connection::SimpleConnection;
use keyward::config::DatabaseUrl;
use reqwest::StatusCode;
use std::time::{Duration, Instant};

/// Stop or allow connections to the app's own database.
async fn set_reachable(app: &TestApp, reachable: bool) {
    let DatabaseUrl::Postgres(url) = app.database.clone() else {
        panic!("needs PostgreSQL");
    };
    let admin_url = std::env::var("KEYWARD_TEST_DATABASE_URL").unwrap();
    let name = url
        .split('?')
        .next()
        .and_then(|u| u.rsplit('/').next())
        .unwrap()
        .to_owned();
    tokio::task::spawn_blocking(move || {
        let mut admin: diesel::PgConnection =
            diesel::Connection::establish(&admin_url).expect("admin connection");
        admin
            .batch_execute(&format!(
                "ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS {reachable}"
            ))
            .unwrap();
        if !reachable {
            admin
                .batch_execute(&format!(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE datname = '{name}' AND pid <> pg_backend_pid()"
                ))
                .unwrap();
        }
    })
    .await
    .unwrap();
}

/// Wait until the instance has applied `n` change notices in all.
async fn notices_applied(app: &TestApp, n: u64) {
    let since = Instant::now();
    while app
        .state
        .verifier
        .feed_status()
        .applied
        .load(std::sync::atomic::Ordering::Relaxed)
        < n
    {
        assert!(
            since.elapsed() < Duration::from_secs(30),
            "notices never came"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// An integration provisions a key and uses it at once (CI, then a smoke
/// test); the database goes away a second later. The instance's own change
/// notice for the creation arrives after that first check (the feed polls
/// every 20 ms; the check takes a few): it must not drop the copy the check
/// read, so the key keeps answering from it through the outage. A key
/// revoked before the outage stays refused.
#[tokio::test]
#[ignore = "needs PostgreSQL: run with KEYWARD_TEST_DATABASE_URL and --ignored"]
async fn pg_only_a_key_checked_right_after_creation_keeps_its_outage_copy() {
    assert!(
        std::env::var("KEYWARD_TEST_DATABASE_URL").is_ok_and(|u| !u.is_empty()),
        "set KEYWARD_TEST_DATABASE_URL"
    );
    // A short cache lifetime, so that during the outage keys are answered
    // from their stale-if-error copies, not from a live cache entry.
    let (app, admin) =
        spawn_ready_with(|c| c.verifier.cache_ttl = Duration::from_millis(500)).await;
    // The feed drops everything when it (re)connects: let it connect first.
    let since = Instant::now();
    while app
        .state
        .verifier
        .feed_status()
        .connects
        .load(std::sync::atomic::Ordering::Relaxed)
        == 0
    {
        assert!(since.elapsed() < Duration::from_secs(30), "feed never up");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let before = app
        .state
        .verifier
        .feed_status()
        .applied
        .load(std::sync::atomic::Ordering::Relaxed);
    let mut fresh = Vec::new();
    for i in 0..3 {
        let key = admin
            .create_key("/workspace/keys", &[("name", &format!("fresh {i}"))])
            .await;
        assert_eq!(me(&app.base, &key.secret).await.0, StatusCode::OK);
        fresh.push(key);
    }
    let revoked = admin
        .create_key("/workspace/keys", &[("name", "revoked")])
        .await;
    assert_eq!(me(&app.base, &revoked.secret).await.0, StatusCode::OK);
    admin
        .post_form(&format!("/keys/{}/revoke", revoked.id), &[])
        .await;
    assert_eq!(me_code(&app.base, &revoked.secret).await.1, "REVOKED");
    // Every notice (four creations, one revoke) has arrived, after the
    // checks, and the live cache entries have expired.
    notices_applied(&app, before + 5).await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    let connects = app
        .state
        .verifier
        .feed_status()
        .connects
        .load(std::sync::atomic::Ordering::Relaxed);
    let applied = app
        .state
        .verifier
        .feed_status()
        .applied
        .load(std::sync::atomic::Ordering::Relaxed);
    set_reachable(&app, false).await;
    for round in 0..2 {
        for key in &fresh {
            let (status, headers, body) = me(&app.base, &key.secret).await;
            let status_now = app.state.verifier.feed_status();
            assert_eq!(
                status,
                StatusCode::OK,
                "round {round}: {body}; feed connects {connects} -> {}, applied {before} -> {applied} -> {}",
                status_now
                    .connects
                    .load(std::sync::atomic::Ordering::Relaxed),
                status_now
                    .applied
                    .load(std::sync::atomic::Ordering::Relaxed)
            );
            assert_eq!(headers["x-keyward-stale"], "true");
        }
        // Refused from its outage copy, with the reason: the revoke applied
        // here carried the version it left the row at, so the check after
        // it (which read that version) was kept even when the revoke's own
        // notice arrived while it was reading.
        assert_eq!(
            me_code(&app.base, &revoked.secret).await,
            (StatusCode::UNAUTHORIZED, "REVOKED".to_owned()),
            "a revoke made before the outage holds, and says so"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    set_reachable(&app, true).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: run with KEYWARD_TEST_DATABASE_URL and --ignored"]
async fn pg_only_a_database_outage_fails_fast_serves_known_keys_and_recovers() {
    assert!(
        std::env::var("KEYWARD_TEST_DATABASE_URL").is_ok_and(|u| !u.is_empty()),
        "set KEYWARD_TEST_DATABASE_URL"
    );
    // A short cache lifetime, so that during the outage keys are answered
    // from their stale-if-error state, not from a live cache entry.
    let (app, admin) =
        spawn_ready_with(|c| c.verifier.cache_ttl = Duration::from_millis(500)).await;
    let seen = admin
        .create_key("/workspace/keys", &[("name", "seen")])
        .await;
    let revoked = admin
        .create_key("/workspace/keys", &[("name", "revoked")])
        .await;
    let unseen = admin
        .create_key("/workspace/keys", &[("name", "unseen")])
        .await;
    // This instance also hears its own writes through the feed a moment
    // later; the counts below say when they have arrived (a key checked
    // before its creation's notice keeps its copy: see the next test).
    let applied = |n: u64| {
        let state = app.state.clone();
        async move {
            let since = Instant::now();
            while state
                .verifier
                .feed_status()
                .applied
                .load(std::sync::atomic::Ordering::Relaxed)
                < n
            {
                assert!(
                    since.elapsed() < Duration::from_secs(30),
                    "notices never came"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    applied(3).await;
    assert_eq!(me(&app.base, &seen.secret).await.0, StatusCode::OK);
    assert_eq!(me(&app.base, &revoked.secret).await.0, StatusCode::OK);
    admin
        .post_form(&format!("/keys/{}/revoke", revoked.id), &[])
        .await;
    applied(4).await;
    assert_eq!(me_code(&app.base, &revoked.secret).await.1, "REVOKED");
    tokio::time::sleep(Duration::from_millis(700)).await;

    // Someone is on the sign-in page when the database goes away.
    let person = app.browser();
    let token = person.csrf().await;

    set_reachable(&app, false).await;

    let started = Instant::now();
    let (status, headers, body) = me(&app.base, &seen.secret).await;
    println!(
        "seen key during the outage: {status} in {:?}",
        started.elapsed()
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(headers["x-keyward-stale"], "true");
    assert!(headers.contains_key("age"));
    assert_eq!(
        me_code(&app.base, &revoked.secret).await,
        (StatusCode::UNAUTHORIZED, "REVOKED".into()),
        "a revoke made before the outage holds"
    );
    let started = Instant::now();
    assert_eq!(
        me_code(&app.base, &unseen.secret).await,
        (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE".into())
    );
    println!("unseen key: 503 in {:?}", started.elapsed());
    for _ in 0..3 {
        let started = Instant::now();
        let (status, body) = admin.page("/workspace/keys").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("not reachable"), "{body}");
        let (status, body) = app.browser().page("/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["reason"], "database_unreachable", "{body}");
        println!("page + readyz: 503 in {:?}", started.elapsed());
    }
    let (status, body) = app.browser().page("/login").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("Service unavailable"));
    // They keep pressing "Sign in": more times than the per-account limit.
    for _ in 0..8 {
        let res = person
            .post_raw(
                "/login",
                &[
                    ("csrf_token", &token),
                    ("email", ADMIN_EMAIL),
                    ("password", ADMIN_PASSWORD),
                ],
            )
            .await;
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    }

    set_reachable(&app, true).await;
    let started = Instant::now();
    while app.browser().page("/readyz").await.0 != StatusCode::OK {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "never ready again"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "ready again {:?} after connections were allowed",
        started.elapsed()
    );

    // They sign in as usual: no "form expired" after the outage, and the
    // attempts the database could not check did not lock the account.
    let res = person.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(person.signed_in().await);
    assert!(admin.signed_in().await, "sessions survive the outage");
    let (status, headers, _) = me(&app.base, &seen.secret).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!headers.contains_key("x-keyward-stale"), "fresh again");
    assert_eq!(me(&app.base, &unseen.secret).await.0, StatusCode::OK);
    assert_eq!(me_code(&app.base, &revoked.secret).await.1, "REVOKED");
}
