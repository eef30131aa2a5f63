//! HTTP/1.x request heads as CI clients send them, directly and through a
//! proxy, and the streams that must not be mistaken for them.

use sniff::http::{MAX_REQUEST_HEAD_LEN, RequestHead, parse_request_head};
use sniff::{Parse, Sniffed, sniff};

fn head(method: &str, path: &str, host: Option<&str>, version: u8) -> Parse<RequestHead> {
    Parse::Done(RequestHead {
        method: method.into(),
        path: path.into(),
        host: host.map(str::to_string),
        version,
    })
}

/// Complete heads: (request, expected). Each ends at its blank line, so every
/// strict prefix must need more bytes.
fn complete_heads() -> Vec<(&'static [u8], Parse<RequestHead>)> {
    vec![
        (
            b"GET / HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n",
            head("GET", "/", Some("example.com"), 1),
        ),
        (
            b"GET /a?b=c HTTP/1.1\r\nHost: Example.COM:8080\r\n\r\n",
            head("GET", "/a?b=c", Some("example.com:8080"), 1),
        ),
        (b"GET / HTTP/1.1\r\nhOsT:   a.example \r\n\r\n", head("GET", "/", Some("a.example"), 1)),
        (b"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", head("GET", "/", Some("[::1]:8080"), 1)),
        (b"GET / HTTP/1.0\r\n\r\n", head("GET", "/", None, 0)),
        (b"GET / HTTP/1.0\r\nHost:\r\n\r\n", head("GET", "/", None, 0)),
        // Absolute-form, as sent to an explicit proxy (RFC 9112 §3.2.2).
        (
            b"GET http://Example.com/x?y HTTP/1.1\r\nHost: example.com\r\n\r\n",
            head("GET", "http://Example.com/x?y", Some("example.com"), 1),
        ),
        (
            b"POST http://a.example:8080 HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
            head("POST", "http://a.example:8080", Some("a.example:8080"), 1),
        ),
        // Authority-form (RFC 9112 §3.2.3), exactly as curl 7.88 sends it.
        (
            b"CONNECT github.com:443 HTTP/1.1\r\nHost: github.com:443\r\nUser-Agent: curl/7.88.1\r\nProxy-Connection: Keep-Alive\r\n\r\n",
            head("CONNECT", "github.com:443", Some("github.com:443"), 1),
        ),
        (b"CONNECT GitHub.com:443 HTTP/1.1\r\n\r\n", head("CONNECT", "GitHub.com:443", Some("github.com:443"), 1)),
        (b"CONNECT [2001:db8::1]:443 HTTP/1.1\r\n\r\n", head("CONNECT", "[2001:db8::1]:443", Some("[2001:db8::1]:443"), 1)),
        (b"OPTIONS * HTTP/1.1\r\nHost: a.example\r\n\r\n", head("OPTIONS", "*", Some("a.example"), 1)),
        (b"M-SEARCH / HTTP/1.1\r\nHost: a.example\r\n\r\n", head("M-SEARCH", "/", Some("a.example"), 1)),
        // Recognised as HTTP, but a proxy must refuse them.
        (b"GET / HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n", Parse::Malformed("more than one host header")),
        (b"GET / HTTP/1.1\r\n\r\n", Parse::Malformed("missing or empty host header")),
        (b"GET / HTTP/1.1\r\nHost: \r\n\r\n", Parse::Malformed("missing or empty host header")),
        (b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", Parse::Malformed("bad host header")),
        (b"GET / HTTP/1.1\r\nHost: a.example.\r\n\r\n", Parse::Malformed("bad host header")),
        (b"GET / HTTP/1.1\r\nHost: a.example:http\r\n\r\n", Parse::Malformed("bad host header")),
        (b"GET / HTTP/1.1\r\nHost: caf\xc3\xa9.example\r\n\r\n", Parse::Malformed("bad host header")),
        (b"CONNECT github.com HTTP/1.1\r\n\r\n", Parse::Malformed("connect target is not host:port")),
        (b"CONNECT /x HTTP/1.1\r\nHost: a\r\n\r\n", Parse::Malformed("connect target is not host:port")),
        (
            b"CONNECT evil.example:443 HTTP/1.1\r\nHost: allowed.example:443\r\n\r\n",
            Parse::Malformed("host header does not match request target"),
        ),
        (
            b"GET http://evil.example/ HTTP/1.1\r\nHost: allowed.example\r\n\r\n",
            Parse::Malformed("host header does not match request target"),
        ),
        (
            b"GET http://allowed.example@evil.example/ HTTP/1.1\r\n\r\n",
            Parse::Malformed("bad request target authority"),
        ),
        (b"GET index.html HTTP/1.1\r\nHost: a\r\n\r\n", Parse::Malformed("bad request target")),
    ]
}

#[test]
fn complete_heads_parse_and_every_prefix_needs_more() {
    for (request, want) in complete_heads() {
        let what = request.escape_ascii().to_string();
        assert_eq!(parse_request_head(request), want, "{what}");
        assert_eq!(sniff(request), want.clone().map(Sniffed::Http), "{what}");
        for end in 0..request.len() {
            assert_eq!(
                parse_request_head(&request[..end]),
                Parse::NeedMore,
                "{what} cut at {end}"
            );
        }
    }
}

#[test]
fn bytes_after_the_head_are_ignored() {
    let request = b"POST /upload HTTP/1.1\r\nHost: a.example\r\nContent-Length: 5\r\n\r\nhello";
    assert_eq!(
        parse_request_head(request),
        head("POST", "/upload", Some("a.example"), 1)
    );
}

#[test]
fn host_without_port() {
    let cases = [
        (
            &b"GET / HTTP/1.1\r\nHost: A.example:8080\r\n\r\n"[..],
            Some("a.example"),
        ),
        (
            b"GET / HTTP/1.1\r\nHost: a.example\r\n\r\n",
            Some("a.example"),
        ),
        (b"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", Some("::1")),
        (b"GET / HTTP/1.1\r\nHost: [::1]\r\n\r\n", Some("::1")),
        (b"CONNECT [::1]:443 HTTP/1.1\r\n\r\n", Some("::1")),
        (b"GET / HTTP/1.0\r\n\r\n", None),
    ];
    for (request, want) in cases {
        let Parse::Done(parsed) = parse_request_head(request) else {
            panic!("{}", request.escape_ascii())
        };
        assert_eq!(
            parsed.host_without_port(),
            want,
            "{}",
            request.escape_ascii()
        );
    }
}

#[test]
fn other_protocols_are_not_this_as_soon_as_possible() {
    let cases: [&[u8]; 11] = [
        b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n",
        b"SSH-2",
        b"\x16\x03\x01\x02\x00\x01",
        b"\x00\x00\x00\x00\xde\xad\xbe\xef",
        b"GE\0",
        b"get / HTTP/1.1\r\n",
        b" GET / HTTP/1.1\r\n",
        b"\r\nGET / HTTP/1.1\r\n",
        b"QUIT\r\n",
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZ / HTTP/1.1\r\n",
        // HTTP/2 with prior knowledge (RFC 9113 §3.4) is not HTTP/1.x.
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    ];
    for stream in cases {
        assert_eq!(
            parse_request_head(stream),
            Parse::NotThis,
            "{}",
            stream.escape_ascii()
        );
    }
    // Until a byte rules it out, an uppercase word may still be a method; the
    // HTTP/2 preface is ruled out at its version.
    assert_eq!(parse_request_head(b"SSH-"), Parse::NeedMore);
    assert_eq!(parse_request_head(b"PRI * HTTP/"), Parse::NeedMore);
    assert_eq!(parse_request_head(b"PRI * HTTP/2"), Parse::NotThis);
    assert_eq!(sniff(b"SSH-2.0-OpenSSH_9.2\r\n"), Parse::NotThis);
}

#[test]
fn broken_request_lines_after_a_method_are_malformed() {
    let cases: [(&[u8], &str); 7] = [
        // An uppercase word and a space is a method as far as the first bytes
        // tell; an SMTP-like line is then an invalid request line.
        (b"EHLO example.com\r\n", "invalid request line"),
        (b"GET / HTTP/2.0\r\n\r\n", "not an http/1.x version"),
        (b"GET / FTP/1.1\r\n", "not an http/1.x version"),
        (b"GET  / HTTP/1.1\r\n", "invalid request line"),
        (b"GET /\0 HTTP/1.1\r\n", "invalid request line"),
        (b"GET / HTTP/1.1\r\nHo st: a\r\n\r\n", "invalid header name"),
        (b"GET / HTTP/1.1\rX", "invalid line ending"),
    ];
    for (request, reason) in cases {
        assert_eq!(
            parse_request_head(request),
            Parse::Malformed(reason),
            "{}",
            request.escape_ascii()
        );
    }
}

#[test]
fn too_many_headers_are_malformed() {
    let mut request = b"GET / HTTP/1.1\r\nHost: a.example\r\n".to_vec();
    for i in 0..64 {
        request.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
    }
    assert_eq!(
        parse_request_head(&request),
        Parse::Malformed("too many headers")
    );
}

#[test]
fn heads_longer_than_16_kib_are_malformed() {
    let mut request = b"GET / HTTP/1.1\r\nHost: a.example\r\nX-Pad: ".to_vec();
    request.resize(MAX_REQUEST_HEAD_LEN - 4, b'p');
    request.extend_from_slice(b"\r\n\r\n");
    assert_eq!(request.len(), MAX_REQUEST_HEAD_LEN);
    assert_eq!(
        parse_request_head(&request),
        head("GET", "/", Some("a.example"), 1)
    );
    assert_eq!(
        parse_request_head(&request[..MAX_REQUEST_HEAD_LEN - 1]),
        Parse::NeedMore
    );

    request.insert(40, b'p');
    assert_eq!(
        parse_request_head(&request[..MAX_REQUEST_HEAD_LEN - 1]),
        Parse::NeedMore
    );
    assert_eq!(
        parse_request_head(&request),
        Parse::Malformed("request head longer than 16 kib")
    );
}
