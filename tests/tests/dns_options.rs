//! How the DNS layer is switched and pointed (docs/dns.md): on by default in `warden run` and
//! in the daemon; `--no-dns` leaves lookups alone and says so; `--dns-upstream` replaces the
//! resolvers read from resolv.conf at start.
//!
//! Needs root (skips loudly otherwise). Each test runs its own dnsmasq for `test.example`.

use std::time::Duration;

use serde_json::json;
use tests::clients::{self, exit_of, outcome, output_of};
use tests::dns::{A_NAME, DigOutput, HTTP_NAME, SERVER_V4};
use tests::{
    Daemon, DnsServer, Netns, TestCgroup, WardenRun, assert_run, assert_run_eq, audit,
    skip_unless_root,
};

/// Deadline for one `warden run` or client; passing ones take about a second.
const T: Duration = Duration::from_secs(30);

#[test]
fn no_dns_leaves_lookups_alone() {
    if skip_unless_root("no_dns_leaves_lookups_alone") {
        return;
    }
    let netns = Netns::new().unwrap();
    let server = DnsServer::start(&netns).unwrap();
    let steps = [
        outcome("udp", &clients::dig(None, A_NAME, "A", &[])),
        outcome("tcp", &clients::dig(None, HTTP_NAME, "A", &["+tcp"])),
        outcome(
            "dead",
            &clients::dig(Some("203.0.113.99"), A_NAME, "AAAA", &["+time=1"]),
        ),
    ];
    let out = WardenRun::new(&netns)
        .timeout(T)
        .args(["--egress-policy", "audit", "--no-dns"])
        .cmd(["sh", "-c", &steps.join("\n")])
        .run()
        .unwrap();
    out.assert_success();
    out.assert_bracketed();
    assert_run!(
        out,
        out.stderr.contains("--no-dns"),
        "warden says so on stderr"
    );
    let said = |label| DigOutput::parse(&output_of(&out.stdout, label).unwrap_or_default());
    assert_run_eq!(
        out,
        said("udp").data_of("A"),
        ["192.0.2.10"],
        "straight to dnsmasq"
    );
    assert_run_eq!(
        out,
        said("tcp").data_of("A"),
        ["198.51.100.10"],
        "over TCP too"
    );
    // Nobody answers for an address where nothing listens any more.
    assert_run_eq!(
        out,
        exit_of(&out.stdout, "dead"),
        Some(9),
        "dig @203.0.113.99"
    );

    assert_run!(
        out,
        audit::dns_records(&out.records).is_empty(),
        "no dns records"
    );
    let start = audit::start_record(&out.records).expect("a start record");
    assert_run!(out, start["enforcement"].get("dns").is_none(), "{start}");
    let tcp = out.one_connection("dig +tcp", |r| audit::is_to(r, "192.0.2.53", 53));
    assert_run!(
        out,
        !audit::has_flag(tcp, "dns"),
        "an ordinary connection: {tcp}"
    );
    // dnsmasq answered the client itself: over TCP, the query came on the client's connection.
    let tcp_queries = server.queries_for(HTTP_NAME);
    assert_run!(
        out,
        tcp_queries.len() == 1 && tcp_queries[0].tcp,
        "{tcp_queries:?}"
    );
}

