//! What TLS inspection leaves alone: hosts in `--no-inspect` (exact names and `*.` wildcards)
//! and TLS that is not HTTPS (an ALPN other than `h2`/`http/1.1`) are relayed untouched. The
//! client then sees the origin's own certificate, so it must trust the origin's CA itself (the
//! test CA, given explicitly) and fails without it; the origin sees the client's own protocol
//! choice; there are no `request` records; the connection is flagged `not-inspected` with the
//! reason. Hosts not listed are still inspected in the same run.
//!
//! Needs root (skips loudly otherwise). Each test builds its own namespace and origins.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use tests::clients::{self, Http, exit_of, outcome, output_of, quote};
use tests::inspect::{H1_ADDR, H2_ADDR, InspectOrigins};
use tests::process::{Running, run_ok};
use tests::{
    Netns, Origins, RunOutput, WardenRun, assert_run, assert_run_eq, audit, skip_unless_root,
};

/// Deadline for one `warden run`; passing runs take a few seconds.
const T: Duration = Duration::from_secs(60);

fn run(netns: &Netns, origins: &Origins, extra: &[&str], steps: &[String]) -> RunOutput {
    let out = WardenRun::new(netns)
        .timeout(T)
        .args(["--tls-inspection", "--upstream-ca"])
        .args([origins.ca_pem_path()])
        .args(extra)
        .cmd(["sh", "-c", &steps.join("\n")])
        .run()
        .unwrap();
    out.assert_success();
    out
}

#[track_caller]
fn step(out: &RunOutput, label: &str) -> (Option<i32>, String) {
    let text = output_of(&out.stdout, label).unwrap_or_default();
    (exit_of(&out.stdout, label), text)
}

/// Every connection record to `addr` is flagged `not-inspected` (and not `inspected`) with a
/// reason containing `why`; returns how many there are.
#[track_caller]
fn passed_through(out: &RunOutput, addr: SocketAddr, why: &str) -> usize {
    let conns = audit::connections_to(&out.records, &addr.ip().to_string(), addr.port());
    for c in &conns {
        assert_run!(out, audit::has_flag(c, "not-inspected"), "{addr}: {c}");
        assert_run!(out, !audit::has_flag(c, "inspected"), "{addr}: {c}");
        let reason = c["reason"].as_str().unwrap_or_default();
        assert_run!(out, reason.contains(why), "{addr}: {reason}");
    }
    conns.len()
}

#[test]
fn a_no_inspect_host_passes_through_untouched() {
    if skip_unless_root("a_no_inspect_host_passes_through_untouched") {
        return;
    }
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    let inspect = InspectOrigins::start(&netns, &origins).unwrap();
    let (h2, h1, ca) = (inspect.h2(), inspect.h1(), origins.ca_pem_path());
    let steps = [
        outcome(
            "own CA",
            &clients::curl_get(&h2.url("/pass?token=t"), Http::V2, Some(&ca)),
        ),
        // Warden's CA is no use here: the certificate is the origin's.
        outcome(
            "no CA",
            &clients::curl_get(&h2.url("/refused"), Http::V2, None),
        ),
        outcome(
            "not listed",
            &clients::curl_get(&h1.url("/inspected"), Http::V2, None),
        ),
    ];
    let out = run(&netns, &origins, &["--no-inspect", "h2.example"], &steps);

    let (code, text) = step(&out, "own CA");
    assert_run_eq!(out, code, Some(0), "own CA");
    assert_run!(out, text.contains("status 200 version 2"), "h2 end to end");
    // curl: 60, the peer certificate cannot be authenticated with known CA certificates.
    assert_run_eq!(out, step(&out, "no CA").0, Some(60), "no CA");
    assert_run_eq!(out, step(&out, "not listed").0, Some(0), "not listed");

    assert_run_eq!(out, passed_through(&out, H2_ADDR, "--no-inspect"), 2, "");
    assert_run!(
        out,
        audit::requests_to(&out.records, "https://h2.example").is_empty(),
        "a request record for a host that is not inspected"
    );
    let inspected = audit::connections_to(&out.records, &H1_ADDR.ip().to_string(), 443);
    assert_run!(
        out,
        audit::has_flag(inspected[0], "inspected"),
        "h1.example"
    );
    let found = audit::requests_for(&out.records, "https://h1.example/inspected");
    assert_run_eq!(out, found.len(), 1, "h1.example is still inspected");

    // The origin spoke with the client itself: h2, as curl offered, and no trace of Warden's
    // second connection; the client that trusted only the environment never got to ask.
    let seen = h2.requests();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(seen[0].is_h2(), "{seen:?}");
    assert_eq!(seen[0].target, "/pass?token=t");
    assert_eq!(h2.connections(), 2, "{:?}", h2.accepted());
    assert_eq!(h2.handshakes(), 1, "{:?}", h2.errors());
}

