//! Real ClientHellos, captured from the clients on the build machine (see
//! `tests/data/capture.py`), parsed whole, prefix by prefix, and re-framed.

mod common;

use common::{CAPTURES, capture, deframe, record_count, reframe};
use sniff::tls::{ClientHello, parse_client_hello};
use sniff::{Parse, Sniffed, sniff};

/// What each client put in its ClientHello.
fn expected(name: &str) -> ClientHello {
    let h2_and_http1 = || vec!["h2".to_string(), "http/1.1".to_string()];
    let (sni, alpn, record_version) = match name {
        "curl-openssl.bin" => (Some("example.test"), h2_and_http1(), 0x0301),
        "java-jsse.bin" => (Some("java.example"), h2_and_http1(), 0x0303),
        "node-tls.bin" => (Some("node.example"), vec!["http/1.1".into()], 0x0301),
        "openssl-s_client.bin" => (Some("a.example"), h2_and_http1(), 0x0301),
        "openssl-split-records.bin" => (Some("split.example"), long_alpn(), 0x0301),
        "openssl-tls12-nosni.bin" => (None, vec![], 0x0301),
        "python-ssl.bin" => (Some("py.example"), vec![], 0x0301),
        "wget-gnutls.bin" => (Some("localhost"), vec![], 0x0301),
        other => panic!("no expectation for {other}"),
    };
    ClientHello {
        sni: sni.map(str::to_string),
        alpn,
        ech: false,
        record_version,
        legacy_version: 0x0303,
    }
}

/// The ALPN list `capture.py` passes to `openssl s_client` to make a
/// ClientHello large enough to need several 512-byte records.
fn long_alpn() -> Vec<String> {
    let padding = (0..60).map(|i| format!("x-warden-test-protocol-{i:03}-padding"));
    ["h2".to_string(), "http/1.1".to_string()]
        .into_iter()
        .chain(padding)
        .collect()
}

/// Asserts that every strict prefix of `stream` needs more bytes and the whole
/// of it parses to `want`: feeding the stream in any number of reads gives no
/// answer until the ClientHello is complete.
fn assert_incremental(stream: &[u8], want: &ClientHello, what: &str) {
    for end in 0..stream.len() {
        assert_eq!(
            parse_client_hello(&stream[..end]),
            Parse::NeedMore,
            "{what}: prefix of {end} bytes"
        );
    }
    assert_eq!(
        parse_client_hello(stream),
        Parse::Done(want.clone()),
        "{what}"
    );
}

#[test]
fn every_capture_parses_to_what_the_client_sent() {
    for name in CAPTURES {
        let stream = capture(name);
        let want = expected(name);
        assert_eq!(
            parse_client_hello(&stream),
            Parse::Done(want.clone()),
            "{name}"
        );
        assert_eq!(sniff(&stream), Parse::Done(Sniffed::Tls(want)), "{name}");
        assert!(stream.len() <= sniff::MAX_SNIFF_BYTES, "{name}");
    }
}

#[test]
fn every_prefix_of_every_capture_needs_more() {
    for name in CAPTURES {
        assert_incremental(&capture(name), &expected(name), name);
    }
}

#[test]
fn the_split_capture_really_spans_several_records() {
    // openssl s_client -max_send_frag 512 cut its own ClientHello; nothing here
    // is re-framed.
    let stream = capture("openssl-split-records.bin");
    assert_eq!(record_count(&stream), 5);
    assert!(deframe(&stream).message.len() > 4 * 512);
}

#[test]
fn one_byte_records_give_the_same_hello() {
    // Re-framed by the test: each record carries a single byte of the real
    // handshake message, the most fragmented framing TLS allows.
    for name in CAPTURES {
        let stream = reframe(&capture(name), 1);
        assert_incremental(
            &stream,
            &expected(name),
            &format!("{name} in 1-byte records"),
        );
    }
}

#[test]
fn any_record_size_gives_the_same_hello() {
    // Re-framed by the test, at sizes that cut the handshake header, the
    // extension headers and the SNI at different places.
    for name in CAPTURES {
        for payload_len in [2, 3, 5, 7, 64, 100, 511, 1 << 14] {
            let stream = reframe(&capture(name), payload_len);
            let got = parse_client_hello(&stream);
            assert_eq!(
                got,
                Parse::Done(expected(name)),
                "{name} in {payload_len}-byte records"
            );
        }
    }
}

#[test]
fn bytes_after_the_hello_are_not_examined() {
    for name in CAPTURES {
        let mut stream = capture(name);
        // A TLS 1.3 middlebox-compatibility change_cipher_spec, then 0-RTT data.
        stream.extend_from_slice(b"\x14\x03\x03\x00\x01\x01\x17\x03\x03\x00\x02\xab\xcd");
        assert_eq!(
            parse_client_hello(&stream),
            Parse::Done(expected(name)),
            "{name}"
        );
        stream.extend_from_slice(b"garbage");
        assert_eq!(
            parse_client_hello(&stream),
            Parse::Done(expected(name)),
            "{name}"
        );
    }
}

#[test]
fn a_record_of_another_type_inside_the_hello_is_malformed() {
    let stream = capture("openssl-split-records.bin");
    let first_record = 5 + 512;
    let alert = b"\x15\x03\x03\x00\x02\x02\x28";
    let mut broken = stream[..first_record].to_vec();
    broken.extend_from_slice(alert);
    broken.extend_from_slice(&stream[first_record..]);
    for end in 0..=first_record {
        assert_eq!(
            parse_client_hello(&broken[..end]),
            Parse::NeedMore,
            "prefix of {end} bytes"
        );
    }
    // Decided as soon as the content type byte arrives.
    for end in first_record + 1..=broken.len() {
        let got = parse_client_hello(&broken[..end]);
        assert_eq!(
            got,
            Parse::Malformed("non-handshake record inside client hello")
        );
    }
}
