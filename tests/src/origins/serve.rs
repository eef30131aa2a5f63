//! How each kind of origin treats a connection.
//!
//! The protocols are the smallest that exercise what Warden sniffs and relays: one HTTP/1.1
//! request per connection (over TLS or not), an echo that honours half-close (so a relay that
//! forgets to forward FIN hangs the test instead of passing), and a banner protocol where the
//! server speaks first (so a sniffer that waits for client bytes deadlocks visibly). The HTTP
//! reader is deliberately minimal: a head of at most 16 KiB and `Content-Length` bodies.

use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

use super::origin::{Origin, Request};

/// Largest request head read (request line and headers).
const MAX_HEAD: usize = 16 * 1024;
/// Largest request body read and discarded.
const MAX_BODY: usize = 1024 * 1024;

/// A configured protocol, ready to serve connections.
#[derive(Clone)]
pub(super) enum Serve {
    Http,
    Tls(TlsAcceptor),
    Echo,
    Banner(String),
}

/// Serves one accepted connection.
pub(super) async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    origin: &Origin,
    how: &Serve,
) -> io::Result<()> {
    match how {
        Serve::Http => http(stream, peer, (None, None), origin).await,
        Serve::Tls(acceptor) => {
            let stream = acceptor.accept(stream).await?;
            let conn = stream.get_ref().1;
            let sni = conn.server_name().map(str::to_owned);
            let alpn = conn
                .alpn_protocol()
                .map(|p| String::from_utf8_lossy(p).into_owned());
            http(stream, peer, (sni, alpn), origin).await
        }
        Serve::Echo => echo(stream).await,
        Serve::Banner(banner) => {
            let mut stream = stream;
            stream.write_all(banner.as_bytes()).await?;
            echo(stream).await
        }
    }
}

/// Copies everything back until the client's EOF, then closes the write side.
async fn echo<S: AsyncRead + AsyncWrite + Unpin>(stream: S) -> io::Result<()> {
    let (mut reader, mut writer) = tokio::io::split(stream);
    tokio::io::copy(&mut reader, &mut writer).await?;
    writer.shutdown().await
}

/// Answers one HTTP/1.1 request with `hello from <origin> path=<target>` and closes.
async fn http<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    peer: SocketAddr,
    (sni, alpn): (Option<String>, Option<String>),
    origin: &Origin,
) -> io::Result<()> {
    let mut buf = Vec::new();
    let Some(head_len) = read_head(&mut stream, &mut buf).await? else {
        // Handshake-only clients (`openssl s_client`, health checks) leave without asking.
        return Ok(());
    };
    let head = Head::parse(&buf[..head_len])?;
    if head.expect_continue && head.content_length > 0 {
        stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
    }
    let body_len = read_body(&mut stream, buf.len() - head_len, head.content_length).await?;
    let body = format!("hello from {} path={}\n", origin.name(), head.target);
    let mut response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    if head.method != "HEAD" {
        response.push_str(&body);
    }
    origin.record_request(Request {
        peer,
        sni,
        alpn,
        method: head.method,
        target: head.target,
        host: head.host,
        body_len,
    });
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// Reads until the blank line that ends the head; returns the head's length in `buf`, or `None`
/// if the client closed without sending anything.
async fn read_head<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
) -> io::Result<Option<usize>> {
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return Ok(Some(end + 4));
        }
        if buf.len() > MAX_HEAD {
            return Err(invalid("request head larger than 16 KiB"));
        }
        let n = stream.read(&mut chunk).await?;
        match (n, buf.is_empty()) {
            (0, true) => return Ok(None),
            (0, false) => return Err(invalid("connection closed inside the request head")),
            _ => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Reads and discards the rest of a `Content-Length` body; returns its length.
async fn read_body<S: AsyncRead + Unpin>(
    stream: &mut S,
    already: usize,
    content_length: usize,
) -> io::Result<usize> {
    if content_length > MAX_BODY {
        return Err(invalid("request body larger than 1 MiB"));
    }
    let mut have = already;
    let mut chunk = [0u8; 8192];
    while have < content_length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(invalid("connection closed inside the request body"));
        }
        have += n;
    }
    Ok(have)
}

/// The parts of a request head the origins use (RFC 9112 §3, §6.3; leniently).
struct Head {
    method: String,
    target: String,
    host: Option<String>,
    content_length: usize,
    expect_continue: bool,
}

impl Head {
    fn parse(head: &[u8]) -> io::Result<Head> {
        let text = String::from_utf8_lossy(head);
        let mut lines = text.split("\r\n");
        let mut request_line = lines.next().unwrap_or_default().split(' ');
        let (Some(method), Some(target)) = (request_line.next(), request_line.next()) else {
            return Err(invalid("malformed request line"));
        };
        let mut parsed = Head {
            method: method.to_owned(),
            target: target.to_owned(),
            host: None,
            content_length: 0,
            expect_continue: false,
        };
        for (name, value) in lines.filter_map(|l| l.split_once(':')) {
            let value = value.trim();
            match name.trim().to_ascii_lowercase().as_str() {
                "host" => parsed.host = Some(value.to_owned()),
                "content-length" => {
                    parsed.content_length = value
                        .parse()
                        .map_err(|_| invalid("malformed content-length"))?;
                }
                "expect" => parsed.expect_continue = value.eq_ignore_ascii_case("100-continue"),
                _ => {}
            }
        }
        Ok(parsed)
    }
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}
