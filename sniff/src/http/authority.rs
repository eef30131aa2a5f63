//! Splits and checks the `host[:port]` strings HTTP carries in the Host header
//! and in CONNECT and absolute-form request targets (RFC 9112 §3.2, RFC 3986
//! §3.2.2-3.2.3).
//!
//! Only what a CI client really sends is accepted: a DNS name or IPv4 literal
//! (see `crate::name`) or a bracketed IPv6 literal, then an optional decimal port.
//! Userinfo (`user@host`), percent-escapes and IPv6 zone ids are malformed here,
//! since each is a way to make one string name two different hosts.

use crate::name::check_dns_name;

/// An authority split into its host (IPv6 without brackets) and optional port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Authority<'a> {
    pub(crate) host: &'a str,
    pub(crate) port: Option<u16>,
}

/// Parses `host[:port]`, `[v6]` or `[v6]:port`; `None` if it is anything else.
pub(crate) fn parse(authority: &str) -> Option<Authority<'_>> {
    let (host, port) = match authority.strip_prefix('[') {
        Some(bracketed) => {
            let (v6, after) = bracketed.split_once(']')?;
            if !is_ipv6_literal(v6) {
                return None;
            }
            let port = match after {
                "" => None,
                after => Some(after.strip_prefix(':')?),
            };
            (v6, port)
        }
        None => {
            let (host, port) = match authority.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            };
            check_dns_name(host.as_bytes()).ok()?;
            (host, port)
        }
    };
    let port = match port {
        None => None,
        Some(port) => Some(parse_port(port)?),
    };
    Some(Authority { host, port })
}

/// RFC 3986 §3.2.3: port = *DIGIT; an empty port is refused here too.
fn parse_port(port: &str) -> Option<u16> {
    if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    port.parse().ok()
}

/// Whether `v6` looks like an IPv6 address: hex digits, ':' and (for an
/// embedded IPv4 tail) '.'; the exact address is not needed for policy, which
/// compares names as text.
fn is_ipv6_literal(v6: &str) -> bool {
    v6.contains(':')
        && v6
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
}

/// The authority of an absolute-form request target (RFC 9112 §3.2.2), e.g.
/// `example.com:8080` in `http://example.com:8080/path?q`; `None` if the target
/// is not `scheme://authority[/...]`.
pub(crate) fn of_absolute_target(target: &str) -> Option<&str> {
    let (scheme, rest) = target.split_once("://")?;
    // RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
    let mut chars = scheme.bytes();
    let starts_alpha = chars.next().is_some_and(|b| b.is_ascii_alphabetic());
    if !starts_alpha || !chars.all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b)) {
        return None;
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    rest.get(..end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(s: &str) -> Option<(&str, Option<u16>)> {
        parse(s).map(|a| (a.host, a.port))
    }

    #[test]
    fn splits_names_and_ipv6_literals() {
        assert_eq!(split("example.com"), Some(("example.com", None)));
        assert_eq!(split("example.com:443"), Some(("example.com", Some(443))));
        assert_eq!(split("127.0.0.1:80"), Some(("127.0.0.1", Some(80))));
        assert_eq!(split("[::1]"), Some(("::1", None)));
        assert_eq!(
            split("[2001:db8::1]:8443"),
            Some(("2001:db8::1", Some(8443)))
        );
        assert_eq!(
            split("[::ffff:1.2.3.4]:1"),
            Some(("::ffff:1.2.3.4", Some(1)))
        );
    }

    #[test]
    fn refuses_ambiguous_authorities() {
        for bad in [
            "",
            ":80",
            "example.com:",
            "example.com:65536",
            "example.com:+1",
            "a:1:2",
            "::1",
            "[::1",
            "[::1]80",
            "[fe80::1%25eth0]",
            "[]",
            "user@example.com",
            "a%2eb",
            "example.com.",
            "exa mple.com",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn finds_the_authority_of_absolute_targets() {
        assert_eq!(of_absolute_target("http://a.example/x"), Some("a.example"));
        assert_eq!(
            of_absolute_target("HTTPS://a.example:8443?q"),
            Some("a.example:8443")
        );
        assert_eq!(of_absolute_target("ws+x://[::1]:1#f"), Some("[::1]:1"));
        assert_eq!(of_absolute_target("http://"), Some(""));
        assert_eq!(of_absolute_target("/x"), None);
        assert_eq!(of_absolute_target("1http://a"), None);
        assert_eq!(of_absolute_target("://a"), None);
    }
}
