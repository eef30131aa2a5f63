//! `warden run` redirects the job and only the job: a client outside the job's cgroup, in the
//! same network namespace and while warden runs, reaches its destination untouched and
//! unrecorded; and a connection an iptables `REDIRECT` rule steers to the proxy is relayed and
//! recorded with its original destination from netfilter.
//!
//! Needs root (skips loudly otherwise); each test builds its own namespace and origins.

use std::time::Duration;

use tests::process::{run, run_ok};
use tests::{
    Netns, Origins, WardenRun, assert_run, assert_run_eq, audit, clients, skip_unless_root,
};

/// Deadline for one `warden run` or client; passing runs take a few seconds.
const T: Duration = Duration::from_secs(30);
/// The proxy's upstream sockets carry this `SO_MARK` (README, "Decisions").
const PROXY_MARK: &str = "0x5752444e";

#[test]
fn outside_cgroup_untouched() {
    if skip_unless_root("outside_cgroup_untouched") {
        return;
    }
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    let ca = origins.ca_pem_path();
    let dir = tempfile::tempdir().unwrap();
    let go = dir.path().join("go");
    // The job holds until the outside client is done, so warden is surely attached meanwhile.
    let script = clients::script(&[
        clients::wait_for_file(&go, 20),
        clients::curl("http://http.example/inside", &ca),
    ]);
    let child = WardenRun::new(&netns)
        .timeout(T)
        .cmd(["sh", "-c", &script])
        .spawn()
        .unwrap();
    child
        .wait_for_record(T, |r| r["enforcement"]["event"] == "start")
        .unwrap();
    let outside = run(
        netns.sh(&clients::curl("http://http.example/outside", &ca)),
        T,
    )
    .unwrap();
    std::fs::write(&go, "").unwrap();
    let out = child.wait().unwrap();

    out.assert_success();
    assert_run!(
        out,
        outside.status.success() && outside.stdout.contains("path=/outside"),
        "the outside curl worked: {outside:?}"
    );
    let targets: Vec<String> = origins
        .http()
        .requests()
        .into_iter()
        .map(|r| r.target)
        .collect();
    assert_run_eq!(out, targets.len(), 2, "the origin served both: {targets:?}");
    assert_run!(
        out,
        targets.contains(&"/inside".into()) && targets.contains(&"/outside".into()),
        "the origin served both: {targets:?}"
    );
    out.one_connection("/inside", |r| r["http"]["url"] == "/inside");
    assert_run!(
        out,
        audit::with_url(&out.records, "/outside").is_empty(),
        "no record for the connection made outside the job"
    );
    assert_run_eq!(
        out,
        audit::connections(&out.records).len(),
        1,
        "only the job's connection"
    );
    out.assert_bracketed();
}

#[test]
fn iptables_redirect_path() {
    if skip_unless_root("iptables_redirect_path") {
        return;
    }
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    let ca = origins.ca_pem_path();
    let dir = tempfile::tempdir().unwrap();
    let go = dir.path().join("go");
    let child = WardenRun::new(&netns)
        .timeout(T)
        .cmd(["sh", "-c", &clients::wait_for_file(&go, 20)])
        .spawn()
        .unwrap();
    let start = child
        .wait_for_record(T, |r| r["enforcement"]["event"] == "start")
        .unwrap();
    let proxy = audit::Enforcement::from_record(&start)
        .and_then(|e| e.proxy)
        .unwrap_or_else(|| panic!("no proxy address in {start}"));
    assert!(proxy.ip().is_loopback(), "{start}");

    // Outside the job's cgroup, steered by netfilter instead of the connect hook. The proxy's
    // own upstream connection must not match, or it would be steered back to the proxy.
    let rule = format!(
        "-t nat -A OUTPUT -p tcp -d 198.51.100.10 --dport 80 -m mark ! --mark {PROXY_MARK} \
         -j REDIRECT --to-ports {}",
        proxy.port()
    );
    run_ok(netns.command("iptables", rule.split_whitespace()), T).unwrap();
    let curl = run(
        netns.sh(&clients::curl("http://http.example/redirected", &ca)),
        T,
    )
    .unwrap();
    std::fs::write(&go, "").unwrap();
    let out = child.wait().unwrap();

    out.assert_success();
    assert_run!(
        out,
        curl.status.success() && curl.stdout.trim() == "hello from http-origin path=/redirected",
        "curl got the origin's answer through the proxy: {curl:?}"
    );
    let record = out.one_connection("/redirected", |r| r["http"]["url"] == "/redirected");
    assert_run_eq!(
        out,
        record["dst"]["ip"],
        "198.51.100.10",
        "dst.ip of {record}"
    );
    assert_run_eq!(out, record["dst"]["port"], 80, "dst.port of {record}");
    assert_run_eq!(out, record["http"]["host"], "http.example", "http.host");
    assert_run!(
        out,
        record["process"]["pid"].is_null(),
        "no process is known on the iptables path: {record}"
    );
    assert_run!(
        out,
        !audit::has_flag(record, "no-original-dst"),
        "the original destination came from netfilter: {record}"
    );
    assert_run_eq!(out, origins.http().requests().len(), 1, "one request");
    out.assert_bracketed();
}
