//! WebSocket (an HTTP/1.1 `Upgrade`) through TLS inspection: the upgrade reaches the origin and
//! the echo comes back intact, through an origin that also speaks h2 (Warden must then speak
//! HTTP/1.1 to it, as the client offered) and one that speaks only HTTP/1.1. The `request`
//! record is flagged `upgraded` with status 101, and, as documented, its bytes include the
//! upgraded stream; the `connection` record, written when the connection closes, spans it too.
//!
//! The client is the harness's: it ends by exiting, without a TLS `close_notify`, as many
//! clients do.
//!
//! Needs root (skips loudly otherwise). Each test builds its own namespace and origins.

use std::time::Duration;

use tests::clients::{self, exit_of, outcome, output_of};
use tests::inspect::{HttpsOrigin, InspectOrigins};
use tests::{
    Netns, Origins, RunOutput, WardenRun, assert_run, assert_run_eq, audit, skip_unless_root,
};

/// Deadline for one `warden run`; passing runs take a few seconds.
const T: Duration = Duration::from_secs(60);
/// The binary message each client sends (and expects back), besides a short text one.
const LEN: usize = 1024 * 1024;

/// Runs the WebSocket client against h2.example and h1.example under inspection, checks both
/// echoes came back, and returns the run.
fn websocket_run(s: &Setup) -> RunOutput {
    let steps = s.origins_used().map(|o| {
        outcome(
            o.name(),
            &clients::python_websocket(o.name(), "/ws", LEN, None),
        )
    });
    let out = WardenRun::new(&s.netns)
        .timeout(T)
        .args(["--tls-inspection", "--upstream-ca"])
        .args([s.origins.ca_pem_path()])
        .cmd(["sh", "-c", &steps.join("\n")])
        .run()
        .unwrap();
    out.assert_success();
    for o in s.origins_used() {
        let name = o.name();
        assert_run_eq!(out, exit_of(&out.stdout, name), Some(0), "{name}");
        let text = output_of(&out.stdout, name).unwrap_or_default();
        assert_run_eq!(out, text, format!("websocket ok {LEN} bytes"), "{name}");
    }
    out
}

struct Setup {
    netns: Netns,
    origins: Origins,
    inspect: InspectOrigins,
}

impl Setup {
    fn new() -> Setup {
        let netns = Netns::new().unwrap();
        let origins = Origins::start(&netns).unwrap();
        let inspect = InspectOrigins::start(&netns, &origins).unwrap();
        Setup {
            netns,
            origins,
            inspect,
        }
    }

    fn origins_used(&self) -> [&HttpsOrigin; 2] {
        [self.inspect.h2(), self.inspect.h1()]
    }
}

/// The one `request` record for `origin`'s `/ws`.
#[track_caller]
fn ws_record<'a>(out: &'a RunOutput, origin: &HttpsOrigin) -> &'a serde_json::Value {
    let url = origin.url("/ws");
    let found = audit::requests_for(&out.records, &url);
    assert_run_eq!(out, found.len(), 1, "request records for {url}");
    found[0]
}

#[test]
fn websocket_echo_works_and_is_flagged_upgraded() {
    if skip_unless_root("websocket_echo_works_and_is_flagged_upgraded") {
        return;
    }
    let s = Setup::new();
    let out = websocket_run(&s);
    for origin in s.origins_used() {
        let r = ws_record(&out, origin);
        assert_run_eq!(out, r["http"]["status"], 101, "{r}");
        assert_run_eq!(out, r["http"]["method"], "GET", "{r}");
        assert_run_eq!(out, r["http"]["version"], "HTTP/1.1", "{r}");
        assert_run!(
            out,
            audit::has_flag(r, "upgraded"),
            "not flagged upgraded: {r}"
        );
        let seen = origin.requests_to("/ws");
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(seen[0].header("upgrade"), Some("websocket"), "{seen:?}");
        assert_eq!(seen[0].version, "HTTP/1.1", "{seen:?}");
        assert!(origin.errors().is_empty(), "{:?}", origin.errors());
    }
    let inspected = audit::connections_flagged(&out.records, "inspected");
    assert_run_eq!(out, inspected.len(), 2, "inspected connections");
}

#[test]
fn websocket_request_record_counts_the_upgraded_stream() {
    if skip_unless_root("websocket_request_record_counts_the_upgraded_stream") {
        return;
    }
    let s = Setup::new();
    let out = websocket_run(&s);
    for origin in s.origins_used() {
        let r = ws_record(&out, origin);
        // Both messages, framed (and masked going up), each way.
        for dir in ["up", "down"] {
            let n = r["bytes"][dir].as_u64().unwrap_or(0);
            assert_run!(out, n > LEN as u64, "{} {dir}: {n} bytes", origin.name());
        }
    }
}

#[test]
fn websocket_connection_record_spans_the_upgraded_stream() {
    if skip_unless_root("websocket_connection_record_spans_the_upgraded_stream") {
        return;
    }
    let s = Setup::new();
    let out = websocket_run(&s);
    for origin in s.origins_used() {
        let r = ws_record(&out, origin);
        let addr = origin.addr();
        let conn = out.one_connection(origin.name(), |c| {
            audit::is_to(c, &addr.ip().to_string(), addr.port())
        });
        // TLS on the client's side: at least the messages, each way.
        for dir in ["up", "down"] {
            let n = conn["bytes"][dir].as_u64().unwrap_or(0);
            assert_run!(out, n > LEN as u64, "{} {dir}: {n} bytes", origin.name());
        }
        // The connection lasted at least as long as the request on it.
        let (c, q) = (&conn["duration_ms"], &r["duration_ms"]);
        assert_run!(
            out,
            c.as_u64() >= q.as_u64(),
            "connection {c} ms, request {q} ms"
        );
    }
}
