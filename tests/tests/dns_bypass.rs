//! Lookups that would go around Warden's resolver (docs/dns.md, "How lookups reach Warden"):
//! DNS over TLS (TCP 853) is refused in every mode, even where an address rule allows the
//! server, and DNS over QUIC (UDP 853) gets `EPERM`; well-known DNS-over-HTTPS resolvers are
//! flagged `doh` in both modes and, in block mode, refused unless an exact rule names them,
//! connections and lookups alike.
//!
//! Needs root (skips loudly otherwise). Each test runs its own dnsmasq and origins; the zone
//! gives `dns.google` the TLS origin's address, so a DoH connection has a server to reach and
//! its name's lookups have an answer to withhold.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use tests::clients::{self, exit_of, outcome, output_of};
use tests::dns::{A_NAME, A_V4, DigOutput, Record, SERVER_V4, SERVER_V6, Zone};
use tests::{
    DnsServer, Netns, Origins, RunOutput, Service, WardenRun, assert_run, assert_run_eq, audit,
    skip_unless_root,
};

/// Deadline for one `warden run`; passing runs take about a second.
const T: Duration = Duration::from_secs(30);
/// A well-known DoH resolver (proxy/src/dns/doh.rs).
const DOH: &str = "dns.google";

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

#[test]
fn dns_over_tls_and_quic_are_refused_in_every_mode() {
    if skip_unless_root("dns_over_tls_and_quic_are_refused_in_every_mode") {
        return;
    }
    let netns = Netns::new().unwrap();
    let _server = DnsServer::start(&netns).unwrap();
    let origins = Origins::start(&netns).unwrap();
    // Something listens on 853, so only Warden can be what refuses the connections.
    let dot_addr = SocketAddr::new(SERVER_V4, 853);
    let dot = origins
        .start_origin(&netns, "dot", Service::Echo, &[dot_addr])
        .unwrap();
    let steps = [
        outcome(
            "dig-tls",
            &clients::dig(Some("192.0.2.53"), A_NAME, "A", &["+tls"]),
        ),
        outcome(
            "tcp",
            &clients::python_tcp_fate("192.0.2.53", 853, b"\x16\x03\x01"),
        ),
        outcome(
            "udp",
            &clients::python_udp_exchange("192.0.2.53", 853, b"q", 200),
        ),
        outcome(
            "udp6",
            &clients::python_udp_exchange("2001:db8::53", 853, b"q", 200),
        ),
        outcome("fallback", &clients::dig(None, A_NAME, "A", &[])),
    ];
    // Block mode with address rules that would allow both servers on every port.
    let block = [
        "--egress-policy",
        "block",
        "--allowed-endpoints",
        "192.0.2.53 [2001:db8::53] a.test.example",
    ];
    for args in [&[][..], &block] {
        let out = run(&netns, args, &steps);
        let said = |label| output_of(&out.stdout, label).unwrap_or_default();
        let dig = DigOutput::parse(&said("dig-tls"));
        assert_run_eq!(out, dig.status, None, "dig +tls got no answer");
        assert_run_eq!(out, said("tcp").trim(), "reset", "{args:?}: DoT");
        assert_run_eq!(out, said("udp").trim(), "EPERM", "{args:?}: DoQ");
        assert_run_eq!(out, said("udp6").trim(), "EPERM", "{args:?}: DoQ over IPv6");
        let fallback = DigOutput::parse(&said("fallback"));
        assert_run_eq!(
            out,
            fallback.data_of("A"),
            ["192.0.2.10"],
            "port 53 still works"
        );

        let refused = audit::connections_to(&out.records, "192.0.2.53", 853);
        let exes: Vec<&str> = refused.iter().map(|r| audit::exe_name(r)).collect();
        assert_run_eq!(out, exes, ["dig", "python3"], "{args:?}: DoT connections");
        for record in refused {
            out.assert_not_allowed(record, "blocked");
            assert_run!(out, audit::has_flag(record, "dns-over-tls"), "{record}");
        }
        for ip in ["192.0.2.53", "2001:db8::53"] {
            let udp: Vec<&Value> = audit::of_kind(&out.records, "udp")
                .into_iter()
                .filter(|r| audit::is_to(r, ip, 853))
                .collect();
            assert_run_eq!(out, udp.len(), 1, "{args:?}: one udp record to {ip}:853");
            out.assert_not_allowed(udp[0], "blocked");
        }
    }
    assert_eq!(dot.connections(), 0, "DoT never reached the server");
}

/// The standard zone, and `dns.google` at the TLS origin's address.
fn doh_zone() -> Zone {
    Zone::default().with(Record::A(DOH.into(), A_V4))
}

/// The one connection record with SNI `dns.google`, flagged `doh`.
#[track_caller]
fn doh_connection(out: &RunOutput) -> &Value {
    let conn = out.one_connection("the DoH connection", |r| r["tls"]["sni"] == DOH);
    assert_run!(out, audit::has_flag(conn, "doh"), "flags of {conn}");
    conn
}

