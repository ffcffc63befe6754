//! The HTTP API for integrations: every outcome of a key check.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn me_describes_the_key() {
    let (app, admin) = spawn_ready().await;
    let k = admin
        .create_key(
            "/account/keys",
            &[
                ("name", "Grafana prod"),
                ("permissions", "data:read"),
                ("permissions", "reports:export"),
                ("resources", "line-1\nline-2"),
            ],
        )
        .await;
    let (status, headers, json) = me(&app.base, &k.secret).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["id"], k.id);
    assert_eq!(json["name"], "Grafana prod");
    assert_eq!(json["kind"], "personal");
    assert_eq!(json["owner"]["email"], ADMIN_EMAIL);
    assert_eq!(json["environment"], "live");
    assert_eq!(json["permissions"], json!(["data:read", "reports:export"]));
    assert_eq!(json["resources"], json!(["line-1", "line-2"]));
    assert!(json["expires_at"].as_str().unwrap().ends_with('Z'));
    assert!(headers.get("x-ratelimit-limit").is_none(), "no limit set");
    assert!(
        !json.to_string().contains(&k.secret[8..]),
        "the secret is not echoed"
    );
}

#[tokio::test]
async fn missing_malformed_and_unknown_keys_are_401_with_reasons() {
    let (app, _admin) = spawn_ready().await;
    let res = reqwest::get(format!("{}/api/v1/me", app.base))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        res.headers()["www-authenticate"],
        "Bearer realm=\"keyward\""
    );
    let json: serde_json::Value = res.json().await.unwrap();
    assert_eq!(json["error"]["code"], "MISSING_KEY");
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Authorization: Bearer")
    );

    let (secret, _) = keyward::domain::keys::generate(keyward::domain::keys::Environment::Live);
    let unknown = secret.expose().to_owned();
    let truncated = &unknown[..unknown.len() - 5];
    let (status, headers, json) = me(&app.base, truncated).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(json["error"]["code"], "MALFORMED");
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cut off"),
        "{json}"
    );
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("error=\"invalid_token\"")
    );
    assert_eq!(
        me_code(&app.base, "not-a-key").await,
        (StatusCode::UNAUTHORIZED, "MALFORMED".into())
    );
    assert_eq!(
        me_code(&app.base, &unknown).await,
        (StatusCode::UNAUTHORIZED, "NOT_FOUND".into())
    );
}

#[tokio::test]
async fn disabled_revoked_expired_and_switched_off_keys_are_refused() {
    let (app, admin) = spawn_ready().await;
    let a = admin
        .create_key("/account/keys", &[("name", "to disable")])
        .await;
    assert_eq!(me(&app.base, &a.secret).await.0, StatusCode::OK);
    admin
        .post_form(&format!("/keys/{}/disable", a.id), &[])
        .await;
    assert_eq!(
        me_code(&app.base, &a.secret).await,
        (StatusCode::UNAUTHORIZED, "DISABLED".into())
    );
    admin
        .post_form(&format!("/keys/{}/enable", a.id), &[])
        .await;
    assert_eq!(
        me(&app.base, &a.secret).await.0,
        StatusCode::OK,
        "enabled again at once"
    );

    admin
        .post_form(&format!("/keys/{}/revoke", a.id), &[])
        .await;
    assert_eq!(
        me_code(&app.base, &a.secret).await,
        (StatusCode::UNAUTHORIZED, "REVOKED".into())
    );

    // Expiry reached (set in the database before the key is ever checked).
    let b = admin
        .create_key("/account/keys", &[("name", "old"), ("expiry", "7")])
        .await;
    let id = b.id.clone();
    app.with_db(move |c| {
        use diesel::prelude::*;
        use keyward::db::schema::api_keys;
        let past = chrono::Utc::now().naive_utc() - chrono::TimeDelta::minutes(1);
        diesel::update(api_keys::table.find(id))
            .set(api_keys::expires_at.eq(past))
            .execute(c)
            .unwrap();
    })
    .await;
    let (status, _, json) = me(&app.base, &b.secret).await;
    assert_eq!(
        (status, json["error"]["code"].as_str().unwrap()),
        (StatusCode::UNAUTHORIZED, "EXPIRED")
    );
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired on")
    );

    // The workspace switch (its page comes later; flipped here in the database).
    let c = admin
        .create_key("/account/keys", &[("name", "switched")])
        .await;
    app.with_db(|conn| {
        use diesel::prelude::*;
        use keyward::db::schema::workspaces;
        diesel::update(workspaces::table)
            .set(workspaces::api_keys_disabled_at.eq(Some(chrono::Utc::now().naive_utc())))
            .execute(conn)
            .unwrap();
    })
    .await;
    assert_eq!(
        me_code(&app.base, &c.secret).await,
        (StatusCode::UNAUTHORIZED, "API_KEYS_DISABLED".into())
    );
    let (_, page) = admin.page("/account/keys").await;
    assert!(page.contains("API keys are switched off for this workspace."));
}

