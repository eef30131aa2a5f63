//! Source routing cannot carry traffic past the hooks. An IPv6 routing header set with
//! `setsockopt(IPV6_RTHDR)` (no privilege needed) would send a datagram or a SYN addressed to
//! `::1` — which the hooks leave alone — or a DNS query Warden redirected, to whatever address
//! the header names. Warden's egress program drops such packets in every mode; the sender gets
//! `EPERM`. The same program run outside Warden shows the header really reroutes here.
//!
//! Needs root (skips loudly otherwise).

use std::{
    io::{BufRead, BufReader},
    process::Stdio,
    time::Duration,
};

use tests::{Netns, WardenRun, assert_run, clients, skip_unless_root};

/// Where the routing header points: a documentation address on the namespace's `lo` (nothing
/// listens; the sniffer sees whether packets leave for it).
const SEGMENT: &str = "2001:db8::20";
const PORT: u16 = 9999;

const ROUTED_PY: &str = r#"
import socket, struct, sys
seg = socket.inet_pton(socket.AF_INET6, sys.argv[1])
# RFC 8754 segment routing header: next header, length 2 (one segment), type 4, segments left 0.
srh = struct.pack("BBBBBBH", 0, 2, 4, 0, 0, 0, 0) + seg
out = []
for label, dst in (("loopback", ("::1", int(sys.argv[2]))), ("dns", ("2001:db8::53", 53))):
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IPV6, 57, srh)
    try:
        s.sendto(b"routed-" + label.encode(), dst); out.append(label + ":sent")
    except PermissionError:
        out.append(label + ":EPERM")
print(" ".join(out))
"#;

/// Counts IPv6 packets with a routing header addressed to [`SEGMENT`] on the namespace's `lo`
/// while it runs (for `secs` seconds, after printing `ready`). A socket cannot see them: the
/// receiving stack drops segment-routed packets unless seg6 is enabled, but they left all the
/// same, and an attacker's host would take them.
const SNIFF_PY: &str = r#"
import socket, sys, time
seg = socket.inet_pton(socket.AF_INET6, sys.argv[1])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
s.bind(("lo", 0)); s.settimeout(0.2)
print("ready", flush=True)
end, n = time.time() + float(sys.argv[2]), 0
while time.time() < end:
    try:
        pkt, addr = s.recvfrom(65535)
    except socket.timeout:
        continue
    ip = pkt[14:]
    if addr[2] != socket.PACKET_OUTGOING and len(ip) > 40 and ip[0] >> 4 == 6 and ip[6] == 43 and ip[24:40] == seg:
        n += 1
print(n, flush=True)
"#;

/// Runs `f` while sniffing; returns how many routed packets left.
fn routed_while(netns: &Netns, f: impl FnOnce()) -> usize {
    let mut sniffer = netns
        .sh(&format!(
            "python3 -c {} {SEGMENT} 1.5",
            clients::quote(SNIFF_PY)
        ))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(sniffer.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "ready");
    f();
    let n = lines.next().unwrap().unwrap().trim().parse().unwrap();
    let _ = sniffer.wait();
    n
}

#[test]
fn routing_headers_are_dropped_in_every_mode() {
    if skip_unless_root("routing_headers_are_dropped_in_every_mode") {
        return;
    }
    let netns = Netns::new().unwrap();
    let script = format!("python3 -c {} {SEGMENT} {PORT}", clients::quote(ROUTED_PY));

    // Without Warden the header works: both datagrams leave for the segment's address.
    let routed = routed_while(&netns, || {
        let outside = netns.sh(&script).output().unwrap();
        let said = String::from_utf8_lossy(&outside.stdout);
        assert!(said.contains("loopback:sent"), "{said}");
    });
    assert!(routed >= 2, "the header reroutes here ({routed} packets)");

    for mode in ["audit", "block"] {
        let mut run = None;
        let routed = routed_while(&netns, || {
            run = Some(
                WardenRun::new(&netns)
                    .timeout(Duration::from_secs(30))
                    .args(["--egress-policy", mode])
                    .cmd(["sh", "-c", &script])
                    .run()
                    .unwrap(),
            );
        });
        let out = run.unwrap();
        out.assert_success();
        for said in ["loopback:EPERM", "dns:EPERM"] {
            assert_run!(out, out.stdout.contains(said), "{mode}: {said}");
        }
        assert_run!(out, routed == 0, "{mode}: {routed} routed packets left");
    }
}
