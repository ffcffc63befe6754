//! A connection that breaks while `COMMIT` is in flight (PostgreSQL
//! restarting, a network cut): the change may or may not have been made,
//! so nobody is told "nothing was saved". A checkable change is settled by
//! asking the database again; an unknown outcome says so, and a create
//! retried with the same `Idempotency-Key` finds the key that was made.
//!
//! The cut is made by a small TCP proxy between keyward and PostgreSQL
//! (plain text: `sslmode=disable`): armed, it acts on the next client
//! message that is the simple query `COMMIT` — forwarding it and letting
//! the server commit before closing both sides (made), or closing both
//! sides without forwarding it (not made) — and it can then keep the
//! database unreachable for a while.

use crate::helpers::*;
use keyward::config::DatabaseUrl;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The simple-query message `COMMIT`: 'Q', its length (4 + 7), the text.
const COMMIT: &[u8] = b"Q\0\0\0\x0bCOMMIT\0";

#[derive(Debug, Clone, Copy)]
struct Cut {
    /// Forward the `COMMIT` and let the server commit before cutting.
    commit_first: bool,
    /// After the cut, cut every connection and refuse new ones until
    /// [`Proxy::restore`].
    then_down: bool,
}

#[derive(Default)]
struct ProxyState {
    armed: Mutex<Option<Cut>>,
    down: AtomicBool,
    cuts: AtomicUsize,
}

struct Proxy {
    port: u16,
    state: Arc<ProxyState>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(ProxyState::default());
        let shared = state.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let state = shared.clone();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    if state.down.load(Ordering::SeqCst) {
                        return;
                    }
                    if let Ok(server) = TcpStream::connect(&upstream).await {
                        pump(client, server, state).await;
                    }
                });
            }
        });
        Proxy { port, state }
    }

    fn arm(&self, cut: Cut) {
        *self.state.armed.lock().unwrap() = Some(cut);
    }

    fn cuts(&self) -> usize {
        self.state.cuts.load(Ordering::SeqCst)
    }

    fn restore(&self) {
        self.state.down.store(false, Ordering::SeqCst);
    }
}

