//! Forward auth behind a real Caddy (Debian `caddy`): the `forward_auth`
//! configuration of `docs/gateways-caddy.md`, run as a foreground process
//! from a temporary directory (its own HOME and XDG directories, admin API
//! off, no automatic HTTPS: the system's Caddy service is neither used nor
//! touched), in front of the echoing service of `nginx.rs`. Opt-in (`cargo
//! test --test app caddy:: -- --ignored`), since it needs Caddy installed;
//! `.ci/run` installs it and runs these.

use crate::helpers::*;
use crate::nginx::{Gateway, filled, free_port, port_of, spawn_echo};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use std::process::{Command, Stdio};

/// The placeholder the documented block holds for the workspace id.
const WORKSPACE_PLACEHOLDER: &str = "wsp_REPLACE_WITH_YOUR_WORKSPACE_ID";

/// The Caddyfile block of the doc, exactly as documented.
fn documented_config() -> String {
    let doc = include_str!("../../docs/gateways-caddy.md");
    let marker = doc
        .find("<!-- caddy-forward-auth")
        .expect("the doc's Caddyfile block marker");
    let rest = &doc[marker..];
    let start = rest.find("```caddyfile\n").expect("a caddyfile code block") + 13;
    let end = rest[start..].find("```").expect("the block ends");
    rest[start..start + end].to_owned()
}

/// A foreground Caddy in its own directory, started by
/// [`CaddyConfig::start`]; killed when dropped, also when a test fails
/// half-way.
type Caddy = Gateway;

struct CaddyConfig;

