//! Usage quotas (issue 23, section 1): "how much" a key may be used per
//! period or in total, spent by every check, exact under concurrency and
//! across instances, never refilled by a restart, topped up by people and
//! scripts.

use crate::helpers::*;
use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A workspace management key that can read and write keys.
async fn manager(admin: &Browser, base: &str) -> Api {
    let key = admin
        .create_key(
            "/workspace/keys",
            &[
                ("name", "Provisioning"),
                ("expiry", "never"),
                ("permissions", "keyward:keys:read"),
                ("permissions", "keyward:keys:write"),
            ],
        )
        .await;
    Api::new(base, &key.secret)
}

/// Send `n` `/me` checks at once (spread over `bases`); returns how many
/// were accepted, and the codes of the others.
async fn burst(bases: &[&str], key: &str, n: usize) -> (usize, Vec<String>) {
    let client = reqwest::Client::new();
    let answers = join_all((0..n).map(|i| {
        let req = client
            .get(format!("{}/api/v1/me", bases[i % bases.len()]))
            .bearer_auth(key)
            .send();
        async move {
            let res = req.await.expect("GET /me");
            let status = res.status();
            let body: Value = res.json().await.unwrap_or(Value::Null);
            (
                status,
                body["error"]["code"].as_str().unwrap_or("").to_owned(),
            )
        }
    }))
    .await;
    let ok = answers.iter().filter(|(s, _)| *s == StatusCode::OK).count();
    let refused = answers
        .into_iter()
        .filter(|(s, _)| *s != StatusCode::OK)
        .map(|(_, c)| c)
        .collect();
    (ok, refused)
}

