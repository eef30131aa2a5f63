//! What an intercepting proxy must carry intact, checked end to end under `warden run
//! --tls-inspection` with clients that trust Warden only through their environment: a 10 MiB
//! upload streamed to an echo and back, in h2 and in HTTP/1.1 (its `request` record counting
//! the bodies); gRPC-style h2 trailers; and keep-alive, several requests on one client
//! connection staying one connection to the origin. WebSocket upgrades are in
//! `inspect_websocket.rs`.
//!
//! Needs root (skips loudly otherwise). Each test builds its own namespace and origins.

use std::net::SocketAddr;
use std::time::Duration;

use tests::clients::{self, Http, exit_of, outcome, output_of, quote};
use tests::inspect::{H1_ADDR, H2_ADDR, HttpsOrigin, InspectOrigins};
use tests::{
    Netns, Origins, RunOutput, WardenRun, assert_run, assert_run_eq, audit, skip_unless_root,
};

/// Deadline for one `warden run`; passing runs take a few seconds.
const T: Duration = Duration::from_secs(60);
const MIB: u64 = 1024 * 1024;

fn run_inspected(netns: &Netns, origins: &Origins, steps: &[String]) -> RunOutput {
    let out = WardenRun::new(netns)
        .timeout(T)
        .args(["--tls-inspection", "--upstream-ca"])
        .args([origins.ca_pem_path()])
        .cmd(["sh", "-c", &steps.join("\n")])
        .run()
        .unwrap();
    out.assert_success();
    out
}

/// What step `label` printed; it must have exited 0.
#[track_caller]
fn step_ok(out: &RunOutput, label: &str) -> String {
    assert_run_eq!(out, exit_of(&out.stdout, label), Some(0), "step {label}");
    output_of(&out.stdout, label).unwrap_or_default()
}

#[test]
fn ten_mib_posts_are_echoed_over_h2_and_http1() {
    if skip_unless_root("ten_mib_posts_are_echoed_over_h2_and_http1") {
        return;
    }
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    let inspect = InspectOrigins::start(&netns, &origins).unwrap();
    let len = 10 * MIB;
    let steps = [(Http::V2, "h2"), (Http::V1, "h1")].map(|(http, label)| {
        let url = inspect.h2().url(&format!("/echo?via={label}"));
        outcome(
            label,
            &clients::curl_post_echo(&url, len as usize, http, None),
        )
    });
    let out = run_inspected(&netns, &origins, &steps);
    for (label, version, recorded) in [("h2", "2", "HTTP/2.0"), ("h1", "1.1", "HTTP/1.1")] {
        let want = format!("echo ok {len} bytes status 200 version {version}");
        assert_run_eq!(out, step_ok(&out, label), want, "{label}");
        let url = format!("https://h2.example/echo?via={label}");
        let found = audit::requests_for(&out.records, &url);
        assert_run_eq!(out, found.len(), 1, "{url}");
        let r = found[0];
        assert_run_eq!(out, r["http"]["method"], "POST", "{url}");
        assert_run_eq!(out, r["http"]["status"], 200, "{url}");
        assert_run_eq!(out, r["http"]["version"], recorded, "{url}");
        // A request record counts the bodies: exactly what went up and came back.
        assert_run_eq!(out, r["bytes"]["up"], len, "{url} body up");
        assert_run_eq!(out, r["bytes"]["down"], len, "{url} body down");
    }
    // The connection records count TLS on the client's side: the bodies and a little more.
    for c in audit::connections_to(&out.records, &H2_ADDR.ip().to_string(), 443) {
        assert_run!(out, audit::has_flag(c, "inspected"), "{c}");
        for dir in ["up", "down"] {
            let n = c["bytes"][dir].as_u64().unwrap_or(0);
            assert_run!(out, (len..len + MIB).contains(&n), "{dir} {n} in {c}");
        }
    }
    let seen = inspect.h2().requests_to("/echo");
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen[0].is_h2() && !seen[1].is_h2(), "{seen:?}");
    assert!(seen.iter().all(|r| r.body_len() == len), "{seen:?}");
}

