//! The baseline and `policy suggest` (issue #9): a second run compared with the baseline of the
//! first flags only the new host; the policy suggested from a run, fed back in block mode, lets
//! the same run pass and refuses a new destination.
//!
//! Needs root (skips loudly otherwise).

use std::{path::Path, process::Command, time::Duration};

use tests::clients::{exit_of, outcome, python_echo, quote};
use tests::inspect::InspectOrigins;
use tests::origins::ECHO_ADDR;
use tests::{Netns, Origins, WardenRun, assert_run, assert_run_eq, skip_unless_root, warden_bin};

const T: Duration = Duration::from_secs(60);

fn curl(url: &str, ca: &Path) -> String {
    format!(
        "curl -sS --fail --max-time 20 --cacert {} {} -o /dev/null",
        ca.display(),
        quote(url)
    )
}

fn warden(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(warden_bin()).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn baseline_flags_only_the_new_host_and_suggest_round_trips() {
    if skip_unless_root("baseline_flags_only_the_new_host_and_suggest_round_trips") {
        return;
    }
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    let inspect = InspectOrigins::start(&netns, &origins).unwrap();
    let ca = origins.ca_pem_path();
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).display().to_string();
    let one = curl(&inspect.h1().url("/one"), &ca);
    let two = curl(&inspect.h2().url("/two"), &ca);

    let first = WardenRun::new(&netns)
        .timeout(T)
        .audit_log(path("first.jsonl"))
        .cmd(["sh", "-c", &one])
        .run()
        .unwrap();
    first.assert_success();
    let (code, _, err) = warden(&[
        "baseline",
        "update",
        "--log",
        &path("first.jsonl"),
        "--baseline",
        &path("baseline.yml"),
    ]);
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(path("baseline.yml")).unwrap();
    assert!(text.contains("endpoint: \"h1.example\""), "{text}");
    assert!(text.contains("processes: [\"curl\"]"), "{text}");

    let second = WardenRun::new(&netns)
        .timeout(T)
        .audit_log(path("second.jsonl"))
        .cmd(["sh", "-c", &format!("{one} && {two}")])
        .run()
        .unwrap();
    second.assert_success();
    let (code, out, err) = warden(&[
        "baseline",
        "diff",
        "--log",
        &path("second.jsonl"),
        "--baseline",
        &path("baseline.yml"),
    ]);
    assert_eq!(code, 1, "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "{out}");
    assert!(
        lines[0].starts_with("new-destination h2.example (1 connection; curl"),
        "{out}"
    );

    let (code, policy, err) = warden(&["policy", "suggest", "--log", &path("second.jsonl")]);
    assert_eq!(code, 0, "{err}");
    std::fs::write(path("policy.yml"), &policy).unwrap();
    let (code, out, _) = warden(&["policy", "check", &path("policy.yml")]);
    assert_eq!(code, 0, "{out}\n{policy}");
    let steps = [
        outcome("same", &format!("{one} && {two}")),
        outcome(
            "new",
            &python_echo(&ECHO_ADDR.ip().to_string(), ECHO_ADDR.port(), 16),
        ),
    ];
    let third = WardenRun::new(&netns)
        .timeout(T)
        .args(["--policy", &path("policy.yml")])
        .cmd(["sh", "-c", &steps.join("\n")])
        .run()
        .unwrap();
    third.assert_success();
    assert_run_eq!(
        third,
        exit_of(&third.stdout, "same"),
        Some(0),
        "the same run under the suggested policy\n{policy}"
    );
    assert_run!(
        third,
        exit_of(&third.stdout, "new") != Some(0),
        "a new destination passed\n{policy}"
    );
    let blocked = tests::audit::connections(&third.records)
        .into_iter()
        .filter(|c| c["decision"] == "blocked")
        .count();
    assert_run_eq!(third, blocked, 1, "blocked connections");
}
