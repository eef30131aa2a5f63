//! `/ws`: a real, if minimal, WebSocket server (RFC 6455), to check that an intercepting proxy
//! passes an HTTP/1.1 upgrade through and then relays the upgraded connection both ways.
//!
//! The handshake is checked and answered as the RFC says (§4.2.2: `Sec-WebSocket-Accept` is the
//! base64 SHA-1 of the key and a fixed GUID), and each message the client sends comes back as an
//! unmasked frame with the same opcode and payload; a ping gets a pong and a close gets a close,
//! after which the server closes the connection. Only the HTTP/1.1 upgrade is served: WebSocket
//! over h2 (RFC 8441, extended CONNECT) is answered 400.

use http::{HeaderValue, Request, Response, StatusCode, Version, header};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::routes::{empty, text};
use super::server::{Body, Conn, Counted};

/// Appended to the client's key before hashing (RFC 6455 §1.3).
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/// Largest frame payload echoed.
const MAX_FRAME: u64 = 64 * 1024 * 1024;

const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

/// Answers a WebSocket handshake with 101 and echoes on the upgraded connection.
pub(super) fn upgrade(mut req: Request<Counted>, conn: &Conn) -> Response<Body> {
    if req.version() != Version::HTTP_11 {
        return text(400, "WebSocket is served over HTTP/1.1 only\n".into());
    }
    let header_has = |name, token: &str| {
        req.headers().get_all(name).iter().any(|v| {
            v.to_str()
                .unwrap_or_default()
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case(token))
        })
    };
    if !header_has(header::UPGRADE, "websocket") || !header_has(header::CONNECTION, "upgrade") {
        return text(
            426,
            "expected Upgrade: websocket and Connection: Upgrade\n".into(),
        );
    }
    if !header_has(header::SEC_WEBSOCKET_VERSION, "13") {
        return text(400, "expected Sec-WebSocket-Version: 13\n".into());
    }
    let Some(key) = req.headers().get(header::SEC_WEBSOCKET_KEY) else {
        return text(400, "missing Sec-WebSocket-Key\n".into());
    };
    let accept = accept_key(key.as_bytes());
    let on_upgrade = hyper::upgrade::on(&mut req);
    let (origin, peer) = (conn.origin.clone(), conn.peer);
    tokio::spawn(async move {
        let result = match on_upgrade.await {
            Ok(upgraded) => echo(TokioIo::new(upgraded)).await,
            Err(e) => Err(std::io::Error::other(e)),
        };
        if let Err(e) = result {
            origin.record_error(peer, format!("websocket: {e}"));
        }
    });
    let mut response = Response::new(empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(
        header::SEC_WEBSOCKET_ACCEPT,
        HeaderValue::from_str(&accept).expect("base64 is a valid header value"),
    );
    response
}

/// `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key` (RFC 6455 §4.2.2, step 5.4).
pub fn accept_key(key: &[u8]) -> String {
    let mut input = key.to_vec();
    input.extend_from_slice(GUID.as_bytes());
    base64(&sha1(&input))
}

/// Echoes frames until the client closes (RFC 6455 §5.2 framing).
async fn echo<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S) -> std::io::Result<()> {
    loop {
        let mut first = [0u8; 2];
        match stream.read_exact(&mut first).await {
            Ok(_) => {}
            // A client that leaves without a close frame ends the echo too.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        let (fin_and_opcode, opcode) = (first[0] & 0x8F, first[0] & 0x0F);
        let payload = read_payload(&mut stream, first[1]).await?;
        match opcode {
            OP_CLOSE => {
                write_frame(&mut stream, 0x80 | OP_CLOSE, &payload).await?;
                return stream.shutdown().await;
            }
            OP_PING => write_frame(&mut stream, 0x80 | OP_PONG, &payload).await?,
            OP_PONG => {}
            _ => write_frame(&mut stream, fin_and_opcode, &payload).await?,
        }
    }
}

/// Reads a frame's length, masking key and payload after its first two bytes, and unmasks it.
async fn read_payload<S: AsyncRead + Unpin>(
    stream: &mut S,
    second: u8,
) -> std::io::Result<Vec<u8>> {
    let len = match second & 0x7F {
        126 => u64::from(stream.read_u16().await?),
        127 => stream.read_u64().await?,
        n => u64::from(n),
    };
    if len > MAX_FRAME {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("frame of {len} bytes is larger than {MAX_FRAME}"),
        ));
    }
    let mut mask = [0u8; 4];
    if second & 0x80 != 0 {
        stream.read_exact(&mut mask).await?;
    }
    let mut payload = vec![0u8; len as usize];
    stream.read_exact(&mut payload).await?;
    for (i, byte) in payload.iter_mut().enumerate() {
        *byte ^= mask[i % 4];
    }
    Ok(payload)
}

/// Writes one unmasked frame, as a server must (RFC 6455 §5.1).
async fn write_frame<S: AsyncWrite + Unpin>(
    stream: &mut S,
    first: u8,
    payload: &[u8],
) -> std::io::Result<()> {
    let mut frame = vec![first];
    match payload.len() {
        n if n < 126 => frame.push(n as u8),
        n if n <= usize::from(u16::MAX) => {
            frame.push(126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(payload);
    stream.write_all(&frame).await?;
    stream.flush().await
}

/// SHA-1 (RFC 3174), which the handshake needs and nothing else in the test crate provides.
fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0];
    let mut message = data.to_vec();
    message.push(0x80);
    while message.len() % 64 != 56 {
        message.push(0);
    }
    message.extend_from_slice(&(data.len() as u64 * 8).to_be_bytes());
    for block in message.chunks(64) {
        let mut w = [0u32; 80];
        for (i, word) in block.chunks(4).enumerate() {
            w[i] = u32::from_be_bytes(word.try_into().expect("4-byte words"));
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..20 => ((b & c) | (!b & d), 0x5A827999),
                20..40 => (b ^ c ^ d, 0x6ED9EBA1),
                40..60 => ((b & c) | (b & d) | (c & d), 0x8F1BBCDC),
                _ => (b ^ c ^ d, 0xCA62C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            (e, d, c, b, a) = (d, c, b.rotate_left(30), a, t);
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 20];
    for (chunk, word) in out.chunks_mut(4).zip(h) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}

/// Standard base64 with padding (RFC 4648 §4).
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha1_matches_rfc_3174() {
        let hex = |d: [u8; 20]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(
            hex(sha1(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(hex(sha1(b"")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        let long = b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
        assert_eq!(hex(sha1(long)), "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
    }

    #[test]
    fn base64_pads() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn accept_key_matches_rfc_6455() {
        // RFC 6455 §1.3.
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
}
