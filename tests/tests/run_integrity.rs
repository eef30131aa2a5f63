//! `warden run` against a job that tries to get around it or to leak through it: a process that
//! moves into another network namespace (its connects must fail, not leave unrecorded), and
//! credentials on command lines (they must never reach the audit log).
//!
//! Needs root (skips loudly otherwise); each test builds its own namespace and origins.

use std::time::Duration;

use tests::{Netns, Origins, WardenRun, assert_run, audit, clients, skip_unless_root};

const T: Duration = Duration::from_secs(30);

/// Python connecting to `192.0.2.10:80` from a fresh network namespace, where the test origin's
/// address also exists (so without Warden the connect would reach a listener there or time out):
/// it must fail at once with EPERM. A loopback connection in that namespace is not Warden's
/// business and must still work.
const OTHER_NETNS_PY: &str = r#"
import errno, socket, sys
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen()
c = socket.create_connection(srv.getsockname(), timeout=5); c.close()
s = socket.socket()
s.settimeout(5)
try:
    s.connect(("192.0.2.10", 80))
except PermissionError as e:
    print("refused", errno.errorcode[e.errno]); sys.exit(0)
print("connected or other outcome: NOT refused"); sys.exit(1)
"#;

#[test]
fn other_network_namespace_fails_closed() {
    if skip_unless_root("other_network_namespace_fails_closed") {
        return;
    }
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    let inner = format!(
        "unshare -n sh -c 'ip link set lo up && ip addr add 192.0.2.10/32 dev lo && python3 -c {}'",
        clients::quote(OTHER_NETNS_PY).replace('\'', "'\\''")
    );
    let script = clients::script(&[
        inner,
        clients::curl("http://http.example/same-netns", &origins.ca_pem_path()),
    ]);
    let out = WardenRun::new(&netns)
        .timeout(T)
        .cmd(["sh", "-c", &script])
        .run()
        .unwrap();
    out.assert_success();
    assert_run!(
        out,
        out.stdout.contains("refused EPERM"),
        "the other namespace was refused"
    );
    let conns = audit::connections(&out.records);
    assert_run!(
        out,
        conns.len() == 1 && conns[0]["http"]["url"] == "/same-netns",
        "only the same-namespace connection is recorded (and it still works)"
    );
}

#[test]
fn credentials_on_command_lines_never_reach_the_log() {
    if skip_unless_root("credentials_on_command_lines_never_reach_the_log") {
        return;
    }
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    let ca = origins.ca_pem_path();
    let secrets = [
        "s3cr3t-bearer-value",
        "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        "pa55w0rd",
        "X-Amz-Signature=deadbeef",
    ];
    let script = clients::script(&[
        format!(
            "curl -sS --fail --cacert {} -H 'Authorization: Bearer {}' 'https://tls.example/a?{}'",
            clients::quote(&ca.to_string_lossy()),
            secrets[0],
            secrets[3]
        ),
        format!(
            "curl -sS --fail 'http://user:{}@http.example/b' -H 'X-Token: {}'",
            secrets[2], secrets[1]
        ),
    ]);
    let out = WardenRun::new(&netns)
        .timeout(T)
        .cmd(["sh", "-c", &script])
        .run()
        .unwrap();
    out.assert_success();
    let log = std::fs::read_to_string(&out.audit_log).unwrap();
    assert_run!(
        out,
        audit::connections(&out.records).len() == 2,
        "both requests recorded"
    );
    for secret in secrets {
        assert_run!(out, !log.contains(secret), "{secret:?} is in the audit log");
        assert_run!(
            out,
            !out.stderr.contains(secret),
            "{secret:?} is in warden's summary"
        );
    }
    assert_run!(
        out,
        log.contains("Authorization: ***"),
        "header name kept, value masked"
    );
}
