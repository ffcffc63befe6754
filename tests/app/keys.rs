//! Key pages: create and the one-time view, list and search, actions,
//! removal of owners, and who may see what.

use crate::helpers::*;
use reqwest::StatusCode;

fn count_keys(c: &mut keyward::db::DbConn) -> i64 {
    use diesel::prelude::*;
    keyward::db::schema::api_keys::table
        .count()
        .get_result(c)
        .unwrap()
}

/// Every text stored in the database, to check that a secret is nowhere.
fn all_stored_text(c: &mut keyward::db::DbConn) -> String {
    use diesel::prelude::*;
    use keyward::db::schema::{api_keys, events, people, sessions, workspaces};
    let mut out = String::new();
    for k in api_keys::table
        .select(keyward::db::keys::ApiKey::as_select())
        .load(c)
        .unwrap()
    {
        out.push_str(&format!("{k:?}"));
    }
    for e in events::table
        .select(keyward::db::events::Event::as_select())
        .load(c)
        .unwrap()
    {
        out.push_str(&format!("{e:?}"));
    }
    for s in sessions::table
        .select(keyward::db::sessions::Session::as_select())
        .load(c)
        .unwrap()
    {
        out.push_str(&format!("{s:?}"));
    }
    for p in people::table
        .select(keyward::db::people::Person::as_select())
        .load(c)
        .unwrap()
    {
        out.push_str(&format!("{p:?}"));
    }
    for u in keyward::db::users::with_person()
        .select(keyward::db::users::User::as_select())
        .load(c)
        .unwrap()
    {
        out.push_str(&format!("{u:?}"));
    }
    for w in workspaces::table
        .select(keyward::db::workspaces::Workspace::as_select())
        .load(c)
        .unwrap()
    {
        out.push_str(&format!("{w:?}"));
    }
    out
}

