//! `Policy::decide`, branch by branch, in a table.

use std::net::IpAddr;

use crate::policy::{
    Connection, Decision, FLAG_ECH, FLAG_SNI_IP_MISMATCH, Mode, Policy, Proto, Verdict,
    parse_endpoint_list,
};

const RULES: &str = "github.com *.githubusercontent.com example.com:8443 example.com:80
    10.0.0.0/8 203.0.113.7:22 2001:db8::/32 [2001:db8:1::/48]:53";

fn policy(mode: Mode, rules: &str) -> Policy {
    Policy::new(mode, parse_endpoint_list(rules).expect("test rules parse"))
}

/// A TCP connection to `ip:port` with no name; fields are then set per case.
fn to<'a>(ip: &str, port: u16) -> Connection<'a> {
    Connection {
        ip: ip.parse::<IpAddr>().expect("test address"),
        port,
        proto: Proto::Tcp,
        name: None,
        ech: false,
        name_resolves_to_ip: None,
        ip_names: &[],
    }
}

/// `name` sent to `ip:port`, resolving to it or not.
fn named<'a>(ip: &str, port: u16, name: &'a str, resolves: Option<bool>) -> Connection<'a> {
    Connection {
        name: Some(name),
        name_resolves_to_ip: resolves,
        ..to(ip, port)
    }
}

fn udp<'a>(ip: &str, port: u16) -> Connection<'a> {
    Connection {
        proto: Proto::Udp,
        ..to(ip, port)
    }
}

/// What a case expects: verdict, rule, flags, suggestion, and a word of the reason.
struct Want {
    verdict: Verdict,
    rule: Option<&'static str>,
    flags: &'static [&'static str],
    suggestion: Option<&'static str>,
    reason: &'static str,
}

const fn allowed(rule: &'static str, flags: &'static [&'static str], reason: &'static str) -> Want {
    Want {
        verdict: Verdict::Allowed,
        rule: Some(rule),
        flags,
        suggestion: None,
        reason,
    }
}

const fn blocked(
    flags: &'static [&'static str],
    suggestion: Option<&'static str>,
    reason: &'static str,
) -> Want {
    Want {
        verdict: Verdict::Blocked,
        rule: None,
        flags,
        suggestion,
        reason,
    }
}

/// An ECH ClientHello with outer name `outer`, to an address `ip_names` resolve to.
fn ech<'a>(ip: &str, port: u16, outer: &'a str, ip_names: &'a [String]) -> Connection<'a> {
    Connection {
        ech: true,
        ip_names,
        ..named(ip, port, outer, Some(true))
    }
}

fn check(what: &str, got: &Decision, want: &Want) {
    assert_eq!(got.verdict, want.verdict, "{what}: {got:?}");
    assert_eq!(got.rule.as_deref(), want.rule, "{what}: {got:?}");
    assert_eq!(got.flags, want.flags, "{what}: {got:?}");
    assert_eq!(
        got.suggestion.as_deref(),
        want.suggestion,
        "{what}: {got:?}"
    );
    assert!(
        got.reason.contains(want.reason),
        "{what}: reason {:?} mentions {:?}",
        got.reason,
        want.reason
    );
}

