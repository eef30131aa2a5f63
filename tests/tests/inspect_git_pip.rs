//! TLS inspection with the two things CI fetches most, neither given a CA option of its own:
//! `git clone` over smart HTTP (`git http-backend`) and `pip download` from a PEP 503 simple
//! index. Both work under `warden run --tls-inspection`; the clone has the origin repository's
//! HEAD and the wheel arrives whole; every HTTP request they made is a `request` record with
//! its full URL (git's in h2 end to end, since git's libcurl and the origin both speak it),
//! inside `connection` records flagged `inspected`.
//!
//! Needs root (skips loudly otherwise). Each test builds its own namespace and origins.

use std::time::Duration;

use tests::clients;
use tests::inspect::{
    GIT_ADDR, GIT_FILE, GIT_URL, InspectOrigins, PYPI_ADDR, PYPI_INDEX_URL, PYPI_PACKAGE,
};
use tests::{
    Netns, Origins, RunOutput, WardenRun, assert_run, assert_run_eq, audit, skip_unless_root,
};

/// Deadline for one `warden run`; passing runs take a few seconds.
const T: Duration = Duration::from_secs(60);

fn run_inspected(netns: &Netns, origins: &Origins, script: &str) -> RunOutput {
    WardenRun::new(netns)
        .timeout(T)
        .args(["--tls-inspection", "--upstream-ca"])
        .args([origins.ca_pem_path()])
        .cmd(["sh", "-c", script])
        .run()
        .unwrap()
}

/// Every connection record to `ip`:443 is flagged `inspected` and made by `exe`; returns how
/// many there are.
#[track_caller]
fn all_inspected(out: &RunOutput, ip: &str, exe: &str) -> usize {
    let conns = audit::connections_to(&out.records, ip, 443);
    for c in &conns {
        assert_run!(out, audit::has_flag(c, "inspected"), "{ip} not inspected");
        assert_run!(out, audit::exe_name(c).starts_with(exe), "{ip} by {exe}");
    }
    conns.len()
}

#[test]
fn git_clone_over_https_is_inspected() {
    if skip_unless_root("git_clone_over_https_is_inspected") {
        return;
    }
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    let inspect = InspectOrigins::start(&netns, &origins).unwrap();
    let out = run_inspected(&netns, &origins, &clients::git_clone(GIT_URL, None));
    out.assert_success();
    let head = format!("head {}", inspect.repo().head());
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_run_eq!(
        out,
        lines,
        [head.as_str(), "README.md", GIT_FILE.0],
        "the clone is the origin's repository"
    );

    let refs = audit::requests_for(
        &out.records,
        "https://git.example/repo.git/info/refs?service=git-upload-pack",
    );
    assert_run_eq!(out, refs.len(), 1, "ref discovery");
    let pack = audit::requests_for(&out.records, "https://git.example/repo.git/git-upload-pack");
    assert_run!(out, !pack.is_empty(), "the pack request");
    assert_run_eq!(out, refs[0]["http"]["method"], "GET", "");
    for r in refs.iter().chain(&pack) {
        assert_run_eq!(out, r["http"]["status"], 200, "{r}");
        assert_run_eq!(out, r["http"]["version"], "HTTP/2.0", "{r}");
        // git runs its HTTPS through a helper process.
        assert_run!(out, audit::exe_name(r).starts_with("git"), "{r}");
    }
    assert_run!(out, pack.iter().all(|r| r["http"]["method"] == "POST"), "");
    // The pack came down as a response body.
    let down: u64 = pack
        .iter()
        .filter_map(|r| r["bytes"]["down"].as_u64())
        .sum();
    assert_run!(out, down > 0, "pack bytes");
    let all = audit::requests(&out.records);
    assert_run!(
        out,
        all.iter().all(|r| r["http"]["host"] == "git.example"),
        "only git.example was asked"
    );
    let conns = all_inspected(&out, &GIT_ADDR.ip().to_string(), "git");
    assert_run!(out, conns >= 1, "connections to git.example");

    // The origin saw the same requests, all in h2.
    let seen = inspect.git().requests();
    assert_eq!(seen.len(), all.len(), "{seen:?}");
    assert!(seen.iter().all(|r| r.is_h2()), "{seen:?}");
    assert_eq!(
        seen[0].target,
        "/repo.git/info/refs?service=git-upload-pack"
    );
    assert!(
        inspect.git().errors().is_empty(),
        "{:?}",
        inspect.git().errors()
    );
}

#[test]
fn pip_download_from_an_https_index_is_inspected() {
    if skip_unless_root("pip_download_from_an_https_index_is_inspected") {
        return;
    }
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    let inspect = InspectOrigins::start(&netns, &origins).unwrap();
    let script = clients::pip_download(PYPI_INDEX_URL, PYPI_PACKAGE, None);
    let out = run_inspected(&netns, &origins, &script);
    out.assert_success();
    let wheel = inspect.index().wheel_name();
    assert_run_eq!(
        out,
        out.stdout.trim(),
        format!("downloaded {wheel}"),
        "pip's output"
    );

    let page = format!("https://pypi.example/simple/{PYPI_PACKAGE}/");
    let file = format!("https://pypi.example/packages/{wheel}");
    let urls: Vec<&str> = audit::requests(&out.records)
        .iter()
        .filter_map(|r| r["http"]["url"].as_str())
        .collect();
    assert_run_eq!(out, urls, [page.as_str(), file.as_str()], "request records");
    for url in [&page, &file] {
        let r = audit::requests_for(&out.records, url)[0];
        assert_run_eq!(out, r["http"]["method"], "GET", "{url}");
        assert_run_eq!(out, r["http"]["status"], 200, "{url}");
        assert_run!(out, audit::exe_name(r).starts_with("python"), "{url}");
    }
    let size = inspect.index().wheel_bytes().unwrap().len() as u64;
    let r = audit::requests_for(&out.records, &file)[0];
    assert_run_eq!(out, r["bytes"]["down"], size, "the wheel's size");
    let conns = all_inspected(&out, &PYPI_ADDR.ip().to_string(), "python");
    assert_run!(out, conns >= 1, "connections to pypi.example");

    let targets: Vec<String> = inspect
        .pypi()
        .requests()
        .into_iter()
        .map(|r| r.target)
        .collect();
    assert_eq!(
        targets,
        [
            format!("/simple/{PYPI_PACKAGE}/"),
            format!("/packages/{wheel}")
        ]
    );
}
