//! The management API (`/api/v1/keys…`, `/api/v1/events`): keys managed by
//! keys, with the web pages' policy, limits and audit trail.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

const ALL_MANAGEMENT: [(&str, &str); 3] = [
    ("permissions", "keyward:keys:read"),
    ("permissions", "keyward:keys:write"),
    ("permissions", "keyward:events:read"),
];

/// The admin's workspace key with every management permission, the
/// catalog's data permissions and no expiry: broad enough to be the
/// ceiling of the production keys the tests make with it.
async fn admin_workspace_manager(admin: &Browser) -> CreatedKey {
    let mut fields = vec![
        ("name", "Provisioning"),
        ("expiry", "never"),
        ("permissions", "data:read"),
        ("permissions", "data:write"),
    ];
    fields.extend_from_slice(&ALL_MANAGEMENT);
    admin.create_key("/workspace/keys", &fields).await
}

/// A workspace key named `name`, without expiry, that reads and writes
/// each of `areas` (`keys`, `plans`, `webhooks`, …).
async fn manager_of(admin: &Browser, name: &str, areas: &[&str]) -> CreatedKey {
    let permissions: Vec<String> = areas
        .iter()
        .flat_map(|what| ["read", "write"].map(|access| format!("keyward:{what}:{access}")))
        .collect();
    let mut fields = vec![("name", name), ("expiry", "never")];
    fields.extend(permissions.iter().map(|p| ("permissions", p.as_str())));
    admin.create_key("/workspace/keys", &fields).await
}

