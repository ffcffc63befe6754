//! Leak response (issue 25): GitHub secret scanning alerts signed the way
//! GitHub signs them (ECDSA P-256 over the raw body, with a key pair made
//! here and only its public half given to keyward), the public report
//! endpoint and page, the workspace's setting, and the installation prefix.

use crate::helpers::*;
use base64::Engine;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::{EncodePublicKey, LineEnding};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A signer standing in for GitHub: its key id and key pair.
struct Github {
    id: String,
    key: SigningKey,
    _dir: tempfile::TempDir,
    file: std::path::PathBuf,
}

fn signing_key() -> SigningKey {
    loop {
        let bytes: [u8; 32] = rand::random();
        if let Ok(k) = SigningKey::from_bytes(&bytes.into()) {
            return k;
        }
    }
}

impl Github {
    /// A key pair, and the key list file in GitHub's published format.
    fn new() -> Github {
        let key = signing_key();
        let id = hex::encode(rand::random::<[u8; 32]>());
        let pem = key
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("github-keys.json");
        let list = json!({ "public_keys": [
            { "key_identifier": "0000retired", "key": pem_of_another_key(), "is_current": false },
            { "key_identifier": id, "key": pem, "is_current": true },
        ]});
        std::fs::write(&file, list.to_string()).unwrap();
        Github {
            id,
            key,
            _dir: dir,
            file,
        }
    }

    fn sign(&self, body: &[u8]) -> String {
        let sig: Signature = self.key.sign(body);
        base64::engine::general_purpose::STANDARD.encode(sig.to_der().as_bytes())
    }
}

fn pem_of_another_key() -> String {
    signing_key()
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap()
}

async fn post_alert(
    base: &str,
    key_id: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
) -> (StatusCode, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{base}/api/v1/leaks/github"))
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some(id) = key_id {
        req = req.header("Github-Public-Key-Identifier", id);
    }
    if let Some(sig) = signature {
        req = req.header("Github-Public-Key-Signature", sig);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

fn alert(token: &str, url: &str) -> Vec<u8> {
    serde_json::to_vec(&json!([
        { "token": token, "type": "keyward_api_key", "url": url, "source": "content" }
    ]))
    .unwrap()
}

async fn leaked_events(app: &TestApp) -> Vec<keyward::db::events::Event> {
    app.events()
        .await
        .into_iter()
        .filter(|e| e.action == "key.leaked")
        .collect()
}

async fn spawn_with_github(github: &Github) -> (TestApp, Browser) {
    let file = github.file.clone();
    spawn_ready_with(move |c| c.leaks.github_keys_file = Some(file)).await
}

/// A refused alert: what it is, its key id, signature and body.
type Case<'a> = (&'a str, Option<&'a str>, Option<String>, &'a [u8]);

const FOUND_AT: &str = "https://github.com/octo/app/blob/0a1b2c/.env";

#[tokio::test]
async fn a_signed_github_alert_revokes_the_key_and_answers_githubs_feedback() {
    let github = Github::new();
    let (app, admin) = spawn_with_github(&github).await;
    let key = admin
        .create_key("/workspace/keys", &[("name", "ERP connector")])
        .await;
    assert_eq!(me_code(&app.base, &key.secret).await.0, StatusCode::OK);

    let (unknown, _) = keyward::domain::keys::generate(keyward::domain::keys::Environment::Live);
    let body = serde_json::to_vec(&json!([
        { "token": key.secret, "type": "keyward_api_key", "url": FOUND_AT, "source": "content" },
        { "token": unknown.expose(), "type": "keyward_api_key", "url": FOUND_AT, "source": "content" },
        { "token": "sk_live_lookalike", "type": "keyward_api_key", "url": FOUND_AT, "source": "content" },
    ]))
    .unwrap();
    let (status, feedback) = post_alert(
        &app.base,
        Some(&github.id),
        Some(&github.sign(&body)),
        &body,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{feedback}");
    let sha = |t: &str| keyward::domain::keys::digest(t);
    assert_eq!(
        feedback,
        json!([
            { "token_hash": sha(&key.secret), "token_type": "keyward_api_key", "label": "true_positive" },
            { "token_hash": sha(unknown.expose()), "token_type": "keyward_api_key", "label": "false_positive" },
            { "token_hash": sha("sk_live_lookalike"), "token_type": "keyward_api_key", "label": "false_positive" },
        ])
    );

    // Revoked at once, and the check says why.
    let (status, _, json) = me(&app.base, &key.secret).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(json["error"]["code"], "REVOKED");
    let message = json["error"]["message"].as_str().unwrap();
    assert!(message.contains("GitHub secret scanning"), "{message}");

    // The event names the source and where it was found; no secret in it.
    let events = leaked_events(&app).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].actor_label, "GitHub secret scanning");
    assert!(
        events[0].details.contains(FOUND_AT),
        "{}",
        events[0].details
    );
    assert!(!events[0].details.contains(&key.secret[10..]));
    assert!(
        app.event_actions()
            .await
            .contains(&"key.revoked".to_owned())
    );

    // The key's page shows it revoked as reported leaked, with the report.
    let (_, page) = admin.page(&format!("/keys/{}", key.id)).await;
    assert!(page.contains("Revoked — reported leaked"), "{page}");
    assert!(page.contains(FOUND_AT) && page.contains("GitHub secret scanning"));

    // The same alert again: the key is no longer live.
    let (status, again) = post_alert(
        &app.base,
        Some(&github.id),
        Some(&github.sign(&body)),
        &body,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again[0]["label"], "false_positive");
    assert_eq!(leaked_events(&app).await.len(), 1);
}

