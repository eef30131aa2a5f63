//! Names for addresses (docs/dns.md, "Names for addresses"): every answer's addresses are
//! remembered with the name asked, for the whole job, and the hosts file counts as answers. A
//! raw-IP connection is then recorded with that name (`dst.name`), allowed in block mode by a
//! rule for that name, and checked against the addresses the job was given for the name it
//! sends (anti-spoofing, with no second lookup); a connection to an address no answer gave the
//! job is flagged `no-dns`.
//!
//! The block-mode test changes the zone mid-run (dnsmasq restarted with other answers), so only
//! Warden's memory of the job's answers, not a lookup of its own, can explain what it allows.
//!
//! Needs root (skips loudly otherwise). Each test runs its own dnsmasq and origins.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tests::clients::{self, exit_of, outcome, output_of};
use tests::dns::{HTTP_NAME, Record, SERVER_V4, SERVER_V6, Zone};
use tests::{
    DnsServer, Netns, Origins, RunOutput, Service, WardenRun, assert_run, assert_run_eq, audit,
    skip_unless_root,
};

/// Deadline for one `warden run`; passing runs take about a second.
const T: Duration = Duration::from_secs(30);
/// An address on the namespace's `lo` that no answer and no hosts entry names.
const UNNAMED: &str = "192.0.2.30";

#[test]
fn raw_ip_connections_are_named_by_earlier_answers() {
    if skip_unless_root("raw_ip_connections_are_named_by_earlier_answers") {
        return;
    }
    let netns = Netns::new().unwrap();
    let _server = DnsServer::start(&netns).unwrap();
    let origins = Origins::start(&netns).unwrap();
    netns.add_addr(&format!("{UNNAMED}/32")).unwrap();
    let unnamed = SocketAddr::new(UNNAMED.parse().unwrap(), 7);
    let extra = origins
        .start_origin(&netns, "unnamed-echo", Service::Echo, &[unnamed])
        .unwrap();
    let ca = origins.ca_pem_path();
    let steps = [
        outcome("dig", &clients::dig_short(None, HTTP_NAME, "A", &[])),
        outcome("raw-http", &clients::curl("http://198.51.100.10/raw", &ca)),
        outcome("unnamed", &clients::python_echo(UNNAMED, 7, 100)),
        // raw.example in the hosts file.
        outcome("hosts", &clients::python_echo("203.0.113.10", 7, 100)),
    ];
    let out = WardenRun::new(&netns)
        .timeout(T)
        .cmd(["sh", "-c", &steps.join("\n")])
        .run()
        .unwrap();
    out.assert_success();
    for label in ["dig", "raw-http", "unnamed", "hosts"] {
        assert_run_eq!(out, exit_of(&out.stdout, label), Some(0), "{label}");
    }
    let said = output_of(&out.stdout, "dig").unwrap_or_default();
    assert_run_eq!(out, said.trim(), "198.51.100.10", "dig +short");

    // 198.51.100.10 is also http.example in the hosts file: the job's own answer names it.
    let raw = out.one_connection("the raw-IP curl", |r| audit::is_to(r, "198.51.100.10", 80));
    assert_run_eq!(out, raw["dst"]["name"], HTTP_NAME, "{raw}");
    assert_run_eq!(out, raw["http"]["host"], "198.51.100.10", "{raw}");
    assert_run!(out, !audit::has_flag(raw, "no-dns"), "{raw}");

    let unnamed = out.one_connection("the unnamed echo", |r| audit::is_to(r, UNNAMED, 7));
    assert_run!(
        out,
        audit::has_flag(unnamed, "no-dns"),
        "flags of {unnamed}"
    );
    assert_run!(out, unnamed["dst"].get("name").is_none(), "{unnamed}");
    out.assert_not_allowed(unnamed, "audited");
    assert_eq!(extra.connections(), 1, "audit mode let it through");

    let hosts = out.one_connection("the hosts-file echo", |r| {
        audit::is_to(r, "203.0.113.10", 7)
    });
    assert_run!(out, !audit::has_flag(hosts, "no-dns"), "{hosts}");
    assert_run_eq!(out, hosts["dst"]["name"], "raw.example", "{hosts}");
}

