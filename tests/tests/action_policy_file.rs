//! `policy-file` on pull requests (issue #8): read from the pull request's base commit, never
//! from its head (which its author controls); main fails naming the input when the base
//! cannot be read.
//!
//! Needs root (skips loudly otherwise), node and curl. Each test builds its own namespace,
//! origins and cgroup; the `cgroup` input always names the test's cgroup. The harness is
//! `tests::action`: node runs `action/main.js` and `post.js` as the runner would, and the
//! job's steps are children of a stand-in `Runner.Worker`.

use std::time::Duration;

use tests::action::{ActionJob, annotations, run_step};
use tests::{Netns, Origins, TestCgroup, clients, skip_unless_root};

/// Deadline for the steps; passing ones take about a second.
const T: Duration = Duration::from_secs(60);

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
        run_step(
            "ok",
            format!("{}\n", clients::curl("https://tls.example/ok", &ca)),
        ),
        run_step(
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
