//! Test harness: spawn the real app on port 0 with a fresh database, and a
//! cookie-keeping HTTP client per simulated browser.

use keyward::config::{Config, DatabaseUrl};
use keyward::db::{self, DbConn, Pool};
use reqwest::{Response, StatusCode};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

pub const ADMIN_EMAIL: &str = "ada@example.com";
pub const ADMIN_PASSWORD: &str = "correct horse battery";

/// A fresh database for one test, removed afterwards.
pub enum TestDb {
    Sqlite(
        #[expect(dead_code, reason = "kept alive so the directory is deleted on drop")]
        tempfile::TempDir,
    ),
    Postgres {
        admin_url: String,
        name: String,
    },
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let TestDb::Postgres { admin_url, name } = self {
            let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
            if let Ok(mut conn) = pg_admin(admin_url) {
                let _ = diesel::connection::SimpleConnection::batch_execute(&mut conn, &sql);
            }
        }
    }
}

fn pg_admin(url: &str) -> diesel::ConnectionResult<diesel::PgConnection> {
    diesel::Connection::establish(url)
}

/// Replace the database name in a PostgreSQL URL.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let prefix = base.rsplit_once('/').map_or(base, |(p, _)| p);
    match query {
        Some(q) => format!("{prefix}/{name}?{q}"),
        None => format!("{prefix}/{name}"),
    }
}

/// The migrated template database all test databases are cloned from (made
/// once per test process), and a lock serialising clones: PostgreSQL refuses
/// to copy a template that another session is using.
fn pg_template(admin_url: &str) -> &'static str {
    static TEMPLATE: OnceLock<String> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        use diesel::connection::SimpleConnection;
        let pid = std::process::id();
        let name = format!("keyward_tpl_{pid}");
        let mut admin = pg_admin(admin_url).expect("connect to KEYWARD_TEST_DATABASE_URL");
        // Leftovers of earlier runs that were killed before cleaning up.
        let stale: Vec<String> = diesel::RunQueryDsl::load(
            diesel::sql_query(
                "SELECT datname AS name FROM pg_database WHERE datname LIKE 'keyward\\_t%'",
            ),
            &mut admin,
        )
        .map(|rows: Vec<DbName>| rows.into_iter().map(|r| r.name).collect())
        .unwrap_or_default();
        // Only those of processes that are gone: another test process
        // running at the same time (a second suite, a colleague's run) keeps
        // its databases.
        for old in stale
            .iter()
            .filter(|n| owner_pid(n).is_none_or(|p| !process_alive(p)))
        {
            let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS \"{old}\" WITH (FORCE)"));
        }
        // Two statements: PostgreSQL runs a multi-statement batch as one
        // transaction, which these commands refuse.
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .expect("drop old template database");
        admin
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .expect("create template database");
        let url = DatabaseUrl::Postgres(with_database(admin_url, &name));
        {
            let pool = db::pool(&url, 1).expect("connect to template");
            let mut conn = pool.get().expect("template connection");
            db::migrate(&mut conn).expect("migrate template");
        }
        name
    })
}

/// The test process a database belongs to: `keyward_tpl_<pid>` or
/// `keyward_t_<pid>_<n>`.
fn owner_pid(name: &str) -> Option<u32> {
    let rest = name
        .strip_prefix("keyward_tpl_")
        .or_else(|| name.strip_prefix("keyward_t_"))?;
    rest.split('_').next()?.parse().ok()
}

