//! `warden start`, `status`, `stop` on one cgroup: `start` returns with enforcement on, what
//! processes in the cgroup do is recorded and nothing else is, `status` says so with counts, and
//! `stop` (or SIGTERM to the daemon) flushes every record, connections still open included,
//! before the stop record, and leaves nothing behind.
//!
//! Needs root (skips loudly otherwise). Each test builds its own namespace, origins and cgroup;
//! every `warden` command names that cgroup, so these tests may run alongside any other.

use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use tests::daemon::{wait_for_output, wait_gone, wait_unloaded};
use tests::process::{self, Running};
use tests::{Daemon, Netns, Origins, TestCgroup, audit, clients, skip_unless_root};

/// Deadline for one client or one wait; passing ones take well under a second.
const T: Duration = Duration::from_secs(30);
/// How long the kernel may take to free a program after its last reference is dropped.
const UNLOAD_GRACE: Duration = Duration::from_secs(5);

#[test]
fn start_records_the_cgroup_until_stop() {
    if skip_unless_root("start_records_the_cgroup_until_stop") {
        return;
    }
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    let cgroup = TestCgroup::new().unwrap();
    let ca = origins.ca_pem_path();
    let daemon = Daemon::start(&netns, &cgroup, ["--egress-policy", "audit"]).unwrap();
    // No sleep: `start` returns only once enforcement is on.
    let first = daemon
        .run_in_cgroup(&clients::curl("http://http.example/first", &ca), T)
        .unwrap();
    daemon.assert_started();
    assert!(first.status.success(), "{first:?}\n{daemon}");
    let pid = daemon.pid().unwrap_or_else(|| panic!("no pid:\n{daemon}"));
    let since = check_start_lines(&daemon, "audit");

    let tls = daemon
        .run_in_cgroup(&clients::curl("https://tls.example/tls", &ca), T)
        .unwrap();
    assert!(tls.status.success(), "{tls:?}\n{daemon}");
    let outside = process::run(netns.sh(&clients::curl("http://http.example/out", &ca)), T);
    assert!(
        outside.unwrap().status.success(),
        "outside the cgroup works"
    );
    daemon
        .wait_for_record(T, |r| r["http"]["url"] == "/first")
        .unwrap();
    daemon
        .wait_for_record(T, |r| r["tls"]["sni"] == "tls.example")
        .unwrap();

    let status = daemon.status().unwrap();
    let said = format!("{status:?}\n{daemon}");
    assert_eq!(status.status.code(), Some(0), "{said}");
    let on = format!(
        "warden: on (audit mode) since {since} on {}, daemon pid {pid}",
        cgroup.path().display()
    );
    assert!(status.stdout.contains(&on), "{said}");
    assert!(
        status.stdout.contains("2 connection(s), 0 blocked"),
        "{said}"
    );
    let (status, json) = daemon.status_json().unwrap();
    assert_eq!(status.status.code(), Some(0), "{status:?}");
    let expected = serde_json::json!({
        "state": "on", "pid": pid.as_raw(), "cgroup": cgroup.path(), "mode": "audit",
        "since": since, "audit_log": daemon.audit_log(), "connections": 2, "blocked": 0,
    });
    assert_eq!(json, expected, "status --json\n{daemon}");

    let stop = daemon.stop().unwrap();
    let said = format!("{stop:?}\n{daemon}");
    assert_eq!(stop.status.code(), Some(0), "{said}");
    assert!(stop.stderr.contains("audit mode, 2 connections"), "{said}");
    let log_line = format!("stopped; audit log: {}", daemon.audit_log().display());
    assert!(stop.stderr.contains(&log_line), "{said}");
    daemon.assert_gone();

    let records = daemon.records().unwrap();
    let start = audit::enforcement_bracket(&records).unwrap_or_else(|e| panic!("{e}\n{daemon}"));
    assert_eq!(start.cgroup, cgroup.path(), "{daemon}");
    let conns = audit::connections(&records);
    assert_eq!(conns.len(), 2, "/first and /tls only, not /out:\n{daemon}");
    assert_eq!(audit::with_url(&records, "/first").len(), 1, "{daemon}");
    assert!(conns.iter().any(|r| r["tls"]["sni"] == "tls.example"));
    for record in conns {
        assert_eq!(audit::exe_name(record), "curl", "{record}");
        assert_eq!(record["decision"], "audited", "{record}");
    }
    assert_unloaded(&start.programs);

    // Detached: the cgroup reaches the origin directly, and nothing more is recorded.
    let after = daemon
        .run_in_cgroup(&clients::curl("http://http.example/after", &ca), T)
        .unwrap();
    assert!(after.status.success(), "{after:?}");
    assert_eq!(daemon.records().unwrap(), records, "nothing after stop");
    let (status, json) = daemon.status_json().unwrap();
    assert_eq!(
        (status.status.code(), &json["state"]),
        (Some(1), &"off".into())
    );
}