#[tokio::test]
async fn a_new_key_is_shown_exactly_once() {
    let (app, admin) = spawn_ready().await;
    let (_, form) = admin.page("/account/keys/new").await;
    let nonce = hidden(&form, "nonce").unwrap();
    let fields = [
        ("nonce", nonce.as_str()),
        ("name", "Grafana"),
        ("environment", "live"),
        ("expiry", "30"),
        ("permissions", "data:read"),
    ];
    let res = admin.post_form("/account/keys", &fields).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body = res.text().await.unwrap();
    assert!(body.contains("Save your key"));
    assert!(body.contains("This is the only time the key is shown."));
    let secret = shown_secret(&body).unwrap();
    assert!(
        secret.starts_with("sk_live_") && secret.len() == 57,
        "{secret}"
    );
    let tail = &secret[secret.len() - 4..];

    // Submitting the same form again (reload) creates nothing and shows no secret.
    let res = admin.post_form("/account/keys", &fields).await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    let again = res.text().await.unwrap();
    assert!(again.contains("already submitted"));
    assert!(shown_secret(&again).is_none() && !again.contains(&secret[8..]));
    assert_eq!(app.with_db(count_keys).await, 1);

    // Afterwards only the masked excerpt appears.
    let (_, list) = admin.page("/account/keys").await;
    assert!(list.contains(&format!("sk_live_…{tail}")));
    assert!(!list.contains(&secret[8..]));
    assert!(list.contains("Grafana") && list.contains("data:read") && list.contains("Active"));

    // Nowhere in the database: only its digest.
    let stored = app.with_db(all_stored_text).await;
    assert!(!stored.contains(&secret[8..]), "secret stored somewhere");
    assert!(stored.contains(&keyward::domain::keys::digest(&secret)));
    let created = app
        .events()
        .await
        .into_iter()
        .find(|e| e.action == "key.created")
        .unwrap();
    assert_eq!(created.ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(created.actor_label, ADMIN_EMAIL);
}

#[tokio::test]
async fn bad_key_input_is_refused_and_changes_nothing() {
    let (app, admin) = spawn_ready().await;
    for (fields, message) in [
        (vec![("name", " ")], "Name is required"),
        (vec![("environment", "prod-eu")], "Choose an environment"),
        (vec![("expiry", "45")], "Choose an expiry"),
        (
            vec![("expiry", "custom"), ("expiry_date", "2001-01-01")],
            "The expiry date must be in the future.",
        ),
        (
            vec![("rate_limit", "-5")],
            "Rate limit must be a whole number",
        ),
        (
            vec![("permissions", "root")],
            "root&#34; is not a permission of this workspace.",
        ),
        (vec![("tags", "bad tag!")], "is not valid"),
        (vec![("resources", "line 1")], "is not valid"),
    ] {
        let res = admin.submit_new_key("/account/keys", &fields).await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{fields:?}");
        let body = res.text().await.unwrap();
        assert!(body.contains(message), "{message:?} for {fields:?}");
        assert!(shown_secret(&body).is_none());
    }
    assert_eq!(app.with_db(count_keys).await, 0);
    assert!(
        !app.event_actions()
            .await
            .iter()
            .any(|a| a.starts_with("key."))
    );

    // htmx gets the form fragment back, with the input kept.
    let (_, form) = admin.page("/account/keys/new").await;
    let nonce = hidden(&form, "nonce").unwrap();
    let res = admin
        .post_htmx(
            "/account/keys",
            &[
                ("nonce", &nonce),
                ("name", ""),
                ("environment", "live"),
                ("expiry", "90"),
                ("description", "kept text"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = res.text().await.unwrap();
    assert!(!body.contains("<html") && body.contains("kept text"));
}

#[tokio::test]
async fn search_finds_keys_by_name_id_owner_tag_and_value() {
    let (app, admin) = spawn_ready().await;
    let bob = app
        .add_user(&admin, "bob@example.com", "normal", "bob's long password")
        .await;
    let grafana = admin
        .create_key(
            "/workspace/keys",
            &[("name", "Grafana dashboards"), ("tags", "monitoring")],
        )
        .await;
    let erp = admin
        .create_key(
            "/workspace/keys",
            &[("name", "ERP sync"), ("environment", "dev")],
        )
        .await;
    let bobs = bob
        .create_key("/account/keys", &[("name", "Bob's script")])
        .await;

    let names = |body: &str| {
        ["Grafana dashboards", "ERP sync", "Bob's script"]
            .into_iter()
            .filter(|n| body.contains(&n.replace('\'', "&#39;")) || body.contains(n))
            .collect::<Vec<_>>()
    };
    let search = |q: &str| format!("/workspace/keys?view=all&q={}", urlencode(q));
    assert_eq!(
        names(&admin.page(&search("grafana")).await.1),
        vec!["Grafana dashboards"]
    );
    assert_eq!(
        names(&admin.page(&search(&erp.id)).await.1),
        vec!["ERP sync"]
    );
    assert_eq!(
        names(&admin.page(&search(&erp.id[..12])).await.1),
        vec!["ERP sync"],
        "part of a key id finds it too"
    );
    assert_eq!(
        names(&admin.page(&search("bob@example")).await.1),
        vec!["Bob's script"]
    );
    assert_eq!(
        names(&admin.page(&search("monitoring")).await.1),
        vec!["Grafana dashboards"]
    );
    assert_eq!(
        names(&admin.page(&search("sk_dev_")).await.1),
        vec!["ERP sync"]
    );
    let excerpt = format!("sk_live_…{}", &grafana.secret[grafana.secret.len() - 4..]);
    assert_eq!(
        names(&admin.page(&search(&excerpt)).await.1),
        vec!["Grafana dashboards"]
    );
    let prefix = &bobs.secret[..12];
    assert!(names(&admin.page(&search(prefix)).await.1).contains(&"Bob's script"));
    let (_, none) = admin.page(&search("no such thing")).await;
    assert!(none.contains("No keys match"));

    // A pasted full key is found by digest, and the address never keeps it.
    let res = admin.get(&search(&grafana.secret)).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let to = location(&res);
    assert!(
        to.contains(&grafana.id) && !to.contains(&grafana.secret[8..]),
        "{to}"
    );
    assert_eq!(names(&admin.page(&to).await.1), vec!["Grafana dashboards"]);
    let res = admin
        .client
        .get(admin.url(&search(&grafana.secret)))
        .header("HX-Request", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let pushed = res.headers()["hx-push-url"].to_str().unwrap().to_owned();
    assert!(pushed.contains(&grafana.id) && !pushed.contains(&grafana.secret[8..]));
    let body = res.text().await.unwrap();
    assert!(body.trim_start().starts_with("<div id=\"keys-results\">"));
    assert_eq!(names(&body), vec!["Grafana dashboards"]);

    // Workspace view: only workspace keys; personal view: only one's own.
    let (_, ws) = admin.page("/workspace/keys").await;
    assert_eq!(names(&ws), vec!["Grafana dashboards", "ERP sync"]);
    let (_, all) = admin.page("/workspace/keys?view=all").await;
    assert!(
        all.contains("Test User (bob@example.com)"),
        "all-keys view shows owners"
    );
    let (_, mine) = bob.page("/account/keys").await;
    assert_eq!(names(&mine), vec!["Bob's script"]);
    let (_, bob_search) = bob
        .page(&format!("/account/keys?q={}", urlencode(&grafana.secret)))
        .await;
    assert!(
        names(&bob_search).is_empty(),
        "search never reaches other people's keys"
    );
}

fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("", s)])
        .unwrap()
        .trim_start_matches('=')
        .to_owned()
}

#[tokio::test]
async fn edit_changes_details_but_not_permissions() {
    let (app, admin) = spawn_ready().await;
    let k = admin
        .create_key(
            "/account/keys",
            &[("name", "Old name"), ("permissions", "data:read")],
        )
        .await;
    let (status, form) = admin.page(&format!("/keys/{}/edit", k.id)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(form.contains("Permissions</strong> (fixed)"));
    let res = admin
        .post_form(
            &format!("/keys/{}/edit", k.id),
            &[("name", ""), ("rate_limit", "abc")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let res = admin
        .post_form(
            &format!("/keys/{}/edit", k.id),
            &[
                ("name", "New name"),
                ("description", "for dashboards"),
                ("tags", "a, b"),
                ("rate_limit", "60"),
                ("permissions", "data:write"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/account/keys");
    let (_, json) = (
        me(&app.base, &k.secret).await.0,
        me(&app.base, &k.secret).await.2,
    );
    assert_eq!(json["name"], "New name");
    assert_eq!(json["rate_limit_per_minute"], 60);
    assert_eq!(
        json["permissions"],
        serde_json::json!(["data:read"]),
        "permissions are fixed"
    );
    let updated = app
        .events()
        .await
        .into_iter()
        .find(|e| e.action == "key.updated")
        .unwrap();
    assert!(updated.details.contains("Old name") && updated.details.contains("New name"));
}

#[tokio::test]
async fn regenerate_now_or_with_a_grace_period() {
    let (app, admin) = spawn_ready_with(|c| {
        c.verifier.cache_ttl = std::time::Duration::from_secs(1);
    })
    .await;
    let k = admin
        .create_key(
            "/account/keys",
            &[("name", "rotating"), ("permissions", "data:read")],
        )
        .await;
    let regenerate = |grace: &'static str| {
        let admin = &admin;
        let id = k.id.clone();
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
            let body = res.text().await.unwrap();
            (
                shown_secret(&body).expect("new secret shown once"),
                body,
                nonce,
            )
        }
    };

    let (second, _, nonce) = regenerate("0").await;
    assert_ne!(second, k.secret);
    let (status, _, json) = me(&app.base, &k.secret).await;
    assert_eq!(
        (status, json["error"]["code"].as_str().unwrap()),
        (StatusCode::UNAUTHORIZED, "EXPIRED"),
        "old secret dies at once"
    );
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("replaced when the key was regenerated")
    );
    let (status, _, json) = me(&app.base, &second).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (json["id"].clone(), json["name"].clone()),
        (serde_json::json!(k.id), serde_json::json!("rotating"))
    );
    assert_eq!(json["permissions"], serde_json::json!(["data:read"]));
    // Re-submitting the same confirmation does not rotate again.
    let res = admin
        .post_form(
            &format!("/keys/{}/regenerate", k.id),
            &[("grace", "0"), ("nonce", &nonce)],
        )
        .await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    assert_eq!(me(&app.base, &second).await.0, StatusCode::OK);

    let (third, body, _) = regenerate("24h").await;
    assert!(body.contains("The old secret keeps working until"));
    assert_eq!(
        me(&app.base, &second).await.0,
        StatusCode::OK,
        "old secret works during the grace period"
    );
    assert_eq!(me(&app.base, &third).await.0, StatusCode::OK);
    let (_, list) = admin.page("/account/keys").await;
    assert!(list.contains("Old secret works until"));

    // When the grace period is over, the old secret is refused.
    let id = k.id.clone();
    app.with_db(move |c| {
        use diesel::prelude::*;
        use keyward::db::schema::api_keys;
        let past = chrono::Utc::now().naive_utc() - chrono::TimeDelta::seconds(1);
        diesel::update(api_keys::table.find(id))
            .set(api_keys::previous_expires_at.eq(past))
            .execute(c)
            .unwrap();
    })
    .await;
    // The grace period is checked on every request against the clock; this
    // edit moves the end into the past behind the app's back, so wait out
    // the (test-short) safety lifetime of the cached row.
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    assert_eq!(
        me_code(&app.base, &second).await,
        (StatusCode::UNAUTHORIZED, "EXPIRED".into())
    );
    assert_eq!(me(&app.base, &third).await.0, StatusCode::OK);
    assert_eq!(
        app.event_actions()
            .await
            .iter()
            .filter(|a| *a == "key.regenerated")
            .count(),
        2
    );
}

#[tokio::test]
async fn revoke_one_revoke_many_and_delete() {
    let (app, admin) = spawn_ready().await;
    let a = admin
        .create_key("/workspace/keys", &[("name", "alpha")])
        .await;
    let b = admin
        .create_key("/workspace/keys", &[("name", "beta")])
        .await;
    let c = admin
        .create_key("/workspace/keys", &[("name", "gamma")])
        .await;

    let (status, confirm) = admin.page(&format!("/keys/{}/revoke", a.id)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(confirm.contains("This cannot be undone."));
    let res = admin
        .post_form(
            &format!("/keys/{}/revoke", a.id),
            &[("return_to", "/workspace/keys")],
        )
        .await;
    assert_eq!(location(&res), "/workspace/keys");
    assert_eq!(
        me_code(&app.base, &a.secret).await,
        (StatusCode::UNAUTHORIZED, "REVOKED".into())
    );
    let res = admin
        .post_form(&format!("/keys/{}/revoke", a.id), &[])
        .await;
    assert_eq!(
        res.status(),
        StatusCode::CONFLICT,
        "a revoked key cannot be revoked again (409, as over the API)"
    );
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("Only active or inactive keys can be revoked.")
    );
    let (_, list) = admin.page("/workspace/keys").await;
    assert!(list.contains("Revoked"), "revoked keys stay listed");

    // Bulk: a confirmation, then all selected keys at once.
    let res = admin
        .post_form("/keys/bulk-revoke", &[("ids", &b.id), ("ids", &c.id)])
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.unwrap().contains("Revoke 2 keys?"));
    assert_eq!(
        me(&app.base, &b.secret).await.0,
        StatusCode::OK,
        "nothing happens before confirming"
    );
    let res = admin.post_form("/keys/bulk-revoke", &[]).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res = admin
        .post_form(
            "/keys/bulk-revoke/confirm",
            &[("ids", &b.id), ("ids", &c.id), ("ids", "key_doesnotexist")],
        )
        .await;
    assert_eq!(
        res.status(),
        StatusCode::NOT_FOUND,
        "an unknown id fails the whole request"
    );
    assert_eq!(me(&app.base, &b.secret).await.0, StatusCode::OK);
    let res = admin
        .post_htmx(
            "/keys/bulk-revoke/confirm",
            &[
                ("ids", &b.id),
                ("ids", &c.id),
                ("return_to", "/workspace/keys"),
            ],
        )
        .await;
    assert_eq!(res.headers()["hx-redirect"], "/workspace/keys");
    assert_eq!(me_code(&app.base, &b.secret).await.1, "REVOKED");
    assert_eq!(me_code(&app.base, &c.secret).await.1, "REVOKED");
    let (_, list) = admin.page("/workspace/keys").await;
    assert!(list.contains("2 keys revoked."));
    let bulk_events = app
        .events()
        .await
        .into_iter()
        .filter(|e| e.action == "key.revoked" && e.details.contains("\"bulk\":true"))
        .count();
    assert_eq!(bulk_events, 2);

    // Delete: gone from the list, refused by the API, its events kept.
    let res = admin
        .post_form(&format!("/keys/{}/delete", a.id), &[])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (_, list) = admin.page("/workspace/keys").await;
    assert!(list.contains("alpha&#34; was deleted. Its events stay in the audit trail."));
    assert!(
        !list[..list.find("Most used keys").unwrap()].contains("\">alpha</a>"),
        "deleted keys leave the list"
    );
    assert_eq!(me_code(&app.base, &a.secret).await.1, "REVOKED");
    assert_eq!(
        admin.get(&format!("/keys/{}/edit", a.id)).await.status(),
        StatusCode::NOT_FOUND
    );
    let events = app.events().await;
    assert!(
        events
            .iter()
            .any(|e| e.action == "key.deleted" && e.target_id.as_deref() == Some(&a.id))
    );
    assert!(
        events
            .iter()
            .any(|e| e.action == "key.created" && e.target_id.as_deref() == Some(&a.id))
    );
}

#[tokio::test]
async fn removing_a_user_revokes_their_keys_and_flags_what_they_created() {
    let (app, admin) = spawn_ready().await;
    let bob = app
        .add_user(&admin, "bob@example.com", "admin", "bob's long password")
        .await;
    let personal = bob
        .create_key("/account/keys", &[("name", "bob personal")])
        .await;
    let shared = bob
        .create_key("/workspace/keys", &[("name", "bob made this")])
        .await;
    let bob_id = app
        .with_db(|c| {
            keyward::db::users::find_active_by_email(c, "bob@example.com")
                .unwrap()
                .unwrap()
                .id
        })
        .await;
    assert_eq!(me(&app.base, &personal.secret).await.0, StatusCode::OK);

    let res = admin
        .post_form(&format!("/workspace/users/{bob_id}/remove"), &[])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(me_code(&app.base, &personal.secret).await.1, "REVOKED");
    assert_eq!(
        me(&app.base, &shared.secret).await.0,
        StatusCode::OK,
        "workspace keys survive staff changes"
    );
    let (_, list) = admin.page("/workspace/keys").await;
    assert!(list.contains("Creator removed"));
    let revoked = app
        .events()
        .await
        .into_iter()
        .find(|e| e.action == "key.revoked")
        .unwrap();
    assert!(revoked.details.contains("owner removed"));
    // Only admins review (the policy decides; a normal user sees no such key).
    let nina = app
        .add_user(&admin, "nina@example.com", "normal", "nina's long password")
        .await;
    let res = nina
        .post_form(&format!("/keys/{}/review", shared.id), &[])
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let (_, list) = admin.page("/workspace/keys").await;
    assert!(list.contains("Creator removed"));

    admin
        .post_form(&format!("/keys/{}/review", shared.id), &[])
        .await;
    let (_, list) = admin.page("/workspace/keys").await;
    assert!(!list.contains("Creator removed"));
}

#[tokio::test]
async fn who_may_see_and_touch_which_keys() {
    let (app, admin) = spawn_ready().await;
    let nina = app
        .add_user(&admin, "nina@example.com", "normal", "nina's long password")
        .await;
    let otto = app
        .add_user(
            &admin,
            "otto@example.com",
            "operator",
            "otto's long password",
        )
        .await;
    let ws_key = admin
        .create_key("/workspace/keys", &[("name", "integration")])
        .await;
    let admins_own = admin
        .create_key("/account/keys", &[("name", "admin personal")])
        .await;
    let ninas = nina
        .create_key("/account/keys", &[("name", "nina personal")])
        .await;

    // Normal users: their own keys only; everything else is "not found".
    assert_eq!(
        nina.get("/workspace/keys").await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        nina.get("/workspace/keys/new").await.status(),
        StatusCode::FORBIDDEN
    );
    for id in [&ws_key.id, &admins_own.id] {
        assert_eq!(
            nina.get(&format!("/keys/{id}/edit")).await.status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            nina.post_form(&format!("/keys/{id}/revoke"), &[])
                .await
                .status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            nina.post_form(&format!("/keys/{id}/disable"), &[])
                .await
                .status(),
            StatusCode::NOT_FOUND
        );
    }
    let res = nina
        .post_form(
            "/keys/bulk-revoke/confirm",
            &[("ids", &ninas.id), ("ids", &ws_key.id)],
        )
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(me(&app.base, &ws_key.secret).await.0, StatusCode::OK);
    assert_eq!(
        me(&app.base, &ninas.secret).await.0,
        StatusCode::OK,
        "nothing of a refused bulk request happens"
    );

    // Operators: no key pages at all.
    for path in ["/account/keys", "/account/keys/new", "/workspace/keys"] {
        assert_eq!(
            otto.get(path).await.status(),
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
    assert_eq!(
        otto.post_form(&format!("/keys/{}/revoke", ninas.id), &[])
            .await
            .status(),
        StatusCode::NOT_FOUND,
        "an operator cannot even learn that the key exists"
    );
    let res = otto.submit_new_key_raw("/account/keys").await;
    assert_eq!(res, StatusCode::FORBIDDEN);

    // Admins see every key with its owner and may switch off anyone's key,
    // but not edit, regenerate or delete someone else's personal key.
    let (_, all) = admin.page("/workspace/keys?view=all").await;
    assert!(all.contains("nina personal") && all.contains("Test User (nina@example.com)"));
    assert_eq!(
        admin
            .get(&format!("/keys/{}/edit", ninas.id))
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        admin
            .get(&format!("/keys/{}/regenerate", ninas.id))
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        admin
            .post_form(&format!("/keys/{}/delete", ninas.id), &[])
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        admin
            .post_form(&format!("/keys/{}/disable", ninas.id), &[])
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(me_code(&app.base, &ninas.secret).await.1, "DISABLED");
    let (_, mine) = admin.page("/account/keys").await;
    assert!(mine.contains("\">admin personal</a>") && !mine.contains("\">nina personal</a>"));

    // Another workspace's admin finds none of these keys.
    let zed = app.other_workspace_admin().await;
    let (_, theirs) = zed.page("/workspace/keys?view=all").await;
    assert!(theirs.contains("No API keys in this workspace yet."));
    assert!(!theirs.contains("\">integration</a>") && !theirs.contains("nina personal"));
    assert_eq!(
        zed.get(&format!("/keys/{}/edit", ws_key.id)).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        zed.post_form(&format!("/keys/{}/revoke", ws_key.id), &[])
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(me(&app.base, &ws_key.secret).await.0, StatusCode::OK);
}

#[tokio::test]
async fn long_lists_are_paginated_without_gaps_or_repeats() {
    let (app, admin) = spawn_ready().await;
    // Seed 30 keys through the same database function the UI uses.
    app.with_db(|c| {
        let admin = keyward::db::users::find_active_by_email(c, ADMIN_EMAIL)
            .unwrap()
            .unwrap();
        let ctx = keyward::db::events::AuditContext {
            workspace_id: admin.workspace_id.clone(),
            actor_id: Some(admin.id.clone()),
            actor_label: admin.email.clone(),
            ..Default::default()
        };
        for i in 0..30 {
            let (_, facts) =
                keyward::domain::keys::generate(keyward::domain::keys::Environment::Live);
            let name = format!("bulk-key-{i:02}");
            keyward::db::keys::create(
                c,
                &ctx,
                keyward::db::keys::NewKey::plain_workspace_key(&name, &facts, &format!("seed{i}")),
            )
            .unwrap();
        }
    })
    .await;
    let (_, first) = admin.page("/workspace/keys").await;
    let count = |body: &str| {
        (0..30)
            .filter(|i| body.contains(&format!("bulk-key-{i:02}<")))
            .collect::<Vec<_>>()
    };
    let page1 = count(&first);
    assert_eq!(page1.len(), 25);
    assert!(page1.contains(&29), "newest first");
    let marker = "rel=\"next\"";
    let next_at = first.find(marker).expect("next page link");
    let href_start = first[..next_at].rfind("href=\"").unwrap() + 6;
    let href = first[href_start..]
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    let (status, second) = admin.page(&href).await;
    assert_eq!(status, StatusCode::OK);
    let page2 = count(&second);
    assert_eq!(page2.len(), 5);
    assert!(page1.iter().all(|i| !page2.contains(i)));
    assert!(!second.contains(marker));
    assert_eq!(
        admin.get("/workspace/keys?after=garbage").await.status(),
        StatusCode::BAD_REQUEST
    );
}