impl CaddyConfig {
    /// Start Caddy with the documented configuration, pointed at keyward on
    /// `keyward_port`, the service on `app_port`, pinned to `workspace`.
    fn start(keyward_port: u16, app_port: u16, workspace: &str) -> Caddy {
        let port = free_port();
        let site = filled(
            &documented_config(),
            &[
                ("127.0.0.1:8080 {", format!("127.0.0.1:{keyward_port} {{")),
                ("127.0.0.1:3000 {", format!("127.0.0.1:{app_port} {{")),
                (":80 {", format!("http://127.0.0.1:{port} {{")),
                (WORKSPACE_PLACEHOLDER, workspace.to_owned()),
            ],
        );
        // Global options for a throw-away foreground Caddy: no admin
        // endpoint (it would take port 2019), no certificates.
        let config = format!("{{\n\tadmin off\n\tauto_https off\n}}\n\n{site}");
        let dir = tempfile::tempdir().unwrap();
        let caddyfile = dir.path().join("Caddyfile");
        std::fs::write(&caddyfile, config).unwrap();
        let log = std::fs::File::create(dir.path().join("caddy.log")).unwrap();
        let bin = std::env::var("CADDY").unwrap_or_else(|_| "/usr/bin/caddy".into());
        let child = Command::new(&bin)
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(&caddyfile)
            .current_dir(dir.path())
            // Whatever Caddy stores (autosaved config, data) stays here.
            .env("HOME", dir.path())
            .env("XDG_CONFIG_HOME", dir.path().join("config"))
            .env("XDG_DATA_HOME", dir.path().join("data"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {bin} (Debian caddy): {e}"));
        Gateway::listening(child, port, dir, "caddy.log", "caddy")
    }
}

/// Identity headers a client forges, and requirements it tries to void or
/// choose: none may reach the service or keyward.
const FORGED: [(&str, &str); 8] = [
    ("X-Keyward-Key-Id", "key_forged"),
    ("X-Keyward-Workspace-Id", "wsp_forged"),
    ("X-Keyward-Owner", "boss@example.com"),
    ("X-Keyward-Permissions", "admin:everything"),
    ("X-Keyward-Permission", ""),
    ("X-Keyward-Environment", "test"),
    ("X-Keyward-Resource", "plant-z"),
    ("X-Keyward-Workspace", "wsp_forged"),
];

async fn get(url: &str, key: Option<&str>) -> (StatusCode, HeaderMap, String) {
    let mut req = reqwest::Client::new().get(url);
    for (name, value) in FORGED {
        req = req.header(name, value);
    }
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    let res = req.send().await.expect("request through caddy");
    let status = res.status();
    let headers = res.headers().clone();
    (status, headers, res.text().await.unwrap())
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

#[tokio::test]
#[ignore = "needs Caddy (Debian caddy); run with --ignored"]
async fn caddy_forward_auth_passes_identity_and_never_forged_headers() {
    let (app, admin) = spawn_ready().await;
    let personal = admin
        .create_key(
            "/account/keys",
            &[("name", "reader"), ("permissions", "data:read")],
        )
        .await;
    let workspace_key = admin
        .create_key("/workspace/keys", &[("name", "integration")])
        .await;
    let workspace = me(&app.base, &personal.secret).await.2["workspace_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let echo = spawn_echo();
    let caddy = CaddyConfig::start(port_of(&app.base), echo, &workspace);

    // A personal key reaches the service with its identity, the client's
    // forged headers replaced, the key itself dropped.
    let (status, _, body) = get(&caddy.url("/data/1"), Some(&personal.secret)).await;
    assert_eq!(status, StatusCode::OK, "{body}\n{}", caddy.log());
    let seen = json(&body);
    assert_eq!(seen["echo"], true, "{seen}");
    assert_eq!(seen["path"], "/data/1");
    let h = &seen["headers"];
    assert_eq!(h["x-keyward-key-id"], personal.id, "{seen}");
    assert_eq!(h["x-keyward-workspace-id"], workspace.as_str());
    assert_eq!(h["x-keyward-owner"], ADMIN_EMAIL);
    assert_eq!(h["x-keyward-permissions"], "data:read");
    assert!(h.get("authorization").is_none(), "{seen}");
    assert!(!body.contains(&personal.secret));

    // A workspace key: no owner, no permissions. The service sees them
    // empty: neither the client's forged values nor Caddy's placeholder.
    let (status, _, body) = get(&caddy.url("/data/2"), Some(&workspace_key.secret)).await;
    assert_eq!(status, StatusCode::OK, "{body}\n{}", caddy.log());
    let seen = json(&body);
    let h = &seen["headers"];
    assert_eq!(h["x-keyward-key-id"], workspace_key.id, "{seen}");
    assert_eq!(h["x-keyward-workspace-id"], workspace.as_str());
    assert_eq!(h["x-keyward-owner"], "", "{seen}");
    assert_eq!(h["x-keyward-permissions"], "", "{seen}");
    // The four identity headers hold keyward's values only. (The forged
    // requirement headers are the client's own business upstream; what
    // matters is that keyward never saw them: see the refusals test.)
    for (name, forged) in &FORGED[..4] {
        assert_ne!(
            h[name.to_ascii_lowercase()],
            *forged,
            "{name}: the client's value reached the service: {seen}"
        );
    }
    assert!(!body.contains("{http."), "no Caddy placeholder: {seen}");
}

#[tokio::test]
#[ignore = "needs Caddy (Debian caddy); run with --ignored"]
async fn caddy_passes_keywards_refusals_to_the_client() {
    let (app, admin) = spawn_ready().await;
    let reader = admin
        .create_key(
            "/account/keys",
            &[("name", "reader"), ("permissions", "data:read")],
        )
        .await;
    let workspace = me(&app.base, &reader.secret).await.2["workspace_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let echo = spawn_echo();
    let caddy = CaddyConfig::start(port_of(&app.base), echo, &workspace);

    // No key, an unknown key: 401 with keyward's JSON and WWW-Authenticate.
    let (status, headers, body) = get(&caddy.url("/"), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}\n{}", caddy.log());
    assert_eq!(json(&body)["error"]["code"], "MISSING_KEY");
    assert_eq!(headers["www-authenticate"], "Bearer realm=\"keyward\"");
    let (secret, _) = keyward::domain::keys::generate(keyward::domain::keys::Environment::Live);
    let (status, headers, body) = get(&caddy.url("/data/1"), Some(secret.expose())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(json(&body)["error"]["code"], "NOT_FOUND");
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("error=\"invalid_token\"")
    );
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );

    // /reports/ requires reports:export (the client's empty
    // X-Keyward-Permission is replaced): 403.
    let (status, _, body) = get(&caddy.url("/reports/q3"), Some(&reader.secret)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(json(&body)["error"]["code"], "INSUFFICIENT_PERMISSION");
    let exporter = admin
        .create_key(
            "/account/keys",
            &[("name", "exporter"), ("permissions", "reports:export")],
        )
        .await;
    let (status, _, body) = get(&caddy.url("/reports/q3"), Some(&exporter.secret)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(json(&body)["headers"]["x-keyward-key-id"], exporter.id);

    // Over its rate limit: 429 with Retry-After and keyward's body.
    let limited = admin
        .create_key("/account/keys", &[("name", "limited"), ("rate_limit", "1")])
        .await;
    let (status, _, body) = get(&caddy.url("/data/2"), Some(&limited.secret)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, headers, body) = get(&caddy.url("/data/2"), Some(&limited.secret)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(json(&body)["error"]["code"], "RATE_LIMITED");
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "one token a minute, got {retry}");

    // Two Authorization headers: keyward's 400, as it is.
    let res = reqwest::Client::new()
        .get(caddy.url("/data/3"))
        .header("authorization", "")
        .bearer_auth(&reader.secret)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body = res.text().await.unwrap();
    assert_eq!(json(&body)["error"]["code"], "REPEATED_HEADER", "{body}");

    // A key of another workspace on this keyward, with the permission:
    // refused by this workspace's gateway, whatever the client claims.
    let zed = app.other_workspace_admin().await;
    let foreign = zed
        .create_key(
            "/workspace/keys",
            &[("name", "foreign"), ("permissions", "reports:export")],
        )
        .await;
    let other = me(&app.base, &foreign.secret).await.2["workspace_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = reqwest::Client::new()
        .get(caddy.url("/reports/q3"))
        .header("X-Keyward-Workspace", &other)
        .bearer_auth(&foreign.secret)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let body = res.text().await.unwrap();
    assert_eq!(json(&body)["error"]["code"], "WRONG_WORKSPACE", "{body}");
    assert!(!body.contains(&other) && !body.contains("\"echo\""));

    assert!(
        !caddy.log().contains(&reader.secret),
        "the key is not logged"
    );
}

#[tokio::test]
#[ignore = "needs Caddy (Debian caddy); run with --ignored"]
async fn caddy_passes_the_client_address_to_ip_allowlists() {
    let (app, key, workspace) = crate::allowlists::behind_a_gateway().await;
    let echo = spawn_echo();
    let caddy = CaddyConfig::start(port_of(&app.base), echo, &workspace);
    crate::allowlists::assert_gateway_passes_the_client(&caddy.url("/data/1"), &key.secret, || {
        caddy.log()
    })
    .await;
}

#[tokio::test]
#[ignore = "needs Caddy (Debian caddy); run with --ignored"]
async fn caddy_spends_the_configured_cost_never_the_clients() {
    let (app, keys, workspace) = crate::quotas::behind_a_gateway().await;
    let echo = spawn_echo();
    let caddy = CaddyConfig::start(port_of(&app.base), echo, &workspace);
    crate::quotas::assert_gateway_spends_its_cost(|p| caddy.url(p), &keys, || caddy.log()).await;
}
