//! Names the commit a binary was built from, for `keyward --version` and
//! the start-up log line: `git rev-parse --short HEAD` when the source is a
//! git checkout, else "unknown" (a source tarball, a package build).

use std::process::Command;

fn main() {
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=KEYWARD_COMMIT={commit}");
    // A new commit (or checkout) changes HEAD or the branch it points to.
    println!("cargo:rerun-if-changed=.git/HEAD");
    if let Ok(head) = std::fs::read_to_string(".git/HEAD")
        && let Some(branch) = head.strip_prefix("ref: ")
    {
        println!("cargo:rerun-if-changed=.git/{}", branch.trim());
    }
}
