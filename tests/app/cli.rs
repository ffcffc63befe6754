//! The `keyward` binary as an operator runs it.

use crate::helpers::*;
use keyward::config::DatabaseUrl;
use reqwest::StatusCode;
use std::process::{Command, Stdio};

fn keyward(database: &DatabaseUrl) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_keyward"));
    let url = match database {
        DatabaseUrl::Sqlite(path) => path.display().to_string(),
        DatabaseUrl::Postgres(url) => url.clone(),
    };
    cmd.env_clear()
        .env("DATABASE_URL", url)
        .env(
            "KEYWARD_SECRET",
            "cli-test-secret-cli-test-secret-cli-test-secret",
        )
        .env("RUST_LOG", "warn");
    cmd
}

/// Run `keyward serve` on a free port, logging everything to `log`, and
/// return it with the first word of its output that `wanted` picks (the
/// address or setup link it prints).
async fn serve_traced(
    database: &DatabaseUrl,
    log: &std::path::Path,
    wanted: fn(&str) -> bool,
) -> (std::process::Child, String) {
    let mut child = keyward(database)
        .env("KEYWARD_BIND", "127.0.0.1:0")
        .env("RUST_LOG", "trace")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let word = printed_word(&mut child, wanted).await;
    (child, word)
}

#[tokio::test]
async fn invalid_configuration_names_the_variable_and_exits_1() {
    let (db, _guard) = tokio::task::spawn_blocking(fresh_database).await.unwrap();
    let out = keyward(&db)
        .arg("migrate")
        .env("KEYWARD_BIND", "not-an-address")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("KEYWARD_BIND"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one clear line: {stderr}");

    let out = keyward(&db)
        .arg("migrate")
        .env("KEYWARD_SECRET", "short")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("KEYWARD_SECRET must be at least 32 characters")
    );
}

#[tokio::test]
async fn setup_command_creates_the_first_workspace_once() {
    let (db, _guard) = tokio::task::spawn_blocking(fresh_database).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("password");
    std::fs::write(&password_file, "automation password\n").unwrap();
    let run = || {
        keyward(&db)
            .args([
                "setup",
                "--workspace",
                "Acme",
                "--admin-email",
                "Ops@Example.com",
                "--admin-password-file",
            ])
            .arg(&password_file)
            .output()
            .unwrap()
    };
    let out = run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("Created workspace \"Acme\" with admin ops@example.com")
    );
    let out = run();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("setup has already been completed"));

    let short = dir.path().join("short");
    std::fs::write(&short, "short\n").unwrap();
    let out = keyward(&db)
        .args([
            "setup",
            "--workspace",
            "B",
            "--admin-email",
            "b@example.com",
            "--admin-password-file",
        ])
        .arg(&short)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("--admin-password-file: Password must be at least 12 characters.")
    );
}

/// `keyward` with no arguments serves, prints the setup link, and answers.
#[tokio::test]
async fn serve_prints_a_working_setup_link() {
    let (db, _guard) = tokio::task::spawn_blocking(fresh_database).await.unwrap();
    let mut child = keyward(&db)
        .env("KEYWARD_BIND", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = printed_word(&mut child, |w| w.contains("/setup?token=")).await;
    let res = reqwest::get(&url).await.unwrap();
    let status = res.status();
    let body = res.text().await.unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(status, reqwest::StatusCode::OK);
    assert!(body.contains("Set up keyward"));
}

/// A full flow against the real binary with the most verbose logging: the
/// key's secret appears in no log line and no table, and "last used" times
/// buffered in memory are written when the server stops gracefully.
#[tokio::test]
async fn secrets_never_reach_the_log_and_usage_survives_shutdown() {
    let (db, _guard) = tokio::task::spawn_blocking(fresh_database).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("password");
    std::fs::write(&password_file, format!("{ADMIN_PASSWORD}\n")).unwrap();
    let out = keyward(&db)
        .args([
            "setup",
            "--workspace",
            "Acme",
            "--admin-email",
            ADMIN_EMAIL,
            "--admin-password-file",
        ])
        .arg(&password_file)
        .output()
        .unwrap();
    assert!(out.status.success());

    let log_path = dir.path().join("keyward.log");
    let (mut child, word) = serve_traced(&db, &log_path, |w| w.ends_with("/login")).await;
    let base = word.trim_end_matches("/login").to_owned();

    let admin = Browser::new(&base);
    assert_eq!(
        admin.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.status(),
        reqwest::StatusCode::SEE_OTHER
    );
    let key = admin
        .create_key("/account/keys", &[("name", "logged?")])
        .await;
    assert_eq!(me(&base, &key.secret).await.0, reqwest::StatusCode::OK);
    assert_eq!(
        verify(&base, serde_json::json!({ "key": key.secret })).await["valid"],
        true
    );
    admin.get(&format!("/account/keys?q={}", key.secret)).await;
    let truncated = verify(&base, serde_json::json!({ "key": &key.secret[..20] })).await;
    assert_eq!(truncated["code"], "MALFORMED");

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(exit.success(), "graceful stop: {exit:?}");

    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.contains("/api/v1/me"), "requests were logged");
    assert!(log.contains("keyward stopped"));
    let random = &key.secret[8..];
    assert!(!log.contains(random), "the secret reached the log");
    assert!(
        !log.contains(&random[..20]),
        "part of the secret reached the log"
    );
    assert!(!log.contains(ADMIN_PASSWORD), "a password reached the log");

    let pool = keyward::db::pool(&db, 1).unwrap();
    let mut conn = pool.get().unwrap();
    let stored = {
        use diesel::prelude::*;
        keyward::db::schema::api_keys::table
            .select(keyward::db::keys::ApiKey::as_select())
            .load(&mut conn)
            .unwrap()
    };
    assert_eq!(stored.len(), 1);
    assert!(
        stored[0].last_used_at.is_some(),
        "last used was written at shutdown"
    );
    assert!(!format!("{stored:?}").contains(random));
}

