//! Reads the ClientHello a TLS client sends first, without terminating TLS.
//!
//! Warden does not decrypt the traffic it polices. What it needs from a TLS
//! connection is in the clear in the client's first handshake message: the server
//! name the client asks for (SNI), the application protocols it offers (ALPN), and
//! whether it uses Encrypted Client Hello, in which case the SNI seen here is only
//! the public outer name. [`parse_client_hello`] takes the raw bytes the client has
//! sent so far, reassembles the ClientHello from however many TLS records carry
//! it (`record`), and decodes the fields above (`hello`).

mod hello;
mod record;

use crate::Parse;

/// The largest ClientHello handshake message accepted, header included.
///
/// Real clients stay far below this (a few hundred bytes, a few KiB with large
/// post-quantum key shares); a larger claim is treated as malformed rather than
/// buffered.
pub const MAX_CLIENT_HELLO_LEN: usize = 16 * 1024;

/// The fields of a ClientHello that Warden's policy and audit log use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientHello {
    /// The first `host_name` of the server_name extension (RFC 6066 §3),
    /// lowercased; `None` when the client sent no host name.
    pub sni: Option<String>,
    /// The protocol names offered in the ALPN extension (RFC 7301), in the
    /// client's order, decoded as lossy UTF-8; empty when there is no ALPN.
    pub alpn: Vec<String>,
    /// Whether the encrypted_client_hello extension (type 0xfe0d) is present.
    ///
    /// Real ECH and GREASE ECH look the same from outside; either way the `sni`
    /// above may not be the server the client actually reaches.
    pub ech: bool,
    /// `legacy_record_version` of the first record (RFC 8446 §5.1), e.g. 0x0301.
    pub record_version: u16,
    /// `legacy_version` of the ClientHello (RFC 8446 §4.1.2), e.g. 0x0303.
    pub legacy_version: u16,
}

/// Parses a ClientHello from the start of a client's TCP stream.
///
/// `buf` holds every byte received so far. The ClientHello may span several
/// handshake records; until all of it has arrived the answer is
/// [`Parse::NeedMore`]. A stream that does not start with a TLS handshake record
/// is [`Parse::NotThis`]. Bytes after the ClientHello are not examined.
pub fn parse_client_hello(buf: &[u8]) -> Parse<ClientHello> {
    match record::reassemble(buf) {
        Parse::Done(handshake) => match hello::parse(&handshake.body, handshake.record_version) {
            Ok(hello) => Parse::Done(hello),
            Err(reason) => Parse::Malformed(reason),
        },
        Parse::NeedMore => Parse::NeedMore,
        Parse::NotThis => Parse::NotThis,
        Parse::Malformed(reason) => Parse::Malformed(reason),
    }
}
