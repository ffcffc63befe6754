//! `/api/v1/forward-auth`, the endpoint gateways call for every request:
//! every outcome, its headers, any method, header-safe values, and that it
//! counts like `/api/v1/me`. (Behind a real nginx: `nginx.rs`.)

use crate::helpers::*;
use reqwest::{Method, StatusCode};

/// Call forward-auth with `method`, a bearer key and requirement headers.
async fn forward(
    base: &str,
    method: Method,
    key: Option<&str>,
    required: &[(&str, &str)],
) -> reqwest::Response {
    let mut req = reqwest::Client::new().request(method, format!("{base}/api/v1/forward-auth"));
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    for (name, value) in required {
        req = req.header(
            *name,
            reqwest::header::HeaderValue::from_bytes(value.as_bytes()).unwrap(),
        );
    }
    req.send().await.expect("forward-auth request")
}

/// Every header value is visible ASCII, and none holds the secret.
fn assert_headers_safe(headers: &reqwest::header::HeaderMap, secret: &str) {
    let random_part = &secret[8..];
    for (name, value) in headers {
        assert!(
            value.as_bytes().iter().all(|b| (0x20..0x7f).contains(b)),
            "{name}: {value:?} is not visible ASCII"
        );
        assert!(
            !String::from_utf8_lossy(value.as_bytes()).contains(random_part),
            "{name} holds the secret"
        );
    }
}

/// A refusal's code, checking the shape every refusal shares: the JSON
/// body, and the same body (ASCII-only) in `X-Keyward-Error`.
async fn refusal(res: reqwest::Response) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let status = res.status();
    let headers = res.headers().clone();
    let body: serde_json::Value = res.json().await.expect("a JSON body");
    let copy: serde_json::Value =
        serde_json::from_str(headers["x-keyward-error"].to_str().expect("ASCII"))
            .expect("X-Keyward-Error is JSON");
    assert_eq!(copy, body, "X-Keyward-Error repeats the body");
    assert!(headers.get("x-keyward-key-id").is_none());
    let code = body["error"]["code"].as_str().unwrap().to_owned();
    (status, headers, code)
}

#[tokio::test]
async fn a_valid_key_passes_with_any_method_and_its_identity_in_headers() {
    let (app, admin) = spawn_ready().await;
    let k = admin
        .create_key(
            "/account/keys",
            &[
                ("name", "gateway"),
                ("permissions", "data:read"),
                ("permissions", "reports:export"),
                ("rate_limit", "100"),
            ],
        )
        .await;
    let workspace = me(&app.base, &k.secret).await.2["workspace_id"].clone();
    let methods = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::OPTIONS,
        Method::HEAD,
    ];
    for method in methods {
        let res = forward(&app.base, method.clone(), Some(&k.secret), &[]).await;
        assert_eq!(res.status(), StatusCode::OK, "{method}");
        let h = res.headers().clone();
        assert_eq!(h["x-keyward-key-id"], k.id.as_str(), "{method}");
        assert_eq!(h["x-keyward-workspace-id"], workspace.as_str().unwrap());
        assert_eq!(h["x-keyward-owner"], ADMIN_EMAIL);
        assert_eq!(h["x-keyward-permissions"], "data:read,reports:export");
        assert_eq!(h["x-ratelimit-limit"], "100");
        assert!(h.contains_key("x-ratelimit-remaining"));
        assert_eq!(h["cache-control"], "no-store");
        assert!(h.get("x-keyward-error").is_none());
        assert_headers_safe(&h, &k.secret);
        assert_eq!(res.text().await.unwrap(), "", "{method}: no body");
    }

    // Requirements stated by the gateway and met.
    let res = forward(
        &app.base,
        Method::GET,
        Some(&k.secret),
        &[
            ("X-Keyward-Permission", "reports:export"),
            ("X-Keyward-Environment", "live"),
            ("X-Keyward-Resource", "anything"),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);

    // Envoy appends the original path (and query) to the auth path.
    let res = reqwest::Client::new()
        .get(format!(
            "{}/api/v1/forward-auth/reports/q3?page=2",
            app.base
        ))
        .bearer_auth(&k.secret)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["x-keyward-key-id"], k.id.as_str());

    // A workspace key has no owner: the header is there, empty, so a
    // gateway that copies headers overwrites whatever the client sent
    // (Caddy would otherwise pass its literal placeholder; others the
    // client's own value). Every identity header, on every 200.
    let w = admin
        .create_key("/workspace/keys", &[("name", "integration")])
        .await;
    let res = forward(&app.base, Method::GET, Some(&w.secret), &[]).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["x-keyward-key-id"], w.id.as_str());
    assert_eq!(
        res.headers()["x-keyward-workspace-id"],
        workspace.as_str().unwrap()
    );
    assert_eq!(res.headers()["x-keyward-owner"], "");
    assert_eq!(res.headers()["x-keyward-permissions"], "");
    for name in [
        "x-keyward-key-id",
        "x-keyward-workspace-id",
        "x-keyward-owner",
        "x-keyward-permissions",
    ] {
        assert_eq!(res.headers().get_all(name).iter().count(), 1, "{name} once");
    }
}