#[tokio::test]
async fn unsigned_badly_signed_replayed_or_unknown_key_alerts_are_refused_and_change_nothing() {
    let github = Github::new();
    let (app, admin) = spawn_with_github(&github).await;
    let key = admin
        .create_key("/workspace/keys", &[("name", "still fine")])
        .await;
    let body = alert(&key.secret, FOUND_AT);
    let good = github.sign(&body);
    let impostor = Github::new();
    let other_body = alert(&key.secret, "https://example.com/other");

    let cases: Vec<Case<'_>> = vec![
        ("unsigned", None, None, &body),
        ("no signature", Some(&github.id), None, &body),
        ("no key id", None, Some(good.clone()), &body),
        (
            "signed by another key",
            Some(&github.id),
            Some(impostor.sign(&body)),
            &body,
        ),
        (
            "signature of another body",
            Some(&github.id),
            Some(good.clone()),
            &other_body,
        ),
        (
            "unknown key id",
            Some(&impostor.id),
            Some(impostor.sign(&body)),
            &body,
        ),
        (
            "retired key id, wrong key",
            Some("0000retired"),
            Some(good.clone()),
            &body,
        ),
        ("not base64", Some(&github.id), Some("%%%".into()), &body),
    ];
    for (what, id, sig, body) in cases {
        let (status, json) = post_alert(&app.base, id, sig.as_deref(), body).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {json}");
        assert_eq!(json["error"]["code"], "BAD_SIGNATURE", "{what}");
    }
    assert_eq!(me_code(&app.base, &key.secret).await.0, StatusCode::OK);
    assert!(leaked_events(&app).await.is_empty());
    let leaks: i64 = app
        .with_db(|c| {
            use diesel::prelude::*;
            keyward::db::schema::key_leaks::table
                .count()
                .get_result(c)
                .unwrap()
        })
        .await;
    assert_eq!(leaks, 0);

    // A keyward without GitHub's keys refuses every alert.
    let (plain, plain_admin) = spawn_ready().await;
    let k = plain_admin
        .create_key("/workspace/keys", &[("name", "k")])
        .await;
    let body = alert(&k.secret, FOUND_AT);
    let (status, _) = post_alert(
        &plain.base,
        Some(&github.id),
        Some(&github.sign(&body)),
        &body,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(me_code(&plain.base, &k.secret).await.0, StatusCode::OK);
}