fn process_alive(pid: u32) -> bool {
    pid == std::process::id() || std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[derive(diesel::QueryableByName)]
struct DbName {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
}

/// A fresh, empty database; dropped (PostgreSQL) or deleted (SQLite) with
/// the guard.
pub fn fresh_database() -> (DatabaseUrl, TestDb) {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    static CLONE_LOCK: Mutex<()> = Mutex::new(());
    match std::env::var("KEYWARD_TEST_DATABASE_URL") {
        Ok(admin_url) if !admin_url.trim().is_empty() => {
            use diesel::connection::SimpleConnection;
            let template = pg_template(&admin_url);
            let name = format!(
                "keyward_t_{}_{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::SeqCst)
            );
            {
                let _guard = CLONE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
                let mut admin = pg_admin(&admin_url).expect("connect to PostgreSQL");
                admin
                    .batch_execute(&format!(
                        "CREATE DATABASE \"{name}\" TEMPLATE \"{template}\""
                    ))
                    .expect("clone template database");
            }
            let url = DatabaseUrl::Postgres(with_database(&admin_url, &name));
            (url, TestDb::Postgres { admin_url, name })
        }
        _ => {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = DatabaseUrl::Sqlite(dir.path().join("keyward.db"));
            (url, TestDb::Sqlite(dir))
        }
    }
}

/// A database with no tables at all (for migration tests); dropped or
/// deleted with the guard.
pub fn empty_database() -> (DatabaseUrl, TestDb) {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    match std::env::var("KEYWARD_TEST_DATABASE_URL") {
        Ok(admin_url) if !admin_url.trim().is_empty() => {
            use diesel::connection::SimpleConnection;
            let name = format!(
                "keyward_t_{}_e{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::SeqCst)
            );
            let mut admin = pg_admin(&admin_url).expect("connect to PostgreSQL");
            admin
                .batch_execute(&format!("CREATE DATABASE \"{name}\""))
                .expect("create empty database");
            let url = DatabaseUrl::Postgres(with_database(&admin_url, &name));
            (url, TestDb::Postgres { admin_url, name })
        }
        _ => {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = DatabaseUrl::Sqlite(dir.path().join("keyward.db"));
            (url, TestDb::Sqlite(dir))
        }
    }
}

/// A running application with its own database. Dropping it stops the
/// server and joins its threads before the pool and the database go, so no
/// test leaves threads holding connections behind (at process exit those
/// raced libpq's TLS clean-up and crashed the test binary).
pub struct TestApp {
    pub base: String,
    pub pool: Pool,
    pub setup_url: Option<String>,
    pub database: DatabaseUrl,
    pub state: actix_web::web::Data<keyward::state::AppState>,
    server: Option<(actix_web::dev::ServerHandle, std::thread::JoinHandle<()>)>,
    /// The database's guard; only the first instance on a database has it.
    _db: Option<TestDb>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some((handle, thread)) = self.server.take() {
            // The stop command is sent when `stop` is called; the returned
            // future only waits for completion, which `join` does instead.
            drop(handle.stop(false));
            let _ = thread.join();
        }
    }
}

/// The configuration tests run with.
pub fn test_config(database: DatabaseUrl) -> Config {
    let shared_database = matches!(database, DatabaseUrl::Postgres(_));
    Config {
        database,
        bind: "127.0.0.1:0".parse().expect("address"),
        secret: b"test-secret-test-secret-test-secret-test-secret-test-secret-!!".to_vec(),
        cookie_secure: false,
        session_idle: Duration::from_secs(30 * 60),
        session_max: Duration::from_secs(12 * 3600),
        workers: 1,
        usage_flush_interval: Duration::from_millis(100),
        redis_url: None,
        pool_size: 8,
        verifier: keyward::verify::Settings {
            shared_database,
            ..keyward::verify::Settings::default()
        },
        trusted_proxies: Vec::new(),
        public_url: None,
        sqlite_synchronous: keyward::db::SqliteSync::Full,
        metrics_bind: None,
        log_format: keyward::config::LogFormat::Text,
        leaks: Default::default(),
        // Test receivers listen on 127.0.0.1.
        webhook_allow_private: true,
        smtp_url: None,
        smtp_from: None,
        reminder_scan_every: Duration::from_secs(1),
        recovery_keys: None,
        oidc_providers: Vec::new(),
        sso_break_glass: Vec::new(),
    }
}

