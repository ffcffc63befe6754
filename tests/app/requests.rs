//! Who uses a key (issue 27): the request log of each key (pages, CSV,
//! management API), "still in use by" with the secret each caller
//! presents, and ending a grace period now. On both backends.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Everything recorded for `key_id`, as the database holds it.
type Stored = (
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
    String,
);

async fn stored(app: &TestApp, key_id: &str) -> Vec<Stored> {
    let id = key_id.to_owned();
    app.with_db(move |c| {
        use diesel::prelude::*;
        use keyward::db::schema::key_requests as r;
        r::table
            .filter(r::key_id.eq(id))
            .order(r::id.asc())
            .select((r::ip, r::method, r::path, r::outcome, r::client, r::secret))
            .load::<Stored>(c)
            .unwrap()
    })
    .await
}

/// Wait until the flush (every 100 ms in tests) has written `n` checks of
/// the key.
async fn wait_for(app: &TestApp, key_id: &str, n: usize) -> Vec<Stored> {
    for _ in 0..100 {
        let rows = stored(app, key_id).await;
        if rows.len() >= n {
            return rows;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let rows = stored(app, key_id).await;
    panic!(
        "expected {n} recorded checks, found {}: {rows:?}",
        rows.len()
    );
}

async fn api_get(base: &str, key: &str, path: &str) -> (StatusCode, Value) {
    let res = reqwest::Client::new()
        .get(format!("{base}{path}"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn api_post(base: &str, key: &str, path: &str) -> (StatusCode, Value) {
    let res = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// A workspace key that may read and manage keys through the API.
async fn manager(admin: &Browser) -> CreatedKey {
    admin
        .create_key(
            "/workspace/keys",
            &[
                ("name", "Provisioning"),
                ("expiry", "never"),
                // A regenerated key's permissions must be within the acting key's.
                ("permissions", "data:read"),
                ("permissions", "keyward:keys:read"),
                ("permissions", "keyward:keys:write"),
            ],
        )
        .await
}

#[tokio::test]
async fn checks_are_recorded_with_address_route_outcome_and_client_never_a_secret() {
    let (app, admin) = spawn_ready_with(|c| {
        // The test client is the gateway: its X-Forwarded-For is believed.
        c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let k = admin
        .create_key(
            "/workspace/keys",
            &[("name", "orders"), ("permissions", "data:read")],
        )
        .await;
    let http = reqwest::Client::new();

    // /me: its own method and path; the query string is not recorded.
    let res = http
        .get(format!("{}/api/v1/me?token=LEAK-me", app.base))
        .bearer_auth(&k.secret)
        .header("User-Agent", "curl/8.5.0")
        .header("X-Forwarded-For", "203.0.113.7")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // Forward-auth: the gateway's original method and URI (Traefik, Caddy).
    let res = http
        .get(format!("{}/api/v1/forward-auth", app.base))
        .bearer_auth(&k.secret)
        .header("X-Forwarded-Method", "POST")
        .header("X-Forwarded-Uri", "/orders/17?api_key=LEAK-uri")
        .header("X-Forwarded-For", "198.51.100.9")
        .header("X-Keyward-Permission", "data:write")
        .header(
            "User-Agent",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // Envoy: the original path appended, the original method.
    let res = http
        .delete(format!(
            "{}/api/v1/forward-auth/reports/q3?page=LEAK-envoy",
            app.base
        ))
        .bearer_auth(&k.secret)
        .header("X-Forwarded-For", "198.51.100.10")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // /keys/verify: what the service states.
    let v = verify(
        &app.base,
        json!({"key": k.secret, "method": "put", "path": "/v1/things?secret=LEAK-verify", "ip": "192.0.2.44"}),
    )
    .await;
    assert_eq!(v["valid"], json!(true));

    let rows = wait_for(&app, &k.id, 4).await;
    type Seen<'a> = (Option<&'a str>, Option<&'a str>, Option<&'a str>, &'a str);
    let seen: Vec<Seen> = rows
        .iter()
        .map(|r| (r.0.as_deref(), r.1.as_deref(), r.2.as_deref(), r.3.as_str()))
        .collect();
    assert_eq!(
        seen,
        vec![
            (
                Some("203.0.113.7"),
                Some("GET"),
                Some("/api/v1/me"),
                "VALID"
            ),
            (
                Some("198.51.100.9"),
                Some("POST"),
                Some("/orders/17"),
                "INSUFFICIENT_PERMISSION"
            ),
            (
                Some("198.51.100.10"),
                Some("DELETE"),
                Some("/reports/q3"),
                "VALID"
            ),
            (Some("192.0.2.44"), Some("PUT"), Some("/v1/things"), "VALID"),
        ]
    );
    assert_eq!(rows[0].4.as_deref(), Some("curl 8.5.0"));
    assert!(
        rows[1]
            .4
            .as_deref()
            .is_some_and(|c| c.starts_with("Chrome 131")),
        "{:?}",
        rows[1].4
    );
    assert!(rows.iter().all(|r| r.5 == "current"));
    // Nothing secret in any column: no key, no query string.
    let dump = format!("{rows:?}");
    assert!(!dump.contains(&k.secret) && !dump.contains("LEAK") && !dump.contains('?'));

    // The page, with its filters.
    let (status, page) = admin.page(&format!("/keys/{}/requests", k.id)).await;
    assert_eq!(status, StatusCode::OK);
    for shown in [
        "203.0.113.7",
        "GET /api/v1/me",
        "POST /orders/17",
        "INSUFFICIENT_PERMISSION",
        "DELETE /reports/q3",
        "PUT /v1/things",
        "curl 8.5.0",
        "Still in use by",
    ] {
        assert!(page.contains(shown), "{shown} missing: {page}");
    }
    assert!(!page.contains(&k.secret) && !page.contains("LEAK"));
    let (_, refused) = admin
        .page(&format!("/keys/{}/requests?outcome=refused", k.id))
        .await;
    assert!(refused.contains("POST /orders/17") && !refused.contains("GET /api/v1/me"));
    let (_, by_ip) = admin
        .page(&format!("/keys/{}/requests?ip=192.0.2.44", k.id))
        .await;
    assert!(by_ip.contains("PUT /v1/things") && !by_ip.contains("POST /orders/17"));
    let (status, _) = admin
        .page(&format!("/keys/{}/requests?outcome=NOPE", k.id))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    // The key's page links to it and says who uses the key.
    let (_, detail) = admin.page(&format!("/keys/{}", k.id)).await;
    assert!(detail.contains(&format!("/keys/{}/requests", k.id)));
    assert!(detail.contains("198.51.100.9"));

    // The CSV.
    let res = admin.get(&format!("/keys/{}/requests.csv", k.id)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let csv = res.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "at_utc,ip,method,path,outcome,client,secret,sampled_one_in"
    );
    assert_eq!(lines.len(), 5, "{csv}");
    assert!(lines[1].contains(",192.0.2.44,PUT,/v1/things,VALID,,current,1"));
    assert!(!csv.contains(&k.secret) && !csv.contains("LEAK"));

    // The management API, with paging.
    let m = manager(&admin).await;
    let (status, page) = api_get(
        &app.base,
        &m.secret,
        &format!("/api/v1/keys/{}/requests?limit=3", k.id),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["requests"].as_array().unwrap().len(), 3);
    assert_eq!(page["requests"][0]["path"], json!("/v1/things"));
    let before = page["next_before"].as_i64().expect("a next page");
    let (_, older) = api_get(
        &app.base,
        &m.secret,
        &format!("/api/v1/keys/{}/requests?limit=3&before={before}", k.id),
    )
    .await;
    assert_eq!(older["requests"].as_array().unwrap().len(), 1);
    assert_eq!(older["requests"][0]["ip"], json!("203.0.113.7"));
    assert_eq!(older["next_before"], Value::Null);
    let (status, body) = api_get(
        &app.base,
        &m.secret,
        &format!(
            "/api/v1/keys/{}/requests?outcome=INSUFFICIENT_PERMISSION",
            k.id
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["requests"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn callers_on_the_previous_secret_are_named_and_ending_the_grace_refuses_it() {
    let (app, admin) = spawn_ready_with(|c| {
        c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let k = admin
        .create_key(
            "/workspace/keys",
            &[("name", "rotating"), ("permissions", "data:read")],
        )
        .await;
    let m = manager(&admin).await;
    // No grace period yet: nothing to end.
    let (status, body) = api_post(
        &app.base,
        &m.secret,
        &format!("/api/v1/keys/{}/end-grace", k.id),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["code"], json!("NO_GRACE_PERIOD"));

    let (_, confirm) = admin.page(&format!("/keys/{}/regenerate", k.id)).await;
    let nonce = hidden(&confirm, "nonce").unwrap();
    let res = admin
        .post_form(
            &format!("/keys/{}/regenerate", k.id),
            &[("grace", "24h"), ("nonce", &nonce)],
        )
        .await;
    let new = shown_secret(&res.text().await.unwrap()).unwrap();

    let call = |secret: String, ip: &'static str, agent: &'static str| {
        let base = app.base.clone();
        async move {
            reqwest::Client::new()
                .get(format!("{base}/api/v1/me"))
                .bearer_auth(secret)
                .header("X-Forwarded-For", ip)
                .header("User-Agent", agent)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    // A billing job still on the old secret, the web shop switched.
    assert_eq!(
        call(k.secret.clone(), "198.51.100.20", "billing-job/1.0").await,
        StatusCode::OK
    );
    assert_eq!(
        call(new.clone(), "198.51.100.30", "python-requests/2.32.3").await,
        StatusCode::OK
    );
    let rows = wait_for(&app, &k.id, 2).await;
    assert_eq!(
        rows.iter().map(|r| r.5.as_str()).collect::<Vec<_>>(),
        ["previous", "current"]
    );

    let (status, callers) = api_get(
        &app.base,
        &m.secret,
        &format!("/api/v1/keys/{}/callers", k.id),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{callers}");
    assert!(callers["grace_until"].is_string());
    let list = callers["callers"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{callers}");
    let by_ip = |ip: &str| list.iter().find(|c| c["ip"] == json!(ip)).unwrap().clone();
    assert_eq!(by_ip("198.51.100.20")["previous_secret_checks"], json!(1));
    assert_eq!(by_ip("198.51.100.30")["previous_secret_checks"], json!(0));
    assert_eq!(by_ip("198.51.100.30")["checks"], json!(1));

    // The key page says who has not switched and offers to end the grace.
    let (_, detail) = admin.page(&format!("/keys/{}", k.id)).await;
    assert!(detail.contains("1 caller of the last 24 hours still presents it"));
    assert!(detail.contains(&format!("/keys/{}/end-grace", k.id)));
    let (status, confirm) = admin.page(&format!("/keys/{}/end-grace", k.id)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(confirm.contains("End grace period") && confirm.contains("1 caller"));
    // A state-changing request needs its CSRF token.
    let res = admin
        .post_raw(&format!("/keys/{}/end-grace", k.id), &[])
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(me(&app.base, &k.secret).await.0, StatusCode::OK);

    let res = admin
        .post_form(&format!("/keys/{}/end-grace", k.id), &[])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (status, code) = me_code(&app.base, &k.secret).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "EXPIRED"),
        "the old secret is refused at once"
    );
    assert_eq!(me(&app.base, &new).await.0, StatusCode::OK);
    assert!(
        app.event_actions()
            .await
            .contains(&"key.grace_ended".to_owned())
    );
    // Once ended, there is nothing to end: page and API alike.
    let (status, body) = api_post(
        &app.base,
        &m.secret,
        &format!("/api/v1/keys/{}/end-grace", k.id),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["code"], json!("NO_GRACE_PERIOD"));
    let (status, _) = admin.page(&format!("/keys/{}/end-grace", k.id)).await;
    assert_eq!(status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn the_management_api_ends_a_grace_period() {
    let (app, admin) = spawn_ready().await;
    let k = admin
        .create_key(
            "/workspace/keys",
            &[("name", "rotating"), ("permissions", "data:read")],
        )
        .await;
    let m = manager(&admin).await;
    let res = reqwest::Client::new()
        .post(format!("{}/api/v1/keys/{}/regenerate", app.base, k.id))
        .bearer_auth(&m.secret)
        .json(&json!({"grace": "24h"}))
        .send()
        .await
        .unwrap();
    let status = res.status();
    let made = res.json::<Value>().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{made}");
    let new = made["secret"].as_str().unwrap().to_owned();
    assert_eq!(me(&app.base, &k.secret).await.0, StatusCode::OK);
    let (status, body) = api_post(
        &app.base,
        &m.secret,
        &format!("/api/v1/keys/{}/end-grace", k.id),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["id"], json!(k.id));
    assert_eq!(me_code(&app.base, &k.secret).await.1, "EXPIRED");
    assert_eq!(me(&app.base, &new).await.0, StatusCode::OK);
}

#[tokio::test]
async fn another_workspaces_key_is_not_found() {
    let (app, admin) = spawn_ready().await;
    let k = admin
        .create_key(
            "/workspace/keys",
            &[("name", "ours"), ("permissions", "data:read")],
        )
        .await;
    assert_eq!(me(&app.base, &k.secret).await.0, StatusCode::OK);
    wait_for(&app, &k.id, 1).await;
    let zed = app.other_workspace_admin().await;
    for path in ["requests", "requests.csv", "end-grace"] {
        let (status, body) = zed.page(&format!("/keys/{}/{path}", k.id)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(!body.contains("/api/v1/me"));
    }
    let res = zed
        .post_form(&format!("/keys/{}/end-grace", k.id), &[])
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let zm = zed
        .create_key(
            "/workspace/keys",
            &[
                ("name", "Zed's provisioning"),
                ("expiry", "never"),
                ("permissions", "keyward:keys:read"),
                ("permissions", "keyward:keys:write"),
            ],
        )
        .await;
    for path in ["requests", "callers"] {
        let (status, _) = api_get(
            &app.base,
            &zm.secret,
            &format!("/api/v1/keys/{}/{path}", k.id),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    let (status, _) = api_post(
        &app.base,
        &zm.secret,
        &format!("/api/v1/keys/{}/end-grace", k.id),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_busy_key_is_sampled_and_says_so() {
    // No flush on its own during the test: the test flushes.
    let (app, admin) = spawn_ready_with(|c| {
        c.usage_flush_interval = std::time::Duration::from_secs(3600);
    })
    .await;
    let k = admin
        .create_key(
            "/workspace/keys",
            &[("name", "busy"), ("permissions", "data:read")],
        )
        .await;
    const CHECKS: u32 = 100;
    for i in 0..CHECKS {
        // Distinct paths: identical calls would be merged into one row.
        let v = verify(
            &app.base,
            json!({"key": k.secret, "path": format!("/busy/{i}")}),
        )
        .await;
        assert_eq!(v["valid"], json!(true));
    }
    let (verifier, pool) = (app.state.verifier.clone(), app.pool.clone());
    tokio::task::spawn_blocking(move || verifier.flush(&pool))
        .await
        .unwrap();
    let expected: Vec<u32> = (1..=CHECKS)
        .filter_map(keyward::verify::requests::sample)
        .collect();
    let id = k.id.clone();
    let weights: Vec<i32> = app
        .with_db(move |c| {
            use diesel::prelude::*;
            use keyward::db::schema::key_requests as r;
            r::table
                .filter(r::key_id.eq(id))
                .order(r::id.asc())
                .select(r::one_in)
                .load(c)
                .unwrap()
        })
        .await;
    assert_eq!(
        weights,
        expected.iter().map(|w| *w as i32).collect::<Vec<_>>()
    );
    assert!(weights.len() < CHECKS as usize && weights.iter().any(|w| *w > 1));
    // The weights stand for about every check.
    let total: i32 = weights.iter().sum();
    assert!((50..=200).contains(&total), "{total}");
    let (_, page) = admin.page(&format!("/keys/{}/requests", k.id)).await;
    assert!(page.contains("stand for n checks"), "{page}");
    assert!(page.contains("(×2)"));
}

/// A key polled by one client writes one row a flush interval, standing
/// for every identical call; a different call is its own row.
#[tokio::test]
async fn identical_calls_within_a_flush_are_one_row_standing_for_all() {
    let (app, admin) = spawn_ready_with(|c| {
        c.usage_flush_interval = std::time::Duration::from_secs(3600);
    })
    .await;
    let k = admin
        .create_key(
            "/workspace/keys",
            &[("name", "polled"), ("permissions", "data:read")],
        )
        .await;
    for _ in 0..4 {
        let v = verify(
            &app.base,
            json!({"key": k.secret, "method": "GET", "path": "/dashboards/poll", "ip": "203.0.113.7"}),
        )
        .await;
        assert_eq!(v["valid"], json!(true));
    }
    verify(
        &app.base,
        json!({"key": k.secret, "method": "POST", "path": "/dashboards/save", "ip": "203.0.113.7"}),
    )
    .await;
    let (verifier, pool) = (app.state.verifier.clone(), app.pool.clone());
    tokio::task::spawn_blocking(move || verifier.flush(&pool))
        .await
        .unwrap();
    let rows = stored(&app, &k.id).await;
    let id = k.id.clone();
    let mut weights: Vec<(Option<String>, i32)> = app
        .with_db(move |c| {
            use diesel::prelude::*;
            use keyward::db::schema::key_requests as r;
            r::table
                .filter(r::key_id.eq(id))
                .select((r::path, r::one_in))
                .load(c)
                .unwrap()
        })
        .await;
    weights.sort();
    assert_eq!(
        weights,
        [
            (Some("/dashboards/poll".to_owned()), 4),
            (Some("/dashboards/save".to_owned()), 1)
        ],
        "{rows:?}"
    );
    let (_, page) = admin.page(&format!("/keys/{}/requests", k.id)).await;
    assert!(page.contains("(×4)"), "{page}");
    assert!(page.contains("stand for n checks"), "{page}");
    // The caller counts every check.
    let (_, key_page) = admin.page(&format!("/keys/{}", k.id)).await;
    assert!(key_page.contains("203.0.113.7"), "{key_page}");
}

#[tokio::test]
async fn the_log_keeps_the_newest_checks_of_each_key() {
    let (app, admin) = spawn_ready_with(|c| {
        c.verifier.request_log_per_key = 3;
    })
    .await;
    let k = admin
        .create_key(
            "/workspace/keys",
            &[("name", "kept"), ("permissions", "data:read")],
        )
        .await;
    for i in 1..=5 {
        let path = format!("/call/{i}");
        verify(&app.base, json!({"key": k.secret, "path": path})).await;
    }
    let mut paths = Vec::new();
    for _ in 0..100 {
        paths = stored(&app, &k.id)
            .await
            .into_iter()
            .filter_map(|r| r.2)
            .collect::<Vec<_>>();
        if paths.last().map(String::as_str) == Some("/call/5") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(paths, ["/call/3", "/call/4", "/call/5"]);
}
