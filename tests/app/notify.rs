//! Notifications: webhook endpoints over the management API, the outbox
//! written with the audit events, the address guard; and (ignored, run by
//! `.ci/run` with the peers installed) deliveries to a real receiver that
//! verifies them with the official Standard Webhooks library.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

const WEBHOOK_MANAGEMENT: [(&str, &str); 5] = [
    ("permissions", "keyward:keys:read"),
    ("permissions", "keyward:keys:write"),
    ("permissions", "keyward:events:read"),
    ("permissions", "keyward:webhooks:read"),
    ("permissions", "keyward:webhooks:write"),
];

/// The admin's workspace key with every management permission.
async fn manager(admin: &Browser) -> String {
    let mut fields = vec![("name", "Provisioning"), ("expiry", "never")];
    fields.extend_from_slice(&WEBHOOK_MANAGEMENT);
    admin.create_key("/workspace/keys", &fields).await.secret
}

async fn call(
    base: &str,
    key: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut rb = reqwest::Client::new()
        .request(method, format!("{base}{path}"))
        .bearer_auth(key);
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let res = rb.send().await.expect("request");
    let status = res.status();
    let text = res.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    (status, json)
}

async fn post(base: &str, key: &str, path: &str, body: Value) -> (StatusCode, Value) {
    call(base, key, reqwest::Method::POST, path, Some(body)).await
}

async fn get(base: &str, key: &str, path: &str) -> (StatusCode, Value) {
    call(base, key, reqwest::Method::GET, path, None).await
}

/// The outbox rows of an endpoint: (event type, payload).
async fn outbox(app: &TestApp, endpoint: &str) -> Vec<(String, Value)> {
    let endpoint = endpoint.to_owned();
    app.with_db(move |c| {
        use diesel::prelude::*;
        use keyward::db::schema::outbox;
        outbox::table
            .filter(outbox::endpoint_id.eq(endpoint))
            .order(outbox::created_at.asc())
            .select((outbox::event_type, outbox::payload))
            .load::<(String, String)>(c)
            .expect("outbox")
            .into_iter()
            .map(|(t, p)| (t, serde_json::from_str(&p).expect("payload is JSON")))
            .collect()
    })
    .await
}

