//! `warden run --egress-policy block`: what the allowed endpoints list goes through untouched;
//! everything else is refused the way each client understands (a reset for TLS and raw TCP, a
//! 403 page for plain HTTP) without Warden ever dialling the destination, and each refusal is a
//! `blocked` record with its reason. The same traffic in audit mode all goes through, marked
//! `allowed` or `audited`. What a run reports about blocked connections (exit status, the
//! entry to add) is in `block_reporting.rs`.
//!
//! Needs root (skips loudly otherwise). Each test builds its own namespace and origins.

use std::net::SocketAddr;
use std::time::Duration;

use tests::clients::{self, exit_of, outcome};
use tests::origins::{BANNER, ECHO_ADDR, HTTP_ADDRS, TLS_ADDRS};
use tests::{
    Netns, Origin, Origins, RunOutput, Service, WardenRun, assert_run, assert_run_eq, audit,
    skip_unless_root,
};

/// Deadline for one `warden run`; passing runs take a few seconds.
const T: Duration = Duration::from_secs(30);
/// Bytes the echo clients send (and expect back).
const ECHO_LEN: usize = 1000;
/// The allow list of the first two tests: one TLS name, one HTTP name with its port, one
/// address with its port.
const ALLOWED: &str = "tls.example, http.example:80 203.0.113.10:7";
/// A second echo service on the allowed address, on a port the list does not allow.
const OTHER_ECHO: SocketAddr = SocketAddr::new(ECHO_ADDR.ip(), 9);

/// Labels of the steps in [`traffic`] that [`ALLOWED`] allows.
const ALLOWED_STEPS: [&str; 3] = ["tls-allowed", "http-allowed", "raw-allowed"];
/// Labels of the steps in [`traffic`] that it does not.
const OTHER_STEPS: [&str; 4] = ["tls-other", "http-other", "raw-other", "banner-other"];

/// Connections to three destinations [`ALLOWED`] allows and four it does not, each an
/// [`outcome`] step so a refused one does not stop the rest.
fn traffic(origins: &Origins) -> String {
    let ca = origins.ca_pem_path();
    let other_echo = OTHER_ECHO.ip().to_string();
    [
        outcome("tls-allowed", &clients::curl("https://tls.example/in", &ca)),
        outcome(
            "http-allowed",
            &clients::curl("http://http.example/in", &ca),
        ),
        outcome(
            "raw-allowed",
            &clients::python_echo("raw.example", 7, ECHO_LEN),
        ),
        outcome("tls-other", &clients::curl("https://v6.example/out", &ca)),
        outcome(
            "http-other",
            &clients::curl_status(&[], "http://v6.example/out", &ca),
        ),
        outcome(
            "raw-other",
            &clients::python_echo(&other_echo, OTHER_ECHO.port(), ECHO_LEN),
        ),
        outcome(
            "banner-other",
            &clients::python_banner("banner.example", 25),
        ),
    ]
    .join("\n")
}

/// The namespace, the standard origins and the echo on [`OTHER_ECHO`].
fn setup() -> (Netns, Origins, Origin) {
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    let other_echo = origins
        .start_origin(&netns, "other-echo", Service::Echo, &[OTHER_ECHO])
        .unwrap();
    (netns, origins, other_echo)
}

/// The records of the allowed connections name the rule that allowed them; the origins were
/// reached once each and the clients got their answers.
fn check_allowed(out: &RunOutput, origins: &Origins) {
    for label in ALLOWED_STEPS {
        assert_run_eq!(
            out,
            exit_of(&out.stdout, label),
            Some(0),
            "{label} went through"
        );
    }
    for said in [
        "hello from tls-origin path=/in",
        "hello from http-origin path=/in",
        &format!("echo ok {ECHO_LEN}"),
    ] {
        assert_run!(out, out.stdout.contains(said), "clients said {said:?}");
    }
    let one = |ip: &str, port: u16| out.one_connection(&format!("{ip}:{port}"), on(ip, port));
    out.assert_allowed(one("192.0.2.10", 443), "tls.example");
    out.assert_allowed(one("198.51.100.10", 80), "http.example:80");
    out.assert_allowed(one("203.0.113.10", 7), "203.0.113.10:7");
    assert_run_eq!(out, origins.tls().connections_on(TLS_ADDRS[0]), 1, "tls");
    assert_run_eq!(out, origins.http().connections_on(HTTP_ADDRS[0]), 1, "http");
    assert_run_eq!(out, origins.echo().connections(), 1, "echo");
}

/// The records of the other connections say `decision` (blocked or audited) with the reason
/// no rule allowed them, the same in both modes.
fn check_others(out: &RunOutput, decision: &str) {
    let reasons = [
        ("2001:db8::10", 443, "no rule allows v6.example on port 443"),
        ("2001:db8::10", 80, "no rule allows v6.example on port 80"),
        ("203.0.113.10", 9, "no rule allows 203.0.113.10:9/tcp"),
        ("192.0.2.20", 25, "no rule allows 192.0.2.20:25/tcp"),
    ];
    for (ip, port, reason) in reasons {
        let record = out.one_connection(&format!("{ip}:{port}"), on(ip, port));
        out.assert_not_allowed(record, decision);
        let said = record["reason"].as_str().unwrap_or_default();
        assert_run!(out, said.contains(reason), "reason {reason:?} in {record}");
    }
}

/// Matches records of connections to `ip`:`port`.
fn on(ip: &str, port: u16) -> impl Fn(&serde_json::Value) -> bool {
    move |r| audit::is_to(r, ip, port)
}

