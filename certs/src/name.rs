//! The names a certificate is issued for.
//!
//! A server name arrives from a ClientHello's SNI, or from the proxy as the address the client
//! dialled. Before it becomes a subjectAltName it is checked with the same rules rustls applies
//! to SNI (RFC 1035 host names, `_` allowed, no all-numeric last label) and normalised —
//! lowercased, trailing dot removed — because clients compare DNS names case-insensitively and
//! ignore the root dot (webpki does both), and because the normalised name is the minter's cache
//! key: `Example.COM.` and `example.com` must share one certificate.

use std::fmt;
use std::net::IpAddr;

use rcgen::{DistinguishedName, DnType, SanType};
use rustls::pki_types::DnsName;

use crate::Error;

/// Longest common name or organisational unit RFC 5280 allows (`ub-common-name`,
/// `ub-organizational-unit-name`, Appendix A.1).
const MAX_COMMON_NAME: usize = 64;

/// A validated, normalised name for a leaf certificate.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Name {
    /// A DNS host name, lowercase, without a trailing dot.
    Dns(String),
    /// An IP literal: a client connecting by address checks iPAddress SANs (RFC 5280 §4.2.1.6),
    /// never DNS names, and sends no SNI (RFC 6066 §3).
    Ip(IpAddr),
}

impl Name {
    /// Parses a host name or IP literal. Wildcards are refused: a client never asks for one.
    pub(crate) fn parse(name: &str) -> Result<Name, Error> {
        if let Ok(ip) = name.parse::<IpAddr>() {
            return Ok(Name::Ip(ip));
        }
        let dns = DnsName::try_from(name).map_err(|source| Error::InvalidName {
            name: name.to_owned(),
            source,
        })?;
        let lower = dns.as_ref().to_ascii_lowercase();
        Ok(Name::Dns(lower.trim_end_matches('.').to_owned()))
    }

    /// Parses a name for [`crate::Authority::issue_leaf`], which test origins use and which may
    /// also ask for a wildcard (`*.example.com`).
    pub(crate) fn parse_pattern(name: &str) -> Result<SanType, Error> {
        match name.strip_prefix("*.") {
            Some(rest) => match Name::parse(rest)? {
                Name::Dns(base) => dns_san(&format!("*.{base}")),
                Name::Ip(_) => Err(Error::InvalidName {
                    name: name.to_owned(),
                    source: rustls::pki_types::InvalidDnsNameError,
                }),
            },
            None => Name::parse(name)?.san(),
        }
    }

    /// The subjectAltName entry that names exactly this host.
    pub(crate) fn san(&self) -> Result<SanType, Error> {
        match self {
            Name::Dns(dns) => dns_san(dns),
            Name::Ip(ip) => Ok(SanType::IpAddress(*ip)),
        }
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Name::Dns(dns) => f.write_str(dns),
            Name::Ip(ip) => ip.fmt(f),
        }
    }
}

fn dns_san(dns: &str) -> Result<SanType, Error> {
    // Validated ASCII, so rcgen's IA5String conversion cannot fail; any error is rcgen's own.
    Ok(SanType::DnsName(dns.try_into()?))
}

/// A leaf's subject: `CN=<name>` so people reading a certificate see what it is for, or empty
/// when the name is longer than a common name may be. Clients match on the SAN only (RFC 9525 no
/// longer treats the common name as an identifier), and rcgen marks the SAN critical when the
/// subject is empty (RFC 5280 §4.2.1.6).
pub(crate) fn leaf_subject(name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    if name.len() <= MAX_COMMON_NAME {
        dn.push(DnType::CommonName, name);
    }
    dn
}

/// Cuts `text` to at most [`MAX_COMMON_NAME`] bytes on a character boundary, for subject
/// attributes built from outside input (the host name).
pub(crate) fn fit_attribute(text: &str) -> &str {
    let mut end = text.len().min(MAX_COMMON_NAME);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
