//! Each kind of allowed-endpoints entry, in block mode, against real clients: wildcards (any
//! depth, never the bare name, the closest one named), IPv4 CIDRs on every port, IPv6 CIDRs on
//! one port, port-specific rules, and name rules allowing raw TCP (no SNI, no Host) to the
//! addresses the name resolves to (docs/policy.md, "How a connection is decided", step 4).
//!
//! Needs root (skips loudly otherwise). Each test builds its own namespace and origins and runs
//! warden once per allow list.

use std::net::SocketAddr;
use std::time::Duration;

use tests::clients::{self, exit_of, outcome};
use tests::origins::{BANNER, ECHO_ADDR};
use tests::{
    Netns, Origins, RunOutput, Service, WardenRun, assert_run, assert_run_eq, audit,
    skip_unless_root,
};

/// Deadline for one `warden run`; passing runs take a few seconds.
const T: Duration = Duration::from_secs(30);

/// Runs the labelled `steps` (see [`outcome`]) under `warden run` in block mode with `allowed`.
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

/// The one connection record to `ip`:`port`.
#[track_caller]
fn to<'a>(out: &'a RunOutput, ip: &str, port: u16) -> &'a serde_json::Value {
    out.one_connection(&format!("{ip}:{port}"), |r| audit::is_to(r, ip, port))
}

/// The one connection record that asked for `name` (SNI or Host).
#[track_caller]
fn named<'a>(out: &'a RunOutput, name: &str) -> &'a serde_json::Value {
    out.one_connection(name, |r| r["dst"]["name"] == name)
}

#[track_caller]
fn assert_exit(out: &RunOutput, label: &str, ok: bool) {
    let code = exit_of(&out.stdout, label);
    assert_run!(
        out,
        code.is_some() && (code == Some(0)) == ok,
        "{label} should {}: exit {code:?}",
        if ok { "succeed" } else { "fail" }
    );
}

#[test]
fn wildcards_cover_subdomains_not_the_name_itself() {
    if skip_unless_root("wildcards_cover_subdomains_not_the_name_itself") {
        return;
    }
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    let ca = origins.ca_pem_path();
    let steps = [
        outcome("tls", &clients::curl("https://tls.example/w", &ca)),
        // The test certificate does not name sub.tls.example; openssl checks the chain only.
        outcome(
            "sub",
            &clients::openssl_handshake("sub.tls.example", 443, "sub.tls.example", &ca),
        ),
        outcome(
            "http",
            &clients::curl_status(&[], "http://http.example/w", &ca),
        ),
    ];

    // `*.example` covers tls.example and, at depth two, sub.tls.example, where the closer
    // `*.tls.example` is the rule named; a wildcard without a port is 443 only.
    let out = block_run(&netns, "*.example *.tls.example", &steps);
    assert_exit(&out, "tls", true);
    assert_exit(&out, "sub", true);
    out.assert_allowed(named(&out, "tls.example"), "*.example");
    out.assert_allowed(named(&out, "sub.tls.example"), "*.tls.example");
    let http = named(&out, "http.example");
    out.assert_not_allowed(http, "blocked");
    for said in [
        "http status 403",
        "add this entry to allowed-endpoints: http.example:80",
    ] {
        assert_run!(out, out.stdout.contains(said), "the 403 page says {said:?}");
    }

    // `*.tls.example` alone does not cover tls.example itself.
    let out = block_run(&netns, "*.tls.example", &steps);
    assert_exit(&out, "tls", false);
    assert_exit(&out, "sub", true);
    let tls = named(&out, "tls.example");
    out.assert_not_allowed(tls, "blocked");
    assert_run!(
        out,
        tls["reason"]
            .as_str()
            .is_some_and(|r| r.contains("no rule allows tls.example on port 443")),
        "reason of {tls}"
    );
    out.assert_allowed(named(&out, "sub.tls.example"), "*.tls.example");
    // The origins saw the three allowed connections of both runs, and none of the blocked.
    assert_eq!(origins.tls().connections(), 3, "{:?}", origins.tls());
    assert_eq!(origins.http().connections(), 0, "{:?}", origins.http());
}

