//! `allowed-urls` entries (issue #7, strict mode): their syntax, their canonical text, and which
//! requests they match.
//!
//! An entry is `[METHOD ]SCHEME://HOST[:PORT]/PATH`, as in `GET https://github.com/my-org/**`
//! or `https://uploads.example.com/*`:
//! - METHOD is optional (any method when absent), letters, digits, `-` or `_`, matched
//!   case-insensitively and written uppercase. One method per entry.
//! - SCHEME is `https` or `http`; PORT defaults to 443 or 80 accordingly, and a request must
//!   match the scheme as well as the port.
//! - HOST is a name, exactly as in `allowed-endpoints`: `example.com`, or `*.example.com` for
//!   any subdomain at any depth but not `example.com` itself. IP addresses and user info are
//!   refused: inspection, which URL rules need, works on names.
//! - PATH is required (`https://host` alone is refused: write `/**` for every path or `/` for the
//!   root only). `*` matches zero or more characters within one segment and may sit among other
//!   characters (`v*.tar.gz`); `**` matches zero or more whole segments and must be a whole
//!   segment. `/my-org/**` therefore matches `/my-org`, `/my-org/` and everything below, never
//!   `/my-org-evil`. Escapes in the rule are decoded like a request's (`%2A` is a literal `*`);
//!   a query or fragment is refused, since queries are not matched; `.` and `..` segments are
//!   refused; duplicate slashes are dropped; a trailing slash is kept and must match.
//!
//! Request paths are first put through [`normalize_path`]; one that cannot be
//! normalised matches nothing. [`UrlRule`]'s `Display` is canonical and parses back to an equal
//! rule; it never contains a `,` or a space other than the one after the method.

mod path;
mod pattern;
mod set;
#[cfg(test)]
mod tests;

use std::{fmt, str::FromStr};

pub use path::{PathError, normalize_path};
use pattern::Segment;
pub use set::UrlRules;

use super::{Endpoint, EndpointReason, Host};

/// The URL schemes a rule may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `http`, port 80 by default.
    Http,
    /// `https`, port 443 by default.
    Https,
}

impl Scheme {
    /// The port a URL of this scheme means when it names none.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }

    /// Lowercase name, as written in canonical rules.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    fn parse(text: &str) -> Option<Scheme> {
        [Scheme::Http, Scheme::Https]
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(text))
    }
}

/// One `allowed-urls` entry, parsed. Equal rules have equal canonical text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UrlRule {
    /// Uppercase; `None` allows every method.
    method: Option<String>,
    scheme: Scheme,
    /// A name (exact or wildcard) and the port, always explicit.
    endpoint: Endpoint,
    path: Vec<Segment>,
}

/// An entry that is not valid URL-rule syntax: the entry, quoted, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid URL rule {entry:?}: {reason}")]
pub struct UrlRuleError {
    /// The entry as written.
    pub entry: String,
    /// What is wrong with it.
    pub reason: UrlRuleReason,
}

/// Why an entry is not valid URL-rule syntax.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlRuleReason {
    /// Nothing to parse.
    #[error("empty entry")]
    Empty,
    /// More than `METHOD URL`, or a space inside the URL.
    #[error(
        "has a space inside the URL or more than two parts; write [METHOD ]URL, %20 for a space"
    )]
    Space,
    /// A method that is not a token of letters, digits, `-` or `_`.
    #[error("method {0:?} is not an HTTP method such as GET")]
    Method(String),
    /// No `scheme://`.
    #[error("is not a URL; write [METHOD ]https://host/path")]
    NotUrl,
    /// A scheme other than http or https.
    #[error("scheme {0:?} is not http or https")]
    Scheme(String),
    /// `user@host`.
    #[error("has user info ('@' before the host); name the host only")]
    UserInfo,
    /// An IP literal where a host name is expected.
    #[error("host is an IP address; URL rules name hosts (inspection works on names)")]
    Address,
    /// A host that is not valid endpoint name syntax.
    #[error("host: {0}")]
    Host(EndpointReason),
    /// Port text that is not a number from 1 to 65535.
    #[error("port {0:?} is not a number from 1 to 65535")]
    Port(String),
    /// `scheme://host` with no path.
    #[error("has no path; write {0}/** for every path or {0}/ for the root only")]
    NoPath(String),
    /// `?…` or `#…`.
    #[error("has a query or fragment; queries are not matched, remove it")]
    Query,
    /// `**` that is not a whole segment.
    #[error("'**' is only allowed as a whole path segment (as in /org/**)")]
    DoubleStar,
    /// A `.` or `..` segment, written or encoded.
    #[error("has a '.' or '..' segment; write the path it means")]
    DotSegment,
    /// A path literal that does not decode.
    #[error("path {0}")]
    Path(PathError),
}

impl UrlRule {
    /// The method it allows (uppercase), or `None` for every method.
    pub fn method(&self) -> Option<&str> {
        self.method.as_deref()
    }

    /// The scheme it allows.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The host it names: [`Host::Exact`] or [`Host::Wildcard`], never a network.
    pub fn host(&self) -> &Host {
        self.endpoint.host()
    }

    /// The port it allows (the scheme's default unless written).
    pub fn port(&self) -> u16 {
        self.endpoint
            .port()
            .unwrap_or_else(|| self.scheme.default_port())
    }

