//! Anti-spoofing: an allowed name only counts when the connection goes to one of that name's
//! addresses. A job that sends the SNI or Host of an allowed host to some other address (domain
//! fronting, or an exfiltration server presenting an allowed name) is flagged
//! `sni-ip-mismatch`; block mode refuses it without dialling it, with no entry suggested (another
//! rule is not the cure), and audit mode lets it through, flagged. An address rule for the
//! destination still allows it, whatever name was sent. A ClientHello with ECH names only a
//! public front, so its SNI is ignored and the address decides (flag `ech`).
//!
//! Needs root (skips loudly otherwise). Each test builds its own namespace and origins.

use std::net::SocketAddr;
use std::time::Duration;

use tests::clients::{self, exit_of, outcome};
use tests::{
    Netns, Origin, Origins, RunOutput, Service, WardenRun, assert_run, assert_run_eq, audit,
    skip_unless_root,
};

/// Deadline for one `warden run`; passing runs take a few seconds.
const T: Duration = Duration::from_secs(30);
/// The names the job may reach.
const ALLOWED: &str = "tls.example http.example:80";
/// A TLS server that is not tls.example (192.0.2.10) but presents its certificate.
const FAKE_TLS: &str = "192.0.2.20:443";
/// A plain HTTP server that is not http.example (198.51.100.10).
const FAKE_HTTP: &str = "203.0.113.10:80";

struct Setup {
    netns: Netns,
    origins: Origins,
    fake_tls: Origin,
    fake_http: Origin,
}

fn setup() -> Setup {
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    let addr = |a: &str| -> SocketAddr { a.parse().unwrap() };
    let tls = Service::Tls(vec!["tls.example".into()]);
    let fake_tls = origins
        .start_origin(&netns, "fake-tls", tls, &[addr(FAKE_TLS)])
        .unwrap();
    let fake_http = origins
        .start_origin(&netns, "fake-http", Service::Http, &[addr(FAKE_HTTP)])
        .unwrap();
    Setup {
        netns,
        origins,
        fake_tls,
        fake_http,
    }
}

/// Both spoofs and, for contrast, the real tls.example, as labelled [`outcome`] steps.
fn run(s: &Setup, mode: &str, allowed: &str) -> RunOutput {
    let ca = s.origins.ca_pem_path();
    let resolve = "tls.example:443:192.0.2.20";
    let steps = [
        outcome(
            "tls-spoof",
            &clients::curl_with(&["--resolve", resolve], "https://tls.example/spoof", &ca),
        ),
        outcome(
            "http-spoof",
            &clients::curl_status(
                &["-H", "Host: http.example"],
                "http://203.0.113.10/spoof",
                &ca,
            ),
        ),
        outcome("tls-real", &clients::curl("https://tls.example/real", &ca)),
    ];
    let out = WardenRun::new(&s.netns)
        .timeout(T)
        .args(["--egress-policy", mode, "--allowed-endpoints", allowed])
        .cmd(["sh", "-c", &steps.join("\n")])
        .run()
        .unwrap();
    out.assert_success();
    out.assert_bracketed();
    assert_run_eq!(out, exit_of(&out.stdout, "tls-real"), Some(0), "tls-real");
    let real = out.one_connection("tls.example at its address", |r| {
        r["dst"]["ip"] == "192.0.2.10"
    });
    out.assert_allowed(real, "tls.example");
    assert_run!(out, !audit::has_flag(real, "sni-ip-mismatch"), "{real}");
    out
}

/// The records of the two spoofed connections, each checked to name the allowed host it
/// claimed and to carry `sni-ip-mismatch`.
fn spoofs(out: &RunOutput) -> [&serde_json::Value; 2] {
    let tls = out.one_connection("TLS to 192.0.2.20", |r| r["dst"]["ip"] == "192.0.2.20");
    let http = out.one_connection("HTTP to 203.0.113.10", |r| r["dst"]["ip"] == "203.0.113.10");
    assert_run_eq!(out, tls["tls"]["sni"], "tls.example", "tls.sni of {tls}");
    assert_run_eq!(
        out,
        http["http"]["host"],
        "http.example",
        "http.host of {http}"
    );
    for (record, name, ip) in [
        (tls, "tls.example", "192.0.2.20"),
        (http, "http.example", "203.0.113.10"),
    ] {
        assert_run!(out, audit::has_flag(record, "sni-ip-mismatch"), "{record}");
        let reason = record["reason"].as_str().unwrap_or_default();
        let why = format!("{name} matches {name}");
        assert_run!(out, reason.contains(&why), "reason says {why:?}: {record}");
        let why = format!("does not resolve to {ip}");
        assert_run!(out, reason.contains(&why), "reason says {why:?}: {record}");
    }
    [tls, http]
}