/// Python holding a raw TCP connection to the echo origin open: sends 9 bytes, reads them back,
/// says `holding` and sleeps for a minute.
const HOLD_PY: &str = r#"
import socket, sys, time
s = socket.create_connection(("raw.example", 7), timeout=20)
s.sendall(b"held open")
got = b""
while len(got) < 9:
    chunk = s.recv(64)
    if not chunk:
        sys.exit(f"closed early after {got!r}")
    got += chunk
print("holding", flush=True)
time.sleep(60)
"#;

#[test]
fn stop_records_connections_still_open() {
    if skip_unless_root("stop_records_connections_still_open") {
        return;
    }
    let netns = Netns::new().unwrap();
    let _origins = Origins::start(&netns).unwrap();
    let cgroup = TestCgroup::new().unwrap();
    let daemon = Daemon::start(&netns, &cgroup, Vec::<&str>::new()).unwrap();
    daemon.assert_started();
    let script = format!("exec python3 -c {}", clients::quote(HOLD_PY));
    let client = Running::spawn(daemon.in_cgroup(&script)).unwrap();
    wait_for_output(&client, "holding", T).unwrap();

    let asked = Instant::now();
    let stop = daemon.stop().unwrap();
    let took = asked.elapsed();
    assert_eq!(stop.status.code(), Some(0), "{stop:?}\n{daemon}");
    assert!(
        took < Duration::from_secs(10),
        "stop took {took:?}\n{daemon}"
    );
    daemon.assert_gone();

    let records = daemon.records().unwrap();
    audit::enforcement_bracket(&records).unwrap_or_else(|e| panic!("{e}\n{daemon}"));
    let held = audit::connections_to(&records, "203.0.113.10", 7);
    assert_eq!(
        held.len(),
        1,
        "one record for the open connection:\n{daemon}"
    );
    let record = held[0];
    assert!(
        audit::has_flag(record, "interrupted"),
        "still open at stop, so flagged interrupted: {record}"
    );
    assert_eq!(record["bytes"], serde_json::json!({"up": 9, "down": 9}));
    assert_eq!(audit::exe_name(record), "python3", "{record}");
    // enforcement_bracket checked that the stop record is the last one.
    drop(client);
}

#[test]
fn sigterm_to_the_daemon_stops_it_like_stop() {
    if skip_unless_root("sigterm_to_the_daemon_stops_it_like_stop") {
        return;
    }
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    let cgroup = TestCgroup::new().unwrap();
    let daemon = Daemon::start(&netns, &cgroup, Vec::<&str>::new()).unwrap();
    daemon.assert_started();
    let pid = daemon.pid().unwrap_or_else(|| panic!("no pid:\n{daemon}"));
    let ca = origins.ca_pem_path();
    let curl = daemon
        .run_in_cgroup(&clients::curl("http://http.example/term", &ca), T)
        .unwrap();
    assert!(curl.status.success(), "{curl:?}\n{daemon}");
    daemon
        .wait_for_record(T, |r| r["http"]["url"] == "/term")
        .unwrap();

    kill(pid, Signal::SIGTERM).unwrap();
    assert!(wait_gone(pid, T), "daemon {pid} ignored SIGTERM\n{daemon}");
    daemon.assert_gone();
    let records = daemon.records().unwrap();
    let start = audit::enforcement_bracket(&records).unwrap_or_else(|e| panic!("{e}\n{daemon}"));
    assert_eq!(audit::with_url(&records, "/term").len(), 1, "{daemon}");
    assert_unloaded(&start.programs);
    let (status, json) = daemon.status_json().unwrap();
    assert_eq!(
        (status.status.code(), &json["state"]),
        (Some(1), &"off".into())
    );
}

/// Checks `start`'s two lines on stdout and returns the time enforcement started.
#[track_caller]
fn check_start_lines(daemon: &Daemon, mode: &str) -> String {
    let pid = daemon.pid().unwrap();
    let lines: Vec<&str> = daemon.started.stdout.lines().collect();
    let head = format!("warden: enforcing ({mode} mode) on ");
    let since = lines
        .first()
        .and_then(|l| l.strip_prefix(&head))
        .and_then(|l| l.strip_suffix(&format!(", daemon pid {pid}")))
        .and_then(|l| l.split_once(" since "))
        .filter(|(cgroup, _)| *cgroup == daemon.cgroup().path().to_string_lossy())
        .map(|(_, since)| since.to_owned())
        .unwrap_or_else(|| panic!("unexpected first line:\n{daemon}"));
    let log = format!("warden: audit log: {}", daemon.audit_log().display());
    assert_eq!(lines.get(1), Some(&log.as_str()), "{daemon}");
    since
}

/// None of `programs` is loaded any more (the kernel may take a moment to free them).
#[track_caller]
fn assert_unloaded(programs: &[u32]) {
    let still = wait_unloaded(programs, UNLOAD_GRACE);
    assert!(
        still.is_empty(),
        "programs {still:?} still loaded {UNLOAD_GRACE:?} after stop"
    );
}