/// Wait (up to 30 s) until no instance holds a SQLite file's lock.
async fn wait_for_sqlite_lock(path: &std::path::Path) {
    let since = std::time::Instant::now();
    while keyward::db::claim_sqlite(path).is_err() {
        assert!(
            since.elapsed() < Duration::from_secs(30),
            "the earlier instance never let go of {}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Start the app on a fresh, empty database (first-run setup pending). The
/// server runs on its own thread with its own actix system, as in the binary.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// [`spawn_app`] with changes to the test configuration.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Config) + Send + 'static) -> TestApp {
    let (database, guard) = tokio::task::spawn_blocking(fresh_database)
        .await
        .expect("database task");
    start(database, Some(guard), configure).await
}

async fn start(
    database: DatabaseUrl,
    guard: Option<TestDb>,
    configure: impl FnOnce(&mut Config) + Send + 'static,
) -> TestApp {
    if guard.is_none()
        && let DatabaseUrl::Sqlite(path) = &database
    {
        // A restart on the same file: the earlier instance's worker threads
        // may let go of the instance lock a moment after its server stopped.
        wait_for_sqlite_lock(path).await;
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    let db = database.clone();
    let thread = std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let mut config = test_config(db);
            configure(&mut config);
            let running = keyward::build(config).await.expect("app starts");
            let server = running.server;
            let _ = tx.send((
                running.port,
                running.state.clone(),
                running.setup_url,
                server.handle(),
            ));
            drop(running.state);
            let _ = server.await;
        });
    });
    let (port, state, setup_url, handle) = rx.await.expect("app started");
    if matches!(database, DatabaseUrl::Postgres(_)) {
        // The change feed's first connection flushes the cache (and the
        // stale-if-error store): let it happen before a test fills them.
        let since = std::time::Instant::now();
        while state
            .verifier
            .feed_status()
            .connects
            .load(Ordering::Relaxed)
            == 0
        {
            assert!(
                since.elapsed() < std::time::Duration::from_secs(60),
                "the change feed never connected"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
    TestApp {
        base: format!("http://127.0.0.1:{port}"),
        pool: state.pool.clone(),
        state,
        setup_url,
        database,
        server: Some((handle, thread)),
        _db: guard,
    }
}

/// Start the app and complete first-run setup; returns the app and the
/// admin's signed-in browser.
pub async fn spawn_ready() -> (TestApp, Browser) {
    spawn_ready_with(|_| {}).await
}

/// [`spawn_ready`] with changes to the test configuration.
pub async fn spawn_ready_with(
    configure: impl FnOnce(&mut Config) + Send + 'static,
) -> (TestApp, Browser) {
    let app = spawn_app_with(configure).await;
    let admin = app.browser();
    let res = admin
        .complete_setup(&app, "Acme", "Ada Admin", ADMIN_EMAIL, ADMIN_PASSWORD)
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "setup succeeds");
    (app, admin)
}

/// Start the app on a given database (kept after the app stops).
pub async fn spawn_app_on(database: DatabaseUrl) -> TestApp {
    spawn_app_on_with(database, |_| {}).await
}

/// [`spawn_app_on`] with changes to the test configuration.
pub async fn spawn_app_on_with(
    database: DatabaseUrl,
    configure: impl FnOnce(&mut Config) + Send + 'static,
) -> TestApp {
    start(database, None, configure).await
}

impl TestApp {
    /// A second instance on the same database, as behind a load balancer
    /// (PostgreSQL: SQLite refuses a second instance).
    pub async fn another_instance(
        &self,
        configure: impl FnOnce(&mut Config) + Send + 'static,
    ) -> TestApp {
        start(self.database.clone(), None, configure).await
    }
}

impl TestApp {
    /// A new browser (own cookie jar, no redirects followed).
    pub fn browser(&self) -> Browser {
        Browser::new(&self.base)
    }

    /// Run a query directly against the app's database.
    pub async fn with_db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut DbConn) -> T + Send + 'static,
    ) -> T {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = pool.get().expect("connection");
            f(&mut conn)
        })
        .await
        .expect("db task")
    }

    /// All events of all workspaces, oldest first.
    pub async fn events(&self) -> Vec<keyward::db::events::Event> {
        self.with_db(|c| {
            use diesel::prelude::*;
            use keyward::db::schema::events;
            events::table
                .select(keyward::db::events::Event::as_select())
                .order(events::seq.asc())
                .load(c)
                .expect("events")
        })
        .await
    }

    /// Actions of all events, oldest first.
    pub async fn event_actions(&self) -> Vec<String> {
        self.events().await.into_iter().map(|e| e.action).collect()
    }

    /// Add a user through the admin UI, let them set their password through
    /// the invitation link, and return their signed-in browser.
    pub async fn add_user(
        &self,
        admin: &Browser,
        email: &str,
        role: &str,
        password: &str,
    ) -> Browser {
        let res = admin
            .post_form(
                "/workspace/users",
                &[("email", email), ("name", "Test User"), ("role", role)],
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        let body = res.text().await.unwrap();
        let link = invite_link(&body).expect("invitation link shown");
        let user = self.browser();
        let path = link
            .split_once("/invite/")
            .map(|(_, t)| format!("/invite/{t}"))
            .unwrap();
        let res = user
            .post_form(
                &path,
                &[("password", password), ("password_confirm", password)],
            )
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "invitation accepted");
        let res = user.login(email, password).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "invited user signs in");
        user
    }
}