#[test]
fn dns_upstream_replaces_the_resolvers_of_resolv_conf() {
    if skip_unless_root("dns_upstream_replaces_the_resolvers_of_resolv_conf") {
        return;
    }
    let netns = Netns::new().unwrap();
    let server = DnsServer::start(&netns).unwrap();
    // resolv.conf names an address where nothing listens: only the override can answer.
    netns
        .set_nameservers(&["203.0.113.99".parse().unwrap()])
        .unwrap();
    let steps = [
        outcome("dig", &clients::dig(None, A_NAME, "A", &[])),
        outcome("getent", &clients::getent("ahostsv4", HTTP_NAME)),
    ];
    let upstream = SERVER_V4.to_string();
    let out = WardenRun::new(&netns)
        .timeout(T)
        .args(["--dns-upstream", &upstream])
        .cmd(["sh", "-c", &steps.join("\n")])
        .run()
        .unwrap();
    out.assert_success();
    let dig = DigOutput::parse(&output_of(&out.stdout, "dig").unwrap_or_default());
    assert_run_eq!(out, dig.data_of("A"), ["192.0.2.10"], "dig");
    assert_run_eq!(out, exit_of(&out.stdout, "getent"), Some(0), "getent");
    let getent = output_of(&out.stdout, "getent").unwrap_or_default();
    assert_run!(out, getent.starts_with("198.51.100.10"), "getent: {getent}");
    let start = audit::start_record(&out.records).expect("a start record");
    assert_run_eq!(
        out,
        start["enforcement"]["dns"]["upstreams"],
        json!(["192.0.2.53:53"]),
        "{start}"
    );
    for record in audit::dns_records(&out.records) {
        assert_run!(out, audit::is_to(record, "203.0.113.99", 53), "{record}");
        assert_run_eq!(out, record["dns"]["upstream"], "192.0.2.53:53", "{record}");
    }
    assert_run!(
        out,
        !server.queries_for(A_NAME).is_empty(),
        "forwarded to the override"
    );
    assert_run!(
        out,
        !server.queries_for(HTTP_NAME).is_empty(),
        "forwarded to the override"
    );
}

#[test]
fn the_daemon_answers_lookups_by_default() {
    if skip_unless_root("the_daemon_answers_lookups_by_default") {
        return;
    }
    let netns = Netns::new().unwrap();
    let server = DnsServer::start(&netns).unwrap();
    let cgroup = TestCgroup::new().unwrap();
    let daemon = Daemon::start(
        &netns,
        &cgroup,
        ["--egress-policy", "block", "--allowed-endpoints", A_NAME],
    )
    .unwrap();
    daemon.assert_started();
    let script = format!(
        "{}\n{}",
        clients::dig_short(Some("127.0.0.53"), A_NAME, "A", &[]),
        clients::dig(None, HTTP_NAME, "A", &[])
    );
    let out = daemon.run_in_cgroup(&script, T).unwrap();
    assert!(out.status.success(), "{out:?}\n{daemon}");
    assert!(out.stdout.starts_with("192.0.2.10\n"), "{out:?}\n{daemon}");
    assert!(out.stdout.contains("status: NXDOMAIN"), "{out:?}\n{daemon}");

    let allowed = daemon
        .wait_for_record(T, |r| r["kind"] == "dns" && r["dns"]["qname"] == A_NAME)
        .unwrap();
    assert_eq!(allowed["decision"], "allowed", "{allowed}\n{daemon}");
    assert_eq!(allowed["dst"]["ip"], "127.0.0.53", "{allowed}\n{daemon}");
    assert_eq!(
        allowed["process"]["exe"], "/usr/bin/dig",
        "{allowed}\n{daemon}"
    );
    let blocked = daemon
        .wait_for_record(T, |r| r["kind"] == "dns" && r["dns"]["qname"] == HTTP_NAME)
        .unwrap();
    assert_eq!(blocked["decision"], "blocked", "{blocked}\n{daemon}");
    assert!(server.queries_for(HTTP_NAME).is_empty(), "{daemon}");
    let records = daemon.records().unwrap();
    let start = audit::start_record(&records).expect("a start record");
    assert!(
        start["enforcement"]["dns"]["resolver"].is_string(),
        "{daemon}"
    );

    // Outside the cgroup, lookups are not the daemon's.
    let outside =
        tests::process::run(netns.sh(&clients::dig_short(None, A_NAME, "AAAA", &[])), T).unwrap();
    assert!(outside.stdout.contains("2001:db8::10"), "{outside:?}");
    let stop = daemon.stop().unwrap();
    assert!(stop.status.success(), "{stop:?}\n{daemon}");
    let records = daemon.records().unwrap();
    assert!(
        audit::dns_for(&records, A_NAME, "AAAA").is_empty(),
        "{daemon}"
    );
}
