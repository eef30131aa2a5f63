//! Real captures edited by the test helpers to reach the cases no client on
//! the build machine produces: ECH (no local client sends it), odd server
//! names, duplicate extensions, broken lengths and the 16 KiB size cap. Every
//! edit keeps the other length fields consistent unless breaking them is the
//! point of the test.

mod common;

use common::{
    EXT_ALPN, EXT_ECH, EXT_PADDING, EXT_SERVER_NAME, XorShift, capture, deframe, edit_extensions,
    frame, grease_ech_payload,
};
use sniff::tls::{MAX_CLIENT_HELLO_LEN, parse_client_hello};
use sniff::{MAX_SNIFF_BYTES, Parse};

fn server_name_extension(name: &[u8]) -> Vec<u8> {
    let entry_len = u16::try_from(name.len()).unwrap();
    let mut data = (entry_len + 3).to_be_bytes().to_vec();
    data.push(0);
    data.extend_from_slice(&entry_len.to_be_bytes());
    data.extend_from_slice(name);
    data
}

fn set_server_name(stream: &[u8], name: &[u8]) -> Vec<u8> {
    edit_extensions(stream, |list| {
        let sni = list
            .iter_mut()
            .find(|(t, _)| *t == EXT_SERVER_NAME)
            .unwrap();
        sni.1 = server_name_extension(name);
    })
}

fn sni_of(stream: &[u8]) -> Parse<Option<String>> {
    parse_client_hello(stream).map(|hello| hello.sni)
}

#[test]
fn an_ech_extension_sets_ech_and_keeps_the_outer_sni() {
    // No client here can send ECH (OpenSSL 3.0, curl 7.88), so a GREASE-style
    // encrypted_client_hello extension is appended to real captures.
    let mut rng = XorShift::new(0xec4);
    for (name, sni) in [
        ("curl-openssl.bin", "example.test"),
        ("openssl-split-records.bin", "split.example"),
    ] {
        let payload = grease_ech_payload(&mut rng);
        let stream = edit_extensions(&capture(name), |list| list.push((EXT_ECH, payload)));
        let stream = frame(
            deframe(&stream).record_version,
            &deframe(&stream).message,
            512,
        );
        for end in 0..stream.len() {
            assert_eq!(
                parse_client_hello(&stream[..end]),
                Parse::NeedMore,
                "{name}: {end} bytes"
            );
        }
        let Parse::Done(hello) = parse_client_hello(&stream) else {
            panic!("{name}: not parsed")
        };
        assert!(hello.ech, "{name}");
        assert_eq!(hello.sni.as_deref(), Some(sni), "{name}");
    }
}

#[test]
fn server_names_are_lowercased_and_garbage_is_malformed() {
    let stream = capture("openssl-s_client.bin");
    assert_eq!(
        sni_of(&set_server_name(&stream, b"A.Example")),
        Parse::Done(Some("a.example".into()))
    );
    assert_eq!(
        sni_of(&set_server_name(&stream, b"x_y-1.Example.COM")),
        Parse::Done(Some("x_y-1.example.com".into()))
    );
    let malformed = [
        (&b"\xff\xfe.example"[..], "bad host name character"),
        (b"caf\xc3\xa9.example", "bad host name character"),
        (b"a.example\0", "bad host name character"),
        (b"a.example.", "bad host name label"),
        (b"[::1]", "bad host name character"),
        (b"", "bad host name length"),
    ];
    for (name, reason) in malformed {
        let got = sni_of(&set_server_name(&stream, name));
        assert_eq!(got, Parse::Malformed(reason), "{}", name.escape_ascii());
    }
}

#[test]
fn duplicate_extensions_are_malformed() {
    for ext_type in [EXT_SERVER_NAME, EXT_ALPN, 0x000a, 0x0033] {
        let stream = edit_extensions(&capture("curl-openssl.bin"), |list| {
            let copy = list.iter().find(|(t, _)| *t == ext_type).unwrap().clone();
            list.push(copy);
        });
        let got = parse_client_hello(&stream);
        assert_eq!(
            got,
            Parse::Malformed("duplicate extension"),
            "type {ext_type:#x}"
        );
    }
}

