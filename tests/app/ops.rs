//! Operations: Prometheus metrics on their own listener, request ids, and
//! readiness that says why.

use crate::helpers::*;
use reqwest::StatusCode;

/// Scrape the metrics listener.
async fn scrape(app: &TestApp) -> String {
    let port = app.state.metrics_port.expect("metrics listener is on");
    let res = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .expect("scrape");
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    res.text().await.unwrap()
}

/// The value of one sample: `name` with exactly these labels (in the order
/// the exposition writes them, which is sorted by label name); 0 when absent.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let wanted = if labels.is_empty() {
        name.to_owned()
    } else {
        let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        format!("{name}{{{}}}", inner.join(","))
    };
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            (series == wanted).then(|| value.parse::<f64>().expect("a number"))
        })
        .unwrap_or(0.0)
}

fn metrics_on(c: &mut keyward::config::Config) {
    c.metrics_bind = Some("127.0.0.1:0".parse().unwrap());
}

#[tokio::test]
async fn metrics_are_off_by_default_and_never_on_the_main_port() {
    let (app, admin) = spawn_ready().await;
    assert_eq!(app.state.metrics_port, None);
    assert_eq!(admin.get("/metrics").await.status(), StatusCode::NOT_FOUND);

    let (app, admin) = spawn_ready_with(metrics_on).await;
    let port = app.state.metrics_port.unwrap();
    assert_ne!(app.base, format!("http://127.0.0.1:{port}"));
    assert_eq!(
        admin.get("/metrics").await.status(),
        StatusCode::NOT_FOUND,
        "the main port does not serve metrics"
    );
    // The metrics port serves nothing of the application.
    for path in ["/login", "/healthz", "/api/v1/me", "/"] {
        let res = reqwest::get(format!("http://127.0.0.1:{port}{path}"))
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
    }
    assert!(scrape(&app).await.contains("keyward_verifications_total"));
}

