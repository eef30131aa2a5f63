//! The action's inputs (issue #8): malformed values fail main with one error per input naming
//! it and why, in audit mode too, and nothing starts; a warden that cannot start fails block
//! mode and warns in audit mode.
//!
//! Needs root (skips loudly otherwise), node and curl. Each test builds its own namespace,
//! origins and cgroup; the `cgroup` input always names the test's cgroup. The harness is
//! `tests::action`: node runs `action/main.js` and `post.js` as the runner would, and the
//! job's steps are children of a stand-in `Runner.Worker`.

use tests::action::{ActionJob, annotations};
use tests::{Netns, TestCgroup, skip_unless_root};

#[test]
fn malformed_inputs_fail_main_naming_each_input() {
    if skip_unless_root("malformed_inputs_fail_main_naming_each_input") {
        return;
    }
    let netns = Netns::new().unwrap();
    let cgroup = TestCgroup::new().unwrap();
    let mut job = ActionJob::new(&netns, &cgroup).unwrap();
    job.input("egress-policy", "blok")
        .input("fail-on", "sometimes")
        .input("disable-sudo", "yes")
        .input("tls-inspection", "on")
        .input("secrets", "{\"A\": 1}")
        .input("policy-file", "missing.yml")
        .input("binary-path", "/nonexistent/warden");
    let main = job.main().unwrap();
    let said = format!("{main:?}\n{}", job.describe());
    assert_eq!(main.status.code(), Some(1), "{said}");
    let errors: Vec<String> = annotations(&main.stdout)
        .into_iter()
        .filter(|(c, _)| c == "error")
        .map(|(_, m)| m)
        .collect();
    for (input, why) in [
        ("egress-policy", "\"blok\" is not one of audit, block"),
        (
            "fail-on",
            "\"sometimes\" is not one of blocked, anomaly, never",
        ),
        ("disable-sudo", "\"yes\" is not a boolean"),
        ("tls-inspection", "\"on\" is not a boolean"),
        ("secrets", "the value of A is not a string"),
        ("policy-file", "missing.yml does not exist"),
        ("binary-path", "/nonexistent/warden does not exist"),
    ] {
        let wanted = format!("Warden: input {input}: {why}");
        assert!(
            errors.iter().any(|e| e.starts_with(&wanted)),
            "no error {wanted:?}:\n{said}"
        );
    }
    assert!(!cgroup.state_dir().exists(), "nothing may start:\n{said}");

    // An input only Warden can judge: main fails naming it, in audit mode too.
    let mut job = ActionJob::new(&netns, &cgroup).unwrap();
    job.input("egress-policy", "audit")
        .input("allowed-endpoints", "good.example, bad..name:99999");
    let main = job.main().unwrap();
    let said = format!("{main:?}\n{}", job.describe());
    assert_eq!(main.status.code(), Some(1), "{said}");
    assert!(
        annotations(&main.stdout)
            .iter()
            .any(|(c, m)| c == "error" && m.starts_with("Warden: input allowed-endpoints: ")),
        "{said}"
    );
    assert!(!cgroup.state_dir().exists(), "nothing may start:\n{said}");
    // A cgroup that is not one.
    let mut job = ActionJob::new(&netns, &cgroup).unwrap();
    job.input("cgroup", "/tmp");
    let main = job.main().unwrap();
    assert!(
        annotations(&main.stdout).iter().any(|(c, m)| c == "error"
            && m.starts_with("Warden: input cgroup: /tmp is not under the cgroup v2 mount")),
        "{main:?}"
    );
    // Post after a failed main says so and does not fail again.
    let post = job.post().unwrap();
    assert!(post.status.success(), "{post:?}");
    assert!(
        job.summary().contains("Warden did not run"),
        "{}",
        job.describe()
    );
}

#[test]
fn a_warden_that_cannot_start_fails_block_mode_and_warns_in_audit_mode() {
    if skip_unless_root("a_warden_that_cannot_start_fails_block_mode_and_warns_in_audit_mode") {
        return;
    }
    let netns = Netns::new().unwrap();
    let cgroup = TestCgroup::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // A stand-in binary whose `start` fails the way a kernel without BPF support would.
    let fake = dir.path().join("warden");
    std::fs::write(
        &fake,
        "#!/bin/sh\n[ \"$1\" = start ] && [ \"$2\" != --help ] && { echo 'warden: load eBPF: Operation not permitted' >&2; exit 1; }\nexit 0\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    for (mode, code, command) in [("block", Some(1), "error"), ("audit", Some(0), "warning")] {
        let mut job = ActionJob::new(&netns, &cgroup).unwrap();
        job.input("egress-policy", mode)
            .input("binary-path", fake.to_str().unwrap());
        let main = job.main().unwrap();
        let said = format!("{mode}: {main:?}\n{}", job.describe());
        assert_eq!(main.status.code(), code, "{said}");
        let notes = annotations(&main.stdout);
        assert!(
            notes.iter().any(|(c, m)| c == command
                && m.contains(
                    "warden start failed (exit 1): warden: load eBPF: Operation not permitted"
                )),
            "{said}"
        );
        assert!(
            notes
                .iter()
                .any(|(c, m)| c == command && m.contains("Warden is NOT")),
            "{said}"
        );
        assert_ne!(
            job.state().get("started").map(String::as_str),
            Some("true"),
            "{said}"
        );
    }
}
