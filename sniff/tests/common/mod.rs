//! Helpers shared by the integration tests: loading the real ClientHello
//! captures in `tests/data/`, re-framing a capture's handshake message into
//! different TLS records, editing its extension list with every length field
//! fixed up, and a small deterministic PRNG for the no-panic tests.
//!
//! These helpers trust their input (the committed captures) and panic on
//! anything unexpected: they build test cases, they are not under test.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::path::Path;

/// The captures in `tests/data/`, each made by `tests/data/capture.py` from a
/// real client on this machine talking to a loopback listener.
pub const CAPTURES: [&str; 8] = [
    "curl-openssl.bin",
    "java-jsse.bin",
    "node-tls.bin",
    "openssl-s_client.bin",
    "openssl-split-records.bin",
    "openssl-tls12-nosni.bin",
    "python-ssl.bin",
    "wget-gnutls.bin",
];

/// ExtensionType values used by the edits below.
pub const EXT_SERVER_NAME: u16 = 0;
pub const EXT_PADDING: u16 = 21;
pub const EXT_ALPN: u16 = 16;
pub const EXT_ECH: u16 = 0xfe0d;

/// The bytes of a capture in `tests/data/`.
pub fn capture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// A ClientHello stream taken apart into its record version and the
/// handshake message the records carry.
pub struct Hello {
    pub record_version: [u8; 2],
    pub message: Vec<u8>,
}

/// Concatenates the fragments of the handshake records in `stream`.
pub fn deframe(stream: &[u8]) -> Hello {
    let mut message = Vec::new();
    let mut rest = stream;
    while !rest.is_empty() {
        assert_eq!(rest[0], 22, "capture holds a non-handshake record");
        let len = usize::from(u16::from_be_bytes([rest[3], rest[4]]));
        message.extend_from_slice(&rest[5..5 + len]);
        rest = &rest[5 + len..];
    }
    Hello {
        record_version: [stream[1], stream[2]],
        message,
    }
}

/// The number of TLS records in `stream`.
pub fn record_count(stream: &[u8]) -> usize {
    let mut count = 0;
    let mut rest = stream;
    while !rest.is_empty() {
        let len = usize::from(u16::from_be_bytes([rest[3], rest[4]]));
        rest = &rest[5 + len..];
        count += 1;
    }
    count
}

/// Frames `message` into handshake records carrying at most `payload_len`
/// bytes each.
pub fn frame(record_version: [u8; 2], message: &[u8], payload_len: usize) -> Vec<u8> {
    let mut stream = Vec::new();
    for chunk in message.chunks(payload_len) {
        stream.push(22);
        stream.extend_from_slice(&record_version);
        stream.extend_from_slice(&u16::try_from(chunk.len()).unwrap().to_be_bytes());
        stream.extend_from_slice(chunk);
    }
    stream
}

/// Re-frames the ClientHello in `stream` into records of at most `payload_len`
/// bytes: the same handshake message a client could have sent cut differently.
pub fn reframe(stream: &[u8], payload_len: usize) -> Vec<u8> {
    let hello = deframe(stream);
    frame(hello.record_version, &hello.message, payload_len)
}

/// Offset, within a ClientHello handshake message, of the extensions block's
/// length field (RFC 8446 §4.1.2).
fn extensions_at(message: &[u8]) -> usize {
    let mut at = 4 + 2 + 32;
    at += 1 + usize::from(message[at]);
    at += 2 + usize::from(u16::from_be_bytes([message[at], message[at + 1]]));
    at += 1 + usize::from(message[at]);
    at
}

/// Rebuilds the ClientHello in `stream` after `edit` has changed its list of
/// (type, data) extensions, fixing the extensions, handshake and record
/// lengths. The result is framed in records of at most 2^14 bytes.
pub fn edit_extensions(stream: &[u8], edit: impl FnOnce(&mut Vec<(u16, Vec<u8>)>)) -> Vec<u8> {
    let hello = deframe(stream);
    let at = extensions_at(&hello.message);
    let mut list = Vec::new();
    let mut rest = hello.message.get(at + 2..).unwrap_or_default();
    while !rest.is_empty() {
        let ext_type = u16::from_be_bytes([rest[0], rest[1]]);
        let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        list.push((ext_type, rest[4..4 + len].to_vec()));
        rest = &rest[4 + len..];
    }
    edit(&mut list);
    let mut extensions = Vec::new();
    for (ext_type, data) in &list {
        extensions.extend_from_slice(&ext_type.to_be_bytes());
        extensions.extend_from_slice(&u16::try_from(data.len()).unwrap().to_be_bytes());
        extensions.extend_from_slice(data);
    }
    let mut message = hello.message[..at].to_vec();
    message.extend_from_slice(&u16::try_from(extensions.len()).unwrap().to_be_bytes());
    message.extend_from_slice(&extensions);
    let body_len = u32::try_from(message.len() - 4).unwrap().to_be_bytes();
    message[1..4].copy_from_slice(&body_len[1..]);
    frame(hello.record_version, &message, 1 << 14)
}

/// The ECHClientHello an outer ClientHello carries (draft-ietf-tls-esni §5):
/// type outer(0), HKDF-SHA256/AES-128-GCM, a config id, a 32-byte X25519 `enc`
/// and an opaque payload. The bytes are arbitrary, as in GREASE ECH, which is
/// indistinguishable from real ECH without the server's key.
pub fn grease_ech_payload(rng: &mut XorShift) -> Vec<u8> {
    let mut data = vec![0, 0x00, 0x01, 0x00, 0x01];
    data.push(rng.byte());
    data.extend_from_slice(&32u16.to_be_bytes());
    data.extend(rng.bytes(32));
    data.extend_from_slice(&208u16.to_be_bytes());
    data.extend(rng.bytes(208));
    data
}

/// xorshift64 (Marsaglia 2003): deterministic, seedable, no dependency.
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> Self {
        XorShift(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next_u64() % u64::try_from(n).unwrap()).unwrap()
    }

    pub fn byte(&mut self) -> u8 {
        self.next_u64().to_le_bytes()[0]
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.byte()).collect()
    }
}
