//! Micro-benchmark: `Policy::decide` with 10 rules and with 10 000 rules should cost about the
//! same (issue #3: the index does not grow with the rule count; issue #11: ≤ 1 µs with 10 000
//! rules). Run with `cargo bench -p proxy --bench policy`. Not a test: timings belong in
//! benchmarks, never in assertions.

use std::{hint::black_box, net::IpAddr};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
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

/// The same mix of hits and misses against every policy: names that a rule allows, names
/// under a wildcard, and raw addresses.
fn queries() -> Vec<(IpAddr, Option<String>)> {
    (0..1000)
        .map(|i| {
            let ip: IpAddr = format!("10.0.{}.{}", i % 7, i % 250).parse().unwrap();
            let name = match i % 3 {
                0 => Some(format!("host{}.example.com", (i % 10) * 4)),
                1 => Some(format!("a.b.zone{}.example.net", (i % 10) * 4 + 1)),
                _ => None,
            };
            (ip, name)
        })
        .collect()
}

fn decide(c: &mut Criterion) {
    let queries = queries();
    let mut g = c.benchmark_group("decide");
    // One iteration decides every query once; criterion reports time per query.
    g.throughput(Throughput::Elements(queries.len() as u64));
    for n in [10, 10_000] {
        let policy = Policy::new(Mode::Block, rules(n));
        g.bench_function(format!("{n} rules"), |b| {
            b.iter(|| {
                for (ip, name) in &queries {
                    black_box(policy.decide(&Connection {
                        ip: *ip,
                        port: 443,
                        proto: Proto::Tcp,
                        name: name.as_deref(),
                        ech: false,
                        name_resolves_to_ip: Some(true),
                        ip_names: &[],
                    }));
                }
            })
        });
    }
    g.finish();
}

criterion_group!(benches, decide);
criterion_main!(benches);