#[tokio::test]
async fn refusals_have_the_codes_and_statuses_of_me() {
    let (app, admin) = spawn_ready().await;
    let k = admin
        .create_key(
            "/workspace/keys",
            &[
                ("name", "ERP"),
                ("environment", "test"),
                ("permissions", "data:read"),
                ("resources", "plant-a"),
            ],
        )
        .await;

    let (status, headers, code) = refusal(forward(&app.base, Method::GET, None, &[]).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "MISSING_KEY")
    );
    assert_eq!(headers["www-authenticate"], "Bearer realm=\"keyward\"");

    let (secret, _) = keyward::domain::keys::generate(keyward::domain::keys::Environment::Live);
    let unknown = secret.expose().to_owned();
    for (key, expected) in [
        (unknown.as_str(), "NOT_FOUND"),
        (&unknown[..unknown.len() - 3], "MALFORMED"),
    ] {
        let (status, headers, code) =
            refusal(forward(&app.base, Method::POST, Some(key), &[]).await).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::UNAUTHORIZED, expected)
        );
        assert_eq!(me_code(&app.base, key).await, (status, code), "same as /me");
        assert!(
            headers["www-authenticate"]
                .to_str()
                .unwrap()
                .contains("error=\"invalid_token\"")
        );
        assert_headers_safe(&headers, &unknown);
    }

    let cases: [((&str, &str), StatusCode, &str); 4] = [
        (
            ("X-Keyward-Permission", "data:write"),
            StatusCode::FORBIDDEN,
            "INSUFFICIENT_PERMISSION",
        ),
        (
            ("X-Keyward-Resource", "plant-b"),
            StatusCode::FORBIDDEN,
            "RESOURCE_NOT_ALLOWED",
        ),
        (
            ("X-Keyward-Environment", "live"),
            StatusCode::UNAUTHORIZED,
            "ENVIRONMENT_MISMATCH",
        ),
        // What the gateway sends can be anything: still a clear answer in
        // ASCII headers, never a 500.
        (
            ("X-Keyward-Environment", "prodé\"x"),
            StatusCode::UNAUTHORIZED,
            "ENVIRONMENT_MISMATCH",
        ),
    ];
    for (required, expected_status, expected_code) in cases {
        let (status, headers, code) =
            refusal(forward(&app.base, Method::GET, Some(&k.secret), &[required]).await).await;
        assert_eq!(
            (status, code.as_str()),
            (expected_status, expected_code),
            "{required:?}"
        );
        assert_headers_safe(&headers, &k.secret);
    }
    // Met requirements pass; blank ones are no requirement.
    let res = forward(
        &app.base,
        Method::GET,
        Some(&k.secret),
        &[
            ("X-Keyward-Permission", "data:read"),
            ("X-Keyward-Environment", "test"),
            ("X-Keyward-Resource", "plant-a"),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = forward(
        &app.base,
        Method::GET,
        Some(&k.secret),
        &[("X-Keyward-Permission", " ")],
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);

    admin
        .post_form(&format!("/keys/{}/revoke", k.id), &[])
        .await;
    let (status, _, code) =
        refusal(forward(&app.base, Method::GET, Some(&k.secret), &[]).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "REVOKED")
    );
}

