//! Plain HTTP in block mode is followed request by request: a later request on the same
//! connection that names another host (a shared address routes by `Host`) ends the connection,
//! while bodies of allowed requests pass untouched.
//!
//! Needs root (skips loudly otherwise).

use std::time::Duration;

use tests::{
    Netns, Origins, WardenRun, assert_run, assert_run_eq, audit, clients, skip_unless_root,
};

/// Two pipelined requests on one connection: the first to the allowed host, the second naming
/// another host.
const PIPELINED_PY: &str = r#"
import socket
s = socket.create_connection(("http.example", 80), timeout=10)
s.sendall(b"GET /first HTTP/1.1\r\nHost: http.example\r\n\r\nGET /second HTTP/1.1\r\nHost: evil.example\r\n\r\n")
got = b""
try:
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
except OSError:
    pass
print("answered-first" if b"path=/first" in got else "no-first", "answered-second" if b"path=/second" in got else "no-second")
"#;

#[test]
fn a_later_request_to_another_host_ends_the_connection() {
    if skip_unless_root("a_later_request_to_another_host_ends_the_connection") {
        return;
    }
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    let script = clients::script(&[
        format!("python3 -c {}", clients::quote(PIPELINED_PY)),
        format!(
            "curl -sS --fail --max-time 20 -d 'GET /x HTTP/1.1' {}",
            clients::quote("http://http.example/post")
        ),
    ]);
    let out = WardenRun::new(&netns)
        .timeout(Duration::from_secs(30))
        .args([
            "--egress-policy",
            "block",
            "--allowed-endpoints",
            "http.example:80",
        ])
        .cmd(["sh", "-c", &script])
        .run()
        .unwrap();
    out.assert_success();
    assert_run!(
        out,
        out.stdout.contains("no-second"),
        "the second request was not answered"
    );
    assert_run!(
        out,
        out.stdout.contains("hello from http-origin path=/post"),
        "POST body passed"
    );
    let requested: Vec<String> = origins
        .http()
        .requests()
        .iter()
        .map(|r| r.target.clone())
        .collect();
    assert!(
        !requested.iter().any(|t| t == "/second"),
        "the origin never saw it: {requested:?}"
    );
    let pipelined = out.one_connection("pipelined", |r| {
        audit::is_to(r, "198.51.100.10", 80) && r["http"]["url"] == "/first"
    });
    assert_run_eq!(out, pipelined["decision"], "blocked", "{pipelined}");
    assert_run!(
        out,
        audit::has_flag(pipelined, "host-changed"),
        "{pipelined}"
    );
    let post = out.one_connection("post", |r| r["http"]["url"] == "/post");
    assert_run_eq!(out, post["decision"], "allowed", "{post}");
}
