//! Following a plain-HTTP/1 connection request by request (client to server).
//!
//! Only the first request head is sniffed before the connection is allowed, but HTTP/1
//! keep-alive lets the same connection carry more requests, each with its own `Host`, and a
//! shared address (a CDN, a virtual-hosting server) routes each by that header. In block mode
//! Warden therefore follows the message framing of RFC 9112 §6 (Content-Length, chunked) to find
//! every later request head and refuses a connection whose `Host` changes. After an `Upgrade`
//! or `CONNECT`, bytes that are not an HTTP request head end the following (WebSocket frames,
//! tunnelled TLS); anything it cannot frame is refused rather than guessed.

use sniff::{Parse, http::parse_request_head};

/// Why a connection must be refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A later request named another host.
    HostChanged(String),
    /// The stream stopped being HTTP/1 Warden can frame.
    Unframed(&'static str),
}

enum State {
    /// Collecting a request head.
    Head(Vec<u8>),
    /// This many body bytes to pass.
    Body(u64),
    /// Chunked body: collecting a chunk-size line.
    ChunkSize(Vec<u8>),
    /// Chunk data (plus its CRLF) to pass.
    ChunkData(u64),
    /// Trailer section, up to an empty line.
    Trailers(Vec<u8>),
    /// After an upgrade or CONNECT was asked for: the next bytes decide.
    MaybeOpaque,
    /// No longer HTTP: not followed.
    Opaque,
}

/// The request-by-request view of one connection's client-to-server bytes.
pub struct Requests {
    host: String,
    state: State,
}

/// Longest request head or chunk-size line accepted.
const MAX_LINE: usize = 16 * 1024;

impl Requests {
    /// Follows a connection whose requests must all name `host` (lowercase, without port).
    pub fn new(host: &str) -> Self {
        Self {
            host: host.to_ascii_lowercase(),
            state: State::Head(Vec::new()),
        }
    }

    /// Feeds the next bytes the client sent.
    pub fn feed(&mut self, mut data: &[u8]) -> Result<(), Refusal> {
        while !data.is_empty() {
            data = self.step(data)?;
        }
        Ok(())
    }

    fn step<'a>(&mut self, data: &'a [u8]) -> Result<&'a [u8], Refusal> {
        match &mut self.state {
            State::Opaque => Ok(&[]),
            State::Body(n) => {
                let take = (*n).min(data.len() as u64) as usize;
                *n -= take as u64;
                if *n == 0 {
                    self.state = State::Head(Vec::new());
                }
                Ok(&data[take..])
            }
            State::ChunkData(n) => {
                let take = (*n).min(data.len() as u64) as usize;
                *n -= take as u64;
                if *n == 0 {
                    self.state = State::ChunkSize(Vec::new());
                }
                Ok(&data[take..])
            }
            State::ChunkSize(line) | State::Trailers(line) => {
                let (done, rest) = take_line(line, data)?;
                if done {
                    self.after_line()?;
                }
                Ok(rest)
            }
            State::MaybeOpaque => {
                if matches!(parse_request_head(data), Parse::NotThis) {
                    self.state = State::Opaque;
                    return Ok(&[]);
                }
                self.state = State::Head(Vec::new());
                Ok(data)
            }
            State::Head(head) => {
                let before = head.len();
                head.extend_from_slice(data);
                match parse_request_head(head) {
                    Parse::NeedMore if head.len() <= MAX_LINE => Ok(&[]),
                    Parse::NeedMore => Err(Refusal::Unframed("request head too long")),
                    Parse::NotThis | Parse::Malformed(_) => {
                        Err(Refusal::Unframed("a later request is not valid HTTP/1"))
                    }
                    Parse::Done(req) => {
                        let host = req.host_without_port().unwrap_or("").to_ascii_lowercase();
                        if host != self.host {
                            return Err(Refusal::HostChanged(host));
                        }
                        let head_len = head_end(head).ok_or(Refusal::Unframed("no head end"))?;
                        let framing = body_framing(&head[..head_len], &req.method)?;
                        let used = head_len - before;
                        self.state = framing;
                        Ok(&data[used..])
                    }
                }
            }
        }
    }

    fn after_line(&mut self) -> Result<(), Refusal> {
        match std::mem::replace(&mut self.state, State::Opaque) {
            State::ChunkSize(line) => {
                let text =
                    std::str::from_utf8(&line).map_err(|_| Refusal::Unframed("chunk size"))?;
                let hex = text
                    .trim_end_matches(['\r', '\n'])
                    .split(';')
                    .next()
                    .unwrap_or("");
                let size = u64::from_str_radix(hex.trim(), 16)
                    .map_err(|_| Refusal::Unframed("bad chunk size"))?;
                self.state = if size == 0 {
                    State::Trailers(Vec::new())
                } else {
                    // The data, then its CRLF.
                    State::ChunkData(size.checked_add(2).ok_or(Refusal::Unframed("chunk size"))?)
                };
            }
            State::Trailers(line) => {
                self.state = if line == b"\r\n" || line == b"\n" {
                    State::Head(Vec::new())
                } else {
                    State::Trailers(Vec::new())
                };
            }
            other => self.state = other,
        }
        Ok(())
    }
}

