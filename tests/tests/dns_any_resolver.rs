//! Port-53 queries to any resolver address land in Warden (docs/dns.md, "How lookups reach
//! Warden"): an address where nothing listens, the loopback stub `127.0.0.53`, `0.0.0.0`, an
//! IPv6 address, a v4-mapped address on an IPv6 socket, over UDP (connected or not) and TCP,
//! and a resolv.conf naming the stub. Every one is answered from the real upstream (the test
//! dnsmasq, whose log shows each query arriving although the client asked elsewhere), the reply
//! appears to come from the address asked (dig and glibc check), and the `dns` record's `dst`
//! is that address.
//!
//! Needs root (skips loudly otherwise). Each test runs its own dnsmasq for `test.example`.

use std::time::Duration;

use tests::clients::{self, exit_of, outcome, output_of};
use tests::dns::{A_NAME, ALIAS_NAME, BURST_DOMAIN, DigOutput, HTTP_NAME, RAW_NAME, SERVER_V4};
use tests::skip_unless_root;
use tests::{DnsServer, Netns, RunOutput, WardenRun, assert_run, assert_run_eq, audit};

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
    out
}

/// Checks the one `qtype` lookup of `name`: answered NOERROR from the upstream, recorded with
/// the resolver the client asked (`ip`, `proto`), and seen by dnsmasq exactly once.
#[track_caller]
fn assert_reached(out: &RunOutput, server: &DnsServer, name: &str, qtype: &str, dst: (&str, &str)) {
    let found = audit::dns_for(&out.records, name, qtype);
    assert_run_eq!(out, found.len(), 1, "{qtype} lookups of {name}");
    let r = found[0];
    let (ip, proto) = dst;
    assert_run!(out, audit::is_to(r, ip, 53), "dst of {r} is {ip}:53");
    assert_run_eq!(out, r["dst"]["proto"], proto, "{r}");
    assert_run_eq!(out, r["dns"]["rcode"], "NOERROR", "{r}");
    assert_run_eq!(out, r["dns"]["upstream"], "192.0.2.53:53", "{r}");
    let queries = server.queries_for(name);
    assert_run!(
        out,
        queries.iter().filter(|q| q.qtype == qtype).count() == 1,
        "dnsmasq got the {qtype} query for {name} from Warden: {queries:?}"
    );
}

#[test]
fn queries_to_any_resolver_address_are_answered() {
    if skip_unless_root("queries_to_any_resolver_address_are_answered") {
        return;
    }
    let netns = Netns::new().unwrap();
    let server = DnsServer::start(&netns).unwrap();
    // One name per resolver, so dnsmasq's log tells which query arrived.
    let cases = [
        ("dead", "203.0.113.99", A_NAME, "A", &[][..], "udp"),
        ("stub", "127.0.0.53", HTTP_NAME, "A", &[], "udp"),
        ("any", "0.0.0.0", RAW_NAME, "A", &[], "udp"),
        ("v6", "2001:db8::99", A_NAME, "AAAA", &["-6"], "udp"),
        (
            "tcp-dead",
            "203.0.113.99",
            ALIAS_NAME,
            "A",
            &["+tcp"],
            "tcp",
        ),
    ];
    let steps: Vec<String> = cases
        .iter()
        .map(|(label, at, name, qtype, opts, _)| {
            outcome(label, &clients::dig(Some(at), name, qtype, opts))
        })
        .collect();
    let out = run(&netns, &[], &steps);
    for (label, at, name, qtype, _, proto) in cases {
        assert_run_eq!(out, exit_of(&out.stdout, label), Some(0), "{label}");
        let dig = DigOutput::parse(&output_of(&out.stdout, label).unwrap_or_default());
        assert_run_eq!(out, dig.status.as_deref(), Some("NOERROR"), "{label}");
        assert_run!(out, !dig.data_of(qtype).is_empty(), "{label}: {dig:?}");
        assert_reached(&out, &server, name, qtype, (at, proto));
    }
    let tcp = out.one_connection("dig +tcp", |r| audit::is_to(r, "203.0.113.99", 53));
    assert_run!(out, audit::has_flag(tcp, "dns"), "{tcp}");
}

#[test]
fn sockets_see_the_reply_come_from_the_address_asked() {
    if skip_unless_root("sockets_see_the_reply_come_from_the_address_asked") {
        return;
    }
    let netns = Netns::new().unwrap();
    let server = DnsServer::start(&netns).unwrap();
    let a = |label: &str| format!("{label}.{BURST_DOMAIN}");
    let cases = [
        ("sendto", "203.0.113.99", false, "203.0.113.99"),
        ("connect", "127.0.0.53", true, "127.0.0.53"),
        (
            "mapped",
            "::ffff:203.0.113.98",
            false,
            "::ffff:203.0.113.98",
        ),
        ("v6-connect", "2001:db8::98", true, "2001:db8::98"),
    ];
    let steps: Vec<String> = cases
        .iter()
        .map(|&(label, at, connect, _)| {
            outcome(label, &clients::python_dns_query(at, &a(label), 1, connect))
        })
        .collect();
    let out = run(&netns, &[], &steps);
    for (label, at, connect, source) in cases {
        assert_run_eq!(out, exit_of(&out.stdout, label), Some(0), "{label}");
        let said = output_of(&out.stdout, label).unwrap_or_default();
        let reply = format!("rcode 0 from {source} 53 answers 1");
        assert_run!(out, said.contains(&reply), "{label}: {reply}");
        if connect {
            let peer = format!("peer {source} 53");
            assert_run!(out, said.contains(&peer), "{label}: {peer}");
        }
        // A v4-mapped resolver is recorded as the IPv4 address.
        let ip = at.trim_start_matches("::ffff:");
        assert_reached(&out, &server, &a(label), "A", (ip, "udp"));
    }
}

#[test]
fn resolv_conf_naming_the_loopback_stub() {
    if skip_unless_root("resolv_conf_naming_the_loopback_stub") {
        return;
    }
    let netns = Netns::new().unwrap();
    let server = DnsServer::start(&netns).unwrap();
    // As on a runner with systemd-resolved; nothing listens on the stub here, so Warden is
    // told where to forward instead of reading it from resolv.conf.
    netns
        .set_nameservers(&["127.0.0.53".parse().unwrap()])
        .unwrap();
    let steps = [
        outcome("getent", &clients::getent("ahostsv4", A_NAME)),
        outcome("python", &clients::python_getaddrinfo(HTTP_NAME)),
    ];
    let upstream = SERVER_V4.to_string();
    let out = run(&netns, &["--dns-upstream", &upstream], &steps);
    let said = |label| output_of(&out.stdout, label).unwrap_or_default();
    assert_run_eq!(out, exit_of(&out.stdout, "getent"), Some(0), "getent");
    assert_run!(out, said("getent").starts_with("192.0.2.10"), "getent");
    assert_run_eq!(out, exit_of(&out.stdout, "python"), Some(0), "getaddrinfo");
    assert_run_eq!(out, said("python").trim(), "198.51.100.10", "getaddrinfo");
    assert_reached(&out, &server, A_NAME, "A", ("127.0.0.53", "udp"));
    assert_reached(&out, &server, HTTP_NAME, "A", ("127.0.0.53", "udp"));
    for record in audit::dns_records(&out.records) {
        assert_run!(out, audit::is_to(record, "127.0.0.53", 53), "{record}");
    }
}
