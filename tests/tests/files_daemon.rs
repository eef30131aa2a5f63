//! Source-tamper detection under `warden start --workspace` (issue #10): a write just before
//! `warden stop` still gets its records, before the stop record; a write to the daemon's own
//! state is `warden-tampered`; a writer outside the guarded cgroup is recorded and marked so.
//!
//! Needs root (skips loudly otherwise).

use std::time::Duration;

use tests::{
    Daemon, Netns, TestCgroup, audit, clients, process, skip_unless_root,
    workspace::{TestRepo, anomaly_kinds, changes, stop_files, with_anomaly},
};

const T: Duration = Duration::from_secs(30);

#[test]
fn records_survive_stop_right_after_the_write() {
    if skip_unless_root("records_survive_stop_right_after_the_write") {
        return;
    }
    let netns = Netns::new().unwrap();
    let cgroup = TestCgroup::new().unwrap();
    let repo = TestRepo::new().unwrap();
    let ws = repo.path().display().to_string();
    let daemon = Daemon::start(&netns, &cgroup, ["--workspace", ws.as_str()]).unwrap();
    daemon.assert_started();
    let planted = cgroup.state_dir().join("planted");
    let script = format!(
        "cd {ws} && python3 -c \"open('src/lib.rs','a').write('// x\\n')\" && sh -c 'echo hi > {planted}'",
        ws = clients::quote(&ws),
        planted = clients::quote(&planted.display().to_string()),
    );
    let job = daemon.run_in_cgroup(&script, T).unwrap();
    assert!(job.status.success(), "{job:?}\n{daemon}");
    // A process outside the guarded cgroup writes too.
    let outside = format!("cd {} && echo z >> README.md", clients::quote(&ws));
    let outside = process::run(netns.sh(&outside), T).unwrap();
    assert!(outside.status.success(), "{outside:?}");
    let stopped = daemon.stop().unwrap();
    assert!(stopped.status.success(), "{stopped:?}\n{daemon}");
    let records = daemon.records().unwrap();
    let said = format!("{daemon}");

    let write = changes(&records, "src/lib.rs", "write");
    assert_eq!(write.len(), 1, "{said}");
    assert_eq!(audit::exe_name(write[0]), "python3", "{said}");
    assert!(!audit::has_flag(write[0], "outside-job"), "{said}");
    let differs = changes(&records, "src/lib.rs", "differs");
    assert_eq!(differs.len(), 1, "{said}");
    assert_eq!(anomaly_kinds(differs[0]), ["source-modified"], "{said}");

    let readme = changes(&records, "README.md", "write");
    assert_eq!(readme.len(), 1, "{said}");
    assert!(audit::has_flag(readme[0], "outside-job"), "{said}");

    let tampered = with_anomaly(&records, "warden-tampered");
    assert_eq!(tampered.len(), 1, "{said}");
    assert_eq!(
        tampered[0]["file"]["path"],
        planted.display().to_string(),
        "{said}"
    );
    // A child of the job's shell, so the tracepoints saw it start: named however short-lived.
    assert_eq!(audit::exe_name(tampered[0]), "sh", "{said}");

    // Every file record is written before the stop record.
    let stop_at = records
        .iter()
        .rposition(|r| r["enforcement"]["event"] == "stop")
        .expect("stop record");
    let last_file = records.iter().rposition(|r| r["kind"] == "file").unwrap();
    assert!(last_file < stop_at, "{said}");
    let files = stop_files(&records).expect("files in the stop record");
    // Both sources, each when written and at the end; and the tampering.
    assert_eq!(files["anomalies"], 5, "{said}");
    assert_eq!(files["workspace"], ws, "{said}");
    daemon.assert_gone();
}

#[test]
fn start_refuses_a_missing_workspace() {
    if skip_unless_root("start_refuses_a_missing_workspace") {
        return;
    }
    let netns = Netns::new().unwrap();
    let cgroup = TestCgroup::new().unwrap();
    let daemon = Daemon::start(&netns, &cgroup, ["--workspace", "/nonexistent/warden-ws"]).unwrap();
    let said = format!("{daemon}");
    assert_eq!(daemon.started.status.code(), Some(2), "{said}");
    assert!(daemon.started.stderr.contains("--workspace"), "{said}");
    assert!(!cgroup.state_dir().exists(), "{said}");
}
