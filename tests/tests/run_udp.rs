//! UDP under `warden run`: QUIC (UDP port 443) is refused with EPERM, connected or not, over IPv4
//! and IPv6, so clients fall back to TCP where Warden sees the server name; other UDP and
//! loopback QUIC are left alone, and a program outside the cgroup is not affected.
//!
//! Needs root (skips loudly otherwise).

use std::time::Duration;

use tests::{Netns, WardenRun, assert_run, clients, skip_unless_root};

const QUIC_PY: &str = r#"
import socket
out = []
for fam, host in ((socket.AF_INET, "192.0.2.10"), (socket.AF_INET6, "2001:db8::10"), (socket.AF_INET6, "::ffff:192.0.2.10")):
    for how in ("sendto", "connect"):
        s = socket.socket(fam, socket.SOCK_DGRAM)
        try:
            if how == "sendto":
                s.sendto(b"q", (host, 443))
            else:
                s.connect((host, 443))
            out.append(f"{how}:{host}:open")
        except PermissionError:
            out.append(f"{how}:{host}:EPERM")
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.sendto(b"x", ("192.0.2.10", 8443)); out.append("other-udp:open")
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.sendto(b"x", ("127.0.0.1", 443)); out.append("loopback-quic:open")
print(" ".join(out))
"#;

#[test]
fn quic_is_refused_other_udp_is_not() {
    if skip_unless_root("quic_is_refused_other_udp_is_not") {
        return;
    }
    let netns = Netns::new().unwrap();
    let script = format!("python3 -c {}", clients::quote(QUIC_PY));
    let out = WardenRun::new(&netns)
        .timeout(Duration::from_secs(30))
        .cmd(["sh", "-c", &script])
        .run()
        .unwrap();
    out.assert_success();
    for host in ["192.0.2.10", "2001:db8::10", "::ffff:192.0.2.10"] {
        for how in ["sendto", "connect"] {
            let want = format!("{how}:{host}:EPERM");
            assert_run!(out, out.stdout.contains(&want), "{want}");
        }
    }
    assert_run!(
        out,
        out.stdout.contains("other-udp:open"),
        "UDP to 8443 is untouched"
    );
    assert_run!(
        out,
        out.stdout.contains("loopback-quic:open"),
        "loopback QUIC is untouched"
    );

    // The same program outside Warden's cgroup is not affected.
    let outside = netns.command("python3", ["-c", QUIC_PY]).output().unwrap();
    let said = String::from_utf8_lossy(&outside.stdout);
    assert!(!said.contains("EPERM"), "outside the cgroup: {said}");
}