#[test]
fn address_rules_cidrs_ports_and_ipv6() {
    if skip_unless_root("address_rules_cidrs_ports_and_ipv6") {
        return;
    }
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    let ca = origins.ca_pem_path();
    let steps = [
        outcome("tls", &clients::curl("https://tls.example/a", &ca)),
        outcome("banner", &clients::python_banner("banner.example", 25)),
        outcome(
            "http",
            &clients::curl_status(&[], "http://http.example/a", &ca),
        ),
        outcome("v6-tls", &clients::curl("https://v6.example/a", &ca)),
        outcome(
            "v6-http",
            &clients::curl_status(&[], "http://[2001:db8::10]:80/a", &ca),
        ),
    ];

    // An IPv4 network without a port: every port of every address in it, whatever the name.
    let out = block_run(&netns, "192.0.2.0/24", &steps);
    assert_exit(&out, "tls", true);
    assert_exit(&out, "banner", true);
    assert_exit(&out, "v6-tls", false);
    out.assert_allowed(to(&out, "192.0.2.10", 443), "192.0.2.0/24");
    // Allowed by address, a server-first destination is dialled at once and speaks first.
    let banner = to(&out, "192.0.2.20", 25);
    out.assert_allowed(banner, "192.0.2.0/24");
    assert_run!(out, audit::has_flag(banner, "server-first"), "{banner}");
    assert_run!(out, out.stdout.contains(BANNER.trim()), "the banner came");
    out.assert_not_allowed(to(&out, "198.51.100.10", 80), "blocked");
    out.assert_not_allowed(to(&out, "2001:db8::10", 443), "blocked");
    out.assert_not_allowed(to(&out, "2001:db8::10", 80), "blocked");

    // An IPv6 network with a port: that port only. A v4-mapped entry is IPv4, recorded so.
    let out = block_run(&netns, "[2001:db8::/32]:443 ::ffff:192.0.2.20", &steps);
    assert_exit(&out, "tls", false);
    assert_exit(&out, "banner", true);
    assert_exit(&out, "v6-tls", true);
    out.assert_allowed(to(&out, "2001:db8::10", 443), "[2001:db8::/32]:443");
    out.assert_allowed(to(&out, "192.0.2.20", 25), "192.0.2.20");
    let v6_http = to(&out, "2001:db8::10", 80);
    out.assert_not_allowed(v6_http, "blocked");
    // An IP literal Host is no name; the record names the address by what the hosts file (an
    // answer as good as DNS's) maps it to.
    assert_run!(
        out,
        v6_http["dst"]["name"] == "v6.example" && v6_http["http"]["host"] == "[2001:db8::10]",
        "an IP literal Host is no name: {v6_http}"
    );
    for said in [
        "connection to [2001:db8::10]:80 is not allowed",
        "add this entry to allowed-endpoints: [2001:db8::10]:80",
    ] {
        assert_run!(out, out.stdout.contains(said), "the 403 page says {said:?}");
    }
    for (ip, port) in [("192.0.2.10", 443), ("198.51.100.10", 80)] {
        out.assert_not_allowed(to(&out, ip, port), "blocked");
    }

    // Both runs: what was blocked never reached its origin.
    assert_eq!(origins.http().connections(), 0, "{:?}", origins.http());
    assert_eq!(origins.banner().connections(), 2, "{:?}", origins.banner());
    assert_eq!(origins.tls().connections(), 2, "{:?}", origins.tls());
}

#[test]
fn raw_tcp_is_allowed_by_the_name_its_address_has() {
    if skip_unless_root("raw_tcp_is_allowed_by_the_name_its_address_has") {
        return;
    }
    const LEN: usize = 10_000;
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    let other_port = SocketAddr::new(ECHO_ADDR.ip(), 9);
    let other = origins
        .start_origin(&netns, "other-echo", Service::Echo, &[other_port])
        .unwrap();
    let steps = [
        // A raw connection sends no name; raw.example resolves to its address, on port 7.
        outcome("echo", &clients::python_echo("203.0.113.10", 7, LEN)),
        outcome("other-port", &clients::python_echo("raw.example", 9, LEN)),
        // A v4-mapped destination is the IPv4 one.
        outcome(
            "mapped",
            &clients::python_echo_inet6("::ffff:203.0.113.10", 7, LEN),
        ),
        // The same for a server-first destination: nothing is dialled until the verdict, so the
        // banner comes once sniffing gives up waiting for the client.
        outcome("banner", &clients::python_banner("192.0.2.20", 25)),
    ];
    let out = block_run(&netns, "raw.example:7 banner.example:25", &steps);
    assert_exit(&out, "echo", true);
    assert_exit(&out, "other-port", false);
    assert_exit(&out, "banner", true);
    let echoes = out.stdout.matches(&format!("echo ok {LEN}")).count();
    assert_run_eq!(out, echoes, 2, "both allowed echoes came back");
    assert_run!(out, out.stdout.contains(BANNER.trim()), "the banner came");

    assert_exit(&out, "mapped", true);
    for mapped in [false, true] {
        let echo = out.one_connection("the echo", |r| {
            r["dst"]["port"] == 7 && audit::has_flag(r, "v4-mapped") == mapped
        });
        assert_run_eq!(out, echo["dst"]["ip"], "203.0.113.10", "dst.ip of {echo}");
        out.assert_allowed(echo, "raw.example:7");
        assert_run_eq!(
            out,
            echo["reason"],
            "allowed by raw.example:7: 203.0.113.10 is an address of raw.example",
            "reason of {echo}"
        );
        assert_run_eq!(out, echo["bytes"]["down"], LEN, "bytes.down of {echo}");
    }
    out.assert_not_allowed(to(&out, "203.0.113.10", 9), "blocked");
    out.assert_allowed(to(&out, "192.0.2.20", 25), "banner.example:25");
    assert_eq!(origins.echo().connections(), 2, "{:?}", origins.echo());
    assert_eq!(other.connections(), 0, "the other port was never dialled");
    assert_eq!(origins.banner().connections(), 1, "{:?}", origins.banner());
}