#[test]
fn block_mode_refuses_an_allowed_name_sent_elsewhere() {
    if skip_unless_root("block_mode_refuses_an_allowed_name_sent_elsewhere") {
        return;
    }
    let s = setup();
    let out = run(&s, "block", ALLOWED);
    for record in spoofs(&out) {
        out.assert_not_allowed(record, "blocked");
    }
    let tls = exit_of(&out.stdout, "tls-spoof");
    assert_run!(
        out,
        matches!(tls, Some(35 | 56)),
        "curl got a reset: {tls:?}"
    );
    assert_run_eq!(out, exit_of(&out.stdout, "http-spoof"), Some(0), "a 403");
    let said = "Blocked by Warden: connection to http.example:80 (203.0.113.10) is not allowed";
    for said in ["http status 403", said] {
        assert_run!(out, out.stdout.contains(said), "the 403 page says {said:?}");
    }
    assert_run!(
        out,
        !out.stdout.contains("add this entry"),
        "no entry is suggested for a mismatch"
    );
    assert_run_eq!(out, s.fake_tls.connections(), 0, "fake TLS never dialled");
    assert_run_eq!(out, s.fake_http.connections(), 0, "fake HTTP never dialled");
    assert_run!(out, out.stderr.contains("2 BLOCKED"), "summary");
}

#[test]
fn audit_mode_lets_a_spoof_through_flagged() {
    if skip_unless_root("audit_mode_lets_a_spoof_through_flagged") {
        return;
    }
    let s = setup();
    let out = run(&s, "audit", ALLOWED);
    for record in spoofs(&out) {
        out.assert_not_allowed(record, "audited");
    }
    for label in ["tls-spoof", "http-spoof"] {
        assert_run_eq!(out, exit_of(&out.stdout, label), Some(0), "{label}");
    }
    for said in [
        "hello from fake-tls path=/spoof",
        "hello from fake-http path=/spoof",
    ] {
        assert_run!(out, out.stdout.contains(said), "clients said {said:?}");
    }
    assert_run_eq!(out, s.fake_tls.connections(), 1, "fake TLS reached");
    assert_run_eq!(out, s.fake_http.connections(), 1, "fake HTTP reached");
}

#[test]
fn an_address_rule_allows_whatever_name_is_sent() {
    if skip_unless_root("an_address_rule_allows_whatever_name_is_sent") {
        return;
    }
    let s = setup();
    let allowed = format!("{ALLOWED} {FAKE_TLS} 203.0.113.0/24:80");
    let out = run(&s, "block", &allowed);
    let [tls, http] = spoofs(&out);
    out.assert_allowed(tls, FAKE_TLS);
    out.assert_allowed(http, "203.0.113.0/24:80");
    for said in [
        "hello from fake-tls path=/spoof",
        "hello from fake-http path=/spoof",
    ] {
        assert_run!(out, out.stdout.contains(said), "clients said {said:?}");
    }
}

#[test]
fn ech_ignores_the_sni_and_judges_the_address() {
    if skip_unless_root("ech_ignores_the_sni_and_judges_the_address") {
        return;
    }
    let s = setup();
    let steps = [
        ("allowed-name", "192.0.2.10", "tls.example"),
        ("public-name", "192.0.2.10", "public.example"),
        ("elsewhere", "192.0.2.20", "tls.example"),
    ]
    .map(|(label, ip, sni)| outcome(label, &clients::python_ech_hello(ip, 443, sni)));
    let out = WardenRun::new(&s.netns)
        .timeout(T)
        .args(["--egress-policy", "block", "--allowed-endpoints", ALLOWED])
        .cmd(["sh", "-c", &steps.join("\n")])
        .run()
        .unwrap();
    out.assert_success();
    out.assert_bracketed();
    let said: Vec<&str> = out.stdout.lines().collect();
    assert_run_eq!(
        out,
        said,
        [
            "answered",
            "allowed-name: exit 0",
            "answered",
            "public-name: exit 0",
            "closed: reset",
            "elsewhere: exit 0",
        ],
        "the allowed address answered both hellos; the other reset"
    );
    for sni in ["tls.example", "public.example"] {
        let record = out.one_connection(sni, |r| {
            r["tls"]["sni"] == sni && r["dst"]["ip"] == "192.0.2.10"
        });
        out.assert_allowed(record, "tls.example");
        assert_run!(out, audit::has_flag(record, "ech"), "{record}");
        assert_run_eq!(out, record["tls"]["ech"], true, "tls.ech of {record}");
        let why = "ECH; 192.0.2.10 is an address of tls.example";
        let reason = record["reason"].as_str().unwrap_or_default();
        assert_run!(out, reason.contains(why), "reason says {why:?}: {record}");
    }
    let elsewhere = out.one_connection("elsewhere", |r| r["dst"]["ip"] == "192.0.2.20");
    out.assert_not_allowed(elsewhere, "blocked");
    assert_run!(out, audit::has_flag(elsewhere, "ech"), "{elsewhere}");
    assert_run!(
        out,
        !audit::has_flag(elsewhere, "sni-ip-mismatch"),
        "an ECH outer name is not a claim to check: {elsewhere}"
    );
    let reason = elsewhere["reason"].as_str().unwrap_or_default();
    assert_run!(
        out,
        reason.contains("ECH hides the server name"),
        "{elsewhere}"
    );
    assert_run_eq!(out, s.origins.tls().connections(), 2, "allowed dialled");
    assert_run_eq!(out, s.fake_tls.connections(), 0, "fake TLS never dialled");
}
