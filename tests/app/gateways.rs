//! What gateways and services state when they check a key, over HTTP:
//! pinning a workspace (`X-Keyward-Workspace`, `workspace` on
//! `/keys/verify`, `?workspace=` on `/me`) on an installation with two
//! workspaces, and single-valued headers that fail closed when repeated.

use crate::helpers::*;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};

/// Call forward-auth with `headers` exactly as given (repeats included).
async fn forward(base: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = reqwest::Client::new().get(format!("{base}/api/v1/forward-auth"));
    for (name, value) in headers {
        // `header` appends: a name given twice is sent twice.
        req = req.header(*name, HeaderValue::from_bytes(value.as_bytes()).unwrap());
    }
    req.send().await.expect("forward-auth request")
}

/// Status, headers and JSON body of an answer.
async fn answer(res: reqwest::Response) -> (StatusCode, HeaderMap, serde_json::Value) {
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.json().await.unwrap_or(serde_json::Value::Null);
    (status, headers, body)
}

fn bearer(secret: &str) -> String {
    format!("Bearer {secret}")
}

/// Acme (set up first) and Other Corp, each with a `data:read` workspace
/// key; returns the app, both admins, both keys and both workspace ids.
struct TwoWorkspaces {
    app: TestApp,
    acme_admin: Browser,
    zed: Browser,
    acme_key: CreatedKey,
    other_key: CreatedKey,
    acme_id: String,
    other_id: String,
}

