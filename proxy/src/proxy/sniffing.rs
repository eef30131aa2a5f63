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
    /// Neither TLS nor HTTP, or nothing at all (a server-first protocol): raw TCP.
    Raw,
    /// It started as TLS or HTTP but never gave a name Warden could read: cut short, too long,
    /// or a malformed HTTP head. Such a stream still names a host to whoever receives it, so the
    /// policy must not treat it as nameless raw TCP (which a name rule for the address allows).
    Unidentified(&'static str),
    /// A TLS record that is not a valid ClientHello: the connection is closed.
    MalformedTls(&'static str),
}

/// Judges `buf` (everything the client sent so far). `None`: need more bytes.
pub fn judge(buf: &[u8]) -> Option<Verdict> {
    match sniff::sniff(buf) {
        Parse::NeedMore if buf.len() < sniff::MAX_SNIFF_BYTES => None,
        Parse::NeedMore => Some(Verdict::Unidentified("first bytes too long to identify")),
        Parse::NotThis => Some(Verdict::Raw),
        Parse::Done(s) => Some(Verdict::Identified(s)),
        Parse::Malformed(why) if is_tls(buf) => Some(Verdict::MalformedTls(why)),
        Parse::Malformed(_) => Some(Verdict::Unidentified("malformed HTTP request head")),
    }
}

/// The verdict when no more bytes will come (client EOF, sniff timeout, destination spoke
/// first) on what was read so far.
pub fn at_end(buf: &[u8]) -> Verdict {
    if buf.is_empty() {
        return Verdict::Raw;
    }
    judge(buf).unwrap_or(Verdict::Unidentified(if is_tls(buf) {
        "incomplete TLS ClientHello"
    } else {
        "incomplete HTTP request head"
    }))
}

fn is_tls(buf: &[u8]) -> bool {
    buf.first() == Some(&0x16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_a_hello_is_not_raw() {
        let partial = [0x16, 0x03, 0x01, 0x02, 0x00, 0x01];
        assert!(judge(&partial).is_none());
        assert!(matches!(at_end(&partial), Verdict::Unidentified(_)));
        assert!(matches!(
            at_end(b"GET / HTTP/1.1\r\nHo"),
            Verdict::Unidentified(_)
        ));
        assert!(matches!(at_end(b""), Verdict::Raw));
        assert!(matches!(at_end(b"SSH-2.0-x\r\n"), Verdict::Raw));
    }

    #[test]
    fn too_long_is_unidentified_not_raw() {
        let mut long = b"GET / HTTP/1.1\r\n".to_vec();
        long.resize(sniff::MAX_SNIFF_BYTES + 10, b'a');
        assert!(matches!(judge(&long), Some(Verdict::Unidentified(_))));
    }
}
