//! A daemon that dies (`kill -9`) loses enforcement, and Warden must say so: in audit mode the
//! cgroup's traffic goes on unrecorded (fail-open), in block mode it is refused at once
//! (fail-closed: the hooks stay attached through pinned links); either way `status` reports
//! `lost` since the last healthy check, and `stop` reports the gap, appends `lost` and `stop`
//! records to the audit log, cleans up and exits 1.
//!
//! Needs root (skips loudly otherwise). Each test builds its own namespace, origins and cgroup.

use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use serde_json::Value;
use tests::daemon::{wait_gone, wait_unloaded};
use tests::{Daemon, Netns, Origins, TestCgroup, audit, clients, skip_unless_root};

/// Deadline for one client or one wait; passing ones take well under a second.
const T: Duration = Duration::from_secs(30);
/// How long a refused connect may take: the kernel answers at once, so this is generous.
const REFUSED_WITHIN: Duration = Duration::from_secs(5);

#[test]
fn killed_audit_daemon_fails_open_and_is_reported() {
    if skip_unless_root("killed_audit_daemon_fails_open_and_is_reported") {
        return;
    }
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    let cgroup = TestCgroup::new().unwrap();
    let daemon = Daemon::start(&netns, &cgroup, ["--egress-policy", "audit"]).unwrap();
    daemon.assert_started();
    let programs = enforced_then_killed(&daemon, &origins);

    let after = daemon
        .run_in_cgroup(&curl(&origins, "/after-kill"), T)
        .unwrap();
    assert!(after.status.success(), "fail-open: {after:?}\n{daemon}");
    assert!(requested(&origins, "/after-kill"), "it reached the origin");
    // The kernel detached the plain links with the process.
    assert_eq!(wait_unloaded(&programs, T), Vec::<u32>::new(), "{daemon}");

    let lost_since = check_lost(&daemon, "audit");
    let records = check_stop_after_loss(&daemon, &lost_since);
    assert!(
        audit::with_url(&records, "/after-kill").is_empty(),
        "nothing records a connection once the daemon is dead:\n{daemon}"
    );
}

#[test]
fn killed_block_daemon_fails_closed_until_stop() {
    if skip_unless_root("killed_block_daemon_fails_closed_until_stop") {
        return;
    }
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    let cgroup = TestCgroup::new().unwrap();
    let args = [
        "--egress-policy",
        "block",
        "--allowed-endpoints",
        "http.example:80",
        "--no-builtin",
    ];
    let daemon = Daemon::start(&netns, &cgroup, args).unwrap();
    daemon.assert_started();
    let programs = enforced_then_killed(&daemon, &origins);

    // An allowed destination, yet refused: nothing may leave unrecorded, and nothing hangs.
    let tried = Instant::now();
    let after = daemon
        .run_in_cgroup(&curl(&origins, "/after-kill"), T)
        .unwrap();
    let took = tried.elapsed();
    // curl's 7: "Failed to connect", i.e. refused, not reset after connecting or timed out.
    assert_eq!(
        after.status.code(),
        Some(7),
        "fail-closed: {after:?}\n{daemon}"
    );
    assert!(took < REFUSED_WITHIN, "refused fast, not hung: {took:?}");
    assert!(
        !requested(&origins, "/after-kill"),
        "it never reached the origin"
    );

    let lost_since = check_lost(&daemon, "block");
    let records = check_stop_after_loss(&daemon, &lost_since);
    assert!(
        audit::with_url(&records, "/after-kill").is_empty(),
        "{daemon}"
    );
    // Unpinned: the programs are gone and the cgroup reaches the origin directly, unrecorded.
    assert_eq!(wait_unloaded(&programs, T), Vec::<u32>::new(), "{daemon}");
    let direct = daemon
        .run_in_cgroup(&curl(&origins, "/after-stop"), T)
        .unwrap();
    assert!(
        direct.status.success(),
        "works again after stop: {direct:?}"
    );
    assert!(requested(&origins, "/after-stop"));
    assert_eq!(
        daemon.records().unwrap(),
        records,
        "nothing recorded after stop"
    );
}