impl TestApp {
    /// Make the first admin (Ada, an existing person) the admin of a new
    /// workspace named `name` as well, as `keyward workspace create` does.
    pub async fn ada_also_admin_of(&self, name: &'static str) {
        self.with_db(move |c| {
            keyward::db::users::create_workspace(
                c,
                name,
                ADMIN_EMAIL,
                "Ada",
                keyward::db::users::FirstAdmin::Password("unused"),
                "test tooling",
            )
            .unwrap();
        })
        .await;
    }

    /// Create a second workspace on the same instance (as an operator's
    /// tooling would) and return its admin, signed in.
    pub async fn other_workspace_admin(&self) -> Browser {
        let hash = keyward::domain::password::hash("zed's long password").unwrap();
        self.with_db(move |c| {
            keyward::db::users::create_workspace(
                c,
                "Other Corp",
                "zed@other.example",
                "Zed",
                keyward::db::users::FirstAdmin::Password(&hash),
                "test tooling",
            )
            .unwrap();
        })
        .await;
        let zed = self.browser();
        let res = zed.login("zed@other.example", "zed's long password").await;
        assert_eq!(
            res.status(),
            StatusCode::SEE_OTHER,
            "second workspace admin signs in"
        );
        zed
    }
}

/// The first word a spawned `keyward` prints on its standard output that
/// `wanted` picks (the address or setup link it prints); read on a blocking
/// thread so the test's runtime goes on.
pub async fn printed_word(child: &mut std::process::Child, wanted: fn(&str) -> bool) -> String {
    use std::io::{BufRead, BufReader};
    let stdout = child.stdout.take().expect("stdout is piped");
    tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find_map(|l| l.split_whitespace().find(|w| wanted(w)).map(str::to_owned))
    })
    .await
    .unwrap()
    .expect("the expected line was printed")
}

/// The invitation link shown after adding a user.
pub fn invite_link(body: &str) -> Option<String> {
    let start = body.find("id=\"invite-link\"")?;
    let rest = &body[start..];
    let v = rest.find("value=\"")? + 7;
    let end = rest[v..].find('"')?;
    Some(rest[v..v + end].to_owned())
}

/// One simulated browser.
#[derive(Clone)]
pub struct Browser {
    pub base: String,
    pub client: reqwest::Client,
}

/// The CSRF token in a page's hidden form field.
pub fn csrf_from(body: &str) -> Option<String> {
    let marker = "name=\"csrf_token\" value=\"";
    let start = body.find(marker)? + marker.len();
    let end = body[start..].find('"')?;
    Some(body[start..start + end].to_owned())
}

impl Browser {
    /// A browser for the app at `base` (own cookie jar, no redirects followed).
    pub fn new(base: &str) -> Browser {
        Browser {
            base: base.to_owned(),
            client: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                // Never reuse a connection idle for nearly as long as the
                // server keeps one (actix's 5 s): a request sent as the
                // server closes it fails with IncompleteMessage (CI saw it).
                .pool_idle_timeout(std::time::Duration::from_secs(2))
                .build()
                .expect("client"),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }

    /// GET and return status and body.
    pub async fn page(&self, path: &str) -> (StatusCode, String) {
        let res = self.get(path).await;
        let status = res.status();
        (status, res.text().await.expect("body"))
    }

    /// This browser's current CSRF token (from a page that always shows one).
    pub async fn csrf(&self) -> String {
        let (_, body) = self.page("/login").await;
        csrf_from(&body).expect("login page has a CSRF token")
    }

    /// POST a form as a plain browser would, with the CSRF token.
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        let token = self.csrf().await;
        let mut all: Vec<(&str, &str)> = vec![("csrf_token", &token)];
        all.extend_from_slice(fields);
        self.post_raw(path, &all).await
    }

    /// POST a form as htmx would: CSRF token in a header, `HX-Request` set.
    pub async fn post_htmx(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        let token = self.csrf().await;
        self.client
            .post(self.url(path))
            .header("HX-Request", "true")
            .header("X-CSRF-Token", token)
            .form(fields)
            .send()
            .await
            .expect("POST")
    }