#[tokio::test]
async fn webhooks_to_private_addresses_are_refused_by_default() {
    let (app, admin) = spawn_ready_with(|c| c.webhook_allow_private = false).await;
    let key = manager(&admin).await;
    for url in [
        "http://127.0.0.1:9/hook",
        "http://localhost:9/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://10.0.0.8/hook",
    ] {
        let (status, body) = post(
            &app.base,
            &key,
            "/api/v1/webhooks",
            json!({"url": url, "event_types": ["*"]}),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {body}");
        assert!(
            body.to_string().contains("KEYWARD_WEBHOOK_ALLOW_PRIVATE"),
            "{url}: the refusal names the setting: {body}"
        );
    }
    let (_, list) = get(&app.base, &key, "/api/v1/webhooks").await;
    assert_eq!(list["webhooks"], json!([]));
}

#[tokio::test]
async fn webhook_endpoints_are_managed_by_admins_with_the_permission() {
    let (app, admin) = spawn_ready().await;
    let key = manager(&admin).await;
    // A key without the webhook permissions is refused.
    let keys_only = admin
        .create_key(
            "/workspace/keys",
            &[("name", "keys only"), ("permissions", "keyward:keys:read")],
        )
        .await
        .secret;
    let (status, _) = get(&app.base, &keys_only, "/api/v1/webhooks").await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, created) = post(
        &app.base,
        &key,
        "/api/v1/webhooks",
        json!({"url": "http://127.0.0.1:9/hook", "description": "SIEM", "event_types": ["key.*", "user.removed"]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let id = created["webhook"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        created["webhook"]["event_types"],
        json!(["key.*", "user.removed"])
    );

    // Shown once: no read shows it again, and the database does not hold it.
    let (_, one) = get(&app.base, &key, &format!("/api/v1/webhooks/{id}")).await;
    let (_, list) = get(&app.base, &key, "/api/v1/webhooks").await;
    let b64 = secret.trim_start_matches("whsec_").to_owned();
    for shown in [&one, &list] {
        assert!(!shown.to_string().contains(&b64), "{shown}");
    }
    let stored: String = {
        let id = id.clone();
        app.with_db(move |c| {
            use diesel::prelude::*;
            use keyward::db::schema::webhook_endpoints as w;
            w::table
                .filter(w::id.eq(id))
                .select(w::secret)
                .first(c)
                .unwrap()
        })
        .await
    };
    assert!(!stored.contains(&b64), "the secret is sealed at rest");

    // Unknown event types and bad addresses are refused, field by field.
    let (status, body) = post(
        &app.base,
        &key,
        "/api/v1/webhooks",
        json!({"url": "ftp://x", "event_types": ["key.teleported"]}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    // A description follows the rule of every other description: no
    // characters that turn text around or hide it, at most 500 characters.
    for description in ["SIEM \u{202E}kooh", &"d".repeat(501)] {
        let (status, body) = post(
            &app.base,
            &key,
            "/api/v1/webhooks",
            json!({"url": "http://127.0.0.1:9/other", "description": description, "event_types": ["key.*"]}),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(body.to_string().contains("description"), "{body}");
    }
    let (_, list) = get(&app.base, &key, "/api/v1/webhooks").await;
    assert_eq!(list["webhooks"].as_array().map(Vec::len), Some(1), "{list}");

    // A key event is queued for the endpoint in its own transaction, with
    // ids, names and actor, but never the key's secret.
    let made = admin
        .create_key("/workspace/keys", &[("name", "billing sync")])
        .await;
    let queued = outbox(&app, &id).await;
    let created_row = queued
        .iter()
        .find(|(t, _)| t == "key.created")
        .unwrap_or_else(|| panic!("key.created queued: {queued:?}"));
    let payload = &created_row.1;
    assert_eq!(payload["type"], "key.created");
    assert_eq!(payload["data"]["target"]["id"], made.id.as_str());
    assert_eq!(payload["data"]["target"]["label"], "billing sync");
    assert!(payload["data"]["actor"]["label"].is_string());
    assert!(!payload.to_string().contains(&made.secret));
    // Events it did not subscribe to are not queued (the webhook.* ones).
    assert!(
        queued.iter().all(|(t, _)| t.starts_with("key.")),
        "{queued:?}"
    );

    // Edit, roll, delete: each recorded in the audit trail.
    let (status, edited) = call(
        &app.base,
        &key,
        reqwest::Method::PATCH,
        &format!("/api/v1/webhooks/{id}"),
        Some(json!({"event_types": ["*"]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{edited}");
    assert_eq!(edited["event_types"], json!(["*"]));
    assert_eq!(edited["url"], "http://127.0.0.1:9/hook");
    let (status, rolled) = post(
        &app.base,
        &key,
        &format!("/api/v1/webhooks/{id}/roll-secret"),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{rolled}");
    assert_ne!(rolled["secret"], secret.as_str());
    assert!(rolled["webhook"]["previous_secret_valid_until"].is_string());
    let (status, _) = call(
        &app.base,
        &key,
        reqwest::Method::DELETE,
        &format!("/api/v1/webhooks/{id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = get(&app.base, &key, &format!("/api/v1/webhooks/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let actions = app.event_actions().await;
    for a in [
        "webhook.created",
        "webhook.updated",
        "webhook.secret_rolled",
        "webhook.deleted",
    ] {
        assert!(actions.iter().any(|x| x == a), "{a} in {actions:?}");
    }
}

/// The receiver of `tests/peers/webhook_receiver.py`, on its own port.
pub struct Receiver {
    child: std::process::Child,
    pub base: String,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Python of the peers' venv (`.ci/run` makes it).
pub fn peer_python() -> String {
    std::env::var("KEYWARD_NOTIFY_PYTHON").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/target/notify-venv/bin/python").to_owned()
    })
}

impl Receiver {
    pub async fn start() -> Receiver {
        let mut child = std::process::Command::new(peer_python())
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/peers/webhook_receiver.py"
            ))
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("the webhook receiver starts (run .ci/run to install its venv)");
        let port = printed_word(&mut child, |w| w.parse::<u16>().is_ok()).await;
        Receiver {
            child,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    pub async fn configure(&self, secrets: &[&str], fail_first: u32) {
        let res = reqwest::Client::new()
            .post(format!("{}/_config", self.base))
            .json(&json!({"secrets": secrets, "fail_first": fail_first}))
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success());
    }

    pub async fn log(&self) -> Vec<Value> {
        reqwest::get(format!("{}/_log", self.base))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Wait (up to a minute) until the log has an entry that `done` picks.
    pub async fn wait_for(&self, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        for _ in 0..600 {
            let log = self.log().await;
            if done(&log) {
                return log;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "the receiver never got what was expected: {:?}",
            self.log().await
        );
    }
}

/// A receiver that answers 500 first gets the same message again (same
/// `webhook-id`) after the backoff, and it verifies with the official
/// library; the delivery log shows both attempts. After a roll, messages
/// carry both signatures, so a receiver still on the old secret verifies.
#[tokio::test]
#[ignore = "needs the webhook receiver's venv (.ci/run)"]
async fn notify_peer_webhooks_are_signed_retried_and_delivered() {
    let receiver = Receiver::start().await;
    let (app, admin) = spawn_ready().await;
    let key = manager(&admin).await;
    let (status, created) = post(
        &app.base,
        &key,
        "/api/v1/webhooks",
        json!({"url": format!("{}/hook", receiver.base), "event_types": ["key.*"]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let secret = created["secret"].as_str().unwrap().to_owned();
    let id = created["webhook"]["id"].as_str().unwrap().to_owned();
    receiver.configure(&[&secret], 1).await;

    let made = admin
        .create_key("/workspace/keys", &[("name", "billing sync")])
        .await;
    let log = receiver
        .wait_for(|log| log.iter().any(|e| e["status"] == 200))
        .await;
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(log[0]["status"], 500);
    assert_eq!(log[0]["id"], log[1]["id"], "a retry is the same message");
    for e in &log {
        assert_eq!(e["verified"], true, "verified by standardwebhooks: {e}");
        assert_eq!(e["type"], "key.created");
        assert_eq!(e["data"]["target"]["id"], made.id.as_str());
        assert!(!e["body"].as_str().unwrap().contains(&made.secret));
    }
    // Delivered: the delivery log says so.
    let (_, dl) = get(
        &app.base,
        &key,
        &format!("/api/v1/webhooks/{id}/deliveries"),
    )
    .await;
    let statuses: Vec<i64> = dl["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status"].as_i64().unwrap())
        .collect();
    assert_eq!(statuses, [200, 500], "{dl}");
    assert_eq!(dl["deliveries"][0]["outcome"], "delivered");

    // Roll: the receiver still on the old secret keeps verifying, as does
    // one on the new secret; a stranger's secret does not.
    let (_, rolled) = post(
        &app.base,
        &key,
        &format!("/api/v1/webhooks/{id}/roll-secret"),
        json!({}),
    )
    .await;
    let new_secret = rolled["secret"].as_str().unwrap().to_owned();
    for (secrets, verified) in [
        (vec![secret.as_str()], true),
        (vec![new_secret.as_str()], true),
        (vec!["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"], false),
    ] {
        receiver.configure(&secrets, 0).await;
        let before = receiver.log().await.len();
        let (status, _) = post(
            &app.base,
            &key,
            &format!("/api/v1/webhooks/{id}/test"),
            json!({}),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        let log = receiver.wait_for(|log| log.len() > before).await;
        let last = &log[before];
        assert_eq!(
            last["type"],
            if verified {
                json!("webhook.test")
            } else {
                Value::Null
            }
        );
        assert_eq!(last["verified"], verified, "{last}");
        assert_eq!(
            last["signatures"], 2,
            "both secrets sign while the old lasts"
        );
    }
}

/// The Settings → Webhooks pages: add (secret shown once), edit, test,
/// roll and delete behind confirmations; normal users are refused.
#[tokio::test]
async fn webhook_pages_add_edit_roll_and_delete() {
    let (app, admin) = spawn_ready().await;
    let (status, empty) = admin.page("/workspace/webhooks").await;
    assert_eq!(status, StatusCode::OK);
    assert!(empty.contains("No endpoints yet"), "empty state");
    let (_, settings) = admin.page("/workspace/settings").await;
    assert!(settings.contains("href=\"/workspace/webhooks\""));

    // Refused address: the form comes back with the message.
    let res = admin
        .post_form(
            "/workspace/webhooks",
            &[("url", "notaurl"), ("event_types", "*")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("must start with https://")
    );

    let res = admin
        .post_form(
            "/workspace/webhooks",
            &[
                ("url", "http://127.0.0.1:9/hook"),
                ("description", "SIEM"),
                ("event_types", "key.revoked"),
                ("event_types", "user.removed"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let shown = res.text().await.unwrap();
    assert!(shown.contains("whsec_"), "the secret is shown once");
    let id_at = shown.find("/workspace/webhooks/whk_").unwrap() + "/workspace/webhooks/".len();
    let id = shown[id_at..id_at + 26].to_owned();
    let (_, list) = admin.page("/workspace/webhooks").await;
    assert!(list.contains("http://127.0.0.1:9/hook") && !list.contains("whsec_"));
    let (status, detail) = admin.page(&format!("/workspace/webhooks/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!detail.contains("whsec_"), "never shown again");
    assert!(detail.contains("value=\"key.revoked\" checked"));

    let res = admin
        .post_form(
            &format!("/workspace/webhooks/{id}"),
            &[
                ("url", "http://127.0.0.1:9/other"),
                ("description", "SIEM"),
                ("event_types", "*"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let res = admin
        .post_form(&format!("/workspace/webhooks/{id}/test"), &[])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (_, detail) = admin.page(&format!("/workspace/webhooks/{id}")).await;
    assert!(detail.contains("http://127.0.0.1:9/other"));
    assert!(
        detail.contains("webhook.test"),
        "the test message is listed"
    );

    let (status, confirm) = admin.page(&format!("/workspace/webhooks/{id}/roll")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(confirm.contains("Roll secret"));
    let res = admin
        .post_form(&format!("/workspace/webhooks/{id}/roll"), &[])
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.unwrap().contains("whsec_"));

    // A normal user sees none of it.
    let bob = app
        .add_user(&admin, "bob@example.com", "normal", "correct horse battery")
        .await;
    let (status, _) = bob.page("/workspace/webhooks").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let res = bob
        .post_form(&format!("/workspace/webhooks/{id}/delete"), &[])
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    let (_, confirm) = admin
        .page(&format!("/workspace/webhooks/{id}/delete"))
        .await;
    assert!(confirm.contains("Delete endpoint"));
    let res = admin
        .post_form(&format!("/workspace/webhooks/{id}/delete"), &[])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (status, _) = admin.page(&format!("/workspace/webhooks/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// The SMTP server of `tests/peers/smtp_sink.py` (aiosmtpd).
pub struct SmtpSink {
    child: std::process::Child,
    pub smtp_url: String,
    http: String,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SmtpSink {
    pub async fn start() -> SmtpSink {
        let mut child = std::process::Command::new(peer_python())
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/peers/smtp_sink.py"
            ))
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("the SMTP sink starts (run .ci/run to install its venv)");
        let ports = printed_word(&mut child, |w| w.contains(':')).await;
        let (smtp, http) = ports.split_once(':').unwrap();
        SmtpSink {
            child,
            smtp_url: format!("smtp://127.0.0.1:{smtp}"),
            http: format!("http://127.0.0.1:{http}"),
        }
    }

    pub async fn messages(&self) -> Vec<Value> {
        reqwest::get(format!("{}/messages", self.http))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Wait (up to a minute) until `done` holds for the messages.
    pub async fn wait_for(&self, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        for _ in 0..600 {
            let m = self.messages().await;
            if done(&m) {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "the SMTP sink never got what was expected: {:?}",
            self.messages().await
        );
    }
}

/// Messages about one key.
fn about<'a>(messages: &'a [Value], key: &str) -> Vec<&'a Value> {
    messages
        .iter()
        .filter(|m| m["text"].as_str().is_some_and(|t| t.contains(key)))
        .collect()
}

/// A date `days` from today, as the create form takes it.
fn in_days(days: i64) -> String {
    (chrono::Utc::now().date_naive() + chrono::TimeDelta::days(days))
        .format("%Y-%m-%d")
        .to_string()
}

async fn expiring_key(admin: &Browser, list: &str, name: &str, days: i64) -> CreatedKey {
    let date = in_days(days);
    admin
        .create_key(
            list,
            &[("name", name), ("expiry", "custom"), ("expiry_date", &date)],
        )
        .await
}

fn with_smtp(url: String) -> impl FnOnce(&mut keyward::config::Config) + Send + 'static {
    move |c| {
        c.smtp_url = Some(url);
        c.smtp_from = Some("keyward@example.com".into());
    }
}

/// Set up a workspace on `database` with mail to `smtp`: the admin's
/// browser.
async fn set_up(app: &TestApp) -> Browser {
    let admin = app.browser();
    let res = admin
        .complete_setup(app, "Acme", "Ada Admin", ADMIN_EMAIL, ADMIN_PASSWORD)
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    admin
}

/// An expiry reminder goes once per key and threshold: to a personal
/// key's owner, to the admins for a workspace key, with the workspace in
/// the subject and links to the key and to regenerate it; not again after
/// a restart.
#[tokio::test]
#[ignore = "needs the SMTP sink's venv (.ci/run)"]
async fn notify_peer_reminders_are_sent_once_across_a_restart() {
    let sink = SmtpSink::start().await;
    let (database, _guard) = tokio::task::spawn_blocking(fresh_database).await.unwrap();
    let app = spawn_app_on_with(database.clone(), with_smtp(sink.smtp_url.clone())).await;
    let admin = set_up(&app).await;
    let personal = expiring_key(&admin, "/account/keys", "laptop", 3).await;
    let shared = expiring_key(&admin, "/workspace/keys", "billing sync", 3).await;
    let far = expiring_key(&admin, "/workspace/keys", "far off", 60).await;
    // Bob turned reminders off on his Account page.
    let bob = app
        .add_user(&admin, "bob@example.com", "normal", "correct horse battery")
        .await;
    let res = bob.post_form("/account/reminders", &[]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (_, account) = bob.page("/account").await;
    assert!(account.contains("value=\"on\">"), "unchecked now");
    let quiet = expiring_key(&bob, "/account/keys", "bob's", 3).await;
    let got = sink
        .wait_for(|m| !about(m, &personal.id).is_empty() && !about(m, &shared.id).is_empty())
        .await;
    let mail = about(&got, &personal.id)[0];
    assert_eq!(mail["to"], json!([ADMIN_EMAIL]));
    let subject = mail["subject"].as_str().unwrap();
    assert!(
        subject.contains("[Acme]") && subject.contains("laptop"),
        "{subject}"
    );
    let text = mail["text"].as_str().unwrap();
    assert!(
        text.contains(&format!("{}/keys/{}", app.base, personal.id)),
        "{text}"
    );
    assert!(text.contains(&format!("{}/keys/{}/regenerate", app.base, personal.id)));
    assert!(mail["html"].as_str().unwrap().contains("<a href="));
    assert!(!text.contains(&personal.secret), "never the secret");
    drop(app);

    // Restarted on the same database: nothing is sent again. A key made
    // now is reminded of (so the scan has run over the earlier ones).
    let app = spawn_app_on_with(database.clone(), with_smtp(sink.smtp_url.clone())).await;
    let admin = app.browser();
    assert_eq!(
        admin.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
    let later = expiring_key(&admin, "/workspace/keys", "later", 5).await;
    let got = sink.wait_for(|m| !about(m, &later.id).is_empty()).await;
    assert_eq!(about(&got, &personal.id).len(), 1, "{got:?}");
    assert_eq!(about(&got, &shared.id).len(), 1, "{got:?}");
    assert!(about(&got, &far.id).is_empty(), "not due yet");
    assert!(
        about(&got, &quiet.id).is_empty(),
        "bob turned reminders off"
    );
    drop(app);
}

/// Two instances on one PostgreSQL remind of each key once between them.
#[tokio::test]
#[ignore = "needs the SMTP sink's venv and PostgreSQL (.ci/run)"]
async fn notify_peer_two_instances_on_postgres_remind_once() {
    if std::env::var("KEYWARD_TEST_DATABASE_URL").is_err() {
        eprintln!("skipped: PostgreSQL only (KEYWARD_TEST_DATABASE_URL)");
        return;
    }
    let sink = SmtpSink::start().await;
    let (app, admin) = spawn_ready_with(with_smtp(sink.smtp_url.clone())).await;
    let other = app.another_instance(with_smtp(sink.smtp_url.clone())).await;
    let mut keys = Vec::new();
    for i in 0..6 {
        keys.push(expiring_key(&admin, "/workspace/keys", &format!("k{i}"), 2).await);
    }
    let last = expiring_key(&admin, "/workspace/keys", "last", 6).await;
    let got = sink.wait_for(|m| !about(m, &last.id).is_empty()).await;
    for k in &keys {
        assert_eq!(about(&got, &k.id).len(), 1, "{}: {got:?}", k.id);
    }
    drop(other);
}

/// A refusing or hanging SMTP server blocks no request and loses no
/// reminder: the message stays queued, and is sent once the server works.
#[tokio::test]
#[ignore = "needs the SMTP sink's venv (.ci/run)"]
async fn notify_peer_bad_smtp_servers_block_nothing_and_lose_nothing() {
    // Hanging: accepts connections and never says a word.
    let hanging = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hanging_url = format!("smtp://{}", hanging.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((s, _)) = hanging.accept().await {
            open.push(s);
        }
    });
    // Refusing: nothing listens on the port.
    let refusing_url = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("smtp://{}", l.local_addr().unwrap())
    };
    let sink = SmtpSink::start().await;
    for (i, bad) in [hanging_url, refusing_url].into_iter().enumerate() {
        let (database, _guard) = tokio::task::spawn_blocking(fresh_database).await.unwrap();
        let app = spawn_app_on_with(database.clone(), with_smtp(bad)).await;
        let admin = set_up(&app).await;
        let key = expiring_key(&admin, "/workspace/keys", &format!("bad smtp {i}"), 3).await;
        // The reminder is queued and its sending was tried and failed;
        // pages answer all the while.
        let id = key.id.clone();
        let mut tried = false;
        for _ in 0..600 {
            let id = id.clone();
            tried = app
                .with_db(move |c| {
                    use diesel::prelude::*;
                    use keyward::db::schema::mail_outbox as m;
                    m::table
                        .filter(m::last_error.is_not_null())
                        .filter(m::done_at.is_null())
                        .select(m::text_body)
                        .load::<String>(c)
                        .unwrap()
                        .iter()
                        .any(|t| t.contains(&id))
                })
                .await;
            if tried {
                break;
            }
            let (status, _) = admin.page("/workspace/keys").await;
            assert_eq!(status, StatusCode::OK);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(tried, "the bad server was tried");
        drop(app);
        // With a working server, it is sent, once.
        let app = spawn_app_on_with(database.clone(), with_smtp(sink.smtp_url.clone())).await;
        let got = sink.wait_for(|m| !about(m, &id).is_empty()).await;
        assert_eq!(about(&got, &id).len(), 1, "{id}: {got:?}");
        drop(app);
    }
    held.abort();
}

/// The other mails: an invitation carries the link the admin is shown; a
/// removed member is told which of their keys were revoked; admins are
/// told when a webhook endpoint is given up on (its day of retries is
/// stepped over by setting the attempt count).
#[tokio::test]
#[ignore = "needs the SMTP sink's and receiver's venv (.ci/run)"]
async fn notify_peer_invitation_removal_and_failing_endpoint_mails() {
    let sink = SmtpSink::start().await;
    let receiver = Receiver::start().await;
    receiver.configure(&[], 1_000_000).await;
    let (app, admin) = spawn_ready_with(with_smtp(sink.smtp_url.clone())).await;

    let res = admin
        .post_form(
            "/workspace/users",
            &[
                ("email", "bob@example.com"),
                ("name", "Bob"),
                ("role", "normal"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let link = invite_link(&res.text().await.unwrap()).expect("still shown to the admin");
    let got = sink
        .wait_for(|m| m.iter().any(|m| m["to"] == json!(["bob@example.com"])))
        .await;
    let invitation = &got[0];
    assert!(invitation["subject"].as_str().unwrap().contains("[Acme]"));
    assert!(
        invitation["text"].as_str().unwrap().contains(&link),
        "{invitation}"
    );

    let bob = app.browser();
    let path = format!("/invite/{}", link.rsplit('/').next().unwrap());
    bob.choose_password_and_sign_in(&path, "bob@example.com", "correct horse battery")
        .await;
    let bobs = bob
        .create_key("/account/keys", &[("name", "bob's laptop")])
        .await;
    let bob_id = app
        .with_db(|c| {
            keyward::db::users::find_active_by_email(c, "bob@example.com")
                .unwrap()
                .unwrap()
                .id
        })
        .await;
    let res = admin
        .post_form(&format!("/workspace/users/{bob_id}/remove"), &[])
        .await;
    assert!(res.status().is_redirection() || res.status().is_success());
    let got = sink
        .wait_for(|m| {
            m.iter()
                .any(|m| m["subject"].as_str().unwrap().contains("revoked"))
        })
        .await;
    let left = got
        .iter()
        .find(|m| m["subject"].as_str().unwrap().contains("revoked"))
        .unwrap();
    assert_eq!(left["to"], json!(["bob@example.com"]));
    assert!(left["text"].as_str().unwrap().contains(&bobs.id), "{left}");
    assert!(!left["text"].as_str().unwrap().contains(&bobs.secret));

    // A failing endpoint: the receiver answers 500 to everything.
    let res = admin
        .post_form(
            "/workspace/webhooks",
            &[
                ("url", &format!("{}/hook", receiver.base)),
                ("event_types", "key.*"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    admin.create_key("/workspace/keys", &[("name", "x")]).await;
    let mut failing = false;
    for _ in 0..600 {
        failing = app
            .with_db(|c| {
                use diesel::prelude::*;
                use keyward::db::schema::{outbox, webhook_endpoints as w};
                // The day of retries, stepped over: the next failure is the
                // last.
                diesel::update(outbox::table.filter(outbox::done_at.is_null()))
                    .set((
                        outbox::attempts.eq(10),
                        outbox::next_attempt_at.eq(keyward::db::now()),
                    ))
                    .execute(c)
                    .unwrap();
                w::table
                    .filter(w::failing_since.is_not_null())
                    .count()
                    .get_result::<i64>(c)
                    .unwrap()
                    > 0
            })
            .await;
        if failing {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(failing, "the endpoint is marked failing");
    let got = sink
        .wait_for(|m| {
            m.iter()
                .any(|m| m["subject"].as_str().unwrap().contains("failing"))
        })
        .await;
    let mail = got
        .iter()
        .find(|m| m["subject"].as_str().unwrap().contains("failing"))
        .unwrap();
    assert_eq!(mail["to"], json!([ADMIN_EMAIL]));
    assert!(
        app.event_actions()
            .await
            .iter()
            .any(|a| a == "webhook.failing")
    );
    let (_, list) = admin.page("/workspace/webhooks").await;
    assert!(list.contains("Failing"), "admins see it");
}

/// Without SMTP, keyward behaves as before: nothing is queued for email
/// (the invitation link is shown to copy).
#[tokio::test]
async fn without_smtp_no_mail_is_queued() {
    let (app, admin) = spawn_ready().await;
    let res = admin
        .post_form(
            "/workspace/users",
            &[
                ("email", "bob@example.com"),
                ("name", "Bob"),
                ("role", "normal"),
            ],
        )
        .await;
    assert!(invite_link(&res.text().await.unwrap()).is_some());
    expiring_key(&admin, "/workspace/keys", "soon", 2).await;
    let (_, account) = admin.page("/account").await;
    assert!(account.contains("sends no email"));
    let queued = app
        .with_db(|c| {
            use diesel::prelude::*;
            keyward::db::schema::mail_outbox::table
                .count()
                .get_result::<i64>(c)
                .unwrap()
        })
        .await;
    assert_eq!(queued, 0);
}

/// A `key.leaked` event (recorded by the leak-response part of keyward;
/// written here as it writes it) is told to the admins once.
#[tokio::test]
#[ignore = "needs the SMTP sink's venv (.ci/run)"]
async fn notify_peer_a_leaked_key_is_told_once() {
    let sink = SmtpSink::start().await;
    let (app, admin) = spawn_ready_with(with_smtp(sink.smtp_url.clone())).await;
    let mut keys = Vec::new();
    for name in ["first", "second"] {
        let key = admin.create_key("/workspace/keys", &[("name", name)]).await;
        let (id, name) = (key.id.clone(), name.to_owned());
        app.with_db(move |c| {
            let ws: String = {
                use diesel::prelude::*;
                use keyward::db::schema::api_keys;
                api_keys::table
                    .filter(api_keys::id.eq(&id))
                    .select(api_keys::workspace_id)
                    .first(c)
                    .unwrap()
            };
            let ctx = keyward::db::events::AuditContext {
                workspace_id: ws,
                actor_label: "GitHub secret scanning".into(),
                ..Default::default()
            };
            keyward::db::events::record(
                c,
                &ctx,
                "key.leaked",
                keyward::db::events::EventTarget {
                    target_type: Some("api_key"),
                    target_id: Some(&id),
                    target_label: Some(&name),
                },
                json!({"source": "github"}),
            )
            .unwrap();
        })
        .await;
        let got = sink.wait_for(|m| !about(m, &key.id).is_empty()).await;
        let mail = about(&got, &key.id)[0];
        assert_eq!(mail["to"], json!([ADMIN_EMAIL]));
        assert!(mail["subject"].as_str().unwrap().contains("leaked"));
        assert!(!mail["text"].as_str().unwrap().contains(&key.secret));
        keys.push(key);
    }
    let got = sink.messages().await;
    assert_eq!(about(&got, &keys[0].id).len(), 1, "told once: {got:?}");
}

/// The workspace sets when reminders go out; a bad list is refused.
#[tokio::test]
async fn the_workspace_sets_its_reminder_days() {
    let (app, admin) = spawn_ready().await;
    let (_, page) = admin.page("/workspace/webhooks").await;
    assert!(page.contains("value=\"14,7,1,0\""), "the default");
    let res = admin
        .post_form("/workspace/reminders", &[("reminder_days", "99")])
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let res = admin
        .post_form("/workspace/reminders", &[("reminder_days", "0, 3, 3")])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (_, page) = admin.page("/workspace/webhooks").await;
    assert!(page.contains("value=\"3,0\""), "stored largest first");
    assert!(
        app.event_actions()
            .await
            .iter()
            .any(|a| a == "settings.changed")
    );
}

/// Reminders follow the workspace's days.
#[tokio::test]
#[ignore = "needs the SMTP sink's venv (.ci/run)"]
async fn notify_peer_reminders_follow_the_workspace_days() {
    let sink = SmtpSink::start().await;
    let (_app, admin) = spawn_ready_with(with_smtp(sink.smtp_url.clone())).await;
    let res = admin
        .post_form("/workspace/reminders", &[("reminder_days", "2")])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let not_yet = expiring_key(&admin, "/workspace/keys", "five days", 5).await;
    let due = expiring_key(&admin, "/workspace/keys", "one day", 1).await;
    sink.wait_for(|m| !about(m, &due.id).is_empty()).await;
    // Two more scans (one a second) pass over the other key too.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(about(&sink.messages().await, &not_yet.id).is_empty());
}

/// Without SMTP, keyward still records a key's expiry: one `key.expiring`
/// at the nearest reminder day crossed and one `key.expired` at expiry —
/// audit events that webhooks subscribed to them receive, once however
/// often the scan runs.
#[tokio::test]
async fn expiring_and_expired_keys_are_events_webhooks_receive_once() {
    let (app, admin) = spawn_ready().await;
    let key = manager(&admin).await;
    let (status, created) = post(
        &app.base,
        &key,
        "/api/v1/webhooks",
        json!({"url": "http://127.0.0.1:9/hook", "event_types": ["key.expiring", "key.expired"]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let endpoint = created["webhook"]["id"].as_str().unwrap().to_owned();

    let soon = expiring_key(&admin, "/workspace/keys", "nightly export", 3).await;
    let ended = expiring_key(&admin, "/account/keys", "laptop", 30).await;
    let far = expiring_key(&admin, "/workspace/keys", "far off", 60).await;
    // "laptop" reached its expiry a minute ago.
    let id = ended.id.clone();
    app.with_db(move |c| {
        use diesel::prelude::*;
        use keyward::db::schema::api_keys;
        diesel::update(api_keys::table.filter(api_keys::id.eq(id)))
            .set(api_keys::expires_at.eq(keyward::db::now() - chrono::TimeDelta::minutes(1)))
            .execute(c)
            .unwrap();
    })
    .await;

    let of = |rows: &[(String, Value)], t: &str, key: &str| -> Vec<Value> {
        rows.iter()
            .filter(|(ty, p)| ty == t && p["data"]["target"]["id"] == key)
            .map(|(_, p)| p.clone())
            .collect()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let rows = loop {
        let rows = outbox(&app, &endpoint).await;
        if !of(&rows, "key.expiring", &soon.id).is_empty()
            && !of(&rows, "key.expired", &ended.id).is_empty()
        {
            break rows;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no expiry events reached the outbox: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let expiring = of(&rows, "key.expiring", &soon.id);
    let details = &expiring[0]["data"]["details"];
    assert_eq!(details["threshold_days"], 7, "{details}");
    assert!(details["days_left"].as_i64().unwrap() <= 3, "{details}");
    assert_eq!(expiring[0]["data"]["actor"]["label"], "system");
    assert!(details["expires_at"].as_str().is_some(), "{details}");

    // Several more scans (one a second in tests) record nothing again, and
    // the key 60 days away is not expiring.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let rows = outbox(&app, &endpoint).await;
    assert_eq!(of(&rows, "key.expiring", &soon.id).len(), 1, "{rows:?}");
    assert_eq!(of(&rows, "key.expired", &ended.id).len(), 1, "{rows:?}");
    assert_eq!(of(&rows, "key.expired", &soon.id).len(), 0);
    assert!(of(&rows, "key.expiring", &far.id).is_empty(), "{rows:?}");
    assert_eq!(rows.len(), 2, "only what was subscribed: {rows:?}");

    // The audit trail says it in words.
    let (_, page) = admin
        .page(&format!("/workspace/events?key={}", ended.id))
        .await;
    assert!(
        page.contains("The personal key “laptop” expired at"),
        "{page}"
    );
    let (_, page) = admin.page("/workspace/events?action=key.expiring").await;
    assert!(
        page.contains("The workspace key “nightly export” expires in"),
        "{page}"
    );
}
