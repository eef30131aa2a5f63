//! The GitHub Action end to end (issue #8): a block-mode and an audit-mode job, each
//! destination under the right step, the job summary, the annotations, the outputs, the files
//! left in `RUNNER_TEMP`, and whether post fails.
//!
//! Needs root (skips loudly otherwise), node and curl. Each test builds its own namespace,
//! origins and cgroup; the `cgroup` input always names the test's cgroup. The harness is
//! `tests::action`: node runs `action/main.js` and `post.js` as the runner would, and the
//! job's steps are children of a stand-in `Runner.Worker`.

use std::time::Duration;

use tests::action::{ActionJob, Step, annotations, run_step, steps_to};
use tests::{Netns, Origins, TestCgroup, audit, clients, skip_unless_root};

/// Deadline for the steps; passing ones take about a second.
const T: Duration = Duration::from_secs(60);

#[test]
fn block_mode_job_attributes_steps_reports_and_fails_on_blocked() {
    if skip_unless_root("block_mode_job_attributes_steps_reports_and_fails_on_blocked") {
        return;
    }
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    let cgroup = TestCgroup::new().unwrap();
    let ca = origins.ca_pem_path();
    let mut job = ActionJob::new(&netns, &cgroup).unwrap();
    job.input("egress-policy", "block")
        .input("allowed-endpoints", "tls.example\nhttp.example:80")
        .input("disable-telemetry", "true")
        .input("token", "ghs_0123456789abcdefghijklmnopqrstuvwxyz");

    let steps = [
        run_step(
            "fetch",
            format!("{}\n", clients::curl("https://tls.example/fetch", &ca)),
        ),
        Step::Uses {
            id: "__octo_fetcher".into(),
            repository: "octo/fetcher".into(),
            reference: "v2".into(),
            script: format!("{}\n", clients::curl("http://http.example/uses", &ca)),
        },
        run_step(
            "__run_3",
            "curl -sS --fail --max-time 10 http://raw.example:7/exfil\n".into(),
        ),
    ];
    // The worker runs before main, as on a real runner: Warden finds it through /proc.
    let worker = job.spawn_worker(&steps).unwrap();
    let main = job.main().unwrap();
    let said = format!("{main:?}\n{}", job.describe());
    assert!(main.status.success(), "main failed:\n{said}");
    assert!(
        main.stdout.contains("Warden: enforcing (block mode) on"),
        "{said}"
    );
    let notices = annotations(&main.stdout);
    assert!(
        notices
            .iter()
            .any(|(c, m)| c == "notice" && m.contains("input disable-telemetry is ignored")),
        "a harden-runner input Warden does not need gets a notice:\n{said}"
    );
    assert!(
        cgroup.state_dir().exists(),
        "no daemon for the cgroup:\n{said}"
    );
    let state = job.state();
    assert_eq!(
        state.get("started").map(String::as_str),
        Some("true"),
        "{said}"
    );
    let dir = state["dir"].clone();
    let mode = std::fs::metadata(&dir)
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777);
    assert_eq!(mode.ok(), Some(0o700), "{dir} is not root-only:\n{said}");

    job.go().unwrap();
    let ran = worker.wait_timeout(T).unwrap();
    let said = format!("{ran:?}\n{}", job.describe());
    assert!(ran.stdout.contains("step fetch exit 0"), "{said}");
    assert!(ran.stdout.contains("step __octo_fetcher exit 0"), "{said}");
    assert!(
        !ran.stdout.contains("step __run_3 exit 0"),
        "raw.example:7 is not allowed, so curl fails:\n{said}"
    );

    let post = job.post().unwrap();
    let said = format!("{post:?}\n{}", job.describe());
    assert_eq!(
        post.status.code(),
        Some(1),
        "fail-on defaults to blocked in block mode:\n{said}"
    );
    // The daemon is stopped and its state gone; the root-only directory too.
    assert!(!cgroup.state_dir().exists(), "{said}");
    assert!(
        !std::path::Path::new(&dir).exists(),
        "{dir} left behind:\n{said}"
    );

    // Each destination under its step.
    let records = job.audit_records().unwrap();
    let fetch = steps_to(&records, "192.0.2.10", 443);
    assert_eq!(fetch.len(), 1, "{said}");
    assert!(
        fetch[0].starts_with("fetch (run: curl -sS --fail -g --max-time 20 --cacert "),
        "the run step's first line (cut at 80 characters): {fetch:?}\n{said}"
    );
    assert_eq!(
        steps_to(&records, "198.51.100.10", 80),
        ["__octo_fetcher (octo/fetcher@v2)"],
        "{said}"
    );
    let blocked = audit::connections_to(&records, "203.0.113.10", 7);
    assert_eq!(blocked.len(), 1, "{said}");
    assert_eq!(blocked[0]["decision"], "blocked", "{said}");
    assert_eq!(
        blocked[0]["process"]["step"],
        "__run_3 (run: curl -sS --fail --max-time 10 http://raw.example:7/exfil)",
        "{said}"
    );

    // Outputs.
    let outputs = job.outputs();
    let temp = job.runner_temp();
    assert_eq!(
        outputs.get("blocked-count").map(String::as_str),
        Some("1"),
        "{said}"
    );
    assert_eq!(
        outputs.get("anomaly-count").map(String::as_str),
        Some("0"),
        "{said}"
    );
    assert_eq!(
        outputs.get("audit-log").map(String::as_str),
        Some(temp.join("warden-audit.jsonl").to_str().unwrap()),
        "{said}"
    );
    assert_eq!(
        outputs.get("report").map(String::as_str),
        Some(temp.join("warden-report.json").to_str().unwrap()),
        "{said}"
    );

    // One error annotation for the blocked destination, naming its step and the entry to add.
    let notes = annotations(&post.stdout);
    let errors: Vec<&String> = notes
        .iter()
        .filter(|(c, _)| c == "error")
        .map(|(_, m)| m)
        .collect();
    let about_blocked: Vec<&&String> = errors
        .iter()
        .filter(|m| m.contains("raw.example:7 was blocked"))
        .collect();
    assert_eq!(about_blocked.len(), 1, "{said}");
    assert!(
        about_blocked[0].contains("__run_3 (run: curl")
            && about_blocked[0].contains("add to allowed-endpoints: raw.example:7"),
        "{said}"
    );
    assert!(
        errors.iter().any(|m| m.contains("fail-on: blocked")),
        "{said}"
    );

    // The JSON report and the summary.
    let report = job.report().unwrap();
    assert_eq!(report["mode"], "block", "{said}");
    assert_eq!(report["enforcement"]["held"], true, "{said}");
    assert_eq!(report["totals"]["blocked"], 1, "{said}");
    let summary = job.summary();
    assert!(summary.contains("## Warden: block mode"), "{said}");
    assert!(
        summary.contains("enforcement held for the whole job"),
        "{said}"
    );
    let blocked_at = summary
        .find("### Blocked")
        .unwrap_or_else(|| panic!("{said}"));
    let dests_at = summary
        .find("### Destinations by step")
        .unwrap_or_else(|| panic!("{said}"));
    assert!(blocked_at < dests_at, "{said}");
    assert!(
        summary.contains("| raw.example:7 | raw.example:7 |"),
        "{said}"
    );
    assert!(
        summary.contains(
            "| \\_\\_octo\\_fetcher (octo/fetcher@v2) | /usr/bin/curl | http.example:80 | 1 |"
        ),
        "{said}"
    );
    assert!(summary.contains("allowed-endpoints: >\n"), "{said}");
    for entry in [
        "  http.example:80\n",
        "  raw.example:7\n",
        "  tls.example:443\n",
    ] {
        assert!(summary.contains(entry), "{entry:?} not suggested:\n{said}");
    }
}

