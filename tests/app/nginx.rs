//! Forward auth behind a real nginx (Debian `nginx-light`): the
//! `auth_request` configuration of docs/gateways.md, run as an
//! unprivileged-style foreground process in a temporary prefix, in front of
//! a small upstream that echoes the headers it received. Opt-in (`cargo test --test app
//! nginx:: -- --ignored`), since it needs nginx installed; `.ci/run` installs
//! it and runs these.

use crate::helpers::*;
use reqwest::StatusCode;
use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The placeholder the documented block holds for the workspace id.
const WORKSPACE_PLACEHOLDER: &str = "wsp_REPLACE_WITH_YOUR_WORKSPACE_ID";

/// The nginx block of docs/gateways.md, exactly as documented.
fn documented_config() -> String {
    let doc = include_str!("../../docs/gateways.md");
    let marker = doc
        .find("<!-- nginx-forward-auth")
        .expect("the nginx block marker in docs/gateways.md");
    let rest = &doc[marker..];
    let start = rest.find("```nginx\n").expect("an nginx code block") + 9;
    let end = rest[start..].find("```").expect("the block ends");
    rest[start..start + end].to_owned()
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A foreground nginx in its own prefix; killed when dropped, also when
/// a test fails half-way.
/// A gateway (nginx, Caddy) running in the foreground for one test from
/// its own temporary directory, with its log there; stopped when dropped.
pub struct Gateway {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
    /// The log file's name in `dir`.
    log: &'static str,
}

impl Gateway {
    /// Wait until the started gateway listens on `port` (or fail with its
    /// log if it exits or takes more than 20 s).
    pub fn listening(
        child: Child,
        port: u16,
        dir: tempfile::TempDir,
        log: &'static str,
        name: &str,
    ) -> Gateway {
        let mut gateway = Gateway {
            child,
            port,
            dir,
            log,
        };
        let since = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = gateway.child.try_wait() {
                panic!("{name} exited ({status}):\n{}", gateway.log());
            }
            assert!(
                since.elapsed() < Duration::from_secs(20),
                "{name} did not listen:\n{}",
                gateway.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        gateway
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// What the gateway logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join(self.log)).unwrap_or_default()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The documented configuration with each placeholder replaced. Every
/// placeholder must be in it: a document that lost one fails here.
pub fn filled(documented: &str, replacements: &[(&str, String)]) -> String {
    let mut config = documented.to_owned();
    for (placeholder, value) in replacements {
        assert!(
            config.contains(placeholder),
            "the documented block has {placeholder}"
        );
        config = config.replace(placeholder, value);
    }
    config
}

/// nginx started by [`NginxConfig::start`].
type Nginx = Gateway;

struct NginxConfig;

impl NginxConfig {
    /// Start nginx with the documented configuration, pointed at keyward on
    /// `keyward_port` and the service on `app_port`, pinned to `workspace`.
    fn start(keyward_port: u16, app_port: u16, workspace: &str) -> Nginx {
        let port = free_port();
        let server = filled(
            &documented_config(),
            &[
                ("127.0.0.1:8080;", format!("127.0.0.1:{keyward_port};")),
                ("127.0.0.1:3000;", format!("127.0.0.1:{app_port};")),
                ("listen 80;", format!("listen 127.0.0.1:{port};")),
                (WORKSPACE_PLACEHOLDER, workspace.to_owned()),
            ],
        );
        let prefix = tempfile::tempdir().unwrap();
        let p = prefix.path().display().to_string();
        // Everything nginx writes stays in the prefix: no /etc/nginx, no
        // /var/log, no user switch, no daemon.
        let conf = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\n\
             pid {p}/nginx.pid;\nerror_log {p}/error.log info;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n\
             access_log off;\n\
             client_body_temp_path {p}/client_body;\nproxy_temp_path {p}/proxy;\n\
             fastcgi_temp_path {p}/fastcgi;\nuwsgi_temp_path {p}/uwsgi;\nscgi_temp_path {p}/scgi;\n\
             {server}\n}}\n"
        );
        let conf_path = prefix.path().join("nginx.conf");
        std::fs::File::create(&conf_path)
            .unwrap()
            .write_all(conf.as_bytes())
            .unwrap();
        let bin = std::env::var("NGINX").unwrap_or_else(|_| "/usr/sbin/nginx".into());
        let child = Command::new(&bin)
            .arg("-p")
            .arg(prefix.path())
            .arg("-e")
            .arg(prefix.path().join("error.log"))
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {bin} (Debian nginx-light): {e}"));
        Gateway::listening(child, port, prefix, "error.log", "nginx")
    }
}

/// The service behind nginx: answers every request with the headers it
/// received, as a JSON object (lower-case names).
pub(crate) fn spawn_echo() -> u16 {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let server = actix_web::HttpServer::new(|| {
                actix_web::App::new().default_service(actix_web::web::to(
                    |req: actix_web::HttpRequest| async move {
                        let headers: BTreeMap<String, String> = req
                            .headers()
                            .iter()
                            .map(|(k, v)| {
                                (
                                    k.as_str().to_owned(),
                                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                                )
                            })
                            .collect();
                        actix_web::HttpResponse::Ok().json(serde_json::json!({
                            "echo": true,
                            "path": req.path(),
                            "headers": headers,
                        }))
                    },
                ))
            })
            .workers(1)
            .bind(("127.0.0.1", 0))
            .expect("echo server binds");
            let _ = tx.send(server.addrs()[0].port());
            let _ = server.run().await;
        });
    });
    rx.recv().expect("echo server started")
}

