//! Records when the source was last changed, so `doctor` can report outdated software: the
//! commit time of the checkout (or `SOURCE_DATE_EPOCH` for reproducible builds from a tarball),
//! falling back to the build time.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    // A new commit moves HEAD or the branch it points at (paths asked of git, so that
    // worktrees work; a path that does not exist would make cargo rerun this on every build).
    for p in ["HEAD", "refs/heads", "packed-refs"] {
        if let Some(path) = git(&["rev-parse", "--git-path", p])
            && std::path::Path::new(&path).exists()
        {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    let from_env = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.trim().parse::<i64>().ok());
    let from_git = || git(&["log", "-1", "--format=%ct"]).and_then(|s| s.parse::<i64>().ok());
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    };
    let epoch = from_env.or_else(from_git).unwrap_or_else(now);
    println!("cargo:rustc-env=CALLVAULT_SOURCE_EPOCH={epoch}");
}

fn git(args: &[&str]) -> Option<String> {
    Command::new("git")
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
}
