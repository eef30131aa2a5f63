//! TLS inspection with the clients a CI job runs most, none given a CA option of its own:
//! curl (h2 and HTTP/1.1), Python's `urllib` and `requests`, and Node's `fetch` all work under
//! `warden run --tls-inspection`, trusting Warden's CA through the system store and the
//! variables Warden sets. Each HTTP request is a `request` record with its full URL, method,
//! status and version, inside a `connection` record flagged `inspected`; the origin saw every
//! request, in h2 when client and origin both speak it, and a client offering h2 to an origin
//! that speaks only HTTP/1.1 gets HTTP/1.1. git and pip are in `inspect_git_pip.rs`.
//!
//! Needs root (skips loudly otherwise). Each test builds its own namespace and origins.

use std::time::Duration;

use serde_json::Value;
use tests::clients::{self, Http, exit_of, outcome, output_of};
use tests::inspect::{H1_ADDR, H2_ADDR, InspectOrigins};
use tests::{
    Netns, Origins, RunOutput, WardenRun, assert_run, assert_run_eq, audit, skip_unless_root,
};

/// Deadline for one `warden run`; passing runs take a few seconds.
const T: Duration = Duration::from_secs(60);

struct Setup {
    netns: Netns,
    origins: Origins,
    inspect: InspectOrigins,
}

fn setup() -> Setup {
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    let inspect = InspectOrigins::start(&netns, &origins).unwrap();
    Setup {
        netns,
        origins,
        inspect,
    }
}

/// `warden run --tls-inspection --upstream-ca CA -- sh -c SCRIPT`, the test CA being what
/// Warden verifies the origins against (the clients are never told about it).
fn run_inspected(s: &Setup, script: &str) -> RunOutput {
    WardenRun::new(&s.netns)
        .timeout(T)
        .args(["--tls-inspection", "--upstream-ca"])
        .args([s.origins.ca_pem_path()])
        .cmd(["sh", "-c", script])
        .run()
        .unwrap()
}

/// The step `label` of `out`'s script: it exited 0 and printed this.
#[track_caller]
fn step_ok(out: &RunOutput, label: &str) -> String {
    let code = exit_of(&out.stdout, label);
    assert_run_eq!(out, code, Some(0), "step {label}");
    output_of(&out.stdout, label).unwrap_or_default()
}

/// The one `request` record for `url`, checked: `GET`, status 200, HTTP `version`, made by
/// `exe` (a file name prefix), judged `audited` like its connection.
#[track_caller]
fn get_record<'a>(out: &'a RunOutput, url: &str, version: &str, exe: &str) -> &'a Value {
    let found = audit::requests_for(&out.records, url);
    assert_run_eq!(out, found.len(), 1, "request records for {url}");
    let r = found[0];
    assert_run_eq!(out, r["http"]["method"], "GET", "{url}");
    assert_run_eq!(out, r["http"]["status"], 200, "{url}");
    assert_run_eq!(out, r["http"]["version"], version, "{url}");
    assert_run_eq!(out, r["decision"], "audited", "{url}");
    assert_run!(out, audit::exe_name(r).starts_with(exe), "{url} by {exe}");
    r
}

/// Every connection record to `addr` is flagged `inspected`, and there are `n`.
#[track_caller]
fn inspected_connections(out: &RunOutput, addr: std::net::SocketAddr, n: usize) {
    let conns = audit::connections_to(&out.records, &addr.ip().to_string(), addr.port());
    assert_run_eq!(out, conns.len(), n, "connections to {addr}");
    for c in conns {
        assert_run!(out, audit::has_flag(c, "inspected"), "{addr} not inspected");
        assert_run!(out, !audit::has_flag(c, "not-inspected"), "{addr}");
    }
}

