//! The first bytes of a connection: read until the sniffers can say what it is.
//!
//! Runs while the upstream connection is being dialled. Stops as soon as the bytes identify a TLS
//! ClientHello or an HTTP/1 request head, prove to be neither (raw TCP), or the destination
//! speaks first (a server-first protocol such as SMTP: the client will not send until it reads
//! the banner), or a short timeout passes with no verdict.

use sniff::{Parse, Sniffed};

/// What the first bytes were.
#[derive(Debug)]
pub enum Verdict {
    /// A complete TLS ClientHello or HTTP request head.
    Identified(Sniffed),
    /// Not TLS and not HTTP (or too long to tell): relayed as raw TCP.
    Raw,
    /// A TLS record that is not a valid ClientHello: the connection is closed.
    MalformedTls(&'static str),
}

/// Judges `buf` (everything the client sent so far). `None`: need more bytes.
pub fn judge(buf: &[u8]) -> Option<Verdict> {
    match sniff::sniff(buf) {
        Parse::NeedMore if buf.len() < sniff::MAX_SNIFF_BYTES => None,
        Parse::NeedMore | Parse::NotThis => Some(Verdict::Raw),
        Parse::Done(s) => Some(Verdict::Identified(s)),
        // Only a TLS handshake record is worth closing over; odd HTTP is relayed as raw bytes.
        Parse::Malformed(why) if buf.first() == Some(&0x16) => Some(Verdict::MalformedTls(why)),
        Parse::Malformed(_) => Some(Verdict::Raw),
    }
}
