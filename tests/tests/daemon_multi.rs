//! Several daemons at once, one per cgroup: each records only its own cgroup's traffic in its
//! own log, `status`/`stop` without `--cgroup` refuse to guess (exit 2) and touch neither, and
//! `--cgroup` picks one.
//!
//! Needs root (skips loudly otherwise). The test builds its own namespace, origins and cgroups.
//! Other tests' daemons may run at the same time, which only adds to "several".

use std::time::Duration;

use tests::daemon::warden;
use tests::{Daemon, Netns, Origins, TestCgroup, audit, clients, skip_unless_root};

/// Deadline for one client; passing ones take well under a second.
const T: Duration = Duration::from_secs(30);

#[test]
fn two_daemons_on_two_cgroups() {
    if skip_unless_root("two_daemons_on_two_cgroups") {
        return;
    }
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    let ca = origins.ca_pem_path();
    let (cgroup_a, cgroup_b) = (TestCgroup::new().unwrap(), TestCgroup::new().unwrap());
    let a = Daemon::start(&netns, &cgroup_a, ["--egress-policy", "audit"]).unwrap();
    let b = Daemon::start(&netns, &cgroup_b, ["--egress-policy", "block"]).unwrap();
    a.assert_started();
    b.assert_started();
    assert_ne!(a.pid(), b.pid(), "two daemons");

    for (daemon, path) in [(&a, "/from-a"), (&b, "/from-b")] {
        let url = format!("http://http.example{path}");
        let curl = clients::curl_status(&[], &url, &ca);
        let out = daemon.run_in_cgroup(&curl, T).unwrap();
        assert!(out.status.success(), "{out:?}\n{daemon}");
        daemon
            .wait_for_record(T, |r| r["http"]["url"] == path)
            .unwrap();
    }

    for args in [&["status"][..], &["status", "--json"], &["stop"]] {
        let out = warden(&netns, args).unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?} must pick: {out:?}");
        let said = format!("{}{}", out.stdout, out.stderr);
        assert!(
            args[1..] == ["--json"] || said.contains("--cgroup"),
            "{out:?}"
        );
    }
    let (status, json) = a.status_json().unwrap();
    assert_eq!(status.status.code(), Some(0), "{status:?}\n{a}");
    let expected = (
        "on",
        a.pid().map(|p| i64::from(p.as_raw())),
        cgroup_a.path().to_str(),
        "audit",
    );
    let got = (
        json["state"].as_str().unwrap_or_default(),
        json["pid"].as_i64(),
        json["cgroup"].as_str(),
        json["mode"].as_str().unwrap_or_default(),
    );
    assert_eq!(got, expected, "{json}");
    let (status, json) = b.status_json().unwrap();
    assert_eq!(status.status.code(), Some(0), "{status:?}\n{b}");
    assert_eq!(
        (&json["mode"], &json["blocked"]),
        (&"block".into(), &1.into())
    );

    for (daemon, mine, other) in [(&a, "/from-a", "/from-b"), (&b, "/from-b", "/from-a")] {
        let stop = daemon.stop().unwrap();
        assert_eq!(stop.status.code(), Some(0), "{stop:?}\n{daemon}");
        daemon.assert_gone();
        let records = daemon.records().unwrap();
        let start =
            audit::enforcement_bracket(&records).unwrap_or_else(|e| panic!("{e}\n{daemon}"));
        assert_eq!(start.cgroup, daemon.cgroup().path(), "{daemon}");
        assert_eq!(audit::connections(&records).len(), 1, "{daemon}");
        assert_eq!(audit::with_url(&records, mine).len(), 1, "{daemon}");
        assert!(audit::with_url(&records, other).is_empty(), "{daemon}");
    }
    let blocked = audit::with_url(&b.records().unwrap(), "/from-b")[0].clone();
    assert_eq!(blocked["decision"], "blocked", "{blocked}");
}
