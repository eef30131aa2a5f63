//! Completeness under load (issue #11): many processes at once, each making several HTTPS
//! connections. Every connection gets exactly one record naming the process that made it, and
//! no client sees an error it would not see without Warden; in block mode exactly the
//! connections to the host not allowed are refused. The benchmark runs the same check at
//! 1000 clients and 10 000 requests (`bench/run --completeness`).
//!
//! Needs root (skips loudly otherwise); each test builds its own namespace and origins.

use std::collections::HashMap;
use std::time::Duration;

use tests::{Netns, Origins, RunOutput, WardenRun, assert_run, assert_run_eq, audit, clients};

const CLIENTS: usize = 50;
const PER_CLIENT: usize = 10;
const T: Duration = Duration::from_secs(120);

/// One request as the client saw it: (pid, host, ok).
fn requests(out: &RunOutput) -> Vec<(u64, String, bool)> {
    out.stdout
        .lines()
        .filter_map(|l| l.strip_prefix("req "))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[0].parse().unwrap(), f[1].to_string(), f[2] == "ok")
        })
        .collect()
}

/// How many connections each pid made, as the clients say and as the records say.
fn tallies(out: &RunOutput) -> (HashMap<u64, usize>, HashMap<u64, usize>) {
    let mut made = HashMap::new();
    for (pid, _, _) in requests(out) {
        *made.entry(pid).or_insert(0) += 1;
    }
    let mut seen = HashMap::new();
    for r in audit::connections_to(&out.records, "192.0.2.10", 443) {
        *seen
            .entry(r["process"]["pid"].as_u64().unwrap_or(0))
            .or_insert(0) += 1;
    }
    (made, seen)
}

/// Every record names one of `hosts`, unless the client was too slow to send its ClientHello
/// within the sniffing timeout (a machine under heavy load), which the record says.
fn names_recorded(out: &RunOutput, hosts: &[&str]) {
    for r in audit::connections_to(&out.records, "192.0.2.10", 443) {
        let named = hosts.iter().any(|h| r["tls"]["sni"] == *h);
        assert_run!(
            out,
            named || audit::has_flag(r, "sniff-timeout"),
            "name of {r}"
        );
    }
}

fn load(netns: &Netns, origins: &Origins, hosts: &[&str], args: &[&str]) -> RunOutput {
    let script =
        clients::python_https_load(hosts, "/load", &origins.ca_pem_path(), CLIENTS, PER_CLIENT);
    WardenRun::new(netns)
        .timeout(T)
        .args(args)
        .cmd(["sh", "-c", &script])
        .run()
        .unwrap()
}

#[test]
fn every_connection_has_one_record_with_its_process_under_load() {
    if tests::skip_unless_root("every_connection_has_one_record_with_its_process_under_load") {
        return;
    }
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    let out = load(&netns, &origins, &["tls.example"], &[]);
    out.assert_success();
    let reqs = requests(&out);
    assert_run_eq!(
        out,
        reqs.len(),
        CLIENTS * PER_CLIENT,
        "every request reported"
    );
    let failed: Vec<_> = reqs.iter().filter(|r| !r.2).collect();
    assert_run!(
        out,
        failed.is_empty(),
        "client errors under warden: {failed:?}"
    );
    let (made, seen) = tallies(&out);
    assert_run_eq!(out, made.len(), CLIENTS, "one pid per client");
    assert_run_eq!(out, seen, made, "records per pid = connections per pid");
    names_recorded(&out, &["tls.example"]);
}

#[test]
fn block_mode_under_load_refuses_exactly_what_is_not_allowed() {
    if tests::skip_unless_root("block_mode_under_load_refuses_exactly_what_is_not_allowed") {
        return;
    }
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    let args = [
        "--egress-policy",
        "block",
        "--allowed-endpoints",
        "tls.example",
    ];
    let out = load(&netns, &origins, &["tls.example", "sub.tls.example"], &args);
    out.assert_success();
    let reqs = requests(&out);
    assert_run_eq!(
        out,
        reqs.len(),
        CLIENTS * PER_CLIENT,
        "every request reported"
    );
    for (pid, host, ok) in &reqs {
        let allowed = host == "tls.example";
        assert_run_eq!(
            out,
            *ok,
            allowed,
            "pid {pid} to {host}: ok only when allowed"
        );
    }
    let (made, seen) = tallies(&out);
    assert_run_eq!(out, seen, made, "records per pid = connections per pid");
    names_recorded(&out, &["tls.example", "sub.tls.example"]);
    let blocked: Vec<_> = audit::connections_to(&out.records, "192.0.2.10", 443)
        .into_iter()
        .filter(|r| r["tls"]["sni"] == "sub.tls.example")
        .collect();
    for r in &blocked {
        assert_run_eq!(out, r["decision"], "blocked", "decision of {r}");
    }
    let refused = reqs.iter().filter(|r| r.1 == "sub.tls.example").count();
    assert_run_eq!(out, blocked.len(), refused, "blocked records");
}