#[tokio::test]
async fn rate_limited_keys_get_429_with_retry_after() {
    let (app, admin) = spawn_ready().await;
    let k = admin
        .create_key("/account/keys", &[("name", "limited"), ("rate_limit", "2")])
        .await;
    for remaining in ["1", "0"] {
        let res = forward(&app.base, Method::GET, Some(&k.secret), &[]).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()["x-ratelimit-remaining"], remaining);
    }
    let (status, headers, code) =
        refusal(forward(&app.base, Method::GET, Some(&k.secret), &[]).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED")
    );
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(
        (1..=30).contains(&retry),
        "a token refills in 30 s at 2/min, got {retry}"
    );
    assert_eq!(headers["x-ratelimit-remaining"], "0");
    // The same bucket as /me: the key is limited there too.
    assert_eq!(
        me_code(&app.base, &k.secret).await,
        (StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED".into())
    );
}

#[tokio::test]
async fn non_ascii_owner_emails_and_resources_are_header_safe() {
    let (app, admin) = spawn_ready().await;
    let email = "zoë.müller@exämple.com";
    let zoe = app
        .add_user(&admin, email, "normal", "a long enough password")
        .await;
    let k = zoe
        .create_key(
            "/account/keys",
            &[("name", "Zoë's key"), ("resources", "usine-é")],
        )
        .await;
    assert_eq!(me(&app.base, &k.secret).await.2["owner"]["email"], email);

    let res = forward(
        &app.base,
        Method::GET,
        Some(&k.secret),
        &[("X-Keyward-Resource", "usine-é")],
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK, "a non-ASCII resource matches");
    let headers = res.headers().clone();
    assert_headers_safe(&headers, &k.secret);
    let owner = headers["x-keyward-owner"].to_str().unwrap();
    assert_eq!(owner, "zo%C3%AB.m%C3%BCller@ex%C3%A4mple.com");
    assert_eq!(
        percent_encoding::percent_decode_str(owner)
            .decode_utf8()
            .unwrap(),
        email,
        "percent-decoding gives the email back"
    );

    // A refusal whose message echoes non-ASCII input keeps its headers
    // ASCII, and X-Keyward-Error decodes to the body with the é intact.
    let res = forward(
        &app.base,
        Method::GET,
        Some(&k.secret),
        &[("X-Keyward-Resource", "usine-è")],
    )
    .await;
    let (status, headers, code) = refusal(res).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "RESOURCE_NOT_ALLOWED")
    );
    assert_headers_safe(&headers, &k.secret);
}

#[tokio::test]
async fn forward_auth_counts_usage_and_last_used_like_me() {
    let (app, admin) = spawn_ready().await;
    let k = admin
        .create_key(
            "/workspace/keys",
            &[("name", "busy"), ("permissions", "data:read")],
        )
        .await;
    for method in [Method::GET, Method::POST, Method::HEAD] {
        let res = forward(&app.base, method, Some(&k.secret), &[]).await;
        assert_eq!(res.status(), StatusCode::OK);
    }
    let res = forward(
        &app.base,
        Method::GET,
        Some(&k.secret),
        &[("X-Keyward-Permission", "data:write")],
    )
    .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(me(&app.base, &k.secret).await.0, StatusCode::OK);

    // Counted in memory and written in batches (every 100 ms in tests).
    let mut detail = String::new();
    for _ in 0..50 {
        detail = admin.page(&format!("/keys/{}", k.id)).await.1;
        if detail.contains("Accepted: 4") && detail.contains("Rejected: 1") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        detail.contains("Accepted: 4") && detail.contains("Rejected: 1"),
        "{detail}"
    );
    assert!(detail.contains("<code>INSUFFICIENT_PERMISSION</code></td><td>1</td>"));
    let (_, list) = admin.page("/workspace/keys").await;
    assert!(!list.contains(">Never<"), "last used is recorded");
}
