//! DNS over TCP framing: each message is preceded by its length as two big-endian bytes
//! (RFC 1035 §4.2.2). A connection may carry several queries, pipelined (RFC 7766 §6.2.1), so
//! [`tcp_unframe`] reports how many bytes one message used and the caller keeps the rest.

use crate::Parse;
use crate::reader::Reader;

/// The largest message the two-byte length prefix can describe.
pub const MAX_TCP_MESSAGE_LEN: usize = u16::MAX as usize;

/// `msg` with its length prefix, or `None` if it is longer than [`MAX_TCP_MESSAGE_LEN`].
pub fn tcp_frame(msg: &[u8]) -> Option<Vec<u8>> {
    let len = u16::try_from(msg.len()).ok()?;
    let mut framed = Vec::with_capacity(2 + msg.len());
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(msg);
    Some(framed)
}

/// The first framed message in `buf`: the bytes it used, prefix included, and the message.
///
/// [`Parse::NeedMore`] until the whole message has arrived. A zero length is
/// [`Parse::Malformed`]: no DNS message is shorter than its 12-byte header, and a stream that
/// sends one is not speaking DNS. Never returns [`Parse::NotThis`].
pub fn tcp_unframe(buf: &[u8]) -> Parse<(usize, &[u8])> {
    let mut reader = Reader::new(buf);
    let Some(len) = reader.u16() else {
        return Parse::NeedMore;
    };
    if len == 0 {
        return Parse::Malformed("zero-length dns message");
    }
    let len = usize::from(len);
    match reader.take(len) {
        Some(msg) => Parse::Done((2 + len, msg)),
        None => Parse::NeedMore,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_prefixes_the_length() {
        let cases: [(&[u8], Option<&[u8]>); 3] = [
            (b"", Some(b"\x00\x00")),
            (b"abc", Some(b"\x00\x03abc")),
            (&[7; 300], None),
        ];
        for (msg, want) in cases {
            match want {
                Some(want) => assert_eq!(tcp_frame(msg).as_deref(), Some(want)),
                None => assert_eq!(&tcp_frame(msg).unwrap()[..2], &[1, 44]),
            }
        }
        assert_eq!(
            tcp_frame(&vec![0; MAX_TCP_MESSAGE_LEN]).unwrap().len(),
            65537
        );
        assert_eq!(tcp_frame(&vec![0; MAX_TCP_MESSAGE_LEN + 1]), None);
    }

    /// What [`tcp_unframe`] returns.
    type Unframed<'a> = Parse<(usize, &'a [u8])>;

    #[test]
    fn unframe_outcomes() {
        let cases: [(&[u8], Unframed); 7] = [
            (b"", Parse::NeedMore),
            (b"\x00", Parse::NeedMore),
            (b"\x00\x03ab", Parse::NeedMore),
            (b"\x00\x00", Parse::Malformed("zero-length dns message")),
            (b"\x00\x00abc", Parse::Malformed("zero-length dns message")),
            (b"\x00\x03abc", Parse::Done((5, b"abc"))),
            (b"\x00\x01a\x00\x01b", Parse::Done((3, b"a"))),
        ];
        for (buf, want) in cases {
            assert_eq!(tcp_unframe(buf), want, "{}", buf.escape_ascii());
        }
    }

    #[test]
    fn frame_then_unframe_round_trips() {
        for len in [1, 12, 512, 4096, MAX_TCP_MESSAGE_LEN] {
            let msg: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let framed = tcp_frame(&msg).unwrap();
            assert_eq!(tcp_unframe(&framed), Parse::Done((len + 2, &msg[..])));
            for cut in [0, 1, 2, framed.len() - 1] {
                assert_eq!(
                    tcp_unframe(&framed[..cut]),
                    Parse::NeedMore,
                    "{len} cut {cut}"
                );
            }
        }
    }
}