pub(crate) fn port_of(base: &str) -> u16 {
    base.rsplit(':').next().unwrap().parse().unwrap()
}

async fn get(url: &str, key: Option<&str>) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let mut req = reqwest::Client::new()
        .get(url)
        // A client trying to pass itself off as another key.
        .header("X-Keyward-Key-Id", "key_forged");
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    let res = req.send().await.expect("request through nginx");
    let status = res.status();
    let headers = res.headers().clone();
    (status, headers, res.text().await.unwrap())
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

#[tokio::test]
#[ignore = "needs nginx (Debian nginx-light); run with --ignored"]
async fn nginx_auth_request_passes_valid_keys_and_refuses_others_like_me() {
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
    let nginx = NginxConfig::start(port_of(&app.base), echo, &workspace);

    // A valid key reaches the service, which learns who called from the
    // headers set by auth_request_set, never the key itself.
    let (status, _, body) = get(&nginx.url("/data/1"), Some(&reader.secret)).await;
    assert_eq!(status, StatusCode::OK, "{body}\n{}", nginx.log());
    let seen = json(&body);
    assert_eq!(seen["echo"], true, "{seen}");
    assert_eq!(seen["path"], "/data/1");
    let headers = &seen["headers"];
    assert_eq!(headers["x-keyward-key-id"], reader.id, "{seen}");
    assert_eq!(headers["x-keyward-owner"], ADMIN_EMAIL);
    assert_eq!(headers["x-keyward-permissions"], "data:read");
    assert_eq!(headers["x-keyward-workspace-id"], workspace.as_str());
    assert!(headers.get("authorization").is_none(), "{seen}");
    assert!(
        !body.contains(&reader.secret),
        "the service never sees the key"
    );

    // A bad key: 401 at the client with keyward's JSON and WWW-Authenticate.
    let (secret, _) = keyward::domain::keys::generate(keyward::domain::keys::Environment::Live);
    let (status, headers, body) = get(&nginx.url("/data/1"), Some(secret.expose())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(json(&body)["error"]["code"], "NOT_FOUND", "{body}");
    assert!(!body.contains("\"echo\""));
    let challenges: Vec<_> = headers.get_all("www-authenticate").iter().collect();
    assert_eq!(challenges.len(), 1, "{challenges:?}");
    assert!(
        challenges[0]
            .to_str()
            .unwrap()
            .starts_with("Bearer realm=\"keyward\", error=\"invalid_token\""),
        "{challenges:?}"
    );
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );

    // No key at all.
    let (status, headers, body) = get(&nginx.url("/"), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(json(&body)["error"]["code"], "MISSING_KEY");
    assert_eq!(headers["www-authenticate"], "Bearer realm=\"keyward\"");

    // /reports/ requires reports:export, which the reader key lacks: 403.
    let (status, _, body) = get(&nginx.url("/reports/q3"), Some(&reader.secret)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let refused = json(&body);
    assert_eq!(refused["error"]["code"], "INSUFFICIENT_PERMISSION");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("reports:export"),
        "{refused}"
    );
    let exporter = admin
        .create_key(
            "/account/keys",
            &[("name", "exporter"), ("permissions", "reports:export")],
        )
        .await;
    let (status, _, body) = get(&nginx.url("/reports/q3"), Some(&exporter.secret)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(json(&body)["headers"]["x-keyward-key-id"], exporter.id);

    // Over its rate limit: 429 with Retry-After at the client, not nginx's 500.
    let limited = admin
        .create_key("/account/keys", &[("name", "limited"), ("rate_limit", "1")])
        .await;
    let (status, _, body) = get(&nginx.url("/data/2"), Some(&limited.secret)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, headers, body) = get(&nginx.url("/data/2"), Some(&limited.secret)).await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "{body}\n{}",
        nginx.log()
    );
    assert_eq!(json(&body)["error"]["code"], "RATE_LIMITED");
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "one token a minute, got {retry}");

    // A workspace key has no owner: the client's forged X-Keyward-Owner
    // never reaches the service (nginx drops a header set to "").
    let integration = admin
        .create_key("/workspace/keys", &[("name", "integration")])
        .await;
    let res = reqwest::Client::new()
        .get(nginx.url("/data/3"))
        .header("X-Keyward-Owner", "boss@example.com")
        .bearer_auth(&integration.secret)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let seen = json(&res.text().await.unwrap());
    assert_eq!(seen["headers"]["x-keyward-key-id"], integration.id);
    assert!(
        seen["headers"]
            .get("x-keyward-owner")
            .is_none_or(|v| v == ""),
        "{seen}"
    );

    // Two Authorization headers: refused (nginx itself refuses the
    // duplicate header line), the service not reached.
    let res = reqwest::Client::new()
        .get(nginx.url("/data/4"))
        // Not a real key: nginx logs the refused header line at `info`.
        .header("authorization", "")
        .header("authorization", "Bearer sk_live_not_a_real_key")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(!res.text().await.unwrap().contains("\"echo\""));

    // A key of another workspace of this keyward, with the permission, and
    // the client naming that workspace itself: refused.
    let zed = app.other_workspace_admin().await;
    let foreign = zed
        .create_key(
            "/workspace/keys",
            &[("name", "foreign"), ("permissions", "data:read")],
        )
        .await;
    let other = me(&app.base, &foreign.secret).await.2["workspace_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = reqwest::Client::new()
        .get(nginx.url("/data/5"))
        .header("X-Keyward-Workspace", &other)
        .bearer_auth(&foreign.secret)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let body = res.text().await.unwrap();
    assert_eq!(json(&body)["error"]["code"], "WRONG_WORKSPACE", "{body}");
    assert!(!body.contains(&other));

    // The key never reaches nginx's log either, and the documented
    // configuration runs without warnings about unset variables.
    let log = nginx.log();
    assert!(!log.contains(&reader.secret));
    assert!(!log.contains("uninitialized"), "{log}");
}

#[tokio::test]
#[ignore = "needs nginx (Debian nginx-light); run with --ignored"]
async fn nginx_answers_503_when_keyward_cannot_be_reached() {
    let echo = spawn_echo();
    // Nothing listens on this port: nginx cannot ask keyward.
    let nginx = NginxConfig::start(free_port(), echo, "wsp_any");
    let (status, _, body) = get(&nginx.url("/data/1"), Some("sk_live_whatever")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(json(&body)["error"]["code"], "UNAVAILABLE");
    assert!(!body.contains("\"echo\""), "the service is not reached");
}

#[tokio::test]
#[ignore = "needs nginx (Debian nginx-light); run with --ignored"]
async fn nginx_passes_the_client_address_to_ip_allowlists() {
    let (app, key, workspace) = crate::allowlists::behind_a_gateway().await;
    let echo = spawn_echo();
    let nginx = NginxConfig::start(port_of(&app.base), echo, &workspace);
    crate::allowlists::assert_gateway_passes_the_client(&nginx.url("/data/1"), &key.secret, || {
        nginx.log()
    })
    .await;
}

#[tokio::test]
#[ignore = "needs nginx (Debian nginx-light); run with --ignored"]
async fn nginx_spends_the_configured_cost_never_the_clients() {
    let (app, keys, workspace) = crate::quotas::behind_a_gateway().await;
    let echo = spawn_echo();
    let nginx = NginxConfig::start(port_of(&app.base), echo, &workspace);
    crate::quotas::assert_gateway_spends_its_cost(|p| nginx.url(p), &keys, || nginx.log()).await;
}
