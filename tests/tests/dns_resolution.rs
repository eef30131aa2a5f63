//! Lookups under `warden run` are answered by Warden's resolver and recorded (docs/dns.md): dig
//! over UDP and TCP, A and AAAA and a CNAME chain; glibc's getent and getaddrinfo (python);
//! curl resolving a name and then connecting to it. Each lookup leaves one `dns` record with
//! the question, the answers, the process and the resolver it asked; a TCP lookup also leaves a
//! `connection` record flagged `dns`; the `start` record names the resolver and its upstreams.
//!
//! Needs root (skips loudly otherwise). Each test runs its own dnsmasq for `test.example`.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};
use tests::clients::{self, exit_of, outcome, output_of};
use tests::dns::{A_NAME, ALIAS_NAME, DigOutput, HTTP_NAME, RAW_NAME, V6ONLY_NAME};
use tests::{
    DnsServer, Netns, Origins, RunOutput, WardenRun, assert_run, assert_run_eq, audit,
    skip_unless_root,
};

/// Deadline for one `warden run`; passing runs take about a second.
const T: Duration = Duration::from_secs(30);

fn run(netns: &Netns, args: &[&str], steps: &[String]) -> RunOutput {
    let out = WardenRun::new(netns)
        .timeout(T)
        .args(args)
        .cmd(["sh", "-c", &steps.join("\n")])
        .run()
        .unwrap();
    out.assert_success();
    out.assert_bracketed();
    out
}

/// The one `dns` record of a `qtype` lookup of `qname` by a program named `exe`.
#[track_caller]
fn lookup<'a>(out: &'a RunOutput, qname: &str, qtype: &str, exe: &str) -> &'a Value {
    let found: Vec<&Value> = audit::dns_for(&out.records, qname, qtype)
        .into_iter()
        .filter(|r| audit::exe_name(r) == exe)
        .collect();
    assert_run_eq!(out, found.len(), 1, "{exe}'s {qtype} lookups of {qname}");
    found[0]
}

/// What dig printed in the step labelled `label`, having exited 0.
#[track_caller]
fn dig_said(out: &RunOutput, label: &str) -> DigOutput {
    assert_run_eq!(out, exit_of(&out.stdout, label), Some(0), "{label}");
    DigOutput::parse(&output_of(&out.stdout, label).unwrap_or_default())
}

#[test]
fn dig_over_udp_and_tcp_is_answered_and_recorded() {
    if skip_unless_root("dig_over_udp_and_tcp_is_answered_and_recorded") {
        return;
    }
    let netns = Netns::new().unwrap();
    let server = DnsServer::start(&netns).unwrap();
    let steps = [
        outcome("a", &clients::dig(None, A_NAME, "A", &[])),
        outcome("aaaa-tcp", &clients::dig(None, A_NAME, "AAAA", &["+tcp"])),
        outcome("alias", &clients::dig(None, ALIAS_NAME, "A", &[])),
    ];
    let out = run(&netns, &["--allowed-endpoints", A_NAME], &steps);

    assert_run_eq!(out, dig_said(&out, "a").data_of("A"), ["192.0.2.10"], "A");
    let aaaa = dig_said(&out, "aaaa-tcp");
    assert_run_eq!(out, aaaa.data_of("AAAA"), ["2001:db8::10"], "AAAA over TCP");
    let alias = dig_said(&out, "alias");
    assert_run_eq!(out, alias.data_of("CNAME"), ["a.test.example."], "CNAME");
    assert_run_eq!(out, alias.data_of("A"), ["192.0.2.10"], "A of the alias");

    let a = lookup(&out, A_NAME, "A", "dig");
    let server_dst = |proto| json!({"ip": "192.0.2.53", "port": 53, "proto": proto});
    assert_run_eq!(out, a["dst"], server_dst("udp"), "dst of {a}");
    assert_run_eq!(
        out,
        a["dns"],
        json!({"qname": A_NAME, "qtype": "A", "rcode": "NOERROR", "upstream": "192.0.2.53:53",
               "answers": [{"name": A_NAME, "type": "A", "data": "192.0.2.10", "ttl": 300}]}),
        "dns of {a}"
    );
    out.assert_allowed(a, A_NAME);
    assert_run_eq!(out, a["process"]["exe"], "/usr/bin/dig", "exe of {a}");
    assert_run!(
        out,
        audit::strings(&a["process"]["argv"]).contains(&A_NAME),
        "argv of {a}"
    );

    let aaaa = lookup(&out, A_NAME, "AAAA", "dig");
    assert_run_eq!(out, aaaa["dst"], server_dst("tcp"), "dst of {aaaa}");
    assert_run_eq!(
        out,
        audit::answer_data(aaaa, "AAAA"),
        ["2001:db8::10"],
        "{aaaa}"
    );
    assert_run!(
        out,
        audit::strings(&aaaa["process"]["argv"]).contains(&"+tcp"),
        "{aaaa}"
    );
    let tcp = out.one_connection("the DNS-over-TCP connection", |r| {
        audit::is_to(r, "192.0.2.53", 53)
    });
    assert_run!(out, audit::has_flag(tcp, "dns"), "flags of {tcp}");
    assert_run_eq!(out, tcp["process"]["pid"], aaaa["process"]["pid"], "{tcp}");

    // The whole CNAME chain, in order; a rule for the target does not name the alias.
    let alias = lookup(&out, ALIAS_NAME, "A", "dig");
    let chain: Vec<(&Value, &Value)> = alias["dns"]["answers"]
        .as_array()
        .map(|a| a.iter().map(|a| (&a["type"], &a["data"])).collect())
        .unwrap_or_default();
    assert_run_eq!(
        out,
        chain,
        [
            (&json!("CNAME"), &json!(A_NAME)),
            (&json!("A"), &json!("192.0.2.10"))
        ],
        "answers of {alias}"
    );
    out.assert_not_allowed(alias, "audited");
    let reason = alias["reason"].as_str().unwrap_or_default();
    assert_run!(
        out,
        reason.contains("allowed-endpoints: alias.test.example"),
        "{alias}"
    );

    let queries = server.queries();
    for (name, qtype, tcp) in [(A_NAME, "A", false), (A_NAME, "AAAA", true)] {
        let q = queries
            .iter()
            .filter(|q| q.is(name, qtype))
            .collect::<Vec<_>>();
        assert_run!(
            out,
            q.len() == 1 && q[0].tcp == tcp,
            "{name} {qtype}: {queries:?}"
        );
    }
    assert_eq!(audit::dns_records(&out.records).len(), 3, "{out}");
}