#[test]
fn block_mode_trusts_the_answers_the_job_was_given() {
    if skip_unless_root("block_mode_trusts_the_answers_the_job_was_given") {
        return;
    }
    let netns = Netns::new().unwrap();
    let server = DnsServer::start(&netns).unwrap();
    let origins = Origins::start(&netns).unwrap();
    let ca = origins.ca_pem_path();
    let go = tempfile::tempdir().unwrap();
    let go = go.path().join("go");
    let resolve = |addr: &str| format!("{HTTP_NAME}:80:{addr}");
    let by_name = format!("http://{HTTP_NAME}/");
    let steps = [
        outcome("dig", &clients::dig_short(None, HTTP_NAME, "A", &[])),
        clients::wait_for_file(&go, 20),
        outcome(
            "raw",
            &clients::curl_status(&[], "http://198.51.100.10/raw", &ca),
        ),
        // Host http.test.example to the address the job was given, which its zone no longer
        // says: allowed; to another address of the HTTP origin: spoofing.
        outcome(
            "given",
            &clients::curl_status(
                &["--resolve", &resolve("198.51.100.10")],
                &format!("{by_name}given"),
                &ca,
            ),
        ),
        outcome(
            "spoof",
            &clients::curl_status(
                &["--resolve", &resolve("[2001:db8::10]")],
                &format!("{by_name}spoof"),
                &ca,
            ),
        ),
    ];
    let child = WardenRun::new(&netns)
        .timeout(T)
        .args([
            "--egress-policy",
            "block",
            "--allowed-endpoints",
            "http.test.example:80",
        ])
        .cmd(["sh", "-c", &steps.join("\n")])
        .spawn()
        .unwrap();
    child
        .wait_for_record(T, |r| r["kind"] == "dns" && r["dns"]["qname"] == HTTP_NAME)
        .unwrap();
    // Now the zone moves http.test.example elsewhere (as a CDN would), and Warden asking for
    // itself would get that.
    drop(server);
    let moved = Zone::empty().with(Record::A(HTTP_NAME.into(), Ipv4Addr::new(203, 0, 113, 10)));
    let _moved = DnsServer::start_with(&netns, moved, &[SERVER_V4, SERVER_V6]).unwrap();
    std::fs::write(&go, "").unwrap();
    let out = child.wait().unwrap();
    out.assert_success();
    check_trusted(&out);
    // Both curls to the origin that were allowed reached it; the spoofed one did not.
    let paths: Vec<String> = origins
        .http()
        .requests()
        .iter()
        .map(|r| r.target.clone())
        .collect();
    assert_run_eq!(
        out,
        paths,
        ["/raw", "/given"],
        "requests the HTTP origin got"
    );
}

fn check_trusted(out: &RunOutput) {
    assert_run_eq!(out, exit_of(&out.stdout, "dig"), Some(0), "dig");
    let said = |label| output_of(&out.stdout, label).unwrap_or_default();
    assert_run_eq!(out, said("dig").trim(), "198.51.100.10", "dig +short");
    assert_run!(
        out,
        said("raw").contains("http status 200"),
        "raw-IP curl allowed"
    );
    assert_run!(
        out,
        said("given").contains("http status 200"),
        "the given address"
    );
    assert_run!(
        out,
        said("spoof").contains("http status 403"),
        "another address"
    );

    let raw = out.one_connection("the raw-IP curl", |r| r["http"]["url"] == "/raw");
    out.assert_allowed(raw, "http.test.example:80");
    assert_run_eq!(out, raw["dst"]["name"], HTTP_NAME, "{raw}");
    let given = out.one_connection("Host to the given address", |r| {
        r["http"]["url"] == "/given"
    });
    out.assert_allowed(given, "http.test.example:80");
    assert_run!(out, !audit::has_flag(given, "sni-ip-mismatch"), "{given}");
    let spoof = out.one_connection("Host to another address", |r| r["http"]["url"] == "/spoof");
    out.assert_not_allowed(spoof, "blocked");
    assert_run!(out, audit::has_flag(spoof, "sni-ip-mismatch"), "{spoof}");
    assert_run_eq!(
        out,
        audit::dst_ip(spoof),
        Some(IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10])),
        "{spoof}"
    );
}
