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
