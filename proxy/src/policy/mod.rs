//! The policy engine: which outbound connections a job may make, and why.
//!
//! A [`Policy`] is a [`Mode`] (audit or block) plus a list of allowed [`Endpoint`]s, parsed from
//! `--allowed-endpoints`, `--egress-policy` and a YAML `--policy` file ([`mod@file`]). The proxy asks
//! [`Policy::decide`] about each connection once it knows where the connection goes and which name
//! (SNI or Host) it asked for, and gets back a [`Decision`]: allowed (with the rule), blocked or
//! audited (with the reason and the rule to add). The core is pure: no sockets, no files, no DNS.
//! Whatever needs the outside world (does the name resolve to this address? which allowed names
//! resolve to it?) the caller finds out beforehand and passes in the [`Connection`], using
//! [`Policy::exact_names`] to know which names to resolve. The syntax and the decision order are
//! documented for users in `docs/policy.md`.

pub mod builtin;
mod decide;
mod endpoint;
pub mod file;
mod index;
mod syntax;
#[cfg(test)]
mod tests;
pub mod url;

use std::{collections::HashSet, fmt, net::IpAddr, str::FromStr};

pub use decide::{Connection, Decision, FLAG_BUILTIN, FLAG_ECH, FLAG_SNI_IP_MISMATCH, Verdict};
pub use endpoint::{
    DEFAULT_NAME_PORT, Endpoint, EndpointError, EndpointReason, Host, parse_endpoint_list, rule_for,
};
pub use file::{Overrides, PolicyFile, Problem};

/// What happens to a connection no rule allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Let it through and record it as `audited` (the default).
    #[default]
    Audit,
    /// Refuse it and record it as `blocked`.
    Block,
}

/// A mode other than `audit` or `block`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid egress policy {0:?}: expected audit or block")]
pub struct ModeError(pub String);

impl FromStr for Mode {
    type Err = ModeError;

    /// `audit` or `block`, exactly (lowercase, as harden-runner's `egress-policy`).
    fn from_str(s: &str) -> Result<Self, ModeError> {
        match s {
            "audit" => Ok(Mode::Audit),
            "block" => Ok(Mode::Block),
            _ => Err(ModeError(s.to_owned())),
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Audit => "audit",
            Mode::Block => "block",
        })
    }
}

/// The transport of a connection. Name rules only ever match TCP; address rules match both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        })
    }
}

/// A mode and the endpoints it allows, indexed for [`decide`](Policy::decide).
#[derive(Debug)]
pub struct Policy {
    mode: Mode,
    endpoints: Vec<Endpoint>,
    index: index::Index,
    /// Canonical texts of the built-in allowances the user did not also list.
    builtin: HashSet<String>,
    inspection: Inspection,
    exfil: Exfil,
    files: crate::files::Rules,
}

/// Whether TLS is inspected (key `tls-inspection`) and which hosts never are (`no-inspect`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inspection {
    /// `tls-inspection: true` / `--tls-inspection`.
    pub enabled: bool,
    /// Hosts (exact names or `*.` wildcards) passed through uninspected.
    pub no_inspect: Vec<Host>,
    /// Strict mode (`allowed-urls`): the hosts these rules name are inspected even when
    /// `enabled` is false, and only the requests they match are allowed there.
    pub urls: url::UrlRules,
}

impl Inspection {
    /// Whether any connection may be inspected (everything, or strict hosts only).
    pub fn needed(&self) -> bool {
        self.enabled || !self.urls.is_empty()
    }
}

/// Exfiltration detection: the job's secrets and where each may go, and the upload budget.
#[derive(Debug, Clone)]
pub struct Exfil {
    /// Finds the named secrets and the well-known token formats.
    pub detector: crate::exfil::Detector,
    /// `secret-audiences`: hosts a named secret may be sent to (replacing the audience of its
    /// token format, if it has one).
    pub audiences: Vec<(String, Vec<Host>)>,
    /// `upload-budget`: bytes per destination host over which an `upload-budget` anomaly is
    /// flagged.
    pub upload_budget: Option<u64>,
}

impl Default for Exfil {
    fn default() -> Self {
        Exfil {
            detector: crate::exfil::Detector::new(Vec::new()),
            audiences: Vec::new(),
            upload_budget: None,
        }
    }
}

impl Exfil {
    /// Whether `finding` may be sent to `host` (a name, optionally with `:port`): a declared
    /// audience first, else its token format's. A named secret of unknown audience belongs
    /// nowhere: the user named it as a secret without saying where it may go.
    pub fn allowed_to(&self, finding: &crate::exfil::Finding, host: &str) -> bool {
        if finding.kind == crate::exfil::Kind::Named
            && let Some((_, hosts)) = self.audiences.iter().find(|(n, _)| *n == finding.name)
        {
            let name = host_only(host);
            return hosts.iter().any(|h| h.matches_name(&name));
        }
        crate::exfil::Detector::is_audience(finding, host)
    }
}