#[test]
fn the_start_record_names_the_resolver_and_its_upstreams() {
    if skip_unless_root("the_start_record_names_the_resolver_and_its_upstreams") {
        return;
    }
    let netns = Netns::new().unwrap();
    let _server = DnsServer::start(&netns).unwrap();
    let out = run(&netns, &[], &["true".to_owned()]);
    let start = audit::start_record(&out.records).expect("a start record");
    let dns = &start["enforcement"]["dns"];
    let resolver: Option<SocketAddr> = dns["resolver"].as_str().and_then(|r| r.parse().ok());
    assert_run!(
        out,
        resolver.is_some_and(|r| r.ip().is_loopback() && r.port() != 53 && r.port() != 0),
        "a loopback resolver on a port of its own: {start}"
    );
    assert_run_eq!(out, dns["upstreams"], json!(["192.0.2.53:53"]), "{start}");
    let stop = audit::enforcement(&out.records).pop().unwrap();
    assert_run!(
        out,
        stop["enforcement"].get("dns").is_none(),
        "start only: {stop}"
    );
}

#[test]
fn libc_clients_and_curl_resolve_through_warden() {
    if skip_unless_root("libc_clients_and_curl_resolve_through_warden") {
        return;
    }
    let netns = Netns::new().unwrap();
    let server = DnsServer::start(&netns).unwrap();
    let origins = Origins::start(&netns).unwrap();
    let ca = origins.ca_pem_path();
    let url = format!("http://{HTTP_NAME}/by-name");
    let steps = [
        outcome("getent", &clients::getent("ahostsv4", RAW_NAME)),
        outcome("python", &clients::python_getaddrinfo(V6ONLY_NAME)),
        outcome("curl", &clients::curl_by_name(&url, &ca)),
    ];
    let out = run(&netns, &[], &steps);
    for label in ["getent", "python", "curl"] {
        assert_run_eq!(out, exit_of(&out.stdout, label), Some(0), "{label}");
    }
    let said = |label| output_of(&out.stdout, label).unwrap_or_default();
    assert_run!(out, said("getent").starts_with("203.0.113.10"), "getent");
    assert_run_eq!(out, said("python").trim(), "2001:db8::10", "getaddrinfo");
    assert_run!(out, said("curl").contains("path=/by-name"), "curl's body");

    let getent = lookup(&out, RAW_NAME, "A", "getent");
    assert_run_eq!(
        out,
        audit::answer_data(getent, "A"),
        ["203.0.113.10"],
        "{getent}"
    );
    assert_run_eq!(out, getent["dst"]["ip"], "192.0.2.53", "{getent}");
    // AI_ADDRCONFIG with both families configured: A and AAAA; the A answer is empty.
    let python_a = lookup(&out, V6ONLY_NAME, "A", "python3");
    assert_run_eq!(out, python_a["dns"]["rcode"], "NOERROR", "{python_a}");
    assert_run!(
        out,
        audit::answer_data(python_a, "A").is_empty(),
        "{python_a}"
    );
    let python_aaaa = lookup(&out, V6ONLY_NAME, "AAAA", "python3");
    assert_run_eq!(
        out,
        audit::answer_data(python_aaaa, "AAAA"),
        ["2001:db8::10"],
        "{python_aaaa}"
    );
    let curl_lookup = lookup(&out, HTTP_NAME, "A", "curl");
    assert_run_eq!(
        out,
        audit::answer_data(curl_lookup, "A"),
        ["198.51.100.10"],
        "{curl_lookup}"
    );
    let conn = out.one_connection("curl's", |r| audit::is_to(r, "198.51.100.10", 80));
    assert_run_eq!(out, conn["dst"]["name"], HTTP_NAME, "{conn}");
    assert_run_eq!(
        out,
        conn["process"]["pid"],
        curl_lookup["process"]["pid"],
        "{conn}"
    );
    assert_run!(
        out,
        !audit::has_flag(conn, "no-dns"),
        "resolved first: {conn}"
    );
    for record in audit::dns_records(&out.records) {
        assert_run!(out, record.get("rule").is_none(), "no rules: {record}");
        assert_run_eq!(out, record["decision"], "audited", "{record}");
    }
    for name in [RAW_NAME, V6ONLY_NAME, HTTP_NAME] {
        assert_run!(
            out,
            !server.queries_for(name).is_empty(),
            "{name} was forwarded"
        );
    }
    assert_eq!(origins.http().connections(), 1, "{:?}", origins.http());
}
