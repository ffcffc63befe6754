//! Upgrades: a database written by the previous release (commit d635f30,
//! see tests/fixtures/upgrade/README.md) opened by today's build. Its
//! migrations run at start, and people, keys, events and settings must
//! come through with every key still checking as it did.
//!
//! SQLite by default (a copy of the fixture file); PostgreSQL under
//! KEYWARD_TEST_DATABASE_URL (the fixture's plain SQL dump loaded into a
//! fresh, empty database).

use crate::helpers::*;
use keyward::config::DatabaseUrl;
use reqwest::StatusCode;
use serde_json::Value;
use std::path::Path;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/upgrade");

/// A fresh database holding the previous release's fixture, and the
/// secrets its keys were created with.
fn old_database() -> (DatabaseUrl, TestDb, Value) {
    let (url, guard) = empty_database();
    let name = match &url {
        DatabaseUrl::Sqlite(path) => {
            std::fs::copy(Path::new(FIXTURE).join("keyward.db"), path).expect("copy fixture");
            "sqlite.json"
        }
        DatabaseUrl::Postgres(url) => {
            use diesel::Connection;
            use diesel::connection::SimpleConnection;
            let dump = std::fs::read_to_string(Path::new(FIXTURE).join("postgres.sql"))
                .expect("read dump");
            let mut c = diesel::PgConnection::establish(url).expect("connect");
            c.batch_execute(&dump).expect("load the dump");
            "postgres.json"
        }
    };
    let secrets = std::fs::read_to_string(Path::new(FIXTURE).join(name)).expect("read secrets");
    (
        url,
        guard,
        serde_json::from_str(&secrets).expect("secrets JSON"),
    )
}

fn secret<'a>(s: &'a Value, key: &str) -> &'a str {
    s["keys"][key]["secret"].as_str().expect("secret")
}

#[tokio::test]
async fn the_previous_releases_database_opens_with_people_keys_events_and_settings() {
    let (url, guard, s) = tokio::task::spawn_blocking(old_database)
        .await
        .expect("fixture task");
    let app = spawn_app_on(url).await;
    assert!(
        app.setup_url.is_none(),
        "the old database is set up already"
    );
    let base = app.base.clone();

    // People: the admin and the member sign in with their old passwords.
    let admin = app.browser();
    let email = s["admin_email"].as_str().unwrap();
    let res = admin
        .login(email, s["admin_password"].as_str().unwrap())
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "admin signs in");
    assert!(admin.signed_in().await);
    let member = app.browser();
    let res = member
        .login(
            s["member_email"].as_str().unwrap(),
            s["member_password"].as_str().unwrap(),
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "member signs in");
    let (status, users) = admin.page("/workspace/users").await;
    assert_eq!(status, StatusCode::OK);
    for person in ["ada@example.com", "carol@example.com", "bob@example.com"] {
        assert!(users.contains(person), "{person} listed");
    }

    // Keys: listed, and each checks as it did before the upgrade.
    let (status, list) = admin.page("/workspace/keys").await;
    assert_eq!(status, StatusCode::OK);
    for name in [
        "Grafana",
        "Provisioning",
        "Old ERP",
        "Paused MES",
        "Power BI",
    ] {
        assert!(list.contains(name), "{name} listed");
    }
    for key in ["personal", "grafana", "manager", "rotated_new", "member"] {
        let (status, _, json) = me(&base, secret(&s, key)).await;
        assert_eq!(status, StatusCode::OK, "{key} verifies: {json}");
        assert_eq!(json["id"], s["keys"][key]["id"], "{key}: {json}");
    }
    let (_, _, grafana) = me(&base, secret(&s, "grafana")).await;
    assert_eq!(grafana["permissions"], serde_json::json!(["reports:read"]));
    assert_eq!(
        me_code(&base, secret(&s, "revoked")).await,
        (StatusCode::UNAUTHORIZED, "REVOKED".into())
    );
    assert_eq!(me_code(&base, secret(&s, "disabled")).await.1, "DISABLED");
    // The regenerated key's old secret lives out its 7-day grace period.
    let grace_ends =
        chrono::DateTime::parse_from_rfc3339(s["rotated_grace_ends_after"].as_str().unwrap())
            .unwrap();
    let old = me(&base, secret(&s, "rotated_old")).await.0;
    if chrono::Utc::now() < grace_ends - chrono::TimeDelta::minutes(5) {
        assert_eq!(old, StatusCode::OK, "old secret within its grace period");
    } else if chrono::Utc::now() > grace_ends + chrono::TimeDelta::minutes(5) {
        assert_eq!(old, StatusCode::UNAUTHORIZED, "old secret after its grace");
    }

    // Events: the old trail is listed through the management API, each
    // with the public id the event-id migration gave it.
    let events: Value = reqwest::Client::new()
        .get(format!("{base}/api/v1/events?limit=100"))
        .bearer_auth(secret(&s, "manager"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let events = events["events"].as_array().expect("events");
    let actions: Vec<&str> = events.iter().filter_map(|e| e["action"].as_str()).collect();
    for action in [
        "key.created",
        "key.revoked",
        "key.disabled",
        "key.regenerated",
    ] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
    let mut ids: Vec<&str> = events.iter().filter_map(|e| e["id"].as_str()).collect();
    assert!(ids.iter().all(|id| id.starts_with("evt_")), "{ids:?}");
    let count = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), count, "event ids are unique");
    let (_, trail) = admin.page("/workspace/events").await;
    assert!(trail.contains("Old ERP"), "events page tells the old trail");

    // Settings kept.
    let (_, settings) = admin.page("/workspace/settings").await;
    assert!(settings.contains("value=\"25\""), "max keys per user kept");
    assert!(
        settings.contains("value=\"600\""),
        "default rate limit kept"
    );
    assert!(settings.contains("reports:read"), "own permission kept");

    // And the upgraded database takes new writes.
    let fresh = admin
        .create_key("/workspace/keys", &[("name", "After upgrade")])
        .await;
    assert_eq!(me(&base, &fresh.secret).await.0, StatusCode::OK);
    drop(app);
    drop(guard);
}
