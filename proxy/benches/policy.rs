//! Micro-benchmark: `Policy::decide` with 10 rules and with 10 000 rules should cost about the
//! same (issue #3: the index does not grow with the rule count). Run with
//! `cargo bench -p proxy --bench policy`; it prints ns per decision and the ratio. Not a test:
//! timings belong in benchmarks, never in assertions.

use std::{hint::black_box, net::IpAddr, time::Instant};

use proxy::policy::{Connection, Endpoint, Mode, Policy, Proto};

fn rules(n: usize) -> Vec<Endpoint> {
    (0..n)
        .map(|i| match i % 4 {
            0 => format!("host{i}.example.com"),
            1 => format!("*.zone{i}.example.net:8443"),
            2 => format!("10.{}.{}.0/24", (i / 256) % 256, i % 256),
            _ => format!("[2001:db8:{:x}::/48]:443", i),
        })
        .map(|s| s.parse().expect("generated rule parses"))
        .collect()
}

fn ns_per_decision(policy: &Policy, queries: &[(IpAddr, Option<String>)]) -> f64 {
    const ROUNDS: usize = 200;
    let start = Instant::now();
    for _ in 0..ROUNDS {
        for (ip, name) in queries {
            let d = policy.decide(&Connection {
                ip: *ip,
                port: 443,
                proto: Proto::Tcp,
                name: name.as_deref(),
                ech: false,
                name_resolves_to_ip: Some(true),
                ip_names: &[],
            });
            black_box(d);
        }
    }
    start.elapsed().as_nanos() as f64 / (ROUNDS * queries.len()) as f64
}

fn main() {
    // The same mix of hits and misses against both policies.
    let queries: Vec<(IpAddr, Option<String>)> = (0..1000)
        .map(|i| {
            let ip: IpAddr = format!("10.0.{}.{}", i % 7, i % 250).parse().unwrap();
            let name = match i % 3 {
                0 => Some(format!("host{}.example.com", (i % 10) * 4)),
                1 => Some(format!("a.b.zone{}.example.net", (i % 10) * 4 + 1)),
                _ => None,
            };
            (ip, name)
        })
        .collect();
    let small = Policy::new(Mode::Block, rules(10));
    let large = Policy::new(Mode::Block, rules(10_000));
    // Warm up, then measure each three times and keep the best.
    let _ = ns_per_decision(&small, &queries);
    let _ = ns_per_decision(&large, &queries);
    let best = |p: &Policy| {
        (0..3)
            .map(|_| ns_per_decision(p, &queries))
            .fold(f64::MAX, f64::min)
    };
    let (s, l) = (best(&small), best(&large));
    println!("decide with     10 rules: {s:8.1} ns");
    println!("decide with 10 000 rules: {l:8.1} ns");
    println!("ratio 10 000 / 10: {:.2}", l / s);
}
