//! One `allowed-endpoints` entry: its syntax, its canonical text, and what it matches.
//!
//! The syntax is the contract of DESIGN.md ("Endpoint syntax"), compatible with harden-runner's
//! `host:port` entries: `host[:port]`, `*.host[:port]` (any depth of subdomain, never the bare
//! host), `IPv4[/len][:port]`, `[IPv6[/len]][:port]`, or a bare IPv6 address or CIDR (no
//! brackets, then no port). A name without a port means 443; an address or CIDR without a port
//! means every port, TCP and UDP. Parsing never guesses: anything else (a URL, a path, a space, a
//! `*` that is not a leading `*.`, a CIDR with host bits set) is an [`EndpointError`] that quotes
//! the entry and says what is wrong, so `warden policy check` can point at it.
//!
//! [`Endpoint`]'s `Display` is canonical (lowercase, no trailing dot, `:443` dropped from names,
//! `/32` and `/128` dropped from single addresses, v4-mapped IPv6 written as IPv4): it is what
//! records carry as `rule`, and [`rule_for`] writes suggestions in the same form.

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    str::FromStr,
};

/// The port a name rule without an explicit port allows (harden-runner's rule).
pub const DEFAULT_NAME_PORT: u16 = 443;

/// What an endpoint names: a host name, a wildcard of subdomains, or an IP network.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// An exact host name, lowercase, without a trailing dot.
    Exact(String),
    /// `*.SUFFIX`: any name ending in `.SUFFIX`, at any depth, but not `SUFFIX` itself. Holds
    /// `SUFFIX` (lowercase, without the `*.`).
    Wildcard(String),
    /// An IP network; a single address has prefix 32 (IPv4) or 128 (IPv6). Always canonical:
    /// host bits are zero and v4-mapped IPv6 networks are stored as IPv4.
    Network {
        /// The network address.
        addr: IpAddr,
        /// The prefix length (0..=32 for IPv4, 0..=128 for IPv6).
        prefix: u8,
    },
}

impl Host {
    /// Whether `name` is this host: case-insensitive, a trailing dot ignored; a wildcard matches
    /// subdomains at any depth but not its parent; a network matches no name.
    pub fn matches_name(&self, name: &str) -> bool {
        let name = normalize_name(name);
        match self {
            Host::Exact(n) => *n == name,
            Host::Wildcard(suffix) => name
                .strip_suffix(suffix.as_str())
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
            Host::Network { .. } => false,
        }
    }
}

/// One `allowed-endpoints` entry, parsed.
///
/// `Display` gives back a canonical text form (used in records as `rule`, and in 403 bodies as
/// "the rule to add"); parsing that text gives back an equal endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    host: Host,
    /// `None` only for networks: every port. Names always carry a port (443 by default).
    port: Option<u16>,
}

/// An entry that is not valid endpoint syntax: the entry, quoted, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid endpoint {entry:?}: {reason}")]
pub struct EndpointError {
    /// The entry as written.
    pub entry: String,
    /// What is wrong with it.
    pub reason: EndpointReason,
}

/// Why an entry is not valid endpoint syntax.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointReason {
    /// Nothing to parse.
    #[error("empty entry")]
    Empty,
    /// Whitespace or a control character inside the entry.
    #[error(
        "contains a space or control character (separate entries with spaces, commas or newlines)"
    )]
    Space,
    /// `scheme://…`.
    #[error("is a URL; endpoints are host[:port], write {0:?}")]
    Url(String),
    /// `host/path`.
    #[error("has a path; endpoints are host[:port] without a path")]
    Path,
    /// Port text that is not a number.
    #[error("port {0:?} is not a number")]
    PortNotNumber(String),
    /// Port 0 or above 65535.
    #[error("port {0} is out of range 1-65535")]
    PortRange(String),
    /// A `/len` that is not a number or is too long for the address family.
    #[error("prefix length {0:?} is not a number from 0 to {1}")]
    Prefix(String, u8),
    /// A CIDR whose address has bits set past the prefix: refused rather than widened.
    #[error("host bits are set past the prefix; did you mean {0:?}?")]
    HostBits(String),
    /// Something that is not a valid IPv4 or IPv6 address where one is expected.
    #[error("{0:?} is not a valid {1} address")]
    BadAddress(String, &'static str),
    /// Brackets around something that is not an IPv6 address, or unbalanced brackets.
    #[error("brackets are only for IPv6 addresses: [2001:db8::1]:443")]
    Brackets,
    /// Several colons in something that is not an IPv6 address.
    #[error(
        "more than one ':' and not an IPv6 address (write IPv6 with a port as [2001:db8::1]:443)"
    )]
    Colons,
    /// `*` other than as a leading `*.`.
    #[error("'*' is only allowed as a leading '*.' (as in *.example.com)")]
    Star,
    /// `.example.com`, which some tools read as "subdomains": here it is an error.
    #[error("a leading '.' is not a wildcard: write *.{0} for its subdomains (and {0} for itself)")]
    LeadingDot(String),
    /// An empty label (`a..b`).
    #[error("empty label in host name")]
    EmptyLabel,
    /// A label over 63 characters.
    #[error("label {0:?} is longer than 63 characters")]
    LongLabel(String),
    /// A name over 253 characters.
    #[error("host name is longer than 253 characters")]
    LongName,
    /// A character not allowed in a host name.
    #[error("{0:?} is not allowed in a host name (write internationalised names as xn--)")]
    BadChar(char),
    /// A name whose last label is all digits: neither an IPv4 address nor a host name.
    #[error("neither an IPv4 address nor a host name")]
    Numeric,
}