#[test]
fn each_branch_in_block_mode() {
    let github = &["github.com".to_owned()][..];
    let unlisted = &["unlisted.example".to_owned()][..];
    let cases: Vec<(&str, Connection<'_>, Want)> = vec![
        (
            "exact name",
            named("192.0.2.1", 443, "github.com", Some(true)),
            allowed("github.com", &[], "resolves to 192.0.2.1"),
        ),
        (
            "name case and trailing dot",
            named("192.0.2.1", 443, "GitHub.COM.", Some(true)),
            allowed("github.com", &[], ""),
        ),
        (
            "wildcard, two levels down",
            named("192.0.2.1", 443, "a.b.githubusercontent.com", Some(true)),
            allowed("*.githubusercontent.com", &[], ""),
        ),
        (
            "wildcard, one level down",
            named("192.0.2.1", 443, "raw.githubusercontent.com", Some(true)),
            allowed("*.githubusercontent.com", &[], ""),
        ),
        (
            "wildcard does not match its bare host",
            named("192.0.2.1", 443, "githubusercontent.com", Some(true)),
            blocked(
                &[],
                Some("githubusercontent.com"),
                "no rule allows githubusercontent.com on port 443",
            ),
        ),
        (
            "name without port is 443 only",
            named("192.0.2.1", 80, "github.com", Some(true)),
            blocked(&[], Some("github.com:80"), "port 80"),
        ),
        (
            "name with port",
            named("192.0.2.1", 8443, "example.com", Some(true)),
            allowed("example.com:8443", &[], ""),
        ),
        (
            "same name, other port rule",
            named("192.0.2.1", 80, "example.com", Some(true)),
            allowed("example.com:80", &[], ""),
        ),
        (
            "same name, port 443 not listed",
            named("192.0.2.1", 443, "example.com", Some(true)),
            blocked(&[], Some("example.com"), "example.com"),
        ),
        (
            "IPv4 CIDR, any port",
            to("10.1.2.3", 5432),
            allowed("10.0.0.0/8", &[], "10.1.2.3:5432/tcp"),
        ),
        (
            "IPv4 with port",
            to("203.0.113.7", 22),
            allowed("203.0.113.7:22", &[], ""),
        ),
        (
            "IPv4 other port",
            to("203.0.113.7", 23),
            blocked(
                &[],
                Some("203.0.113.7:23"),
                "no rule allows 203.0.113.7:23/tcp",
            ),
        ),
        (
            "v4-mapped matches IPv4 rule",
            to("::ffff:10.0.0.1", 80),
            allowed("10.0.0.0/8", &[], ""),
        ),
        (
            "v4-mapped suggestion is IPv4",
            to("::ffff:198.51.100.1", 80),
            blocked(&[], Some("198.51.100.1:80"), "198.51.100.1:80"),
        ),
        (
            "IPv6 CIDR",
            to("2001:db8:5::1", 443),
            allowed("2001:db8::/32", &[], ""),
        ),
        (
            "IPv6 suggestion in brackets",
            to("2001:db9::1", 443),
            blocked(&[], Some("[2001:db9::1]:443"), "[2001:db9::1]:443"),
        ),
        (
            "a Host that is an address",
            named("203.0.113.7", 22, "203.0.113.7", None),
            allowed("203.0.113.7:22", &[], ""),
        ),
        (
            "UDP never matches names",
            Connection {
                proto: Proto::Udp,
                ..named("192.0.2.1", 443, "github.com", Some(true))
            },
            blocked(&[], Some("192.0.2.1:443"), "192.0.2.1:443/udp"),
        ),
        (
            "UDP never matches names via ip_names",
            Connection {
                ip_names: github,
                ..udp("192.0.2.1", 443)
            },
            blocked(&[], Some("192.0.2.1:443"), ""),
        ),
        (
            "UDP by CIDR",
            udp("10.0.0.1", 53),
            allowed("10.0.0.0/8", &[], "/udp"),
        ),
        (
            "UDP by IPv6 CIDR with port",
            udp("2001:db8:1::5", 53),
            allowed("[2001:db8:1::/48]:53", &[], ""),
        ),
        (
            "SNI to an address the name does not resolve to",
            named("192.0.2.1", 443, "github.com", Some(false)),
            blocked(
                &[FLAG_SNI_IP_MISMATCH],
                None,
                "github.com matches github.com but does not resolve to 192.0.2.1",
            ),
        ),
        (
            "SNI that could not be resolved",
            named("192.0.2.1", 443, "github.com", None),
            blocked(&[FLAG_SNI_IP_MISMATCH], None, "could not be resolved"),
        ),
        (
            "mismatch, but an address rule allows the address",
            named("10.0.0.5", 443, "github.com", Some(false)),
            allowed("10.0.0.0/8", &[FLAG_SNI_IP_MISMATCH], "does not resolve"),
        ),
        (
            "ECH judged by the names of its address",
            ech("192.0.2.1", 443, "public.example", github),
            allowed("github.com", &[FLAG_ECH], "ECH"),
        ),
        (
            "ECH ignores an allowed outer name",
            ech("192.0.2.1", 443, "github.com", &[]),
            blocked(&[FLAG_ECH], Some("192.0.2.1:443"), "ECH hides"),
        ),
        (
            "ECH address names need a rule for the port",
            ech("192.0.2.1", 8443, "github.com", github),
            blocked(&[FLAG_ECH], Some("192.0.2.1:8443"), ""),
        ),
        (
            "ECH falls through to address rules",
            ech("10.0.0.1", 443, "public.example", &[]),
            allowed("10.0.0.0/8", &[FLAG_ECH], ""),
        ),
        (
            "raw IP to an allowed name's address",
            Connection {
                ip_names: github,
                ..to("192.0.2.1", 443)
            },
            allowed("github.com", &[], "192.0.2.1 is an address of github.com"),
        ),
        (
            "an empty name is no name",
            Connection {
                ip_names: github,
                ..named("192.0.2.1", 443, "", None)
            },
            allowed("github.com", &[], "is an address of github.com"),
        ),
        (
            "raw IP to an unlisted name's address",
            Connection {
                ip_names: unlisted,
                ..to("192.0.2.1", 443)
            },
            blocked(&[], Some("192.0.2.1:443"), ""),
        ),
        (
            "another name at an allowed name's address (fronting)",
            Connection {
                ip_names: github,
                ..named("192.0.2.1", 443, "evil.example", Some(true))
            },
            blocked(&[], Some("evil.example"), "evil.example"),
        ),
    ];
    let p = policy(Mode::Block, RULES);
    for (what, c, want) in &cases {
        check(what, &p.decide(c), want);
    }
}

