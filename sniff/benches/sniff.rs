//! Micro-benchmarks of the sniffers (issue #11, 2h): what identifying a connection costs the
//! proxy, for real ClientHellos (the captures the tests use) and typical HTTP/1.1 request heads.
//! Run with `cargo bench -p sniff --bench sniff`. Not a test: timings never go in assertions.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sniff::{http::parse_request_head, sniff, tls::parse_client_hello};

const CURL: &[u8] = include_bytes!("../tests/data/curl-openssl.bin");
const JAVA: &[u8] = include_bytes!("../tests/data/java-jsse.bin");
const SPLIT: &[u8] = include_bytes!("../tests/data/openssl-split-records.bin");

const GET: &[u8] = b"GET /repos/org/repo/releases/latest HTTP/1.1\r\nHost: api.github.com\r\n\
User-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n";
const PIP: &[u8] = b"GET /simple/requests/ HTTP/1.1\r\nHost: pypi.org\r\n\
User-Agent: pip/24.0 {\"ci\":true,\"cpu\":\"x86_64\",\"distro\":{\"name\":\"Ubuntu\"}}\r\n\
Accept-Encoding: gzip, deflate\r\nAccept: application/vnd.pypi.simple.v1+json\r\n\
Connection: keep-alive\r\nCache-Control: max-age=0\r\n\r\n";

fn client_hello(c: &mut Criterion) {
    let mut g = c.benchmark_group("client_hello");
    for (name, bytes) in [("curl", CURL), ("java", JAVA), ("split-records", SPLIT)] {
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        g.bench_function(name, |b| b.iter(|| parse_client_hello(black_box(bytes))));
    }
    g.finish();
}

fn http_head(c: &mut Criterion) {
    let mut g = c.benchmark_group("http_head");
    for (name, bytes) in [("curl-get", GET), ("pip-get", PIP)] {
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        g.bench_function(name, |b| b.iter(|| parse_request_head(black_box(bytes))));
    }
    g.finish();
}

/// What the proxy calls after each read: both parsers, TLS first.
fn sniff_any(c: &mut Criterion) {
    let mut g = c.benchmark_group("sniff");
    g.bench_function("tls", |b| b.iter(|| sniff(black_box(CURL))));
    g.bench_function("http", |b| b.iter(|| sniff(black_box(GET))));
    // Half a ClientHello: the answer is "need more", the common case for a first read.
    g.bench_function("tls-prefix", |b| {
        b.iter(|| sniff(black_box(&CURL[..CURL.len() / 2])))
    });
    g.finish();
}

criterion_group!(benches, client_hello, http_head, sniff_any);
criterion_main!(benches);