/// Moves bytes of `data` into `line` up to and including LF. Returns whether the line is done and
/// the rest of `data`.
fn take_line<'a>(line: &mut Vec<u8>, data: &'a [u8]) -> Result<(bool, &'a [u8]), Refusal> {
    let (part, done) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..=i], true),
        None => (data, false),
    };
    line.extend_from_slice(part);
    if line.len() > MAX_LINE {
        return Err(Refusal::Unframed("line too long"));
    }
    Ok((done, &data[part.len()..]))
}

/// Length of the head including its final CRLFCRLF.
fn head_end(head: &[u8]) -> Option<usize> {
    head.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
}

/// What follows a request head (RFC 9112 §6.3; a request without either header has no body).
fn body_framing(head: &[u8], method: &str) -> Result<State, Refusal> {
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut req = httparse::Request::new(&mut headers);
    req.parse(head)
        .map_err(|_| Refusal::Unframed("request head"))?;
    let get = |name: &str| {
        req.headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).to_ascii_lowercase())
            .collect::<Vec<_>>()
    };
    let te = get("transfer-encoding");
    let cl = get("content-length");
    let upgrade = !get("upgrade").is_empty() || method.eq_ignore_ascii_case("CONNECT");
    if !te.is_empty() {
        // Both headers at once is how request smuggling starts (RFC 9112 §6.1): refuse.
        if !cl.is_empty() || !te.last().is_some_and(|t| t.trim().ends_with("chunked")) {
            return Err(Refusal::Unframed("ambiguous request body framing"));
        }
        return Ok(State::ChunkSize(Vec::new()));
    }
    match cl.as_slice() {
        [] if upgrade => Ok(State::MaybeOpaque),
        [] => Ok(State::Head(Vec::new())),
        [one] => match one.trim().parse::<u64>() {
            Ok(0) if upgrade => Ok(State::MaybeOpaque),
            Ok(0) => Ok(State::Head(Vec::new())),
            Ok(n) => Ok(State::Body(n)),
            Err(_) => Err(Refusal::Unframed("bad Content-Length")),
        },
        _ => Err(Refusal::Unframed("several Content-Length headers")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_all(host: &str, parts: &[&[u8]]) -> Result<(), Refusal> {
        let mut r = Requests::new(host);
        parts.iter().try_for_each(|p| r.feed(p))
    }

    const GET: &[u8] = b"GET /a HTTP/1.1\r\nHost: a.example\r\n\r\n";
    const EVIL: &[u8] = b"GET /b HTTP/1.1\r\nHost: evil.example\r\n\r\n";

    #[test]
    fn keep_alive_with_the_same_host_passes() {
        assert_eq!(
            feed_all(
                "a.example",
                &[GET, GET, b"GET /c HTTP/1.1\r\nHost: A.example:80\r\n\r\n"]
            ),
            Ok(())
        );
    }

    #[test]
    fn a_second_request_to_another_host_is_refused() {
        assert_eq!(
            feed_all("a.example", &[GET, EVIL]),
            Err(Refusal::HostChanged("evil.example".into()))
        );
        // Pipelined in one read, and split at every byte.
        let both = [GET, EVIL].concat();
        assert!(feed_all("a.example", &[&both]).is_err());
        let mut r = Requests::new("a.example");
        let refused = both
            .iter()
            .any(|b| r.feed(std::slice::from_ref(b)).is_err());
        assert!(refused);
    }

    #[test]
    fn bodies_are_skipped_by_their_framing() {
        let post = format!(
            "POST /u HTTP/1.1\r\nHost: a.example\r\nContent-Length: {}\r\n\r\n",
            EVIL.len()
        );
        // The body looks like a request to another host, but it is only a body.
        assert_eq!(feed_all("a.example", &[post.as_bytes(), EVIL, GET]), Ok(()));
        let chunked = b"POST /u HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n";
        let body = b"5\r\nhello\r\n3;ext=1\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\n";
        assert_eq!(feed_all("a.example", &[chunked, body, GET]), Ok(()));
        assert!(feed_all("a.example", &[chunked, body, EVIL]).is_err());
    }

    #[test]
    fn smuggling_shapes_and_garbage_are_refused() {
        let both = b"POST / HTTP/1.1\r\nHost: a.example\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert!(matches!(
            feed_all("a.example", &[both]),
            Err(Refusal::Unframed(_))
        ));
        assert!(matches!(
            feed_all("a.example", &[GET, b"\x00\x01garbage"]),
            Err(Refusal::Unframed(_))
        ));
        assert!(matches!(
            feed_all("a.example", &[b"POST / HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"]),
            Err(Refusal::Unframed(_))
        ));
    }

    #[test]
    fn after_an_upgrade_non_http_bytes_end_the_following() {
        let ws = b"GET /ws HTTP/1.1\r\nHost: a.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
        assert_eq!(feed_all("a.example", &[ws, b"\x81\x85frame", EVIL]), Ok(()));
        // A refused upgrade followed by another request is still followed.
        assert!(feed_all("a.example", &[ws, EVIL]).is_err());
    }
}
