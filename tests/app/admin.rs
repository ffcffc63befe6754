//! Workspace administration: settings that govern keys, the audit trail,
//! usage, the key detail page and keys that expire soon.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::json;

fn count_events(app_events: &[keyward::db::events::Event], action: &str) -> usize {
    app_events.iter().filter(|e| e.action == action).count()
}

#[tokio::test]
async fn the_api_keys_switch_turns_every_key_off_and_on() {
    let (app, admin) = spawn_ready().await;
    let k = admin
        .create_key("/workspace/keys", &[("name", "dashboard")])
        .await;
    assert_eq!(
        me(&app.base, &k.secret).await.0,
        StatusCode::OK,
        "checked and cached"
    );

    let (status, confirm) = admin.page("/workspace/settings/api-keys/off").await;
    assert_eq!(status, StatusCode::OK);
    assert!(confirm.contains("Nothing is deleted"));
    let res = admin
        .post_form("/workspace/settings/api-keys", &[("enabled", "off")])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        me_code(&app.base, &k.secret).await,
        (StatusCode::UNAUTHORIZED, "API_KEYS_DISABLED".into()),
        "at once"
    );
    let (_, list) = admin.page("/workspace/keys").await;
    assert!(list.contains("API keys are switched off for this workspace."));
    assert!(
        !list.contains("href=\"/workspace/keys/new\""),
        "no create button"
    );
    assert_eq!(
        admin.get("/workspace/keys/new").await.status(),
        StatusCode::CONFLICT
    );
    let res = admin.submit_new_key_raw("/account/keys").await;
    assert_eq!(res, StatusCode::CONFLICT, "no key can be created");

    admin
        .post_form("/workspace/settings/api-keys", &[("enabled", "on")])
        .await;
    assert_eq!(
        me(&app.base, &k.secret).await.0,
        StatusCode::OK,
        "every key works as before"
    );
    let res = admin
        .post_form("/workspace/settings/api-keys", &[("enabled", "maybe")])
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let events = app.events().await;
    assert_eq!(count_events(&events, "settings.api_keys_disabled"), 1);
    assert_eq!(count_events(&events, "settings.api_keys_enabled"), 1);

    // Only admins reach the settings.
    let nina = app
        .add_user(&admin, "nina@example.com", "normal", "nina's long password")
        .await;
    assert_eq!(
        nina.get("/workspace/settings").await.status(),
        StatusCode::FORBIDDEN
    );
    let res = nina
        .post_form("/workspace/settings/api-keys", &[("enabled", "off")])
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(me(&app.base, &k.secret).await.0, StatusCode::OK);
}

#[tokio::test]
async fn invalid_limits_are_refused_and_change_nothing() {
    let (app, admin) = spawn_ready().await;
    for (fields, message) in [
        (
            [
                ("max_expiry_days", "abc"),
                ("max_keys_per_user", "100"),
                ("default_rate_limit", ""),
            ],
            "Maximum expiry must be a whole number of days",
        ),
        (
            [
                ("max_expiry_days", "0"),
                ("max_keys_per_user", "100"),
                ("default_rate_limit", ""),
            ],
            "Maximum expiry must be a whole number of days",
        ),
        (
            [
                ("max_expiry_days", ""),
                ("max_keys_per_user", "0"),
                ("default_rate_limit", ""),
            ],
            "Maximum keys per user must be a whole number from 1 to 1000.",
        ),
        (
            [
                ("max_expiry_days", ""),
                ("max_keys_per_user", "1001"),
                ("default_rate_limit", ""),
            ],
            "Maximum keys per user must be a whole number from 1 to 1000.",
        ),
        (
            [
                ("max_expiry_days", ""),
                ("max_keys_per_user", "10"),
                ("default_rate_limit", "-1"),
            ],
            "Rate limit must be a whole number",
        ),
    ] {
        let res = admin.post_form("/workspace/settings/limits", &fields).await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{fields:?}");
        assert!(res.text().await.unwrap().contains(message), "{message}");
    }
    let ws = app
        .with_db(|c| {
            keyward::db::users::find_active_by_email(c, ADMIN_EMAIL)
                .unwrap()
                .unwrap()
                .workspace_id
        })
        .await;
    let w = app
        .with_db(move |c| keyward::db::workspaces::get(c, &ws).unwrap())
        .await;
    assert_eq!(
        (w.max_expiry_days, w.max_keys_per_user, w.default_rate_limit),
        (None, 100, None)
    );
    assert_eq!(count_events(&app.events().await, "settings.changed"), 0);
}