#[test]
fn inconsistent_lengths_are_malformed() {
    let hello = deframe(&capture("node-tls.bin"));
    let body_len = hello.message.len() - 4;
    // (offset into the handshake message, new byte, why it breaks)
    let session_id_len = 4 + 2 + 32;
    let suites_len = session_id_len + 1 + usize::from(hello.message[session_id_len]);
    let suites = usize::from(u16::from_be_bytes([
        hello.message[suites_len],
        hello.message[suites_len + 1],
    ]));
    let compression_len = suites_len + 2 + suites;
    let extensions_len = compression_len + 1 + usize::from(hello.message[compression_len]);
    let edits = [
        (session_id_len, 33, "session id longer than 32 bytes"),
        (compression_len, 0, "no compression methods"),
        (
            extensions_len,
            0xff,
            "client hello lengths are inconsistent",
        ),
        (
            extensions_len + 1,
            hello.message[extensions_len + 1] - 1,
            "bytes after the extensions",
        ),
        (
            suites_len + 1,
            hello.message[suites_len + 1] ^ 1,
            "bad cipher suite list",
        ),
        (suites_len, 0xff, "client hello lengths are inconsistent"),
        (
            3,
            u8::try_from((body_len - 1) & 0xff).unwrap(),
            "client hello lengths are inconsistent",
        ),
        (0, 2, "first handshake message is not a client hello"),
    ];
    for (at, byte, reason) in edits {
        let mut message = hello.message.clone();
        message[at] = byte;
        let got = parse_client_hello(&frame(hello.record_version, &message, 1 << 14));
        assert_eq!(got, Parse::Malformed(reason), "byte {at} = {byte:#x}");
    }
    // One byte left over after the extensions block.
    let mut message = hello.message.clone();
    message.push(0);
    message[3] += 1;
    let got = parse_client_hello(&frame(hello.record_version, &message, 1 << 14));
    assert_eq!(got, Parse::Malformed("bytes after the extensions"));
}

/// The capture padded with a padding extension (RFC 7685) so its handshake
/// message is exactly `total` bytes long.
fn padded_to(total: usize) -> Vec<u8> {
    let stream = capture("openssl-s_client.bin");
    let now = deframe(&stream).message.len();
    edit_extensions(&stream, |list| {
        list.push((EXT_PADDING, vec![0; total - now - 4]))
    })
}

#[test]
fn a_hello_of_16_kib_fits_in_max_sniff_bytes() {
    let stream = padded_to(MAX_CLIENT_HELLO_LEN);
    assert_eq!(sni_of(&stream), Parse::Done(Some("a.example".into())));
    // Even cut into four records it fits in what callers buffer.
    let hello = deframe(&stream);
    let four_records = frame(
        hello.record_version,
        &hello.message,
        MAX_CLIENT_HELLO_LEN / 4,
    );
    assert_eq!(four_records.len(), MAX_SNIFF_BYTES);
    assert_eq!(sni_of(&four_records), Parse::Done(Some("a.example".into())));
}

#[test]
fn a_hello_over_16_kib_is_malformed_once_its_length_is_known() {
    let stream = padded_to(MAX_CLIENT_HELLO_LEN + 1);
    // Record header (5) + handshake type and length (4).
    for end in 0..9 {
        assert_eq!(parse_client_hello(&stream[..end]), Parse::NeedMore);
    }
    for end in [9, 100, stream.len()] {
        let got = parse_client_hello(&stream[..end]);
        assert_eq!(got, Parse::Malformed("client hello longer than 16 kib"));
    }
}

#[test]
fn streams_that_are_not_tls_are_turned_away_at_once() {
    for stream in [
        &b"GET / HTTP/1.1\r\n"[..],
        b"\x80\x2e\x01\x03\x01",
        b"\x16\x02",
        b"\x16\x04\x01",
        b"\x17\x03\x03",
    ] {
        assert_eq!(
            parse_client_hello(stream),
            Parse::NotThis,
            "{}",
            stream.escape_ascii()
        );
    }
}
