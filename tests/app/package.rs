//! The installed Debian package, as its systemd unit runs it: opt-in
//! (`cargo test --test app package:: -- --ignored`), after
//! `scripts/package-deb` and `dpkg -i` (`.ci/run` does both). The unit
//! itself is checked by `systemd-analyze verify` there; this test runs the
//! installed binary with the unit's environment (its `Environment=` lines
//! and the installed environment file) as an unprivileged user owning
//! only a state directory, through setup and a key check.

use crate::helpers::*;
use reqwest::StatusCode;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

const UNIT: &str = "/lib/systemd/system/keyward.service";
const ENV_FILE: &str = "/etc/keyward/keyward.env";
const BIN: &str = "/usr/bin/keyward";
/// The nobody user and group: what DynamicUser gives, in kind (no home,
/// no rights beyond its state directory).
const NOBODY: u32 = 65534;

/// `KEY=VALUE` lines (not comments) of an environment file or of a unit's
/// `Environment=` settings.
fn assignments(text: &str, prefix: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix(prefix))
        .filter(|l| !l.starts_with('#') && l.contains('='))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

#[tokio::test]
#[ignore = "needs the installed package: scripts/package-deb, dpkg -i (see .ci/run)"]
async fn package_installs_a_hardened_service_that_sets_up_and_checks_keys() {
    let unit = std::fs::read_to_string(UNIT).expect("the package installs the unit");
    for hardening in [
        "DynamicUser=yes",
        "StateDirectory=keyward",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "EnvironmentFile=/etc/keyward/keyward.env",
    ] {
        assert!(unit.contains(hardening), "unit lacks {hardening}");
    }
    let env_file = std::fs::read_to_string(ENV_FILE).expect("the package installs the settings");
    for setting in [
        "DATABASE_URL",
        "KEYWARD_BIND",
        "KEYWARD_SECRET",
        "KEYWARD_LOG_FORMAT",
    ] {
        assert!(
            env_file.contains(&format!("#{setting}=")),
            "{setting} is not described"
        );
    }
    for shipped in [
        "/usr/share/man/man1/keyward.1.gz",
        "/usr/share/bash-completion/completions/keyward",
        "/usr/share/zsh/vendor-completions/_keyward",
        "/usr/share/fish/vendor_completions.d/keyward.fish",
    ] {
        assert!(
            std::path::Path::new(shipped).exists(),
            "{shipped} is missing"
        );
    }
    let version = Command::new(BIN).arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("keyward "));

    // The unit's state directory, as a temporary directory owned by the
    // unprivileged user (mode 0700 like StateDirectoryMode).
    let state = tempfile::tempdir().unwrap();
    std::os::unix::fs::chown(state.path(), Some(NOBODY), Some(NOBODY)).unwrap();
    std::fs::set_permissions(state.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let password_file = state.path().join("password");
    std::fs::write(&password_file, format!("{ADMIN_PASSWORD}\n")).unwrap();
    std::os::unix::fs::chown(&password_file, Some(NOBODY), Some(NOBODY)).unwrap();
    let state_dir = state.path().display().to_string();
    let run_as_unit = || {
        let mut cmd = Command::new("setpriv");
        cmd.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--no-new-privs",
            BIN,
        ])
        .env_clear()
        .current_dir(state.path());
        // The unit's Environment= first, then the file (which overrides),
        // with the state directory where the unit has /var/lib/keyward.
        let vars = assignments(&unit, "Environment=")
            .into_iter()
            .chain(assignments(&env_file, ""));
        for (k, v) in vars {
            cmd.env(k, v.replace("/var/lib/keyward", &state_dir));
        }
        cmd
    };
    let out = run_as_unit()
        .args(["setup", "--workspace", "Acme", "--admin-email", ADMIN_EMAIL])
        .arg("--admin-password-file")
        .arg(&password_file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "setup as the unit's user: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let secret_file = state.path().join("keyward.db.secret");
    let mode = std::fs::metadata(&secret_file)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the generated secret is owner-only");

    let mut server = run_as_unit()
        .arg("serve")
        .env("KEYWARD_BIND", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = printed_word(&mut server, |w| w.ends_with("/login"))
        .await
        .trim_end_matches("/login")
        .to_owned();
    let admin = Browser::new(&base);
    assert_eq!(
        admin.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
    let key = admin
        .create_key("/workspace/keys", &[("name", "Packaged")])
        .await;
    assert_eq!(me(&base, &key.secret).await.0, StatusCode::OK);
    Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    let exit = tokio::task::spawn_blocking(move || server.wait().unwrap())
        .await
        .unwrap();
    assert!(exit.success(), "a clean stop: {exit:?}");
}
