//! Property tests: on pseudo-random bytes and on random mutations of the real
//! captures and request heads, the parsers return (never panic), `sniff`
//! agrees with the parser that claims the stream, and an answer other than
//! "need more" never changes when more bytes arrive, so no answer was a guess
//! made before the deciding bytes were in.
//!
//! The fuzz targets in `fuzz/` explore the same properties for much longer.

mod common;

use common::{CAPTURES, XorShift, capture, reframe};
use sniff::http::parse_request_head;
use sniff::tls::parse_client_hello;
use sniff::{Parse, Sniffed, sniff};

const HEADS: [&[u8]; 4] = [
    b"GET / HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n",
    b"CONNECT github.com:443 HTTP/1.1\r\nHost: github.com:443\r\nProxy-Connection: Keep-Alive\r\n\r\n",
    b"GET http://[::1]:8080/x HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
    b"POST /x HTTP/1.0\r\nContent-Length: 2\r\n\r\nhi",
];

/// Runs every parser on `buf` and on a few of its prefixes, checking the
/// properties in the module docs.
fn check(buf: &[u8], rng: &mut XorShift) {
    let tls = parse_client_hello(buf);
    let http = parse_request_head(buf);
    let want = match &tls {
        Parse::NotThis => http.clone().map(Sniffed::Http),
        _ => tls.clone().map(Sniffed::Tls),
    };
    assert_eq!(sniff(buf), want, "{}", buf.escape_ascii());
    for _ in 0..4 {
        let prefix = &buf[..rng.below(buf.len() + 1)];
        let early = parse_client_hello(prefix);
        assert!(
            early == Parse::NeedMore || early == tls,
            "tls changed its mind: {}",
            buf.escape_ascii()
        );
        let early = parse_request_head(prefix);
        assert!(
            early == Parse::NeedMore || early == http,
            "http changed its mind: {}",
            buf.escape_ascii()
        );
    }
}

/// A random edit of `seed`: flipped bytes, an insertion, a deletion, or a cut.
fn mutate(seed: &[u8], rng: &mut XorShift) -> Vec<u8> {
    let mut buf = seed.to_vec();
    for _ in 0..=rng.below(4) {
        if buf.is_empty() {
            break;
        }
        let at = rng.below(buf.len());
        match rng.below(5) {
            0 | 1 => buf[at] = rng.byte(),
            2 => buf[at] ^= 1 << rng.below(8),
            3 => buf.insert(at, rng.byte()),
            _ => {
                buf.remove(at);
            }
        }
    }
    if rng.below(8) == 0 {
        buf.truncate(rng.below(buf.len() + 1));
    }
    buf
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = XorShift::new(0x5eed_0001);
    // Some inputs start like TLS or HTTP so the parsers get past their first byte.
    let starts: [&[u8]; 4] = [
        b"",
        b"\x16\x03\x01",
        b"\x16\x03\x01\x00\x40\x01\x00\x00",
        b"GET ",
    ];
    for _ in 0..4000 {
        let mut buf = starts[rng.below(starts.len())].to_vec();
        let len = rng.below(300);
        buf.extend(rng.bytes(len));
        check(&buf, &mut rng);
    }
}

#[test]
fn mutated_captures_never_panic() {
    let mut rng = XorShift::new(0x5eed_0002);
    for name in CAPTURES {
        let stream = capture(name);
        let small_records = reframe(&stream, 7);
        for _ in 0..300 {
            check(&mutate(&stream, &mut rng), &mut rng);
            check(&mutate(&small_records, &mut rng), &mut rng);
        }
    }
}

#[test]
fn mutated_request_heads_never_panic() {
    let mut rng = XorShift::new(0x5eed_0003);
    for head in HEADS {
        for _ in 0..1000 {
            check(&mutate(head, &mut rng), &mut rng);
        }
    }
}
