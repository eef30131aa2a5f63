//! Lookups in block mode (docs/dns.md, "What is decided"): a name some name rule names, on any
//! port, resolves; any other name gets NXDOMAIN and a `blocked` record with a suggestion, over
//! UDP and TCP, and is never sent upstream (the exfiltration guard: the test dnsmasq's log must
//! not have it). Wildcards name subdomains, not the domain itself; an address rule never makes
//! a name resolve; a reverse lookup of an address an earlier answer gave the job is allowed.
//!
//! Needs root (skips loudly otherwise). Each test runs its own dnsmasq for `test.example`.

use std::net::Ipv4Addr;
use std::time::Duration;

use serde_json::Value;
use tests::clients::{self, exit_of, outcome, output_of};
use tests::dns::{
    A_NAME, DigOutput, HTTP_NAME, RAW_NAME, Record, SERVER_V4, SERVER_V6, ZONE, Zone,
};
use tests::skip_unless_root;
use tests::{DnsServer, Netns, RunOutput, WardenRun, assert_run, assert_run_eq, audit};

/// A name the reverse-lookup test adds to the zone.
const PTR_NAME: &str = "ptr.test.example";

/// Deadline for one `warden run`; passing runs take about a second.
const T: Duration = Duration::from_secs(30);

fn block_run(netns: &Netns, allowed: &str, steps: &[String]) -> RunOutput {
    let out = WardenRun::new(netns)
        .timeout(T)
        .args(["--egress-policy", "block", "--allowed-endpoints", allowed])
        .cmd(["sh", "-c", &steps.join("\n")])
        .run()
        .unwrap();
    out.assert_success();
    out.assert_bracketed();
    out
}

/// The response code dig printed in step `label`.
#[track_caller]
fn status(out: &RunOutput, label: &str) -> String {
    assert_run_eq!(
        out,
        exit_of(&out.stdout, label),
        Some(0),
        "{label} got an answer"
    );
    let said = output_of(&out.stdout, label).unwrap_or_default();
    DigOutput::parse(&said).status.unwrap_or_default()
}

/// The one `qtype` lookup of `name` in the log.
#[track_caller]
fn one<'a>(out: &'a RunOutput, name: &str, qtype: &str) -> &'a Value {
    let found = audit::dns_for(&out.records, name, qtype);
    assert_run_eq!(out, found.len(), 1, "{qtype} lookups of {name}");
    found[0]
}

/// Checks that `record` is a lookup Warden refused itself: blocked, NXDOMAIN, no upstream, and
/// a reason that suggests the entry `suggest` when there is one.
#[track_caller]
fn assert_refused(out: &RunOutput, record: &Value, suggest: Option<&str>) {
    out.assert_not_allowed(record, "blocked");
    assert_run_eq!(out, record["dns"]["rcode"], "NXDOMAIN", "{record}");
    assert_run!(
        out,
        record["dns"].get("upstream").is_none(),
        "not forwarded: {record}"
    );
    assert_run!(out, record["dns"].get("answers").is_none(), "{record}");
    if let Some(entry) = suggest {
        let reason = record["reason"].as_str().unwrap_or_default();
        let want = format!("to allow it, add to allowed-endpoints: {entry}");
        assert_run!(out, reason.contains(&want), "{want:?} in {record}");
    }
}

#[test]
fn unlisted_names_get_nxdomain_and_never_go_upstream() {
    if skip_unless_root("unlisted_names_get_nxdomain_and_never_go_upstream") {
        return;
    }
    let netns = Netns::new().unwrap();
    let server = DnsServer::start(&netns).unwrap();
    let steps = [
        outcome("allowed", &clients::dig(None, A_NAME, "A", &[])),
        outcome("udp", &clients::dig(None, HTTP_NAME, "A", &[])),
        outcome("tcp", &clients::dig(None, HTTP_NAME, "AAAA", &["+tcp"])),
        outcome("python", &clients::python_getaddrinfo(RAW_NAME)),
    ];
    let out = block_run(&netns, A_NAME, &steps);

    assert_run_eq!(out, status(&out, "allowed"), "NOERROR", "allowed");
    let allowed = one(&out, A_NAME, "A");
    out.assert_allowed(allowed, A_NAME);
    assert_run_eq!(
        out,
        audit::answer_data(allowed, "A"),
        ["192.0.2.10"],
        "{allowed}"
    );

    assert_run_eq!(out, status(&out, "udp"), "NXDOMAIN", "over UDP");
    assert_run_eq!(out, status(&out, "tcp"), "NXDOMAIN", "over TCP");
    assert_refused(&out, one(&out, HTTP_NAME, "A"), Some(HTTP_NAME));
    let tcp = one(&out, HTTP_NAME, "AAAA");
    assert_refused(&out, tcp, Some(HTTP_NAME));
    assert_run_eq!(out, tcp["dst"]["proto"], "tcp", "{tcp}");
    let conn = out.one_connection("dig +tcp", |r| audit::is_to(r, "192.0.2.53", 53));
    assert_run!(out, audit::has_flag(conn, "dns"), "{conn}");

    assert_run_eq!(
        out,
        exit_of(&out.stdout, "python"),
        Some(2),
        "getaddrinfo fails"
    );
    let said = output_of(&out.stdout, "python").unwrap_or_default();
    assert_run!(
        out,
        said.contains("EAI_NONAME"),
        "NXDOMAIN is EAI_NONAME: {said}"
    );
    for qtype in ["A", "AAAA"] {
        assert_refused(&out, one(&out, RAW_NAME, qtype), Some(RAW_NAME));
    }

    // The exfiltration guard: only the allowed name ever reached the upstream.
    let queries = server.queries();
    assert_run!(
        out,
        queries.len() == 1 && queries[0].is(A_NAME, "A"),
        "dnsmasq got only the allowed query: {queries:?}"
    );
}

