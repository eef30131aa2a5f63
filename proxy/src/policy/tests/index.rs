//! The index gives the same answers as scanning every rule: 10 000 random rules, a thousand
//! random queries, each answered by `Policy` and by a linear search with
//! `Endpoint::matches_name` / `matches_ip`. Correctness only; nothing here is timed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::policy::{Endpoint, Mode, Policy, Proto};

/// xorshift64*: deterministic, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.below(from.len())]
    }
}

const LABELS: &[&str] = &[
    "a", "b", "api", "cdn", "www", "x-1", "github", "npm", "pkg", "s3", "eu", "us",
];
const TLDS: &[&str] = &["com", "org", "example", "io"];
/// Queries also use labels and TLDs no rule has, so that misses are common too.
const QUERY_LABELS: &[&str] = &[
    "a", "b", "api", "cdn", "www", "x-1", "github", "npm", "pkg", "s3", "eu", "us", "zz", "q",
    "mirror", "w3", "dl", "files",
];
const QUERY_TLDS: &[&str] = &[
    "com", "org", "example", "io", "net", "dev", "test", "invalid",
];
const PORTS: &[u16] = &[443, 443, 80, 8443, 22, 53];

/// A name of 1 to `depth` labels under a TLD, small vocabulary so rules and queries meet.
fn name(rng: &mut Rng, depth: usize, labels: &[&'static str], tlds: &[&'static str]) -> String {
    let mut labels: Vec<&str> = (0..1 + rng.below(depth))
        .map(|_| rng.pick(labels))
        .collect();
    labels.push(rng.pick(tlds));
    labels.join(".")
}

/// An address from a small space (`spread` 1 for rules); queries use a wider one (`spread` 2)
/// so that they miss as well as hit.
fn v4(rng: &mut Rng, spread: usize) -> Ipv4Addr {
    let first = rng.pick(&[10u8, 192, 203, 198, 100][..3 + 2 * (spread - 1)]);
    let mut octet = |n: usize| rng.below(n * spread) as u8;
    Ipv4Addr::new(first, octet(4), octet(8), octet(16))
}

fn v6(rng: &mut Rng, spread: usize) -> Ipv6Addr {
    let mut seg = |n: usize| rng.below(n * spread) as u16;
    Ipv6Addr::new(0x2001, 0xdb8, seg(4), seg(4), 0, 0, seg(4), seg(16))
}

fn port_suffix(rng: &mut Rng) -> String {
    match rng.below(3) {
        0 => String::new(),
        _ => format!(":{}", rng.pick(PORTS)),
    }
}

fn random_rule(rng: &mut Rng) -> Endpoint {
    let text = match rng.below(5) {
        0 | 1 => format!("{}{}", name(rng, 3, LABELS, TLDS), port_suffix(rng)),
        2 => format!("*.{}{}", name(rng, 2, LABELS, TLDS), port_suffix(rng)),
        3 => {
            let prefix = rng.pick(&[16u8, 20, 24, 28, 30, 32]);
            let net = crate::policy::endpoint::mask(IpAddr::V4(v4(rng, 1)), prefix).unwrap();
            format!("{net}/{prefix}{}", port_suffix(rng))
        }
        _ => {
            let prefix = rng.pick(&[48u8, 64, 96, 112, 124, 128]);
            let net = crate::policy::endpoint::mask(IpAddr::V6(v6(rng, 1)), prefix).unwrap();
            format!("[{net}/{prefix}]{}", port_suffix(rng))
        }
    };
    text.parse()
        .unwrap_or_else(|e| panic!("generated rule {text:?}: {e}"))
}

fn random_ip(rng: &mut Rng) -> IpAddr {
    match rng.below(3) {
        0 => IpAddr::V4(v4(rng, 2)),
        1 => IpAddr::V6(v4(rng, 2).to_ipv6_mapped()),
        _ => IpAddr::V6(v6(rng, 2)),
    }
}

#[test]
fn ten_thousand_rules_answer_like_a_linear_scan() {
    let mut rng = Rng(0x5752_444e_0003);
    let rules: Vec<Endpoint> = (0..10_000).map(|_| random_rule(&mut rng)).collect();
    let policy = Policy::new(Mode::Block, rules);
    let (mut name_hits, mut ip_hits) = (0, 0);
    for _ in 0..1_000 {
        let port = rng.pick(PORTS);
        let n = name(&mut rng, 5, QUERY_LABELS, QUERY_TLDS);
        let linear = policy.endpoints().iter().find(|e| e.matches_name(&n, port));
        let indexed = policy.name_rule(&n, port);
        assert_eq!(
            indexed.is_some(),
            linear.is_some(),
            "{n}:{port}: {indexed:?} vs {linear:?}"
        );
        if let Some(rule) = indexed {
            assert!(
                rule.matches_name(&n, port),
                "{rule} does not match {n}:{port}"
            );
            name_hits += 1;
        }

        let ip = random_ip(&mut rng);
        let linear = policy.endpoints().iter().find(|e| e.matches_ip(ip, port));
        let indexed = policy.ip_rule(ip, port, Proto::Tcp);
        assert_eq!(
            indexed.is_some(),
            linear.is_some(),
            "{ip} {port}: {indexed:?} vs {linear:?}"
        );
        if let Some(rule) = indexed {
            assert!(
                rule.matches_ip(ip, port),
                "{rule} does not match {ip} {port}"
            );
            ip_hits += 1;
        }
    }
    // Both outcomes must be common, or the comparison proves little.
    assert!((100..900).contains(&name_hits), "name hits {name_hits}");
    assert!((100..900).contains(&ip_hits), "address hits {ip_hits}");
}

#[test]
fn duplicate_rules_report_the_first() {
    let rules: Vec<Endpoint> = ["example.com:443", "example.com", "10.0.0.0/8", "10.0.0.0/8"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    let policy = Policy::new(Mode::Block, rules);
    let first = &policy.endpoints()[0];
    assert!(std::ptr::eq(
        policy.name_rule("example.com", 443).unwrap(),
        first
    ));
    let net = policy
        .ip_rule("10.0.0.1".parse().unwrap(), 1, Proto::Udp)
        .unwrap();
    assert!(std::ptr::eq(net, &policy.endpoints()[2]));
}

#[test]
fn name_any_port_finds_a_rule_for_some_port() {
    let rules: Vec<Endpoint> = [
        "api.example:8443",
        "*.cdn.example",
        "*.example:80",
        "10.0.0.0/8",
    ]
    .iter()
    .map(|r| r.parse().unwrap())
    .collect();
    let policy = Policy::new(Mode::Block, rules);
    let rule = |n: &str| policy.name_rule_any_port(n).map(ToString::to_string);
    assert_eq!(rule("API.example."), Some("api.example:8443".into()));
    assert_eq!(rule("a.cdn.example"), Some("*.cdn.example".into()));
    assert_eq!(rule("b.example"), Some("*.example:80".into()));
    assert_eq!(rule("example"), None);
    assert_eq!(rule("cdn.other"), None);
    assert_eq!(rule("10.0.0.1"), None);
}
