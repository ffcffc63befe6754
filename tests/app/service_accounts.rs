//! Service accounts (issue 26, part 2): members that are not people, owning
//! keys no person's departure takes down. Pages and management API, the
//! policy (admins only, scoped to the workspace), disabling and deleting
//! (all keys at once, also on another instance), and the ceiling that keeps
//! a narrow management key from minting a broader one through an account.

use crate::helpers::*;
use keyward::config::DatabaseUrl;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Create a service account through the page; returns its id.
async fn create_account(admin: &Browser, name: &str, role: &str) -> String {
    let res = admin
        .post_form(
            "/workspace/service-accounts",
            &[
                ("name", name),
                ("description", "Runs in CI"),
                ("role", role),
            ],
        )
        .await;
    assert_eq!(
        res.status(),
        StatusCode::SEE_OTHER,
        "service account created"
    );
    let to = location(&res);
    let id = to
        .strip_prefix("/workspace/service-accounts/")
        .expect("redirect to its page")
        .to_owned();
    assert!(id.starts_with("sa_"), "{id}");
    id
}

/// Create a key for the account through its page.
async fn create_account_key(
    admin: &Browser,
    account: &str,
    name: &str,
    permissions: &[&str],
) -> CreatedKey {
    let (status, page) = admin
        .page(&format!("/workspace/service-accounts/{account}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let nonce = hidden(&page, "nonce").expect("nonce");
    let mut fields = vec![
        ("nonce", nonce.as_str()),
        ("name", name),
        ("environment", "live"),
        ("expiry", "90"),
    ];
    for p in permissions {
        fields.push(("permissions", p));
    }
    let res = admin
        .post_form(
            &format!("/workspace/service-accounts/{account}/keys"),
            &fields,
        )
        .await;
    let status = res.status();
    let body = res.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    let secret = shown_secret(&body).expect("secret shown once");
    let start = body.find("<code>key_").expect("key id shown") + 6;
    let end = body[start..].find('<').unwrap();
    CreatedKey {
        secret,
        id: body[start..start + end].to_owned(),
    }
}

/// Ada's workspace key with the given management permissions.
async fn manager(admin: &Browser, name: &str, permissions: &[&str]) -> CreatedKey {
    let mut fields = vec![("name", name), ("expiry", "never")];
    for p in permissions {
        fields.push(("permissions", p));
    }
    admin.create_key("/workspace/keys", &fields).await
}

const SA_READ: &str = "keyward:service-accounts:read";
const SA_WRITE: &str = "keyward:service-accounts:write";
const KEYS_READ: &str = "keyward:keys:read";
const KEYS_WRITE: &str = "keyward:keys:write";

#[tokio::test]
async fn service_accounts_are_shown_apart_from_people_and_nobody_signs_in_as_one() {
    let (app, admin) = spawn_ready().await;
    let (status, page) = admin.page("/workspace/users").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("id=\"service-accounts\""), "its own section");
    assert!(page.contains("No service accounts yet."), "empty state");

    let (_, form) = admin.page("/workspace/service-accounts/new").await;
    for label in [
        "<label for=\"f-name\">",
        "<label for=\"f-description\">",
        "<label for=\"f-role\">",
    ] {
        assert!(form.contains(label), "{label}");
    }
    assert!(
        !form.contains("value=\"operator\""),
        "never offered as operator"
    );
    // The operator role is refused even when posted.
    let res = admin
        .post_form(
            "/workspace/service-accounts",
            &[("name", "Ops bot"), ("role", "operator")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // A form without its CSRF token changes nothing.
    let res = admin
        .post_raw(
            "/workspace/service-accounts",
            &[("name", "No token"), ("role", "normal")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    let id = create_account(&admin, "CI deployer", "normal").await;
    let (_, page) = admin.page("/workspace/users").await;
    let (before, accounts) = page.split_once("id=\"service-accounts\"").unwrap();
    // The people table (the flash of the creation shows above it).
    let people = before.split_once("id=\"users-panel\"").unwrap().1;
    assert!(accounts.contains("CI deployer"), "listed with the accounts");
    assert!(
        !people.contains("CI deployer"),
        "not among the people of the workspace"
    );
    assert!(!accounts.contains("No service accounts yet."));
    assert!(accounts.contains(&format!("/workspace/service-accounts/{id}")));

    // Nobody signs in as it: its person row has no password and no email.
    let placeholder = format!("service-account:{id}");
    let stranger = app.browser();
    stranger.login(&placeholder, "").await;
    assert!(!stranger.signed_in().await);
    // The people pages refuse it too: no invitation, no role change, no
    // removal as a user.
    let res = admin
        .post_form(&format!("/workspace/users/{id}/invite"), &[])
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let (status, _) = admin.page(&format!("/workspace/users/{id}/remove")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let created = app
        .events()
        .await
        .into_iter()
        .find(|e| e.action == "service_account.created")
        .expect("audited");
    assert_eq!(created.target_id.as_deref(), Some(id.as_str()));
    assert_eq!(created.target_type.as_deref(), Some("service_account"));
    let (_, events) = admin.page("/workspace/events").await;
    assert!(
        events.contains("created the service account “CI deployer” as a normal user"),
        "the Events page says it in words"
    );
}

#[tokio::test]
async fn its_management_key_keeps_working_when_the_admin_who_made_it_leaves() {
    let (app, ada) = spawn_ready().await;
    let bob = app
        .add_user(&ada, "bob@example.com", "admin", "bob's long password")
        .await;
    let account = create_account(&bob, "Key rotator", "admin").await;
    let key = create_account_key(&bob, &account, "rotation", &[KEYS_READ, KEYS_WRITE]).await;
    let api = Api::new(&app.base, &key.secret);
    let (status, page) = api.get("/api/v1/keys").await;
    assert_eq!(status, StatusCode::OK, "{page}");

    // Bob is demoted, then removed: the account's key acts as the account.
    let bob_id = app
        .with_db(|c| {
            keyward::db::users::find_active_by_email(c, "bob@example.com")
                .unwrap()
                .unwrap()
                .id
        })
        .await;
    let res = ada
        .post_form(
            &format!("/workspace/users/{bob_id}/role"),
            &[("role", "normal")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (status, _) = api.get("/api/v1/keys").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "still an admin's view after Bob's demotion"
    );
    let res = ada
        .post_form(&format!("/workspace/users/{bob_id}/remove"), &[])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (status, page) = api.get("/api/v1/keys?kind=workspace").await;
    assert_eq!(status, StatusCode::OK, "still works after Bob left: {page}");
    // It acts as the admin account: it creates a workspace key.
    let (status, made) = api
        .post(
            "/api/v1/keys",
            json!({"name": "made by the rotator", "kind": "workspace"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let (status, me) = api.get("/api/v1/me").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["kind"], "service", "{me}");
    assert_eq!(me["owner"]["id"], account.as_str(), "{me}");
    assert_eq!(me["owner"]["email"], Value::Null, "no placeholder address");
}

#[tokio::test]
async fn disabling_stops_all_its_keys_enabling_restores_them_and_deleting_revokes_them() {
    let (app, admin) = spawn_ready().await;
    let account = create_account(&admin, "Batch job", "normal").await;
    let one = create_account_key(&admin, &account, "one", &[]).await;
    let two = create_account_key(&admin, &account, "two", &[]).await;
    // A key switched off on its own stays off through disable and enable.
    let off = create_account_key(&admin, &account, "off", &[]).await;
    let res = admin
        .post_form(&format!("/keys/{}/disable", off.id), &[])
        .await;
    assert!(res.status().is_redirection() || res.status().is_success());
    for k in [&one, &two] {
        assert_eq!(me_code(&app.base, &k.secret).await.0, StatusCode::OK);
    }

    let res = admin
        .post_form(
            &format!("/workspace/service-accounts/{account}/disable"),
            &[],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    for k in [&one, &two, &off] {
        assert_eq!(
            me_code(&app.base, &k.secret).await,
            (StatusCode::UNAUTHORIZED, "DISABLED".to_owned()),
            "refused at once"
        );
    }
    let (_, page) = admin
        .page(&format!("/workspace/service-accounts/{account}"))
        .await;
    assert!(page.contains("Enable service account"));
    assert!(
        page.contains("Enable the service account to create keys for it."),
        "no new keys while disabled"
    );

    let res = admin
        .post_form(
            &format!("/workspace/service-accounts/{account}/enable"),
            &[],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    for k in [&one, &two] {
        assert_eq!(me_code(&app.base, &k.secret).await.0, StatusCode::OK);
    }
    assert_eq!(
        me_code(&app.base, &off.secret).await.1,
        "DISABLED",
        "its own switch is kept"
    );

    // Delete: a confirmation first, then every key revoked in the same
    // transaction, audited.
    let (status, confirm) = admin
        .page(&format!("/workspace/service-accounts/{account}/delete"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(confirm.contains("will be revoked"), "{confirm}");
    let res = admin
        .post_form(
            &format!("/workspace/service-accounts/{account}/delete"),
            &[],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    for k in [&one, &two, &off] {
        assert_eq!(me_code(&app.base, &k.secret).await.1, "REVOKED");
    }
    let (status, _) = admin
        .page(&format!("/workspace/service-accounts/{account}"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "gone");
    let actions = app.event_actions().await;
    for a in [
        "service_account.disabled",
        "service_account.enabled",
        "service_account.deleted",
    ] {
        assert!(actions.contains(&a.to_owned()), "{a}: {actions:?}");
    }
    let deleted = app
        .events()
        .await
        .into_iter()
        .find(|e| e.action == "service_account.deleted")
        .unwrap();
    assert_eq!(deleted.details_json()["keys_revoked"], 3);
    let revoked = app
        .events()
        .await
        .into_iter()
        .filter(|e| e.action == "key.revoked")
        .count();
    assert_eq!(revoked, 3, "one event per key");
}

#[tokio::test]
async fn disabling_reaches_another_instance_at_once() {
    let (app, admin) = spawn_ready().await;
    if !matches!(app.database, DatabaseUrl::Postgres(_)) {
        // SQLite serves one instance; this path is the change feed.
        return;
    }
    let other = app.another_instance(|_| {}).await;
    let account = create_account(&admin, "Edge worker", "normal").await;
    let key = create_account_key(&admin, &account, "edge", &[]).await;
    // Cached on the other instance.
    assert_eq!(me_code(&other.base, &key.secret).await.0, StatusCode::OK);
    assert_eq!(me_code(&other.base, &key.secret).await.0, StatusCode::OK);
    let res = admin
        .post_form(
            &format!("/workspace/service-accounts/{account}/disable"),
            &[],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let since = std::time::Instant::now();
    loop {
        let (status, code) = me_code(&other.base, &key.secret).await;
        if status == StatusCode::UNAUTHORIZED {
            assert_eq!(code, "DISABLED");
            break;
        }
        assert!(
            since.elapsed() < std::time::Duration::from_secs(2),
            "the other instance still accepts the key"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let res = admin
        .post_form(
            &format!("/workspace/service-accounts/{account}/enable"),
            &[],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let since = std::time::Instant::now();
    while me_code(&other.base, &key.secret).await.0 != StatusCode::OK {
        assert!(since.elapsed() < std::time::Duration::from_secs(2));
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_management_api_manages_service_accounts() {
    let (app, admin) = spawn_ready().await;
    let key = manager(&admin, "Provisioning", &[SA_READ, SA_WRITE, KEYS_READ]).await;
    let api = Api::new(&app.base, &key.secret);
    let (status, list) = api.get("/api/v1/service-accounts").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["service_accounts"], json!([]));

    let (status, made) = api
        .post(
            "/api/v1/service-accounts",
            json!({"name": "Deployer", "description": "CD", "role": "admin"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let id = made["id"].as_str().unwrap().to_owned();
    assert_eq!(made["role"], "admin");
    assert_eq!(made["disabled"], false);
    let (status, bad) = api
        .post(
            "/api/v1/service-accounts",
            json!({"name": "Op", "role": "operator"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");

    let (status, changed) = api
        .patch(
            &format!("/api/v1/service-accounts/{id}"),
            json!({"name": "Deployer 2", "role": "normal"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["name"], "Deployer 2");
    assert_eq!(changed["description"], "CD", "absent fields stay");
    assert_eq!(changed["role"], "normal");

    let (status, k) = api
        .post(
            &format!("/api/v1/service-accounts/{id}/keys"),
            json!({"name": "deploy", "permissions": [KEYS_READ]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{k}");
    let secret = k["secret"].as_str().unwrap().to_owned();
    assert_eq!(k["key"]["kind"], "service", "{k}");
    let (status, one) = api.get(&format!("/api/v1/service-accounts/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["keys"].as_array().unwrap().len(), 1);
    // The key list's filter and owner kind.
    let (_, only) = api.get("/api/v1/keys?kind=service").await;
    let ids: Vec<&str> = only["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kind"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["service"]);
    let (_, personal) = api.get("/api/v1/keys?kind=personal").await;
    assert!(
        personal["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["kind"] == "personal")
    );
    assert_eq!(personal["keys"].as_array().unwrap().len(), 0);

    let (status, d) = api
        .post(&format!("/api/v1/service-accounts/{id}/disable"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{d}");
    assert_eq!(d["disabled"], true);
    assert_eq!(me_code(&app.base, &secret).await.1, "DISABLED");
    // Its keys list as switched off, and it gets no new one meanwhile.
    let (_, inactive) = api.get("/api/v1/keys?kind=service&status=inactive").await;
    assert_eq!(inactive["keys"].as_array().unwrap().len(), 1, "{inactive}");
    assert_eq!(inactive["keys"][0]["status"], "inactive");
    let (_, active) = api.get("/api/v1/keys?kind=service&status=active").await;
    assert_eq!(active["keys"].as_array().unwrap().len(), 0, "{active}");
    let (status, refused) = api
        .post(
            &format!("/api/v1/service-accounts/{id}/keys"),
            json!({"name": "while off"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert_eq!(refused["code"], "SERVICE_ACCOUNT_DISABLED");
    let (status, _) = api
        .post(&format!("/api/v1/service-accounts/{id}/enable"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me_code(&app.base, &secret).await.0, StatusCode::OK);
    let (status, gone) = api.delete(&format!("/api/v1/service-accounts/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{gone}");
    assert_eq!(gone["keys_revoked"], 1);
    assert_eq!(me_code(&app.base, &secret).await.1, "REVOKED");
    let (status, _) = api.get(&format!("/api/v1/service-accounts/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Without the permission: refused.
    let keys_only = manager(&admin, "Keys only", &[KEYS_READ, KEYS_WRITE]).await;
    let (status, _) = Api::new(&app.base, &keys_only.secret)
        .get("/api/v1/service-accounts")
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // The document lists the endpoints.
    let doc: Value = reqwest::get(format!("{}/api/v1/openapi.json", app.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for path in [
        "/api/v1/service-accounts",
        "/api/v1/service-accounts/{id}",
        "/api/v1/service-accounts/{id}/disable",
        "/api/v1/service-accounts/{id}/enable",
        "/api/v1/service-accounts/{id}/keys",
    ] {
        assert!(doc["paths"][path].is_object(), "{path}");
    }
}

/// A key with `keyward:service-accounts:write` but little else can create
/// an admin service account, and yet gets nothing broader than itself out
/// of it: a key it creates for the account stays within its own
/// permissions, it cannot regenerate a broader key of an account, and an
/// account's own key cannot delete the account it acts as.
#[tokio::test]
async fn a_narrow_key_cannot_escalate_through_a_service_account() {
    let (app, admin) = spawn_ready().await;
    let narrow = manager(&admin, "Narrow", &[SA_READ, SA_WRITE]).await;
    let api = Api::new(&app.base, &narrow.secret);
    let (status, made) = api
        .post(
            "/api/v1/service-accounts",
            json!({"name": "Escalator", "role": "admin"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let id = made["id"].as_str().unwrap().to_owned();
    for wanted in [
        json!([KEYS_WRITE]),
        json!(["keyward:webhooks:write"]),
        json!(["keyward:events:read"]),
        json!([SA_WRITE, KEYS_READ]),
    ] {
        let (status, refused) = api
            .post(
                &format!("/api/v1/service-accounts/{id}/keys"),
                json!({"name": "broader", "permissions": wanted}),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{wanted}: {refused}"
        );
    }
    // A key that never expires is broader than the narrow one only in
    // permissions here (it never expires either), so this one is made.
    let (status, ok) = api
        .post(
            &format!("/api/v1/service-accounts/{id}/keys"),
            json!({"name": "within", "permissions": [SA_READ]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ok}");
    // The account's own key (service-accounts:read only) cannot write.
    let own = Api::new(&app.base, ok["secret"].as_str().unwrap());
    let (status, _) = own
        .post("/api/v1/service-accounts", json!({"name": "More"}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // An admin made a broad key for the account on its page; a narrow key
    // with keys:write cannot regenerate it to learn a broad secret.
    let broad = create_account_key(
        &admin,
        &id,
        "broad",
        &[KEYS_READ, KEYS_WRITE, SA_READ, SA_WRITE],
    )
    .await;
    let rotator = manager(&admin, "Rotator", &[KEYS_WRITE]).await;
    let (status, refused) = Api::new(&app.base, &rotator.secret)
        .post(&format!("/api/v1/keys/{}/regenerate", broad.id), json!({}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    // The account's broad key cannot delete the account it acts as.
    let (status, refused) = Api::new(&app.base, &broad.secret)
        .delete(&format!("/api/v1/service-accounts/{id}"))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");

    // POST /api/v1/keys does not make service keys.
    let (status, _) = api
        .post("/api/v1/keys", json!({"name": "sneaky", "kind": "service"}))
        .await;
    assert_ne!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn only_admins_reach_service_accounts_and_only_their_own_workspace() {
    let (app, admin) = spawn_ready().await;
    let account = create_account(&admin, "Reporter", "normal").await;
    let normal = app
        .add_user(&admin, "nina@example.com", "normal", "nina's long password")
        .await;
    let operator = app
        .add_user(
            &admin,
            "otto@example.com",
            "operator",
            "otto's long password",
        )
        .await;
    for who in [&normal, &operator] {
        for path in [
            "/workspace/service-accounts/new".to_owned(),
            format!("/workspace/service-accounts/{account}"),
            format!("/workspace/service-accounts/{account}/delete"),
        ] {
            let (status, _) = who.page(&path).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        }
        let res = who
            .post_form(
                "/workspace/service-accounts",
                &[("name", "Mine"), ("role", "admin")],
            )
            .await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        let res = who
            .post_form(
                &format!("/workspace/service-accounts/{account}/disable"),
                &[],
            )
            .await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
    }

    // Another workspace's admin: not found, on the pages and through the API.
    let zed = app.other_workspace_admin().await;
    for path in [
        format!("/workspace/service-accounts/{account}"),
        format!("/workspace/service-accounts/{account}/delete"),
    ] {
        let (status, _) = zed.page(&path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    for path in ["disable", "delete", "keys"] {
        let res = zed
            .post_form(
                &format!("/workspace/service-accounts/{account}/{path}"),
                &[("nonce", "abc"), ("name", "x")],
            )
            .await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let zed_key = manager(&zed, "Zed's", &[SA_READ, SA_WRITE]).await;
    let api = Api::new(&app.base, &zed_key.secret);
    let (status, _) = api
        .get(&format!("/api/v1/service-accounts/{account}"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = api
        .post(
            &format!("/api/v1/service-accounts/{account}/disable"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, list) = api.get("/api/v1/service-accounts").await;
    assert_eq!(list["service_accounts"], json!([]));
    // Nothing changed.
    let (_, page) = admin
        .page(&format!("/workspace/service-accounts/{account}"))
        .await;
    assert!(page.contains("Disable service account"));
}

#[tokio::test]
async fn key_lists_and_the_csv_export_name_the_service_account() {
    let (_app, admin) = spawn_ready().await;
    let account = create_account(&admin, "Nightly export", "normal").await;
    let key = create_account_key(&admin, &account, "export job", &[]).await;
    let (_, all) = admin.page("/workspace/keys?view=all").await;
    assert!(
        all.contains("Nightly export (service account)"),
        "owner column"
    );
    // The "service accounts' keys" view: by owner, not by name (a person's
    // key named like one is not in it).
    let people = admin
        .create_key("/account/keys", &[("name", "service-account sync")])
        .await;
    let workspace_key = admin
        .create_key("/workspace/keys", &[("name", "service-account bridge")])
        .await;
    assert!(all.contains("Service accounts' keys"), "a tab");
    let (status, only) = admin.page("/workspace/keys?view=service").await;
    assert_eq!(status, StatusCode::OK);
    assert!(only.contains(&key.id), "the account's key is listed");
    assert!(!only.contains(&people.id), "a person's key is not");
    assert!(!only.contains(&workspace_key.id), "a workspace key is not");
    assert!(
        only.contains("name=\"view\" value=\"service\""),
        "searching stays in the view"
    );
    // Searching within it keeps the view and the owner rule.
    let (_, found) = admin.page("/workspace/keys?view=service&q=export").await;
    assert!(found.contains(&key.id));
    let (_, none) = admin
        .page("/workspace/keys?view=service&q=service-account")
        .await;
    assert!(!none.contains(&people.id) && !none.contains(&workspace_key.id));
    let csv = admin.get("/workspace/keys.csv").await.text().await.unwrap();
    let row = csv
        .lines()
        .find(|l| l.starts_with(&key.id))
        .expect("in the export");
    assert!(row.contains(",service,"), "{row}");
    assert!(
        row.contains(&format!("Nightly export ({account})")),
        "{row}"
    );
    // A key's page rotates it and returns to the account's page.
    let (status, detail) = admin.page(&format!("/keys/{}", key.id)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(detail.contains("Regenerate"), "admins rotate its keys");
    let (_, events) = admin.page("/workspace/events").await;
    assert!(
        events.contains("created the service account key “export job”"),
        "the key's kind in the sentence"
    );
}