#[test]
fn audit_mode_job_passes_and_warns() {
    if skip_unless_root("audit_mode_job_passes_and_warns") {
        return;
    }
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    let cgroup = TestCgroup::new().unwrap();
    let ca = origins.ca_pem_path();
    let mut job = ActionJob::new(&netns, &cgroup).unwrap();
    job.input("egress-policy", "audit");
    let main = job.main().unwrap();
    assert!(main.status.success(), "{main:?}\n{}", job.describe());
    let steps = [run_step(
        "build",
        format!("{}\n", clients::curl("http://http.example/a", &ca)),
    )];
    let ran = job.steps(&steps, T).unwrap();
    assert!(ran.stdout.contains("step build exit 0"), "{ran:?}");
    let post = job.post().unwrap();
    let said = format!("{post:?}\n{}", job.describe());
    assert!(
        post.status.success(),
        "fail-on is never in audit mode:\n{said}"
    );
    let records = job.audit_records().unwrap();
    let r =
        audit::find_connection(&records, "198.51.100.10", 80).unwrap_or_else(|| panic!("{said}"));
    assert_eq!(r["decision"], "audited", "{said}");
    let step = r["process"]["step"].as_str().unwrap_or_default();
    assert!(step.starts_with("build (run: curl -sS "), "{said}");
    assert_eq!(
        job.outputs().get("blocked-count").map(String::as_str),
        Some("0"),
        "{said}"
    );
    assert!(job.summary().contains("## Warden: audit mode"), "{said}");
    assert!(job.summary().contains("  http.example:80\n"), "{said}");
}
