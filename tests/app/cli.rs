//! The `keyward` binary as an operator runs it.

use crate::helpers::*;
use keyward::config::DatabaseUrl;
use std::io::{BufRead, BufReader};
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
    let stdout = child.stdout.take().unwrap();
    let url = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find_map(|l| {
                l.split_whitespace()
                    .find(|w| w.contains("/setup?token="))
                    .map(str::to_owned)
            })
    })
    .await
    .unwrap()
    .expect("setup link printed");
    let res = reqwest::get(&url).await.unwrap();
    let status = res.status();
    let body = res.text().await.unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(status, reqwest::StatusCode::OK);
    assert!(body.contains("Set up keyward"));
}