fn ids(page: &Value) -> Vec<String> {
    page["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_create_dialog_offers_management_permissions_by_role() {
    let (app, admin) = spawn_ready().await;
    for list in ["/workspace/keys", "/account/keys"] {
        let (_, form) = admin.page(&format!("{list}/new")).await;
        assert!(form.contains("Manage keyward through the API"), "{list}");
        for p in [
            "keyward:keys:read",
            "keyward:keys:write",
            "keyward:events:read",
        ] {
            assert!(
                form.contains(&format!("value=\"{p}\"")),
                "{list} offers {p}"
            );
        }
    }
    let bob = app
        .add_user(&admin, "bob@example.com", "normal", "bob's long password")
        .await;
    let (_, form) = bob.page("/account/keys/new").await;
    assert!(form.contains("Manage keyward through the API"));
    assert!(form.contains("value=\"keyward:keys:read\""));
    assert!(form.contains("value=\"keyward:keys:write\""));
    assert!(
        !form.contains("value=\"keyward:events:read\""),
        "a normal user cannot read events, so cannot grant it"
    );
    // Posted anyway: refused like any permission outside the catalog.
    let res = bob
        .submit_new_key(
            "/account/keys",
            &[("name", "sneaky"), ("permissions", "keyward:events:read")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(res.text().await.unwrap().contains("keyward:events:read"));
    // The catalog cannot hold look-alikes of the management permissions.
    let res = admin
        .post_form(
            "/workspace/settings/permissions",
            &[("name", "keyward:keys:admin"), ("description", "x")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(res.text().await.unwrap().contains("reserved"));
    // Granted within the role: the key carries it.
    let k = bob
        .create_key(
            "/account/keys",
            &[("name", "bob's tool"), ("permissions", "keyward:keys:read")],
        )
        .await;
    let (_, _, me) = me(&app.base, &k.secret).await;
    assert_eq!(me["permissions"], json!(["keyward:keys:read"]));
}

#[tokio::test]
async fn an_admin_workspace_key_manages_keys_and_every_change_is_audited() {
    let (app, admin) = spawn_ready().await;
    let manager = admin_workspace_manager(&admin).await;
    let api = Api::new(&app.base, &manager.secret);

    let (status, headers, created) = api
        .send(
            reqwest::Client::new()
                .post(format!("{}/api/v1/keys", app.base))
                .json(&json!({
                    "name": "ERP connector",
                    "description": "Orders sync",
                    "tags": ["erp", "prod"],
                    "kind": "workspace",
                    "environment": "live",
                    "permissions": ["data:read"],
                    "expires_in_days": 30,
                    "rate_limit_per_minute": 600,
                    "resources": ["line-1"]
                })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    // The one answer with a secret is never kept by a cache.
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["location"], format!("/api/v1/keys/{id}").as_str());
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("sk_live_"));
    assert_eq!(created["key"]["kind"], "workspace");
    assert_eq!(created["key"]["owner_id"], Value::Null);
    assert_eq!(created["key"]["tags"], json!(["erp", "prod"]));
    assert_eq!(created["key"]["resources"], json!(["line-1"]));
    assert_eq!(created["key"]["rate_limit_per_minute"], 600);
    assert_eq!(created["key"]["status"], "active");
    // The secret works at once.
    let (s, _, me_json) = me(&app.base, &secret).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(me_json["id"], id);
    // The web page shows it too, created by the admin behind the key.
    let (s, page) = admin.page(&format!("/keys/{id}")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("ERP connector"));
    assert!(
        page.contains(ADMIN_EMAIL),
        "created by the admin behind the key"
    );

    let (s, one) = api.get(&format!("/api/v1/keys/{id}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(one["name"], "ERP connector");
    assert_eq!(
        one["masked"],
        format!("sk_live_…{}", &secret[secret.len() - 4..])
    );

    let (s, edited) = api
        .patch(
            &format!("/api/v1/keys/{id}"),
            json!({"name": "ERP connector v2", "rate_limit_per_minute": null}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{edited}");
    assert_eq!(edited["name"], "ERP connector v2");
    assert_eq!(edited["rate_limit_per_minute"], Value::Null);
    assert_eq!(
        edited["description"], "Orders sync",
        "untouched fields stay"
    );

    let (s, off) = api
        .post(&format!("/api/v1/keys/{id}/disable"), json!({}))
        .await;
    assert_eq!(
        (s, off["status"].as_str()),
        (StatusCode::OK, Some("inactive"))
    );
    assert_eq!(
        me_code(&app.base, &secret).await,
        (StatusCode::UNAUTHORIZED, "DISABLED".into())
    );
    let (s, on) = api
        .post(&format!("/api/v1/keys/{id}/enable"), json!({}))
        .await;
    assert_eq!((s, on["status"].as_str()), (StatusCode::OK, Some("active")));
    assert_eq!(me(&app.base, &secret).await.0, StatusCode::OK);

    let (s, fresh) = api
        .post(
            &format!("/api/v1/keys/{id}/regenerate"),
            json!({"grace": "0"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{fresh}");
    let new_secret = fresh["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, secret);
    assert_eq!(me(&app.base, &new_secret).await.0, StatusCode::OK);
    assert_eq!(me(&app.base, &secret).await.0, StatusCode::UNAUTHORIZED);

    let (s, revoked) = api
        .post(&format!("/api/v1/keys/{id}/revoke"), json!({}))
        .await;
    assert_eq!(
        (s, revoked["status"].as_str()),
        (StatusCode::OK, Some("revoked"))
    );
    assert_eq!(
        me_code(&app.base, &new_secret).await,
        (StatusCode::UNAUTHORIZED, "REVOKED".into())
    );
    let (s, again) = api
        .post(&format!("/api/v1/keys/{id}/revoke"), json!({}))
        .await;
    assert_eq!(
        (s, again["code"].as_str()),
        (StatusCode::CONFLICT, Some("KEY_NOT_REVOCABLE"))
    );

    assert_eq!(
        api.delete(&format!("/api/v1/keys/{id}")).await.0,
        StatusCode::NO_CONTENT
    );
    let (s, gone) = api.get(&format!("/api/v1/keys/{id}")).await;
    assert_eq!(
        (s, gone["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("NOT_FOUND"))
    );

    // The audit trail names the acting key (name and id) for each change.
    let (s, events) = api.get(&format!("/api/v1/events?key={id}&limit=100")).await;
    assert_eq!(s, StatusCode::OK, "{events}");
    let list = events["events"].as_array().unwrap();
    let actions: Vec<&str> = list.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        [
            "key.deleted",
            "key.revoked",
            "key.regenerated",
            "key.enabled",
            "key.disabled",
            "key.updated",
            "key.created"
        ]
    );
    for e in list {
        assert_eq!(e["actor"]["id"], manager.id, "{e}");
        let label = e["actor"]["label"].as_str().unwrap();
        assert!(
            label.contains("Provisioning") && label.contains(&manager.id),
            "{label}"
        );
    }
    assert!(
        list.last().unwrap()["sentence"]
            .as_str()
            .unwrap()
            .contains("created the workspace key “ERP connector”"),
        "{}",
        list.last().unwrap()
    );
    // The Events page shows the same actor.
    let (_, page) = admin.page(&format!("/workspace/events?key={id}")).await;
    assert!(
        page.contains("Provisioning"),
        "the events page names the acting key"
    );
}

#[tokio::test]
async fn a_normal_users_personal_key_acts_only_on_their_own_personal_keys() {
    let (app, admin) = spawn_ready().await;
    let admins_own = admin
        .create_key("/account/keys", &[("name", "ada's")])
        .await;
    let workspace = admin
        .create_key("/workspace/keys", &[("name", "shared")])
        .await;
    let bob = app
        .add_user(&admin, "bob@example.com", "normal", "bob's long password")
        .await;
    let bobs_old = bob
        .create_key("/account/keys", &[("name", "bob's old")])
        .await;
    let manager = bob
        .create_key(
            "/account/keys",
            &[
                ("name", "bob's manager"),
                ("permissions", "keyward:keys:read"),
                ("permissions", "keyward:keys:write"),
            ],
        )
        .await;
    let api = Api::new(&app.base, &manager.secret);

    // Lists: only bob's own keys, whatever the filters ask.
    let (s, page) = api.get("/api/v1/keys").await;
    assert_eq!(s, StatusCode::OK, "{page}");
    let mut seen = ids(&page);
    seen.sort();
    let mut expected = vec![bobs_old.id.clone(), manager.id.clone()];
    expected.sort();
    assert_eq!(seen, expected);
    let (_, page) = api.get("/api/v1/keys?kind=workspace").await;
    assert!(ids(&page).is_empty());
    let (_, page) = api.get(&format!("/api/v1/keys?q={}", admins_own.id)).await;
    assert!(
        ids(&page).is_empty(),
        "another user's key is not found by id"
    );

    // Another user's key and workspace keys are invisible: 404 on every verb.
    for other in [&admins_own.id, &workspace.id] {
        let (s, p) = api.get(&format!("/api/v1/keys/{other}")).await;
        assert_eq!(
            (s, p["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("NOT_FOUND"))
        );
        for verb in ["disable", "revoke", "regenerate"] {
            let (s, _) = api
                .post(&format!("/api/v1/keys/{other}/{verb}"), json!({}))
                .await;
            assert_eq!(s, StatusCode::NOT_FOUND, "{verb} {other}");
        }
        let (s, _) = api
            .patch(&format!("/api/v1/keys/{other}"), json!({"name": "x"}))
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert_eq!(
            api.delete(&format!("/api/v1/keys/{other}")).await.0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            api.get(&format!("/api/v1/keys/{other}/usage")).await.0,
            StatusCode::NOT_FOUND
        );
    }
    assert_eq!(
        me(&app.base, &admins_own.secret).await.0,
        StatusCode::OK,
        "untouched"
    );
    assert_eq!(
        me(&app.base, &workspace.secret).await.0,
        StatusCode::OK,
        "untouched"
    );

    // No workspace keys, no events, no management permissions beyond the role.
    let (s, p) = api
        .post("/api/v1/keys", json!({"name": "ws", "kind": "workspace"}))
        .await;
    assert_eq!(
        (s, p["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("INSUFFICIENT_PERMISSION"))
    );
    let (s, p) = api.get("/api/v1/events").await;
    assert_eq!(
        (s, p["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("INSUFFICIENT_PERMISSION"))
    );
    let (s, p) = api
        .post(
            "/api/v1/keys",
            json!({"name": "escalate", "permissions": ["keyward:events:read"]}),
        )
        .await;
    assert_eq!(
        (s, p["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("VALIDATION_FAILED"))
    );
    assert_eq!(p["errors"][0]["field"], "permissions");

    // Their own keys: fully manageable; new keys are theirs.
    let (s, created) = api.post("/api/v1/keys", json!({"name": "bob's new"})).await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let bob_id = created["key"]["owner_id"].as_str().unwrap().to_owned();
    assert_eq!(created["key"]["kind"], "personal");
    assert_eq!(created["key"]["created_by"], bob_id);
    let (s, _) = api
        .post(&format!("/api/v1/keys/{}/revoke", bobs_old.id), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, page) = api.get("/api/v1/keys?owner=me&status=revoked").await;
    assert_eq!(ids(&page), vec![bobs_old.id.clone()]);
    let (s, page) = api.get("/api/v1/keys?owner=usr_someone_else").await;
    assert_eq!(s, StatusCode::OK);
    assert!(ids(&page).is_empty());

    // An admin's management key, as on the pages: sees bob's keys and may
    // switch them off or revoke them, but not edit, regenerate (which
    // would hand it bob's new secret) or delete them.
    let admin_api = Api::new(&app.base, &admin_workspace_manager(&admin).await.secret);
    let (_, page) = admin_api.get(&format!("/api/v1/keys?owner={bob_id}")).await;
    assert_eq!(
        ids(&page).len(),
        3,
        "bob's old, manager and new keys: {page}"
    );
    let bobs = &manager.id;
    assert_eq!(
        admin_api.get(&format!("/api/v1/keys/{bobs}")).await.0,
        StatusCode::OK
    );
    let (s, p) = admin_api
        .post(&format!("/api/v1/keys/{bobs}/regenerate"), json!({}))
        .await;
    assert_eq!(
        (s, p["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("INSUFFICIENT_PERMISSION"))
    );
    let (s, _) = admin_api
        .patch(&format!("/api/v1/keys/{bobs}"), json!({"name": "mine now"}))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(
        admin_api.delete(&format!("/api/v1/keys/{bobs}")).await.0,
        StatusCode::FORBIDDEN
    );
    let (s, k) = admin_api
        .post(&format!("/api/v1/keys/{bobs}/disable"), json!({}))
        .await;
    assert_eq!(
        (s, k["status"].as_str()),
        (StatusCode::OK, Some("inactive"))
    );
    // Bob's own management key is now switched off, by incident response.
    let (s, p) = api.get("/api/v1/keys").await;
    assert_eq!(
        (s, p["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("DISABLED"))
    );
}

#[tokio::test]
async fn operators_never_act_through_management_keys() {
    let (app, admin) = spawn_ready().await;
    let carol = app
        .add_user(
            &admin,
            "carol@example.com",
            "admin",
            "carol's long password",
        )
        .await;
    let mut fields = vec![("name", "carol's manager")];
    fields.extend_from_slice(&ALL_MANAGEMENT);
    let personal = carol.create_key("/account/keys", &fields).await;
    let mut fields = vec![("name", "carol's workspace manager")];
    fields.extend_from_slice(&ALL_MANAGEMENT);
    let workspace = carol.create_key("/workspace/keys", &fields).await;
    let api = Api::new(&app.base, &personal.secret);
    assert_eq!(api.get("/api/v1/keys").await.0, StatusCode::OK);
    assert_eq!(
        Api::new(&app.base, &workspace.secret)
            .get("/api/v1/events")
            .await
            .0,
        StatusCode::OK
    );

    // Carol becomes an operator: neither key manages anything any more.
    let carol_id = app
        .with_db(|c| {
            keyward::db::users::find_active_by_email(c, "carol@example.com")
                .unwrap()
                .unwrap()
                .id
        })
        .await;
    let res = admin
        .post_form(
            &format!("/workspace/users/{carol_id}/role"),
            &[("role", "operator")],
        )
        .await;
    assert!(
        res.status().is_success() || res.status().is_redirection(),
        "{}",
        res.status()
    );
    for key in [&personal.secret, &workspace.secret] {
        let api = Api::new(&app.base, key);
        for path in ["/api/v1/keys", "/api/v1/events"] {
            let (s, p) = api.get(path).await;
            assert_eq!(
                (s, p["code"].as_str()),
                (StatusCode::FORBIDDEN, Some("INSUFFICIENT_PERMISSION")),
                "{path}"
            );
        }
        let (s, _) = api
            .post("/api/v1/keys", json!({"name": "x", "kind": "workspace"}))
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
    }
    // A normal user cannot use a workspace key an admin made before being
    // demoted: it would reach their personal keys.
    let res = admin
        .post_form(
            &format!("/workspace/users/{carol_id}/role"),
            &[("role", "normal")],
        )
        .await;
    assert!(res.status().is_success() || res.status().is_redirection());
    let (s, _) = Api::new(&app.base, &workspace.secret)
        .get("/api/v1/keys")
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = Api::new(&app.base, &personal.secret)
        .get("/api/v1/keys")
        .await;
    assert_eq!(
        s,
        StatusCode::OK,
        "her personal key acts as a normal user now"
    );
    let (s, _) = Api::new(&app.base, &personal.secret)
        .get("/api/v1/events")
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "normal users do not read events");
}

#[tokio::test]
async fn keys_without_management_permissions_and_other_workspaces_get_nothing() {
    let (app, admin) = spawn_ready().await;
    let plain = admin
        .create_key(
            "/workspace/keys",
            &[("name", "plain"), ("permissions", "data:read")],
        )
        .await;
    let (s, h, p) = Api::new(&app.base, &plain.secret)
        .send(reqwest::Client::new().get(format!("{}/api/v1/keys", app.base)))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(h["content-type"], "application/problem+json");
    assert_eq!(p["code"], "INSUFFICIENT_PERMISSION");
    assert_eq!(p["status"], 403);
    // Read only: no writes.
    let reader = admin
        .create_key(
            "/workspace/keys",
            &[("name", "reader"), ("permissions", "keyward:keys:read")],
        )
        .await;
    let api = Api::new(&app.base, &reader.secret);
    assert_eq!(api.get("/api/v1/keys").await.0, StatusCode::OK);
    let (s, p) = api
        .post(&format!("/api/v1/keys/{}/revoke", plain.id), json!({}))
        .await;
    assert_eq!(
        (s, p["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("INSUFFICIENT_PERMISSION"))
    );
    assert_eq!(me(&app.base, &plain.secret).await.0, StatusCode::OK);

    // Another workspace's admin key sees none of ours.
    let zed = app.other_workspace_admin().await;
    let theirs = admin_workspace_manager(&zed).await;
    let api = Api::new(&app.base, &theirs.secret);
    let (_, page) = api.get("/api/v1/keys").await;
    assert_eq!(ids(&page), vec![theirs.id.clone()]);
    assert_eq!(
        api.get(&format!("/api/v1/keys/{}", plain.id)).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.post(&format!("/api/v1/keys/{}/revoke", plain.id), json!({}))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (_, events) = api.get("/api/v1/events?limit=100").await;
    assert!(
        !events.to_string().contains(&plain.id),
        "another workspace's events stay hidden"
    );
}

#[tokio::test]
async fn idempotency_keys_make_retries_safe() {
    let (app, admin) = spawn_ready().await;
    let manager = admin_workspace_manager(&admin).await;
    let api = Api::new(&app.base, &manager.secret);
    let body = json!({"name": "retried", "kind": "workspace"});
    let (s1, first) = api.create_idem("req-1", body.clone()).await;
    assert_eq!(s1, StatusCode::CREATED);
    assert!(first["secret"].is_string());
    let (s2, second) = api.create_idem("req-1", body.clone()).await;
    assert_eq!(s2, StatusCode::OK, "{second}");
    assert_eq!(second["id"], first["id"]);
    assert!(
        second.get("secret").is_none(),
        "the secret is never sent twice"
    );
    assert_eq!(second["idempotent_replay"], true);
    let (_, page) = api.get("/api/v1/keys?q=retried").await;
    assert_eq!(ids(&page).len(), 1, "one key for two requests");
    // The same header value for another request is refused.
    let (s, p) = api
        .create_idem("req-1", json!({"name": "different", "kind": "workspace"}))
        .await;
    assert_eq!(
        (s, p["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("IDEMPOTENCY_KEY_REUSED")
        )
    );
    // Another value is another request.
    let (s, other) = api.create_idem("req-2", body.clone()).await;
    assert_eq!(s, StatusCode::CREATED);
    assert_ne!(other["id"], first["id"]);
    // Without the header, every request creates.
    assert_eq!(
        api.post("/api/v1/keys", body.clone()).await.0,
        StatusCode::CREATED
    );
    // Values are per acting key: another key's "req-1" is its own.
    let other_manager = admin_workspace_manager(&admin).await;
    let (s, _) = Api::new(&app.base, &other_manager.secret)
        .create_idem("req-1", body.clone())
        .await;
    assert_eq!(s, StatusCode::CREATED);

    // Regenerate: once per value; the retried answer has no secret and the
    // first new secret keeps working.
    let id = first["id"].as_str().unwrap();
    let regen = |idem: &'static str| {
        let http = reqwest::Client::new();
        let url = format!("{}/api/v1/keys/{id}/regenerate", app.base);
        let key = manager.secret.clone();
        async move {
            let res = http
                .post(url)
                .bearer_auth(key)
                .header("Idempotency-Key", idem)
                .json(&json!({"grace": "1h"}))
                .send()
                .await
                .unwrap();
            (res.status(), res.json::<Value>().await.unwrap())
        }
    };
    let (s, r1) = regen("rot-1").await;
    assert_eq!(s, StatusCode::OK);
    let new_secret = r1["secret"].as_str().unwrap().to_owned();
    let (s, r2) = regen("rot-1").await;
    assert_eq!(s, StatusCode::OK);
    assert!(r2.get("secret").is_none());
    assert_eq!(r2["idempotent_replay"], true);
    assert_eq!(
        me(&app.base, &new_secret).await.0,
        StatusCode::OK,
        "not regenerated twice"
    );
    let regenerations = app
        .event_actions()
        .await
        .iter()
        .filter(|a| *a == "key.regenerated")
        .count();
    assert_eq!(regenerations, 1);
    let creations = app
        .events()
        .await
        .iter()
        .filter(|e| e.action == "key.created" && e.target_label.as_deref() == Some("retried"))
        .count();
    assert_eq!(
        creations, 4,
        "req-1, req-2, no header, the other key's req-1"
    );
}

#[tokio::test]
async fn concurrent_retries_with_one_idempotency_key_create_one_key() {
    let (app, admin) = spawn_ready().await;
    let manager = admin_workspace_manager(&admin).await;
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let api = Api::new(&app.base, &manager.secret);
        tasks.push(tokio::spawn(async move {
            api.create_idem("same", json!({"name": "raced", "kind": "workspace"}))
                .await
        }));
    }
    let mut ids_seen = Vec::new();
    let mut created = 0;
    for t in tasks {
        let (s, body) = t.await.unwrap();
        assert!(
            s == StatusCode::CREATED || s == StatusCode::OK,
            "{s} {body}"
        );
        if s == StatusCode::CREATED {
            created += 1;
        }
        ids_seen.push(body["id"].as_str().unwrap().to_owned());
    }
    ids_seen.sort();
    ids_seen.dedup();
    assert_eq!(created, 1);
    assert_eq!(ids_seen.len(), 1, "every answer names the one key");
}

/// A write that changes nothing records nothing: `PATCH {}` and an
/// unchanged name wrote `key.updated` events whose old value was the new,
/// and ten concurrent disables wrote ten `key.disabled` events.
#[tokio::test]
async fn writes_that_change_nothing_are_not_audited() {
    let (app, admin) = spawn_ready().await;
    let manager = admin_workspace_manager(&admin).await;
    let api = Api::new(&app.base, &manager.secret);
    let (s, key) = api
        .post(
            "/api/v1/keys",
            json!({"name": "Quiet", "kind": "workspace"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{key}");
    let id = key["id"].as_str().unwrap().to_owned();
    let count = |action: &'static str| {
        let app = &app;
        async move {
            app.event_actions()
                .await
                .iter()
                .filter(|a| a.as_str() == action)
                .count()
        }
    };

    for body in [json!({}), json!({"name": "Quiet", "tags": []})] {
        let (s, same) = api.patch(&format!("/api/v1/keys/{id}"), body).await;
        assert_eq!(s, StatusCode::OK, "{same}");
        assert_eq!(same["name"], "Quiet");
    }
    assert_eq!(count("key.updated").await, 0, "nothing changed");
    let (s, _) = api
        .patch(&format!("/api/v1/keys/{id}"), json!({"name": "Louder"}))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(count("key.updated").await, 1, "a real change is recorded");

    let mut tasks = Vec::new();
    for _ in 0..10 {
        let api = Api::new(&app.base, &manager.secret);
        let path = format!("/api/v1/keys/{id}/disable");
        tasks.push(tokio::spawn(
            async move { api.post(&path, json!({})).await },
        ));
    }
    for t in tasks {
        let (s, body) = t.await.unwrap();
        assert_eq!(s, StatusCode::OK, "{body}");
        assert_eq!(body["status"], "inactive", "{body}");
    }
    assert_eq!(count("key.disabled").await, 1, "one change, one event");
    // Enabling twice is one change too.
    let (s, _) = api
        .post(&format!("/api/v1/keys/{id}/enable"), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = api
        .post(&format!("/api/v1/keys/{id}/enable"), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(count("key.enabled").await, 1);
}

#[tokio::test]
async fn workspace_limits_apply_as_in_the_dialog() {
    let (app, admin) = spawn_ready().await;
    // Made before the workspace had a maximum expiry.
    let early = admin_workspace_manager(&admin).await;
    let (s, forever) = Api::new(&app.base, &early.secret)
        .post(
            "/api/v1/keys",
            json!({"name": "forever", "kind": "workspace", "never": true}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{forever}");
    assert_eq!(forever["key"]["expires_at"], Value::Null);
    let res = admin
        .post_form(
            "/workspace/settings/limits",
            &[
                ("max_expiry_days", "30"),
                ("max_keys_per_user", "2"),
                ("default_rate_limit", ""),
            ],
        )
        .await;
    assert!(res.status().is_redirection() || res.status().is_success());
    let mut fields = vec![("name", "mine"), ("expiry", "30")];
    fields.extend_from_slice(&ALL_MANAGEMENT);
    let manager = admin.create_key("/account/keys", &fields).await;
    let api = Api::new(&app.base, &manager.secret);

    for body in [
        json!({"name": "too long", "expires_in_days": 60}),
        json!({"name": "forever", "never": true}),
        json!({"name": "far", "expires_at": (chrono::Utc::now().date_naive() + chrono::TimeDelta::days(60)).to_string()}),
    ] {
        let (s, p) = api.post("/api/v1/keys", body.clone()).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(p["code"], "VALIDATION_FAILED");
        assert!(
            p["detail"].as_str().unwrap().contains("at most 30 days"),
            "{p}"
        );
    }
    // No expiry given: the dialog's default within the maximum.
    let (s, k) = api.post("/api/v1/keys", json!({"name": "default"})).await;
    assert_eq!(s, StatusCode::CREATED, "{k}");
    let expires =
        chrono::DateTime::parse_from_rfc3339(k["key"]["expires_at"].as_str().unwrap()).unwrap();
    let days = (expires.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_days();
    assert!((29..=30).contains(&days), "{days}");
    // Regenerating shortens an expiry beyond the maximum, as in the dialog
    // (by the early manager: a never-expiring key is beyond the 30-day
    // manager's own expiry, so that one may not regenerate it).
    let (s, fresh) = Api::new(&app.base, &early.secret)
        .post(
            &format!(
                "/api/v1/keys/{}/regenerate",
                forever["id"].as_str().unwrap()
            ),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{fresh}");
    let expires =
        chrono::DateTime::parse_from_rfc3339(fresh["key"]["expires_at"].as_str().unwrap()).unwrap();
    let days = (expires.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_days();
    assert!((29..=30).contains(&days), "{days}");
    // Two personal keys exist now (the manager and "default"): the limit.
    let (s, p) = api.post("/api/v1/keys", json!({"name": "third"})).await;
    assert_eq!(
        (s, p["code"].as_str()),
        (StatusCode::CONFLICT, Some("KEY_LIMIT_REACHED"))
    );
    assert!(p["detail"].as_str().unwrap().contains("2 personal keys"));
    // Workspace keys do not count against it.
    let (s, _) = api
        .post("/api/v1/keys", json!({"name": "ws", "kind": "workspace"}))
        .await;
    assert_eq!(s, StatusCode::CREATED);

    // API keys switched off: the management key itself stops working.
    let res = admin
        .post_form("/workspace/settings/api-keys", &[("enabled", "off")])
        .await;
    assert!(res.status().is_redirection() || res.status().is_success());
    let (s, p) = api.get("/api/v1/keys").await;
    assert_eq!(
        (s, p["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("API_KEYS_DISABLED"))
    );
}

#[tokio::test]
async fn errors_are_problem_details_never_server_errors() {
    let (app, admin) = spawn_ready().await;
    let manager = admin_workspace_manager(&admin).await;
    let http = reqwest::Client::new();
    let url = format!("{}/api/v1/keys", app.base);
    let problem = |res: reqwest::Response| async move {
        let status = res.status();
        assert_eq!(
            res.headers()["content-type"],
            "application/problem+json",
            "{status}"
        );
        let p: Value = res.json().await.unwrap();
        assert_eq!(p["status"], status.as_u16());
        assert_eq!(p["type"], "about:blank");
        assert!(p["title"].is_string() && p["detail"].is_string());
        (status, p)
    };
    // Malformed and mistyped JSON.
    for body in [
        "{",
        "[]",
        "null",
        "{\"name\": 5}",
        "\u{0}",
        "{\"name\": \"x\", \"bogus\": 1}",
    ] {
        let res = http
            .post(&url)
            .bearer_auth(&manager.secret)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let (s, p) = problem(res).await;
        assert_eq!(
            (s, p["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("BAD_REQUEST")),
            "{body}"
        );
    }
    // Invalid fields: one message each.
    let res = http
        .post(&url)
        .bearer_auth(&manager.secret)
        .json(&json!({"name": "", "environment": "live", "tags": ["no spaces"], "rate_limit_per_minute": 0, "permissions": ["nope"]}))
        .send()
        .await
        .unwrap();
    let (s, p) = problem(res).await;
    assert_eq!(
        (s, p["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("VALIDATION_FAILED"))
    );
    let mut fields: Vec<&str> = p["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    fields.sort();
    assert_eq!(
        fields,
        ["name", "permissions", "rate_limit_per_minute", "tags"]
    );
    // Bad parameters and cursors.
    for query in [
        "status=bogus",
        "limit=0",
        "limit=abc",
        "cursor=nonsense",
        "expiring=perhaps",
    ] {
        let res = http
            .get(format!("{url}?{query}"))
            .bearer_auth(&manager.secret)
            .send()
            .await
            .unwrap();
        let (s, _) = problem(res).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{query}");
    }
    // Control characters (PostgreSQL refuses a NUL in text) are refused
    // before any query, in filters and ids alike.
    for path in [
        "/api/v1/keys?q=a%00b".to_owned(),
        "/api/v1/keys?owner=%00".to_owned(),
        "/api/v1/events?actor=%00".to_owned(),
        "/api/v1/events?key=x%01".to_owned(),
        "/api/v1/keys/key_%00/usage".to_owned(),
    ] {
        let res = http
            .get(format!("{}{path}", app.base))
            .bearer_auth(&manager.secret)
            .send()
            .await
            .unwrap();
        let (s, _) = problem(res).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{path}");
    }
    // A full key in a URL is refused, not searched.
    let res = http
        .get(format!("{url}?q={}", manager.secret))
        .bearer_auth(&manager.secret)
        .send()
        .await
        .unwrap();
    let (s, p) = problem(res).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        !p.to_string().contains(&manager.secret[8..]),
        "the secret is not echoed"
    );
    // No key, an unknown key.
    let res = http.get(&url).send().await.unwrap();
    assert!(
        res.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let (s, p) = problem(res).await;
    assert_eq!(
        (s, p["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("MISSING_KEY"))
    );
    let (unknown, _) = keyward::domain::keys::generate(keyward::domain::keys::Environment::Live);
    let res = http
        .get(&url)
        .bearer_auth(unknown.expose())
        .send()
        .await
        .unwrap();
    let (s, p) = problem(res).await;
    assert_eq!(
        (s, p["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("NOT_FOUND"))
    );
    // Unknown id; bad grace.
    let res = http
        .get(format!("{url}/key_doesnotexist"))
        .bearer_auth(&manager.secret)
        .send()
        .await
        .unwrap();
    let (s, p) = problem(res).await;
    assert_eq!(
        (s, p["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("NOT_FOUND"))
    );
    let res = http
        .post(format!("{url}/{}/regenerate", manager.id))
        .bearer_auth(&manager.secret)
        .json(&json!({"grace": "forever"}))
        .send()
        .await
        .unwrap();
    let (s, p) = problem(res).await;
    assert_eq!(
        (s, p["errors"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("grace"))
    );
    // A method or route the API does not have: a problem too.
    for (method, path, status, code) in [
        (
            "PUT",
            "/api/v1/keys",
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
        ),
        (
            "GET",
            "/api/v1/keys/key_x/nothing",
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
        ),
    ] {
        let res = http
            .request(method.parse().unwrap(), format!("{}{path}", app.base))
            .bearer_auth(&manager.secret)
            .send()
            .await
            .unwrap();
        let (s, p) = problem(res).await;
        assert_eq!(
            (s, p["code"].as_str()),
            (status, Some(code)),
            "{method} {path}"
        );
    }
    // Unknown event action.
    let res = http
        .get(format!("{}/api/v1/events?action=key.teleported", app.base))
        .bearer_auth(&manager.secret)
        .send()
        .await
        .unwrap();
    let (s, _) = problem(res).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_acting_keys_rate_limit_applies() {
    let (app, admin) = spawn_ready().await;
    let mut fields = vec![("name", "slow"), ("rate_limit", "2")];
    fields.extend_from_slice(&ALL_MANAGEMENT);
    let manager = admin.create_key("/workspace/keys", &fields).await;
    let api = Api::new(&app.base, &manager.secret);
    assert_eq!(api.get("/api/v1/keys").await.0, StatusCode::OK);
    assert_eq!(api.get("/api/v1/keys").await.0, StatusCode::OK);
    let (s, h, p) = api
        .send(reqwest::Client::new().get(format!("{}/api/v1/keys", app.base)))
        .await;
    assert_eq!(
        (s, p["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("RATE_LIMITED"))
    );
    assert!(h.contains_key("retry-after"));
}

#[tokio::test]
async fn usage_and_paging_follow_the_keys() {
    let (app, admin) = spawn_ready().await;
    let manager = admin_workspace_manager(&admin).await;
    let api = Api::new(&app.base, &manager.secret);
    let mut made = Vec::new();
    for i in 0..7 {
        let name = format!("paged {i}");
        // A live manager makes live keys only; the dev ones come from the
        // dialog.
        if i % 2 == 0 {
            let (s, k) = api
                .post(
                    "/api/v1/keys",
                    json!({"name": name, "kind": "workspace", "environment": "live"}),
                )
                .await;
            assert_eq!(s, StatusCode::CREATED);
            made.push(k["id"].as_str().unwrap().to_owned());
        } else {
            let k = admin
                .create_key(
                    "/workspace/keys",
                    &[("name", name.as_str()), ("environment", "dev")],
                )
                .await;
            made.push(k.id);
        }
    }
    // Pages of 2 of the dev keys (3 of them), through the cursor.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let (s, page) = api
            .get(&format!(
                "/api/v1/keys?environment=dev&limit=2&q=paged&cursor={cursor}"
            ))
            .await;
        assert_eq!(s, StatusCode::OK, "{page}");
        let got = ids(&page);
        if page["next_cursor"].is_string() {
            // Filters are part of the query: a page is full whenever
            // another follows.
            assert_eq!(got.len(), 2, "{page}");
        }
        seen.extend(got);
        match page["next_cursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => break,
        }
    }
    let dev: Vec<String> = made
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, id)| id.clone())
        .rev()
        .collect();
    assert_eq!(seen, dev, "newest first, each once");

    // Status is filtered by the database too: one dev key switched off.
    let (s, _) = api
        .post(&format!("/api/v1/keys/{}/disable", dev[0]), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, page) = api
        .get("/api/v1/keys?environment=dev&q=paged&status=inactive")
        .await;
    assert_eq!(ids(&page), vec![dev[0].clone()]);
    let (_, page) = api
        .get("/api/v1/keys?environment=dev&q=paged&status=active&limit=1")
        .await;
    assert_eq!(
        ids(&page),
        vec![dev[1].clone()],
        "the next active one fills the page"
    );
    assert!(page["next_cursor"].is_string());

    // Usage: counted per hour and outcome.
    let (_, k) = api.get(&format!("/api/v1/keys/{}", made[0])).await;
    assert_eq!(k["name"], "paged 0");
    let (s, usage) = api
        .get(&format!("/api/v1/keys/{}/usage?hours=24", manager.id))
        .await;
    assert_eq!(s, StatusCode::OK, "{usage}");
    assert_eq!(usage["key_id"], manager.id);
    // The usage buffer is flushed every few seconds: wait for our calls.
    let mut valid = 0;
    for _ in 0..100 {
        let (_, usage) = api.get(&format!("/api/v1/keys/{}/usage", manager.id)).await;
        valid = usage["valid"].as_i64().unwrap();
        if valid > 0 {
            assert_eq!(usage["buckets"][0]["outcome"], "VALID");
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(valid > 0, "the management calls were counted");
}

#[tokio::test]
async fn secrets_appear_only_in_the_create_and_regenerate_answers() {
    let (app, admin) = spawn_ready().await;
    let manager = admin_workspace_manager(&admin).await;
    let api = Api::new(&app.base, &manager.secret);
    let (_, created) = api
        .post(
            "/api/v1/keys",
            json!({"name": "secretive", "kind": "workspace"}),
        )
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let first = created["secret"].as_str().unwrap().to_owned();
    let (_, regenerated) = api
        .post(
            &format!("/api/v1/keys/{id}/regenerate"),
            json!({"grace": "24h"}),
        )
        .await;
    let second = regenerated["secret"].as_str().unwrap().to_owned();
    let mut everything = String::new();
    for path in [
        "/api/v1/keys".to_owned(),
        format!("/api/v1/keys/{id}"),
        format!("/api/v1/keys/{id}/usage"),
        "/api/v1/events?limit=100".to_owned(),
    ] {
        let (s, body) = api.get(&path).await;
        assert_eq!(s, StatusCode::OK);
        everything.push_str(&body.to_string());
    }
    let rows = app
        .with_db(|c| {
            use diesel::prelude::*;
            let keys = keyward::db::schema::api_keys::table
                .select(keyward::db::keys::ApiKey::as_select())
                .load(c)
                .unwrap();
            let idem: Vec<(String, String, String)> = diesel::sql_query(
                "SELECT idempotency_key, fingerprint, key_id FROM idempotency_keys",
            )
            .load::<IdemRow>(c)
            .unwrap()
            .into_iter()
            .map(|r| (r.idempotency_key, r.fingerprint, r.key_id))
            .collect();
            format!("{keys:?}{idem:?}")
        })
        .await;
    everything.push_str(&rows);
    everything.push_str(&format!("{:?}", app.events().await));
    assert!(
        everything.contains(&id),
        "the test looked at the key's data"
    );
    for secret in [&first, &second, &manager.secret] {
        let random = &secret[8..];
        assert!(
            !everything.contains(random),
            "a secret was stored or shown again"
        );
        assert!(!everything.contains(&random[..20]));
    }
}

#[derive(diesel::QueryableByName)]
struct IdemRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    idempotency_key: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    fingerprint: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    key_id: String,
}

/// The routes of `src/api/`, read from the source: `#[get("…")]` and the
/// like inside the `/api/v1` scope, `web::resource("…")` followed by one
/// `.get(…)`-like line per method (HEAD, implied by GET, aside), and
/// `web::resource(…).to(…)`, which answers every method.
fn api_routes() -> Vec<(String, String)> {
    let mut dirs = vec![std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/api"
    ))];
    let mut files = Vec::new();
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    const EVERY: [&str; 8] = [
        "get", "put", "post", "delete", "options", "head", "patch", "trace",
    ];
    let mut routes = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file).unwrap();
        let mut resource: Option<String> = None;
        for line in text.lines().map(str::trim) {
            for method in ["get", "post", "patch", "delete", "put"] {
                if let Some(rest) = line.strip_prefix(&format!("#[{method}(\"")) {
                    let path = rest.split('"').next().unwrap();
                    routes.push((method.to_owned(), format!("/api/v1{path}")));
                }
            }
            if let Some(rest) = line.strip_prefix("web::resource([\"") {
                let path = rest.split('"').next().unwrap();
                // Any method.
                for method in EVERY {
                    routes.push((method.to_owned(), format!("/api/v1{path}")));
                }
                continue;
            }
            let methods = match line.split_once("web::resource(\"") {
                Some((_, rest)) => {
                    let (path, rest) = rest.split_once('"').unwrap();
                    if rest.starts_with(").to(") {
                        // Any method. Forward auth's `{tail}` twin (the path
                        // Envoy appends) is the same operation, documented
                        // once under its usual address.
                        if !path.contains("{tail") {
                            for method in EVERY {
                                routes.push((method.to_owned(), format!("/api/v1{path}")));
                            }
                        }
                        resource = None;
                        continue;
                    }
                    resource = Some(format!("/api/v1{path}"));
                    rest
                }
                None if line.starts_with('.') => line,
                None => {
                    resource = None;
                    continue;
                }
            };
            let Some(path) = &resource else { continue };
            for method in ["get", "post", "patch", "delete", "put"] {
                if methods.contains(&format!(".{method}(")) {
                    routes.push((method.to_owned(), path.clone()));
                }
            }
        }
    }
    routes
}

#[tokio::test]
async fn every_api_route_is_in_the_openapi_document() {
    let (app, _admin) = spawn_ready().await;
    let res = reqwest::get(format!("{}/api/v1/openapi.json", app.base))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let doc: Value = res.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let routes = api_routes();
    assert!(routes.len() >= 15, "the scan finds the routes: {routes:?}");
    for (method, path) in &routes {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} is not in openapi.json"
        );
    }
    // And every documented operation answers (no 404 from the router):
    // without a key the protected ones say so.
    let http = reqwest::Client::new();
    let mut operations = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            operations += 1;
            let url = format!("{}{}", app.base, path.replace("{id}", "key_x"));
            let res = http
                .request(method.to_uppercase().parse().unwrap(), &url)
                .json(&json!({"key": "x"}))
                .send()
                .await
                .unwrap();
            let status = res.status();
            if op.get("security").is_some() {
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
            } else {
                // 200, or 202 for a report taken in (leaks/report).
                assert!(status.is_success(), "{method} {path}: {status}");
            }
            assert!(
                op["responses"][status.as_str()].is_object(),
                "{method} {path} documents its {status}"
            );
        }
    }
    assert_eq!(
        operations,
        routes.len(),
        "nothing documented that is not routed"
    );
    // And every method a path is not documented with is 405, with the
    // documented ones in `Allow`.
    for (path, ops) in doc["paths"].as_object().unwrap() {
        let url = format!("{}{}", app.base, path.replace("{id}", "key_x"));
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"] {
            if ops.get(method.to_lowercase()).is_some() {
                continue;
            }
            let res = http
                .request(method.parse().unwrap(), &url)
                .send()
                .await
                .unwrap();
            assert_eq!(
                res.status(),
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}"
            );
            let allow = res.headers()["allow"].to_str().unwrap().to_owned();
            let mut allowed: Vec<String> = allow
                .split(", ")
                .filter(|m| *m != "HEAD")
                .map(str::to_lowercase)
                .collect();
            allowed.sort();
            let mut documented: Vec<String> = ops.as_object().unwrap().keys().cloned().collect();
            documented.sort();
            assert_eq!(allowed, documented, "Allow of {path}");
        }
    }
    // Management operations document problem details.
    let problem = &doc["paths"]["/api/v1/keys"]["post"]["responses"]["422"]["content"];
    assert!(problem["application/problem+json"].is_object(), "{problem}");
}

#[tokio::test]
async fn docs_and_key_pages_show_how_to_use_a_key() {
    let (app, admin) = spawn_ready().await;
    // /docs: open to anyone, rendered from this server only.
    let res = reqwest::get(format!("{}/docs", app.base)).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let page = unescape(&res.text().await.unwrap());
    assert!(page.contains("data-spec-url=\"/api/v1/openapi.json\""));
    for asset in [
        "/static/swagger-ui-bundle.js",
        "/static/swagger-ui.css",
        "/static/docs.js",
    ] {
        assert!(page.contains(asset), "{asset}");
        let res = reqwest::get(format!("{}{asset}", app.base)).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{asset}");
    }
    assert!(
        !page.contains("https://"),
        "nothing is loaded from elsewhere"
    );
    assert!(page.contains("curl -H \"Authorization: Bearer $KEYWARD_KEY\""));
    for p in [
        "keyward:keys:read",
        "keyward:keys:write",
        "keyward:events:read",
    ] {
        assert!(page.contains(p));
    }
    // The served renderer is the one SOURCE.md records.
    let source = include_str!("../../static/vendor/swagger-ui-5.35.0/SOURCE.md");
    let bundle = reqwest::get(format!("{}/static/swagger-ui-bundle.js", app.base))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    use sha2::Digest;
    let digest = hex::encode(sha2::Sha256::digest(&bundle));
    assert!(
        source.contains(&format!("sha256 of swagger-ui-bundle.js: `{digest}`")),
        "SOURCE.md records the served bundle"
    );

    // The key page: snippets with the key's masked excerpt, never the key.
    let k = admin
        .create_key("/account/keys", &[("name", "snippet")])
        .await;
    let (status, page) = admin.page(&format!("/keys/{}", k.id)).await;
    assert_eq!(status, StatusCode::OK);
    let page = unescape(&page);
    let excerpt = format!("sk_live_…{}", &k.secret[k.secret.len() - 4..]);
    assert!(page.contains("Use this key"));
    assert!(
        page.contains(&format!("export KEYWARD_KEY='{excerpt}'")),
        "curl snippet with the excerpt"
    );
    assert!(page.contains("import requests") && page.contains("await fetch("));
    assert!(page.contains(&format!("{}/api/v1/me", app.base)));
    assert!(page.contains("href=\"/docs\""));
    assert!(
        !page.contains(&k.secret[8..]),
        "the key itself is never on its page"
    );
    let (_, list) = admin.page("/account/keys").await;
    assert!(
        list.contains("href=\"/docs\""),
        "the list links the reference"
    );
}

/// The text of HTML as a reader sees it (the entities askama writes).
fn unescape(html: &str) -> String {
    html.replace("&#34;", "\"")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#38;", "&")
        .replace("&amp;", "&")
}

/// The binary at trace level, driven through the management API: neither
/// the acting key nor any key it creates or regenerates reaches the log.
#[tokio::test]
async fn management_secrets_never_reach_the_log() {
    use std::process::{Command, Stdio};
    let (db, _guard) = tokio::task::spawn_blocking(fresh_database).await.unwrap();
    let url = match &db {
        keyward::config::DatabaseUrl::Sqlite(path) => path.display().to_string(),
        keyward::config::DatabaseUrl::Postgres(url) => url.clone(),
    };
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("password");
    std::fs::write(&password_file, format!("{ADMIN_PASSWORD}\n")).unwrap();
    let keyward = || {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_keyward"));
        cmd.env_clear()
            .env("DATABASE_URL", &url)
            .env("KEYWARD_SECRET", "log-test-secret-log-test-secret-log-test")
            .env("KEYWARD_BIND", "127.0.0.1:0")
            .env("RUST_LOG", "trace");
        cmd
    };
    let setup = keyward()
        .args(["setup", "--workspace", "Acme", "--admin-email", ADMIN_EMAIL])
        .arg("--admin-password-file")
        .arg(&password_file)
        .output()
        .unwrap();
    assert!(setup.status.success());
    let log_path = dir.path().join("keyward.log");
    let mut child = keyward()
        .arg("serve")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let login = printed_word(&mut child, |w| w.ends_with("/login")).await;
    let base = login.trim_end_matches("/login").to_owned();
    let admin = Browser::new(&base);
    assert_eq!(
        admin.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
    let manager = admin_workspace_manager(&admin).await;
    let api = Api::new(&base, &manager.secret);
    let (s, created) = api
        .create_idem("log-1", json!({"name": "logged?", "kind": "workspace"}))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let id = created["id"].as_str().unwrap().to_owned();
    let (_, regenerated) = api
        .post(&format!("/api/v1/keys/{id}/regenerate"), json!({}))
        .await;
    // Refusals that echo input, and a search for a full key, are logged too.
    let (s, _) = api
        .get(&format!(
            "/api/v1/keys?q={}",
            created["secret"].as_str().unwrap()
        ))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    api.post("/api/v1/keys", json!({"name": ""})).await;
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.contains("/api/v1/keys"), "the calls were logged");
    for secret in [
        manager.secret.as_str(),
        created["secret"].as_str().unwrap(),
        regenerated["secret"].as_str().unwrap(),
    ] {
        let random = &secret[8..];
        assert!(!log.contains(&random[..20]), "a secret reached the log");
    }
}

/// One person in two workspaces with two roles: each management key acts
/// in its own workspace, with the role its owner has there.
#[tokio::test]
async fn a_persons_keys_act_in_their_own_workspace_with_the_role_there() {
    let (app, ada) = spawn_ready().await;
    let acme_manager = admin_workspace_manager(&ada).await;
    let acme_key = ada
        .create_key("/workspace/keys", &[("name", "acme erp")])
        .await;

    // Zed invites Ada into Other Corp as a normal user; she accepts in the app.
    let zed = app.other_workspace_admin().await;
    let res = zed
        .post_form(
            "/workspace/users",
            &[("email", ADMIN_EMAIL), ("name", "Ada"), ("role", "normal")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let other_membership = app
        .with_db(|c| {
            use diesel::prelude::*;
            use keyward::db::schema::{people, users, workspaces};
            users::table
                .inner_join(people::table)
                .inner_join(workspaces::table)
                .filter(people::email.eq(ADMIN_EMAIL))
                .filter(workspaces::name.eq("Other Corp"))
                .select(users::id)
                .first::<String>(c)
                .unwrap()
        })
        .await;
    let res = ada
        .post_form(
            &format!("/workspaces/invitations/{other_membership}/accept"),
            &[],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    // Working in Other Corp now, as a normal user.
    let (_, form) = ada.page("/account/keys/new").await;
    assert!(!form.contains("value=\"keyward:events:read\""));
    let other_manager = ada
        .create_key(
            "/account/keys",
            &[
                ("name", "ada in other"),
                ("permissions", "keyward:keys:read"),
            ],
        )
        .await;
    let zeds_key = zed
        .create_key("/workspace/keys", &[("name", "other erp")])
        .await;

    let other = Api::new(&app.base, &other_manager.secret);
    let (_, page) = other.get("/api/v1/keys").await;
    assert_eq!(
        ids(&page),
        vec![other_manager.id.clone()],
        "her Other Corp keys only"
    );
    for id in [&zeds_key.id, &acme_key.id, &acme_manager.id] {
        assert_eq!(
            other.get(&format!("/api/v1/keys/{id}")).await.0,
            StatusCode::NOT_FOUND
        );
    }
    assert_eq!(other.get("/api/v1/events").await.0, StatusCode::FORBIDDEN);

    // Her Acme key still acts as an Acme admin, in Acme only.
    let acme = Api::new(&app.base, &acme_manager.secret);
    let (_, page) = acme.get("/api/v1/keys?limit=100").await;
    let seen = ids(&page);
    assert!(seen.contains(&acme_key.id));
    assert!(!seen.contains(&zeds_key.id) && !seen.contains(&other_manager.id));
    assert_eq!(
        acme.get(&format!("/api/v1/keys/{}", zeds_key.id)).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(acme.get("/api/v1/events").await.0, StatusCode::OK);
}

/// A revoked key can no longer be changed, and both surfaces say so alike:
/// 409 (`KEY_REVOKED` / `KEY_NOT_REVOCABLE` over the API, the same message
/// on the pages), never a server error; the edit and regenerate forms of a
/// revoked key do not open.
#[tokio::test]
async fn a_revoked_key_is_refused_alike_on_pages_and_api() {
    let (app, admin) = spawn_ready().await;
    let manager = admin_workspace_manager(&admin).await;
    let api = Api::new(&app.base, &manager.secret);
    let target = admin
        .create_key("/workspace/keys", &[("name", "Old ERP")])
        .await;
    let (s, _) = api
        .post(&format!("/api/v1/keys/{}/revoke", target.id), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);

    for (path, body, code) in [
        ("disable", json!({}), "KEY_REVOKED"),
        ("enable", json!({}), "KEY_REVOKED"),
        ("regenerate", json!({}), "KEY_REVOKED"),
        ("revoke", json!({}), "KEY_NOT_REVOCABLE"),
    ] {
        let (s, problem) = api
            .post(&format!("/api/v1/keys/{}/{path}", target.id), body)
            .await;
        assert_eq!(s, StatusCode::CONFLICT, "API {path}: {problem}");
        assert_eq!(problem["code"], code, "API {path}");
    }
    let (s, problem) = api
        .patch(
            &format!("/api/v1/keys/{}", target.id),
            json!({"name": "Renamed"}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "API edit: {problem}");
    assert_eq!(problem["code"], "KEY_REVOKED");

    for (path, fields) in [
        ("edit", vec![("name", "Renamed")]),
        ("disable", vec![]),
        ("enable", vec![]),
        ("regenerate", vec![("grace", "0"), ("nonce", "abc123")]),
        ("revoke", vec![]),
    ] {
        let res = admin
            .post_form(&format!("/keys/{}/{path}", target.id), &fields)
            .await;
        assert_eq!(res.status(), StatusCode::CONFLICT, "page {path}");
        let body = res.text().await.unwrap();
        assert!(
            body.contains("can no longer be changed")
                || body.contains("Only active or inactive keys can be revoked."),
            "page {path} says why: {body}"
        );
    }
    for path in ["edit", "regenerate", "revoke"] {
        let res = admin.get(&format!("/keys/{}/{path}", target.id)).await;
        assert_eq!(res.status(), StatusCode::CONFLICT, "form {path}");
    }
    // Nothing changed: still revoked, same name; deleting it still works.
    let (s, key) = api.get(&format!("/api/v1/keys/{}", target.id)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(key["status"], "revoked");
    assert_eq!(key["name"], "Old ERP");
    assert_eq!(
        api.delete(&format!("/api/v1/keys/{}", target.id)).await.0,
        StatusCode::NO_CONTENT
    );
}

/// A management key is the ceiling of every key it makes, edits or
/// regenerates (issue: a narrow key minted a broad one that then read the
/// events it could not). Each way of being broader is refused, naming the
/// field; anything within the ceiling works; pages (a person, not a key)
/// have no such ceiling.
#[tokio::test]
async fn a_narrow_management_key_cannot_mint_or_make_a_broader_one() {
    let (app, admin) = spawn_ready().await;
    let narrow = admin
        .create_key(
            "/workspace/keys",
            &[
                ("name", "Narrow provisioning"),
                ("environment", "test"),
                ("expiry", "7"),
                ("permissions", "keyward:keys:write"),
                ("permissions", "data:read"),
                ("resources", "plant-1\nplant-2"),
                ("rate_limit", "1000"),
            ],
        )
        .await;
    let api = Api::new(&app.base, &narrow.secret);
    let within = json!({
        "name": "Line sensor",
        "kind": "workspace",
        "environment": "test",
        "permissions": ["data:read"],
        "expires_in_days": 3,
        "resources": ["plant-1"],
        "rate_limit_per_minute": 60
    });
    let with = |field: &str, value: Value| {
        let mut body = within.clone();
        match value {
            Value::Null => {
                body.as_object_mut().unwrap().remove(field);
            }
            v => body[field] = v,
        }
        body
    };
    for (body, field) in [
        (
            with("permissions", json!(["data:read", "data:write"])),
            "permissions",
        ),
        (
            with("permissions", json!(["keyward:events:read"])),
            "permissions",
        ),
        (
            with("permissions", json!(["keyward:keys:read"])),
            "permissions",
        ),
        (with("environment", json!("live")), "environment"),
        (with("expires_in_days", json!(30)), "expires_in_days"),
        (
            with("expires_in_days", Value::Null)
                .as_object()
                .cloned()
                .map(|mut o| {
                    o.insert("never".into(), json!(true));
                    Value::Object(o)
                })
                .unwrap(),
            "never",
        ),
        (with("resources", Value::Null), "resources"),
        (with("resources", json!(["plant-3"])), "resources"),
        (
            with("rate_limit_per_minute", Value::Null),
            "rate_limit_per_minute",
        ),
        (
            with("rate_limit_per_minute", json!(5000)),
            "rate_limit_per_minute",
        ),
    ] {
        let (s, p) = api.post("/api/v1/keys", body.clone()).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body} → {p}");
        let fields: Vec<&str> = p["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert_eq!(fields, vec![field], "{body} → {p}");
    }
    // The issue's case, all at once: every excess named.
    let (s, p) = api
        .post(
            "/api/v1/keys",
            json!({
                "name": "Broad", "kind": "workspace", "environment": "live",
                "never": true,
                "permissions": ["keyward:keys:read", "keyward:keys:write", "keyward:events:read", "data:write"]
            }),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    assert_eq!(p["errors"].as_array().unwrap().len(), 5, "{p}");

    // Within the ceiling: made; with no expiry given it expires with the
    // acting key at the latest.
    let (s, made) = api.post("/api/v1/keys", within.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{made}");
    let id = made["id"].as_str().unwrap().to_owned();
    let (s, defaulted) = api
        .post("/api/v1/keys", with("expires_in_days", Value::Null))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{defaulted}");
    let expires =
        chrono::DateTime::parse_from_rfc3339(defaulted["key"]["expires_at"].as_str().unwrap())
            .unwrap();
    let days = (expires.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_hours();
    assert!(
        (6 * 24..=7 * 24).contains(&days),
        "clamped to 7 days: {days} h"
    );
    // Edits stay within it too.
    for body in [
        json!({"rate_limit_per_minute": null}),
        json!({"rate_limit_per_minute": 5000}),
    ] {
        let (s, p) = api.patch(&format!("/api/v1/keys/{id}"), body).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
        assert_eq!(p["errors"][0]["field"], "rate_limit_per_minute");
    }
    let (s, _) = api
        .patch(
            &format!("/api/v1/keys/{id}"),
            json!({"name": "Line sensor 2", "rate_limit_per_minute": 30}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    // A broader key made in the dialog: the narrow key may neither edit
    // nor regenerate it (a new secret would hand it over), but may still
    // switch it off for incident response.
    let broad = admin
        .create_key(
            "/workspace/keys",
            &[("name", "Broad ERP"), ("permissions", "data:write")],
        )
        .await;
    let (s, _) = api
        .patch(
            &format!("/api/v1/keys/{}", broad.id),
            json!({"name": "renamed"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, p) = api
        .post(&format!("/api/v1/keys/{}/regenerate", broad.id), json!({}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    assert!(p.get("secret").is_none());
    assert_eq!(me_code(&app.base, &broad.secret).await.0, StatusCode::OK);
    let (s, _) = api
        .post(&format!("/api/v1/keys/{}/disable", broad.id), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    // Its own kind of key regenerates.
    let (s, fresh) = api
        .post(&format!("/api/v1/keys/{id}/regenerate"), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{fresh}");
    assert!(fresh["secret"].as_str().unwrap().starts_with("sk_test_"));
}

/// A raw POST of `body` to `path` with the given extra header lines.
fn raw_post(key: &str, path: &str, headers: &str, body: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// A retry is the same request when its JSON is the same, however it is
/// spelled (member order, white space), and an `Idempotency-Key` that is
/// empty or repeated is refused rather than ignored (which would create a
/// key on every retry of a caller who believes itself safe).
#[tokio::test]
async fn idempotency_compares_json_values_and_refuses_empty_keys() {
    let (app, admin) = spawn_ready().await;
    let manager = admin_workspace_manager(&admin).await;
    let api = Api::new(&app.base, &manager.secret);
    let key = &manager.secret;
    let (s, _, first) = raw_http(
        &app.base,
        raw_post(
            key,
            "/api/v1/keys",
            "Idempotency-Key: spelled-1\r\n",
            r#"{"name":"spelled","kind":"workspace","tags":["a","b"]}"#,
        ),
    )
    .await;
    assert_eq!(s, 201, "{first}");
    let first: Value = serde_json::from_str(&first).unwrap();
    let (s, _, again) = raw_http(
        &app.base,
        raw_post(
            key,
            "/api/v1/keys",
            "Idempotency-Key: spelled-1\r\n",
            "{\n  \"tags\" : [ \"a\", \"b\" ],\n  \"kind\": \"workspace\",\t\"name\" : \"spelled\"\n}\n",
        ),
    )
    .await;
    assert_eq!(s, 200, "the same request, spelled otherwise: {again}");
    let again: Value = serde_json::from_str(&again).unwrap();
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again["idempotent_replay"], true);
    // The order of an array is part of the value: another request.
    let (s, _, other) = raw_http(
        &app.base,
        raw_post(
            key,
            "/api/v1/keys",
            "Idempotency-Key: spelled-1\r\n",
            r#"{"name":"spelled","kind":"workspace","tags":["b","a"]}"#,
        ),
    )
    .await;
    assert_eq!(s, 422, "{other}");
    assert!(other.contains("IDEMPOTENCY_KEY_REUSED"), "{other}");

    // Regenerate: no body and `{}` ask the same; so do both spellings.
    let id = first["id"].as_str().unwrap();
    let path = format!("/api/v1/keys/{id}/regenerate");
    let (s, _, r1) = raw_http(
        &app.base,
        raw_post(key, &path, "Idempotency-Key: rot-1\r\n", ""),
    )
    .await;
    assert_eq!(s, 200, "{r1}");
    assert!(r1.contains("\"secret\""), "{r1}");
    let (s, _, r2) = raw_http(
        &app.base,
        raw_post(key, &path, "Idempotency-Key: rot-1\r\n", " { } "),
    )
    .await;
    assert_eq!(s, 200, "{r2}");
    assert!(r2.contains("\"idempotent_replay\":true"), "{r2}");

    // An empty header, one of only spaces, and two headers are refused,
    // and nothing is created.
    let before = ids(&api.get("/api/v1/keys?q=refused-idem").await.1).len();
    for headers in [
        "Idempotency-Key:\r\n",
        "Idempotency-Key:    \r\n",
        "Idempotency-Key: a\r\nIdempotency-Key: b\r\n",
    ] {
        let (s, _, problem) = raw_http(
            &app.base,
            raw_post(
                key,
                "/api/v1/keys",
                headers,
                r#"{"name":"refused-idem","kind":"workspace"}"#,
            ),
        )
        .await;
        assert_eq!(s, 400, "{headers:?}: {problem}");
        assert!(problem.contains("Idempotency-Key"), "{problem}");
        let (s, _, problem) = raw_http(
            &app.base,
            raw_post(key, &path, headers, r#"{"grace":"1h"}"#),
        )
        .await;
        assert_eq!(s, 400, "regenerate {headers:?}: {problem}");
    }
    assert_eq!(
        ids(&api.get("/api/v1/keys?q=refused-idem").await.1).len(),
        before
    );
}

/// Every management path answers the methods it has, HEAD like GET, and
/// any other method 405 with `Allow`, as a problem; the document lists the
/// same methods (HEAD implied).
#[tokio::test]
async fn management_paths_answer_405_with_allow_and_head_like_get() {
    let (app, admin) = spawn_ready().await;
    let manager = admin_workspace_manager(&admin).await;
    let http = reqwest::Client::new();
    let id = &manager.id;
    let doc: Value = reqwest::get(format!("{}/api/v1/openapi.json", app.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for (path, allow) in [
        ("/api/v1/keys".to_owned(), "GET, HEAD, POST"),
        (format!("/api/v1/keys/{id}"), "GET, HEAD, PATCH, DELETE"),
        (format!("/api/v1/keys/{id}/disable"), "POST"),
        (format!("/api/v1/keys/{id}/enable"), "POST"),
        (format!("/api/v1/keys/{id}/revoke"), "POST"),
        (format!("/api/v1/keys/{id}/regenerate"), "POST"),
        (format!("/api/v1/keys/{id}/usage"), "GET, HEAD"),
        ("/api/v1/events".to_owned(), "GET, HEAD"),
    ] {
        let allowed: Vec<&str> = allow.split(", ").collect();
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"] {
            if allowed.contains(&method) {
                continue;
            }
            let res = http
                .request(method.parse().unwrap(), format!("{}{path}", app.base))
                .bearer_auth(&manager.secret)
                .send()
                .await
                .unwrap();
            assert_eq!(
                res.status(),
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}"
            );
            assert_eq!(res.headers()["allow"], allow, "{method} {path}");
            assert_eq!(res.headers()["content-type"], "application/problem+json");
            let p: Value = res.json().await.unwrap();
            assert_eq!(p["status"], 405);
            assert_eq!(p["code"], "METHOD_NOT_ALLOWED", "{method} {path}");
            assert!(p["detail"].as_str().unwrap().contains(allow), "{p}");
        }
        // The document declares exactly the methods answered, HEAD aside.
        let documented = doc["paths"][path.replace(id.as_str(), "{id}")]
            .as_object()
            .unwrap_or_else(|| panic!("{path} documented"))
            .keys()
            .map(|m| m.to_uppercase())
            .collect::<Vec<_>>();
        let mut answered: Vec<String> = allowed
            .iter()
            .filter(|m| **m != "HEAD")
            .map(|m| m.to_string())
            .collect();
        answered.sort();
        let mut documented = documented;
        documented.sort();
        assert_eq!(documented, answered, "{path}");
        // HEAD answers like GET, without a body.
        if allowed.contains(&"HEAD") {
            let get = http
                .get(format!("{}{path}", app.base))
                .bearer_auth(&manager.secret)
                .send()
                .await
                .unwrap();
            let head = http
                .head(format!("{}{path}", app.base))
                .bearer_auth(&manager.secret)
                .send()
                .await
                .unwrap();
            assert_eq!(head.status(), get.status(), "HEAD {path}");
            assert_eq!(head.status(), StatusCode::OK, "HEAD {path}");
            assert_eq!(head.headers()["content-type"], "application/json");
            assert!(head.text().await.unwrap().is_empty(), "HEAD {path}");
        }
    }
    // HEAD of an unknown key: GET's 404, no body.
    let res = http
        .head(format!("{}/api/v1/keys/key_nothing", app.base))
        .bearer_auth(&manager.secret)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert!(res.text().await.unwrap().is_empty());
    // The method is checked before the key: a 405 says nothing of keys.
    let res = http
        .put(format!("{}/api/v1/keys", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
}

/// Request bodies: JSON by content type (415 otherwise; regenerate's body
/// may be left out), one value per member (400 on a repeat), at most
/// 64 KiB (413, as a problem, declared length or not).
#[tokio::test]
async fn bodies_are_json_objects_of_bounded_size() {
    let (app, admin) = spawn_ready().await;
    let manager = admin_workspace_manager(&admin).await;
    let api = Api::new(&app.base, &manager.secret);
    let http = reqwest::Client::new();
    let target = admin
        .create_key("/workspace/keys", &[("name", "Body target")])
        .await;
    let url = |path: &str| format!("{}{path}", app.base);
    let problem = |res: reqwest::Response| async move {
        let status = res.status();
        assert_eq!(
            res.headers()["content-type"],
            "application/problem+json",
            "{status}"
        );
        let p: Value = res.json().await.unwrap();
        assert_eq!(p["status"], status.as_u16());
        (status, p["code"].as_str().unwrap_or_default().to_owned())
    };
    let key_path = format!("/api/v1/keys/{}", target.id);
    let regen_path = format!("/api/v1/keys/{}/regenerate", target.id);

    // Without a JSON content type: 415, whatever the body.
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        for (method, path, body) in [
            ("POST", "/api/v1/keys", r#"{"name":"untyped"}"#),
            ("PATCH", key_path.as_str(), r#"{"name":"untyped"}"#),
            ("POST", regen_path.as_str(), r#"{"grace":"1h"}"#),
        ] {
            let mut rb = http
                .request(method.parse().unwrap(), url(path))
                .bearer_auth(&manager.secret)
                .body(body);
            if let Some(ct) = content_type {
                rb = rb.header("content-type", ct);
            }
            let (s, code) = problem(rb.send().await.unwrap()).await;
            assert_eq!(
                (s, code.as_str()),
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE"),
                "{method} {path} as {content_type:?}"
            );
        }
    }
    let (_, page) = api.get("/api/v1/keys?q=untyped").await;
    assert!(ids(&page).is_empty(), "nothing made from an untyped body");
    // JSON with parameters is JSON.
    let res = http
        .post(url("/api/v1/keys"))
        .bearer_auth(&manager.secret)
        .header("content-type", "application/json; charset=utf-8")
        .body(r#"{"name":"typed","kind":"workspace"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    // Regenerate without a body needs no content type (documented
    // optional).
    let res = http
        .post(url(&regen_path))
        .bearer_auth(&manager.secret)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    // A member named twice: refused, nothing changed.
    for (method, path, body) in [
        (
            "POST",
            "/api/v1/keys",
            r#"{"name":"twice","kind":"workspace","name":"other"}"#,
        ),
        (
            "POST",
            "/api/v1/keys",
            r#"{"name":"twice","kind":"workspace","tags":["a"],"tags":["b"]}"#,
        ),
        (
            "PATCH",
            key_path.as_str(),
            r#"{"name":"twice","name":"other"}"#,
        ),
        ("POST", regen_path.as_str(), r#"{"grace":"7d","grace":"0"}"#),
    ] {
        let res = http
            .request(method.parse().unwrap(), url(path))
            .bearer_auth(&manager.secret)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let (s, code) = problem(res).await;
        assert_eq!(
            (s, code.as_str()),
            (StatusCode::BAD_REQUEST, "BAD_REQUEST"),
            "{method} {path} {body}"
        );
    }
    let (_, page) = api.get("/api/v1/keys?q=twice").await;
    assert!(ids(&page).is_empty());
    let (_, page) = api.get("/api/v1/keys?q=other").await;
    assert!(ids(&page).is_empty());
    let (_, key) = api.get(&key_path).await;
    assert_eq!(key["name"], "Body target");

    // Too large, with a declared length: 413 as a problem.
    let big = format!(
        r#"{{"name":"big","kind":"workspace","description":"{}"}}"#,
        "x".repeat(70 * 1024)
    );
    let res = http
        .post(url("/api/v1/keys"))
        .bearer_auth(&manager.secret)
        .header("content-type", "application/json")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    let (s, code) = problem(res).await;
    assert_eq!(
        (s, code.as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE")
    );
    // And chunked, with no length declared.
    let (s, head, body) = raw_http(
        &app.base,
        format!(
            "POST /api/v1/keys HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{big}\r\n0\r\n\r\n",
            manager.secret,
            big.len()
        ),
    )
    .await;
    assert_eq!(s, 413, "{head}{body}");
    assert!(
        head.contains("content-type: application/problem+json"),
        "{head}"
    );
    assert!(body.contains("PAYLOAD_TOO_LARGE"), "{body}");
    let (_, page) = api.get("/api/v1/keys?q=big").await;
    assert!(ids(&page).is_empty());
}

/// What the OpenAPI document declares is what the server does: the
/// optional regenerate body is an object or nothing (not `null`), grace is
/// one of its four values (an empty one is refused and ends nothing), and
/// the limits of names and of `Idempotency-Key` are declared as enforced.
/// Every text with a `maxLength` in a create request counts it as sent:
/// the server drops spaces around a text, which a JSON Schema cannot say,
/// so one character over the limit with a space (or U+0085, a Unicode
/// space, as schemathesis sent) is refused, and changes nothing, where it
/// used to be trimmed and accepted against the document.
#[tokio::test]
async fn every_text_limit_counts_the_text_as_sent() {
    let (app, admin) = spawn_ready().await;
    let areas = ["keys", "service-accounts", "plans", "webhooks"];
    let manager = manager_of(&admin, "Limits", &areas).await;
    let api = Api::new(&app.base, &manager.secret);
    let (_, doc) = api.get("/api/v1/openapi.json").await;
    let hook = |n: usize| format!("http://127.0.0.1:9/{}", "h".repeat(n - 19));
    // (path, schema, field, limit, body with that field set to the text)
    type Body = fn(usize, String) -> Value;
    let rows: [(&str, &str, &str, usize, Body); 7] = [
        (
            "/api/v1/keys",
            "CreateKeyRequest",
            "name",
            100,
            |_, v| json!({"name": v, "kind": "workspace"}),
        ),
        (
            "/api/v1/service-accounts",
            "CreateServiceAccountRequest",
            "name",
            100,
            |_, v| json!({ "name": v }),
        ),
        (
            "/api/v1/service-accounts",
            "CreateServiceAccountRequest",
            "description",
            500,
            |i, v| json!({"name": format!("Account {i}"), "description": v}),
        ),
        (
            "/api/v1/plans",
            "CreatePlanRequest",
            "name",
            60,
            |_, v| json!({ "name": v }),
        ),
        (
            "/api/v1/plans",
            "CreatePlanRequest",
            "description",
            500,
            |i, v| json!({"name": format!("Plan {i}"), "description": v}),
        ),
        (
            "/api/v1/webhooks",
            "CreateWebhookRequest",
            "url",
            2000,
            |_, v| json!({"url": v, "event_types": ["*"]}),
        ),
        (
            "/api/v1/webhooks",
            "CreateWebhookRequest",
            "description",
            500,
            |_, v| json!({"url": "http://127.0.0.1:9/hook", "description": v, "event_types": ["*"]}),
        ),
    ];
    for (i, (path, schema, field, limit, body)) in rows.into_iter().enumerate() {
        let declared = &doc["components"]["schemas"][schema]["properties"][field]["maxLength"];
        assert_eq!(declared, limit, "{schema}.{field}");
        let full = if field == "url" {
            hook(limit)
        } else {
            "a".repeat(limit)
        };
        // The ids listed (a listed key's "last used" may move meanwhile:
        // the manager's own, written by a flush).
        let listed = |page: Value| -> Vec<String> {
            let items = page
                .as_object()
                .and_then(|o| o.values().find_map(Value::as_array));
            items
                .unwrap_or_else(|| panic!("{path}: no list in {page}"))
                .iter()
                .map(|item| item["id"].as_str().unwrap().to_owned())
                .collect()
        };
        let before = listed(api.get(path).await.1);
        for pad in [" ", "\u{85}"] {
            let over = match field {
                // A padded address ends with the pad; others start with it.
                "url" => format!("{full}{pad}"),
                _ => format!("{pad}{full}"),
            };
            let (s, p) = api.post(path, body(i, over)).await;
            assert_eq!(
                (s, p["errors"][0]["field"].as_str()),
                (StatusCode::UNPROCESSABLE_ENTITY, Some(field)),
                "{path} {field}: {} characters as sent: {p}",
                limit + 1
            );
        }
        let after = listed(api.get(path).await.1);
        assert_eq!(before, after, "{path}: a refused create changed nothing");
        let (s, p) = api.post(path, body(i, full)).await;
        assert_eq!(
            s,
            StatusCode::CREATED,
            "{path} {field}: {limit} characters: {p}"
        );
    }
}

#[tokio::test]
async fn every_list_limit_counts_the_items_as_sent() {
    // Repeated (or blank) items are kept once, but only within the
    // document's maxItems: a list longer than it is refused as sent, as
    // schemathesis expects (it found a plan of 101 blank addresses stored).
    let (app, admin) = spawn_ready().await;
    let manager = manager_of(&admin, "Lists", &["keys", "plans", "webhooks"]).await;
    let api = Api::new(&app.base, &manager.secret);
    let (_, doc) = api.get("/api/v1/openapi.json").await;
    // (path, schema, field, the item repeated, body with that field set)
    type Body = fn(usize, Vec<&str>) -> Value;
    let rows: [(&str, &str, &str, &str, Body); 3] = [
        (
            "/api/v1/keys",
            "CreateKeyRequest",
            "allowed_ips",
            "10.0.0.1",
            |_, v| json!({"name": "Listed", "kind": "workspace", "allowed_ips": v}),
        ),
        (
            "/api/v1/plans",
            "CreatePlanRequest",
            "allowed_ips",
            "",
            |i, v| json!({"name": format!("Plan {i}"), "allowed_ips": v}),
        ),
        (
            "/api/v1/webhooks",
            "CreateWebhookRequest",
            "event_types",
            "*",
            |_, v| json!({"url": "http://127.0.0.1:9/hook", "event_types": v}),
        ),
    ];
    for (i, (path, schema, field, item, body)) in rows.into_iter().enumerate() {
        let limit = doc["components"]["schemas"][schema]["properties"][field]["maxItems"]
            .as_u64()
            .unwrap_or_else(|| panic!("{schema}.{field} declares maxItems"))
            as usize;
        let count = |page: Value| -> usize {
            page.as_object()
                .and_then(|o| o.values().find_map(Value::as_array))
                .unwrap_or_else(|| panic!("{path}: no list in {page}"))
                .len()
        };
        let before = count(api.get(path).await.1);
        let (s, p) = api.post(path, body(i, vec![item; limit + 1])).await;
        assert_eq!(
            (s, p["errors"][0]["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(field)),
            "{path} {field}: {} items: {p}",
            limit + 1
        );
        assert_eq!(count(api.get(path).await.1), before, "{path}: nothing made");
        let (s, p) = api.post(path, body(i, vec![item; limit])).await;
        assert_eq!(s, StatusCode::CREATED, "{path} {field}: {limit} items: {p}");
    }
}

#[tokio::test]
async fn the_document_declares_what_the_server_enforces() {
    let (app, admin) = spawn_ready().await;
    let manager = admin_workspace_manager(&admin).await;
    let api = Api::new(&app.base, &manager.secret);
    let http = reqwest::Client::new();
    let doc: Value = reqwest::get(format!("{}/api/v1/openapi.json", app.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let regenerate = &doc["paths"]["/api/v1/keys/{id}/regenerate"]["post"];
    let body = &regenerate["requestBody"];
    assert_eq!(body["required"], false, "{body}");
    assert!(!body.to_string().contains("null"), "no null body: {body}");
    // The server agrees: null is refused, no body is fine.
    let target = admin
        .create_key("/workspace/keys", &[("name", "Rotated")])
        .await;
    let regen_url = format!("{}/api/v1/keys/{}/regenerate", app.base, target.id);
    let res = http
        .post(&regen_url)
        .bearer_auth(&manager.secret)
        .header("content-type", "application/json")
        .body("null")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    // grace "" breaks the declared pattern: 422, and the secret still works.
    let grace = &doc["components"]["schemas"]["RegenerateRequest"]["properties"]["grace"];
    assert_eq!(grace["pattern"], "^(0|1h|24h|7d)$");
    for bad in ["", " 1h", "now", "1H"] {
        let (s, p) = api
            .post(
                &format!("/api/v1/keys/{}/regenerate", target.id),
                json!({ "grace": bad }),
            )
            .await;
        assert_eq!(
            (s, p["code"].as_str(), p["errors"][0]["field"].as_str()),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                Some("VALIDATION_FAILED"),
                Some("grace")
            ),
            "{bad:?}"
        );
    }
    assert_eq!(
        me(&app.base, &target.secret).await.0,
        StatusCode::OK,
        "the old secret was not ended"
    );
    // Idempotency-Key: 1 to 255 visible ASCII characters, on both.
    for path in ["/api/v1/keys", "/api/v1/keys/{id}/regenerate"] {
        let params = doc["paths"][path]["post"]["parameters"].as_array().unwrap();
        let idem = params
            .iter()
            .find(|p| p["name"] == "Idempotency-Key")
            .unwrap_or_else(|| panic!("{path} declares Idempotency-Key"));
        assert_eq!(idem["in"], "header");
        assert_eq!(idem["required"], false);
        assert_eq!(
            idem["schema"],
            json!({"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"}),
            "{path}"
        );
    }
    let res = http
        .post(format!("{}/api/v1/keys", app.base))
        .bearer_auth(&manager.secret)
        .header("Idempotency-Key", "x".repeat(256))
        .json(&json!({"name": "long idem", "kind": "workspace"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    // Names: 1 to 100 characters as sent, with a visible one.
    for schema in ["CreateKeyRequest", "UpdateKeyRequest"] {
        let name = &doc["components"]["schemas"][schema]["properties"]["name"];
        assert_eq!(name["minLength"], 1, "{schema}");
        assert_eq!(name["maxLength"], 100, "{schema}");
        assert!(name["pattern"].is_string(), "{schema}");
    }
    let padded = format!(" {}", "a".repeat(100));
    let (s, p) = api
        .post("/api/v1/keys", json!({"name": padded, "kind": "workspace"}))
        .await;
    assert_eq!(
        (s, p["errors"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("name")),
        "101 characters as sent: {p}"
    );
    let (s, p) = api
        .patch(
            &format!("/api/v1/keys/{}", target.id),
            json!({ "name": padded }),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    let (s, _) = api
        .post(
            "/api/v1/keys",
            json!({"name": "a".repeat(100), "kind": "workspace"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    // Key ids in paths: `key_` and letters or digits; anything else is
    // not found (or, with a control character, a bad request). (Webhook
    // endpoints' are `whk_…`, service accounts' `sa_…`, plans' `plan_…`.)
    for (path, ops) in doc["paths"].as_object().unwrap() {
        if !path.contains("{id}")
            || path.starts_with("/api/v1/webhooks")
            || path.starts_with("/api/v1/service-accounts")
        {
            continue;
        }
        let expected = if path.starts_with("/api/v1/plans") {
            "^plan_[0-9A-Za-z]+$"
        } else {
            "^key_[0-9A-Za-z]+$"
        };
        for (method, op) in ops.as_object().unwrap() {
            let id = op["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == "id")
                .unwrap();
            assert_eq!(id["schema"]["pattern"], expected, "{method} {path}");
        }
    }
    assert_eq!(
        api.get("/api/v1/keys/not-a-key").await.0,
        StatusCode::NOT_FOUND
    );
    // forward-auth answers every method, and is declared so.
    let forward = doc["paths"]["/api/v1/forward-auth"].as_object().unwrap();
    let mut methods: Vec<&str> = forward.keys().map(String::as_str).collect();
    methods.sort();
    assert_eq!(
        methods,
        [
            "delete", "get", "head", "options", "patch", "post", "put", "trace"
        ]
    );
    let ids: std::collections::BTreeSet<&str> = forward
        .values()
        .map(|op| op["operationId"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 8, "one operation id each: {ids:?}");
}