#[test]
fn which_rules_name_a_name() {
    if skip_unless_root("which_rules_name_a_name") {
        return;
    }
    let netns = Netns::new().unwrap();
    let server = DnsServer::start(&netns).unwrap();
    let steps = [
        outcome("sub", &clients::dig(None, A_NAME, "A", &[])),
        outcome("apex", &clients::dig(None, ZONE, "A", &[])),
        outcome("port", &clients::dig(None, HTTP_NAME, "A", &[])),
        outcome("address", &clients::dig(None, RAW_NAME, "A", &[])),
    ];
    // A wildcard, a name on another port than any lookup implies, and an address rule for
    // raw.test.example's address.
    let out = block_run(
        &netns,
        "*.test.example http.test.example:8080 203.0.113.10",
        &steps,
    );
    assert_run_eq!(
        out,
        status(&out, "sub"),
        "NOERROR",
        "*.test.example names a.test.example"
    );
    out.assert_allowed(one(&out, A_NAME, "A"), "*.test.example");
    assert_run_eq!(
        out,
        status(&out, "apex"),
        "NXDOMAIN",
        "but not test.example"
    );
    assert_refused(&out, one(&out, ZONE, "A"), Some(ZONE));
    assert_run_eq!(
        out,
        status(&out, "port"),
        "NOERROR",
        "a rule on any port names it"
    );
    // The exact name is the closer rule.
    out.assert_allowed(one(&out, HTTP_NAME, "A"), "http.test.example:8080");
    assert_run_eq!(
        out,
        status(&out, "address"),
        "NOERROR",
        "the wildcard names it"
    );

    // Without the wildcard, the port-specific rule names its host, the address rule nothing.
    let out = block_run(&netns, "http.test.example:8080 203.0.113.10", &steps);
    assert_run_eq!(
        out,
        status(&out, "port"),
        "NOERROR",
        "a rule on any port names it"
    );
    out.assert_allowed(one(&out, HTTP_NAME, "A"), "http.test.example:8080");
    assert_run_eq!(
        out,
        status(&out, "address"),
        "NXDOMAIN",
        "an address rule names nothing"
    );
    assert_refused(&out, one(&out, RAW_NAME, "A"), Some(RAW_NAME));
    assert_run_eq!(out, status(&out, "sub"), "NXDOMAIN", "no rule names it");

    let forwarded: Vec<String> = server.queries().into_iter().map(|q| q.name).collect();
    assert_run_eq!(
        out,
        forwarded,
        [A_NAME, HTTP_NAME, RAW_NAME, HTTP_NAME],
        "only allowed names went upstream, in both runs"
    );
}

#[test]
fn reverse_lookups_of_answered_addresses_only() {
    if skip_unless_root("reverse_lookups_of_answered_addresses_only") {
        return;
    }
    let netns = Netns::new().unwrap();
    // An address in no hosts file entry, so only the answer below gives it to the job
    // (dnsmasq answers the PTR of every host-record).
    let zone = Zone::default().with(Record::A(PTR_NAME.into(), Ipv4Addr::new(192, 0, 2, 77)));
    let server = DnsServer::start_with(&netns, zone, &[SERVER_V4, SERVER_V6]).unwrap();
    let ptr = |label, reverse| outcome(label, &clients::dig(None, reverse, "PTR", &[]));
    let steps = [
        ptr("before", "77.2.0.192.in-addr.arpa"),
        outcome("forward", &clients::dig(None, PTR_NAME, "A", &[])),
        ptr("after", "77.2.0.192.in-addr.arpa"),
        ptr("other", "78.2.0.192.in-addr.arpa"),
        // The hosts file counts as answers: 192.0.2.10 is tls.example there.
        ptr("hosts", "10.2.0.192.in-addr.arpa"),
    ];
    let out = block_run(&netns, PTR_NAME, &steps);
    assert_run_eq!(
        out,
        status(&out, "before"),
        "NXDOMAIN",
        "no answer gave it yet"
    );
    assert_run_eq!(
        out,
        status(&out, "after"),
        "NOERROR",
        "ptr.test.example gave it"
    );
    let said = DigOutput::parse(&output_of(&out.stdout, "after").unwrap_or_default());
    assert_run_eq!(
        out,
        said.data_of("PTR"),
        ["ptr.test.example."],
        "dnsmasq's PTR"
    );
    assert_run_eq!(out, status(&out, "other"), "NXDOMAIN", "never answered");
    assert_run_eq!(out, status(&out, "hosts"), "NOERROR", "in the hosts file");
    let ptrs = audit::dns_for(&out.records, "77.2.0.192.in-addr.arpa", "PTR");
    assert_run_eq!(out, ptrs.len(), 2, "two PTR lookups");
    assert_refused(&out, ptrs[0], None);
    assert_run_eq!(out, ptrs[1]["decision"], "allowed", "{}", ptrs[1]);
    assert_refused(&out, one(&out, "78.2.0.192.in-addr.arpa", "PTR"), None);
    assert_run_eq!(
        out,
        one(&out, "10.2.0.192.in-addr.arpa", "PTR")["decision"],
        "allowed",
        ""
    );
    let ptr_queries = server.queries().into_iter().filter(|q| q.qtype == "PTR");
    assert_run_eq!(out, ptr_queries.count(), 2, "two PTR lookups went upstream");
}
