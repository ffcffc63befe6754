//! Recoverable keys (issue 27, part 2): off by default, on only with the
//! operator's key, shown again after a fresh password confirmation or with
//! `keyward:keys:reveal`, never stored in the clear, destroyed on revoke,
//! failing closed with a wrong or missing operator key, and rolled to a new
//! operator key by `keyward recovery rewrap`.

use crate::helpers::*;
use keyward::config::DatabaseUrl;
use keyward::domain::recovery::OperatorKeys;
use reqwest::StatusCode;
use serde_json::{Value, json};

const K1: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
/// Same id, other bytes: the wrong key.
const K1_WRONG: &str = "k1:HxwdHh8AAQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRo=";
const K2: &str = "k2:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

fn with_keys(lines: &'static str) -> impl FnOnce(&mut keyward::config::Config) + Send + 'static {
    move |c| c.recovery_keys = Some(OperatorKeys::parse(lines).expect("operator keys"))
}

/// A JSON call to the API with a bearer key.
async fn call(
    method: reqwest::Method,
    base: &str,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut rb = reqwest::Client::new()
        .request(method, format!("{base}{path}"))
        .bearer_auth(key);
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let res = rb.send().await.expect("request");
    let status = res.status();
    let headers = res.headers().clone();
    let text = res.text().await.unwrap();
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

async fn turn_on(admin: &Browser) -> reqwest::Response {
    admin
        .post_form("/workspace/settings/recoverable-keys", &[("enabled", "on")])
        .await
}

/// Confirm the password on a key's "Show secret" dialog.
async fn confirm(b: &Browser, id: &str, password: &str) -> reqwest::Response {
    b.post_form(
        &format!("/keys/{id}/confirm-password"),
        &[("password", password)],
    )
    .await
}

/// Press "Show secret": status, Cache-Control, body.
async fn show(b: &Browser, id: &str) -> (StatusCode, String, String) {
    let res = b.post_form(&format!("/keys/{id}/secret"), &[]).await;
    let status = res.status();
    let cache = res
        .headers()
        .get("cache-control")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (status, cache, res.text().await.unwrap())
}

#[derive(diesel::QueryableByName)]
struct Name {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
}

#[derive(diesel::QueryableByName)]
struct Text {
    #[diesel(sql_type = diesel::sql_types::Text)]
    v: String,
}

/// Everything the database holds, as text: on SQLite the raw bytes of the
/// database file and its write-ahead log (free pages included); on
/// PostgreSQL every row of every table as text.
async fn database_dump(app: &TestApp) -> String {
    match &app.database {
        DatabaseUrl::Sqlite(path) => {
            let mut all = Vec::new();
            for suffix in ["", "-wal"] {
                let p = format!("{}{suffix}", path.display());
                if let Ok(bytes) = std::fs::read(&p) {
                    all.extend(bytes);
                }
            }
            String::from_utf8_lossy(&all).into_owned()
        }
        DatabaseUrl::Postgres(_) => {
            app.with_db(|c| {
                use diesel::RunQueryDsl;
                let tables: Vec<Name> = diesel::sql_query(
                    "SELECT table_name::text AS name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
                )
                .load(c)
                .unwrap();
                let mut out = String::new();
                for t in tables {
                    let rows: Vec<Text> =
                        diesel::sql_query(format!("SELECT t::text AS v FROM \"{}\" t", t.name))
                            .load(c)
                            .unwrap();
                    for r in rows {
                        out.push_str(&r.v);
                        out.push('\n');
                    }
                }
                out
            })
            .await
        }
    }
}

async fn sealed_of(app: &TestApp, id: &str) -> Option<keyward::domain::recovery::Sealed> {
    let id = id.to_owned();
    app.with_db(move |c| {
        use diesel::prelude::*;
        use keyward::db::schema::api_keys;
        let ws: String = api_keys::table
            .filter(api_keys::id.eq(&id))
            .select(api_keys::workspace_id)
            .first(c)
            .unwrap();
        keyward::db::secrets::get(c, &ws, &id).unwrap()
    })
    .await
}

#[tokio::test]
async fn recoverable_keys_are_off_by_default_and_need_the_operator_key() {
    let (app, admin) = spawn_ready().await;
    let (_, settings) = admin.page("/workspace/settings").await;
    assert!(settings.contains("Recoverable keys"));
    assert!(settings.contains("cannot be turned on"), "{settings}");
    // Refused without KEYWARD_RECOVERY_KEYS_FILE, with a clear reason.
    let res = turn_on(&admin).await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("KEYWARD_RECOVERY_KEYS_FILE")
    );
    let manager = admin
        .create_key(
            "/workspace/keys",
            &[("permissions", "keyward:keys:write"), ("expiry", "never")],
        )
        .await;
    let (status, _, body) = call(
        reqwest::Method::PUT,
        &app.base,
        "/api/v1/settings/recoverable-keys",
        &manager.secret,
        Some(json!({"enabled": true})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "RECOVERY_NOT_CONFIGURED");
    // The create form offers nothing, and a key asked recoverable anyway is refused.
    let (_, form) = admin.page("/account/keys/new").await;
    assert!(!form.contains("name=\"recoverable\""));
    let res = admin
        .submit_new_key("/account/keys", &[("recoverable", "on")])
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        app.event_actions()
            .await
            .iter()
            .all(|a| !a.contains("recoverable"))
    );

    // With the operator key, still off until an admin turns it on.
    let (app, admin) = spawn_ready_with(with_keys(K1)).await;
    let (_, form) = admin.page("/account/keys/new").await;
    assert!(!form.contains("name=\"recoverable\""), "off by default");
    let plain = admin.create_key("/account/keys", &[]).await;
    assert!(sealed_of(&app, &plain.id).await.is_none());
    assert_eq!(turn_on(&admin).await.status(), StatusCode::SEE_OTHER);
    let (_, form) = admin.page("/account/keys/new").await;
    assert!(form.contains("name=\"recoverable\""));
    assert!(
        app.event_actions()
            .await
            .contains(&"settings.recoverable_keys_enabled".to_owned())
    );
    // A key not asked recoverable stays digest-only.
    let plain = admin.create_key("/account/keys", &[]).await;
    assert!(sealed_of(&app, &plain.id).await.is_none());
    let (_, page) = admin.page(&format!("/keys/{}", plain.id)).await;
    assert!(page.contains("only its digest is stored"));
    let res = admin.get(&format!("/keys/{}/secret", plain.id)).await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
}

#[tokio::test]
async fn a_recoverable_key_is_shown_again_after_a_fresh_password_confirmation() {
    let (app, admin) = spawn_ready_with(with_keys(K1)).await;
    assert_eq!(turn_on(&admin).await.status(), StatusCode::SEE_OTHER);
    let key = admin
        .create_key(
            "/account/keys",
            &[("name", "Dev laptop"), ("recoverable", "on")],
        )
        .await;
    let sealed = sealed_of(&app, &key.id)
        .await
        .expect("sealed secret stored");
    assert_eq!(sealed.enc_key_id, "k1");
    // Flagged on its page and in the list.
    let (_, page) = admin.page(&format!("/keys/{}", key.id)).await;
    assert!(page.contains("recoverable") && page.contains("Show secret"));
    let (_, list) = admin.page("/account/keys").await;
    assert!(list.contains(">recoverable<"), "flag in the list");

    // Not without a confirmed password.
    let (_, dialog) = admin.page(&format!("/keys/{}/secret", key.id)).await;
    assert!(dialog.contains("Confirm password"));
    let (status, _, body) = show(&admin, &key.id).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(!body.contains(&key.secret));
    // A wrong password is refused and shows nothing.
    let res = confirm(&admin, &key.id, "not my password").await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = res.text().await.unwrap();
    assert!(body.contains("not correct") && !body.contains(&key.secret));
    let (status, _, _) = show(&admin, &key.id).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "still not confirmed");
    // The right one, then the same secret, which works.
    assert_eq!(
        confirm(&admin, &key.id, ADMIN_PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
    let (status, cache, body) = show(&admin, &key.id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(cache, "no-store");
    assert_eq!(shown_secret(&body).as_deref(), Some(key.secret.as_str()));
    assert_eq!(me(&app.base, &key.secret).await.0, StatusCode::OK);
    // Audited as its own event, without the secret.
    let events = app.events().await;
    let shown: Vec<_> = events
        .iter()
        .filter(|e| e.action == "key.secret_shown")
        .collect();
    assert_eq!(shown.len(), 1);
    assert_eq!(shown[0].target_id.as_deref(), Some(key.id.as_str()));
    for e in &events {
        assert!(!e.details.contains(&key.secret), "{}", e.action);
    }
    let (_, events_page) = admin.page("/workspace/events").await;
    assert!(events_page.contains("was shown the secret of"));

    // The database holds no plaintext of it (but does hold its digest and
    // ciphertext, so the dump is real).
    let dump = database_dump(&app).await;
    assert!(dump.contains(&sealed.ciphertext) || matches!(app.database, DatabaseUrl::Sqlite(_)));
    assert!(dump.contains("Dev laptop"), "the dump reads the data");
    assert!(
        !dump.contains(&key.secret),
        "plaintext secret in the database"
    );
    let random_part = &key.secret[key.secret.len() - 30..];
    assert!(
        !dump.contains(random_part),
        "part of the secret in the database"
    );

    // Regenerated: still recoverable, with the new secret.
    let (_, confirm_page) = admin.page(&format!("/keys/{}/regenerate", key.id)).await;
    let nonce = hidden(&confirm_page, "nonce").unwrap();
    let res = admin
        .post_form(
            &format!("/keys/{}/regenerate", key.id),
            &[("grace", "0"), ("nonce", &nonce)],
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let second = shown_secret(&res.text().await.unwrap()).unwrap();
    assert_ne!(second, key.secret);
    let (status, _, body) = show(&admin, &key.id).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown_secret(&body).as_deref(), Some(second.as_str()));
    assert_eq!(me(&app.base, &second).await.0, StatusCode::OK);
    assert!(!database_dump(&app).await.contains(&second));

    // Revoked: the ciphertext is gone, and nothing is shown.
    let res = admin
        .post_form(&format!("/keys/{}/revoke", key.id), &[])
        .await;
    assert!(res.status().is_redirection() || res.status().is_success());
    assert!(
        sealed_of(&app, &key.id).await.is_none(),
        "ciphertext destroyed"
    );
    let (status, _, body) = show(&admin, &key.id).await;
    assert!(status.is_client_error(), "{status}");
    assert!(!body.contains(&second));

    // Another key, deleted: destroyed too; turning the setting off
    // destroys the rest (audited with their number).
    let a = admin
        .create_key("/account/keys", &[("name", "a"), ("recoverable", "on")])
        .await;
    let b = admin
        .create_key("/account/keys", &[("name", "b"), ("recoverable", "on")])
        .await;
    let res = admin
        .post_form(&format!("/keys/{}/delete", a.id), &[])
        .await;
    assert!(res.status().is_redirection() || res.status().is_success());
    assert!(sealed_of(&app, &a.id).await.is_none());
    assert!(sealed_of(&app, &b.id).await.is_some());
    let (_, confirm_off) = admin.page("/workspace/settings/recoverable-keys/off").await;
    assert!(confirm_off.contains("destroyed"));
    let res = admin
        .post_form(
            "/workspace/settings/recoverable-keys",
            &[("enabled", "off")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(sealed_of(&app, &b.id).await.is_none());
    assert_eq!(
        me(&app.base, &b.secret).await.0,
        StatusCode::OK,
        "the key still works"
    );
    let off = app
        .events()
        .await
        .into_iter()
        .find(|e| e.action == "settings.recoverable_keys_disabled")
        .expect("audited");
    assert!(off.details.contains("\"destroyed\":1"), "{}", off.details);
}

#[tokio::test]
async fn the_api_shows_a_secret_only_with_its_own_permission() {
    let (app, admin) = spawn_ready_with(with_keys(K1)).await;
    let writer = admin
        .create_key(
            "/workspace/keys",
            &[
                ("name", "writer"),
                ("expiry", "never"),
                ("permissions", "keyward:keys:read"),
                ("permissions", "keyward:keys:write"),
            ],
        )
        .await;
    let (status, _, body) = call(
        reqwest::Method::PUT,
        &app.base,
        "/api/v1/settings/recoverable-keys",
        &writer.secret,
        Some(json!({"enabled": true})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["changed"], true);
    let (status, _, made) = call(
        reqwest::Method::POST,
        &app.base,
        "/api/v1/keys",
        &writer.secret,
        Some(json!({"name": "recoverable by API", "kind": "workspace", "recoverable": true, "never": true})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    assert_eq!(made["key"]["recoverable"], true);
    let id = made["id"].as_str().unwrap().to_owned();
    let secret = made["secret"].as_str().unwrap().to_owned();
    let reveal = format!("/api/v1/keys/{id}/reveal");

    // keyward:keys:write is not enough.
    let (status, _, body) = call(
        reqwest::Method::POST,
        &app.base,
        &reveal,
        &writer.secret,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.to_string().find(&secret).is_none());
    // Nor can that key give the permission it does not hold.
    let (status, _, body) = call(
        reqwest::Method::POST,
        &app.base,
        "/api/v1/keys",
        &writer.secret,
        Some(json!({"name": "escalate", "kind": "workspace", "permissions": ["keyward:keys:reveal"], "never": true})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.to_string().contains("keyward:keys:reveal"));

    // A key holding it is shown the secret, no-store, audited.
    let revealer = admin
        .create_key(
            "/workspace/keys",
            &[
                ("name", "revealer"),
                ("expiry", "never"),
                ("permissions", "keyward:keys:reveal"),
            ],
        )
        .await;
    let (status, headers, body) = call(
        reqwest::Method::POST,
        &app.base,
        &reveal,
        &revealer.secret,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["secret"], json!(secret));
    assert_eq!(
        headers.get("cache-control").and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    let shown = app
        .events()
        .await
        .into_iter()
        .find(|e| e.action == "key.secret_shown")
        .expect("audited");
    assert_eq!(shown.actor_id.as_deref(), Some(revealer.id.as_str()));
    assert!(!shown.details.contains(&secret));
    // A key that is not recoverable: a stable refusal.
    let (status, _, body) = call(
        reqwest::Method::POST,
        &app.base,
        &format!("/api/v1/keys/{}/reveal", writer.id),
        &revealer.secret,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "KEY_NOT_RECOVERABLE");
    // The document declares the endpoint and its permission.
    let doc: Value = reqwest::get(format!("{}/api/v1/openapi.json", app.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["paths"]["/api/v1/keys/{id}/reveal"]["post"].is_object());
    assert!(doc.to_string().contains("keyward:keys:reveal"));
}

/// Stop `app` and wait until its SQLite file can be served again (its last
/// background flush may still be finishing on a blocking thread for a
/// moment after the server stopped).
async fn stop(app: TestApp) {
    let database = app.database.clone();
    drop(app);
    if let DatabaseUrl::Sqlite(path) = database {
        let started = std::time::Instant::now();
        while let Err(e) = keyward::db::claim_sqlite(&path) {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(10),
                "{e}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

/// `keyward` run as the operator, on `database`, with `keys_file`.
fn keyward_cli(database: &DatabaseUrl, keys_file: &std::path::Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_keyward"));
    let url = match database {
        DatabaseUrl::Sqlite(path) => path.display().to_string(),
        DatabaseUrl::Postgres(url) => url.clone(),
    };
    cmd.env_clear()
        .env("DATABASE_URL", url)
        .env(
            "KEYWARD_SECRET",
            "cli-test-secret-cli-test-secret-cli-test-secret",
        )
        .env("KEYWARD_RECOVERY_KEYS_FILE", keys_file)
        .env("RUST_LOG", "warn");
    cmd
}

#[tokio::test]
async fn a_wrong_or_missing_operator_key_fails_closed_and_rewrap_rolls_it() {
    let (database, _guard) = tokio::task::spawn_blocking(fresh_database).await.unwrap();
    let admin;
    let key;
    {
        let app = spawn_app_on_with(database.clone(), with_keys(K1)).await;
        let b = app.browser();
        let res = b
            .complete_setup(&app, "Acme", "Ada Admin", ADMIN_EMAIL, ADMIN_PASSWORD)
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        assert_eq!(turn_on(&b).await.status(), StatusCode::SEE_OTHER);
        key = b
            .create_key("/account/keys", &[("recoverable", "on")])
            .await;
        admin = b;
        stop(app).await;
    }
    // Restarted with another operator key: refused, clearly, never the secret.
    for (keys, says) in [
        (Some(K1_WRONG), "could not be decrypted"),
        (Some(K2), "is not in KEYWARD_RECOVERY_KEYS_FILE"),
        (None, "KEYWARD_RECOVERY_KEYS_FILE"),
    ] {
        let app = spawn_app_on_with(database.clone(), move |c| {
            c.recovery_keys = keys.map(|k| OperatorKeys::parse(k).unwrap());
        })
        .await;
        let b = Browser {
            base: app.base.clone(),
            ..admin.clone()
        };
        assert_eq!(
            confirm(&b, &key.id, ADMIN_PASSWORD).await.status(),
            StatusCode::SEE_OTHER
        );
        let (status, _, body) = show(&b, &key.id).await;
        assert_eq!(status, StatusCode::CONFLICT, "{keys:?}: {body}");
        assert!(body.contains(says), "{keys:?}: {body}");
        assert!(!body.contains(&key.secret));
        assert!(
            !app.event_actions()
                .await
                .contains(&"key.secret_shown".to_owned()),
            "nothing shown, nothing audited"
        );
        stop(app).await;
    }
    // The operator rolls to k2 (k1 still listed to open what it sealed).
    let dir = tempfile::tempdir().unwrap();
    let both = dir.path().join("keys");
    std::fs::write(&both, format!("# current first\n{K2}\n{K1}\n")).unwrap();
    let out = keyward_cli(&database, &both)
        .args(["recovery", "rewrap"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("Re-encrypted 1 stored secret"), "{said}");
    // Run again: nothing left to do.
    let out = keyward_cli(&database, &both)
        .args(["recovery", "rewrap"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("Re-encrypted 0 stored secrets"));
    // A file without the key that sealed a secret: refused, nothing changed.
    let only_k1 = dir.path().join("only_k1");
    std::fs::write(&only_k1, format!("{K1}\n")).unwrap();
    let out = keyward_cli(&database, &only_k1)
        .args(["recovery", "rewrap"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing was changed"));

    // Now k1 can go: with k2 alone the secret is shown as it was.
    let app = spawn_app_on_with(database.clone(), with_keys(K2)).await;
    assert_eq!(sealed_of(&app, &key.id).await.unwrap().enc_key_id, "k2");
    let b = Browser {
        base: app.base.clone(),
        ..admin.clone()
    };
    assert_eq!(
        confirm(&b, &key.id, ADMIN_PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
    let (status, _, body) = show(&b, &key.id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(shown_secret(&body).as_deref(), Some(key.secret.as_str()));
    assert_eq!(me(&app.base, &key.secret).await.0, StatusCode::OK);
}
