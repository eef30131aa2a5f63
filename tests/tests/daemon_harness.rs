//! The daemon tests' own harness checked: a [`TestCgroup`] is a fresh child of the cgroup v2
//! mount (never the root itself), `enter` puts a client in it, and dropping it kills what is
//! left and removes it; a [`Daemon`] dropped without `stop` — a test that failed halfway — still
//! stops its daemon and leaves no state behind.
//!
//! Needs root (skips loudly otherwise).

use std::time::Duration;

use tests::daemon::{cgroup2_mount, wait_for_output, wait_gone};
use tests::process::Running;
use tests::{Daemon, Netns, TestCgroup, skip_unless_root};

const T: Duration = Duration::from_secs(30);

#[test]
fn test_cgroup_is_a_fresh_child_and_is_cleaned_up() {
    if skip_unless_root("test_cgroup_is_a_fresh_child_and_is_cleaned_up") {
        return;
    }
    let netns = Netns::new().unwrap();
    let cgroup = TestCgroup::new().unwrap();
    let path = cgroup.path().to_owned();
    let mount = cgroup2_mount(&std::fs::read_to_string("/proc/mounts").unwrap()).unwrap();
    assert_eq!(path.parent(), Some(mount.as_path()), "a child of the mount");
    assert!(cgroup.pids().is_empty(), "fresh");

    let sleeper = Running::spawn(netns.sh(&cgroup.enter("echo in; exec sleep 100"))).unwrap();
    wait_for_output(&sleeper, "in", T).unwrap();
    assert_eq!(cgroup.pids(), [sleeper.pid()], "the client itself joined");
    drop(cgroup);
    assert!(!path.exists(), "{} removed", path.display());
    assert!(
        wait_gone(sleeper.pid(), T),
        "what was left in it was killed"
    );
}

#[test]
fn dropped_daemon_guard_stops_the_daemon() {
    if skip_unless_root("dropped_daemon_guard_stops_the_daemon") {
        return;
    }
    let netns = Netns::new().unwrap();
    let cgroup = TestCgroup::new().unwrap();
    let daemon = Daemon::start(&netns, &cgroup, Vec::<&str>::new()).unwrap();
    daemon.assert_started();
    let pid = daemon.pid().unwrap();
    assert!(cgroup.state_dir().is_dir(), "{daemon}");
    drop(daemon);
    assert!(wait_gone(pid, T), "daemon {pid} stopped");
    assert!(!cgroup.state_dir().exists());
}