#[test]
fn doh_lookups_need_an_exact_rule() {
    if skip_unless_root("doh_lookups_need_an_exact_rule") {
        return;
    }
    let netns = Netns::new().unwrap();
    let server = DnsServer::start_with(&netns, doh_zone(), &[SERVER_V4, SERVER_V6]).unwrap();
    let steps = [
        outcome("dig", &clients::dig(None, DOH, "A", &[])),
        outcome("python", &clients::python_getaddrinfo(DOH)),
    ];
    let out = run(
        &netns,
        &[
            "--egress-policy",
            "block",
            "--allowed-endpoints",
            "*.google",
        ],
        &steps,
    );
    let dig = DigOutput::parse(&output_of(&out.stdout, "dig").unwrap_or_default());
    assert_run_eq!(
        out,
        dig.status.as_deref(),
        Some("NXDOMAIN"),
        "a wildcard is not enough"
    );
    assert_run_eq!(
        out,
        exit_of(&out.stdout, "python"),
        Some(2),
        "getaddrinfo fails"
    );
    let lookups = audit::dns_records(&out.records);
    assert_run_eq!(out, lookups.len(), 3, "dig's A, python's A and AAAA");
    for record in lookups {
        out.assert_not_allowed(record, "blocked");
        assert_run!(out, audit::has_flag(record, "doh"), "{record}");
        assert_run_eq!(out, record["dns"]["rcode"], "NXDOMAIN", "{record}");
    }
    assert_run!(
        out,
        server.queries_for(DOH).is_empty(),
        "never sent upstream"
    );

    let out = run(
        &netns,
        &["--egress-policy", "block", "--allowed-endpoints", DOH],
        &steps,
    );
    let dig = DigOutput::parse(&output_of(&out.stdout, "dig").unwrap_or_default());
    assert_run_eq!(
        out,
        dig.data_of("A"),
        ["192.0.2.10"],
        "the exact rule allows it"
    );
    let a = &audit::dns_for(&out.records, DOH, "A")[0];
    out.assert_allowed(a, DOH);
    assert_run!(out, audit::has_flag(a, "doh"), "still flagged: {a}");
}

#[test]
fn doh_connections_need_an_exact_rule() {
    if skip_unless_root("doh_connections_need_an_exact_rule") {
        return;
    }
    let netns = Netns::new().unwrap();
    let _server = DnsServer::start_with(&netns, doh_zone(), &[SERVER_V4, SERVER_V6]).unwrap();
    let origins = Origins::start(&netns).unwrap();
    let ca = origins.ca_pem_path();
    // The test certificate does not name dns.google: -k. The wildcard run cannot resolve the
    // name, so it is given the address; the others resolve it through Warden.
    let url = format!("https://{DOH}/dns-query");
    let pinned = outcome(
        "curl",
        &clients::curl_with(&["-k", "--resolve", "dns.google:443:192.0.2.10"], &url, &ca),
    );
    let resolved = outcome("curl", &clients::curl_with(&["-k"], &url, &ca));

    let out = run(
        &netns,
        &[
            "--egress-policy",
            "block",
            "--allowed-endpoints",
            "*.google",
        ],
        &[pinned],
    );
    assert_run!(out, exit_of(&out.stdout, "curl") != Some(0), "refused");
    let conn = doh_connection(&out);
    out.assert_not_allowed(conn, "blocked");
    let reason = conn["reason"].as_str().unwrap_or_default();
    assert_run!(
        out,
        reason.contains("DNS-over-HTTPS"),
        "the reason says why: {conn}"
    );
    assert_eq!(origins.tls().connections(), 0, "never reached the origin");

    let out = run(
        &netns,
        &["--egress-policy", "block", "--allowed-endpoints", DOH],
        std::slice::from_ref(&resolved),
    );
    assert_run_eq!(
        out,
        exit_of(&out.stdout, "curl"),
        Some(0),
        "allowed by the exact rule"
    );
    out.assert_allowed(doh_connection(&out), DOH);
    let lookup = &audit::dns_for(&out.records, DOH, "A")[0];
    assert_run!(out, audit::has_flag(lookup, "doh"), "{lookup}");

    let out = run(&netns, &[], &[resolved]);
    assert_run_eq!(
        out,
        exit_of(&out.stdout, "curl"),
        Some(0),
        "audit mode lets it through"
    );
    out.assert_not_allowed(doh_connection(&out), "audited");
    let lookup = &audit::dns_for(&out.records, DOH, "A")[0];
    out.assert_not_allowed(lookup, "audited");
    assert_run!(out, audit::has_flag(lookup, "doh"), "{lookup}");
    assert_eq!(origins.tls().connections(), 2, "{:?}", origins.tls());
}