impl Endpoint {
    /// What the endpoint names.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The port it allows: always `Some` for names (443 unless written), `None` for a network
    /// written without a port (every port).
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// Whether this is a name rule (exact or wildcard), which only ever matches TCP.
    pub fn is_name(&self) -> bool {
        !matches!(self.host, Host::Network { .. })
    }

    /// Whether this rule allows a TCP connection that names `name` (SNI or Host) on `port`.
    /// `name` is compared case-insensitively, ignoring a trailing dot. The linear reference for
    /// the index in `Policy`.
    pub fn matches_name(&self, name: &str, port: u16) -> bool {
        self.port == Some(port) && self.host.matches_name(name)
    }
    /// Whether this rule allows `ip:port` (TCP or UDP). v4-mapped IPv6 addresses match as IPv4.
    pub fn matches_ip(&self, ip: IpAddr, port: u16) -> bool {
        let Host::Network { addr, prefix } = self.host else {
            return false;
        };
        self.port.is_none_or(|p| p == port) && mask(ip.to_canonical(), prefix) == Some(addr)
    }
}

/// `addr` with every bit past `prefix` cleared; `None` if `prefix` is too long for its family.
pub(crate) fn mask(addr: IpAddr, prefix: u8) -> Option<IpAddr> {
    match addr {
        IpAddr::V4(a) if prefix <= 32 => {
            let bits = u32::from(a) & u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            Some(IpAddr::V4(Ipv4Addr::from(bits)))
        }
        IpAddr::V6(a) if prefix <= 128 => {
            let bits = u128::from(a) & u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            Some(IpAddr::V6(Ipv6Addr::from(bits)))
        }
        _ => None,
    }
}

/// Lowercase, without one trailing dot. Borrows when there is nothing to change.
pub(crate) fn normalize_name(name: &str) -> std::borrow::Cow<'_, str> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        name.to_ascii_lowercase().into()
    } else {
        name.into()
    }
}

impl FromStr for Endpoint {
    type Err = EndpointError;

    fn from_str(entry: &str) -> Result<Self, EndpointError> {
        super::syntax::parse(entry).map_err(|reason| EndpointError {
            entry: entry.to_owned(),
            reason,
        })
    }
}

impl Endpoint {
    /// Builds an endpoint from already-validated parts (the syntax module's output).
    pub(crate) fn from_parts(host: Host, port: Option<u16>) -> Self {
        let port = match host {
            Host::Network { .. } => port,
            _ => Some(port.unwrap_or(DEFAULT_NAME_PORT)),
        };
        Endpoint { host, port }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.host, self.port) {
            (Host::Exact(n), p) => write_name(f, n, p),
            (Host::Wildcard(s), p) => {
                f.write_str("*.")?;
                write_name(f, s, p)
            }
            (Host::Network { addr, prefix }, port) => write_net(f, *addr, *prefix, port),
        }
    }
}

fn write_name(f: &mut fmt::Formatter<'_>, name: &str, port: Option<u16>) -> fmt::Result {
    match port {
        Some(p) if p != DEFAULT_NAME_PORT => write!(f, "{name}:{p}"),
        _ => f.write_str(name),
    }
}

fn write_net(
    f: &mut fmt::Formatter<'_>,
    addr: IpAddr,
    prefix: u8,
    port: Option<u16>,
) -> fmt::Result {
    let net = match addr {
        IpAddr::V4(a) if prefix == 32 => a.to_string(),
        IpAddr::V6(a) if prefix == 128 => a.to_string(),
        _ => format!("{addr}/{prefix}"),
    };
    match (addr, port) {
        (_, None) => f.write_str(&net),
        (IpAddr::V4(_), Some(p)) => write!(f, "{net}:{p}"),
        (IpAddr::V6(_), Some(p)) => write!(f, "[{net}]:{p}"),
    }
}

/// Splits a list of entries on whitespace, commas and newlines (DESIGN.md "Lists"), skipping
/// empty items, and parses each. Returns every bad entry, not just the first.
pub fn parse_endpoint_list(text: &str) -> Result<Vec<Endpoint>, Vec<EndpointError>> {
    let (mut good, mut bad) = (Vec::new(), Vec::new());
    for item in text.split(|c: char| c == ',' || c.is_whitespace()) {
        if item.is_empty() {
            continue;
        }
        match item.parse() {
            Ok(e) => good.push(e),
            Err(e) => bad.push(e),
        }
    }
    if bad.is_empty() { Ok(good) } else { Err(bad) }
}

/// The entry a user should add to allow `name_or_ip` on `port`, in canonical form:
/// `example.com` (port 443), `example.com:8443`, `203.0.113.7:22`, `[2001:db8::1]:22`. A name is
/// lowercased and loses its trailing dot; an address (bracketed or not, v4-mapped or not) always
/// gets its port, since an address without one would allow every port.
pub fn rule_for(name_or_ip: &str, port: u16) -> String {
    let unbracketed = name_or_ip
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(name_or_ip);
    match unbracketed.parse::<IpAddr>() {
        Ok(ip) => {
            let host = Host::Network {
                addr: ip.to_canonical(),
                prefix: if ip.to_canonical().is_ipv4() { 32 } else { 128 },
            };
            Endpoint::from_parts(host, Some(port)).to_string()
        }
        Err(_) => {
            let host = Host::Exact(normalize_name(name_or_ip).into_owned());
            Endpoint::from_parts(host, Some(port)).to_string()
        }
    }
}