#[test]
fn a_wildcard_no_inspect_covers_every_subdomain() {
    if skip_unless_root("a_wildcard_no_inspect_covers_every_subdomain") {
        return;
    }
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    let inspect = InspectOrigins::start(&netns, &origins).unwrap();
    let ca = origins.ca_pem_path();
    let steps = [
        outcome(
            "h2",
            &clients::curl_get(&inspect.h2().url("/w"), Http::V2, Some(&ca)),
        ),
        outcome(
            "h1",
            &clients::curl_get(&inspect.h1().url("/w"), Http::V2, Some(&ca)),
        ),
        outcome(
            "python",
            &clients::python_urllib(&inspect.h1().url("/w/python"), None),
        ),
    ];
    let out = run(&netns, &origins, &["--no-inspect", "*.example"], &steps);
    for label in ["h2", "h1"] {
        assert_run_eq!(out, step(&out, label).0, Some(0), "{label}");
    }
    let (code, text) = step(&out, "python");
    assert_run_eq!(out, code, Some(2), "python trusting only Warden's CA");
    assert_run!(out, text.contains("CERTIFICATE_VERIFY_FAILED"), "{text}");
    assert_run_eq!(out, passed_through(&out, H2_ADDR, "--no-inspect"), 1, "");
    assert_run_eq!(out, passed_through(&out, H1_ADDR, "--no-inspect"), 2, "");
    assert_run!(
        out,
        audit::requests(&out.records).is_empty(),
        "request records"
    );
    assert!(inspect.h2().requests()[0].is_h2());
    assert_eq!(inspect.h1().requests().len(), 1);
}

/// Where the IMAP-over-TLS stand-in listens: on port 443, where a TLS stream with no ALPN at
/// all would be taken for HTTPS.
const IMAPS: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 46)), 443);
const IMAPS_NAME: &str = "imaps.example";

/// `openssl s_server` on [`IMAPS`] with a test-CA certificate for [`IMAPS_NAME`], offering ALPN
/// `imap` only; returns once it listens. Its files live in `dir`.
fn imaps_server(netns: &Netns, origins: &Origins, dir: &Path) -> Running {
    let leaf = origins.ca().issue_leaf(&[IMAPS_NAME]).unwrap();
    let (cert, key) = (dir.join("imaps.pem"), dir.join("imaps.key"));
    std::fs::write(&cert, &leaf.cert_pem).unwrap();
    std::fs::write(&key, &leaf.key_pem).unwrap();
    netns.add_addr(&format!("{}/32", IMAPS.ip())).unwrap();
    let addr = IMAPS.to_string();
    let mut cmd = netns.command(
        "openssl",
        ["s_server", "-accept", &addr, "-alpn", "imap", "-www"],
    );
    cmd.arg("-cert").arg(&cert).arg("-key").arg(&key);
    let server = Running::spawn(cmd).unwrap();
    let wait = format!(
        "for i in $(seq 100); do ss -Hltn | grep -q ' {IMAPS} ' && exit 0; sleep 0.05; done; \
         exit 1"
    );
    run_ok(netns.sh(&wait), T).unwrap_or_else(|e| panic!("s_server: {e:#}"));
    server
}

#[test]
fn tls_with_another_alpn_is_not_inspected() {
    if skip_unless_root("tls_with_another_alpn_is_not_inspected") {
        return;
    }
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let _server = imaps_server(&netns, &origins, dir.path());
    // The client trusts the origin's CA only: under interception it would fail to verify.
    let client = format!(
        "openssl s_client -connect {IMAPS} -servername {IMAPS_NAME} -alpn imap -CAfile {} \
         -verify_return_error </dev/null 2>&1 | grep -E '^(ALPN protocol|Verify return code):'",
        quote(&origins.ca_pem_path().to_string_lossy())
    );
    let out = run(&netns, &origins, &[], &[outcome("imaps", &client)]);
    let (code, text) = step(&out, "imaps");
    assert_run_eq!(out, code, Some(0), "imaps");
    let lines: Vec<&str> = text.lines().collect();
    assert_run_eq!(
        out,
        lines,
        ["ALPN protocol: imap", "Verify return code: 0 (ok)"],
        "the client spoke with the origin itself"
    );
    assert_run_eq!(out, passed_through(&out, IMAPS, "not HTTPS"), 1, "");
    let conn = audit::find_connection(&out.records, &IMAPS.ip().to_string(), 443).unwrap();
    assert_run_eq!(out, audit::strings(&conn["tls"]["alpn"]), ["imap"], "");
    assert_run_eq!(out, conn["tls"]["sni"], IMAPS_NAME, "");
    assert_run!(
        out,
        audit::requests(&out.records).is_empty(),
        "request records"
    );
}