async fn two_workspaces() -> TwoWorkspaces {
    let (app, acme_admin) = spawn_ready().await;
    let zed = app.other_workspace_admin().await;
    let acme_key = acme_admin
        .create_key(
            "/workspace/keys",
            &[("name", "acme reader"), ("permissions", "data:read")],
        )
        .await;
    let other_key = zed
        .create_key(
            "/workspace/keys",
            &[("name", "other reader"), ("permissions", "data:read")],
        )
        .await;
    let acme_id = me(&app.base, &acme_key.secret).await.2["workspace_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let other_id = me(&app.base, &other_key.secret).await.2["workspace_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(acme_id, other_id);
    TwoWorkspaces {
        app,
        acme_admin,
        zed,
        acme_key,
        other_key,
        acme_id,
        other_id,
    }
}

/// A WRONG_WORKSPACE refusal tells nothing about the key or its workspace.
fn assert_wrong_workspace(
    (status, headers, body): &(StatusCode, HeaderMap, serde_json::Value),
    key: &CreatedKey,
    workspace_id: &str,
) {
    assert_eq!(*status, StatusCode::FORBIDDEN, "{body}");
    let text = body.to_string();
    assert!(text.contains("WRONG_WORKSPACE"), "{text}");
    for secret_fact in [key.id.as_str(), workspace_id, "Other Corp", "Acme"] {
        assert!(!text.contains(secret_fact), "{secret_fact} told: {text}");
        for (name, value) in headers {
            assert!(
                !String::from_utf8_lossy(value.as_bytes()).contains(secret_fact),
                "{name} tells {secret_fact}"
            );
        }
    }
    assert!(body.get("key").is_none(), "no key facts: {body}");
    assert!(headers.get("x-keyward-key-id").is_none());
}

#[tokio::test]
async fn forward_auth_accepts_only_the_pinned_workspace() {
    let t = two_workspaces().await;
    let base = &t.app.base;
    let (acme, other) = (bearer(&t.acme_key.secret), bearer(&t.other_key.secret));

    // Pinned to each workspace: its own key passes, the other's does not,
    // although both hold the required permission.
    for (pin, own, own_key, foreign, foreign_key) in [
        (&t.acme_id, &acme, &t.acme_key, &other, &t.other_key),
        (&t.other_id, &other, &t.other_key, &acme, &t.acme_key),
    ] {
        let res = forward(
            base,
            &[
                ("Authorization", own),
                ("X-Keyward-Workspace", pin),
                ("X-Keyward-Permission", "data:read"),
            ],
        )
        .await;
        assert_eq!(res.status(), StatusCode::OK, "own key, pinned to {pin}");
        assert_eq!(res.headers()["x-keyward-key-id"], own_key.id.as_str());
        assert_eq!(res.headers()["x-keyward-workspace-id"], pin.as_str());

        let refused = answer(
            forward(
                base,
                &[
                    ("Authorization", foreign),
                    ("X-Keyward-Workspace", pin),
                    ("X-Keyward-Permission", "data:read"),
                ],
            )
            .await,
        )
        .await;
        let foreign_ws = if pin == &t.acme_id {
            &t.other_id
        } else {
            &t.acme_id
        };
        assert_wrong_workspace(&refused, foreign_key, foreign_ws);
        assert_eq!(
            refused.1["x-keyward-error"].to_str().unwrap(),
            refused.2.to_string(),
            "the body again, for nginx"
        );
    }

    // A pin naming no workspace (a typo, a name instead of the id)
    // refuses every key: fail closed.
    for (key, pin) in [(&acme, "wsp_nonexistent"), (&other, "Other Corp")] {
        let res = forward(
            base,
            &[("Authorization", key), ("X-Keyward-Workspace", pin)],
        )
        .await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{pin}");
    }

    // No pin (every configuration written before pins existed): the first
    // workspace's keys pass as before, a later workspace's never do.
    for headers in [
        vec![("Authorization", acme.as_str())],
        vec![
            ("Authorization", acme.as_str()),
            ("X-Keyward-Workspace", " "),
        ],
    ] {
        let res = forward(base, &headers).await;
        assert_eq!(res.status(), StatusCode::OK, "{headers:?}");
        assert_eq!(res.headers()["x-keyward-workspace-id"], t.acme_id.as_str());
    }
    let refused = answer(forward(base, &[("Authorization", &other)]).await).await;
    assert_wrong_workspace(&refused, &t.other_key, &t.other_id);
    assert!(
        refused.2["error"]["message"]
            .as_str()
            .unwrap()
            .contains("X-Keyward-Workspace"),
        "the operator learns how to pin: {}",
        refused.2
    );
}

#[tokio::test]
async fn a_foreign_key_is_refused_before_its_state_or_rate_limit_is_used() {
    let t = two_workspaces().await;
    let base = &t.app.base;
    let limited = t
        .zed
        .create_key(
            "/workspace/keys",
            &[("name", "limited"), ("rate_limit", "1")],
        )
        .await;
    // Refused by Acme's gateway again and again: no token of the key is
    // spent, and none of this is the key's usage.
    for _ in 0..3 {
        let res = forward(
            base,
            &[
                ("Authorization", &bearer(&limited.secret)),
                ("X-Keyward-Workspace", &t.acme_id),
            ],
        )
        .await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
    }
    let res = forward(
        base,
        &[
            ("Authorization", &bearer(&limited.secret)),
            ("X-Keyward-Workspace", &t.other_id),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK, "its one token is still there");

    // A revoked key of the other workspace is WRONG_WORKSPACE, not
    // REVOKED: its state is none of Acme's business.
    let res = t
        .zed
        .post_form(&format!("/keys/{}/revoke", t.other_key.id), &[])
        .await;
    assert!(res.status().is_success() || res.status().is_redirection());
    assert_eq!(
        me_code(base, &t.other_key.secret).await.1,
        "REVOKED",
        "revoked indeed"
    );
    let refused = answer(
        forward(
            base,
            &[
                ("Authorization", &bearer(&t.other_key.secret)),
                ("X-Keyward-Workspace", &t.acme_id),
            ],
        )
        .await,
    )
    .await;
    assert_wrong_workspace(&refused, &t.other_key, &t.other_id);
}

#[tokio::test]
async fn verify_and_me_take_the_workspace_too() {
    let t = two_workspaces().await;
    let base = &t.app.base;

    // /keys/verify: `workspace` pins; without it only the first workspace.
    let ok = verify(
        base,
        serde_json::json!({"key": t.other_key.secret, "workspace": t.other_id, "permission": "data:read"}),
    )
    .await;
    assert_eq!(ok["valid"], true, "{ok}");
    assert_eq!(ok["key"]["workspace_id"], t.other_id.as_str());
    let ok = verify(base, serde_json::json!({"key": t.acme_key.secret})).await;
    assert_eq!(ok["valid"], true, "first workspace, no pin: {ok}");
    for body in [
        serde_json::json!({"key": t.other_key.secret, "workspace": t.acme_id}),
        serde_json::json!({"key": t.other_key.secret}),
        serde_json::json!({"key": t.other_key.secret, "workspace": ""}),
    ] {
        let refused = verify(base, body.clone()).await;
        assert_eq!(refused["valid"], false, "{body}");
        assert_eq!(refused["code"], "WRONG_WORKSPACE", "{refused}");
        assert_eq!(refused["status"], 403);
        let text = refused.to_string();
        assert!(refused.get("key").is_none(), "no facts: {text}");
        assert!(!text.contains(&t.other_id) && !text.contains(&t.other_key.id));
    }
    let refused = verify(
        base,
        serde_json::json!({"key": t.acme_key.secret, "workspace": t.other_id}),
    )
    .await;
    assert_eq!(refused["code"], "WRONG_WORKSPACE", "{refused}");

    // /me describes any workspace's key to its holder, unless asked to pin.
    assert_eq!(me(base, &t.other_key.secret).await.0, StatusCode::OK);
    let me_pinned = |key: String, ws: String| async move {
        answer(
            reqwest::Client::new()
                .get(format!("{base}/api/v1/me"))
                .query(&[("workspace", ws)])
                .bearer_auth(key)
                .send()
                .await
                .unwrap(),
        )
        .await
    };
    let (status, _, body) = me_pinned(t.other_key.secret.clone(), t.other_id.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let refused = me_pinned(t.other_key.secret.clone(), t.acme_id.clone()).await;
    assert_wrong_workspace(&refused, &t.other_key, &t.other_id);

    // The management API is unaffected: a key manages its own workspace.
    let manager = t
        .zed
        .create_key(
            "/workspace/keys",
            &[("name", "ci"), ("permissions", "keyward:keys:read")],
        )
        .await;
    let res = reqwest::Client::new()
        .get(format!("{base}/api/v1/keys"))
        .bearer_auth(&manager.secret)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    drop(t.acme_admin);
}

#[tokio::test]
async fn without_a_setup_row_the_oldest_workspace_is_the_first() {
    // An installation provisioned with `keyward workspace create` before
    // anyone ran setup has no setup row: its oldest workspace counts.
    let (app, ada) = spawn_ready().await;
    app.with_db(|c| {
        use diesel::prelude::*;
        diesel::delete(keyward::db::schema::instance_setup::table)
            .execute(c)
            .unwrap();
    })
    .await;
    let zed = app.other_workspace_admin().await;
    let first = ada
        .create_key("/workspace/keys", &[("name", "first")])
        .await;
    let later = zed
        .create_key("/workspace/keys", &[("name", "later")])
        .await;
    let res = forward(&app.base, &[("Authorization", &bearer(&first.secret))]).await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = forward(&app.base, &[("Authorization", &bearer(&later.secret))]).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}

/// The requirement headers, each with a value the key does not meet and
/// one it does (the second of two must never win).
const REQUIREMENTS: [&str; 4] = [
    "X-Keyward-Permission",
    "X-Keyward-Environment",
    "X-Keyward-Resource",
    "X-Keyward-Workspace",
];

#[tokio::test]
async fn repeated_requirement_headers_are_refused() {
    let (app, admin) = spawn_ready().await;
    let key = admin
        .create_key(
            "/workspace/keys",
            &[
                ("name", "narrow"),
                ("environment", "test"),
                ("permissions", "data:read"),
                ("resources", "plant-a"),
            ],
        )
        .await;
    let auth = bearer(&key.secret);
    for name in REQUIREMENTS {
        // The issue's case: an empty first value, then a real requirement
        // the key does not meet (answered 200 before); and any repeat,
        // whatever the values, even identical ones.
        let value = match name {
            "X-Keyward-Permission" => "data:write",
            "X-Keyward-Environment" => "live",
            "X-Keyward-Resource" => "plant-b",
            _ => "wsp_another",
        };
        for values in [
            vec!["", value],
            vec![value, ""],
            vec![value, value],
            vec!["", "", ""],
        ] {
            let mut headers = vec![("Authorization", auth.as_str())];
            headers.extend(values.iter().map(|v| (name, *v)));
            let (status, h, body) = answer(forward(&app.base, &headers).await).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{name} {values:?}: {body}");
            assert_eq!(body["error"]["code"], "REPEATED_HEADER", "{body}");
            assert!(
                body["error"]["message"].as_str().unwrap().contains(name),
                "names the header: {body}"
            );
            assert_eq!(h["x-keyward-error"].to_str().unwrap(), body.to_string());
            assert!(h.get("x-keyward-key-id").is_none());
        }
        // Once, it is an ordinary requirement.
        let res = forward(&app.base, &[("Authorization", &auth), (name, value)]).await;
        assert_ne!(res.status(), StatusCode::OK, "{name}: {value} is not met");
        assert_ne!(res.status(), StatusCode::BAD_REQUEST);
    }
}

#[tokio::test]
async fn repeated_authorization_is_refused_on_every_key_checking_endpoint() {
    let (app, admin) = spawn_ready().await;
    let key = admin
        .create_key(
            "/workspace/keys",
            &[("name", "manager"), ("permissions", "keyward:keys:read")],
        )
        .await;
    let good = bearer(&key.secret);
    let (unknown, _) = keyward::domain::keys::generate(keyward::domain::keys::Environment::Live);
    let unknown = bearer(unknown.expose());
    let client = reqwest::Client::new();
    let endpoints = [
        "/api/v1/me",
        "/api/v1/forward-auth",
        "/api/v1/forward-auth/reports/q3",
        // Management API authentication.
        "/api/v1/keys",
    ];
    for path in endpoints {
        // One good header alone passes.
        let res = client
            .get(format!("{}{path}", app.base))
            .header(AUTHORIZATION, &good)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        for pair in [
            ["", good.as_str()],
            [good.as_str(), good.as_str()],
            [unknown.as_str(), good.as_str()],
            [good.as_str(), "Basic eDp5"],
        ] {
            let res = client
                .get(format!("{}{path}", app.base))
                .header(AUTHORIZATION, pair[0])
                .header(AUTHORIZATION, pair[1])
                .send()
                .await
                .unwrap();
            let (status, headers, body) = answer(res).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {pair:?}: {body}");
            let code = body["error"]["code"]
                .as_str()
                .or(body["code"].as_str())
                .unwrap_or_default();
            assert_eq!(code, "REPEATED_HEADER", "{path}: {body}");
            assert!(headers.get("x-keyward-key-id").is_none());
            assert!(!body.to_string().contains(&key.secret));
        }
    }
}

#[tokio::test]
async fn verify_and_me_refuse_a_requirement_given_twice() {
    let (app, admin) = spawn_ready().await;
    let key = admin
        .create_key(
            "/workspace/keys",
            &[("name", "narrow"), ("permissions", "data:read")],
        )
        .await;
    // /keys/verify: its requirements are JSON members; a member given
    // twice is refused like a repeated header, whichever comes first.
    for member in ["permission", "environment", "resource", "workspace", "key"] {
        let body = format!(
            r#"{{"key": "{}", "{member}": "", "{member}": "data:write"}}"#,
            key.secret
        );
        let res = reqwest::Client::new()
            .post(format!("{}/api/v1/keys/verify", app.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = res.status();
        let text = res.text().await.unwrap();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{member}: {text}");
        assert!(text.contains("duplicate field"), "{text}");
    }
    // /me: `?environment=&environment=live`, `?workspace=…&workspace=…`.
    for query in [
        "environment=&environment=live",
        "workspace=&workspace=wsp_x",
    ] {
        let res = reqwest::Client::new()
            .get(format!("{}/api/v1/me?{query}", app.base))
            .bearer_auth(&key.secret)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{query}");
    }
}

#[tokio::test]
async fn the_openapi_document_declares_the_pin_and_the_refusals() {
    let app = spawn_app().await;
    let doc: serde_json::Value = reqwest::get(format!("{}/api/v1/openapi.json", app.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let params = |path: &str, method: &str| -> Vec<(String, String)> {
        doc["paths"][path][method]["parameters"]
            .as_array()
            .unwrap_or_else(|| panic!("{method} {path} has parameters"))
            .iter()
            .map(|p| {
                (
                    p["name"].as_str().unwrap().to_owned(),
                    p["in"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let forward = params("/api/v1/forward-auth", "get");
    for name in REQUIREMENTS {
        assert!(
            forward.contains(&(name.to_owned(), "header".to_owned())),
            "{name}: {forward:?}"
        );
    }
    let me = params("/api/v1/me", "get");
    assert!(
        me.contains(&("workspace".to_owned(), "query".to_owned())),
        "{me:?}"
    );

    let responses = &doc["paths"]["/api/v1/forward-auth"]["get"]["responses"];
    for status in ["200", "400", "401", "403", "429", "503"] {
        assert!(responses.get(status).is_some(), "forward-auth {status}");
    }
    let identity = responses["200"]["headers"]
        .as_object()
        .expect("200 headers");
    for name in [
        "X-Keyward-Key-Id",
        "X-Keyward-Workspace-Id",
        "X-Keyward-Permissions",
        "X-Keyward-Owner",
    ] {
        assert!(identity.contains_key(name), "{name}: {identity:?}");
    }
    let me_responses = &doc["paths"]["/api/v1/me"]["get"]["responses"];
    assert!(me_responses.get("403").is_some());

    let verify_schema = &doc["components"]["schemas"]["VerifyRequest"];
    assert!(
        verify_schema["properties"].get("workspace").is_some(),
        "{verify_schema}"
    );
    let codes = doc["components"]["schemas"]["ErrorDetail"].to_string();
    for code in ["WRONG_WORKSPACE", "REPEATED_HEADER"] {
        assert!(codes.contains(code), "{code} is documented: {codes}");
    }
}

#[tokio::test]
async fn an_admin_finds_the_workspace_id_for_gateways_in_settings() {
    let t = two_workspaces().await;
    for (admin, own, other) in [
        (&t.acme_admin, &t.acme_id, &t.other_id),
        (&t.zed, &t.other_id, &t.acme_id),
    ] {
        let (status, page) = admin.page("/workspace/settings").await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains(&format!("<code>{own}</code>")), "{page}");
        assert!(page.contains("X-Keyward-Workspace"));
        assert!(
            !page.contains(other.as_str()),
            "never another workspace's id"
        );
    }
}
