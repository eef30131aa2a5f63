//! Identifies a client connection from its first bytes without terminating TLS.
//!
//! Warden sits between CI jobs and the network. Before it can apply policy to a
//! connection it has to know where the client *thinks* it is going: the SNI of a
//! TLS ClientHello, or the Host of a plain HTTP/1.x request. This crate holds the
//! pure parsers that answer that question from the bytes buffered so far. They do
//! no I/O and keep no state: the caller reads from the socket, appends to one
//! buffer, and calls [`sniff`] (or a protocol's parser) on the whole buffer after
//! every read until it gets an answer other than [`Parse::NeedMore`], or until the
//! buffer reaches [`MAX_SNIFF_BYTES`], at which point it treats the stream as raw
//! TCP.
//!
//! The parsers never panic on any input and never guess: a field is reported only
//! when the bytes say exactly what it is, and a message that is recognised but
//! inconsistent is reported as [`Parse::Malformed`] rather than half-parsed.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod dns;
pub mod http;
mod name;
mod reader;
pub mod tls;

/// The most bytes a caller needs to buffer before giving up on sniffing.
///
/// A ClientHello of at most 16 KiB (the cap [`tls::parse_client_hello`] applies)
/// fits in this many bytes when carried in up to four TLS records, and an HTTP
/// request head is capped at 16 KiB. Past this, callers stop buffering and relay
/// the stream as raw TCP.
pub const MAX_SNIFF_BYTES: usize = 16 * 1024 + 5 * 4;

/// Outcome of feeding the bytes received so far to a parser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parse<T> {
    /// The bytes are a valid prefix; more are needed to decide.
    NeedMore,
    /// These bytes are not this protocol (caller tries the next parser or treats
    /// the stream as raw TCP).
    NotThis,
    /// The protocol was recognised but the message is malformed (reason is a
    /// short lowercase static text).
    Malformed(&'static str),
    /// Parsed.
    Done(T),
}

impl<T> Parse<T> {
    /// Maps a [`Parse::Done`] value, leaving the other outcomes as they are.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Parse<U> {
        match self {
            Parse::NeedMore => Parse::NeedMore,
            Parse::NotThis => Parse::NotThis,
            Parse::Malformed(reason) => Parse::Malformed(reason),
            Parse::Done(value) => Parse::Done(f(value)),
        }
    }
}

/// What [`sniff`] recognised at the start of a client stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sniffed {
    /// A TLS ClientHello.
    Tls(tls::ClientHello),
    /// An HTTP/1.x request head.
    Http(http::RequestHead),
}

/// Identifies the stream from the bytes received so far: TLS first, then HTTP/1.x.
///
/// Returns [`Parse::NotThis`] when the bytes are neither, so the caller can relay
/// the stream as raw TCP. The two protocols are told apart by their first bytes
/// (a TLS handshake record starts with `0x16 0x03`, an HTTP request with an
/// uppercase method), so at most one parser can ever claim a stream.
pub fn sniff(buf: &[u8]) -> Parse<Sniffed> {
    match tls::parse_client_hello(buf) {
        Parse::NotThis => http::parse_request_head(buf).map(Sniffed::Http),
        other => other.map(Sniffed::Tls),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_input_needs_more() {
        assert_eq!(sniff(b""), Parse::NeedMore);
    }

    #[test]
    fn tls_and_http_are_told_apart() {
        assert_eq!(sniff(b"\x16"), Parse::NeedMore);
        assert!(matches!(
            sniff(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
            Parse::Done(Sniffed::Http(_))
        ));
        assert_eq!(sniff(b"SSH-2.0-OpenSSH_9.2\r\n"), Parse::NotThis);
    }
}
