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
/// UDP port 853: DNS over QUIC, refused by the kernel in both modes.
const DOQ_PORT: u16 = 853;
/// DNS: open in audit mode; in block mode only to the configured resolvers.
const DNS_PORT: u16 = 53;

/// The nameservers of a `resolv.conf` text (block mode lets UDP port 53 reach only these).
pub fn resolvers(resolv_conf: &str) -> Vec<IpAddr> {
    resolv_conf
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|a| a.split_whitespace().next()?.split('%').next()?.parse().ok())
        .collect()
}

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
        if self.dst.port() == DOQ_PORT {
            r.decision = Some(Decision::Blocked);
            r.flags.push("dns-over-quic".into());
            r.reason = Some(
                "DNS over QUIC (UDP port 853) is refused in every mode: Warden could not see the \
                 lookups; clients fall back to port 53"
                    .into(),
            );
            return r;
        }
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

/// The LPM-trie entries for `policy`'s address rules plus DNS to `resolvers` (port 53): (v4-mapped
/// address, prefix length in bits of the 128-bit key, ports). A prefix inherits the ports of
/// every rule of its family covering it.
///
/// IPv4 lives inside the IPv6 key space (`::ffff:0:0/96`), so an IPv6 rule as wide as `::/0`
/// would also match every IPv4 key. A `::ffff:0:0/96` entry holding only what IPv4 rules allow
/// there (often nothing) stops that: it is more specific than any IPv6 rule covering it.
pub fn allow_entries(policy: &Policy, resolvers: &[IpAddr]) -> Vec<([u8; 16], u32, UdpAllow)> {
    let mut nets: Vec<(IpAddr, u8, Option<u16>)> = policy
        .endpoints()
        .iter()
        .filter_map(|e| match e.host() {
            Host::Network { addr, prefix } => Some((*addr, *prefix, e.port())),
            _ => None,
        })
        .collect();
    for r in resolvers {
        let r = r.to_canonical();
        nets.push((r, if r.is_ipv4() { 32 } else { 128 }, Some(DNS_PORT)));
    }
    let v4_space: IpAddr = std::net::Ipv4Addr::UNSPECIFIED.into();
    if nets
        .iter()
        .any(|&(a, p, _)| a.is_ipv6() && covers_bits(key(a, p), key(v4_space, 0)))
    {
        // The guard entry: IPv4's own /0 (0.0.0.0/0) if there is one, else nothing.
        nets.push((v4_space, 0, Some(0)));
    }
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
                // The guard's placeholder: contributes no port.
                Some(0) => {}
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

/// Whether network `outer/op` contains network `inner/ip_`, within one address family (an IPv6
/// rule never covers IPv4, as in the policy).
fn covers(outer: IpAddr, op: u8, inner: IpAddr, ip_: u8) -> bool {
    outer.is_ipv4() == inner.is_ipv4() && covers_bits(key(outer, op), key(inner, ip_))
}

/// Whether 128-bit key prefix `o` contains `i`.
fn covers_bits((o, obits): ([u8; 16], u32), (i, ibits): ([u8; 16], u32)) -> bool {
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

    /// What the kernel's longest-prefix match would answer.
    fn lpm(entries: &[([u8; 16], u32, UdpAllow)], ip: &str, port: u16) -> bool {
        let ip: IpAddr = ip.parse::<IpAddr>().unwrap().to_canonical();
        let (k, _) = key(ip, if ip.is_ipv4() { 32 } else { 128 });
        entries
            .iter()
            .filter(|(e, bits, _)| covers_bits((*e, *bits), (k, 128)))
            .max_by_key(|(_, bits, _)| *bits)
            .is_some_and(|(_, _, a)| {
                a.any_port != 0 || a.ports[..a.nports as usize].contains(&port)
            })
    }

    #[test]
    fn an_ipv6_rule_never_allows_ipv4() {
        let entries = allow_entries(&policy("::/0"), &[]);
        assert!(lpm(&entries, "2001:db8::1", 9));
        assert!(!lpm(&entries, "192.0.2.1", 9), "{entries:?}");
        let both = allow_entries(&policy("::/0 0.0.0.0/0:5000"), &[]);
        assert!(lpm(&both, "192.0.2.1", 5000));
        assert!(!lpm(&both, "192.0.2.1", 9));
        let narrow = allow_entries(&policy("[2001:db8::/32]:53 192.0.2.0/24"), &[]);
        assert!(lpm(&narrow, "192.0.2.7", 1) && !lpm(&narrow, "198.51.100.1", 1));
    }

    #[test]
    fn resolvers_get_port_53_only() {
        let r = resolvers("# x\nnameserver 10.1.2.3\nnameserver fe80::1%eth0\nsearch a\n");
        assert_eq!(
            r,
            [
                "10.1.2.3".parse::<IpAddr>().unwrap(),
                "fe80::1".parse().unwrap()
            ]
        );
        let entries = allow_entries(&policy(""), &r);
        assert!(lpm(&entries, "10.1.2.3", 53) && !lpm(&entries, "10.1.2.3", 54));
        assert!(!lpm(&entries, "10.9.9.9", 53));
    }

    #[test]
    fn prefixes_inherit_ports_of_covering_rules() {
        let entries = allow_entries(
            &policy("10.0.0.0/8:53 10.1.0.0/16:123 203.0.113.7 tls.example"),
            &[],
        );
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
        let entries = allow_entries(&policy("[2001:db8::/32]:5353 192.0.2.0/24"), &[]);
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
