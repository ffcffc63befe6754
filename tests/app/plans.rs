//! Plans (issue 23, section 3): named settings keys follow. One edit of a
//! plan changes every key on it (except what a key overrides), at once and
//! on every instance, audited once; the pages and the management API share
//! the rules, and a management key cannot use a plan to give keys more
//! than it holds.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The rate limit `/me` reports for a key (after one check).
async fn limit_of(base: &str, secret: &str) -> String {
    let (status, headers, body) = me(base, secret).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    headers
        .get("x-ratelimit-limit")
        .map_or_else(|| "none".to_owned(), |v| v.to_str().unwrap().to_owned())
}

/// What is left of a key's quota, as `/me` reports it after its check.
async fn left_of(base: &str, secret: &str) -> Option<i64> {
    let (status, headers, body) = me(base, secret).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    headers
        .get("x-keyward-quota-remaining")
        .map(|v| v.to_str().unwrap().parse().unwrap())
}

/// A workspace management key with `permissions` (and any other fields).
async fn manager(admin: &Browser, base: &str, extra: &[(&str, &str)]) -> Api {
    let mut fields = vec![("name", "Plans robot"), ("expiry", "never")];
    fields.extend_from_slice(extra);
    let key = admin.create_key("/workspace/keys", &fields).await;
    Api::new(base, &key.secret)
}

/// The plan's id, from the Plans page's link to it.
async fn plan_id_named(admin: &Browser, name: &str) -> String {
    let (_, page) = admin.page("/workspace/settings/plans").await;
    let at = page
        .find(&format!(">{name}</a>"))
        .unwrap_or_else(|| panic!("{name} listed: {page}"));
    let start = page[..at].rfind("/workspace/settings/plans/").unwrap() + 26;
    page[start..at - 1].to_owned()
}