#[tokio::test]
async fn environment_permission_and_resource_checks() {
    let (app, admin) = spawn_ready().await;
    let k = admin
        .create_key(
            "/workspace/keys",
            &[
                ("name", "ERP"),
                ("environment", "test"),
                ("permissions", "data:read"),
                ("resources", "plant-a"),
            ],
        )
        .await;
    assert!(k.secret.starts_with("sk_test_"));
    let res = reqwest::Client::new()
        .get(format!("{}/api/v1/me?environment=live", app.base))
        .bearer_auth(&k.secret)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let json: serde_json::Value = res.json().await.unwrap();
    assert_eq!(json["error"]["code"], "ENVIRONMENT_MISMATCH");
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Staging (test) key")
    );

    // Whatever the caller sends is echoed safely: a clear 401, never a 500.
    let res = reqwest::Client::new()
        .get(format!(
            "{}/api/v1/me?environment=prod%0D%0AX-Evil:%201%C3%A9",
            app.base
        ))
        .bearer_auth(&k.secret)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(res.headers().get("x-evil").is_none());
    let header = res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(header.contains("error=\"invalid_token\""), "{header}");
    let json: serde_json::Value = res.json().await.unwrap();
    assert_eq!(json["error"]["code"], "ENVIRONMENT_MISMATCH");
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Unknown environment")
    );

    let ok = verify(&app.base, json!({ "key": k.secret, "environment": "staging", "permission": "data:read", "resource": "plant-a" })).await;
    assert_eq!(ok["valid"], true, "{ok}");
    assert_eq!(ok["code"], "VALID");
    assert_eq!(ok["key"]["kind"], "workspace");
    assert_eq!(ok["key"]["owner"], serde_json::Value::Null);

    let no_perm = verify(
        &app.base,
        json!({ "key": k.secret, "permission": "data:write" }),
    )
    .await;
    assert_eq!(
        (no_perm["valid"].clone(), no_perm["code"].clone()),
        (json!(false), json!("INSUFFICIENT_PERMISSION"))
    );
    assert_eq!(no_perm["status"], 403);
    let other_resource = verify(&app.base, json!({ "key": k.secret, "resource": "plant-b" })).await;
    assert_eq!(other_resource["code"], "RESOURCE_NOT_ALLOWED");
    let wrong_env = verify(&app.base, json!({ "key": k.secret, "environment": "dev" })).await;
    assert_eq!(wrong_env["code"], "ENVIRONMENT_MISMATCH");
    let bad = verify(&app.base, json!({ "key": "sk_live_nope" })).await;
    assert_eq!(bad["code"], "MALFORMED");
    assert!(bad.get("key").is_none(), "nothing about unidentified keys");

    // A key without a resource scope may access any resource.
    let open = admin
        .create_key("/workspace/keys", &[("name", "open")])
        .await;
    assert_eq!(
        verify(
            &app.base,
            json!({ "key": open.secret, "resource": "anything" })
        )
        .await["valid"],
        true
    );

    let res = reqwest::Client::new()
        .post(format!("{}/api/v1/keys/verify", app.base))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let json: serde_json::Value = res.json().await.unwrap();
    assert_eq!(json["error"]["code"], "BAD_REQUEST");

    // The management API's statuses for bodies: 415 without a JSON
    // content type, 413 over the limit (16 KiB here).
    for (content_type, body, status, code) in [
        (
            "text/plain",
            "{\"key\": \"x\"}".to_owned(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        (
            "application/json",
            format!("{{\"key\": \"{}\"}}", "x".repeat(20 * 1024)),
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
        ),
    ] {
        let res = reqwest::Client::new()
            .post(format!("{}/api/v1/keys/verify", app.base))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), status, "{content_type}");
        let json: serde_json::Value = res.json().await.unwrap();
        assert_eq!(json["error"]["code"], code);
    }
    // A body sent in chunks, with no length declared, is held to the same
    // limit as it arrives.
    let chunk = format!("400\r\n{}\r\n", "x".repeat(1024));
    let (status, _, body) = raw_http(
        &app.base,
        format!(
            "POST /api/v1/keys/verify HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n9\r\n{{\"key\": \"\r\n{}0\r\n\r\n",
            chunk.repeat(20)
        ),
    )
    .await;
    assert_eq!(status, 413, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["error"]["code"], "PAYLOAD_TOO_LARGE");
    // Any JSON media type is read, and a string written with escapes is
    // the same string: the key and the resource here are `open.secret` and
    // "anything", spelled with \u escapes.
    let escaped = |s: &str| {
        s.chars()
            .map(|c| format!("\\u{:04x}", c as u32))
            .collect::<String>()
    };
    let res = reqwest::Client::new()
        .post(format!("{}/api/v1/keys/verify", app.base))
        .header(
            "content-type",
            "application/vnd.keyward+json; charset=utf-8",
        )
        .body(format!(
            "{{\"key\": \"{}\", \"resource\": \"{}\"}}",
            escaped(&open.secret),
            escaped("anything")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let json: serde_json::Value = res.json().await.unwrap();
    assert_eq!(json["valid"], true, "{json}");
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    let (app, admin) = spawn_ready().await;
    let k = admin
        .create_key("/account/keys", &[("name", "limited"), ("rate_limit", "3")])
        .await;
    for remaining in ["2", "1", "0"] {
        let (status, headers, _) = me(&app.base, &k.secret).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["x-ratelimit-limit"], "3");
        assert_eq!(headers["x-ratelimit-remaining"], remaining);
    }
    let (status, headers, json) = me(&app.base, &k.secret).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(json["error"]["code"], "RATE_LIMITED");
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(
        (1..=20).contains(&retry),
        "one token refills in 20 s at 3/min, got {retry}"
    );
    let v = verify(&app.base, json!({ "key": k.secret })).await;
    assert_eq!(v["code"], "RATE_LIMITED");
    assert!(v["retry_after"].as_u64().unwrap() >= 1);
}

#[tokio::test]
async fn last_used_is_recorded() {
    let (app, admin) = spawn_ready().await;
    let k = admin.create_key("/account/keys", &[("name", "used")]).await;
    let (_, page) = admin.page("/account/keys").await;
    assert!(page.contains(">Never<"), "unused keys say Never");
    assert_eq!(me(&app.base, &k.secret).await.0, StatusCode::OK);
    // Written in the background (every 100 ms in tests); wait for it.
    let mut seen = None;
    for _ in 0..50 {
        let id = k.id.clone();
        seen = app
            .with_db(move |c| {
                let ws = first_ws(c);
                keyward::db::keys::get(c, &ws, &id)
                    .unwrap()
                    .unwrap()
                    .last_used_at
            })
            .await;
        if seen.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(seen.is_some(), "last used was written");
    let (_, page) = admin.page("/account/keys").await;
    assert!(!page.contains(">Never<"));
}

fn first_ws(c: &mut keyward::db::DbConn) -> String {
    use diesel::prelude::*;
    keyward::db::schema::workspaces::table
        .select(keyward::db::schema::workspaces::id)
        .first::<String>(c)
        .unwrap()
}
