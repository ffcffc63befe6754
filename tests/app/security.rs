//! Headers, health checks, error pages and the audit trail's integrity.

use crate::helpers::*;
use reqwest::StatusCode;

#[tokio::test]
async fn pages_carry_security_headers() {
    let (_app, admin) = spawn_ready().await;
    let res = admin.get("/workspace/users").await;
    let h = res.headers();
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));
    assert!(csp.contains("frame-ancestors 'none'"));
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert_eq!(h["cache-control"], "no-store");
    let body = res.text().await.unwrap();
    assert!(!body.contains("<script>"), "no inline script");
    assert!(body.contains("src=\"/static/htmx.min.js\""));

    let res = admin.get("/static/htmx.min.js").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.unwrap().contains("htmx"));
}

#[tokio::test]
async fn health_and_readiness() {
    let app = spawn_app().await;
    let b = app.browser();
    assert_eq!(b.page("/healthz").await, (StatusCode::OK, "ok".to_owned()));
    assert_eq!(
        b.page("/readyz").await,
        (StatusCode::OK, "ready".to_owned())
    );
    // Load balancers often probe with HEAD.
    for path in ["/healthz", "/readyz"] {
        let res = b.client.head(b.url(path)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "HEAD {path}");
    }
}

#[tokio::test]
async fn errors_are_pages_for_people_and_json_for_the_api() {
    let (_app, admin) = spawn_ready().await;
    let (status, body) = admin.page("/no/such/page").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("<h1>Not found</h1>"));
    assert!(body.contains("href=\"/static/app.css\""), "in the layout");

    let res = admin.get("/api/v1/nothing-here").await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let json: serde_json::Value = res.json().await.unwrap();
    assert_eq!(json["error"]["code"], "NOT_FOUND");

    let res = admin
        .client
        .get(admin.url("/no/such/page"))
        .header("HX-Request", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert!(!res.text().await.unwrap().contains("<html"));

    // A malformed query parameter is a clear 400.
    let (status, body) = admin.page("/workspace/events?before=yesterday").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("invalid parameter"));
}

#[tokio::test]
async fn events_are_append_only_in_the_database() {
    let (app, _admin) = spawn_ready().await;
    let (updated, deleted) = app
        .with_db(|c| {
            use diesel::connection::SimpleConnection;
            (
                c.batch_execute("UPDATE events SET action = 'forged'")
                    .is_err(),
                c.batch_execute("DELETE FROM events").is_err(),
            )
        })
        .await;
    assert!(
        updated && deleted,
        "the database refuses to rewrite history"
    );
    assert_eq!(app.event_actions().await, vec!["workspace.setup"]);
}

#[tokio::test]
async fn passwords_are_stored_as_argon2id() {
    let (app, _admin) = spawn_ready().await;
    let user = app
        .with_db(|c| {
            keyward::db::users::find_active_by_email(c, ADMIN_EMAIL)
                .unwrap()
                .unwrap()
        })
        .await;
    let hash = user.password_hash.unwrap();
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    assert!(!hash.contains(ADMIN_PASSWORD));
}

/// Every state-changing route, with real ids so the request would otherwise
/// succeed, refuses a form without the CSRF token and changes nothing.
#[tokio::test]
async fn every_state_changing_route_refuses_a_missing_csrf_token() {
    let (app, admin) = spawn_ready().await;
    let key = admin
        .create_key("/workspace/keys", &[("name", "guarded")])
        .await;
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
    let invite = invite_link(&res.text().await.unwrap()).unwrap();
    let invite_path = format!("/invite/{}", invite.rsplit('/').next().unwrap());
    let bob = app
        .with_db(|c| {
            keyward::db::users::find_active_by_email(c, "bob@example.com")
                .unwrap()
                .unwrap()
                .id
        })
        .await;
    let (_, settings) = admin.page("/workspace/settings").await;
    let perm = settings
        .split("/workspace/settings/permissions/")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let before = app.events().await.len();
    let k = &key.id;
    let paths = [
        "/logout".to_owned(),
        "/login".to_owned(),
        "/setup".to_owned(),
        invite_path.clone(),
        "/account/password".to_owned(),
        "/account/keys".to_owned(),
        "/workspace/keys".to_owned(),
        "/keys/bulk-revoke".to_owned(),
        "/keys/bulk-revoke/confirm".to_owned(),
        format!("/keys/{k}/disable"),
        format!("/keys/{k}/enable"),
        format!("/keys/{k}/review"),
        format!("/keys/{k}/edit"),
        format!("/keys/{k}/regenerate"),
        format!("/keys/{k}/revoke"),
        format!("/keys/{k}/delete"),
        "/workspace/users".to_owned(),
        format!("/workspace/users/{bob}/role"),
        format!("/workspace/users/{bob}/invite"),
        format!("/workspace/users/{bob}/remove"),
        "/workspace/settings/api-keys".to_owned(),
        "/workspace/settings/limits".to_owned(),
        "/workspace/settings/permissions".to_owned(),
        format!("/workspace/settings/permissions/{perm}"),
        format!("/workspace/settings/permissions/{perm}/retire"),
        format!("/workspace/settings/permissions/{perm}/restore"),
    ];
    for path in &paths {
        let fields = [
            ("ids", key.id.as_str()),
            ("enabled", "off"),
            ("role", "operator"),
            ("name", "changed"),
            ("email", "x@example.com"),
            ("max_keys_per_user", "1"),
            ("description", "changed"),
            ("grace", "0"),
            ("nonce", "abc"),
            ("password", "long enough password"),
            ("password_confirm", "long enough password"),
        ];
        let res = admin.post_raw(path, &fields).await;
        assert_eq!(
            res.status(),
            StatusCode::FORBIDDEN,
            "POST {path} without a token"
        );
    }
    assert_eq!(
        app.events().await.len(),
        before,
        "no event: nothing changed"
    );
    assert_eq!(me(&app.base, &key.secret).await.0, StatusCode::OK);
    assert!(admin.signed_in().await);
    assert_eq!(
        app.browser().get(&invite_path).await.status(),
        StatusCode::OK,
        "invitation unused"
    );
}
