//! Reads the head of a plaintext HTTP/1.x request (RFC 9112).
//!
//! A CI job talks plain HTTP either to Warden as an explicit proxy
//! (`CONNECT host:port` or `GET http://host/...`) or, when its traffic is
//! redirected transparently, straight "to the origin" with a Host header.
//! [`parse_request_head`] turns the first bytes of such a stream into the
//! method, request target and the host the request is for. It decides quickly
//! that a stream is *not* HTTP (after at most 17 bytes), so that other protocols
//! are not held up waiting for a request head that will never come.
//!
//! The request line and headers are tokenised by `httparse`; this module adds
//! the checks a proxy needs on top: one Host header at most, and the host taken
//! from the request target where RFC 9112 §3.2.2-3.2.3 says a proxy must use it.

mod authority;

use crate::Parse;

/// The largest request head accepted, from the method to the blank line.
pub const MAX_REQUEST_HEAD_LEN: usize = 16 * 1024;
/// The longest method accepted; registered methods are at most 17 bytes, the
/// ones CI clients use at most 7.
const MAX_METHOD_LEN: usize = 16;
/// How many header fields a request head may have.
const MAX_HEADERS: usize = 64;
/// The start of the HTTP/2 connection preface `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`
/// (RFC 9113 §3.4), up to the byte where `httparse` rejects the version. Its
/// request line looks like HTTP/1.x until then, but the stream is HTTP/2.
const H2_PREFACE_START: &[u8] = b"PRI * HTTP/2";

/// The parts of an HTTP/1.x request head Warden's policy and audit log use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// The method, e.g. `GET` or `CONNECT`.
    pub method: String,
    /// The request target exactly as sent (RFC 9112 §3.2): `/path?query`
    /// (origin-form), `http://host/path` (absolute-form), `host:port`
    /// (authority-form, for CONNECT) or `*`.
    pub path: String,
    /// The host the request is for, lowercased, with the port if one was sent:
    /// the authority of a CONNECT or absolute-form target, otherwise the Host
    /// header. `None` for an HTTP/1.0 request without Host, or an empty Host.
    pub host: Option<String>,
    /// The minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version: u8,
}

impl RequestHead {
    /// [`RequestHead::host`] without its port: `example.com` for
    /// `example.com:8080`, and `::1` for `[::1]:8080` or `[::1]`.
    ///
    /// `None` when there is no host, or when `host` was set by hand to
    /// something this crate would not have accepted.
    pub fn host_without_port(&self) -> Option<&str> {
        authority::parse(self.host.as_deref()?).map(|a| a.host)
    }
}

/// Parses an HTTP/1.x request head from the start of a client's TCP stream.
///
/// `buf` holds every byte received so far. Returns [`Parse::NotThis`] as soon as
/// the bytes cannot begin a request line with an uppercase method (ASCII
/// letters and '-', at most 16 bytes, then a space), [`Parse::NeedMore`] while
/// the head is incomplete, and [`Parse::Malformed`] for a head that is invalid
/// or longer than [`MAX_REQUEST_HEAD_LEN`]. Bytes after the head are ignored.
pub fn parse_request_head(buf: &[u8]) -> Parse<RequestHead> {
    match method_prefix(buf) {
        MethodPrefix::Complete => {}
        MethodPrefix::Partial => return Parse::NeedMore,
        MethodPrefix::Impossible => return Parse::NotThis,
    }
    let head = buf.get(..MAX_REQUEST_HEAD_LEN).unwrap_or(buf);
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(head) {
        Ok(httparse::Status::Complete(_)) => match RequestHead::from_parsed(&request) {
            Ok(parsed) => Parse::Done(parsed),
            Err(reason) => Parse::Malformed(reason),
        },
        Ok(httparse::Status::Partial) if head.len() == MAX_REQUEST_HEAD_LEN => {
            Parse::Malformed("request head longer than 16 kib")
        }
        Ok(httparse::Status::Partial) => Parse::NeedMore,
        Err(httparse::Error::Version) if buf.starts_with(H2_PREFACE_START) => Parse::NotThis,
        Err(error) => Parse::Malformed(httparse_reason(error)),
    }
}

/// How far the start of a stream goes towards `method SP` (RFC 9112 §3).
enum MethodPrefix {
    Complete,
    Partial,
    Impossible,
}

/// Classifies the start of `buf` as a (possibly partial) method followed by a
/// space. Methods are tokens (RFC 9110 §9.1), but every method in use is
/// uppercase letters with the odd '-', and accepting only that lets a binary
/// or line-based protocol (SSH, SMTP replies, ...) be told apart at once.
fn method_prefix(buf: &[u8]) -> MethodPrefix {
    for (i, &b) in buf.iter().enumerate().take(MAX_METHOD_LEN + 1) {
        match b {
            b'A'..=b'Z' => {}
            b'-' | b' ' if i == 0 => return MethodPrefix::Impossible,
            b'-' => {}
            b' ' => return MethodPrefix::Complete,
            _ => return MethodPrefix::Impossible,
        }
    }
    if buf.len() > MAX_METHOD_LEN {
        MethodPrefix::Impossible
    } else {
        MethodPrefix::Partial
    }
}

