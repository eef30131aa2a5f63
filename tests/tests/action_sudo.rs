//! `disable-sudo` (issue #8): the job's user loses its sudoers rule, cannot stop Warden, and
//! post (run as that user) reads the log over the read-only socket while Warden keeps
//! enforcing until the runner exits. The sudoers directory is a private one and the job's user
//! is `nobody`: the machine's own sudo configuration is never touched.
//!
//! Needs root (skips loudly otherwise), node and curl. Each test builds its own namespace,
//! origins and cgroup; the `cgroup` input always names the test's cgroup. The harness is
//! `tests::action`: node runs `action/main.js` and `post.js` as the runner would, and the
//! job's steps are children of a stand-in `Runner.Worker`.

use std::time::Duration;

use tests::action::{ActionJob, run_step, steps_to};
use tests::{Netns, Origins, TestCgroup, clients, skip_unless_root};

/// Deadline for the steps; passing ones take about a second.
const T: Duration = Duration::from_secs(60);

/// `nobody`: the job's user in the disable-sudo test.
const NOBODY: u32 = 65534;

#[test]
fn disable_sudo_keeps_warden_on_and_post_reports_over_the_read_only_channel() {
    if skip_unless_root("disable_sudo_keeps_warden_on_and_post_reports_over_the_read_only_channel")
    {
        return;
    }
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    let cgroup = TestCgroup::new().unwrap();
    let ca = origins.ca_pem_path();
    let mut job = ActionJob::new(&netns, &cgroup).unwrap();
    // A private sudoers directory and `nobody` as the job's user: the machine's own sudo
    // configuration is never looked at.
    let sudoers = tempfile::tempdir().unwrap();
    std::fs::write(
        sudoers.path().join("runner"),
        "nobody ALL=(ALL) NOPASSWD:ALL\n",
    )
    .unwrap();
    std::fs::write(sudoers.path().join("admins"), "%wheel ALL=(ALL) ALL\n").unwrap();
    job.input("egress-policy", "block")
        .input("allowed-endpoints", "tls.example")
        .input("disable-sudo", "true")
        .env("WARDEN_SUDOERS_DIR", sudoers.path().to_str().unwrap())
        .env("WARDEN_SUDO_USER", "nobody");

    let main = job.main().unwrap();
    let said = format!("{main:?}\n{}", job.describe());
    assert!(main.status.success(), "{said}");
    assert!(
        main.stdout.contains("disable-sudo: removed ")
            && main.stdout.contains("granted nobody sudo"),
        "{said}"
    );
    assert!(
        !sudoers.path().join("runner").exists(),
        "nobody's rule is gone:\n{said}"
    );
    assert!(
        sudoers.path().join("admins").exists(),
        "other rules stay:\n{said}"
    );
    assert_eq!(
        job.state().get("sudo-disabled").map(String::as_str),
        Some("true")
    );

    let steps = [
        run_step(
            "ok",
            format!("{}\n", clients::curl("https://tls.example/ok", &ca)),
        ),
        run_step(
            "nope",
            "curl -sS --fail --max-time 10 http://http.example/nope\n".into(),
        ),
    ];
    let ran = job.steps(&steps, T).unwrap();
    assert!(ran.stdout.contains("step ok exit 0"), "{ran:?}");
    assert!(!ran.stdout.contains("step nope exit 0"), "{ran:?}");

    // The job's user cannot stop Warden or ask its control socket; it can read the log.
    let stop = job.warden_as(NOBODY, &["stop"]).unwrap();
    assert_eq!(stop.status.code(), Some(1), "{stop:?}");
    assert!(
        stop.stderr.contains("only root can stop Warden"),
        "{stop:?}"
    );
    assert!(
        cgroup.state_dir().exists(),
        "nobody stopped Warden: {stop:?}"
    );

    let post = job.post_as(NOBODY).unwrap();
    let said = format!("{post:?}\n{}", job.describe());
    assert_eq!(
        post.status.code(),
        Some(1),
        "blocked, so fail-on: blocked fails:\n{said}"
    );
    assert!(
        post.stdout
            .contains("Warden keeps enforcing until the runner exits"),
        "{said}"
    );
    // Still enforcing after post: a later connection is still refused and recorded.
    let status = job.warden_as(0, &["status"]).unwrap();
    assert_eq!(
        status.status.code(),
        Some(0),
        "still on after post: {status:?}\n{said}"
    );
    let later = job
        .steps(
            &[run_step(
                "late",
                "curl -sS --fail --max-time 10 http://http.example/late\n".into(),
            )],
            T,
        )
        .unwrap();
    assert!(!later.stdout.contains("step late exit 0"), "{later:?}");

    let report = job.report().unwrap();
    assert_eq!(report["enforcement"]["held"], true, "{said}");
    assert_eq!(report["enforcement"]["live"], true, "{said}");
    assert_eq!(report["totals"]["blocked"], 1, "{said}");
    assert!(job.summary().contains("still on"), "{said}");
    let log = job.runner_temp().join("warden-audit.jsonl");
    let owner = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&log).unwrap());
    assert_eq!(owner, NOBODY, "the copy belongs to the job's user");
    let records = job.audit_records().unwrap();
    assert_eq!(
        steps_to(&records, "198.51.100.10", 80),
        ["nope (run: curl -sS --fail --max-time 10 http://http.example/nope)"],
        "{said}"
    );
}
