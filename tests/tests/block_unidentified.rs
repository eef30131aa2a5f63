//! A stream that starts as TLS or HTTP but never lets Warden read its name is judged by address
//! only: a name rule for the address (which allows nameless raw TCP) must not let it through,
//! since whoever receives it still routes by the name Warden could not see.
//!
//! Needs root (skips loudly otherwise).

use std::time::Duration;

use tests::{
    Netns, Origins, WardenRun, assert_run, assert_run_eq, audit, clients, skip_unless_root,
};

/// Sends the first bytes of a TLS ClientHello to tls.example:443, stalls past Warden's sniff
/// timeout, then sends a little more and reports whether the connection survived.
const STALLED_HELLO_PY: &str = r#"
import socket, time
s = socket.create_connection(("tls.example", 443), timeout=10)
s.sendall(bytes([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03]))
time.sleep(4)
try:
    s.sendall(b"\x03" * 64)
    data = s.recv(100)
    print("stalled-hello:" + ("closed" if not data else "answered"))
except OSError as e:
    print("stalled-hello:reset")
"#;

#[test]
fn an_unreadable_hello_is_judged_by_address_only() {
    if skip_unless_root("an_unreadable_hello_is_judged_by_address_only") {
        return;
    }
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    let script = format!("python3 -c {}", clients::quote(STALLED_HELLO_PY));
    let out = WardenRun::new(&netns)
        .timeout(Duration::from_secs(30))
        // tls.example resolves to 192.0.2.10, so a raw (nameless) connection there is allowed.
        .args([
            "--egress-policy",
            "block",
            "--allowed-endpoints",
            "tls.example",
        ])
        .cmd(["sh", "-c", &script])
        .run()
        .unwrap();
    out.assert_success();
    assert_run!(
        out,
        !out.stdout.contains("answered"),
        "the stalled hello was not relayed"
    );
    let record = out.one_connection("tls.example:443", |r| audit::is_to(r, "192.0.2.10", 443));
    assert_run_eq!(out, record["decision"], "blocked", "{record}");
    assert_run!(
        out,
        audit::has_flag(record, "unidentified"),
        "flags of {record}"
    );
    assert_eq!(origins.tls().connections(), 0, "the origin never saw it");
}
