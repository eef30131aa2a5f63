//! The decision for one lookup. Pure apart from the tunnel detector's memory.
//!
//! A lookup does not say which port will follow, so a name is allowed when some name rule names
//! it on any port. In block mode a name no rule names is answered NXDOMAIN *without being sent
//! upstream*: forwarding it would carry its labels to whoever runs the name's zone, which is how
//! DNS exfiltration works. (An address rule therefore never makes a name resolve; name the host.)
//! Two kinds of names are refused in block mode even when a wildcard names them, and flagged in
//! both modes: well-known DNS-over-HTTPS resolvers ([`doh`]) and names that look like a tunnel
//! ([`tunnel`]); an exact rule for the very name still allows them. A reverse lookup (PTR) of an
//! address some earlier answer gave the job is allowed: it tells the reverse zone's owner nothing
//! new.

use std::net::IpAddr;

use super::{
    doh,
    tunnel::{self, TunnelDetector},
};
use crate::policy::{Decision, Host, Mode, Policy, Verdict, rule_for};

/// `PTR`.
const QTYPE_PTR: u16 = 12;

/// Judges a lookup of `name` (lowercase, no trailing dot) for `qtype`. `known_address` says
/// whether an earlier answer gave the job the address a reverse name stands for.
pub fn judge(
    policy: &Policy,
    tunnel: &mut TunnelDetector,
    name: &str,
    qtype: u16,
    known_address: impl Fn(IpAddr) -> bool,
) -> Decision {
    let rule = policy.name_rule_any_port(name);
    let exact = rule.is_some_and(|r| matches!(r.host(), Host::Exact(_)));
    let mut flags = Vec::new();
    let mut concerns = Vec::new();
    if doh::is_doh_host(name) {
        flags.push(doh::FLAG);
        concerns.push(
            "a DNS-over-HTTPS resolver: lookups sent to it would bypass Warden (only an exact \
             rule for this name allows it)"
                .to_string(),
        );
    }
    if let Some(s) = tunnel.observe(name, qtype, rule.is_some()) {
        flags.push(tunnel::FLAG);
        concerns.push(format!(
            "looks like DNS tunnelling: {}",
            s.evidence.join("; ")
        ));
    }
    let concern = (!concerns.is_empty()).then(|| concerns.join("; "));
    let refused = |reason: String, suggestion| Decision {
        verdict: match policy.mode() {
            Mode::Block => Verdict::Blocked,
            Mode::Audit => Verdict::Audited,
        },
        rule: None,
        reason,
        flags: flags.clone(),
        suggestion,
    };
    match (rule, concern) {
        (Some(rule), Some(concern)) if !exact => {
            let reason = format!("{name}: {concern}");
            match policy.mode() {
                Mode::Block => refused(reason, None),
                // Audit mode: the wildcard allows it, the flag says what it is.
                Mode::Audit => allowed(rule.to_string(), reason, flags),
            }
        }
        (Some(rule), concern) => {
            let mut reason = format!("allowed by {rule}: it names {name}");
            if let Some(c) = concern {
                reason.push_str(&format!(" ({c})"));
            }
            allowed(rule.to_string(), reason, flags)
        }
        (None, concern) => {
            if qtype == QTYPE_PTR
                && concern.is_none()
                && let Some(ip) = reverse_address(name)
                && known_address(ip)
            {
                return allowed(
                    String::new(),
                    format!("reverse lookup of {ip}, an address an earlier answer gave the job"),
                    flags,
                );
            }
            let mut reason = format!("no rule names {name}");
            if let Some(c) = concern {
                reason.push_str(&format!("; {c}"));
            }
            let suggestion = (!name.is_empty() && !flags.contains(&doh::FLAG))
                .then(|| rule_for(name, crate::policy::DEFAULT_NAME_PORT));
            refused(reason, suggestion)
        }
    }
}

fn allowed(rule: String, reason: String, flags: Vec<&'static str>) -> Decision {
    Decision {
        verdict: Verdict::Allowed,
        rule: (!rule.is_empty()).then_some(rule),
        reason,
        flags,
        suggestion: None,
    }
}

/// The address a reverse name (`4.3.2.1.in-addr.arpa`, nibbles under `ip6.arpa`) stands for,
/// only when written canonically: `010.2.0.192.in-addr.arpa` parses to the same address but its
/// padding could carry data to the reverse zone's owner.
pub fn reverse_address(name: &str) -> Option<IpAddr> {
    let ip = parse_reverse(name)?;
    (reverse_name(ip) == name).then_some(ip)
}

/// The canonical reverse name of `ip`.
pub fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.in-addr.arpa")
        }
        IpAddr::V6(v6) => {
            let mut name = String::with_capacity(72);
            for byte in v6.octets().iter().rev() {
                name.push_str(&format!("{:x}.{:x}.", byte & 0x0f, byte >> 4));
            }
            name.push_str("ip6.arpa");
            name
        }
    }
}