/// `curl http://http.example{path}`.
fn curl(origins: &Origins, path: &str) -> String {
    clients::curl(
        &format!("http://http.example{path}"),
        &origins.ca_pem_path(),
    )
}

/// Whether the HTTP origin answered a request for `path`.
fn requested(origins: &Origins, path: &str) -> bool {
    origins.http().requests().iter().any(|r| r.target == path)
}

/// Checks that a connection from the cgroup is recorded, then kills the daemon with SIGKILL
/// and waits until it is gone. Returns the programs the start record names.
#[track_caller]
fn enforced_then_killed(daemon: &Daemon, origins: &Origins) -> Vec<u32> {
    let before = daemon.run_in_cgroup(&curl(origins, "/before"), T).unwrap();
    assert!(before.status.success(), "{before:?}\n{daemon}");
    daemon
        .wait_for_record(T, |r| r["http"]["url"] == "/before")
        .unwrap();
    let records = daemon.records().unwrap();
    let start =
        audit::enforcement_start(&records).unwrap_or_else(|| panic!("no start record:\n{daemon}"));
    let pid = daemon.pid().unwrap_or_else(|| panic!("no pid:\n{daemon}"));
    kill(pid, Signal::SIGKILL).unwrap();
    assert!(wait_gone(pid, T), "daemon {pid} survived SIGKILL");
    start.programs
}

/// `status` and `status --json` say enforcement was lost (exit 1); returns `lost_since`.
#[track_caller]
fn check_lost(daemon: &Daemon, mode: &str) -> String {
    let status = daemon.status().unwrap();
    assert_eq!(status.status.code(), Some(1), "{status:?}\n{daemon}");
    assert!(status.stdout.contains("LOST"), "{status:?}");
    let (status, json) = daemon.status_json().unwrap();
    assert_eq!(status.status.code(), Some(1), "{status:?}");
    let pid = daemon.pid().unwrap().as_raw();
    let cgroup = daemon.cgroup().path().to_string_lossy();
    assert_eq!(
        (&json["state"], &json["pid"], &json["mode"], &json["cgroup"]),
        (
            &"lost".into(),
            &pid.into(),
            &mode.into(),
            &cgroup.as_ref().into()
        ),
        "{json}"
    );
    let since = json["since"].as_str().unwrap_or_default();
    let lost_since = json["lost_since"].as_str().unwrap_or_default();
    assert!(!since.is_empty() && lost_since >= since, "{json}");
    lost_since.to_owned()
}

/// `stop` after the daemon died: exit 1, reports the loss and the last healthy check, appends
/// `lost` (dated `lost_since`) and `stop` to the audit log, and removes the state. Returns the
/// records.
#[track_caller]
fn check_stop_after_loss(daemon: &Daemon, lost_since: &str) -> Vec<Value> {
    let stop = daemon.stop().unwrap();
    let said = format!("{stop:?}\n{daemon}");
    assert_eq!(stop.status.code(), Some(1), "{said}");
    assert!(stop.stderr.contains("enforcement was LOST"), "{said}");
    assert!(
        stop.stderr
            .contains(&format!("last healthy check {lost_since}")),
        "{said}"
    );
    daemon.assert_gone();
    let records = daemon.records().unwrap();
    let events: Vec<&str> = audit::enforcement(&records)
        .iter()
        .map(|r| r["enforcement"]["event"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(events, ["start", "lost", "stop"], "{daemon}");
    let n = records.len();
    let (lost, last) = (&records[n - 2], &records[n - 1]);
    assert_eq!(lost["enforcement"]["event"], "lost", "{daemon}");
    assert_eq!(last["enforcement"]["event"], "stop", "{daemon}");
    assert_eq!(
        lost["time"], lost_since,
        "the loss is dated by the last heartbeat"
    );
    assert_eq!(audit::with_url(&records, "/before").len(), 1, "{daemon}");
    records
}
