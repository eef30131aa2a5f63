//! UDP flows: the policy's address rules as the kernel's allow-list, and one `udp` record per
//! flow the kernel reported.
//!
//! The kernel decides each datagram by a longest-prefix match in an LPM trie, so every prefix's
//! entry must already hold the ports of every rule that covers it: [`allow_entries`] folds them
//! in. QUIC (port 443) is refused and DNS (53) is left alone by the kernel before this applies.

use std::net::{IpAddr, SocketAddr};

use redirect_ebpf::{UDP_ALLOW_PORTS, UdpAllow};

use crate::{
    audit::{Decision, Dst, Kind, Process, Record},
    policy::{Host, Policy, Proto},
};

/// UDP port 443: QUIC, refused by the kernel in both modes.
const QUIC_PORT: u16 = 443;

/// One UDP flow (a socket sending to one destination), as first seen.
#[derive(Debug, Clone)]
pub struct UdpFlow {
    /// When the first datagram (or connect) happened.
    pub time: String,
    /// The process, resolved when the event arrived.
    pub process: Process,
    /// The destination.
    pub dst: SocketAddr,
    /// Whether the kernel refused it (block mode, no rule).
    pub denied: bool,
}

impl UdpFlow {
    /// The flow's `udp` record under `policy`.
    pub fn record(&self, policy: &Policy) -> Record {
        let mut r = Record::new(Kind::Udp);
        r.time.clone_from(&self.time);
        r.process = Some(self.process.clone());
        r.dst = Some(Dst {
            ip: self.dst.ip().to_string(),
            port: self.dst.port(),
            proto: "udp",
            name: None,
        });
        if self.dst.port() == QUIC_PORT {
            r.decision = Some(Decision::Blocked);
            r.reason = Some(
                "QUIC (UDP port 443) is refused in every mode so clients fall back to TCP".into(),
            );
            return r;
        }
        let rule = policy.ip_rule(self.dst.ip(), self.dst.port(), Proto::Udp);
        match (rule, self.denied) {
            (Some(rule), false) => {
                r.decision = Some(Decision::Allowed);
                r.rule = Some(rule.to_string());
                r.reason = Some(format!("allowed by {rule}"));
            }
            (_, denied) => {
                r.decision = Some(if denied {
                    Decision::Blocked
                } else {
                    Decision::Audited
                });
                r.reason = Some(format!(
                    "no address rule allows UDP to {} (names never allow UDP)",
                    self.dst
                ));
            }
        }
        r
    }
}

/// The LPM-trie entries for `policy`'s address rules: (v4-mapped address, prefix length in
/// bits of the 128-bit key, ports). A prefix inherits the ports of every rule covering it.
pub fn allow_entries(policy: &Policy) -> Vec<([u8; 16], u32, UdpAllow)> {
    let nets: Vec<(IpAddr, u8, Option<u16>)> = policy
        .endpoints()
        .iter()
        .filter_map(|e| match e.host() {
            Host::Network { addr, prefix } => Some((*addr, *prefix, e.port())),
            _ => None,
        })
        .collect();
    let mut entries: Vec<([u8; 16], u32, UdpAllow)> = Vec::new();
    for &(addr, prefix, _) in &nets {
        let (key, bits) = key(addr, prefix);
        if entries.iter().any(|(k, b, _)| *k == key && *b == bits) {
            continue;
        }
        let mut allow = UdpAllow::default();
        for &(outer, outer_prefix, port) in &nets {
            if !covers(outer, outer_prefix, addr, prefix) {
                continue;
            }
            match port {
                None => allow.any_port = 1,
                Some(p) if !allow.ports[..allow.nports as usize].contains(&p) => {
                    if (allow.nports as usize) < UDP_ALLOW_PORTS {
                        allow.ports[allow.nports as usize] = p;
                        allow.nports += 1;
                    } else {
                        tracing::warn!(
                            "more than {UDP_ALLOW_PORTS} UDP ports for {addr}/{prefix}; the rest stay refused"
                        );
                    }
                }
                Some(_) => {}
            }
        }
        entries.push((key, bits, allow));
    }
    entries
}

/// The 128-bit trie key of a network: IPv4 as `::ffff:a.b.c.d`, its prefix shifted by 96.
fn key(addr: IpAddr, prefix: u8) -> ([u8; 16], u32) {
    match addr {
        IpAddr::V4(v4) => (v4.to_ipv6_mapped().octets(), 96 + u32::from(prefix)),
        IpAddr::V6(v6) => (v6.octets(), u32::from(prefix)),
    }
}

/// Whether network `outer/op` contains network `inner/ip_`.
fn covers(outer: IpAddr, op: u8, inner: IpAddr, ip_: u8) -> bool {
    let ((o, obits), (i, ibits)) = (key(outer, op), key(inner, ip_));
    if obits > ibits {
        return false;
    }
    let (o, i) = (u128::from_be_bytes(o), u128::from_be_bytes(i));
    let mask = if obits == 0 {
        0
    } else {
        u128::MAX << (128 - obits)
    };
    o & mask == i & mask
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Mode, parse_endpoint_list};

    fn policy(list: &str) -> Policy {
        Policy::new(Mode::Block, parse_endpoint_list(list).unwrap())
    }

    #[test]
    fn prefixes_inherit_ports_of_covering_rules() {
        let entries = allow_entries(&policy(
            "10.0.0.0/8:53 10.1.0.0/16:123 203.0.113.7 tls.example",
        ));
        assert_eq!(
            entries.len(),
            3,
            "names never become UDP entries: {entries:?}"
        );
        let find = |bits: u32| entries.iter().find(|(_, b, _)| *b == bits).unwrap().2;
        let wide = find(96 + 8);
        assert_eq!(
            (wide.any_port, &wide.ports[..wide.nports as usize]),
            (0, &[53][..])
        );
        let narrow = find(96 + 16);
        assert_eq!(&narrow.ports[..narrow.nports as usize], &[53, 123]);
        assert_eq!(find(128).any_port, 1);
    }

    #[test]
    fn ipv6_and_v4_keys() {
        let entries = allow_entries(&policy("[2001:db8::/32]:5353 192.0.2.0/24"));
        let v6 = entries.iter().find(|(_, b, _)| *b == 32).unwrap();
        assert_eq!(v6.0[..4], [0x20, 0x01, 0x0d, 0xb8]);
        let v4 = entries.iter().find(|(_, b, _)| *b == 120).unwrap();
        assert_eq!(v4.0[10..13], [0xff, 0xff, 192]);
        assert!(covers(
            "0.0.0.0".parse().unwrap(),
            0,
            "192.0.2.0".parse().unwrap(),
            24
        ));
        assert!(!covers(
            "192.0.2.0".parse().unwrap(),
            24,
            "192.0.0.0".parse().unwrap(),
            16
        ));
    }
}