#[tokio::test]
async fn report_only_workspaces_keep_the_key_working_and_see_the_report() {
    let github = Github::new();
    let (app, admin) = spawn_with_github(&github).await;
    let (_, settings) = admin.page("/workspace/settings").await;
    assert!(settings.contains("Leaked keys"));
    let res = admin
        .post_form("/workspace/settings/leaks", &[("leak_response", "report")])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let res = admin
        .post_form("/workspace/settings/leaks", &[("leak_response", "delete")])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    // Without the form's token: refused.
    let res = admin
        .post_raw("/workspace/settings/leaks", &[("leak_response", "revoke")])
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    let key = admin
        .create_key("/workspace/keys", &[("name", "reported only")])
        .await;
    let body = alert(&key.secret, FOUND_AT);
    let (status, feedback) = post_alert(
        &app.base,
        Some(&github.id),
        Some(&github.sign(&body)),
        &body,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(feedback[0]["label"], "true_positive");
    assert_eq!(me_code(&app.base, &key.secret).await.0, StatusCode::OK);
    let events = leaked_events(&app).await;
    assert_eq!(events.len(), 1);
    assert!(events[0].details.contains("reported"));
    assert!(
        !app.event_actions()
            .await
            .contains(&"key.revoked".to_owned())
    );
    let (_, page) = admin.page(&format!("/keys/{}", key.id)).await;
    assert!(
        page.contains("Reported leaked") && page.contains(FOUND_AT),
        "{page}"
    );
    assert!(!page.contains("Revoked — reported leaked"));
    let settings_changes: Vec<_> = app
        .events()
        .await
        .into_iter()
        .filter(|e| e.action == "settings.changed" && e.details.contains("leak_response"))
        .collect();
    assert_eq!(settings_changes.len(), 1);
}

async fn public_report(base: &str, body: Value) -> (StatusCode, String) {
    let res = reqwest::Client::new()
        .post(format!("{base}/api/v1/leaks/report"))
        .json(&body)
        .send()
        .await
        .unwrap();
    (res.status(), res.text().await.unwrap())
}

#[tokio::test]
async fn public_reports_answer_the_same_whatever_the_keys_and_are_rate_limited() {
    let (app, admin) = spawn_ready().await;
    let key = admin
        .create_key("/workspace/keys", &[("name", "pasted somewhere")])
        .await;
    let (unknown, _) = keyward::domain::keys::generate(keyward::domain::keys::Environment::Live);

    let nothing = public_report(&app.base, json!({ "keys": [unknown.expose(), "junk", ""] })).await;
    assert_eq!(nothing.0, StatusCode::ACCEPTED);
    assert_eq!(me_code(&app.base, &key.secret).await.0, StatusCode::OK);

    let real = public_report(
        &app.base,
        json!({ "keys": [key.secret, "sk_live_x"], "url": "https://paste.example/abc" }),
    )
    .await;
    assert_eq!(real, nothing, "the same answer for a live key");
    let (status, _, json) = me(&app.base, &key.secret).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(json["error"]["code"], "REVOKED");
    let message = json["error"]["message"].as_str().unwrap();
    assert!(message.contains("reported leaked"), "{message}");
    let events = leaked_events(&app).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].actor_label, "An anonymous reporter");
    assert!(events[0].details.contains("https://paste.example/abc"));
    // The reporter's address is not stored, only a keyed hash of it.
    let reporters: Vec<Option<String>> = app
        .with_db(|c| {
            use diesel::prelude::*;
            keyward::db::schema::key_leaks::table
                .select(keyward::db::schema::key_leaks::reporter)
                .load(c)
                .unwrap()
        })
        .await;
    assert_eq!(reporters.len(), 1);
    let reporter = reporters[0].clone().unwrap();
    assert!(!reporter.contains("127.0.0.1") && reporter.len() == 32);

    // Not a list of strings, or too many keys at once.
    let (status, _) = public_report(&app.base, json!({ "keys": [42] })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let many: Vec<String> = (0..21).map(|i| format!("sk_live_{i}")).collect();
    let (status, _) = public_report(&app.base, json!({ "keys": many })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Ten reports per client in ten minutes (two were made above).
    for _ in 2..10 {
        let (status, _) = public_report(&app.base, json!({ "keys": ["x"] })).await;
        assert_eq!(status, StatusCode::ACCEPTED);
    }
    let res = reqwest::Client::new()
        .post(format!("{}/api/v1/leaks/report", app.base))
        .json(&json!({ "keys": ["x"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn the_public_report_page_takes_a_report_with_its_form_token() {
    let (app, admin) = spawn_ready().await;
    let key = admin
        .create_key("/account/keys", &[("name", "in a gist")])
        .await;
    let visitor = app.browser();
    let (status, page) = visitor.page("/report-leak").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Report a leaked key") && page.contains("sk_live_…"));
    // Without the page's token: refused, nothing changes.
    let res = visitor
        .post_raw("/report-leak", &[("keys", key.secret.as_str())])
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(me_code(&app.base, &key.secret).await.0, StatusCode::OK);

    let res = visitor
        .post_form(
            "/report-leak",
            &[
                ("keys", &format!("{}\nsk_live_nothing", key.secret)),
                ("url", ""),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let thanks = res.text().await.unwrap();
    assert!(thanks.contains("Thank you"));
    assert_eq!(me_code(&app.base, &key.secret).await.1, "REVOKED");
    let res = visitor
        .post_form("/report-leak", &[("keys", "sk_live_nothing")])
        .await;
    assert_eq!(
        res.text().await.unwrap(),
        thanks,
        "the same page for no live key"
    );
}

#[tokio::test]
async fn a_new_prefix_is_used_for_new_keys_and_old_keys_keep_working() {
    let (app, admin) = spawn_ready_with(|c| c.leaks.key_prefix = "acme_".into()).await;
    // A key issued before the prefix changed (with the default one).
    let (old, old_facts) =
        keyward::domain::keys::generate(keyward::domain::keys::Environment::Live);
    let changes = app
        .with_db(move |c| {
            use keyward::db::events::AuditContext;
            use keyward::db::keys::{self, NewKey};
            let a = keyward::db::users::find_active_by_email(c, ADMIN_EMAIL)
                .unwrap()
                .unwrap();
            let ctx = AuditContext {
                workspace_id: a.workspace_id,
                actor_id: Some(a.id),
                actor_label: "test".into(),
                ip: None,
                user_agent: None,
            };
            keyward::db::changes::collect(|| {
                keys::create(
                    c,
                    &ctx,
                    NewKey::plain_workspace_key("legacy", &old_facts, "n-legacy"),
                )
                .unwrap();
            })
            .1
        })
        .await;
    // What the app does after its own writes: tell the key checker.
    for change in &changes {
        app.state.verifier.apply(change);
    }
    let new = admin
        .create_key("/workspace/keys", &[("name", "fresh")])
        .await;
    assert!(new.secret.starts_with("acme_live_"), "{}", new.secret);
    assert_eq!(new.secret.len(), "acme_live_".len() + 49);
    assert_eq!(me_code(&app.base, &new.secret).await.0, StatusCode::OK);
    assert_eq!(me_code(&app.base, old.expose()).await.0, StatusCode::OK);

    // Excerpts follow each key's own prefix.
    let (_, list) = admin.page("/workspace/keys").await;
    let tail = |s: &str| s[s.len() - 4..].to_owned();
    assert!(
        list.contains(&format!("acme_live_…{}", tail(&new.secret))),
        "{list}"
    );
    assert!(list.contains(&format!("sk_live_…{}", tail(old.expose()))));
    assert!(list.contains("acme_live_Ab…"), "the search hint");
    let (_, form) = admin.page("/workspace/keys/new").await;
    assert!(form.contains("acme_live_…"));
    let (_, docs) = app.browser().page("/docs").await;
    assert!(docs.contains("Bearer acme_live_…") && !docs.contains("sk_live_"));
    let (_, report) = app.browser().page("/report-leak").await;
    assert!(report.contains("acme_live_…"));

    // The key page shows the excerpt with the prefix it was issued with.
    let (_, page) = admin.page(&format!("/keys/{}", new.id)).await;
    assert!(page.contains("acme_live_…"));
    // A leak report of either kind of key is recognised.
    let (status, _) = public_report(&app.base, json!({ "keys": [old.expose(), new.secret] })).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(me_code(&app.base, old.expose()).await.1, "REVOKED");
    assert_eq!(me_code(&app.base, &new.secret).await.1, "REVOKED");
}

/// GitHub's own example from its partner program documentation (its
/// published key, and a payload it signed), sent over HTTP: keyward
/// accepts GitHub's real signature and answers the token, no keyward key,
/// as a false positive.
#[tokio::test]
async fn githubs_published_example_alert_is_accepted() {
    const KEY_ID: &str = "90a421169f0a406205f1563a953312f0be898d3c7b6c06b681aa86a874555f4a";
    const PEM: &str = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE9MJJHnMfn2+H4xL4YaPDA4RpJqUq\nkCmRCBnYERxZanmcpzQSXs1X/AljlKkbJ8qpVIW4clayyef9gWhFbNHWAA==\n-----END PUBLIC KEY-----";
    const PAYLOAD: &[u8] = br#"[{"token":"some_token","type":"some_type","url":"some_url"}]"#;
    const SIGNATURE: &str = "MEUCIQDKZokqnCjrRtw0tni+2Ltvl/uiMJ1EGumEsp1BsNr32AIgQY1YXD2nlj+XNfGK4rBfkMJ1JDOQcYXxa2sY8FNkrKc=";
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secret_scanning.json");
    let list =
        json!({ "public_keys": [{ "key_identifier": KEY_ID, "key": PEM, "is_current": true }] });
    std::fs::write(&file, list.to_string()).unwrap();
    let (app, _admin) = spawn_ready_with(move |c| c.leaks.github_keys_file = Some(file)).await;
    let (status, feedback) = post_alert(&app.base, Some(KEY_ID), Some(SIGNATURE), PAYLOAD).await;
    assert_eq!(status, StatusCode::OK, "{feedback}");
    assert_eq!(
        feedback,
        json!([{
            "token_hash": keyward::domain::keys::digest("some_token"),
            "token_type": "some_type",
            "label": "false_positive"
        }])
    );
    // One byte changed: GitHub's signature no longer holds.
    let (status, _) = post_alert(
        &app.base,
        Some(KEY_ID),
        Some(SIGNATURE),
        br#"[{"token":"some_token","type":"some_type","url":"some_URL"}]"#,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// The old secret of a regenerated key still works during its grace
/// period, so a leak of it is a leak of the key: the key is revoked and
/// both secrets stop. Once the old secret no longer works, a report of it
/// is no live key and changes nothing.
#[tokio::test]
async fn a_leaked_old_secret_in_its_grace_period_revokes_the_key() {
    let (app, admin) = spawn_ready().await;
    let regenerate = |id: String, grace: &'static str| {
        let admin = &admin;
        async move {
            let (_, confirm) = admin.page(&format!("/keys/{id}/regenerate")).await;
            let nonce = hidden(&confirm, "nonce").unwrap();
            let res = admin
                .post_form(
                    &format!("/keys/{id}/regenerate"),
                    &[("grace", grace), ("nonce", &nonce)],
                )
                .await;
            assert_eq!(res.status(), StatusCode::OK);
            shown_secret(&res.text().await.unwrap()).unwrap()
        }
    };
    let replaced = admin
        .create_key("/workspace/keys", &[("name", "replaced")])
        .await;
    let _new = regenerate(replaced.id.clone(), "0").await;
    let (status, _) = public_report(&app.base, json!({ "keys": [replaced.secret] })).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert!(leaked_events(&app).await.is_empty(), "a dead secret");

    let rotating = admin
        .create_key("/workspace/keys", &[("name", "rotating")])
        .await;
    let new = regenerate(rotating.id.clone(), "24h").await;
    assert_eq!(me_code(&app.base, &rotating.secret).await.0, StatusCode::OK);
    let (status, _) = public_report(&app.base, json!({ "keys": [rotating.secret] })).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(leaked_events(&app).await.len(), 1);
    assert_eq!(me_code(&app.base, &rotating.secret).await.1, "REVOKED");
    assert_eq!(me_code(&app.base, &new).await.1, "REVOKED");
}

/// GitHub's key list served over HTTP the way api.github.com publishes it,
/// until the test ends; counts the fetches.
fn serve_key_list(body: String) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/meta/public_keys/secret_scanning",
        listener.local_addr().unwrap()
    );
    let fetches = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = fetches.clone();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (url, fetches)
}

/// With `KEYWARD_GITHUB_KEYS_URL` (and no file), keyward fetches GitHub's
/// keys itself when the first alert arrives and keeps them: a second alert
/// costs no fetch, and an alert naming a key GitHub never published is
/// refused without fetching again within the minute.
#[tokio::test]
async fn githubs_keys_are_fetched_from_the_url_once_and_kept() {
    let github = Github::new();
    let (url, fetches) = serve_key_list(std::fs::read_to_string(&github.file).unwrap());
    let (app, admin) = spawn_ready_with(move |c| c.leaks.github_keys_url = Some(url)).await;
    assert_eq!(fetches.load(std::sync::atomic::Ordering::SeqCst), 0);
    let key = admin
        .create_key("/workspace/keys", &[("name", "ERP connector")])
        .await;
    let body = alert(&key.secret, FOUND_AT);
    let (status, feedback) = post_alert(
        &app.base,
        Some(&github.id),
        Some(&github.sign(&body)),
        &body,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{feedback}");
    assert_eq!(feedback[0]["label"], "true_positive");
    assert_eq!(me_code(&app.base, &key.secret).await.1, "REVOKED");
    assert_eq!(fetches.load(std::sync::atomic::Ordering::SeqCst), 1);

    let other = admin
        .create_key("/workspace/keys", &[("name", "Grafana")])
        .await;
    let body = alert(&other.secret, FOUND_AT);
    let (status, _) = post_alert(
        &app.base,
        Some(&github.id),
        Some(&github.sign(&body)),
        &body,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = post_alert(
        &app.base,
        Some("feedfacefeedface"),
        Some(&github.sign(&body)),
        &body,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        fetches.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "kept keys answer; an unknown key id does not refetch within the minute"
    );
}