fn parse_reverse(name: &str) -> Option<IpAddr> {
    if let Some(v4) = name.strip_suffix(".in-addr.arpa") {
        let mut octets: Vec<u8> = v4
            .split('.')
            .map(str::parse)
            .collect::<Result<_, _>>()
            .ok()?;
        if octets.len() != 4 {
            return None;
        }
        octets.reverse();
        return Some(IpAddr::from([octets[0], octets[1], octets[2], octets[3]]));
    }
    let v6 = name.strip_suffix(".ip6.arpa")?;
    let nibbles: Vec<u8> = v6
        .split('.')
        .map(|n| match n.as_bytes() {
            [c] => (*c as char).to_digit(16).map(|d| d as u8),
            _ => None,
        })
        .collect::<Option<_>>()?;
    if nibbles.len() != 32 {
        return None;
    }
    let mut bytes = [0u8; 16];
    for (i, pair) in nibbles.rchunks(2).enumerate() {
        // Reversed order: the last two labels are the first byte's high and low nibble.
        bytes[i] = (pair[1] << 4) | pair[0];
    }
    Some(IpAddr::from(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(mode: Mode, rules: &[&str]) -> Policy {
        Policy::new(mode, rules.iter().map(|r| r.parse().unwrap()).collect())
    }

    fn verdict(p: &Policy, name: &str, qtype: u16) -> (Verdict, Vec<&'static str>) {
        let d = judge(p, &mut TunnelDetector::default(), name, qtype, |_| false);
        (d.verdict, d.flags)
    }

    #[test]
    fn names_any_rule_on_any_port() {
        let p = policy(
            Mode::Block,
            &["api.example:8443", "*.cdn.example", "10.0.0.0/8"],
        );
        assert_eq!(verdict(&p, "api.example", 1).0, Verdict::Allowed);
        assert_eq!(verdict(&p, "x.cdn.example", 28).0, Verdict::Allowed);
        assert_eq!(verdict(&p, "cdn.example", 1).0, Verdict::Blocked);
        let d = judge(
            &p,
            &mut TunnelDetector::default(),
            "evil.example",
            1,
            |_| false,
        );
        assert_eq!(d.verdict, Verdict::Blocked);
        assert_eq!(d.suggestion.as_deref(), Some("evil.example"));
        let a = policy(Mode::Audit, &[]);
        assert_eq!(verdict(&a, "evil.example", 1).0, Verdict::Audited);
    }

    #[test]
    fn doh_needs_an_exact_rule() {
        let wild = policy(Mode::Block, &["*.google", "*.cloudflare-dns.com"]);
        assert_eq!(
            verdict(&wild, "dns.google", 1),
            (Verdict::Blocked, vec![doh::FLAG])
        );
        let exact = policy(Mode::Block, &["dns.google"]);
        assert_eq!(
            verdict(&exact, "dns.google", 1),
            (Verdict::Allowed, vec![doh::FLAG])
        );
        let audit = policy(Mode::Audit, &["*.google"]);
        assert_eq!(
            verdict(&audit, "dns.google", 1),
            (Verdict::Allowed, vec![doh::FLAG])
        );
        let audit = policy(Mode::Audit, &[]);
        assert_eq!(
            verdict(&audit, "dns.google", 1),
            (Verdict::Audited, vec![doh::FLAG])
        );
    }

    #[test]
    fn tunnel_blocked_under_wildcard_not_under_exact_rule() {
        let long = "mzxw6ytboi2dkmzqgeztgmrvgq3tknzygiytcmzugq2dknrxgyztqmzqgi3q.t.example";
        let wild = policy(Mode::Block, &["*.example"]);
        let (v, flags) = verdict(&wild, long, 1);
        assert_eq!((v, flags), (Verdict::Blocked, vec![tunnel::FLAG]));
        let exact = policy(Mode::Block, &[long]);
        assert_eq!(verdict(&exact, long, 1).0, Verdict::Allowed);
    }

    #[test]
    fn reverse_lookup_of_a_known_address() {
        let p = policy(Mode::Block, &[]);
        let known = |ip: IpAddr| ip == "192.0.2.10".parse::<IpAddr>().unwrap();
        let mut t = TunnelDetector::default();
        let d = judge(&p, &mut t, "10.2.0.192.in-addr.arpa", QTYPE_PTR, known);
        assert_eq!(d.verdict, Verdict::Allowed, "{}", d.reason);
        let d = judge(&p, &mut t, "11.2.0.192.in-addr.arpa", QTYPE_PTR, known);
        assert_eq!(d.verdict, Verdict::Blocked);
        let d = judge(&p, &mut t, "10.2.0.192.in-addr.arpa", 1, known);
        assert_eq!(d.verdict, Verdict::Blocked);
    }

    #[test]
    fn reverse_names() {
        assert_eq!(
            reverse_address("4.3.2.1.in-addr.arpa"),
            Some("1.2.3.4".parse().unwrap())
        );
        let v6 = "0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa";
        assert_eq!(reverse_address(v6), Some("2001:db8::10".parse().unwrap()));
        assert_eq!(reverse_address("1.2.3.in-addr.arpa"), None);
        assert_eq!(reverse_address("x.2.3.4.in-addr.arpa"), None);
        assert_eq!(reverse_address("example.com"), None);
        // Padding carries data: only the canonical spelling counts.
        for padded in [
            "010.2.0.192.in-addr.arpa",
            "10.002.0.192.in-addr.arpa",
            "10.2.0.0192.in-addr.arpa",
        ] {
            assert_eq!(reverse_address(padded), None, "{padded}");
        }
        assert_eq!(reverse_name("2001:db8::10".parse().unwrap()), v6);
        assert_eq!(reverse_address("1.ip6.arpa"), None);
    }
}