/// Eight `keyward setup` commands at once on a fresh database: exactly one
/// creates a workspace; the others say setup is done and change nothing.
#[tokio::test]
async fn concurrent_setup_commands_create_exactly_one_workspace() {
    let (db, _guard) = tokio::task::spawn_blocking(fresh_database).await.unwrap();
    let out = keyward(&db).arg("migrate").output().unwrap();
    assert!(
        out.status.success(),
        "{:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("password");
    std::fs::write(&password_file, "automation password\n").unwrap();
    let children: Vec<_> = (0..8)
        .map(|i| {
            keyward(&db)
                .args(["setup", "--workspace", &format!("Acme {i}")])
                .args(["--admin-email", &format!("ops{i}@example.com")])
                .arg("--admin-password-file")
                .arg(&password_file)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs = tokio::task::spawn_blocking(move || {
        children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    let succeeded = outputs.iter().filter(|o| o.status.success()).count();
    assert_eq!(succeeded, 1, "exactly one setup succeeds");
    for o in outputs.iter().filter(|o| !o.status.success()) {
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(
            stderr.contains("setup has already been completed"),
            "{stderr}"
        );
    }
    let pool = keyward::db::pool(&db, 1).unwrap();
    let mut conn = pool.get().unwrap();
    let (workspaces, users): (i64, i64) = {
        use diesel::prelude::*;
        use keyward::db::schema;
        (
            schema::workspaces::table
                .count()
                .get_result(&mut conn)
                .unwrap(),
            schema::users::table.count().get_result(&mut conn).unwrap(),
        )
    };
    assert_eq!((workspaces, users), (1, 1));
}

/// The first-run setup token and an invitation token, used the way a person
/// would (and once with a forged form), appear in no log line, even at the
/// most verbose level: requests are logged by route pattern.
#[tokio::test]
async fn setup_and_invitation_tokens_never_reach_the_log() {
    let (db, _guard) = tokio::task::spawn_blocking(fresh_database).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("keyward.log");
    let (mut child, setup_url) =
        serve_traced(&db, &log_path, |w| w.contains("/setup?token=")).await;
    let (base, setup_token) = setup_url.split_once("/setup?token=").unwrap();
    let (base, setup_token) = (base.to_owned(), setup_token.to_owned());
    let admin = Browser::new(&base);
    assert_eq!(
        admin
            .get(&format!("/setup?token={setup_token}"))
            .await
            .status(),
        reqwest::StatusCode::OK
    );
    let res = admin
        .post_form(
            "/setup",
            &[
                ("token", &setup_token),
                ("workspace", "Acme"),
                ("name", "Ada"),
                ("email", ADMIN_EMAIL),
                ("password", ADMIN_PASSWORD),
                ("password_confirm", ADMIN_PASSWORD),
            ],
        )
        .await;
    assert_eq!(res.status(), reqwest::StatusCode::SEE_OTHER);
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
    let link = invite_link(&res.text().await.unwrap()).expect("invitation link");
    let invite_token = link.rsplit('/').next().unwrap().to_owned();
    let path = format!("/invite/{invite_token}");
    let bob = Browser::new(&base);
    assert_eq!(bob.get(&path).await.status(), reqwest::StatusCode::OK);
    let fields = [
        ("password", "bob's long password"),
        ("password_confirm", "bob's long password"),
    ];
    // A forged form (no CSRF token) is refused and logged.
    assert_eq!(
        bob.post_raw(&path, &fields).await.status(),
        reqwest::StatusCode::FORBIDDEN
    );
    assert_eq!(
        bob.post_form(&path, &fields).await.status(),
        reqwest::StatusCode::SEE_OTHER
    );

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.contains("/invite/{token}"),
        "requests are logged by route pattern"
    );
    assert!(log.contains("CSRF"), "the forged form was logged");
    assert!(
        !log.contains(&setup_token),
        "the setup token reached the log"
    );
    assert!(
        !log.contains(&invite_token),
        "an invitation token reached the log"
    );
    assert!(!log.contains(&invite_token[..16]));
}

/// `KEYWARD_LOG_FORMAT=json`: every line the binary writes to its log is a
/// JSON object, and the lines of a request carry the id its response
/// returned (taken from the caller, or generated).
#[tokio::test]
async fn json_logs_parse_and_carry_each_request_id() {
    let (db, _guard) = tokio::task::spawn_blocking(fresh_database).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("keyward.log");
    let mut child = keyward(&db)
        .env("KEYWARD_BIND", "127.0.0.1:0")
        .env("KEYWARD_LOG_FORMAT", "json")
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let setup_url = printed_word(&mut child, |w| w.contains("/setup?token=")).await;
    let (base, token) = setup_url.split_once("/setup?token=").unwrap();
    let client = reqwest::Client::new();
    let given = client
        .get(format!("{base}/api/v1/me"))
        .bearer_auth("sk_live_not-a-real-key")
        .header("X-Request-Id", "caller-chosen-42")
        .send()
        .await
        .unwrap();
    assert_eq!(given.status(), reqwest::StatusCode::UNAUTHORIZED);
    assert_eq!(given.headers()["x-request-id"], "caller-chosen-42");
    let page = client.get(&setup_url).send().await.unwrap();
    assert_eq!(page.status(), reqwest::StatusCode::OK);
    let generated = page.headers()["x-request-id"].to_str().unwrap().to_owned();
    // A request refused inside the application, which logs why (no CSRF
    // token).
    let refused = client
        .post(format!("{base}/setup"))
        .form(&[("token", "wrong")])
        .send()
        .await
        .unwrap();
    let refused_id = refused.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    let log = std::fs::read_to_string(&log_path).unwrap();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(lines.len() > 3, "{log}");
    let of = |id: &str| -> Vec<&serde_json::Value> {
        lines
            .iter()
            .filter(|l| l["span"]["request_id"] == id)
            .collect()
    };
    let mine = of("caller-chosen-42");
    assert!(
        mine.iter()
            .any(|l| l["fields"]["route"] == "/api/v1/me" && l["fields"]["status"] == 401),
        "the request line names its id: {log}"
    );
    assert!(
        of(&generated)
            .iter()
            .any(|l| l["fields"]["route"] == "/setup"),
        "{log}"
    );
    assert!(
        of(&refused_id).iter().any(|l| l["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("CSRF"))),
        "a line written inside the request carries its id: {log}"
    );
    assert_ne!(generated, refused_id);
    assert!(
        lines
            .iter()
            .any(|l| l["fields"]["message"] == "keyward stopped")
    );
    assert!(!log.contains(token), "the setup token reached the log");
}

/// `keyward workspace create` and `list`, beside a running instance: an
/// existing person becomes the new workspace's admin, a new one signs in
/// with the password file's password or uses the printed invitation link.
#[tokio::test]
async fn workspace_commands_provision_tenants() {
    let (app, ada) = spawn_ready().await;
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = keyward(&app.database).args(args).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // An existing person: admin of the new workspace at once.
    let (code, out, err) = run(&[
        "workspace",
        "create",
        "--name",
        "Beta Labs",
        "--admin-email",
        "ADA@example.com",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("Created workspace \"Beta Labs\""), "{out}");
    assert!(
        out.contains("ada@example.com already has an account"),
        "{out}"
    );
    let (_, page) = ada.page("/account").await;
    assert!(
        page.contains(">Beta Labs</option>"),
        "the switcher offers it"
    );
    let beta = app
        .with_db(|c| {
            use diesel::prelude::*;
            use keyward::db::schema::{people, users, workspaces};
            users::table
                .inner_join(people::table)
                .inner_join(workspaces::table)
                .filter(people::email.eq(ADMIN_EMAIL))
                .filter(workspaces::name.eq("Beta Labs"))
                .select(users::id)
                .first::<String>(c)
                .unwrap()
        })
        .await;
    let res = ada
        .post_form("/workspaces/switch", &[("workspace", &beta)])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (status, events) = ada.page("/workspace/events").await;
    assert_eq!(status, StatusCode::OK, "admin there");
    assert!(
        events.contains("keyward workspace create (command line) created the workspace"),
        "{events}"
    );

    // A new person with a password from a file.
    let file = dir.path().join("password");
    std::fs::write(&file, "gamma admin password\n").unwrap();
    let (code, out, err) = run(&[
        "workspace",
        "create",
        "--name",
        "Gamma",
        "--admin-email",
        "gus@gamma.example",
        "--admin-password-file",
        file.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("signs in with the password from the file"),
        "{out}"
    );
    let gus = app.browser();
    assert_eq!(
        gus.login("gus@gamma.example", "gamma admin password")
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(gus.get("/workspace/users").await.status(), StatusCode::OK);

    // A new person without one: an invitation link, printed once.
    let (code, out, err) = run(&[
        "workspace",
        "create",
        "--name",
        "Delta",
        "--admin-email",
        "dee@delta.example",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let link = out
        .split_whitespace()
        .find(|w| w.contains("/invite/"))
        .expect("link printed");
    let path = format!("/invite/{}", link.rsplit('/').next().unwrap());
    let dee = app.browser();
    let password = "delta admin password";
    dee.choose_password_and_sign_in(&path, "dee@delta.example", password)
        .await;
    assert_eq!(
        dee.get("/workspace/settings").await.status(),
        StatusCode::OK
    );

    // Bad input changes nothing.
    let (code, _, err) = run(&[
        "workspace",
        "create",
        "--name",
        " ",
        "--admin-email",
        "x@y.example",
    ]);
    assert_eq!(code, Some(1));
    assert!(err.contains("--name:"), "{err}");
    let (code, _, err) = run(&[
        "workspace",
        "create",
        "--name",
        "Eps",
        "--admin-email",
        "nope",
    ]);
    assert_eq!(code, Some(1));
    assert!(err.contains("--admin-email:"), "{err}");

    let (code, out, err) = run(&["workspace", "list"]);
    assert_eq!(code, Some(0), "{err}");
    let rows: Vec<&str> = out.lines().skip(1).collect();
    assert_eq!(rows.len(), 4, "{out}");
    for name in ["Acme", "Beta Labs", "Gamma", "Delta"] {
        assert!(rows.iter().any(|r| r.ends_with(name)), "{name} in {out}");
    }
    assert!(!out.contains("Eps"));
}

/// Logs written to a file or a pipe carry no terminal colour codes (the
/// text format included), and `--version` names the commit.
#[tokio::test]
async fn logs_off_a_terminal_are_plain_and_the_version_names_its_commit() {
    // A new SQLite file on either backend: its migrations are logged at
    // info (a PostgreSQL test database starts migrated, with nothing to say).
    let dir = tempfile::tempdir().unwrap();
    let db = DatabaseUrl::Sqlite(dir.path().join("fresh.db"));
    let out = keyward(&db)
        .arg("migrate")
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    assert!(out.status.success());
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("INFO"), "info lines were written: {log}");
    assert!(
        !log.contains('\u{1b}'),
        "an escape code reached a pipe: {log:?}"
    );

    let out = keyward(&db).arg("--version").output().unwrap();
    let version = String::from_utf8_lossy(&out.stdout);
    let words: Vec<&str> = version.split_whitespace().collect();
    assert_eq!(words.first(), Some(&"keyward"), "{version}");
    assert_eq!(words.get(1), Some(&env!("CARGO_PKG_VERSION")), "{version}");
    let commit = words.get(2).unwrap_or(&"").trim_matches(['(', ')']);
    let head = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    match head {
        // Built from a git checkout: the commit it was built from.
        Some(head) => assert!(
            commit.len() >= 7 && head.starts_with(commit),
            "{version} names {commit}, HEAD is {head}"
        ),
        None => assert_eq!(commit, "unknown"),
    }
}

/// `keyward backup` while four clients create keys through the form: the
/// copy passes its integrity check, holds every key acknowledged before the
/// backup began, and a keyward restored from it (with the secret copied
/// beside it) verifies them and signs the admin in.
#[tokio::test]
async fn a_backup_under_write_load_restores_every_acknowledged_key() {
    let dir = tempfile::tempdir().unwrap();
    let db = DatabaseUrl::Sqlite(dir.path().join("live.db"));
    // No KEYWARD_SECRET: the secret is generated beside the database, and
    // the backup must carry it.
    let plain = |database: &DatabaseUrl| {
        let mut cmd = keyward(database);
        cmd.env_remove("KEYWARD_SECRET");
        cmd
    };
    let password_file = dir.path().join("password");
    std::fs::write(&password_file, format!("{ADMIN_PASSWORD}\n")).unwrap();
    let out = plain(&db)
        .args(["setup", "--workspace", "Acme", "--admin-email", ADMIN_EMAIL])
        .arg("--admin-password-file")
        .arg(&password_file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let serve = |database: &DatabaseUrl| {
        plain(database)
            .env("KEYWARD_BIND", "127.0.0.1:0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut live = serve(&db);
    let base = printed_word(&mut live, |w| w.ends_with("/login"))
        .await
        .trim_end_matches("/login")
        .to_owned();

    // Four clients, each signed in, creating keys until told to stop; each
    // key is recorded with the moment its creation was acknowledged.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let acked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    // Until `n` keys in all were acknowledged (counted, not timed: a busy
    // machine makes keys slowly).
    let until_acked = |n: usize| {
        let acked = acked.clone();
        async move {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            while acked.load(std::sync::atomic::Ordering::SeqCst) < n {
                assert!(std::time::Instant::now() < deadline, "{n} keys within 60 s");
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    };
    let mut clients = Vec::new();
    for c in 0..4 {
        let (base, stop, acked) = (base.clone(), stop.clone(), acked.clone());
        clients.push(tokio::spawn(async move {
            let admin = Browser::new(&base);
            assert_eq!(
                admin.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.status(),
                StatusCode::SEE_OTHER
            );
            let mut made = Vec::new();
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let name = format!("client {c} key {i}");
                let key = admin
                    .create_key("/workspace/keys", &[("name", name.as_str())])
                    .await;
                made.push((std::time::Instant::now(), key.secret));
                acked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                i += 1;
            }
            made
        }));
    }
    until_acked(8).await;
    let backup_file = dir.path().join("backup.db");
    let began = std::time::Instant::now();
    let acked_at_start = acked.load(std::sync::atomic::Ordering::SeqCst);
    let out = {
        let mut cmd = plain(&db);
        cmd.arg("backup").arg(&backup_file);
        tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap()
    };
    until_acked(acked_at_start + 4).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut acknowledged = Vec::new();
    for client in clients {
        acknowledged.extend(client.await.unwrap());
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("integrity ok"), "{stdout}");
    let before: Vec<&String> = acknowledged
        .iter()
        .filter(|(at, _)| *at < began)
        .map(|(_, secret)| secret)
        .collect();
    assert!(
        before.len() >= 4,
        "keys were made before the backup: {}",
        before.len()
    );
    assert!(
        acknowledged.len() > before.len(),
        "writes went on while the backup ran"
    );
    // The backup refuses to overwrite.
    let again = plain(&db).arg("backup").arg(&backup_file).output().unwrap();
    assert_eq!(again.status.code(), Some(1));

    Command::new("kill")
        .args(["-TERM", &live.id().to_string()])
        .status()
        .unwrap();
    tokio::task::spawn_blocking(move || live.wait().unwrap())
        .await
        .unwrap();

    // Restore: the backup and its secret, as the documented procedure says.
    let restored_dir = tempfile::tempdir().unwrap();
    let restored = restored_dir.path().join("keyward.db");
    std::fs::copy(&backup_file, &restored).unwrap();
    std::fs::copy(
        dir.path().join("backup.db.secret"),
        restored_dir.path().join("keyward.db.secret"),
    )
    .unwrap();
    let restored = DatabaseUrl::Sqlite(restored);
    let mut child = serve(&restored);
    let base = printed_word(&mut child, |w| w.ends_with("/login"))
        .await
        .trim_end_matches("/login")
        .to_owned();
    for secret in &before {
        assert_eq!(me(&base, secret).await.0, StatusCode::OK, "restored key");
    }
    let admin = Browser::new(&base);
    assert_eq!(
        admin.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

/// The stop a service manager sends while the database is stuck: another
/// session holds `api_keys` locked (longer than the shutdown grace), key
/// checks wait on it, and "last used" times and usage counts are buffered.
/// The process exits within the 10 s grace anyway, the waiting checks get
/// an answer, and the log says what could not be written.
#[tokio::test]
#[ignore = "needs PostgreSQL: run with KEYWARD_TEST_DATABASE_URL and --ignored"]
async fn pg_only_a_stop_while_the_database_is_stuck_ends_within_the_grace() {
    const GRACE: std::time::Duration = std::time::Duration::from_secs(10);
    let (db, _guard) = tokio::task::spawn_blocking(fresh_database).await.unwrap();
    let DatabaseUrl::Postgres(url) = db.clone() else {
        panic!("needs PostgreSQL: set KEYWARD_TEST_DATABASE_URL");
    };
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("password");
    std::fs::write(&password_file, format!("{ADMIN_PASSWORD}\n")).unwrap();
    let out = keyward(&db)
        .args(["setup", "--workspace", "Acme", "--admin-email", ADMIN_EMAIL])
        .arg("--admin-password-file")
        .arg(&password_file)
        .output()
        .unwrap();
    assert!(out.status.success());
    let log_path = dir.path().join("keyward.log");
    let mut child = keyward(&db)
        .env("KEYWARD_BIND", "127.0.0.1:0")
        .env("RUST_LOG", "info,keyward::web::middleware=warn")
        // Nothing is written before the stop: the final flush has work.
        .env("KEYWARD_FLUSH_INTERVAL", "3600")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let base = printed_word(&mut child, |w| w.ends_with("/login"))
        .await
        .trim_end_matches("/login")
        .to_owned();
    let admin = Browser::new(&base);
    assert_eq!(
        admin.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
    let mut keys = Vec::new();
    for i in 0..17 {
        keys.push(
            admin
                .create_key("/workspace/keys", &[("name", &format!("stuck {i}"))])
                .await,
        );
    }
    // One key was used: its "last used" time and count wait in memory.
    assert_eq!(me(&base, &keys[0].secret).await.0, StatusCode::OK);

    // Another session locks the keys table for longer than the grace.
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let locker = std::thread::spawn(move || {
        use diesel::connection::SimpleConnection;
        let mut conn: diesel::PgConnection =
            diesel::Connection::establish(&url).expect("lock connection");
        conn.batch_execute("BEGIN; LOCK TABLE api_keys IN ACCESS EXCLUSIVE MODE")
            .unwrap();
        locked_tx.send(()).unwrap();
        let _ = release_rx.recv_timeout(GRACE * 3);
        conn.batch_execute("COMMIT").unwrap();
    });
    tokio::task::spawn_blocking(move || locked_rx.recv().unwrap())
        .await
        .unwrap();
    // Sixteen checks of keys not cached yet wait on the lock.
    let checks: Vec<_> = keys[1..]
        .iter()
        .map(|k| {
            let (base, secret) = (base.clone(), k.secret.clone());
            tokio::spawn(async move {
                reqwest::Client::new()
                    .get(format!("{base}/api/v1/me"))
                    .bearer_auth(secret)
                    .send()
                    .await
                    .map(|r| r.status())
            })
        })
        .collect();
    // So does an admin's page.
    let page = tokio::spawn(async move { admin.page("/workspace/keys").await.0 });
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;

    let stop = std::time::Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || {
        loop {
            if let Some(exit) = child.try_wait().unwrap() {
                return Some(exit);
            }
            if stop.elapsed() > GRACE * 2 {
                child.kill().unwrap();
                child.wait().unwrap();
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    })
    .await
    .unwrap();
    let took = stop.elapsed();
    release_tx.send(()).ok();
    locker.join().unwrap();
    let log = std::fs::read_to_string(&log_path).unwrap();
    println!("exited {took:?} after SIGTERM: {exit:?}\n{log}");
    assert!(
        exit.is_some() && took < GRACE,
        "exited {took:?} after SIGTERM"
    );
    assert!(exit.unwrap().success(), "a stop is not a failure");
    for check in checks {
        assert_eq!(
            check.await.unwrap().ok(),
            Some(StatusCode::SERVICE_UNAVAILABLE),
            "a waiting check gets a clear answer"
        );
    }
    assert_eq!(page.await.unwrap(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(log.contains("keyward stopped"));
    assert!(
        log.contains("not written"),
        "the log says what could not be written"
    );
}