    /// POST exactly these fields (no token added).
    pub async fn post_raw(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        self.client
            .post(self.url(path))
            .form(fields)
            .send()
            .await
            .expect("POST")
    }

    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.post_form("/login", &[("email", email), ("password", password)])
            .await
    }

    /// Complete first-run setup through the setup page.
    pub async fn complete_setup(
        &self,
        app: &TestApp,
        workspace: &str,
        name: &str,
        email: &str,
        password: &str,
    ) -> Response {
        let url = app.setup_url.as_deref().expect("setup pending");
        let token = url.split_once("token=").map(|(_, t)| t.to_owned()).unwrap();
        // The printed link may name a public URL in front of the app.
        let res = self.get(&format!("/setup?token={token}")).await;
        assert_eq!(
            res.status(),
            StatusCode::OK,
            "setup page opens with the token"
        );
        self.post_form(
            "/setup",
            &[
                ("token", &token),
                ("workspace", workspace),
                ("name", name),
                ("email", email),
                ("password", password),
                ("password_confirm", password),
            ],
        )
        .await
    }

    /// Whether this browser is signed in (its account page opens).
    /// Choose a password through an invitation path (`/invite/…`) and
    /// sign in with it.
    pub async fn choose_password_and_sign_in(&self, invite: &str, email: &str, password: &str) {
        let res = self
            .post_form(
                invite,
                &[("password", password), ("password_confirm", password)],
            )
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "password chosen");
        assert_eq!(
            self.login(email, password).await.status(),
            StatusCode::SEE_OTHER,
            "signed in with it"
        );
    }

    pub async fn signed_in(&self) -> bool {
        let res = self.get("/account").await;
        match res.status() {
            StatusCode::OK => true,
            StatusCode::SEE_OTHER => {
                let to = res.headers()["location"].to_str().unwrap().to_owned();
                assert!(
                    to.starts_with("/login"),
                    "signed-out users go to sign-in, got {to}"
                );
                false
            }
            other => panic!("unexpected status {other}"),
        }
    }
}