#[test]
fn curl_speaks_h2_end_to_end_and_http1_where_the_origin_does() {
    if skip_unless_root("curl_speaks_h2_end_to_end_and_http1_where_the_origin_does") {
        return;
    }
    let s = setup();
    let (h2, h1) = (s.inspect.h2(), s.inspect.h1());
    let script = [
        outcome(
            "h2",
            &clients::curl_get(&h2.url("/curl/h2?a=1&b=2"), Http::V2, None),
        ),
        outcome(
            "h1",
            &clients::curl_get(&h2.url("/curl/h1"), Http::V1, None),
        ),
        outcome(
            "h1-only",
            &clients::curl_get(&h1.url("/curl/offered-h2"), Http::V2, None),
        ),
    ]
    .join("\n");
    let out = run_inspected(&s, &script);
    out.assert_success();

    let text = step_ok(&out, "h2");
    let want = "origin=h2.example version=HTTP/2.0 method=GET target=/curl/h2?a=1&b=2";
    assert_run!(out, text.contains(want), "h2 answer");
    assert_run!(out, text.contains("status 200 version 2"), "curl got h2");
    let text = step_ok(&out, "h1");
    assert_run!(out, text.contains("version=HTTP/1.1"), "h1 answer");
    assert_run!(out, text.contains("status 200 version 1.1"), "curl got 1.1");
    // Offered h2 by curl, but h1.example speaks only HTTP/1.1: so does Warden, to curl.
    let text = step_ok(&out, "h1-only");
    assert_run!(out, text.contains("origin=h1.example version=HTTP/1.1"), "");
    assert_run!(out, text.contains("status 200 version 1.1"), "curl got 1.1");

    let r = get_record(
        &out,
        "https://h2.example/curl/h2?a=1&b=2",
        "HTTP/2.0",
        "curl",
    );
    assert_run_eq!(out, r["dst"]["name"], "h2.example", "request dst");
    assert_run_eq!(out, r["dst"]["ip"], H2_ADDR.ip().to_string(), "request dst");
    get_record(&out, "https://h2.example/curl/h1", "HTTP/1.1", "curl");
    get_record(
        &out,
        "https://h1.example/curl/offered-h2",
        "HTTP/1.1",
        "curl",
    );
    assert_run_eq!(out, audit::requests(&out.records).len(), 3, "requests");
    for r in audit::requests(&out.records) {
        assert_run!(
            out,
            !audit::has_flag(r, "incomplete"),
            "a whole response: {r}"
        );
    }
    inspected_connections(&out, H2_ADDR, 2);
    inspected_connections(&out, H1_ADDR, 1);
    let offered = audit::find_connection(&out.records, &H1_ADDR.ip().to_string(), 443).unwrap();
    assert_run_eq!(
        out,
        audit::strings(&offered["tls"]["alpn"]),
        ["h2", "http/1.1"],
        ""
    );

    // The origins saw each request, in the version curl was given.
    let seen = &h2.requests_to("/curl/h2")[0];
    assert!(seen.is_h2(), "{seen:?}");
    assert_eq!(seen.alpn.as_deref(), Some("h2"));
    assert_eq!(seen.sni.as_deref(), Some("h2.example"));
    assert_eq!(seen.target, "/curl/h2?a=1&b=2");
    assert!(!h2.requests_to("/curl/h1")[0].is_h2());
    let seen = &h1.requests_to("/curl/offered-h2")[0];
    assert_eq!(seen.version, "HTTP/1.1");
    assert_eq!(seen.alpn.as_deref(), Some("http/1.1"));
}

#[test]
fn python_and_node_clients_work_through_inspection() {
    if skip_unless_root("python_and_node_clients_work_through_inspection") {
        return;
    }
    let s = setup();
    let h2 = s.inspect.h2();
    let cases = [
        ("urllib", "/py/urllib?q=1", "python"),
        ("requests", "/py/requests?q=2", "python"),
        ("fetch", "/node/fetch?q=3", "node"),
    ];
    let script: Vec<String> = cases
        .iter()
        .map(|(label, path, _)| {
            let url = h2.url(path);
            let client = match *label {
                "urllib" => clients::python_urllib(&url, None),
                "requests" => clients::python_requests(&url, None),
                _ => clients::node_fetch(&url, None),
            };
            outcome(label, &client)
        })
        .collect();
    let out = run_inspected(&s, &script.join("\n"));
    out.assert_success();

    for (label, path, exe) in cases {
        let text = step_ok(&out, label);
        // None of them speaks h2: the origin is asked in HTTP/1.1.
        let want =
            format!("status 200\norigin=h2.example version=HTTP/1.1 method=GET target={path}");
        assert_run_eq!(out, text, want, "{label}");
        let r = get_record(&out, &h2.url(path), "HTTP/1.1", exe);
        // The request belongs to the connection of the same process.
        let pid = &r["process"]["pid"];
        let conn = out.one_connection(label, |c| c["process"]["pid"] == *pid);
        assert_run!(out, audit::has_flag(conn, "inspected"), "{label}");
        assert_run_eq!(out, conn["tls"]["sni"], "h2.example", "{label}");
        let target = path.split('?').next().unwrap();
        let seen = h2.requests_to(target);
        assert_eq!(seen.len(), 1, "{label}: {seen:?}");
        assert_eq!(seen[0].target, path);
    }
    inspected_connections(&out, H2_ADDR, 3);
    assert_run_eq!(out, audit::requests(&out.records).len(), 3, "requests");
    for r in audit::requests(&out.records) {
        assert_run!(
            out,
            !audit::has_flag(r, "incomplete"),
            "a whole response: {r}"
        );
    }
}
