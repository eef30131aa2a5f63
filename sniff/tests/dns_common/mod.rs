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

/// A random edit of a DNS message: flipped or replaced bytes, a 16-bit field set to a value
/// that means something in DNS (a count, a type, a length, a compression pointer), an
/// inserted or removed byte, a duplicated slice, or a cut.
pub fn mutate_dns(seed: &[u8], rng: &mut crate::common::XorShift) -> Vec<u8> {
    // Counts, types (A, CNAME, NULL, TXT, OPT, SVCB, HTTPS, ANY), lengths, pointers to the
    // question name and past the end.
    const WORDS: [u16; 14] = [
        0, 1, 2, 5, 10, 16, 41, 64, 65, 255, 0x00ff, 0xc00c, 0xc0ff, 0xffff,
    ];
    let mut buf = seed.to_vec();
    for _ in 0..=rng.below(3) {
        if buf.is_empty() {
            buf.push(rng.byte());
        }
        let at = rng.below(buf.len());
        match rng.below(7) {
            0 => buf[at] = rng.byte(),
            1 => buf[at] ^= 1 << rng.below(8),
            2 if at + 1 < buf.len() => {
                let word = WORDS[rng.below(WORDS.len())].to_be_bytes();
                buf[at..at + 2].copy_from_slice(&word);
            }
            3 => buf.insert(at, rng.byte()),
            4 => {
                buf.remove(at);
            }
            5 => {
                let end = (at + 1 + rng.below(16)).min(buf.len());
                let slice = buf[at..end].to_vec();
                let to = rng.below(buf.len() + 1);
                buf.splice(to..to, slice);
            }
            _ => buf.truncate(at),
        }
    }
    buf
}
