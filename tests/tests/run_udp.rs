//! UDP under `warden run`: QUIC (UDP port 443) is refused with EPERM, connected or not, over IPv4
//! and IPv6, so clients fall back to TCP where Warden sees the server name; other UDP goes
//! through in audit mode and only where an address rule allows it in block mode; every flow
//! leaves one `udp` record; loopback and programs outside the cgroup are not affected.
//!
//! Needs root (skips loudly otherwise).

use std::time::Duration;

use serde_json::Value;
use tests::{Netns, WardenRun, assert_run, assert_run_eq, audit, clients, skip_unless_root};

/// The `udp` records to `ip:port`.
fn udp_to<'a>(records: &'a [Value], ip: &str, port: u16) -> Vec<&'a Value> {
    audit::of_kind(records, "udp")
        .into_iter()
        .filter(|r| r["dst"]["ip"] == ip && r["dst"]["port"] == port)
        .collect()
}

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

const BLOCK_PY: &str = r#"
import socket
out = []
for host, port in (("192.0.2.10", 5353), ("192.0.2.10", 9999), ("198.51.100.10", 5353), ("2001:db8::10", 7777)):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    try:
        for _ in range(3):
            s.sendto(b"x", (host, port))
        out.append(f"{host}:{port}:sent")
    except PermissionError:
        out.append(f"{host}:{port}:EPERM")
c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    c.connect(("198.51.100.10", 123)); out.append("connect:123:open")
except PermissionError:
    out.append("connect:123:EPERM")
print(" ".join(out))
"#;

#[test]
fn block_mode_udp_only_where_an_address_rule_allows() {
    if skip_unless_root("block_mode_udp_only_where_an_address_rule_allows") {
        return;
    }
    let netns = Netns::new().unwrap();
    let script = format!("python3 -c {}", clients::quote(BLOCK_PY));
    let out = WardenRun::new(&netns)
        .timeout(Duration::from_secs(30))
        .args([
            "--egress-policy",
            "block",
            // Names never allow UDP: tls.example resolves to 192.0.2.10 but allows nothing here.
            "--allowed-endpoints",
            "192.0.2.0/24:5353 [2001:db8::/32] tls.example:9999",
        ])
        .cmd(["sh", "-c", &script])
        .run()
        .unwrap();
    out.assert_success();
    for said in [
        "192.0.2.10:5353:sent",
        "192.0.2.10:9999:EPERM",
        "198.51.100.10:5353:EPERM",
        "2001:db8::10:7777:sent",
        "connect:123:EPERM",
    ] {
        assert_run!(out, out.stdout.contains(said), "{said}");
    }
    let expect = [
        ("192.0.2.10", 5353, "allowed", Some("192.0.2.0/24:5353")),
        ("192.0.2.10", 9999, "blocked", None),
        ("198.51.100.10", 5353, "blocked", None),
        ("2001:db8::10", 7777, "allowed", Some("2001:db8::/32")),
    ];
    assert_run!(
        out,
        udp_to(&out.records, "198.51.100.10", 123).is_empty(),
        "a refused UDP connect() is not recorded"
    );
    for (ip, port, decision, rule) in expect {
        let flows = udp_to(&out.records, ip, port);
        assert_run_eq!(
            out,
            flows.len(),
            1,
            "one record for the flow to {ip}:{port}"
        );
        assert_run_eq!(out, flows[0]["decision"], decision, "{}", flows[0]);
        if let Some(rule) = rule {
            assert_run_eq!(out, flows[0]["rule"], rule, "{}", flows[0]);
        }
    }
}

const DNS_AND_V6_PY: &str = r#"
import socket
out = []
for host, port in (("192.0.2.10", 53), ("2001:db8::10", 4000), ("192.0.2.10", 4000)):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    try:
        s.sendto(b"not dns at all", (host, port)); out.append(f"{host}:{port}:sent")
    except PermissionError:
        out.append(f"{host}:{port}:EPERM")
print(" ".join(out))
"#;

#[test]
fn without_dns_layer_block_mode_keeps_port_53_to_resolvers_and_ipv6_rules_off_ipv4() {
    if skip_unless_root("without_dns_layer_block_mode_keeps_port_53_to_resolvers") {
        return;
    }
    let netns = Netns::new().unwrap();
    let script = format!("python3 -c {}", clients::quote(DNS_AND_V6_PY));
    let out = WardenRun::new(&netns)
        .timeout(Duration::from_secs(30))
        // `::/0` is every IPv6 address and no IPv4 one. With `--no-dns` port 53 is plain UDP,
        // open only to the resolvers of resolv.conf (192.0.2.10 is not one).
        .args([
            "--no-dns",
            "--egress-policy",
            "block",
            "--allowed-endpoints",
            "::/0",
        ])
        .cmd(["sh", "-c", &script])
        .run()
        .unwrap();
    out.assert_success();
    for said in [
        "192.0.2.10:53:EPERM",
        "2001:db8::10:4000:sent",
        "192.0.2.10:4000:EPERM",
    ] {
        assert_run!(out, out.stdout.contains(said), "{said}");
    }
    let dns = udp_to(&out.records, "192.0.2.10", 53);
    assert_run_eq!(out, dns.len(), 1, "the refused port-53 flow is recorded");
    assert_run_eq!(out, dns[0]["decision"], "blocked", "{}", dns[0]);
}

const SOCKETS_PY: &str = r#"
import socket
out = []
for name, fam, typ, proto in (
    ("raw-icmp", socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP),
    ("raw-icmp6", socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6),
    ("tcp", socket.AF_INET, socket.SOCK_STREAM, 0),
    ("udp6", socket.AF_INET6, socket.SOCK_DGRAM, 0),
):
    try:
        socket.socket(fam, typ, proto).close(); out.append(f"{name}:ok")
    except PermissionError as e:
        out.append(f"{name}:{'EPERM' if e.errno == 1 else e.errno}")
print(" ".join(out))
"#;

#[test]
fn block_mode_refuses_sockets_warden_cannot_see() {
    if skip_unless_root("block_mode_refuses_sockets_warden_cannot_see") {
        return;
    }
    let netns = Netns::new().unwrap();
    let script = format!("python3 -c {}", clients::quote(SOCKETS_PY));
    for (mode, raw) in [("block", "EPERM"), ("audit", "ok")] {
        let out = WardenRun::new(&netns)
            .timeout(Duration::from_secs(30))
            .args(["--egress-policy", mode])
            .cmd(["sh", "-c", &script])
            .run()
            .unwrap();
        out.assert_success();
        for said in [
            format!("raw-icmp:{raw}"),
            format!("raw-icmp6:{raw}"),
            "tcp:ok".into(),
            "udp6:ok".into(),
        ] {
            assert_run!(out, out.stdout.contains(&said), "{mode} mode: {said}");
        }
    }
}