#[tokio::test]
async fn maximum_expiry_and_default_rate_limit_shape_new_keys() {
    let (app, admin) = spawn_ready().await;
    let forever = admin
        .create_key("/account/keys", &[("name", "forever"), ("expiry", "never")])
        .await;
    let res = admin
        .post_form(
            "/workspace/settings/limits",
            &[
                ("max_expiry_days", "30"),
                ("max_keys_per_user", "100"),
                ("default_rate_limit", "120"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let changed: Vec<_> = app
        .events()
        .await
        .into_iter()
        .filter(|e| e.action == "settings.changed")
        .collect();
    assert_eq!(changed.len(), 2, "one event per changed value");
    assert!(
        changed
            .iter()
            .any(|e| e.details.contains("\"setting\":\"max_expiry_days\"")
                && e.details.contains("\"new\":30"))
    );
    assert!(
        changed
            .iter()
            .any(|e| e.details.contains("\"old\":null") && e.details.contains("\"new\":120"))
    );

    let (_, form) = admin.page("/account/keys/new").await;
    assert!(!form.contains("value=\"never\""), "never is not offered");
    assert!(!form.contains("value=\"90\"") && form.contains("value=\"30\""));
    assert!(
        form.contains("value=\"120\""),
        "default rate limit proposed"
    );
    assert!(
        form.contains("<option value=\"30\" selected>"),
        "the longest allowed preset is the default"
    );
    assert!(form.contains("at most 30 days"));
    for fields in [
        vec![("expiry", "90")],
        vec![("expiry", "never")],
        vec![("expiry", "custom"), ("expiry_date", "2099-01-01")],
    ] {
        let res = admin.submit_new_key("/account/keys", &fields).await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{fields:?}");
        assert!(res.text().await.unwrap().contains("at most 30 days"));
    }
    let ok = admin
        .create_key(
            "/account/keys",
            &[("name", "short"), ("expiry", "30"), ("rate_limit", "120")],
        )
        .await;
    assert_eq!(
        me(&app.base, &ok.secret).await.2["rate_limit_per_minute"],
        120
    );

    // Existing keys keep their expiry; a regeneration is held to the maximum.
    assert_eq!(
        me(&app.base, &forever.secret).await.2["expires_at"],
        serde_json::Value::Null
    );
    let (_, confirm) = admin
        .page(&format!("/keys/{}/regenerate", forever.id))
        .await;
    let nonce = hidden(&confirm, "nonce").unwrap();
    let res = admin
        .post_form(
            &format!("/keys/{}/regenerate", forever.id),
            &[("grace", "0"), ("nonce", &nonce)],
        )
        .await;
    let body = res.text().await.unwrap();
    assert!(body.contains("Its expiry was shortened to"), "{body}");
    let new_secret = shown_secret(&body).unwrap();
    let expires = me(&app.base, &new_secret).await.2["expires_at"]
        .as_str()
        .unwrap()
        .to_owned();
    let expires = chrono::DateTime::parse_from_rfc3339(&expires)
        .unwrap()
        .with_timezone(&chrono::Utc);
    let days = (expires - chrono::Utc::now()).num_hours() as f64 / 24.0;
    assert!((29.9..=30.1).contains(&days), "{days}");
}

#[tokio::test]
async fn the_per_user_key_limit_holds_under_concurrent_requests() {
    let (app, admin) = spawn_ready().await;
    admin
        .post_form(
            "/workspace/settings/limits",
            &[
                ("max_expiry_days", ""),
                ("max_keys_per_user", "5"),
                ("default_rate_limit", ""),
            ],
        )
        .await;
    let nina = app
        .add_user(&admin, "nina@example.com", "normal", "nina's long password")
        .await;
    let token = nina.csrf().await;
    let attempts = (0..20).map(|i| {
        let nina = &nina;
        let token = token.clone();
        async move {
            let nonce = format!("concurrent{i}");
            let name = format!("burst {i}");
            nina.post_raw(
                "/account/keys",
                &[
                    ("csrf_token", &token),
                    ("nonce", &nonce),
                    ("name", &name),
                    ("environment", "live"),
                    ("expiry", "30"),
                ],
            )
            .await
        }
    });
    let responses = futures_util::future::join_all(attempts).await;
    let mut created = 0;
    let mut refused = 0;
    for res in responses {
        match res.status() {
            StatusCode::OK => created += 1,
            StatusCode::CONFLICT => {
                refused += 1;
                assert!(
                    res.text().await.unwrap().contains(
                        "You already have 5 personal keys, the most this workspace allows."
                    )
                );
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(
        (created, refused),
        (5, 15),
        "exactly the allowed number succeed"
    );
    let stored = app
        .with_db(|c| {
            use diesel::prelude::*;
            keyward::db::schema::api_keys::table
                .count()
                .get_result::<i64>(c)
                .unwrap()
        })
        .await;
    assert_eq!(stored, 5);

    // Revoked keys do not count; workspace keys of admins are not limited.
    let (_, list) = nina.page("/account/keys").await;
    let first_id = list
        .split("id=\"row-")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    nina.post_form(&format!("/keys/{first_id}/revoke"), &[])
        .await;
    nina.create_key("/account/keys", &[("name", "after revoking one")])
        .await;
    // At the limit the dialog explains instead of offering a form; a form
    // posted anyway is still refused.
    let (_, full) = nina.page("/account/keys/new").await;
    assert!(full.contains("You have reached this workspace's limit of 5 personal keys"));
    assert_eq!(
        nina.post_form(
            "/account/keys",
            &[
                ("nonce", "late1"),
                ("name", "one too many"),
                ("environment", "live"),
                ("expiry", "30"),
            ],
        )
        .await
        .status(),
        StatusCode::CONFLICT
    );

    // From the create dialog (htmx), the refusal is shown in the dialog, not
    // in the message area behind the modal backdrop.
    let token = nina.csrf().await;
    let res = nina
        .client
        .post(nina.url("/account/keys"))
        .header("HX-Request", "true")
        .header("HX-Target", "dialog-body")
        .header("X-CSRF-Token", token)
        .form(&[
            ("nonce", "fromdialog"),
            ("name", "one more"),
            ("environment", "live"),
            ("expiry", "30"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CONFLICT);
    assert_eq!(res.headers()["hx-retarget"], "#dialog-body");
    let body = res.text().await.unwrap();
    assert!(body.contains("id=\"dialog-title\"") && body.contains("data-close-dialog"));
    assert!(body.contains("You already have 5 personal keys"));
}

#[tokio::test]
async fn the_permission_catalog_can_be_extended_described_and_retired() {
    let (app, admin) = spawn_ready().await;
    for (fields, message) in [
        (
            [("name", "Bad Name!"), ("description", "x")],
            "A permission name has 1 to 50",
        ),
        (
            [("name", "data:read"), ("description", "dup")],
            "A permission with this name already exists.",
        ),
        (
            [("name", "reports:read"), ("description", "")],
            "Describe the permission",
        ),
    ] {
        let res = admin
            .post_form("/workspace/settings/permissions", &fields)
            .await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{fields:?}");
        assert!(res.text().await.unwrap().contains(message));
    }
    let res = admin
        .post_form(
            "/workspace/settings/permissions",
            &[("name", "Reports:Read"), ("description", "Read reports")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (_, form) = admin.page("/account/keys/new").await;
    assert!(
        form.contains("value=\"reports:read\""),
        "new permission offered"
    );

    let (_, settings) = admin.page("/workspace/settings").await;
    let marker = "<code>data:write</code>";
    let at = settings.find(marker).unwrap();
    let id = settings[at..]
        .split("/workspace/settings/permissions/")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let res = admin
        .post_form(&format!("/workspace/settings/permissions/{id}/retire"), &[])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (_, form) = admin.page("/account/keys/new").await;
    assert!(
        !form.contains("value=\"data:write\""),
        "retired permissions are not offered"
    );
    let res = admin
        .submit_new_key("/account/keys", &[("permissions", "data:write")])
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    admin
        .post_form(
            &format!("/workspace/settings/permissions/{id}"),
            &[("description", "Write all the data")],
        )
        .await;
    admin
        .post_form(
            &format!("/workspace/settings/permissions/{id}/restore"),
            &[],
        )
        .await;
    let (_, form) = admin.page("/account/keys/new").await;
    assert!(form.contains("value=\"data:write\"") && form.contains("Write all the data"));
    let actions = app.event_actions().await;
    for a in [
        "permission.added",
        "permission.retired",
        "permission.described",
        "permission.restored",
    ] {
        assert!(actions.contains(&a.to_owned()), "{a}");
    }
}

#[tokio::test]
async fn events_can_be_filtered_found_by_key_id_and_exported() {
    let (app, admin) = spawn_ready().await;
    let a = admin
        .create_key("/workspace/keys", &[("name", "=HYPERLINK(\"x\")")])
        .await;
    let b = admin
        .create_key("/workspace/keys", &[("name", "other key")])
        .await;
    admin
        .post_form(&format!("/keys/{}/revoke", a.id), &[])
        .await;
    let _bob = app
        .add_user(&admin, "bob@example.com", "normal", "bob's long password")
        .await;

    let (status, page) = admin.page(&format!("/workspace/events?key={}", a.id)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("key.created") && page.contains("key.revoked"));
    assert!(!page.contains(&b.id), "only events of the pasted key id");
    let (_, page) = admin.page("/workspace/events?action=key.revoked").await;
    assert!(page.contains(&a.id) && !page.contains("<dd>key.created</dd>"));
    let (_, page) = admin.page("/workspace/events?actor=bob%40").await;
    assert!(page.contains("<dd>user.password_set</dd>") && !page.contains("<dd>key.created</dd>"));
    let (_, page) = admin
        .page("/workspace/events?action=key.created&actor=nobody")
        .await;
    assert!(page.contains("No events match these filters."));
    assert_eq!(
        admin
            .get("/workspace/events?action=drop.table")
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );

    let res = admin
        .get(&format!("/workspace/events.csv?key={}", a.id))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert!(
        res.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment;")
    );
    let csv = res.text().await.unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("time_utc,actor,action,target_type,target_id,target,ip,user_agent,details")
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 2, "{csv}");
    assert!(
        rows[0].contains("key.revoked") && rows[1].contains("key.created"),
        "newest first"
    );
    assert!(
        rows[0].contains("'=HYPERLINK"),
        "formulas are neutralised: {}",
        rows[0]
    );
    assert!(!csv.contains(&a.secret[8..]));
    let nina = app
        .add_user(&admin, "nina@example.com", "normal", "nina's long password")
        .await;
    assert_eq!(
        nina.get("/workspace/events.csv").await.status(),
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn usage_is_counted_per_outcome_and_shown() {
    let (app, admin) = spawn_ready().await;
    let k = admin
        .create_key(
            "/workspace/keys",
            &[("name", "busy"), ("permissions", "data:read")],
        )
        .await;
    let quiet = admin
        .create_key("/workspace/keys", &[("name", "quiet")])
        .await;
    for _ in 0..3 {
        assert_eq!(me(&app.base, &k.secret).await.0, StatusCode::OK);
    }
    for _ in 0..2 {
        assert_eq!(
            verify(
                &app.base,
                json!({ "key": k.secret, "permission": "data:write" })
            )
            .await["valid"],
            false
        );
    }
    // Counted in memory and written in batches (every 100 ms in tests).
    let mut detail = String::new();
    for _ in 0..50 {
        detail = admin.page(&format!("/keys/{}", k.id)).await.1;
        if detail.contains("Accepted: 3") && detail.contains("Rejected: 2") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        detail.contains("Accepted: 3") && detail.contains("Rejected: 2"),
        "{detail}"
    );
    assert!(detail.contains("<code>INSUFFICIENT_PERMISSION</code></td><td>2</td>"));
    assert!(detail.contains("<svg class=\"chart\""));
    assert_eq!(
        detail.matches("fill=\"#2f7d4f\"").count(),
        1,
        "one hour with accepted calls"
    );
    let rows = app
        .with_db(|c| {
            use diesel::prelude::*;
            keyward::db::schema::key_usage::table
                .count()
                .get_result::<i64>(c)
                .unwrap()
        })
        .await;
    assert_eq!(rows, 2, "hourly aggregates, not a row per request");

    let (_, list) = admin.page("/workspace/keys").await;
    assert!(list.contains("<svg class=\"sparkline\""));
    let top = &list[list.find("Most used keys, last 24 hours").unwrap()..];
    assert!(top.contains(">busy</a>") && !top.contains(">quiet</a>"));
    assert!(top.contains("<td>3</td>"));
    let _ = quiet;
}

#[tokio::test]
async fn the_key_page_shows_every_field_and_its_history() {
    let (app, admin) = spawn_ready().await;
    let k = admin
        .create_key(
            "/workspace/keys",
            &[
                ("name", "ERP line 3"),
                ("description", "SAP sync"),
                ("tags", "erp, line-3"),
                ("permissions", "data:read"),
                ("resources", "line-3"),
                ("rate_limit", "600"),
            ],
        )
        .await;
    admin
        .post_form(
            &format!("/keys/{}/disable", k.id),
            &[("return_to", &format!("/keys/{}", k.id))],
        )
        .await;
    let (status, page) = admin.page(&format!("/keys/{}", k.id)).await;
    assert_eq!(status, StatusCode::OK);
    for text in [
        "ERP line 3",
        "SAP sync",
        "erp",
        "line-3",
        "data:read",
        "600 requests per minute",
        "Inactive",
        "Workspace",
        "Ada Admin (ada@example.com)",
        "key.created",
        "key.disabled",
        "Enable",
    ] {
        assert!(page.contains(text), "{text} missing");
    }
    assert!(page.contains(&format!("sk_live_…{}", &k.secret[k.secret.len() - 4..])));
    assert!(!page.contains(&k.secret[8..]));
    let nina = app
        .add_user(&admin, "nina@example.com", "normal", "nina's long password")
        .await;
    assert_eq!(
        nina.get(&format!("/keys/{}", k.id)).await.status(),
        StatusCode::NOT_FOUND
    );
    // Deleting from the key's page goes back to the list.
    let res = admin
        .post_form(
            &format!("/keys/{}/delete", k.id),
            &[("return_to", &format!("/keys/{}", k.id))],
        )
        .await;
    assert_eq!(location(&res), "/workspace/keys");
    assert_eq!(
        admin.get(&format!("/keys/{}", k.id)).await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn keys_expiring_soon_are_highlighted_and_can_be_filtered() {
    let (_app, admin) = spawn_ready().await;
    admin
        .create_key("/account/keys", &[("name", "soon gone"), ("expiry", "7")])
        .await;
    admin
        .create_key("/account/keys", &[("name", "long lived"), ("expiry", "90")])
        .await;
    let (_, list) = admin.page("/account/keys").await;
    assert!(
        list.contains("1 of your keys expires within 7 days:"),
        "banner on the personal page"
    );
    assert!(list.contains("Expires in 7 days"));
    assert_eq!(list.matches("status-expiring").count(), 1);
    let (_, soon) = admin.page("/account/keys?expiring=1").await;
    assert!(
        soon.contains("key-name\" href")
            && soon.contains(">soon gone<")
            && !soon.contains(">long lived<")
    );
    let (_, none) = admin.page("/workspace/keys?expiring=1").await;
    assert!(none.contains("No keys match"));
}

#[tokio::test]
async fn the_events_export_streams_a_long_trail_whole_newest_first_and_escaped() {
    // More events than one chunk of the streamed export (1,000), with
    // awkward values: quotes, commas, line breaks, formula prefixes.
    let (app, admin) = spawn_ready().await;
    const N: usize = 2_345;
    let agent = "Mozilla/5.0 (X11; \"quoted\", with, commas)\nand a second line";
    app.with_db(move |c| {
        use keyward::db::events::{AuditContext, EventTarget, record};
        let a = keyward::db::users::find_active_by_email(c, ADMIN_EMAIL)
            .unwrap()
            .unwrap();
        diesel::Connection::transaction(c, |c| {
            for i in 0..N {
                let ctx = AuditContext {
                    workspace_id: a.workspace_id.clone(),
                    actor_id: Some(a.id.clone()),
                    actor_label: format!("tester-{i:05}@example.com"),
                    ip: Some("203.0.113.9".into()),
                    user_agent: Some(agent.into()),
                };
                let label = format!("=HYPERLINK(\"x\",\"{i}\")");
                record(
                    c,
                    &ctx,
                    "key.created",
                    EventTarget::workspace(&a.workspace_id, &label),
                    serde_json::json!({ "n": i }),
                )?;
            }
            diesel::QueryResult::Ok(())
        })
        .unwrap();
    })
    .await;
    let res = admin.get("/workspace/events.csv?actor=tester-").await;
    assert_eq!(res.status(), StatusCode::OK);
    let body = res.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(body.as_bytes());
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        [
            "time_utc",
            "actor",
            "action",
            "target_type",
            "target_id",
            "target",
            "ip",
            "user_agent",
            "details"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), N, "every event, none twice");
    for (k, row) in rows.iter().enumerate() {
        let i = N - 1 - k;
        assert_eq!(
            &row[1],
            format!("tester-{i:05}@example.com"),
            "newest first"
        );
        assert_eq!(&row[5], format!("'=HYPERLINK(\"x\",\"{i}\")"));
        assert_eq!(&row[7], agent, "quotes, commas and line breaks survive");
    }
}

#[tokio::test]
async fn the_key_inventory_lists_every_key_once_without_secrets_for_admins_only() {
    let (app, admin) = spawn_ready().await;
    let formula = admin
        .create_key(
            "/workspace/keys",
            &[("name", "=SUM(A1:A9)"), ("tags", "erp, finance")],
        )
        .await;
    let revoked = admin
        .create_key("/workspace/keys", &[("name", "old connector")])
        .await;
    admin
        .post_form(&format!("/keys/{}/revoke", revoked.id), &[])
        .await;
    let bob = app
        .add_user(&admin, "bob@example.com", "normal", "bob's long password")
        .await;
    let personal = bob
        .create_key("/account/keys", &[("name", "bob's notebook")])
        .await;
    // More keys than one chunk of the streamed export.
    const BULK: usize = 2_100;
    app.with_db(|c| {
        use keyward::db::events::AuditContext;
        use keyward::db::keys::{self, NewKey};
        use keyward::domain::keys::{Environment, generate};
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
        diesel::Connection::transaction(c, |c| {
            for i in 0..BULK {
                let (_, facts) = generate(Environment::Test);
                let (name, nonce) = (format!("bulk {i:04}"), format!("nonce-{i}"));
                keys::create(c, &ctx, NewKey::plain_workspace_key(&name, &facts, &nonce))
                    .map_err(|e| diesel::result::Error::QueryBuilderError(e.to_string().into()))?;
            }
            diesel::QueryResult::Ok(())
        })
        .unwrap();
    })
    .await;

    let (_, page) = admin.page("/workspace/keys?view=all").await;
    assert!(
        page.contains("href=\"/workspace/keys.csv\""),
        "offered on All keys"
    );
    let res = admin.get("/workspace/keys.csv").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment;")
    );
    let body = res.text().await.unwrap();
    for secret in [&formula.secret, &revoked.secret, &personal.secret] {
        assert!(!body.contains(&secret[8..]), "a secret reached the export");
    }
    let mut reader = csv::Reader::from_reader(body.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), BULK + 3, "every key: {:?}", rows.first());
    let ids: std::collections::HashSet<&str> = rows.iter().map(|r| &r[col("id")]).collect();
    assert_eq!(ids.len(), rows.len(), "no key twice");
    let by_id = |id: &str| rows.iter().find(|r| &r[col("id")] == id).unwrap();
    let f = by_id(&formula.id);
    assert_eq!(&f[col("name")], "'=SUM(A1:A9)", "formulas are neutralised");
    assert_eq!(&f[col("tags")], "erp, finance");
    assert_eq!(&f[col("kind")], "workspace");
    assert_eq!(&by_id(&revoked.id)[col("status")], "Revoked");
    let p = by_id(&personal.id);
    assert_eq!(&p[col("owner")], "bob@example.com");
    assert_eq!(&p[col("status")], "Active");
    let masked = &p[col("masked_key")];
    assert!(masked.starts_with("sk_live_…"), "{masked}");
    assert!(
        personal
            .secret
            .ends_with(masked.rsplit('…').next().unwrap())
    );
    // Newest first: the bulk keys were created last.
    assert!(
        rows[0][col("name")].starts_with("bulk "),
        "newest first: {:?} then {:?}",
        rows[0],
        rows.get(1)
    );

    assert_eq!(
        bob.get("/workspace/keys.csv").await.status(),
        StatusCode::FORBIDDEN
    );
}