#[test]
fn h2_trailers_reach_the_client() {
    if skip_unless_root("h2_trailers_reach_the_client") {
        return;
    }
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    let inspect = InspectOrigins::start(&netns, &origins).unwrap();
    let url = inspect.h2().url("/trailers");
    let out = run_inspected(
        &netns,
        &origins,
        &[outcome("node", &clients::node_h2_trailers(&url, None))],
    );
    let text = step_ok(&out, "node");
    let lines: Vec<&str> = text.lines().collect();
    let want = [
        "status 200",
        "trailer grpc-status: 0",
        "trailer grpc-message: ok",
        "trailers follow",
    ];
    assert_run_eq!(out, lines, want, "node's http2 client");
    // Node's http2 client sends `:authority: h2.example:443`, which the URL may keep.
    let urls = [url.as_str(), "https://h2.example:443/trailers"];
    let found: Vec<_> = urls
        .iter()
        .flat_map(|u| audit::requests_for(&out.records, u))
        .collect();
    assert_run_eq!(out, found.len(), 1, "{url}");
    assert_run_eq!(out, found[0]["http"]["method"], "GET", "");
    assert_run_eq!(out, found[0]["http"]["version"], "HTTP/2.0", "");
    assert_run_eq!(out, found[0]["http"]["status"], 200, "");
    let seen = &inspect.h2().requests_to("/trailers")[0];
    assert!(seen.is_h2(), "{seen:?}");
    assert_eq!(seen.header("te"), Some("trailers"));
}

/// One curl fetching `paths` of `origin` in turn, reusing its connection: prints
/// `status NNN version V connects N` per URL (`N` is how many new connections that one took).
fn curl_several(origin: &HttpsOrigin, http: &str, paths: &[&str]) -> String {
    let urls: Vec<String> = paths
        .iter()
        .map(|p| format!("-o /dev/null {}", quote(&origin.url(p))))
        .collect();
    format!(
        "curl -sS --fail --max-time 20 {http} \
         -w 'status %{{http_code}} version %{{http_version}} connects %{{num_connects}}\\n' {}",
        urls.join(" ")
    )
}

#[test]
fn keep_alive_stays_one_connection_each_way() {
    if skip_unless_root("keep_alive_stays_one_connection_each_way") {
        return;
    }
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    let inspect = InspectOrigins::start(&netns, &origins).unwrap();
    let paths = ["/ka/1", "/ka/2?x=y", "/ka/3"];
    // HTTP/1.1 keep-alive to h1.example, h2 streams to h2.example.
    let cases: [(&HttpsOrigin, SocketAddr, &str, &str); 2] = [
        (inspect.h1(), H1_ADDR, "--http1.1", "1.1"),
        (inspect.h2(), H2_ADDR, "--http2", "2"),
    ];
    let steps = cases.map(|(o, _, http, _)| outcome(o.name(), &curl_several(o, http, &paths)));
    let out = run_inspected(&netns, &origins, &steps);
    for (origin, addr, _, version) in cases {
        let name = origin.name();
        let lines: Vec<String> = step_ok(&out, name).lines().map(str::to_owned).collect();
        let want: Vec<String> = [1, 0, 0]
            .iter()
            .map(|n| format!("status 200 version {version} connects {n}"))
            .collect();
        assert_run_eq!(out, lines, want, "curl reused its connection to {name}");
        let conns = audit::connections_to(&out.records, &addr.ip().to_string(), 443);
        assert_run_eq!(out, conns.len(), 1, "connection records to {name}");
        assert_run!(out, audit::has_flag(conns[0], "inspected"), "{name}");
        let urls: Vec<String> = audit::requests_to(&out.records, &origin.url("/ka/"))
            .iter()
            .map(|r| r["http"]["url"].as_str().unwrap_or_default().to_owned())
            .collect();
        let want: Vec<String> = paths.iter().map(|p| origin.url(p)).collect();
        assert_run_eq!(out, urls, want, "request records for {name}");
        // One client connection, one connection to the origin, carrying all three.
        assert_eq!(origin.connections(), 1, "{name}: {:?}", origin.accepted());
        assert_eq!(origin.requests_to("/ka/1").len(), 1, "{name}");
        assert_eq!(origin.requests().len(), paths.len(), "{name}");
    }
}
