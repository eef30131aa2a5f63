//! The TLS record layer, as far as the client's first flight needs it.
//!
//! A client may cut its ClientHello into several handshake records (RFC 8446
//! §5.1, RFC 5246 §6.2.1), and the caller may hand over any prefix of the stream,
//! so this module walks the records present, concatenates their fragments and
//! reports the handshake message once all of it is there.

use super::MAX_CLIENT_HELLO_LEN;
use crate::Parse;
use crate::reader::Reader;

/// ContentType.handshake (RFC 8446 §5.1, RFC 5246 §6.2.1).
const CONTENT_HANDSHAKE: u8 = 22;
/// HandshakeType.client_hello (RFC 8446 §4, RFC 5246 §7.4).
const CLIENT_HELLO: u8 = 1;
/// TLSPlaintext.length MUST NOT exceed 2^14 (RFC 8446 §5.1, RFC 5246 §6.2.1).
const MAX_FRAGMENT_LEN: usize = 1 << 14;
/// Handshake header: msg_type (1 byte) and length (3 bytes), RFC 8446 §4.
const HANDSHAKE_HEADER_LEN: usize = 4;

/// A reassembled ClientHello handshake message.
pub(super) struct Handshake {
    /// legacy_record_version of the first record.
    pub(super) record_version: u16,
    /// The ClientHello body, without the 4-byte handshake header.
    pub(super) body: Vec<u8>,
}

/// One record header plus whatever part of its fragment has arrived.
struct Record<'a> {
    version: u16,
    fragment: &'a [u8],
    whole: bool,
}

/// Collects the ClientHello handshake message from the records in `buf`.
pub(super) fn reassemble(buf: &[u8]) -> Parse<Handshake> {
    let mut records = Reader::new(buf);
    let mut first_version = None;
    let mut message = Vec::new();
    loop {
        let record = match read_record(&mut records, first_version.is_none()) {
            Ok(record) => record,
            Err(stop) => return stop,
        };
        let record_version = *first_version.get_or_insert(record.version);
        message.extend_from_slice(record.fragment);
        match complete_body(&message) {
            Ok(Some(body)) => {
                return Parse::Done(Handshake {
                    record_version,
                    body: body.to_vec(),
                });
            }
            // RFC 8446 §5.1: a handshake message may continue in the next
            // record, which must also be a handshake record.
            Ok(None) if record.whole => continue,
            Ok(None) => return Parse::NeedMore,
            Err(reason) => return Parse::Malformed(reason),
        }
    }
}

/// Reads one record header (RFC 8446 §5.1, RFC 5246 §6.2.1) and the part of its
/// fragment present in `records`.
///
/// `first` says whether this is the stream's first record: a stream whose first
/// record is not a TLS handshake record is not TLS at all, while a later
/// non-handshake record interrupts a ClientHello and makes it malformed.
fn read_record<'a, T>(records: &mut Reader<'a>, first: bool) -> Result<Record<'a>, Parse<T>> {
    let refuse = |reason| {
        if first {
            Parse::NotThis
        } else {
            Parse::Malformed(reason)
        }
    };
    // Each byte is checked as soon as it arrives, so a stream that is not TLS
    // is turned away after one or two bytes instead of five.
    let content_type = records.u8().ok_or(Parse::NeedMore)?;
    if content_type != CONTENT_HANDSHAKE {
        return Err(refuse("non-handshake record inside client hello"));
    }
    let major = records.u8().ok_or(Parse::NeedMore)?;
    if major != 3 {
        return Err(refuse("record version is not tls"));
    }
    let minor = records.u8().ok_or(Parse::NeedMore)?;
    let len = usize::from(records.u16().ok_or(Parse::NeedMore)?);
    // RFC 8446 §5.1: zero-length handshake fragments MUST NOT be sent.
    if len == 0 {
        return Err(Parse::Malformed("empty handshake record"));
    }
    if len > MAX_FRAGMENT_LEN {
        return Err(Parse::Malformed("record longer than 2^14 bytes"));
    }
    let fragment = records.take_up_to(len);
    Ok(Record {
        version: u16::from_be_bytes([3, minor]),
        fragment,
        whole: fragment.len() == len,
    })
}

/// Returns the ClientHello body once `message` holds all of it, `None` while it
/// is incomplete, or why it can never become a valid ClientHello.
fn complete_body(message: &[u8]) -> Result<Option<&[u8]>, &'static str> {
    // RFC 8446 §4: struct { HandshakeType msg_type; uint24 length; ... } Handshake;
    let mut r = Reader::new(message);
    let Some(msg_type) = r.u8() else {
        return Ok(None);
    };
    if msg_type != CLIENT_HELLO {
        return Err("first handshake message is not a client hello");
    }
    let Some(len) = r.u24() else {
        return Ok(None);
    };
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    if len > MAX_CLIENT_HELLO_LEN - HANDSHAKE_HEADER_LEN {
        return Err("client hello longer than 16 kib");
    }
    Ok(r.take(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version_of(buf: &[u8]) -> Parse<(u16, Vec<u8>)> {
        reassemble(buf).map(|h| (h.record_version, h.body))
    }

    #[test]
    fn turns_away_non_tls_after_the_first_telling_byte() {
        assert_eq!(version_of(b""), Parse::NeedMore);
        assert_eq!(version_of(b"\x16"), Parse::NeedMore);
        assert_eq!(version_of(b"G"), Parse::NotThis);
        assert_eq!(version_of(b"\x16\x02"), Parse::NotThis);
        assert_eq!(version_of(b"\x15\x03\x03\x00\x02"), Parse::NotThis);
    }

    #[test]
    fn joins_fragments_from_several_records() {
        let buf = b"\x16\x03\x01\x00\x02\x01\x00\x16\x03\x03\x00\x03\x00\x01\xaa";
        assert_eq!(version_of(buf), Parse::Done((0x0301, vec![0xaa])));
        for end in 0..buf.len() {
            assert_eq!(
                version_of(buf.get(..end).unwrap_or_default()),
                Parse::NeedMore
            );
        }
    }

    #[test]
    fn rejects_broken_record_framing() {
        let cases: [(&[u8], &str); 5] = [
            (b"\x16\x03\x01\x00\x00", "empty handshake record"),
            (b"\x16\x03\x01\x40\x01", "record longer than 2^14 bytes"),
            (
                b"\x16\x03\x01\x00\x01\x02",
                "first handshake message is not a client hello",
            ),
            (
                b"\x16\x03\x01\x00\x01\x01\x17",
                "non-handshake record inside client hello",
            ),
            (
                b"\x16\x03\x01\x00\x04\x01\x00\x40\x00",
                "client hello longer than 16 kib",
            ),
        ];
        for (buf, reason) in cases {
            assert_eq!(version_of(buf), Parse::Malformed(reason), "{buf:02x?}");
        }
    }

    #[test]
    fn a_later_record_with_another_version_major_is_malformed() {
        let buf = b"\x16\x03\x01\x00\x01\x01\x16\x02";
        assert_eq!(
            version_of(buf),
            Parse::Malformed("record version is not tls")
        );
    }
}
