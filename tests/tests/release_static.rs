//! The release binary is static (issue #8): the musl build of `warden` has no program
//! interpreter and needs no shared library, so the binary built here (Debian 12, glibc 2.36)
//! starts on Ubuntu 22.04 (glibc 2.35) and 24.04 alike; and it runs.
//!
//! The musl build is made by `scripts/test.sh` (or `scripts/release.sh`) before the tests, into
//! `target/x86_64-unknown-linux-musl/debug/warden`; `WARDEN_STATIC_BIN` names another. Without
//! it the test skips loudly, unless `CI` is set, where it fails.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The static binary to check, if it was built.
fn static_bin() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os("WARDEN_STATIC_BIN") {
        return Some(PathBuf::from(bin));
    }
    // Test executables live in <target>/debug/deps/.
    let exe = std::env::current_exe().ok()?;
    let target = exe.ancestors().nth(3)?;
    let bin = target.join("x86_64-unknown-linux-musl/debug/warden");
    bin.is_file().then_some(bin)
}

fn check_static(bin: &Path) -> std::process::Output {
    Command::new(repo().join("scripts/check-static.sh"))
        .arg(bin)
        .output()
        .expect("run scripts/check-static.sh")
}

#[test]
fn the_musl_build_is_static_and_runs() {
    let Some(bin) = static_bin() else {
        if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
            panic!("no musl build of warden: scripts/test.sh builds it before the tests");
        }
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED the_musl_build_is_static_and_runs: no musl build (run scripts/test.sh, or \
             cargo build -p proxy --target x86_64-unknown-linux-musl with CC_x86_64_unknown_linux_musl=musl-gcc)"
        );
        return;
    };
    let checked = check_static(&bin);
    let said = format!("{checked:?}");
    assert!(checked.status.success(), "{said}");
    assert!(
        String::from_utf8_lossy(&checked.stdout).contains(": static ("),
        "{said}"
    );

    // It runs: its version, and a report from a log.
    let version = Command::new(&bin).arg("--version").output().unwrap();
    assert!(version.status.success(), "{version:?}");
    assert!(
        String::from_utf8_lossy(&version.stdout).starts_with("warden "),
        "{version:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    std::fs::write(
        &log,
        r#"{"v":1,"time":"t","kind":"enforcement","enforcement":{"event":"start","mode":"audit"}}
{"v":1,"time":"t","kind":"connection","process":{"pid":1,"exe":"/usr/bin/curl","ancestry":[],"step":"s (run: curl)"},"dst":{"ip":"192.0.2.1","port":443,"proto":"tcp","name":"a.example"},"decision":"audited","reason":"no rule; to allow it, add to allowed-endpoints: a.example"}
{"v":1,"time":"t","kind":"enforcement","enforcement":{"event":"stop","mode":"audit"}}
"#,
    )
    .unwrap();
    let report = Command::new(&bin)
        .args(["report", "--format", "json", "--log"])
        .arg(&log)
        .output()
        .unwrap();
    assert!(report.status.success(), "{report:?}");
    let json: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    assert_eq!(json["allowed_endpoints"], serde_json::json!(["a.example"]));
}

#[test]
fn the_check_refuses_a_dynamic_binary() {
    // The checker can fail: the test runner itself is dynamically linked (glibc).
    let me = std::env::current_exe().unwrap();
    let checked = check_static(&me);
    assert_eq!(checked.status.code(), Some(1), "{checked:?}");
    assert!(
        String::from_utf8_lossy(&checked.stderr).contains("dynamically linked"),
        "{checked:?}"
    );
}
