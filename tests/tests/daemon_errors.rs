//! `warden start` refusing: a cgroup that already has a daemon (exit 1, the running one left
//! alone), and bad input — a cgroup that does not exist or is not a cgroup, a bad policy file,
//! endpoint or mode — (exit 2) with no daemon, state or audit log left behind.
//!
//! Needs root (skips loudly otherwise). Each test builds its own namespace and cgroups.

use std::path::Path;

use tests::daemon::{daemons_for, warden};
use tests::process::Captured;
use tests::{Daemon, Netns, TestCgroup, skip_unless_root};

#[test]
fn second_start_on_the_same_cgroup_is_refused() {
    if skip_unless_root("second_start_on_the_same_cgroup_is_refused") {
        return;
    }
    let netns = Netns::new().unwrap();
    let cgroup = TestCgroup::new().unwrap();
    let first = Daemon::start(&netns, &cgroup, Vec::<&str>::new()).unwrap();
    first.assert_started();
    let second = Daemon::start(&netns, &cgroup, ["--egress-policy", "block"]).unwrap();
    let said = format!("{:?}\n{first}", second.started);
    assert_eq!(second.started.status.code(), Some(1), "{said}");
    assert!(
        second.started.stderr.contains("already enforcing"),
        "{said}"
    );
    assert!(second.pid().is_none(), "{said}");
    assert!(
        !second.audit_log().exists(),
        "the second start wrote no log"
    );

    // The first daemon is untouched: same pid, same mode, still on.
    let (status, json) = first.status_json().unwrap();
    assert_eq!(status.status.code(), Some(0), "{status:?}\n{first}");
    let pid = first.pid().map(|p| i64::from(p.as_raw()));
    assert_eq!(
        (json["pid"].as_i64(), &json["mode"]),
        (pid, &"audit".into())
    );
    assert_eq!(daemons_for(cgroup.path()), Vec::from_iter(first.pid()));
    let stop = first.stop().unwrap();
    assert_eq!(stop.status.code(), Some(0), "{stop:?}\n{first}");
    first.assert_gone();
}

#[test]
fn start_with_bad_input_exits_2_and_leaves_nothing() {
    if skip_unless_root("start_with_bad_input_exits_2_and_leaves_nothing") {
        return;
    }
    let netns = Netns::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");

    // No such cgroup, and a directory that is not one.
    for path in [Path::new("/nonexistent/wt-cgroup"), dir.path()] {
        let mut args = vec!["start".as_ref(), "--cgroup".as_ref(), path.as_os_str()];
        args.extend(["--audit-log".as_ref(), log.as_os_str()]);
        let out = warden(&netns, args).unwrap();
        assert_refused(&out, &path.to_string_lossy());
        assert!(!log.exists(), "no audit log for {}", path.display());
        assert!(
            daemons_for(path).is_empty(),
            "no daemon for {}",
            path.display()
        );
    }

    let cgroup = TestCgroup::new().unwrap();
    let bad = dir.path().join("bad.yml");
    std::fs::write(
        &bad,
        "mode: block\nallowed-endpoints:\n  - https://tls.example/x\n",
    )
    .unwrap();
    let bad = bad.to_string_lossy();
    let cases: [(&[&str], &str); 3] = [
        (&["--policy", &bad], &bad),
        (
            &["--allowed-endpoints", "tls.example, 10.0.0.1/8"],
            "10.0.0.1/8",
        ),
        (&["--egress-policy", "sideways"], "sideways"),
    ];
    for (args, named) in cases {
        let daemon = Daemon::start(&netns, &cgroup, args).unwrap();
        assert_refused(&daemon.started, named);
        assert!(daemon.pid().is_none(), "{daemon}");
        assert!(!daemon.audit_log().exists(), "no audit log for {args:?}");
        assert!(
            !cgroup.state_dir().exists(),
            "no state for {args:?}:\n{daemon}"
        );
        assert!(
            daemons_for(cgroup.path()).is_empty(),
            "no daemon for {args:?}"
        );
    }
}

/// `start` exited 2, said why naming `named`, and did not claim enforcement.
#[track_caller]
fn assert_refused(out: &Captured, named: &str) {
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        out.stderr.contains(named),
        "the message names {named:?}: {out:?}"
    );
    assert!(!out.stdout.contains("enforcing"), "{out:?}");
}
