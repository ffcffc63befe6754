//! The detect-secrets plugin shipped in `scanners/` (issue 25), run by the
//! real `detect-secrets` (PyPI, pinned; `.ci/run` installs it in a venv
//! under `target/`): it finds real keys, with the default prefix and an
//! installation's own, and ignores look-alikes whose checksum is wrong.
//! Ignored by default; CI runs `cargo test --test app scanner:: -- --ignored`.

use keyward::domain::keys::{Environment, generate_with};
use std::path::PathBuf;

/// The `detect-secrets` to run: `KEYWARD_DETECT_SECRETS`, else the venv
/// `.ci/run` makes.
fn detect_secrets() -> PathBuf {
    std::env::var_os("KEYWARD_DETECT_SECRETS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("target/detect-secrets-venv/bin/detect-secrets")
        })
}

/// Change one character of the random part: same shape, wrong checksum.
fn one_character_off(key: &str, at: usize) -> String {
    let mut chars: Vec<char> = key.chars().collect();
    chars[at] = if chars[at] == 'a' { 'b' } else { 'a' };
    chars.into_iter().collect()
}

#[test]
#[ignore = "needs detect-secrets (see .ci/run)"]
fn the_detect_secrets_plugin_finds_real_keys_and_ignores_look_alikes() {
    let real = [
        generate_with("sk_", Environment::Live).0,
        generate_with("acme_", Environment::Test).0,
        generate_with("acme_", Environment::Dev).0,
    ];
    let real: Vec<String> = real.iter().map(|s| s.expose().to_owned()).collect();
    let mut lines: Vec<(String, bool)> = vec![
        (format!("KEYWARD_KEY={}", real[0]), true),
        (
            format!("OLD_KEY={}", one_character_off(&real[0], 20)),
            false,
        ),
        (format!("  \"token\": \"{}\",", real[1]), true),
        (
            format!("token = '{}'", one_character_off(&real[1], 30)),
            false,
        ),
        // Cut short, and one too long.
        (format!("short = {}", &real[2][..real[2].len() - 1]), false),
        (format!("long = {}x", real[2]), false),
        (format!("curl -H 'Authorization: Bearer {}'", real[2]), true),
        (format!("PLACEHOLDER=sk_live_{}", "x".repeat(49)), false),
    ];
    // A look-alike whose checksum is right for another body.
    let mut swapped = real[0].clone();
    swapped.replace_range(8..12, "ABCD");
    if swapped != real[0] {
        lines.push((format!("SWAPPED={swapped}"), false));
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("settings.env");
    let text: String = lines.iter().map(|(l, _)| format!("{l}\n")).collect();
    std::fs::write(&file, text).unwrap();

    let plugin =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scanners/detect_secrets_keyward.py");
    let out = std::process::Command::new(detect_secrets())
        .arg("scan")
        .arg("--plugin")
        .arg(&plugin)
        .arg("settings.env")
        .current_dir(dir.path())
        .output()
        .expect("run detect-secrets (see .ci/run)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut found: Vec<u64> = report["results"]["settings.env"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|r| r["type"] == "keyward API key")
        .map(|r| r["line_number"].as_u64().unwrap())
        .collect();
    found.sort_unstable();
    let expected: Vec<u64> = lines
        .iter()
        .enumerate()
        .filter(|(_, (_, is_real))| *is_real)
        .map(|(i, _)| i as u64 + 1)
        .collect();
    assert_eq!(found, expected, "lines found by the plugin\n{report:#}");
}