#[tokio::test]
async fn metrics_move_with_real_requests_and_name_routes_not_paths() {
    let (app, admin) = spawn_ready_with(metrics_on).await;
    let key = admin
        .create_key("/account/keys", &[("name", "metered")])
        .await;
    let before = scrape(&app).await;

    for _ in 0..2 {
        assert_eq!(me(&app.base, &key.secret).await.0, StatusCode::OK);
    }
    assert_eq!(me_code(&app.base, "sk_live_not-a-key").await.1, "MALFORMED");
    let missing = reqwest::get(format!("{}/api/v1/me", app.base))
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    let (status, _) = admin.page("/account/keys").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = admin.page(&format!("/keys/{}", key.id)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = admin.page("/no/such/page").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let after = scrape(&app).await;
    let delta = |name: &str, labels: &[(&str, &str)]| {
        sample(&after, name, labels) - sample(&before, name, labels)
    };
    let outcomes = "keyward_verifications_total";
    assert_eq!(delta(outcomes, &[("outcome", "valid")]), 2.0);
    assert_eq!(delta(outcomes, &[("outcome", "malformed")]), 1.0);
    assert_eq!(delta(outcomes, &[("outcome", "missing_key")]), 1.0);
    assert_eq!(delta(outcomes, &[("outcome", "not_found")]), 0.0);
    assert_eq!(
        delta("keyward_verification_duration_seconds_count", &[]),
        3.0,
        "every check that ran is timed"
    );
    let lookups = delta("keyward_verify_cache_hits_total", &[])
        + delta("keyward_verify_cache_misses_total", &[]);
    assert_eq!(lookups, 2.0, "the two checks of a real key looked it up");

    let http = "keyward_http_requests_total";
    assert_eq!(
        delta(http, &[("route", "/api/v1/me"), ("status", "200")]),
        2.0
    );
    assert_eq!(
        delta(http, &[("route", "/api/v1/me"), ("status", "401")]),
        2.0
    );
    assert_eq!(
        delta(http, &[("route", "/account/keys"), ("status", "200")]),
        1.0
    );
    assert_eq!(
        delta(http, &[("route", "/keys/{id}"), ("status", "200")]),
        1.0,
        "{after}"
    );
    assert_eq!(
        delta(http, &[("route", "(no route)"), ("status", "404")]),
        1.0
    );
    assert!(!after.contains(&key.id), "a key id reached the metrics");
    assert!(
        !after.contains(&key.secret[8..]),
        "a secret reached the metrics"
    );
    assert!(
        !after.contains("/no/such/page"),
        "a raw path reached the metrics"
    );
    assert!(
        !after.contains("route=\"/metrics"),
        "scrapes are not counted as application requests"
    );

    // Read at scrape time: the pool, the process.
    assert_eq!(sample(&after, "keyward_db_pool_connections_max", &[]), 8.0);
    assert!(sample(&after, "keyward_db_pool_connections_idle", &[]) >= 1.0);
    assert!(sample(&after, "keyward_db_pool_checkouts_total", &[]) >= 1.0);
    assert!(after.contains("keyward_db_pool_timeouts_total 0"));
    assert!(after.contains("keyward_change_feed_connects_total"));
    assert!(sample(&after, "process_resident_memory_bytes", &[]) > 0.0);
    assert!(sample(&after, "process_threads", &[]) >= 1.0);
    assert!(sample(&after, "process_open_fds", &[]) >= 1.0);
    // The allocator's view (glibc): the heap in use holds at least the
    // server's own state, and what it keeps free is never negative.
    if cfg!(all(target_os = "linux", target_env = "gnu")) {
        assert!(sample(&after, "keyward_heap_in_use_bytes", &[]) > 1e6);
        assert!(sample(&after, "keyward_heap_free_bytes", &[]) >= 0.0);
        assert!(after.contains("keyward_heap_give_backs_total"));
    }
    if matches!(app.database, keyward::config::DatabaseUrl::Postgres(_)) {
        assert!(sample(&after, "keyward_change_feed_connects_total", &[]) >= 1.0);
        // The key created above came back through the feed with its write
        // time: its lag was measured (delivery is asynchronous: wait).
        let mut lagged = 0.0;
        for _ in 0..50 {
            lagged = sample(
                &scrape(&app).await,
                "keyward_change_feed_lag_seconds_count",
                &[],
            );
            if lagged >= 1.0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(lagged >= 1.0, "no change feed lag observed");
        let text = scrape(&app).await;
        let sum = sample(&text, "keyward_change_feed_lag_seconds_sum", &[]);
        assert!((0.0..5.0).contains(&sum), "lag sum {sum} s");
    }
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let (app, admin) = spawn_ready().await;
    let client = reqwest::Client::new();
    let get = |path: &str, id: Option<&str>| {
        let mut req = client.get(format!("{}{path}", app.base));
        if let Some(id) = id {
            req = req.header("X-Request-Id", id);
        }
        req.send()
    };
    let id_of = |res: &reqwest::Response| {
        res.headers()
            .get("x-request-id")
            .expect("X-Request-Id on every response")
            .to_str()
            .unwrap()
            .to_owned()
    };

    // A valid incoming id is kept, on pages, the API, errors and probes.
    for path in [
        "/login",
        "/api/v1/me",
        "/no/such/page",
        "/healthz",
        "/static/app.css",
    ] {
        let res = get(path, Some("edge-1234.abc_DEF")).await.unwrap();
        assert_eq!(id_of(&res), "edge-1234.abc_DEF", "{path}");
    }
    // Without one, each response gets its own.
    let a = id_of(&get("/login", None).await.unwrap());
    let b = id_of(&get("/login", None).await.unwrap());
    assert_ne!(a, b);
    for id in [&a, &b] {
        assert_eq!(id.len(), 32, "{id}");
        assert!(id.bytes().all(|c| c.is_ascii_hexdigit()), "{id}");
    }
    // Invalid ones are replaced, not echoed.
    let long = "x".repeat(65);
    for bad in ["has space", "<script>", "a/b", "", long.as_str(), "é"] {
        let res = client
            .get(format!("{}/api/v1/me", app.base))
            .header(
                "X-Request-Id",
                reqwest::header::HeaderValue::from_bytes(bad.as_bytes()).unwrap(),
            )
            .send()
            .await
            .unwrap();
        let id = id_of(&res);
        assert_ne!(id, bad);
        assert_eq!(id.len(), 32, "{bad:?} replaced by a generated id");
    }
    // A signed-in page and a refused form too.
    let res = admin.get("/account/keys").await;
    assert_eq!(res.status(), StatusCode::OK);
    id_of(&res);
    let res = admin.post_raw("/account/keys", &[("name", "x")]).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    id_of(&res);
}

#[tokio::test]
async fn readyz_says_why_it_is_not_ready() {
    let app = spawn_app().await;
    let b = app.browser();
    let res = b.get("/readyz").await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body, serde_json::json!({ "status": "ready" }));

    // Forget the newest migration, as if the database were older than
    // this build.
    app.with_db(|c| {
        use diesel::connection::SimpleConnection;
        c.batch_execute(
            "DELETE FROM __diesel_schema_migrations WHERE version = \
             (SELECT MAX(version) FROM __diesel_schema_migrations)",
        )
        .unwrap();
    })
    .await;
    let res = b.get("/readyz").await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "not_ready");
    assert_eq!(body["reason"], "migrations_pending");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("keyward migrate")
    );
    // Liveness does not look at the database.
    assert_eq!(b.page("/healthz").await, (StatusCode::OK, "ok".to_owned()));
}
