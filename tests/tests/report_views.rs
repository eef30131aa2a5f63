//! `warden report` for people (issue #9): the HTML report of a job with steps, opened in headless
//! Chromium (no console errors; the timeline has one row per step; the blocked destination is
//! marked), a job's report against a baseline, and the view across many jobs' logs.
//!
//! Needs root (skips loudly otherwise), node, curl and Chromium (`scripts/setup-deps.sh`).

use std::{path::Path, process::Command, time::Duration};

use tests::action::{ActionJob, Step, run_step};
use tests::clients::{self, quote};
use tests::inspect::InspectOrigins;
use tests::{Netns, Origins, TestCgroup, WardenRun, skip_unless_root, warden_bin};

const T: Duration = Duration::from_secs(60);

fn warden(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(warden_bin()).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The DOM after the page's scripts ran, and what the page logged to its console.
fn chromium_dom(page: &Path) -> (String, Vec<String>) {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium (Debian's `chromium`; scripts/setup-deps.sh installs it)");
    let console = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught"))
        .map(str::to_string)
        .collect();
    (String::from_utf8_lossy(&out.stdout).into_owned(), console)
}

#[test]
fn html_report_has_a_timeline_row_per_step_and_marks_the_blocked_destination() {
    if skip_unless_root("html_report_has_a_timeline_row_per_step_and_marks_the_blocked_destination")
    {
        return;
    }
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    let cgroup = TestCgroup::new().unwrap();
    let ca = origins.ca_pem_path();
    let mut job = ActionJob::new(&netns, &cgroup).unwrap();
    job.input("egress-policy", "block")
        .input("allowed-endpoints", "tls.example\nhttp.example:80")
        .input("fail-on", "never");
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
            "curl -sS --max-time 10 http://raw.example:7/exfil || true\n".into(),
        ),
    ];
    let worker = job.spawn_worker(&steps).unwrap();
    let main = job.main().unwrap();
    assert!(main.status.success(), "main: {main:?}\n{}", job.describe());
    job.go().unwrap();
    let ran = worker.wait_timeout(T).unwrap();
    assert!(ran.stdout.contains("step fetch exit 0"), "steps: {ran:?}");
    let post = job.post().unwrap();
    assert!(post.status.success(), "post: {post:?}\n{}", job.describe());

    let log = job.runner_temp().join("warden-audit.jsonl");
    let page = job.runner_temp().join("report.html");
    let (code, _, err) = warden(&[
        "report",
        "--log",
        log.to_str().unwrap(),
        "--format",
        "html",
        "--output",
        page.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let html = std::fs::read_to_string(&page).unwrap();
    for external in ["src=\"http", "href=\"http", "@import", "url("] {
        assert!(!html.contains(external), "the page loads {external}…");
    }
    let (dom, console) = chromium_dom(&page);
    assert!(console.is_empty(), "console output: {console:#?}");
    assert!(dom.contains("id=\"destination-table\""), "{dom}");
    // The script ran: it counts the rows it shows.
    assert!(
        dom.contains(" shown</span>"),
        "the page's script did not run"
    );
    let rows = dom.matches("class=\"timeline-row").count();
    assert_eq!(rows, 3, "one timeline row per step:\n{dom}");
    assert!(
        dom.contains("class=\"timeline-row has-blocked\" data-step=\"__run_3 (run: curl"),
        "the blocked step's row is marked:\n{dom}"
    );
    let blocked_row = dom
        .split("<tr")
        .find(|r| r.contains("raw.example:7") && r.contains("class=\"destination"))
        .unwrap_or_default();
    assert!(
        blocked_row.contains("class=\"destination blocked"),
        "{blocked_row}"
    );
    assert!(
        dom.contains("class=\"blocked\" data-destination=\"raw.example:7\""),
        "{dom}"
    );
}

#[test]
fn baseline_marks_new_destinations_and_many_logs_are_counted_together() {
    if skip_unless_root("baseline_marks_new_destinations_and_many_logs_are_counted_together") {
        return;
    }
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    let inspect = InspectOrigins::start(&netns, &origins).unwrap();
    let ca = origins.ca_pem_path();
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let curl = |url: String| {
        format!(
            "curl -sS --fail --max-time 20 --cacert {} {} -o /dev/null",
            ca.display(),
            quote(&url)
        )
    };
    let (h1, h2) = (curl(inspect.h1().url("/a")), curl(inspect.h2().url("/b")));
    // Three jobs: h1 once; h1 twice and h2 once; h2 once.
    for (name, script) in [
        ("one.jsonl", h1.clone()),
        ("two.jsonl", format!("{h1} && {h1} && {h2}")),
        ("three.jsonl", h2.clone()),
    ] {
        let out = WardenRun::new(&netns)
            .timeout(T)
            .audit_log(logs.join(name))
            .cmd(["sh", "-c", &script])
            .run()
            .unwrap();
        out.assert_success();
    }
    let log = |n: &str| logs.join(n).display().to_string();
    let baseline = dir.path().join("baseline.yml").display().to_string();
    let (code, _, err) = warden(&[
        "baseline",
        "update",
        "--log",
        &log("one.jsonl"),
        "--baseline",
        &baseline,
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, json, err) = warden(&[
        "report",
        "--log",
        &log("two.jsonl"),
        "--baseline",
        &baseline,
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    let new: Vec<&serde_json::Value> = report["anomalies"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "new-destination")
        .collect();
    assert_eq!(new.len(), 1, "{json}");
    assert_eq!(new[0]["destination"], "h2.example", "{json}");
    let (_, md, _) = warden(&[
        "report",
        "--log",
        &log("two.jsonl"),
        "--baseline",
        &baseline,
    ]);
    assert!(md.contains("new-destination"), "{md}");

    let (code, json, err) = warden(&[
        "report",
        "--log",
        logs.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    let fleet: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(fleet["logs"], 3, "{json}");
    let count = |dest: &str| {
        fleet["destinations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["destination"] == dest)
            .map(|d| {
                (
                    d["connections"].as_u64().unwrap(),
                    d["jobs"].as_array().unwrap().len(),
                )
            })
    };
    assert_eq!(count("h1.example:443"), Some((3, 2)), "{json}");
    assert_eq!(count("h2.example:443"), Some((2, 2)), "{json}");
    let (code, page, _) = warden(&[
        "report",
        "--log",
        logs.to_str().unwrap(),
        "--format",
        "html",
    ]);
    assert_eq!(code, 0);
    assert!(page.contains("Destinations across 3 job logs"), "{page}");
}
