//! The real DNS captures in `tests/data/dns/`, shared by the DNS integration tests.
//!
//! Each case is a query dig sent and the answer dnsmasq gave, recorded on loopback by
//! `tests/data/dns/capture.py`. Like `common`, these helpers trust their input and panic on
//! anything unexpected: they build test cases, they are not under test.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::path::Path;

/// The cases sent over UDP: `NAME.query.bin` and `NAME.answer.bin` hold one message each.
pub const UDP_CASES: [&str; 6] = [
    "a-edns",
    "aaaa-noedns",
    "cname-chain",
    "nxdomain",
    "https-ech",
    "txt",
];

/// The case sent over TCP: its files hold the stream, length prefixes included.
pub const TCP_CASE: &str = "tcp-a";

/// The bytes of `tests/data/dns/NAME.SIDE.bin` (SIDE is "query" or "answer").
pub fn dns_capture(name: &str, side: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/dns")
        .join(format!("{name}.{side}.bin"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The query and answer of a UDP case, or of the TCP case with its length prefixes removed.
pub fn dns_pair(name: &str) -> (Vec<u8>, Vec<u8>) {
    let (query, answer) = (dns_capture(name, "query"), dns_capture(name, "answer"));
    if name == TCP_CASE {
        (query[2..].to_vec(), answer[2..].to_vec())
    } else {
        (query, answer)
    }
}
