//! Checks that need more than `cargo test` has on every machine, so they are `#[ignore]`d and
//! `.ci/run` runs them with `--ignored` after installing what they need:
//!
//! - the space-time diagram of a failing replay, rendered by a real browser (Debian's
//!   `chromium`, headless), has its lanes, its arrows and its violation marker once its script
//!   has run;
//! - a debug build and a release build of `sq-sim` print the same trace hash for one seed (the
//!   release binary must be built first: `cargo build --release -p sq-sim`).
//!
//! Neither passes silently when what it needs is missing: it fails and says what to install or
//! build.

use pretty_assertions::assert_eq;
use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

/// The browser: `$CHROMIUM`, else `chromium` on the PATH.
fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        return PathBuf::from(path);
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("chromium"))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!("chromium is not installed: `apt-get install -y chromium` (or set CHROMIUM)")
    })
}

#[test]
#[ignore = "needs chromium; .ci/run installs it and runs this with --ignored"]
fn a_failing_replay_renders_in_a_browser() {
    let browser = chromium();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let html = dir.join("three-copies-flipped.html");
    let script = workspace().join("seeds/beyond/three-copies-flipped.script");
    let out = Command::new(env!("CARGO_BIN_EXE_sq-sim"))
        .args(["replay", "--script"])
        .arg(&script)
        .arg("--html")
        .arg(&html)
        .output()
        .expect("sq-sim runs");
    // The run breaks the fault model on purpose: a real violation, exit code 1.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.starts_with("invariant violated"), "{stderr}");
    // A fresh profile each time: nothing of an earlier run leaks in.
    let profile = dir.join(format!("profile-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&profile);
    let url = format!("file://{}", html.display());
    let dom = Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .unwrap_or_else(|e| panic!("{} does not run: {e}", browser.display()));
    let _ = std::fs::remove_dir_all(&profile);
    let dom = String::from_utf8_lossy(&dom.stdout);
    let count = |needle: &str| dom.matches(needle).count();
    // Drawn by the page's script: no lane, arrow or marker is in the file itself.
    let page = std::fs::read_to_string(&html).expect("the page");
    for drawn in [
        r#"class="lane""#,
        r#"class="msg "#,
        r#"id="violation-marker""#,
    ] {
        assert!(
            !page.contains(drawn),
            "{drawn} is in the file before any script ran"
        );
    }
    let lanes = count(r#"class="lane""#);
    let arrows = count(r#"class="msg "#);
    assert_eq!(
        (
            lanes,
            arrows > 10,
            count(r#"id="violation-marker""#),
            count(r#"id="diagnostic""#),
            dom.contains("no stuck client once healed"),
        ),
        // Three nodes; three producers, two consumers and the read-back consumer, two group
        // members and the group reader; the store.
        (13, true, 1, 1, true),
        "{dom:.2000}"
    );
}

/// The `trace hash:` line of an `sq-sim` run.
fn hash(binary: &Path, args: &[&str]) -> String {
    let out = Command::new(binary)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{} does not run: {e}", binary.display()));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.starts_with("trace hash: "))
        .unwrap_or_default()
        .to_string()
}

#[test]
#[ignore = "needs the release build of sq-sim; .ci/run builds it and runs this with --ignored"]
fn a_debug_and_a_release_build_hash_a_run_alike() {
    // The test build of the binary (debug assertions and overflow checks on) and the release
    // build, side by side in the target directory.
    let debug = PathBuf::from(env!("CARGO_BIN_EXE_sq-sim"));
    let target = debug
        .parent()
        .and_then(Path::parent)
        .expect("the binary lies in <target>/debug");
    let release = target
        .join("release")
        .join(debug.file_name().expect("a file name"));
    assert!(
        release.is_file(),
        "{} is missing: build it with `cargo build --release -p sq-sim`",
        release.display()
    );
    for args in [
        ["run", "--scenario", "S04", "--seed", "7"],
        ["run", "--scenario", "S11", "--seed", "11011"],
    ] {
        let (d, r) = (hash(&debug, &args), hash(&release, &args));
        assert!(d.len() > "trace hash: ".len(), "{args:?}");
        assert_eq!(d, r, "{args:?}");
    }
}
