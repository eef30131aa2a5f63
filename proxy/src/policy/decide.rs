//! [`Policy::decide`]: one connection in, one [`Decision`] out, in the order DESIGN.md and
//! `docs/policy.md` give.
//!
//! 1. ECH: the outer SNI is the client-facing server's public name, not where the client is going,
//!    so it is ignored; the connection is allowed when an allowed name resolves to its address.
//! 2. A name (SNI or Host) an allowed name rule matches: allowed only if the name resolves to the
//!    destination address, or else flagged `sni-ip-mismatch` (fronting: an allowed name sent to
//!    somebody else's address).
//! 3. An address rule matching the destination (also after a mismatch: an address rule allows the
//!    address whatever name is sent, so adding a name rule never blocks what was allowed).
//! 4. No name at all (raw TCP to an address): allowed when an allowed name resolves to it.
//! 5. Otherwise the mode decides: blocked or audited, with the rule that would allow it.

use std::net::SocketAddr;

use super::{Endpoint, Mode, Policy, Proto, rule_for};

/// Flag: the name the connection asked for is allowed, but does not resolve to its address.
pub const FLAG_SNI_IP_MISMATCH: &str = "sni-ip-mismatch";
/// Flag: the ClientHello carried ECH (real or GREASE), so its SNI was not trusted.
pub const FLAG_ECH: &str = "ech";
/// Flag: a [built-in allowance](super::builtin) (the runner's own services) allowed it.
pub const FLAG_BUILTIN: &str = "builtin";

/// What the proxy knows about a connection when it asks for a decision.
#[derive(Debug, Clone, Copy)]
pub struct Connection<'a> {
    /// The original destination address.
    pub ip: std::net::IpAddr,
    /// The original destination port.
    pub port: u16,
    /// TCP or UDP.
    pub proto: Proto,
    /// SNI or HTTP Host (lowercase, no port), when the client sent one.
    pub name: Option<&'a str>,
    /// The ClientHello carried ECH: `name` is then only the outer (public) name and must not be
    /// trusted.
    pub ech: bool,
    /// Whether `name` resolves to `ip` (None: not resolved / no name). The caller resolves; the
    /// policy stays pure.
    pub name_resolves_to_ip: Option<bool>,
    /// Names from [`Policy::exact_names`] that resolve to `ip` (the caller resolves them). Used
    /// for ECH connections and for connections without a name.
    pub ip_names: &'a [String],
}

/// The outcome, as recorded in the audit log's `decision`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A rule allows it.
    Allowed,
    /// No rule allows it and the policy is in block mode: refused.
    Blocked,
    /// No rule allows it and the policy is in audit mode: let through and recorded.
    Audited,
}

impl Verdict {
    /// The record's spelling: `allowed`, `blocked`, `audited`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allowed => "allowed",
            Verdict::Blocked => "blocked",
            Verdict::Audited => "audited",
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A verdict and everything a record or a 403 body says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Allowed, blocked or audited.
    pub verdict: Verdict,
    /// The canonical text of the rule that allowed it (`Some` exactly when allowed).
    pub rule: Option<String>,
    /// One line saying why, for records and logs.
    pub reason: String,
    /// [`FLAG_SNI_IP_MISMATCH`], [`FLAG_ECH`].
    pub flags: Vec<&'static str>,
    /// The entry to add to allow it ([`rule_for`]), when not allowed and adding an entry would
    /// help: `None` after a name/address mismatch, whose cure is not another rule.
    pub suggestion: Option<String>,
}

impl Policy {
    /// Judges `c` (see the module docs for the order). Pure: everything that needs DNS is in `c`.
    pub fn decide(&self, c: &Connection<'_>) -> Decision {
        let mut d = self.decide_by_rules(c);
        if d.rule.as_deref().is_some_and(|r| self.is_builtin(r)) {
            d.flags.push(FLAG_BUILTIN);
        }
        d
    }

    fn decide_by_rules(&self, c: &Connection<'_>) -> Decision {
        let ip = c.ip.to_canonical();
        let dst = SocketAddr::new(ip, c.port);
        let tcp = c.proto == Proto::Tcp;
        // The name the client asked for, when it can be trusted to say where it is going.
        let name = c.name.filter(|n| tcp && !c.ech && !n.is_empty());
        let mut flags = Vec::new();
        let mut mismatch = None;
        if tcp && c.ech {
            flags.push(FLAG_ECH);
            if let Some((name, rule)) = self.rule_for_ip_names(c) {
                return allowed(rule, format!("ECH; {ip} is an address of {name}"), flags);
            }
        } else if let Some(name) = name
            && let Some(rule) = self.name_rule(name, c.port)
        {
            let tail = match c.name_resolves_to_ip {
                Some(true) => return allowed(rule, format!("{name} resolves to {ip}"), flags),
                Some(false) => format!("does not resolve to {ip}"),
                None => format!("could not be resolved to check {ip}"),
            };
            mismatch = Some(format!("{name} matches {rule} but {tail}"));
            flags.push(FLAG_SNI_IP_MISMATCH);
        }
        if let Some(rule) = self.ip_rule(ip, c.port, c.proto) {
            let why = match &mismatch {
                Some(m) => format!("{dst}/{} by address ({m})", c.proto),
                None => format!("{dst}/{} by address", c.proto),
            };
            return allowed(rule, why, flags);
        }
        if tcp
            && !c.ech
            && name.is_none()
            && let Some((name, rule)) = self.rule_for_ip_names(c)
        {
            return allowed(rule, format!("{ip} is an address of {name}"), flags);
        }
        let (reason, suggestion) = match (mismatch, name) {
            // Another rule is not the cure for a name sent to an address it does not have.
            (Some(m), _) => (m, None),
            (None, Some(name)) => (
                format!("no rule allows {name} on port {} ({dst})", c.port),
                Some(rule_for(name, c.port)),
            ),
            (None, None) => {
                let ech = if c.ech {
                    "ECH hides the server name and no allowed name resolves to the address; "
                } else {
                    ""
                };
                (
                    format!("{ech}no rule allows {dst}/{}", c.proto),
                    Some(rule_for(&ip.to_string(), c.port)),
                )
            }
        };
        Decision {
            verdict: match self.mode {
                Mode::Block => Verdict::Blocked,
                Mode::Audit => Verdict::Audited,
            },
            rule: None,
            reason,
            flags,
            suggestion,
        }
    }

    /// The first of `c.ip_names` that a name rule allows on `c.port`, with that rule.
    fn rule_for_ip_names<'p, 'c>(
        &'p self,
        c: &'c Connection<'_>,
    ) -> Option<(&'c str, &'p Endpoint)> {
        c.ip_names
            .iter()
            .find_map(|n| Some((n.as_str(), self.name_rule(n, c.port)?)))
    }
}

fn allowed(rule: &Endpoint, why: String, flags: Vec<&'static str>) -> Decision {
    Decision {
        verdict: Verdict::Allowed,
        rule: Some(rule.to_string()),
        reason: format!("allowed by {rule}: {why}"),
        flags,
        suggestion: None,
    }
}