/// Forward both ways until either side closes, or the armed cut (or the
/// outage) ends the connection: dropping both streams closes both sides.
async fn pump(mut client: TcpStream, mut server: TcpStream, state: Arc<ProxyState>) {
    let (mut up, mut down) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        tokio::select! {
            n = client.read(&mut up) => {
                let Ok(n @ 1..) = n else { return };
                if state.down.load(Ordering::SeqCst) {
                    return;
                }
                let chunk = &up[..n];
                if chunk.windows(COMMIT.len()).any(|w| w == COMMIT) {
                    let cut = state.armed.lock().unwrap().take();
                    if let Some(cut) = cut {
                        if cut.commit_first {
                            let _ = server.write_all(chunk).await;
                            // The server commits in well under this; its
                            // answer is never forwarded.
                            tokio::time::sleep(Duration::from_millis(300)).await;
                        }
                        if cut.then_down {
                            state.down.store(true, Ordering::SeqCst);
                        }
                        state.cuts.fetch_add(1, Ordering::SeqCst);
                        return;
                    }
                }
                if server.write_all(chunk).await.is_err() {
                    return;
                }
            }
            n = server.read(&mut down) => {
                let Ok(n @ 1..) = n else { return };
                if state.down.load(Ordering::SeqCst) || client.write_all(&down[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// `host:port` of a PostgreSQL URL, and the URL with another port there.
fn through_proxy(url: &str, port: u16) -> (String, String) {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (authority, path) = rest.split_once('/').unwrap();
    let (user, hostport) = authority
        .rsplit_once('@')
        .map_or((None, authority), |(u, h)| (Some(u), h));
    let host = hostport.rsplit_once(':').map_or(hostport, |(h, _)| h);
    let upstream = if hostport.contains(':') {
        hostport.to_owned()
    } else {
        format!("{hostport}:5432")
    };
    let user = user.map(|u| format!("{u}@")).unwrap_or_default();
    // In plain text, so the proxy can see the COMMIT go by.
    let (name, query) = path.split_once('?').unwrap_or((path, ""));
    let mut params: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("sslmode="))
        .collect();
    params.push("sslmode=disable");
    let params = params.join("&");
    (
        upstream,
        format!("{scheme}://{user}{host}:{port}/{name}?{params}"),
    )
}

/// keyward set up on a fresh PostgreSQL database reached through a proxy.
struct Rig {
    app: TestApp,
    admin: Browser,
    proxy: Proxy,
    /// A management key of the admin with every management permission.
    manager: String,
    http: reqwest::Client,
    _db: TestDb,
}

impl Rig {
    async fn start() -> Rig {
        assert!(
            std::env::var("KEYWARD_TEST_DATABASE_URL").is_ok_and(|u| !u.is_empty()),
            "set KEYWARD_TEST_DATABASE_URL"
        );
        let (database, guard) = tokio::task::spawn_blocking(fresh_database).await.unwrap();
        let DatabaseUrl::Postgres(url) = database else {
            panic!("needs PostgreSQL")
        };
        let (upstream, _) = through_proxy(&url, 0);
        let proxy = Proxy::start(upstream).await;
        let (_, proxied) = through_proxy(&url, proxy.port);
        // No usage flush while a cut is armed: the cut is for the request's
        // own commit.
        let app = spawn_app_on_with(DatabaseUrl::Postgres(proxied), |c| {
            c.usage_flush_interval = Duration::from_secs(3600);
        })
        .await;
        let admin = app.browser();
        let res = admin
            .complete_setup(&app, "Acme", "Ada Admin", ADMIN_EMAIL, ADMIN_PASSWORD)
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "setup succeeds");
        let manager = admin
            .create_key(
                "/workspace/keys",
                &[
                    ("name", "Provisioning"),
                    ("expiry", "never"),
                    ("permissions", "keyward:keys:read"),
                    ("permissions", "keyward:keys:write"),
                ],
            )
            .await
            .secret;
        // The management key is cached once used: its own check needs no
        // database while a cut is armed.
        assert_eq!(me(&app.base, &manager).await.0, StatusCode::OK);
        Rig {
            app,
            admin,
            proxy,
            manager,
            http: reqwest::Client::new(),
            _db: guard,
        }
    }

    async fn api(&self, rb: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let res = rb.bearer_auth(&self.manager).send().await.unwrap();
        let status = res.status();
        let text = res.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn api_post(&self, path: &str) -> (StatusCode, Value) {
        let url = format!("{}{path}", self.app.base);
        self.api(self.http.post(url).json(&json!({}))).await
    }

    async fn create(&self, idem: &str, name: &str) -> (StatusCode, Value) {
        let url = format!("{}/api/v1/keys", self.app.base);
        let rb = self
            .http
            .post(url)
            .header("Idempotency-Key", idem)
            .json(&json!({"name": name, "kind": "workspace"}));
        self.api(rb).await
    }

    /// A key to act on, known to work.
    async fn key(&self, name: &str) -> CreatedKey {
        let key = self
            .admin
            .create_key("/workspace/keys", &[("name", name)])
            .await;
        assert_eq!(me(&self.app.base, &key.secret).await.0, StatusCode::OK);
        key
    }

    /// The page's revoke form, sent with a token fetched before any cut.
    async fn page_revoke(&self, id: &str) -> (StatusCode, String, String) {
        let token = self.admin.csrf().await;
        let res = self
            .admin
            .post_raw(&format!("/keys/{id}/revoke"), &[("csrf_token", &token)])
            .await;
        let status = res.status();
        let to = location(&res);
        (status, to, res.text().await.unwrap())
    }

    /// How the database itself sees the key: revoked, disabled.
    async fn stored(&self, id: &str) -> (bool, bool) {
        let id = id.to_owned();
        self.app
            .with_db(move |c| {
                use diesel::prelude::*;
                use keyward::db::schema::api_keys;
                let (revoked, disabled): (
                    Option<chrono::NaiveDateTime>,
                    Option<chrono::NaiveDateTime>,
                ) = api_keys::table
                    .filter(api_keys::id.eq(&id))
                    .select((api_keys::revoked_at, api_keys::disabled_at))
                    .first(c)
                    .unwrap();
                (revoked.is_some(), disabled.is_some())
            })
            .await
    }

    /// Wait until the app answers from the database again.
    async fn recovered(&self) {
        for _ in 0..100 {
            if self.admin.page("/readyz").await.0 == StatusCode::OK {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the database never came back");
    }
}

const MADE: Cut = Cut {
    commit_first: true,
    then_down: false,
};
const NOT_MADE: Cut = Cut {
    commit_first: false,
    then_down: false,
};

fn says_nothing_was_saved(body: &str) -> bool {
    body.contains("nothing was saved")
}

#[tokio::test]
#[ignore = "needs PostgreSQL: run with KEYWARD_TEST_DATABASE_URL and --ignored"]
async fn pg_only_a_change_committed_as_the_connection_broke_answers_done() {
    let rig = Rig::start().await;

    // The management API's revoke: committed, answer lost on the way.
    let key = rig.key("api revoke").await;
    rig.proxy.arm(MADE);
    let (s, body) = rig
        .api_post(&format!("/api/v1/keys/{}/revoke", key.id))
        .await;
    assert_eq!(rig.proxy.cuts(), 1, "the commit was cut");
    assert_eq!(
        (s, body["status"].as_str()),
        (StatusCode::OK, Some("revoked")),
        "{body}"
    );
    assert_eq!(rig.stored(&key.id).await, (true, false));
    assert_eq!(
        me_code(&rig.app.base, &key.secret).await,
        (StatusCode::UNAUTHORIZED, "REVOKED".into())
    );

    // The page's revoke form.
    rig.recovered().await;
    let key = rig.key("page revoke").await;
    rig.proxy.arm(MADE);
    let (s, to, body) = rig.page_revoke(&key.id).await;
    assert_eq!(rig.proxy.cuts(), 2, "the commit was cut");
    assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
    assert!(!to.is_empty());
    assert_eq!(rig.stored(&key.id).await, (true, false));

    // Disable over the API.
    rig.recovered().await;
    let key = rig.key("api disable").await;
    rig.proxy.arm(MADE);
    let (s, body) = rig
        .api_post(&format!("/api/v1/keys/{}/disable", key.id))
        .await;
    assert_eq!(rig.proxy.cuts(), 3);
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(rig.stored(&key.id).await, (false, true));

    // An edit over the API.
    rig.recovered().await;
    rig.proxy.arm(MADE);
    let url = format!("{}/api/v1/keys/{}", rig.app.base, key.id);
    let (s, body) = rig
        .api(rig.http.patch(url).json(&json!({"name": "renamed"})))
        .await;
    assert_eq!(rig.proxy.cuts(), 4);
    assert_eq!(
        (s, body["name"].as_str()),
        (StatusCode::OK, Some("renamed")),
        "{body}"
    );

    // The settings page's switch for every key of the workspace.
    rig.recovered().await;
    let token = rig.admin.csrf().await;
    rig.proxy.arm(MADE);
    let res = rig
        .admin
        .post_raw(
            "/workspace/settings/api-keys",
            &[("csrf_token", &token), ("enabled", "off")],
        )
        .await;
    assert_eq!(rig.proxy.cuts(), 5);
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let switched_off = rig
        .app
        .with_db(|c| {
            use diesel::prelude::*;
            use keyward::db::schema::workspaces;
            workspaces::table
                .select(workspaces::api_keys_disabled_at)
                .first::<Option<chrono::NaiveDateTime>>(c)
                .unwrap()
                .is_some()
        })
        .await;
    assert!(switched_off);
    rig.recovered().await;
    let token = rig.admin.csrf().await;
    let res = rig
        .admin
        .post_raw(
            "/workspace/settings/api-keys",
            &[("csrf_token", &token), ("enabled", "on")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);

    // A creation: the key made is found by its secret, and this answer,
    // the one the secret is shown in, shows it.
    rig.recovered().await;
    rig.proxy.arm(MADE);
    let (s, created) = rig.create("made-1", "made while cut").await;
    assert_eq!(rig.proxy.cuts(), 6);
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert_eq!(me(&rig.app.base, &secret).await.0, StatusCode::OK);
    let (s, again) = rig.create("made-1", "made while cut").await;
    assert_eq!(s, StatusCode::OK, "{again}");
    assert_eq!(again["idempotent_replay"], true);
    assert_eq!(again["id"], created["id"]);
}

#[tokio::test]
#[ignore = "needs PostgreSQL: run with KEYWARD_TEST_DATABASE_URL and --ignored"]
async fn pg_only_a_change_cut_off_before_its_commit_answers_not_saved() {
    let rig = Rig::start().await;

    let key = rig.key("api revoke").await;
    rig.proxy.arm(NOT_MADE);
    let (s, body) = rig
        .api_post(&format!("/api/v1/keys/{}/revoke", key.id))
        .await;
    assert_eq!(rig.proxy.cuts(), 1, "the commit was cut");
    assert_eq!(
        (s, body["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("UNAVAILABLE")),
        "{body}"
    );
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("was not made"), "{detail}");
    assert_eq!(rig.stored(&key.id).await, (false, false));
    rig.recovered().await;
    assert_eq!(me(&rig.app.base, &key.secret).await.0, StatusCode::OK);

    // The page says so too; the revoke then works.
    rig.proxy.arm(NOT_MADE);
    let (s, _, body) = rig.page_revoke(&key.id).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.contains("was not made"), "{body}");
    assert_eq!(rig.stored(&key.id).await, (false, false));
    rig.recovered().await;
    let (s, _, _) = rig.page_revoke(&key.id).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert_eq!(rig.stored(&key.id).await, (true, false));

    // A creation cut off before its commit made nothing; the answer says
    // so, and a retry with the same Idempotency-Key makes the key.
    rig.proxy.arm(NOT_MADE);
    let (s, body) = rig.create("lost-1", "lost").await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(rig.proxy.cuts(), 3);
    rig.recovered().await;
    let (s, made) = rig.create("lost-1", "lost").await;
    assert_eq!(s, StatusCode::CREATED, "{made}");
    assert!(made["secret"].is_string());
}

#[tokio::test]
#[ignore = "needs PostgreSQL: run with KEYWARD_TEST_DATABASE_URL and --ignored"]
async fn pg_only_an_unknown_outcome_says_so_and_a_retry_finds_the_key() {
    let rig = Rig::start().await;
    let down_after = |commit_first| Cut {
        commit_first,
        then_down: true,
    };

    // Committed, then the database stays away longer than the request
    // waits: the outcome is unknown, and the answer says so.
    rig.proxy.arm(down_after(true));
    let (s, body) = rig.create("doubt-1", "in doubt").await;
    assert_eq!(rig.proxy.cuts(), 1);
    assert_eq!(
        (s, body["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("OUTCOME_UNKNOWN")),
        "{body}"
    );
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("may or may not have been made") && detail.contains("Idempotency-Key"),
        "{detail}"
    );
    assert!(!says_nothing_was_saved(detail));
    rig.proxy.restore();
    rig.recovered().await;
    // The retry leads to the key that was made (without its secret).
    let (s, replay) = rig.create("doubt-1", "in doubt").await;
    assert_eq!(s, StatusCode::OK, "{replay}");
    assert_eq!(replay["idempotent_replay"], true);
    assert_eq!(replay["key"]["name"], "in doubt");
    let (_, listed) = rig
        .api(
            rig.http
                .get(format!("{}/api/v1/keys?q=in%20doubt", rig.app.base)),
        )
        .await;
    assert_eq!(listed["keys"].as_array().unwrap().len(), 1, "{listed}");

    // Not committed, database away: unknown too; the retry makes the key.
    rig.proxy.arm(down_after(false));
    let (s, body) = rig.create("doubt-2", "never made").await;
    assert_eq!(
        (s, body["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("OUTCOME_UNKNOWN")),
        "{body}"
    );
    rig.proxy.restore();
    rig.recovered().await;
    let (s, made) = rig.create("doubt-2", "never made").await;
    assert_eq!(s, StatusCode::CREATED, "{made}");

    // A revoke, over the API and on the page: never "nothing was saved".
    let key = rig.key("revoked in doubt").await;
    rig.proxy.arm(down_after(true));
    let (s, body) = rig
        .api_post(&format!("/api/v1/keys/{}/revoke", key.id))
        .await;
    assert_eq!(
        (s, body["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("OUTCOME_UNKNOWN")),
        "{body}"
    );
    rig.proxy.restore();
    rig.recovered().await;
    assert_eq!(rig.stored(&key.id).await, (true, false), "it was made");

    let key = rig.key("page revoke in doubt").await;
    rig.proxy.arm(down_after(true));
    let (s, _, body) = rig.page_revoke(&key.id).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("may or may not have been made"), "{body}");
    assert!(!says_nothing_was_saved(&body), "{body}");
    rig.proxy.restore();
    rig.recovered().await;
    assert_eq!(rig.stored(&key.id).await, (true, false));
}