#[test]
fn audit_mode_says_the_same_but_lets_through() {
    let block = policy(Mode::Block, RULES);
    let audit = policy(Mode::Audit, RULES);
    let conns = [
        named("192.0.2.1", 443, "github.com", Some(false)),
        named("192.0.2.1", 443, "unlisted.example", Some(true)),
        to("198.51.100.1", 22),
        udp("198.51.100.1", 443),
        named("192.0.2.1", 443, "github.com", Some(true)),
    ];
    for c in &conns {
        let (b, a) = (block.decide(c), audit.decide(c));
        let expect = match b.verdict {
            Verdict::Blocked => Verdict::Audited,
            other => other,
        };
        assert_eq!(a.verdict, expect, "{c:?}");
        assert_eq!(
            (&a.rule, &a.reason, &a.flags, &a.suggestion),
            (&b.rule, &b.reason, &b.flags, &b.suggestion)
        );
    }
}

#[test]
fn most_specific_rule_wins() {
    let p = policy(
        Mode::Block,
        "*.example.com www.example.com *.b.example.com 10.0.0.0/8 10.1.0.0/16:22",
    );
    let name = |n: &str| p.name_rule(n, 443).map(ToString::to_string);
    assert_eq!(name("www.example.com").as_deref(), Some("www.example.com"));
    assert_eq!(name("a.b.example.com").as_deref(), Some("*.b.example.com"));
    assert_eq!(name("b.example.com").as_deref(), Some("*.example.com"));
    assert_eq!(name("example.com"), None);
    let ip = |s: &str, port| {
        p.ip_rule(s.parse().unwrap(), port, Proto::Tcp)
            .map(ToString::to_string)
    };
    assert_eq!(ip("10.1.0.1", 22).as_deref(), Some("10.1.0.0/16:22"));
    assert_eq!(ip("10.1.0.1", 23).as_deref(), Some("10.0.0.0/8"));
    assert_eq!(ip("11.0.0.1", 22), None);
}

#[test]
fn exact_names_lists_what_to_resolve() {
    let p = policy(
        Mode::Audit,
        "github.com *.example.com example.com:8443 10.0.0.1 example.com:80",
    );
    let names: Vec<(&str, u16)> = p.exact_names().collect();
    assert_eq!(
        names,
        [
            ("github.com", 443),
            ("example.com", 8443),
            ("example.com", 80)
        ]
    );
    assert_eq!(p.endpoints().len(), 5);
    assert_eq!(p.mode(), Mode::Audit);
}

#[test]
fn empty_policy_allows_nothing() {
    let p = policy(Mode::Block, "");
    let d = p.decide(&named("192.0.2.1", 443, "github.com", Some(true)));
    assert_eq!(d.verdict, Verdict::Blocked);
    assert_eq!(d.suggestion.as_deref(), Some("github.com"));
}

#[test]
fn modes_and_verdicts_spell_as_in_records() {
    assert_eq!("audit".parse::<Mode>().unwrap(), Mode::Audit);
    assert_eq!("block".parse::<Mode>().unwrap(), Mode::Block);
    let err = "Block".parse::<Mode>().unwrap_err().to_string();
    assert!(
        err.contains("\"Block\"") && err.contains("audit or block"),
        "{err}"
    );
    assert_eq!(Mode::default(), Mode::Audit);
    assert_eq!(Mode::Block.to_string(), "block");
    let spelled: Vec<&str> = [Verdict::Allowed, Verdict::Blocked, Verdict::Audited]
        .iter()
        .map(|v| v.as_str())
        .collect();
    assert_eq!(spelled, ["allowed", "blocked", "audited"]);
    assert_eq!(Proto::Udp.to_string(), "udp");
}