fn httparse_reason(error: httparse::Error) -> &'static str {
    match error {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Status => "invalid status",
        httparse::Error::Token => "invalid request line",
        httparse::Error::TooManyHeaders => "too many headers",
        httparse::Error::Version => "not an http/1.x version",
    }
}

impl RequestHead {
    fn from_parsed(request: &httparse::Request<'_, '_>) -> Result<Self, &'static str> {
        let (Some(method), Some(target), Some(version)) =
            (request.method, request.path, request.version)
        else {
            return Err("incomplete request line");
        };
        let header = host_header(request.headers)?;
        let host = request_host(method, target, header)?;
        // RFC 9112 §3.2: "A client MUST send a Host header field in all HTTP/1.1
        // request messages", and a non-empty one whenever the target has an
        // authority, as every request Warden relays does.
        if host.is_none() && version == 1 {
            return Err("missing or empty host header");
        }
        Ok(RequestHead {
            method: method.to_owned(),
            path: target.to_owned(),
            host: host.map(str::to_ascii_lowercase),
            version,
        })
    }
}

/// The value of the Host header, if there is one and it is not empty.
fn host_header<'a>(headers: &[httparse::Header<'a>]) -> Result<Option<&'a str>, &'static str> {
    let mut hosts = headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("host"));
    let Some(first) = hosts.next() else {
        return Ok(None);
    };
    // RFC 9112 §3.2: a request with more than one Host field MUST be rejected.
    if hosts.next().is_some() {
        return Err("more than one host header");
    }
    let value = std::str::from_utf8(first.value).map_err(|_| "bad host header")?;
    let value = value.trim_matches([' ', '\t']);
    // RFC 9112 §3.2: Host is sent empty when the target has no authority.
    if value.is_empty() {
        return Ok(None);
    }
    authority::parse(value).ok_or("bad host header")?;
    Ok(Some(value))
}

/// The host a proxy routes the request to.
///
/// RFC 9112 §3.2.2-3.2.3: for CONNECT (authority-form) and absolute-form
/// targets the proxy connects to the target's authority and MUST ignore Host.
/// Warden goes further and refuses a Host that names another host, since the
/// origin server may believe Host while policy judged the target.
fn request_host<'a>(
    method: &str,
    target: &'a str,
    header: Option<&'a str>,
) -> Result<Option<&'a str>, &'static str> {
    let from_target = if method == "CONNECT" {
        // RFC 9110 §9.3.6: the CONNECT target is exactly host and port.
        authority::parse(target)
            .filter(|a| a.port.is_some())
            .ok_or("connect target is not host:port")?;
        target
    } else if target.starts_with('/') || target == "*" {
        return Ok(header);
    } else {
        let raw = authority::of_absolute_target(target).ok_or("bad request target")?;
        authority::parse(raw).ok_or("bad request target authority")?;
        raw
    };
    if let Some(header) = header {
        let same = authority::parse(header)
            .zip(authority::parse(from_target))
            .is_some_and(|(h, t)| h.host.eq_ignore_ascii_case(t.host));
        if !same {
            return Err("host header does not match request target");
        }
    }
    Ok(Some(from_target))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_prefix_is_decided_within_seventeen_bytes() {
        assert!(matches!(method_prefix(b""), MethodPrefix::Partial));
        assert!(matches!(method_prefix(b"M-SEARCH"), MethodPrefix::Partial));
        assert!(matches!(
            method_prefix(b"M-SEARCH "),
            MethodPrefix::Complete
        ));
        assert!(matches!(
            method_prefix(b"ABCDEFGHIJKLMNOP "),
            MethodPrefix::Complete
        ));
        assert!(matches!(
            method_prefix(b"ABCDEFGHIJKLMNOPQ"),
            MethodPrefix::Impossible
        ));
        assert!(matches!(method_prefix(b" GET"), MethodPrefix::Impossible));
        assert!(matches!(method_prefix(b"-GET"), MethodPrefix::Impossible));
        assert!(matches!(method_prefix(b"get "), MethodPrefix::Impossible));
    }

    #[test]
    fn host_without_port_handles_ipv6_literals() {
        let head = |host: &str| RequestHead {
            method: "GET".into(),
            path: "/".into(),
            host: Some(host.into()),
            version: 1,
        };
        assert_eq!(head("a.example:80").host_without_port(), Some("a.example"));
        assert_eq!(head("a.example").host_without_port(), Some("a.example"));
        assert_eq!(head("[::1]:8080").host_without_port(), Some("::1"));
        assert_eq!(head("[::1]").host_without_port(), Some("::1"));
        assert_eq!(head("a b").host_without_port(), None);
    }
}
