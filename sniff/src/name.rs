//! The one definition of "a host name Warden will judge", shared by the TLS and
//! HTTP parsers.
//!
//! Policy matches names as strings, so both parsers accept only a plain DNS name
//! (or dotted IPv4 literal): ASCII letters, digits, '-' and '_' in non-empty
//! labels, no trailing dot. Anything else, such as percent-escapes, a trailing
//! dot or non-ASCII bytes, is reported rather than cleaned up, because a cleaned
//! up name is a guess at what the server will do with it.

/// The longest DNS name in text form, without a trailing dot (RFC 1035 §2.3.4).
const MAX_NAME_LEN: usize = 253;
/// RFC 1035 §2.3.4: labels are 63 octets or less.
const MAX_LABEL_LEN: usize = 63;

/// Checks that `name` is a plain DNS name as described in the module docs.
pub(crate) fn check_dns_name(name: &[u8]) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err("bad host name length");
    }
    for label in name.split(|&b| b == b'.') {
        if label.is_empty() || label.len() > MAX_LABEL_LEN {
            return Err("bad host name label");
        }
        if !label
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err("bad host name character");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_names_and_ipv4_literals() {
        for name in ["example.com", "A_b-1.Example", "127.0.0.1", "localhost"] {
            assert_eq!(check_dns_name(name.as_bytes()), Ok(()), "{name}");
        }
    }

    #[test]
    fn rejects_anything_that_needs_interpreting() {
        let cases: [(&[u8], &str); 8] = [
            (b"", "bad host name length"),
            (&[b'a'; 254], "bad host name length"),
            (&[b'a'; 64], "bad host name label"),
            (b"example.com.", "bad host name label"),
            (b"a..b", "bad host name label"),
            (b"caf\xc3\xa9.example", "bad host name character"),
            (b"a%2eb", "bad host name character"),
            (b"a b", "bad host name character"),
        ];
        for (name, reason) in cases {
            assert_eq!(check_dns_name(name), Err(reason), "{name:?}");
        }
    }
}