#[tokio::test]
async fn two_hundred_parallel_checks_spend_a_quota_exactly_and_a_top_up_adds_to_it() {
    let (app, admin) = spawn_ready().await;
    let key = admin
        .create_key(
            "/workspace/keys",
            &[
                ("name", "Metered ERP"),
                ("quota_limit", "50"),
                ("quota_period", "total"),
            ],
        )
        .await;
    let (ok, refused) = burst(&[&app.base], &key.secret, 200).await;
    assert_eq!(ok, 50, "exactly the quota, under 200 parallel checks");
    assert!(refused.iter().all(|c| c == "QUOTA_EXCEEDED"), "{refused:?}");
    // Used up for good: no refill, so no Retry-After, and the message says
    // how to get more.
    let (status, headers, body) = me(&app.base, &key.secret).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"]["code"], "QUOTA_EXCEEDED");
    assert!(headers.get("retry-after").is_none());
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("top it up"),
        "{body}"
    );

    // The key page says so, and offers the top-up.
    let (_, page) = admin.page(&format!("/keys/{}", key.id)).await;
    assert!(page.contains("50 in total, no refill"), "{page}");
    assert!(page.contains("<strong>0 left</strong>"), "{page}");
    assert!(page.contains("Top up the quota"));
    // A top-up that is not a number changes nothing.
    let res = admin
        .post_form(
            &format!("/keys/{}/quota", key.id),
            &[("how", "add"), ("amount", "lots")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (_, page) = admin.page(&format!("/keys/{}", key.id)).await;
    assert!(page.contains("Nothing was changed"), "{page}");
    assert!(page.contains("<strong>0 left</strong>"));
    let res = admin
        .post_form(
            &format!("/keys/{}/quota", key.id),
            &[("how", "add"), ("amount", "5")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (ok, _) = burst(&[&app.base], &key.secret, 20).await;
    assert_eq!(ok, 5, "the top-up's 5 uses, and not one more");
    let topped = app
        .events()
        .await
        .into_iter()
        .find(|e| e.action == "key.quota_topped_up")
        .expect("audited");
    let details: Value = serde_json::from_str(&topped.details).unwrap();
    assert_eq!(
        (details["before"].as_i64(), details["after"].as_i64()),
        (Some(0), Some(5))
    );

    // Quota refusals count in the key's usage, like every refusal.
    app.state.verifier.flush(&app.pool);
    let api = manager(&admin, &app.base).await;
    let (s, usage) = api.get(&format!("/api/v1/keys/{}/usage", key.id)).await;
    assert_eq!(s, StatusCode::OK, "{usage}");
    let refusals: i64 = usage["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["outcome"] == "QUOTA_EXCEEDED")
        .map(|b| b["count"].as_i64().unwrap())
        .sum();
    assert_eq!(refusals, 150 + 1 + 15, "{usage}");
    // The inventory names the quota; the list says what is left.
    let csv = admin.get("/workspace/keys.csv").await.text().await.unwrap();
    assert!(csv.contains("50 in total, no refill"), "{csv}");
    let (_, list) = admin.page("/workspace/keys").await;
    assert!(list.contains("Quota: 0 of 50 left"), "{list}");
}

#[tokio::test]
async fn verify_spends_its_cost_forward_auth_its_header_and_both_say_what_is_left() {
    let (app, admin) = spawn_ready().await;
    let api = manager(&admin, &app.base).await;
    let (s, made) = api
        .post(
            "/api/v1/keys",
            json!({"name": "daily", "kind": "workspace", "quota": {"limit": 10, "period": "day"}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{made}");
    assert_eq!(
        made["key"]["quota"],
        json!({"limit": 10, "period": "day", "refill": null})
    );
    let secret = made["secret"].as_str().unwrap().to_owned();

    let check = |cost: Value| {
        let (base, secret) = (app.base.clone(), secret.clone());
        async move {
            let mut body = json!({"key": secret});
            if !cost.is_null() {
                body["cost"] = cost;
            }
            verify(&base, body).await
        }
    };
    let v = check(json!(0)).await;
    assert_eq!(v["valid"], true, "{v}");
    assert_eq!(v["key"]["quota"]["remaining"], 10, "cost 0 spends nothing");
    let v = check(json!(4)).await;
    assert_eq!(v["key"]["quota"]["remaining"], 6, "{v}");
    let v = check(Value::Null).await;
    assert_eq!(v["key"]["quota"]["remaining"], 5, "1 by default");
    let v = check(json!(6)).await;
    assert_eq!(
        (
            v["valid"].as_bool(),
            v["code"].as_str(),
            v["status"].as_i64()
        ),
        (Some(false), Some("QUOTA_EXCEEDED"), Some(429)),
        "{v}"
    );
    // A daily quota refills at the next 00:00 UTC.
    let retry = v["retry_after"].as_u64().unwrap();
    assert!((1..=86_400).contains(&retry), "{v}");
    assert_eq!(
        v["key"]["quota"]["remaining"], 5,
        "a refusal spends nothing"
    );
    let res = reqwest::Client::new()
        .post(format!("{}/api/v1/keys/verify", app.base))
        .json(&json!({"key": secret, "cost": -1}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);

    // forward-auth: the gateway's X-Keyward-Cost, what is left in a header.
    let gateway = |cost: &[&str]| {
        let mut req = reqwest::Client::new()
            .get(format!("{}/api/v1/forward-auth", app.base))
            .bearer_auth(&secret);
        for c in cost {
            req = req.header("X-Keyward-Cost", *c);
        }
        req.send()
    };
    let res = gateway(&["3"]).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["x-keyward-quota-remaining"], "2");
    let res = gateway(&["abc"]).await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res = gateway(&["1", "1"]).await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST, "a repeated cost");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "REPEATED_HEADER");
    let res = gateway(&["3"]).await.unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers().contains_key("retry-after"));
    // /me: one use, the header and the body.
    let (status, headers, body) = me(&app.base, &secret).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(headers["x-keyward-quota-remaining"], "1");
    assert_eq!(body["quota"]["remaining"], 1);
    assert_eq!(body["quota"]["period"], "day");

    // The management API reads what is left, and sets it.
    let id = made["id"].as_str().unwrap();
    let (s, q) = api.get(&format!("/api/v1/keys/{id}/quota")).await;
    assert_eq!(s, StatusCode::OK, "{q}");
    assert_eq!(q["remaining"], 1);
    let (s, q) = api
        .post(&format!("/api/v1/keys/{id}/quota"), json!({"set": 40}))
        .await;
    assert_eq!(s, StatusCode::OK, "{q}");
    assert_eq!(q["remaining"], 40);
    for bad in [
        json!({}),
        json!({"set": 1, "add": 1}),
        json!({"add": 0}),
        json!({"set": -5}),
    ] {
        let (s, p) = api
            .post(&format!("/api/v1/keys/{id}/quota"), bad.clone())
            .await;
        assert!(
            s == StatusCode::UNPROCESSABLE_ENTITY || s == StatusCode::BAD_REQUEST,
            "{bad} → {s} {p}"
        );
    }
    let (_, q) = api.get(&format!("/api/v1/keys/{id}/quota")).await;
    assert_eq!(q["remaining"], 40, "refused top-ups changed nothing");

    // The key's page: today's checks, accepted (verify 0, 4, 1; forward-auth
    // 3; /me) and refused for the quota (verify 6, forward-auth 3); the
    // three earlier days had none.
    app.state.verifier.flush(&app.pool);
    let (_, page) = admin.page(&format!("/keys/{id}")).await;
    assert!(page.contains("Quota use by period"), "{page}");
    assert!(
        page.contains("<th scope=\"row\">Today</th><td>5</td><td>2</td>"),
        "{page}"
    );
    let periods = &page[page.find("periods-title").unwrap()..];
    let periods = &periods[..periods.find("</table>").unwrap()];
    assert_eq!(
        periods.matches("<th scope=\"row\">").count(),
        4,
        "{periods}"
    );
    assert_eq!(
        periods.matches("</th><td>0</td><td>0</td>").count(),
        3,
        "{periods}"
    );
}

#[tokio::test]
async fn bad_quotas_are_refused_per_field_and_edits_move_what_is_left() {
    let (app, admin) = spawn_ready().await;
    let api = manager(&admin, &app.base).await;
    let (_, before) = api.get("/api/v1/keys").await;
    for (quota, field) in [
        (json!({"limit": 0, "period": "day"}), "quota_limit"),
        (
            json!({"limit": 2_000_000_000i64, "period": "day"}),
            "quota_limit",
        ),
        (
            json!({"limit": 10, "period": "total", "refill": {"amount": 11, "period": "day"}}),
            "quota_refill",
        ),
        (
            json!({"limit": 10, "period": "day", "refill": {"amount": 5, "period": "day"}}),
            "quota_refill",
        ),
    ] {
        let (s, p) = api
            .post(
                "/api/v1/keys",
                json!({"name": "bad", "kind": "workspace", "quota": quota}),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{quota} → {p}");
        assert_eq!(p["errors"][0]["field"], field, "{quota} → {p}");
    }
    let (_, after) = api.get("/api/v1/keys").await;
    assert_eq!(
        after["keys"].as_array().unwrap().len(),
        before["keys"].as_array().unwrap().len(),
        "nothing was created"
    );
    // The page: a message next to the field, the form as sent.
    let res = admin
        .submit_new_key(
            "/workspace/keys",
            &[
                ("name", "bad"),
                ("quota_limit", "many"),
                ("quota_period", "day"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = res.text().await.unwrap();
    assert!(body.contains("id=\"f-quota_limit-error\""), "{body}");

    // Credits with a refill, spent, then the limit raised: what is left
    // moves by the change.
    let (s, made) = api
        .post(
            "/api/v1/keys",
            json!({"name": "credits", "kind": "workspace",
                   "quota": {"limit": 100, "period": "total", "refill": {"amount": 10, "period": "week"}}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{made}");
    let id = made["id"].as_str().unwrap().to_owned();
    let secret = made["secret"].as_str().unwrap().to_owned();
    let v = verify(&app.base, json!({"key": secret, "cost": 30})).await;
    assert_eq!(v["key"]["quota"]["remaining"], 70, "{v}");
    let (s, k) = api
        .patch(
            &format!("/api/v1/keys/{id}"),
            json!({"quota": {"limit": 150, "period": "total", "refill": {"amount": 10, "period": "week"}}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{k}");
    let (_, q) = api.get(&format!("/api/v1/keys/{id}/quota")).await;
    assert_eq!(q["remaining"], 120, "{q}");
    let updated = app
        .events()
        .await
        .into_iter()
        .rfind(|e| e.action == "key.updated")
        .unwrap();
    let details: Value = serde_json::from_str(&updated.details).unwrap();
    assert_eq!(details["old"]["quota"]["limit"], 100, "{details}");
    assert_eq!(details["new"]["quota"]["limit"], 150, "{details}");
    // Removed: checks are unmetered, and there is nothing to top up.
    let (s, k) = api
        .patch(&format!("/api/v1/keys/{id}"), json!({"quota": null}))
        .await;
    assert_eq!((s, &k["quota"]), (StatusCode::OK, &Value::Null), "{k}");
    let (s, p) = api.get(&format!("/api/v1/keys/{id}/quota")).await;
    assert_eq!(s, StatusCode::CONFLICT, "{p}");
    assert_eq!(p["code"], "NO_QUOTA");
    let v = verify(&app.base, json!({"key": secret, "cost": 1000})).await;
    assert_eq!(v["valid"], true, "{v}");
}

/// A narrow management key with a quota cannot make a key without one, or
/// with a larger one.
#[tokio::test]
async fn a_management_key_with_a_quota_is_the_ceiling_of_the_quotas_it_gives() {
    let (app, admin) = spawn_ready().await;
    let narrow = admin
        .create_key(
            "/workspace/keys",
            &[
                ("name", "Metered provisioning"),
                ("expiry", "never"),
                ("permissions", "keyward:keys:write"),
                ("quota_limit", "1000"),
                ("quota_period", "month"),
            ],
        )
        .await;
    let api = Api::new(&app.base, &narrow.secret);
    for body in [
        json!({"name": "x", "kind": "workspace"}),
        json!({"name": "x", "kind": "workspace", "quota": {"limit": 1001, "period": "day"}}),
    ] {
        let (s, p) = api.post("/api/v1/keys", body.clone()).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body} → {p}");
        assert_eq!(p["errors"][0]["field"], "quota_limit", "{p}");
    }
    let (s, p) = api
        .post(
            "/api/v1/keys",
            json!({"name": "x", "kind": "workspace", "quota": {"limit": 100, "period": "day"}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
}

/// A restart never refills a quota: a stop gives the unspent reserve
/// back, and even a crash loses at most a batch (under-use, never
/// over-use).
#[tokio::test]
async fn a_restart_never_refills_a_quota() {
    let (db, _guard) = tokio::task::spawn_blocking(fresh_database).await.unwrap();
    let app = spawn_app_on(db.clone()).await;
    let admin = app.browser();
    admin
        .complete_setup(&app, "Acme", "Ada Admin", ADMIN_EMAIL, ADMIN_PASSWORD)
        .await;
    let key = admin
        .create_key(
            "/workspace/keys",
            &[
                ("name", "credits"),
                ("quota_limit", "1000"),
                ("quota_period", "total"),
            ],
        )
        .await;
    let api_key = admin
        .create_key(
            "/workspace/keys",
            &[
                ("name", "reader"),
                ("expiry", "never"),
                ("permissions", "keyward:keys:read"),
            ],
        )
        .await;
    let (ok, _) = burst(&[&app.base], &key.secret, 30).await;
    assert_eq!(ok, 30);
    // A stop as the binary does it: the final flush gives the reserve back.
    app.state
        .verifier
        .flush_before_exit(&app.pool, std::time::Duration::from_secs(5));
    // Read on a fresh instance, which holds no reserve: the database's
    // balance.
    let remaining = |app: &TestApp, id: String| {
        let api = Api::new(&app.base, &api_key.secret);
        async move {
            let (s, q) = api.get(&format!("/api/v1/keys/{id}/quota")).await;
            assert_eq!(s, StatusCode::OK, "{q}");
            q["remaining"].as_i64().unwrap()
        }
    };
    drop(app);
    let app = restart(&db).await;
    assert_eq!(
        remaining(&app, key.id.clone()).await,
        970,
        "exactly what was not spent"
    );
    let (ok, _) = burst(&[&app.base], &key.secret, 10).await;
    assert_eq!(ok, 10);
    // A crash: no final flush. What this instance held in reserve is lost,
    // at most 64 uses, and nothing comes back.
    drop(app);
    let app = restart(&db).await;
    let left = remaining(&app, key.id.clone()).await;
    assert!((960 - 64..=960).contains(&left), "{left}");
}

/// Start again on the same database, once the previous instance let go of
/// it (SQLite's lock).
async fn restart(db: &keyward::config::DatabaseUrl) -> TestApp {
    if let keyward::config::DatabaseUrl::Sqlite(path) = db {
        let started = std::time::Instant::now();
        while keyward::db::claim_sqlite(path).is_err() {
            assert!(started.elapsed() < std::time::Duration::from_secs(10));
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    spawn_app_on(db.clone()).await
}

#[tokio::test]
#[ignore = "needs PostgreSQL: run with KEYWARD_TEST_DATABASE_URL and --ignored"]
async fn pg_only_two_instances_never_spend_more_than_the_quota() {
    two_instances_never_spend_more_than_the_quota(|_| {}).await;
}

/// The same with Redis sharing the instances' rate limits: quotas do not
/// use it, and it changes nothing of their exactness.
#[tokio::test]
#[ignore = "needs PostgreSQL and Redis: run with KEYWARD_TEST_DATABASE_URL and --ignored"]
async fn pg_only_the_quota_holds_across_two_instances_with_redis() {
    two_instances_never_spend_more_than_the_quota(|c| {
        c.redis_url = Some(crate::engine::redis_url());
    })
    .await;
}

async fn two_instances_never_spend_more_than_the_quota(
    configure: fn(&mut keyward::config::Config),
) {
    assert!(
        std::env::var("KEYWARD_TEST_DATABASE_URL").is_ok_and(|u| !u.trim().is_empty()),
        "this test needs two instances on one PostgreSQL: set KEYWARD_TEST_DATABASE_URL"
    );
    let (a, admin) = spawn_ready_with(configure).await;
    let b = a.another_instance(configure).await;
    let key = admin
        .create_key(
            "/workspace/keys",
            &[
                ("name", "shared"),
                ("quota_limit", "100"),
                ("quota_period", "total"),
            ],
        )
        .await;
    let (ok, refused) = burst(&[&a.base, &b.base], &key.secret, 200).await;
    assert!(ok <= 100, "never more than the quota: {ok}");
    assert!(refused.iter().all(|c| c == "QUOTA_EXCEEDED"), "{refused:?}");
    // Each instance spends what it still holds in reserve, then refuses:
    // together, exactly the quota.
    let (more_a, _) = burst(&[&a.base], &key.secret, 20).await;
    let (more_b, _) = burst(&[&b.base], &key.secret, 20).await;
    assert_eq!(ok + more_a + more_b, 100, "{ok} + {more_a} + {more_b}");
    // A top-up on A reaches B through the change feed (its reserve of the
    // old version dropped), and again no use is spent twice.
    let applied = |app: &TestApp| {
        app.state
            .verifier
            .feed_status()
            .applied
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    let heard = applied(&b);
    let api = manager(&admin, &a.base).await;
    let (s, q) = api
        .post(
            &format!("/api/v1/keys/{}/quota", key.id),
            json!({"add": 40}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{q}");
    // The burst starts once B has heard of both writes (the management
    // key, the top-up): checked on B before the top-up's notice arrives,
    // the key's cached copy is of the old version, and the reserve B takes
    // under it is dropped when the notice comes, a documented bounded
    // under-use (docs/quotas.md) that this exact count would miss.
    let since = std::time::Instant::now();
    while applied(&b) < heard + 2 {
        assert!(
            since.elapsed() < std::time::Duration::from_secs(10),
            "B never heard of the top-up"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let (ok, _) = burst(&[&a.base, &b.base], &key.secret, 100).await;
    let (more_a, _) = burst(&[&a.base], &key.secret, 20).await;
    let (more_b, _) = burst(&[&b.base], &key.secret, 20).await;
    assert_eq!(ok + more_a + more_b, 40, "{ok} + {more_a} + {more_b}");
}

/// What a gateway test needs for quotas: the app, a key of 100 uses,
/// another with `reports:export` and 100 uses, a key without a quota, and
/// their workspace.
pub(crate) async fn behind_a_gateway() -> (TestApp, [CreatedKey; 3], String) {
    let (app, admin) = spawn_ready().await;
    let metered = [("quota_limit", "100"), ("quota_period", "total")];
    let reader = admin
        .create_key(
            "/workspace/keys",
            &[&[("name", "metered reader")][..], &metered[..]].concat(),
        )
        .await;
    let exporter = admin
        .create_key(
            "/workspace/keys",
            &[
                &[
                    ("name", "metered exporter"),
                    ("permissions", "reports:export"),
                ][..],
                &metered[..],
            ]
            .concat(),
        )
        .await;
    let free = admin
        .create_key("/workspace/keys", &[("name", "unmetered")])
        .await;
    let (_, _, facts) = me(&app.base, &free.secret).await;
    let workspace = facts["workspace_id"].as_str().unwrap().to_owned();
    (app, [reader, exporter, free], workspace)
}

/// Through the gateway at `base` (the documented configuration): a request
/// spends what the gateway says it costs (1; a report 10), never what the
/// client claims in its own `X-Keyward-Cost`, and the service learns what
/// is left from keyward, never from the client.
pub(crate) async fn assert_gateway_spends_its_cost(
    url: impl Fn(&str) -> String,
    [reader, exporter, free]: &[CreatedKey; 3],
    log: impl Fn() -> String,
) {
    let through = |path: String, key: String, cost: &'static str| async move {
        let res = reqwest::Client::new()
            .get(path)
            .bearer_auth(key)
            .header("X-Keyward-Cost", cost)
            .header("X-Keyward-Quota-Remaining", "999999")
            .send()
            .await
            .unwrap();
        let status = res.status();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        (status, body)
    };
    let left = |body: &Value| -> String {
        body["headers"]["x-keyward-quota-remaining"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    };
    for (cost, expected) in [("0", "99"), ("1000000", "98")] {
        let (status, body) = through(url("/data/1"), reader.secret.clone(), cost).await;
        assert_eq!(status, StatusCode::OK, "{body}\n{}", log());
        assert_eq!(left(&body), expected, "client's cost {cost}: {body}");
    }
    let (status, body) = through(url("/reports/q3"), exporter.secret.clone(), "0").await;
    assert_eq!(status, StatusCode::OK, "{body}\n{}", log());
    assert_eq!(left(&body), "90", "a report costs 10: {body}");
    let (status, body) = through(url("/data/2"), free.secret.clone(), "0").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        left(&body),
        "",
        "no quota: nothing, never the client's value: {body}"
    );
}