#[tokio::test]
async fn editing_a_plan_changes_every_key_on_it_except_what_a_key_overrides() {
    let (app, admin) = spawn_ready().await;
    // Empty state first.
    let (status, page) = admin.page("/workspace/settings/plans").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("No plans yet"), "{page}");

    // Bad input: each field says what is wrong, nothing is created.
    let res = admin
        .post_form(
            "/workspace/settings/plans",
            &[
                ("name", ""),
                ("rate_limit", "-3"),
                ("quota_limit", "100"),
                ("quota_period", "total"),
                ("quota_refill", "500"),
                ("quota_refill_period", "day"),
                ("allowed_ips", "10.0.0.0/33"),
                ("permission_limit", "only"),
                ("permissions", "teleport:now"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = res.text().await.unwrap();
    for field in [
        "f-name-error",
        "f-rate_limit-error",
        "f-quota_refill-error",
        "f-allowed_ips-error",
    ] {
        assert!(body.contains(field), "{field}: {body}");
    }
    assert!(
        body.contains("teleport:now") && body.contains("is not a permission of this workspace"),
        "{body}"
    );
    assert!(
        app.event_actions()
            .await
            .iter()
            .all(|a| !a.starts_with("plan."))
    );

    let res = admin
        .post_form(
            "/workspace/settings/plans",
            &[
                ("name", "Partner – standard"),
                ("description", "ERP partners"),
                ("rate_limit", "100"),
                ("quota_limit", "1000"),
                ("quota_period", "day"),
                ("permission_limit", "only"),
                ("permissions", "data:read"),
                ("permissions", "devices:read"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    // A name that exists, whatever its case, is refused.
    let res = admin
        .post_form(
            "/workspace/settings/plans",
            &[("name", "partner – STANDARD"), ("permission_limit", "any")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("A plan with this name exists")
    );
    let plan = plan_id_named(&admin, "Partner – standard").await;

    // The create dialog offers it; a key on it takes what it leaves empty
    // from the plan, and keeps what it fills in.
    let (_, dialog) = admin.page("/workspace/keys/new").await;
    assert!(dialog.contains(&format!("value=\"{plan}\"")), "{dialog}");
    let follows = admin
        .create_key(
            "/workspace/keys",
            &[
                ("name", "Follows"),
                ("plan", &plan),
                ("rate_limit", ""),
                ("permissions", "data:read"),
            ],
        )
        .await;
    // The workspace's default rate limit (set to 120 here), prefilled by
    // the dialog and left as it was, is not an override: the plan's 100.
    let res = admin
        .post_form(
            "/workspace/settings/limits",
            &[("max_keys_per_user", "50"), ("default_rate_limit", "120")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (_, dialog) = admin.page("/workspace/keys/new").await;
    assert!(
        dialog.contains("name=\"rate_limit_prefill\" value=\"120\""),
        "prefilled: {dialog}"
    );
    let prefilled = admin
        .create_key(
            "/workspace/keys",
            &[
                ("name", "Prefilled"),
                ("plan", &plan),
                ("rate_limit", "120"),
                ("rate_limit_prefill", "120"),
            ],
        )
        .await;
    assert_eq!(limit_of(&app.base, &prefilled.secret).await, "100");
    let (_, page) = admin.page(&format!("/keys/{}", prefilled.id)).await;
    assert!(!page.contains("overrides the plan"), "{page}");
    // Revoked: the plan's edit below reaches live keys only.
    let res = admin
        .post_form(&format!("/keys/{}/revoke", prefilled.id), &[])
        .await;
    assert!(res.status().is_redirection());
    let own_rate = admin
        .create_key(
            "/workspace/keys",
            &[("name", "Own rate"), ("plan", &plan), ("rate_limit", "5")],
        )
        .await;
    // A key holding a permission the plan does not allow is refused.
    let res = admin
        .submit_new_key(
            "/workspace/keys",
            &[
                ("name", "Too broad"),
                ("plan", &plan),
                ("permissions", "data:write"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = res.text().await.unwrap();
    assert!(
        body.contains("does not allow") && body.contains("data:write"),
        "{body}"
    );

    assert_eq!(limit_of(&app.base, &follows.secret).await, "100");
    assert_eq!(left_of(&app.base, &follows.secret).await, Some(998));
    assert_eq!(limit_of(&app.base, &own_rate.secret).await, "5");
    assert_eq!(left_of(&app.base, &own_rate.secret).await, Some(998));
    let (_, page) = admin.page(&format!("/keys/{}", follows.id)).await;
    assert!(page.contains("Partner – standard"), "{page}");
    assert!(page.contains("from the plan"), "{page}");
    let (_, page) = admin.page(&format!("/keys/{}", own_rate.id)).await;
    assert!(
        page.contains("the key&#39;s own") || page.contains("the key's own"),
        "{page}"
    );

    // One edit: both keys' quota, only the follower's rate limit, and the
    // permissions the plan no longer allows.
    let before = app.events().await.len();
    let res = admin
        .post_form(
            &format!("/workspace/settings/plans/{plan}"),
            &[
                ("name", "Partner – standard"),
                ("rate_limit", "200"),
                ("quota_limit", "3000"),
                ("quota_period", "day"),
                ("permission_limit", "only"),
                ("permissions", "devices:read"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(limit_of(&app.base, &follows.secret).await, "200");
    assert_eq!(
        limit_of(&app.base, &own_rate.secret).await,
        "5",
        "overridden"
    );
    // What is left moves by the change of the limit (+2000), less this
    // check, and less what the instance held in reserve when the edit
    // dropped it (docs/quotas.md: at most 64 uses, never an over-use).
    let left = left_of(&app.base, &follows.secret).await.unwrap();
    let exact = 998 - 2 + 2000 - 1;
    assert!((exact - 64..=exact).contains(&left), "{left}");
    let (_, v) = Api::new(&app.base, &follows.secret).get("/api/v1/me").await;
    assert_eq!(v["permissions"], json!([]), "data:read is gone: {v}");

    // Audited once, naming the plan and how many keys it reaches.
    let events = app.events().await;
    let new: Vec<_> = events[before..].iter().map(|e| e.action.as_str()).collect();
    assert_eq!(new, vec!["plan.updated"], "one event, not one per key");
    let details: Value = serde_json::from_str(&events[before].details).unwrap();
    assert_eq!(details["keys"], 2);
    let (_, trail) = admin.page("/workspace/events").await;
    assert!(trail.contains("which reaches 2 key(s)"), "{trail}");

    // Setting a field back to the plan's value follows the plan again.
    let res = admin
        .post_form(
            &format!("/keys/{}/edit", own_rate.id),
            &[
                ("name", "Own rate"),
                ("rate_limit", "200"),
                ("quota_limit", "3000"),
                ("quota_period", "day"),
                ("plan", &plan),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (_, page) = admin.page(&format!("/keys/{}", own_rate.id)).await;
    assert!(!page.contains("overrides the plan"), "{page}");

    // The inventory names each key's plan.
    let csv = admin.get("/workspace/keys.csv").await.text().await.unwrap();
    assert!(csv.lines().next().unwrap().ends_with(",plan"), "{csv}");
    assert!(
        csv.lines()
            .any(|l| l.contains(&follows.id) && l.ends_with("Partner – standard")),
        "{csv}"
    );

    // Deleting the plan: keys keep its settings as their own.
    let (status, confirm) = admin
        .page(&format!("/workspace/settings/plans/{plan}/delete"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        confirm.contains("keep working with the settings they have now"),
        "{confirm}"
    );
    let res = admin
        .post_form(&format!("/workspace/settings/plans/{plan}/delete"), &[])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(limit_of(&app.base, &follows.secret).await, "200");
    let (_, page) = admin.page(&format!("/keys/{}", follows.id)).await;
    assert!(!page.contains("from the plan"), "{page}");
    assert!(
        app.event_actions()
            .await
            .contains(&"plan.deleted".to_owned())
    );
}

#[tokio::test]
async fn plans_through_the_management_api_never_beyond_the_acting_key() {
    let (app, admin) = spawn_ready().await;
    // A normal user sees no Plans page, and an operator's key no API.
    let api = manager(
        &admin,
        &app.base,
        &[
            ("rate_limit", "50"),
            ("permissions", "data:read"),
            ("permissions", "keyward:plans:read"),
            ("permissions", "keyward:plans:write"),
            ("permissions", "keyward:keys:read"),
            ("permissions", "keyward:keys:write"),
        ],
    )
    .await;
    let (s, empty) = api.get("/api/v1/plans").await;
    assert_eq!((s, empty), (StatusCode::OK, json!({"plans": []})));

    // A plan is a grant to every key on it: a 50/min key cannot make one
    // with more, or with none.
    for rate in [json!(100), Value::Null] {
        let (s, v) = api
            .post(
                "/api/v1/plans",
                json!({"name": "Gold", "rate_limit_per_minute": rate}),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        assert!(v.to_string().contains("rate_limit"), "{v}");
    }
    let (s, bad) = api
        .post(
            "/api/v1/plans",
            json!({"name": "Gold", "rate_limit_per_minute": 40, "allowed_ips": ["300.1.2.3"], "quota": {"limit": 10, "period": "total", "refill": {"amount": 20, "period": "day"}}}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    // Beyond the schema's maxItems, even of blank items (schemathesis found
    // this one accepted and stored as no allowlist).
    let (s, bad) = api
        .post(
            "/api/v1/plans",
            json!({"name": "Gold", "rate_limit_per_minute": 40, "allowed_ips": vec![""; 101]}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    assert!(bad.to_string().contains("at most 100"), "{bad}");
    let (s, none) = api.get("/api/v1/plans").await;
    assert_eq!(
        (s, none["plans"].as_array().unwrap().len()),
        (StatusCode::OK, 0)
    );

    let (s, gold) = api
        .post(
            "/api/v1/plans",
            json!({"name": "Gold", "rate_limit_per_minute": 40, "quota": {"limit": 500, "period": "month"}, "permissions": ["data:read"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{gold}");
    let plan = gold["id"].as_str().unwrap().to_owned();
    assert_eq!(gold["keys"], 0);
    assert_eq!(gold["permissions"], json!(["data:read"]));

    // Keys on it: absent settings follow; one set is the key's own.
    let (s, a) = api
        .post(
            "/api/v1/keys",
            json!({"name": "A", "kind": "workspace", "plan": plan, "permissions": ["data:read"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{a}");
    assert_eq!(a["key"]["plan_id"], json!(plan));
    assert_eq!(a["key"]["plan_overrides"], json!([]));
    assert_eq!(a["key"]["rate_limit_per_minute"], 40);
    assert_eq!(a["key"]["quota"]["limit"], 500);
    let (s, b) = api
        .post(
            "/api/v1/keys",
            json!({"name": "B", "kind": "workspace", "plan": plan, "rate_limit_per_minute": 10}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(b["key"]["plan_overrides"], json!(["rate_limit"]));
    let (a_id, b_id) = (
        a["key"]["id"].as_str().unwrap().to_owned(),
        b["key"]["id"].as_str().unwrap().to_owned(),
    );
    // A made-up plan, and a permission the plan does not allow.
    let (s, v) = api
        .post(
            "/api/v1/keys",
            json!({"name": "C", "kind": "workspace", "plan": "plan_madeup"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v.to_string().contains("plan"), "{v}");
    let (s, v) = api
        .post(
            "/api/v1/keys",
            json!({"name": "C", "kind": "workspace", "plan": plan, "permissions": ["data:write"]}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");

    // PATCH the plan: A follows, B keeps its own rate limit.
    let (s, v) = api
        .patch(
            &format!("/api/v1/plans/{plan}"),
            json!({"rate_limit_per_minute": 30}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (v["keys"].as_i64(), v["name"].as_str()),
        (Some(2), Some("Gold"))
    );
    let (_, a) = api.get(&format!("/api/v1/keys/{a_id}")).await;
    let (_, b) = api.get(&format!("/api/v1/keys/{b_id}")).await;
    assert_eq!(a["rate_limit_per_minute"], 30, "{a}");
    assert_eq!(b["rate_limit_per_minute"], 10, "{b}");
    // Beyond the acting key, an edit is refused and changes nothing.
    let (s, _) = api
        .patch(
            &format!("/api/v1/plans/{plan}"),
            json!({"rate_limit_per_minute": null}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, a) = api.get(&format!("/api/v1/keys/{a_id}")).await;
    assert_eq!(a["rate_limit_per_minute"], 30);

    // B set back to the plan's value follows it again; A taken off the
    // plan keeps its settings as its own.
    let (s, b) = api
        .patch(
            &format!("/api/v1/keys/{b_id}"),
            json!({"rate_limit_per_minute": 30}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["plan_overrides"], json!([]), "{b}");
    let (s, a) = api
        .patch(&format!("/api/v1/keys/{a_id}"), json!({"plan": null}))
        .await;
    assert_eq!(s, StatusCode::OK, "{a}");
    assert_eq!(
        (a["plan_id"].clone(), a["rate_limit_per_minute"].clone()),
        (Value::Null, json!(30))
    );
    let (_, v) = api.get(&format!("/api/v1/plans/{plan}")).await;
    assert_eq!(v["keys"], 1);

    // Another workspace's plans are not found (ids of this one are made up
    // there): a key without plans:read cannot list them at all.
    let reader = manager(&admin, &app.base, &[("permissions", "keyward:keys:read")]).await;
    let (s, _) = reader.get("/api/v1/plans").await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = api.get("/api/v1/plans/plan_nosuchplan").await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let (s, gone) = api.delete(&format!("/api/v1/plans/{plan}")).await;
    assert_eq!(s, StatusCode::OK, "{gone}");
    assert_eq!(gone["keys_released"], 1);
    let (_, b) = api.get(&format!("/api/v1/keys/{b_id}")).await;
    assert_eq!(
        (b["plan_id"].clone(), b["rate_limit_per_minute"].clone()),
        (Value::Null, json!(30))
    );

    // The OpenAPI document describes them.
    let doc: Value = reqwest::get(format!("{}/api/v1/openapi.json", app.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["paths"]["/api/v1/plans/{id}"]["patch"].is_object());
    assert!(doc["components"]["schemas"]["PlanView"].is_object());
}

/// A plan's edit reaches a second instance, through one notice for the
/// plan (not one per key).
#[tokio::test]
#[ignore = "needs PostgreSQL: run with KEYWARD_TEST_DATABASE_URL and --ignored"]
async fn pg_only_a_plan_edit_reaches_another_instance_with_one_notice() {
    use diesel::Connection;
    let Ok(_) = std::env::var("KEYWARD_TEST_DATABASE_URL") else {
        panic!("this test needs PostgreSQL: set KEYWARD_TEST_DATABASE_URL");
    };
    let (a, admin) = spawn_ready().await;
    let b = a.another_instance(|_| {}).await;
    let res = admin
        .post_form(
            "/workspace/settings/plans",
            &[
                ("name", "Fleet"),
                ("rate_limit", "100"),
                ("permission_limit", "any"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let plan = plan_id_named(&admin, "Fleet").await;
    let mut keys = Vec::new();
    for i in 0..20 {
        keys.push(
            admin
                .create_key(
                    "/workspace/keys",
                    &[("name", &format!("device {i}")), ("plan", &plan)],
                )
                .await,
        );
    }
    // B has every key cached with the plan's limit.
    for k in &keys {
        assert_eq!(limit_of(&b.base, &k.secret).await, "100");
    }
    let keyward::config::DatabaseUrl::Postgres(url) = a.database.clone() else {
        unreachable!()
    };
    let listener = std::thread::spawn(move || {
        let mut conn = diesel::PgConnection::establish(&url).expect("listen");
        diesel::RunQueryDsl::execute(diesel::sql_query("LISTEN keyward_key_changes"), &mut conn)
            .unwrap();
        let mut seen = Vec::new();
        let until = std::time::Instant::now() + std::time::Duration::from_secs(3);
        while std::time::Instant::now() < until {
            for n in conn.notifications_iter() {
                seen.push(n.expect("notification").payload);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        seen
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    let res = admin
        .post_form(
            &format!("/workspace/settings/plans/{plan}"),
            &[
                ("name", "Fleet"),
                ("rate_limit", "7"),
                ("permission_limit", "any"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let since = std::time::Instant::now();
    for k in &keys {
        loop {
            if limit_of(&b.base, &k.secret).await == "7" {
                break;
            }
            assert!(
                since.elapsed() < std::time::Duration::from_secs(10),
                "B still answers the old limit 10 s after the edit"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
    // The issue asks for "within a second": printed, not timed (timing
    // targets belong in benchmarks; the note records what was seen).
    eprintln!(
        "B answered the edited plan for all 20 keys after {:?}",
        since.elapsed()
    );
    let seen = tokio::task::spawn_blocking(move || listener.join().unwrap())
        .await
        .unwrap();
    assert_eq!(seen.len(), 1, "one notice for the plan: {seen:?}");
    assert!(seen[0].starts_with("w "), "{seen:?}");
}

/// Another workspace's plans and keys, attacked from this one: pages, the
/// API, a key put on that plan, a top-up of that key's quota. Nothing is
/// found, nothing changes.
#[tokio::test]
async fn another_workspaces_plans_and_quotas_are_out_of_reach() {
    let (app, ada) = spawn_ready().await;
    let zed = app.other_workspace_admin().await;
    let res = zed
        .post_form(
            "/workspace/settings/plans",
            &[
                ("name", "Other gold"),
                ("rate_limit", "9"),
                ("permission_limit", "any"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let theirs = plan_id_named(&zed, "Other gold").await;
    let their_key = zed
        .create_key(
            "/workspace/keys",
            &[
                ("name", "Other metered"),
                ("quota_limit", "10"),
                ("quota_period", "total"),
                ("plan", &theirs),
            ],
        )
        .await;

    // Pages: the plan and the key's quota are not found from here.
    for path in [
        format!("/workspace/settings/plans/{theirs}"),
        format!("/workspace/settings/plans/{theirs}/delete"),
    ] {
        let (status, _) = ada.page(&path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    for (path, fields) in [
        (
            format!("/workspace/settings/plans/{theirs}"),
            vec![("name", "Hijacked"), ("permission_limit", "any")],
        ),
        (format!("/workspace/settings/plans/{theirs}/delete"), vec![]),
        (
            format!("/keys/{}/quota", their_key.id),
            vec![("how", "set"), ("amount", "1000000")],
        ),
    ] {
        let res = ada.post_form(&path, &fields).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
    }
    // A key of this workspace cannot be put on that plan.
    let res = ada
        .submit_new_key("/workspace/keys", &[("name", "Mine"), ("plan", &theirs)])
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("Choose one of this workspace")
    );

    // The API, with every permission it would take.
    let api = manager(
        &ada,
        &app.base,
        &[
            ("permissions", "keyward:plans:read"),
            ("permissions", "keyward:plans:write"),
            ("permissions", "keyward:keys:read"),
            ("permissions", "keyward:keys:write"),
        ],
    )
    .await;
    let (s, _) = api.get(&format!("/api/v1/plans/{theirs}")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = api
        .patch(
            &format!("/api/v1/plans/{theirs}"),
            json!({"rate_limit_per_minute": 1}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = api.delete(&format!("/api/v1/plans/{theirs}")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = api
        .get(&format!("/api/v1/keys/{}/quota", their_key.id))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = api
        .post(
            &format!("/api/v1/keys/{}/quota", their_key.id),
            json!({"add": 5}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = api
        .post(
            "/api/v1/keys",
            json!({"name": "Mine", "kind": "workspace", "plan": theirs}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (_, mine) = api.get("/api/v1/plans").await;
    assert_eq!(mine["plans"], json!([]), "their plan is not listed here");

    // Theirs is as it was: its name, limit, key and quota.
    let (_, page) = zed
        .page(&format!("/workspace/settings/plans/{theirs}"))
        .await;
    assert!(
        page.contains("Other gold") && page.contains("value=\"9\""),
        "{page}"
    );
    assert_eq!(limit_of(&app.base, &their_key.secret).await, "9");
    assert_eq!(left_of(&app.base, &their_key.secret).await, Some(8));
}