/// `host:port` or `[v6]:port` → the lowercase host without trailing dot.
fn host_only(host: &str) -> String {
    let h = match host.rsplit_once(':') {
        Some((h, port)) if !h.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    h.trim_end_matches('.').to_ascii_lowercase()
}

impl Policy {
    /// Builds the policy and its index. Duplicate rules are kept (the first one is reported).
    pub fn new(mode: Mode, endpoints: Vec<Endpoint>) -> Policy {
        let index = index::Index::new(&endpoints);
        Policy {
            mode,
            endpoints,
            index,
            builtin: HashSet::new(),
            inspection: Inspection::default(),
            exfil: Exfil::default(),
            files: crate::files::Rules::default(),
        }
    }

    /// Like [`Policy::new`], plus the [built-in allowances](builtin) after the user's rules (so a
    /// rule the user also wrote is the user's). Decisions they make carry the flag `builtin`.
    pub fn with_builtin(mode: Mode, mut endpoints: Vec<Endpoint>) -> Policy {
        let listed: HashSet<String> = endpoints.iter().map(ToString::to_string).collect();
        let builtin: Vec<Endpoint> = builtin::endpoints();
        let marked = builtin
            .iter()
            .map(ToString::to_string)
            .filter(|b| !listed.contains(b))
            .collect();
        endpoints.extend(builtin);
        Policy {
            builtin: marked,
            ..Policy::new(mode, endpoints)
        }
    }

    /// The same policy with `inspection` settings.
    pub fn with_inspection(self, inspection: Inspection) -> Policy {
        Policy { inspection, ..self }
    }

    /// The same policy with exfiltration settings.
    pub fn with_exfil(self, exfil: Exfil) -> Policy {
        Policy { exfil, ..self }
    }

    /// Exfiltration detection settings.
    pub fn exfil(&self) -> &Exfil {
        &self.exfil
    }

    /// TLS inspection settings.
    pub fn inspection(&self) -> &Inspection {
        &self.inspection
    }

    /// The same policy with file-monitoring rules (key `file-monitoring`).
    pub fn with_file_monitoring(self, files: crate::files::Rules) -> Policy {
        Policy { files, ..self }
    }

    /// File-monitoring rules: ignored paths and expected writers.
    pub fn file_monitoring(&self) -> &crate::files::Rules {
        &self.files
    }

    /// Whether `rule` (canonical text) is a built-in allowance.
    pub fn is_builtin(&self, rule: &str) -> bool {
        self.builtin.contains(rule)
    }

    /// What happens to connections no rule allows.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The rules, in the order given.
    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    /// The name rule that would allow `name` on `port`, if any (the caller then checks the IP
    /// against what the name resolves to). Case-insensitive; a trailing dot is ignored. An exact
    /// rule wins over a wildcard, a closer wildcard over a wider one.
    pub fn name_rule(&self, name: &str, port: u16) -> Option<&Endpoint> {
        self.index.name(name, port).map(|i| &self.endpoints[i])
    }

    /// The name rule that names `name` on some port, if any (exact over wildcard, closer
    /// wildcard over wider). What DNS asks: a name no rule names may not even be resolved in
    /// block mode, whatever port would follow.
    pub fn name_rule_any_port(&self, name: &str) -> Option<&Endpoint> {
        self.index.name_any_port(name).map(|i| &self.endpoints[i])
    }

    /// The IP/CIDR rule allowing `ip:port` over `proto`, if any. Address rules allow TCP and UDP
    /// alike, so `proto` does not change the answer today; v4-mapped IPv6 addresses are matched
    /// as IPv4. The longest prefix wins.
    pub fn ip_rule(&self, ip: IpAddr, port: u16, proto: Proto) -> Option<&Endpoint> {
        let _ = proto;
        self.index.ip(ip, port).map(|i| &self.endpoints[i])
    }

    /// Exact (non-wildcard) host names in the rules with their ports, so the caller can resolve
    /// them (used to judge ECH connections and raw-IP connections by the names their destination
    /// address resolves from). In rule order; a name with several ports comes once per port.
    pub fn exact_names(&self) -> impl Iterator<Item = (&str, u16)> {
        self.endpoints
            .iter()
            .filter_map(|e| match (e.host(), e.port()) {
                (Host::Exact(name), Some(port)) => Some((name.as_str(), port)),
                _ => None,
            })
    }
}