#[test]
fn block_mode_lets_allowed_through_and_refuses_the_rest() {
    if skip_unless_root("block_mode_lets_allowed_through_and_refuses_the_rest") {
        return;
    }
    let (netns, origins, other_echo) = setup();
    let out = WardenRun::new(&netns)
        .timeout(T)
        .args(["--egress-policy", "block", "--allowed-endpoints", ALLOWED])
        .cmd(["sh", "-c", &traffic(&origins)])
        .run()
        .unwrap();
    out.assert_success();
    check_allowed(&out, &origins);
    check_others(&out, "blocked");
    assert_run_eq!(out, audit::connections(&out.records).len(), 7, "records");

    // TLS: the handshake is reset (curl 35: SSL connect error, or 56: receive failure).
    let tls = exit_of(&out.stdout, "tls-other");
    assert_run!(
        out,
        matches!(tls, Some(35 | 56)),
        "curl got a reset: {tls:?}"
    );
    // Plain HTTP: a 403 page naming the destination and the entry that would allow it.
    assert_run_eq!(out, exit_of(&out.stdout, "http-other"), Some(0), "a 403");
    for said in [
        "http status 403",
        "Blocked by Warden: connection to v6.example:80 (2001:db8::10) is not allowed",
        "To allow it, add this entry to allowed-endpoints: v6.example:80",
    ] {
        assert_run!(out, out.stdout.contains(said), "the 403 page says {said:?}");
    }
    // Raw TCP: no echo and no banner, whether the client speaks first or waits.
    for label in ["raw-other", "banner-other"] {
        let code = exit_of(&out.stdout, label);
        assert_run!(
            out,
            code.is_some_and(|c| c != 0),
            "{label} failed: {code:?}"
        );
    }
    assert_run_eq!(
        out,
        out.stdout.matches("echo ok").count(),
        1,
        "one echo came"
    );
    assert_run!(out, !out.stdout.contains(BANNER.trim()), "no banner came");
    // The client waiting for a banner sent nothing to judge; the verdict came after sniffing
    // gave up, and the destination was still never dialled.
    let banner = out.one_connection("the banner", on("192.0.2.20", 25));
    assert_run!(out, audit::has_flag(banner, "sniff-timeout"), "{banner}");

    // Block mode never dials what it refuses: those origins saw nothing at all.
    for (origin, addr) in [
        (origins.tls(), TLS_ADDRS[1]),
        (origins.http(), HTTP_ADDRS[1]),
        (&other_echo, OTHER_ECHO),
        (origins.banner(), origins.banner().addr()),
    ] {
        let seen = origin.connections_on(addr);
        assert_run_eq!(
            out,
            seen,
            0,
            "{} on {addr} was never dialled",
            origin.name()
        );
    }
    // What the refused clients asked for is recorded all the same.
    let tls = out.one_connection("TLS to v6.example", on("2001:db8::10", 443));
    assert_run_eq!(out, tls["tls"]["sni"], "v6.example", "tls.sni of {tls}");
    let http = out.one_connection("HTTP to v6.example", on("2001:db8::10", 80));
    assert_run_eq!(
        out,
        http["http"]["host"],
        "v6.example",
        "http.host of {http}"
    );
    assert_run_eq!(out, http["http"]["url"], "/out", "http.url of {http}");

    // The enforcement records and the summary say it was block mode.
    let modes: Vec<&serde_json::Value> = audit::enforcement(&out.records)
        .iter()
        .map(|r| &r["enforcement"]["mode"])
        .collect();
    assert_run_eq!(out, modes, ["block", "block"], "enforcement mode");
    out.assert_bracketed();
    for said in ["warden: block mode, 7 connections", "4 BLOCKED"] {
        assert_run!(out, out.stderr.contains(said), "summary says {said:?}");
    }
}

#[test]
fn audit_mode_lets_the_same_traffic_through() {
    if skip_unless_root("audit_mode_lets_the_same_traffic_through") {
        return;
    }
    let (netns, origins, other_echo) = setup();
    let out = WardenRun::new(&netns)
        .timeout(T)
        .args(["--egress-policy", "audit", "--allowed-endpoints", ALLOWED])
        .cmd(["sh", "-c", &traffic(&origins)])
        .run()
        .unwrap();
    out.assert_success();
    check_allowed(&out, &origins);
    check_others(&out, "audited");
    assert_run_eq!(out, audit::connections(&out.records).len(), 7, "records");
    for label in OTHER_STEPS {
        assert_run_eq!(
            out,
            exit_of(&out.stdout, label),
            Some(0),
            "{label} went through"
        );
    }
    for said in [
        "hello from tls-origin path=/out",
        "hello from http-origin path=/out",
        "http status 200",
        BANNER.trim(),
    ] {
        assert_run!(out, out.stdout.contains(said), "clients said {said:?}");
    }
    for (origin, addr) in [
        (origins.tls(), TLS_ADDRS[1]),
        (origins.http(), HTTP_ADDRS[1]),
        (&other_echo, OTHER_ECHO),
        (origins.banner(), origins.banner().addr()),
    ] {
        let seen = origin.connections_on(addr);
        assert_run_eq!(out, seen, 1, "{} on {addr} was reached", origin.name());
    }
    let start = audit::enforcement(&out.records)[0];
    assert_run_eq!(out, start["enforcement"]["mode"], "audit", "start record");
    out.assert_bracketed();
    assert_run!(
        out,
        out.stderr.contains("warden: audit mode, 7 connections") && !out.stderr.contains("BLOCKED"),
        "summary"
    );
}
