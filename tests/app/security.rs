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
        (StatusCode::OK, r#"{"status":"ready"}"#.to_owned())
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
    // A webhook endpoint with one message, for its routes.
    let res = admin
        .post_form(
            "/workspace/webhooks",
            &[("url", "http://127.0.0.1:9/hook"), ("event_types", "key.*")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let (hook, message) = app
        .with_db(|c| {
            use diesel::prelude::*;
            use keyward::db::schema::webhook_endpoints as w;
            let (hook, ws): (String, String) =
                w::table.select((w::id, w::workspace_id)).first(c).unwrap();
            let msg =
                keyward::db::webhooks::enqueue_one(c, &ws, &hook, "tst_x", "webhook.test", "{}")
                    .unwrap();
            (hook, msg)
        })
        .await;
    let before = app.events().await.len();
    let invite_token = invite_path.trim_start_matches("/invite/").to_owned();
    let paths: Vec<String> = state_changing_routes()
        .into_iter()
        .map(|pattern| {
            let id = if pattern.starts_with("/keys/") {
                key.id.as_str()
            } else if pattern.starts_with("/workspace/users/") {
                bob.as_str()
            } else if pattern.starts_with("/workspace/settings/permissions/") {
                perm.as_str()
            } else if pattern.starts_with("/workspace/webhooks/") {
                hook.as_str()
            } else {
                "no-id-expected"
            };
            let path = pattern
                .replace("{id}", id)
                .replace("{token}", &invite_token)
                .replace("{message}", &message)
                .replace("{provider}", "corp");
            assert!(!path.contains('{'), "unknown parameter in {pattern}");
            path
        })
        .collect();
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

/// Every state-changing web route, read from the route attributes of the
/// handlers in src/web (so a new route cannot be left out of the CSRF
/// test), each checked to be registered in `web::configure`. The JSON API
/// (bearer keys, no cookies) is not part of it.
fn state_changing_routes() -> Vec<String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/web");
    let configure = std::fs::read_to_string(root.join("mod.rs")).unwrap();
    let mut files = vec![root.clone()];
    let mut routes = Vec::new();
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let line = line.trim();
            let Some(rest) = ["#[post(\"", "#[put(\"", "#[patch(\"", "#[delete(\""]
                .iter()
                .find_map(|m| line.strip_prefix(m))
            else {
                continue;
            };
            let pattern = rest.split('"').next().unwrap().to_owned();
            let handler = lines[i + 1..]
                .iter()
                .find_map(|l| l.trim().strip_prefix("pub async fn "))
                .and_then(|l| l.split('(').next())
                .unwrap_or_else(|| panic!("no handler after {line}"));
            assert!(
                configure.contains(&format!("::{handler})")),
                "{handler} ({pattern}) is not registered in web::configure"
            );
            routes.push(pattern);
        }
    }
    routes.sort();
    assert!(
        routes.len() >= 28,
        "found only {} routes: {routes:?}",
        routes.len()
    );
    routes
}