/// A response's Location header.
pub fn location(res: &Response) -> String {
    res.headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// The value of a named hidden input in a page.
pub fn hidden(body: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = body.find(&marker)? + marker.len();
    let end = body[start..].find('"')?;
    Some(body[start..start + end].to_owned())
}

/// A key created through the UI: its one-time secret and its public id.
#[derive(Debug, Clone)]
pub struct CreatedKey {
    pub secret: String,
    pub id: String,
}

/// The secret shown on the "Save your key" view.
pub fn shown_secret(body: &str) -> Option<String> {
    // A wrapping <textarea id="new-key" …>secret</textarea> (or an <input value>).
    let start = body.find("id=\"new-key\"")?;
    let rest = &body[start..];
    let tag_end = rest.find('>')?;
    if let Some(v) = rest[..tag_end].find("value=\"") {
        let v = v + 7;
        let end = rest[v..].find('"')?;
        return Some(rest[v..v + end].to_owned());
    }
    let end = rest[tag_end + 1..].find('<')?;
    Some(rest[tag_end + 1..tag_end + 1 + end].trim().to_owned())
}

impl Browser {
    /// Open the create form of `list` ("/account/keys" or "/workspace/keys")
    /// and submit it with `fields` over sensible defaults. Returns the response.
    pub async fn submit_new_key(&self, list: &str, fields: &[(&str, &str)]) -> Response {
        let (status, form) = self.page(&format!("{list}/new")).await;
        assert_eq!(status, StatusCode::OK, "create form opens");
        let nonce = hidden(&form, "nonce").expect("form nonce");
        let mut all: Vec<(&str, &str)> = vec![("nonce", &nonce)];
        for (k, v) in [
            ("name", "Test key"),
            ("environment", "live"),
            ("expiry", "90"),
        ] {
            if !fields.iter().any(|(f, _)| *f == k) {
                all.push((k, v));
            }
        }
        all.extend_from_slice(fields);
        self.post_form(list, &all).await
    }

    /// Create a key and return its secret and id.
    pub async fn create_key(&self, list: &str, fields: &[(&str, &str)]) -> CreatedKey {
        let res = self.submit_new_key(list, fields).await;
        assert_eq!(res.status(), StatusCode::OK, "key created");
        let body = res.text().await.unwrap();
        let secret = shown_secret(&body).expect("secret shown");
        let id_start = body.find("<code>key_").expect("key id shown") + 6;
        let id_end = body[id_start..].find('<').unwrap();
        CreatedKey {
            secret,
            id: body[id_start..id_start + id_end].to_owned(),
        }
    }
}

/// Call `/api/v1/me` with a bearer key; returns status, headers and JSON.
pub async fn me(
    base: &str,
    key: &str,
) -> (StatusCode, reqwest::header::HeaderMap, serde_json::Value) {
    let res = reqwest::Client::new()
        .get(format!("{base}/api/v1/me"))
        .bearer_auth(key)
        .send()
        .await
        .expect("GET /api/v1/me");
    let status = res.status();
    let headers = res.headers().clone();
    (
        status,
        headers,
        res.json().await.unwrap_or(serde_json::Value::Null),
    )
}

/// The error code of a failed `/api/v1/me` answer.
pub async fn me_code(base: &str, key: &str) -> (StatusCode, String) {
    let (status, _, json) = me(base, key).await;
    let code = json["error"]["code"].as_str().unwrap_or("").to_owned();
    (status, code)
}

/// Call `/api/v1/keys/verify`.
pub async fn verify(base: &str, body: serde_json::Value) -> serde_json::Value {
    let res = reqwest::Client::new()
        .post(format!("{base}/api/v1/keys/verify"))
        .json(&body)
        .send()
        .await
        .expect("POST verify");
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

impl Browser {
    /// POST a create form without opening it first (for refused roles).
    pub async fn submit_new_key_raw(&self, list: &str) -> StatusCode {
        self.post_form(
            list,
            &[
                ("nonce", "abc"),
                ("name", "x"),
                ("environment", "live"),
                ("expiry", "90"),
            ],
        )
        .await
        .status()
    }
}

/// A client of the management API authenticated by one key.
pub struct Api {
    base: String,
    key: String,
    http: reqwest::Client,
}

impl Api {
    pub fn new(base: &str, key: &str) -> Api {
        Api {
            base: base.to_owned(),
            key: key.to_owned(),
            // As the browser's: no reuse of a connection the server may be
            // closing.
            http: reqwest::Client::builder()
                .pool_idle_timeout(std::time::Duration::from_secs(2))
                .build()
                .expect("client"),
        }
    }

    pub async fn send(
        &self,
        rb: reqwest::RequestBuilder,
    ) -> (StatusCode, reqwest::header::HeaderMap, serde_json::Value) {
        let res = rb.bearer_auth(&self.key).send().await.expect("request");
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap();
        let json = if text.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
        };
        (status, headers, json)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, serde_json::Value) {
        let (s, _, j) = self
            .send(self.http.get(format!("{}{path}", self.base)))
            .await;
        (s, j)
    }

    pub async fn post(
        &self,
        path: &str,
        body: serde_json::Value,
    ) -> (StatusCode, serde_json::Value) {
        let (s, _, j) = self
            .send(self.http.post(format!("{}{path}", self.base)).json(&body))
            .await;
        (s, j)
    }

    pub async fn patch(
        &self,
        path: &str,
        body: serde_json::Value,
    ) -> (StatusCode, serde_json::Value) {
        let (s, _, j) = self
            .send(self.http.patch(format!("{}{path}", self.base)).json(&body))
            .await;
        (s, j)
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, serde_json::Value) {
        let (s, _, j) = self
            .send(self.http.delete(format!("{}{path}", self.base)))
            .await;
        (s, j)
    }

    /// Create with an `Idempotency-Key`.
    pub async fn create_idem(
        &self,
        idem: &str,
        body: serde_json::Value,
    ) -> (StatusCode, serde_json::Value) {
        let (s, _, j) = self
            .send(
                self.http
                    .post(format!("{}/api/v1/keys", self.base))
                    .header("Idempotency-Key", idem)
                    .json(&body),
            )
            .await;
        (s, j)
    }
}

/// Send raw HTTP/1.1 (what reqwest will not send as it is: an empty or a
/// repeated header, a chunked body) and read the whole answer. The request
/// asks the server to close the connection, so the answer ends at EOF.
pub async fn raw_http(base: &str, request: String) -> (u16, String, String) {
    let addr = base.trim_start_matches("http://").to_owned();
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut answer = Vec::new();
        // The server may close before reading all of an oversized body:
        // whatever it answered before that is kept.
        let _ = stream.read_to_end(&mut answer);
        let answer = String::from_utf8_lossy(&answer).into_owned();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status line: {answer:?}"));
        (status, head.to_ascii_lowercase(), body.to_owned())
    })
    .await
    .unwrap()
}
