//! `WardenRun` checked against a stand-in for warden, so the harness's own plumbing (command
//! line, namespace, exit status, output capture, audit log parsing, deadline, signals) is known
//! to work before the real binary exists, and a failing end-to-end test points at warden.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use tests::{Netns, WardenRun, audit, skip_unless_root};

/// Speaks warden's `run` command line: writes an audit log around CMD and exits with its status.
const FAKE_WARDEN: &str = r#"#!/bin/sh
[ "$1" = run ] && [ "$2" = --audit-log ] || { echo "bad command line: $*" >&2; exit 2; }
log=$3; shift 3
opts=""
while [ "$1" != -- ]; do opts="$opts $1"; shift; done; shift
echo '{"v":1,"kind":"enforcement","reason":"attached'"$opts"'"}' > "$log"
[ -n "$FAKE_BAD_LINE" ] && echo 'not json' >> "$log"
"$@"; rc=$?
echo '{"v":1,"kind":"connection","dst":{"ip":"192.0.2.10","port":443},"decision":"audited"}' >> "$log"
echo "fake warden: 1 connection" >&2
exit $rc
"#;

fn fake_warden(dir: &Path) -> PathBuf {
    let path = dir.join("warden");
    std::fs::write(&path, FAKE_WARDEN).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn run_collects_status_output_and_records() {
    if skip_unless_root("run_collects_status_output_and_records") {
        return;
    }
    let netns = Netns::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = WardenRun::new(&netns)
        .bin(fake_warden(dir.path()))
        .args(["--policy", "p.yml"])
        .cmd(["sh", "-c", "getent hosts tls.example; exit 3"])
        .run()
        .unwrap();
    out.assert_code(3);
    assert!(
        out.stdout.starts_with("192.0.2.10"),
        "ran in the namespace: {out}"
    );
    assert_eq!(out.stderr, "fake warden: 1 connection\n");
    assert_eq!(out.records.len(), 2);
    assert_eq!(
        audit::enforcement(&out.records)[0]["reason"],
        "attached --policy p.yml"
    );
    let conn = audit::find_connection(&out.records, "192.0.2.10", 443).unwrap();
    assert_eq!(conn["decision"], "audited");
}

#[test]
fn run_writes_the_audit_log_where_asked() {
    if skip_unless_root("run_writes_the_audit_log_where_asked") {
        return;
    }
    let netns = Netns::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let out = WardenRun::new(&netns)
        .bin(fake_warden(dir.path()))
        .audit_log(&log)
        .cmd(["true"])
        .run()
        .unwrap();
    out.assert_success();
    assert_eq!(out.audit_log, log);
    assert_eq!(std::fs::read_to_string(&log).unwrap().lines().count(), 2);
}

#[test]
fn a_line_that_is_not_json_fails_the_run() {
    if skip_unless_root("a_line_that_is_not_json_fails_the_run") {
        return;
    }
    let netns = Netns::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let err = WardenRun::new(&netns)
        .bin(fake_warden(dir.path()))
        .env("FAKE_BAD_LINE", "1")
        .cmd(["true"])
        .run()
        .unwrap_err();
    let message = format!("{err:#}");
    assert!(
        message.contains(":2: audit record is not JSON: not json"),
        "{message}"
    );
}

#[test]
fn a_run_past_its_deadline_is_killed_and_fails() {
    if skip_unless_root("a_run_past_its_deadline_is_killed_and_fails") {
        return;
    }
    let netns = Netns::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let err = WardenRun::new(&netns)
        .bin(fake_warden(dir.path()))
        .timeout(Duration::from_secs(1))
        .cmd(["sh", "-c", "echo started; exec sleep 600 >/dev/null 2>&1"])
        .run()
        .unwrap_err();
    let message = format!("{err:#}");
    assert!(
        message.contains("did not exit within 1s and was killed"),
        "{message}"
    );
    assert!(
        message.contains("started"),
        "output so far is shown: {message}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn a_spawned_run_can_be_signalled() {
    if skip_unless_root("a_spawned_run_can_be_signalled") {
        return;
    }
    let netns = Netns::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let child = WardenRun::new(&netns)
        .bin(fake_warden(dir.path()))
        .cmd(["sh", "-c", "echo ready; exec sleep 600 >/dev/null 2>&1"])
        .spawn()
        .unwrap();
    // CMD has started, so the stand-in has written its first record.
    wait_until(|| child.output_so_far().0.contains("ready"));
    child.signal(Signal::SIGTERM).unwrap();
    let out = child.wait().unwrap();
    assert_eq!(out.status.signal(), Some(Signal::SIGTERM as i32));
    // The stand-in wrote its first record before it was stopped.
    assert_eq!(out.records.len(), 1);
}

#[test]
fn a_missing_binary_is_explained() {
    // Only checkable while warden is not built and WARDEN_BIN is unset.
    if let Err(e) = tests::warden::try_warden_bin() {
        assert!(format!("{e:#}").contains("cargo build -p proxy"), "{e:#}");
    }
}

/// Polls for a condition that has no readiness signal of its own.
fn wait_until(mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ready() {
        assert!(Instant::now() < deadline, "condition not met within 10 s");
        std::thread::sleep(Duration::from_millis(10));
    }
}