    /// The host and port as an endpoint rule: what inspection must be turned on for.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Whether a request matches: method and scheme case-insensitively, host as
    /// [`Endpoint::matches_name`] (case and trailing dot ignored), the port exactly, and the path,
    /// which must already be [`normalize_path`]'s output (anything else matches nothing).
    pub fn matches(
        &self,
        method: &str,
        scheme: &str,
        host: &str,
        port: u16,
        normalized_path: &str,
    ) -> bool {
        self.method
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && Scheme::parse(scheme) == Some(self.scheme)
            && self.endpoint.matches_name(host, port)
            && pattern::matches(&self.path, normalized_path)
    }

    /// The narrowest rule that allows this one request (exact method, host, port and path), for
    /// a refusal to name; `None` if the parts cannot form a rule (an IP host, a bad method, a
    /// path that is not normalised).
    pub fn for_request(
        method: &str,
        scheme: &str,
        host: &str,
        port: u16,
        normalized_path: &str,
    ) -> Option<UrlRule> {
        let host = host.strip_suffix('.').unwrap_or(host);
        let rule: UrlRule = format!("{method} {scheme}://{host}:{port}{normalized_path}")
            .parse()
            .ok()?;
        rule.path
            .iter()
            .all(|s| matches!(s, Segment::Glob(p) if p.len() == 1))
            .then_some(rule)
    }
}

impl FromStr for UrlRule {
    type Err = UrlRuleError;

    fn from_str(entry: &str) -> Result<Self, UrlRuleError> {
        parse_rule(entry).map_err(|reason| UrlRuleError {
            entry: entry.to_owned(),
            reason,
        })
    }
}

fn parse_rule(entry: &str) -> Result<UrlRule, UrlRuleReason> {
    let mut parts = entry.split_whitespace();
    let (method, url) = match (parts.next(), parts.next(), parts.next()) {
        (None, _, _) => return Err(UrlRuleReason::Empty),
        (Some(url), None, _) => (None, url),
        (Some(method), Some(url), None) if !method.contains("://") => {
            (Some(parse_method(method)?), url)
        }
        _ => return Err(UrlRuleReason::Space),
    };
    let (scheme_text, rest) = url.split_once("://").ok_or(UrlRuleReason::NotUrl)?;
    let scheme =
        Scheme::parse(scheme_text).ok_or_else(|| UrlRuleReason::Scheme(scheme_text.to_owned()))?;
    let (authority, path) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
    let endpoint = parse_authority(authority, scheme)?;
    if path.contains(['?', '#']) {
        return Err(UrlRuleReason::Query);
    }
    let Some(path) = path.strip_prefix('/') else {
        return Err(UrlRuleReason::NoPath(format!(
            "{scheme_text}://{authority}"
        )));
    };
    Ok(UrlRule {
        method,
        scheme,
        endpoint,
        path: pattern::parse(path)?,
    })
}

fn parse_method(text: &str) -> Result<String, UrlRuleReason> {
    let ok = text.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    match ok {
        true => Ok(text.to_ascii_uppercase()),
        false => Err(UrlRuleReason::Method(text.to_owned())),
    }
}

/// `host[:port]`, the host checked with the endpoint grammar so both lists agree on names.
fn parse_authority(authority: &str, scheme: Scheme) -> Result<Endpoint, UrlRuleReason> {
    if authority.contains('@') {
        return Err(UrlRuleReason::UserInfo);
    }
    if authority.starts_with('[') {
        return Err(UrlRuleReason::Address);
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => (host, parse_port(port)?),
        None => (authority, scheme.default_port()),
    };
    if host.is_empty() {
        return Err(UrlRuleReason::Host(EndpointReason::Empty));
    }
    if host.contains(':') {
        return Err(UrlRuleReason::Host(EndpointReason::Colons));
    }
    let endpoint = super::syntax::parse(host).map_err(UrlRuleReason::Host)?;
    match endpoint.host() {
        Host::Network { .. } => Err(UrlRuleReason::Address),
        host => Ok(Endpoint::from_parts(host.clone(), Some(port))),
    }
}

fn parse_port(text: &str) -> Result<u16, UrlRuleReason> {
    match text.parse::<u16>() {
        Ok(p) if p != 0 && text.bytes().all(|b| b.is_ascii_digit()) => Ok(p),
        _ => Err(UrlRuleReason::Port(text.to_owned())),
    }
}

impl fmt::Display for UrlRule {
    /// `[METHOD ]scheme://host[:port]/path`: the port only when not the scheme's default, the
    /// path in the canonical encoding.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(method) = &self.method {
            write!(f, "{method} ")?;
        }
        write!(f, "{}://", self.scheme.as_str())?;
        match self.host() {
            Host::Wildcard(suffix) => write!(f, "*.{suffix}")?,
            Host::Exact(name) => f.write_str(name)?,
            Host::Network { addr, .. } => write!(f, "{addr}")?,
        }
        if self.port() != self.scheme.default_port() {
            write!(f, ":{}", self.port())?;
        }
        let mut path = String::new();
        pattern::write(&self.path, &mut path);
        f.write_str(&path)
    }
}

/// Splits a list of entries on commas and newlines (not on spaces, which separate a method from
/// its URL), trims each, skips empty ones, and parses each. Returns every bad entry, not just
/// the first. A `,` inside a path must be written `%2C`.
pub fn parse_url_rule_list(text: &str) -> Result<Vec<UrlRule>, Vec<UrlRuleError>> {
    let (mut good, mut bad) = (Vec::new(), Vec::new());
    for item in text.split([',', '\n']).map(str::trim) {
        if item.is_empty() {
            continue;
        }
        match item.parse() {
            Ok(rule) => good.push(rule),
            Err(e) => bad.push(e),
        }
    }
    if bad.is_empty() { Ok(good) } else { Err(bad) }
}
