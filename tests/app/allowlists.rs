//! IP allowlists (issue 23, section 2): a key limited to addresses and CIDR
//! ranges, checked against real source addresses. The whole of 127.0.0.0/8
//! is loopback, so a client bound to 127.0.0.2 or 127.0.0.3 presents that
//! address to keyward as its TCP peer.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::net::IpAddr;

/// A client whose requests leave from `addr` (a loopback address).
pub(crate) fn client_from(addr: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(addr.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

/// GET `path` from `addr` with a bearer key and extra headers (a name
/// given twice is sent twice): status and JSON.
async fn get_from(
    base: &str,
    path: &str,
    addr: &str,
    key: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut req = client_from(addr)
        .get(format!("{base}{path}"))
        .bearer_auth(key);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let res = req.send().await.expect("request");
    (res.status(), res.json().await.unwrap_or(Value::Null))
}

/// `/api/v1/me` from `addr`.
async fn me_from(
    base: &str,
    addr: &str,
    key: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, Value) {
    get_from(base, "/api/v1/me", addr, key, headers).await
}

/// `/api/v1/forward-auth` from `addr` (a gateway there).
async fn forward_from(
    base: &str,
    addr: &str,
    key: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, Value) {
    get_from(base, "/api/v1/forward-auth", addr, key, headers).await
}

fn assert_refused(status: StatusCode, body: &Value, seen: &str) {
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "IP_NOT_ALLOWED", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(seen),
        "the address seen is named: {message}"
    );
}

#[tokio::test]
async fn me_answers_the_listed_address_and_refuses_others_naming_them() {
    let (app, admin) = spawn_ready().await;
    let key = admin
        .create_key(
            "/workspace/keys",
            &[
                ("name", "office"),
                ("allowed_ips", "127.0.0.2/32\n 10.0.0.0/8 ,"),
            ],
        )
        .await;
    let open = admin
        .create_key("/workspace/keys", &[("name", "open")])
        .await;

    let (status, body) = me_from(&app.base, "127.0.0.2", &key.secret, &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Its holder sees where it may be used from.
    assert_eq!(
        body["allowed_ips"],
        json!(["127.0.0.2", "10.0.0.0/8"]),
        "{body}"
    );
    let (status, body) = me_from(&app.base, "127.0.0.3", &key.secret, &[]).await;
    assert_refused(status, &body, "127.0.0.3");
    // A key without an allowlist is usable from anywhere.
    let (status, body) = me_from(&app.base, "127.0.0.3", &open.secret, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["allowed_ips"], json!([]), "{body}");

    // The key page shows the list, normalised.
    let (_, page) = admin.page(&format!("/keys/{}", key.id)).await;
    assert!(page.contains("IP allowlist"), "{page}");
    assert!(page.contains("<code>127.0.0.2</code>") && page.contains("<code>10.0.0.0/8</code>"));
    // The inventory lists it too.
    let csv = admin.get("/workspace/keys.csv").await.text().await.unwrap();
    assert!(csv.contains("127.0.0.2 10.0.0.0/8"), "{csv}");
    // The creation's audit event holds the list.
    let created = app
        .events()
        .await
        .into_iter()
        .find(|e| e.action == "key.created" && e.target_id.as_deref() == Some(key.id.as_str()))
        .unwrap();
    assert!(
        created.details.contains("10.0.0.0/8"),
        "{}",
        created.details
    );
}

#[tokio::test]
async fn forwarded_for_counts_only_from_a_trusted_proxy() {
    let (app, admin) = spawn_ready_with(|c| {
        c.trusted_proxies = vec!["127.0.0.4/32".parse().unwrap()];
    })
    .await;
    let key = admin
        .create_key("/workspace/keys", &[("allowed_ips", "127.0.0.2")])
        .await;
    let k = &key.secret;
    let b = &app.base;

    // A client that claims an allowed address is not believed: its own
    // address is checked, and named.
    let (s, body) = me_from(b, "127.0.0.3", k, &[("X-Forwarded-For", "127.0.0.2")]).await;
    assert_refused(s, &body, "127.0.0.3");
    // Through the trusted proxy, the proxy's word counts either way.
    let (s, body) = me_from(b, "127.0.0.4", k, &[("X-Forwarded-For", "127.0.0.2")]).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (s, body) = me_from(
        b,
        "127.0.0.4",
        k,
        &[("X-Forwarded-For", "6.6.6.6, 127.0.0.3")],
    )
    .await;
    assert_refused(s, &body, "127.0.0.3");
    // Without a header the proxy itself is the client.
    let (s, body) = me_from(b, "127.0.0.4", k, &[]).await;
    assert_refused(s, &body, "127.0.0.4");
    // Two headers from the proxy: which is its own is a guess, so neither.
    let (s, body) = me_from(
        b,
        "127.0.0.4",
        k,
        &[
            ("X-Forwarded-For", "127.0.0.3"),
            ("X-Forwarded-For", "127.0.0.2"),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "REPEATED_HEADER", "{body}");

    // Forward-auth: a gateway in KEYWARD_TRUSTED_PROXIES passes the client.
    let (s, body) = forward_from(b, "127.0.0.4", k, &[("X-Forwarded-For", "127.0.0.2")]).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (s, body) = forward_from(b, "127.0.0.4", k, &[("X-Forwarded-For", "127.0.0.3")]).await;
    assert_refused(s, &body, "127.0.0.3");
    // An untrusted gateway's word is not taken: its own address counts.
    let (s, body) = forward_from(b, "127.0.0.5", k, &[("X-Forwarded-For", "127.0.0.2")]).await;
    assert_refused(s, &body, "127.0.0.5");
}

#[tokio::test]
async fn verify_checks_the_ip_the_service_sends() {
    let (app, admin) = spawn_ready().await;
    let key = admin
        .create_key(
            "/workspace/keys",
            &[("allowed_ips", "127.0.0.2, 2001:db8::/32")],
        )
        .await;
    let ok = verify(&app.base, json!({"key": key.secret, "ip": "127.0.0.2"})).await;
    assert_eq!(ok["valid"], true, "{ok}");
    let ok = verify(&app.base, json!({"key": key.secret, "ip": "2001:db8::7"})).await;
    assert_eq!(ok["valid"], true, "{ok}");
    let no = verify(&app.base, json!({"key": key.secret, "ip": "203.0.113.9"})).await;
    assert_eq!(no["valid"], false);
    assert_eq!(no["code"], "IP_NOT_ALLOWED");
    assert_eq!(no["status"], 403);
    assert!(
        no["message"].as_str().unwrap().contains("203.0.113.9"),
        "{no}"
    );
    // No address told: refused, saying what to send (the service's own
    // address is not the caller's).
    let none = verify(&app.base, json!({"key": key.secret})).await;
    assert_eq!(none["code"], "IP_NOT_ALLOWED", "{none}");
    assert!(
        none["message"].as_str().unwrap().contains("\"ip\""),
        "{none}"
    );
}

#[tokio::test]
async fn the_management_api_sets_and_refuses_allowlists_per_field() {
    let (app, admin) = spawn_ready().await;
    let manager = admin
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
    let http = reqwest::Client::new();
    let send = |rb: reqwest::RequestBuilder| {
        let key = manager.secret.clone();
        async move {
            let res = rb.bearer_auth(key).send().await.unwrap();
            let status = res.status();
            (status, res.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let url = |p: &str| format!("{}{p}", app.base);
    let count = |page: &Value| page["keys"].as_array().unwrap().len();
    let (_, before) = send(http.get(url("/api/v1/keys"))).await;

    // A range that does not parse: 422 naming the field and the entry.
    let (s, p) = send(
        http.post(url("/api/v1/keys"))
            .json(&json!({"name": "ci", "allowed_ips": ["10.0.0.0/8", "10.0.0.0/40"]})),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    assert_eq!(p["errors"][0]["field"], "allowed_ips", "{p}");
    assert!(
        p["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("10.0.0.0/40")
    );
    // 101 ranges are refused; so are 101 blank items, or one address 101
    // times: the schema's maxItems holds for the list as sent (blanks and
    // repeats are only dropped within the limit).
    let distinct: Vec<String> = (0..101).map(|i| format!("10.9.{i}.0/24")).collect();
    let (blank, repeated) = (vec![String::new(); 101], vec!["10.9.0.1".to_owned(); 101]);
    for many in [distinct, blank, repeated] {
        let (s, p) = send(
            http.post(url("/api/v1/keys"))
                .json(&json!({"name": "ci", "allowed_ips": many})),
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
        let detail = p["detail"].as_str().unwrap();
        assert!(detail.contains("at most 100"), "{p}");
        assert!(detail.contains("(101 given)"), "{p}");
    }
    let (_, after) = send(http.get(url("/api/v1/keys"))).await;
    assert_eq!(count(&after), count(&before), "nothing was created");

    // Created normalised.
    let (s, k) = send(http.post(url("/api/v1/keys")).json(
        &json!({"name": "ci", "allowed_ips": ["10.1.2.3/8", " 127.0.0.2 ", "", "10.0.0.0/8"]}),
    ))
    .await;
    assert_eq!(s, StatusCode::CREATED, "{k}");
    let id = k["id"].as_str().unwrap().to_owned();
    assert_eq!(
        k["key"]["allowed_ips"],
        json!(["10.0.0.0/8", "127.0.0.2"]),
        "{k}"
    );

    // PATCH with a bad entry: 422, nothing changed.
    let (s, p) = send(
        http.patch(url(&format!("/api/v1/keys/{id}")))
            .json(&json!({"name": "renamed", "allowed_ips": ["not-an-ip"]})),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    assert_eq!(p["errors"][0]["field"], "allowed_ips", "{p}");
    let (_, got) = send(http.get(url(&format!("/api/v1/keys/{id}")))).await;
    assert_eq!(got["name"], "ci");
    assert_eq!(got["allowed_ips"], json!(["10.0.0.0/8", "127.0.0.2"]));

    // Absent keeps it, a list replaces it, null removes it; each change
    // audited with before and after.
    let (s, got) = send(
        http.patch(url(&format!("/api/v1/keys/{id}")))
            .json(&json!({"name": "ci 2"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{got}");
    assert_eq!(got["allowed_ips"], json!(["10.0.0.0/8", "127.0.0.2"]));
    let (_, got) = send(
        http.patch(url(&format!("/api/v1/keys/{id}")))
            .json(&json!({"allowed_ips": ["::1"]})),
    )
    .await;
    assert_eq!(got["allowed_ips"], json!(["::1"]));
    let updated = app
        .events()
        .await
        .into_iter()
        .rfind(|e| e.action == "key.updated" && e.target_id.as_deref() == Some(id.as_str()))
        .unwrap();
    let details: Value = serde_json::from_str(&updated.details).unwrap();
    assert_eq!(
        details["old"]["allowed_ips"],
        json!(["10.0.0.0/8", "127.0.0.2"])
    );
    assert_eq!(details["new"]["allowed_ips"], json!(["::1"]));
    let (_, got) = send(
        http.patch(url(&format!("/api/v1/keys/{id}")))
            .json(&json!({"allowed_ips": null})),
    )
    .await;
    assert_eq!(got["allowed_ips"], json!([]));
}

#[tokio::test]
async fn the_edit_dialog_shows_a_bad_entry_and_changes_nothing() {
    let (app, admin) = spawn_ready().await;
    let key = admin
        .create_key("/workspace/keys", &[("allowed_ips", "127.0.0.2")])
        .await;
    let (status, form) = admin.page(&format!("/keys/{}/edit", key.id)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(form.contains("name=\"allowed_ips\""), "{form}");
    assert!(form.contains(">127.0.0.2</textarea>"), "{form}");
    let res = admin
        .post_form(
            &format!("/keys/{}/edit", key.id),
            &[("name", "renamed"), ("allowed_ips", "127.0.0.3\n300.1.1.1")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = res.text().await.unwrap();
    assert!(
        body.contains("&#34;300.1.1.1&#34; is not an IP address"),
        "the bad entry is named: {body}"
    );
    assert!(
        body.contains("f-allowed_ips-error"),
        "the message sits by its field"
    );
    // Nothing changed: the old list still answers.
    let (s, _) = me_from(&app.base, "127.0.0.2", &key.secret, &[]).await;
    assert_eq!(s, StatusCode::OK);
    let (_, page) = admin.page(&format!("/keys/{}", key.id)).await;
    assert!(!page.contains("renamed"));

    // A valid edit applies at once on this instance.
    let res = admin
        .post_form(
            &format!("/keys/{}/edit", key.id),
            &[("name", "Test key"), ("allowed_ips", "127.0.0.3")],
        )
        .await;
    assert!(
        res.status().is_redirection() || res.status().is_success(),
        "{}",
        res.status()
    );
    let (s, body) = me_from(&app.base, "127.0.0.2", &key.secret, &[]).await;
    assert_refused(s, &body, "127.0.0.2");
    let (s, _) = me_from(&app.base, "127.0.0.3", &key.secret, &[]).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
#[ignore = "needs PostgreSQL: run with KEYWARD_TEST_DATABASE_URL and --ignored"]
async fn pg_only_an_allowlist_edit_reaches_the_other_instance() {
    assert!(
        std::env::var("KEYWARD_TEST_DATABASE_URL").is_ok_and(|u| !u.trim().is_empty()),
        "this test needs two instances on one PostgreSQL: set KEYWARD_TEST_DATABASE_URL"
    );
    let long_cache = |c: &mut keyward::config::Config| {
        c.verifier.cache_ttl = std::time::Duration::from_secs(600)
    };
    let (a, admin) = spawn_ready_with(long_cache).await;
    let b = a.another_instance(long_cache).await;
    let key = admin.create_key("/workspace/keys", &[("name", "k")]).await;
    let (s, _) = me_from(&b.base, "127.0.0.3", &key.secret, &[]).await;
    assert_eq!(s, StatusCode::OK, "cached on B");
    admin
        .post_form(
            &format!("/keys/{}/edit", key.id),
            &[("name", "k"), ("allowed_ips", "127.0.0.2")],
        )
        .await;
    let started = std::time::Instant::now();
    loop {
        let (s, body) = me_from(&b.base, "127.0.0.3", &key.secret, &[]).await;
        if s == StatusCode::FORBIDDEN {
            assert_refused(s, &body, "127.0.0.3");
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "B still answers {s}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    println!("allowlist edit seen on B after {:?}", started.elapsed());
    let (s, _) = me_from(&b.base, "127.0.0.2", &key.secret, &[]).await;
    assert_eq!(s, StatusCode::OK);
}

/// A keyward whose gateway connects from 127.0.0.1 (trusted, so the
/// address it passes in X-Forwarded-For is the one checked), a key allowed
/// from 127.0.0.2 only, and its workspace's id for the gateway to pin.
pub(crate) async fn behind_a_gateway() -> (TestApp, CreatedKey, String) {
    let (app, admin) = spawn_ready_with(|c| {
        c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let key = admin
        .create_key("/workspace/keys", &[("allowed_ips", "127.0.0.2")])
        .await;
    let (_, facts) = me_from(&app.base, "127.0.0.2", &key.secret, &[]).await;
    let workspace = facts["workspace_id"].as_str().unwrap().to_owned();
    (app, key, workspace)
}

/// Through the gateway at `url`: a client on 127.0.0.2 reaches the service;
/// one on 127.0.0.3 is refused, its address named, also when it claims the
/// allowed one in its own X-Forwarded-For (the gateway replaces it).
pub(crate) async fn assert_gateway_passes_the_client(
    url: &str,
    key: &str,
    log: impl Fn() -> String,
) {
    let res = client_from("127.0.0.2")
        .get(url)
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{}", log());
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["echo"], true, "{body}");
    for forged in [None, Some("127.0.0.2")] {
        let mut req = client_from("127.0.0.3").get(url).bearer_auth(key);
        if let Some(forged) = forged {
            req = req.header("X-Forwarded-For", forged);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        assert_refused(status, &body, "127.0.0.3");
    }
}

#[tokio::test]
async fn a_management_key_obeys_its_own_allowlist() {
    let (app, admin) = spawn_ready().await;
    let manager = admin
        .create_key(
            "/workspace/keys",
            &[
                ("permissions", "keyward:keys:read"),
                ("allowed_ips", "127.0.0.2"),
            ],
        )
        .await;
    let (s, body) = get_from(&app.base, "/api/v1/keys", "127.0.0.2", &manager.secret, &[]).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (s, body) = get_from(&app.base, "/api/v1/keys", "127.0.0.3", &manager.secret, &[]).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["code"], "IP_NOT_ALLOWED", "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("127.0.0.3"),
        "{body}"
    );
}

#[tokio::test]
async fn a_management_key_with_an_allowlist_cannot_make_a_key_without_one() {
    let (app, admin) = spawn_ready().await;
    // The test client calls from 127.0.0.1, inside the acting key's list.
    let manager = admin
        .create_key(
            "/workspace/keys",
            &[
                ("name", "Plant provisioning"),
                ("expiry", "never"),
                ("permissions", "keyward:keys:read"),
                ("permissions", "keyward:keys:write"),
                ("allowed_ips", "127.0.0.0/24\n10.20.0.0/16"),
            ],
        )
        .await;
    let api = Api::new(&app.base, &manager.secret);
    let (_, before) = api.get("/api/v1/keys").await;
    let fields = |p: &Value| -> Vec<String> {
        p["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap().to_owned())
            .collect()
    };
    for (allowed, named) in [
        (Value::Null, None),
        (json!([]), None),
        (json!(["127.0.0.0/16"]), Some("127.0.0.0/16")),
        (json!(["10.20.1.0/24", "192.0.2.7"]), Some("192.0.2.7")),
    ] {
        let mut body = json!({"name": "sensor", "kind": "workspace"});
        if !allowed.is_null() {
            body["allowed_ips"] = allowed.clone();
        }
        let (s, p) = api.post("/api/v1/keys", body).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{allowed} → {p}");
        assert_eq!(fields(&p), vec!["allowed_ips"], "{allowed} → {p}");
        let message = p["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains("127.0.0.0/24, 10.20.0.0/16"), "{message}");
        if let Some(outside) = named {
            assert!(
                message.ends_with(&format!("cannot allow {outside}.")),
                "{message}"
            );
        }
    }
    let ids = |page: &Value| -> Vec<String> {
        page["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, after) = api.get("/api/v1/keys").await;
    assert_eq!(ids(&after), ids(&before), "nothing was created");

    // Within the list: made, and then neither widened nor cleared by PATCH.
    let (s, made) = api
        .post(
            "/api/v1/keys",
            json!({"name": "sensor", "kind": "workspace", "allowed_ips": ["127.0.0.7", "10.20.3.0/24"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{made}");
    let path = format!("/api/v1/keys/{}", made["id"].as_str().unwrap());
    for allowed in [Value::Null, json!([]), json!(["0.0.0.0/0"])] {
        let (s, p) = api.patch(&path, json!({"allowed_ips": allowed})).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{allowed} → {p}");
        assert_eq!(fields(&p), vec!["allowed_ips"], "{p}");
    }
    let (_, key) = api.get(&path).await;
    assert_eq!(key["allowed_ips"], json!(["127.0.0.7", "10.20.3.0/24"]));
    // Narrowing further is fine.
    let (s, p) = api
        .patch(&path, json!({"allowed_ips": ["127.0.0.7"]}))
        .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(p["allowed_ips"], json!(["127.0.0.7"]), "{p}");
}
