//! The endpoint grammar, kept apart from [`Endpoint`](super::Endpoint) so the rules of what is
//! accepted read top to bottom in one place.
//!
//! ```text
//! entry   = "[" ipv6 ["/" len] "]" [":" port]
//!         | ipv6 ["/" len]                        ; bare: two or more ':' and no port
//!         | ipv4 ["/" len] [":" port]
//!         | ["*."] name [":" port]
//! ```
//! Host names follow RFC 1123 §2.1 loosely (letters, digits, `-`, and `_`, which real DNS names
//! use), at most 63 characters a label and 253 a name (RFC 1035 §2.3.4); a last label of digits
//! only is refused (RFC 3696 §2: top-level domains are not all-numeric), so `1.2.3` or
//! `999.1.1.1` is an error rather than a name nobody has.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::endpoint::{EndpointReason as R, Host, mask};

/// Parses one entry into its host and optional port.
pub(super) fn parse(entry: &str) -> Result<super::Endpoint, R> {
    if entry.is_empty() {
        return Err(R::Empty);
    }
    if entry.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(R::Space);
    }
    if let Some((scheme, rest)) = entry.split_once("://") {
        return Err(R::Url(url_to_entry(scheme, rest)));
    }
    let (host, port) = if let Some(inner) = entry.strip_prefix('[') {
        bracketed(inner)?
    } else if entry.matches(':').count() >= 2 {
        (bare_ipv6(entry)?, None)
    } else {
        let (host, port) = match entry.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (entry, None),
        };
        if let Some((before, _)) = entry.split_once('/')
            && !before.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        {
            return Err(R::Path);
        }
        let port = port.map(parse_port).transpose()?;
        (name_or_ipv4(host)?, port)
    };
    Ok(super::Endpoint::from_parts(host, port))
}

/// `inner` is what follows `[`: `IPv6[/len]]` then nothing or `:port`.
fn bracketed(inner: &str) -> Result<(Host, Option<u16>), R> {
    let (net, after) = inner.split_once(']').ok_or(R::Brackets)?;
    if !net.contains(':') {
        return Err(R::Brackets);
    }
    let host = network(net, Family::V6)?;
    let port = match after {
        "" => None,
        _ => Some(parse_port(after.strip_prefix(':').ok_or(R::Brackets)?)?),
    };
    Ok((host, port))
}

/// Two or more colons without brackets: an IPv6 address or CIDR, which then has no port.
fn bare_ipv6(entry: &str) -> Result<Host, R> {
    if !entry
        .chars()
        .all(|c| c.is_ascii_hexdigit() || matches!(c, ':' | '.' | '/'))
    {
        return Err(R::Colons);
    }
    network(entry, Family::V6)
}

fn name_or_ipv4(host: &str) -> Result<Host, R> {
    if host.contains('/') || host.parse::<Ipv4Addr>().is_ok() {
        return network(host, Family::V4);
    }
    match host.strip_prefix("*.") {
        Some(suffix) => Ok(Host::Wildcard(name(suffix)?)),
        None => Ok(Host::Exact(name(host)?)),
    }
}

#[derive(Clone, Copy)]
enum Family {
    V4,
    V6,
}

/// `addr[/len]` of the given family, canonical: host bits must be clear, v4-mapped becomes IPv4.
fn network(text: &str, family: Family) -> Result<Host, R> {
    let (addr_text, len_text) = match text.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (text, None),
    };
    let (addr, max, family_name) = match family {
        Family::V4 => (
            addr_text.parse::<Ipv4Addr>().map(IpAddr::V4).ok(),
            32,
            "IPv4",
        ),
        Family::V6 => (
            addr_text.parse::<Ipv6Addr>().map(IpAddr::V6).ok(),
            128,
            "IPv6",
        ),
    };
    let addr = addr.ok_or_else(|| R::BadAddress(addr_text.to_owned(), family_name))?;
    let prefix = match len_text {
        None => max,
        Some(l) => parse_len(l, max)?,
    };
    if mask(addr, prefix) != Some(addr) {
        let canonical = mask(addr, prefix).unwrap_or(addr);
        return Err(R::HostBits(format!("{canonical}/{prefix}")));
    }
    Ok(canonical_network(addr, prefix))
}

/// A v4-mapped IPv6 network (`::ffff:0:0/96` or longer) is the IPv4 network it maps.
fn canonical_network(addr: IpAddr, prefix: u8) -> Host {
    match addr {
        IpAddr::V6(a) if prefix >= 96 => match a.to_ipv4_mapped() {
            Some(v4) => Host::Network {
                addr: IpAddr::V4(v4),
                prefix: prefix - 96,
            },
            None => Host::Network { addr, prefix },
        },
        _ => Host::Network { addr, prefix },
    }
}

fn parse_len(text: &str, max: u8) -> Result<u8, R> {
    match text.parse::<u8>() {
        Ok(l) if l <= max && text.bytes().all(|b| b.is_ascii_digit()) => Ok(l),
        _ => Err(R::Prefix(text.to_owned(), max)),
    }
}

fn parse_port(text: &str) -> Result<u16, R> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(R::PortNotNumber(text.to_owned()));
    }
    match text.parse::<u32>() {
        Ok(p) if (1..=65535).contains(&p) => Ok(p as u16),
        _ => Err(R::PortRange(text.to_owned())),
    }
}

/// A host name (without any `*.`), lowercased, without one trailing dot.
fn name(text: &str) -> Result<String, R> {
    let name = text.strip_suffix('.').unwrap_or(text).to_ascii_lowercase();
    if name.contains('*') {
        return Err(R::Star);
    }
    if let Some(rest) = name.strip_prefix('.') {
        return Err(R::LeadingDot(rest.to_owned()));
    }
    if name.is_empty() {
        return Err(R::EmptyLabel);
    }
    if name.len() > 253 {
        return Err(R::LongName);
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(R::EmptyLabel);
        }
        if label.len() > 63 {
            return Err(R::LongLabel(label.to_owned()));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(R::BadChar(c));
        }
    }
    if name
        .rsplit('.')
        .next()
        .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(R::Numeric);
    }
    Ok(name)
}

/// What the user should have written for `scheme://rest`: its host and port (the port left out
/// for https, whose 443 is the default; 80 written for http).
fn url_to_entry(scheme: &str, rest: &str) -> String {
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let has_port = authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| !p.contains(']'));
    match scheme.to_ascii_lowercase().as_str() {
        "http" | "ws" if !has_port => format!("{authority}:80"),
        _ => authority.to_owned(),
    }
}
