//! The lookup structures behind [`Policy`](super::Policy), so a policy of 10 000 rules answers as
//! fast as one of 10.
//!
//! Every connection is judged against the rules, so a lookup must not scan them. Exact names are
//! one hash lookup; wildcards are found by walking the name's parent suffixes (`a.b.example.com`
//! tries `b.example.com`, then `example.com`, then `com`), one hash lookup each; networks live in
//! one hash map per prefix length that some rule uses, probed longest first (at most 33 probes for
//! IPv4, 129 for IPv6). The cost depends on the name's length and the number of distinct prefix
//! lengths, never on the number of rules. Each structure stores positions in the policy's rule
//! list; when several rules match, the most specific wins (exact name, then the longest suffix or
//! prefix, then a rule for this port over an every-port rule), and among equal rules the first.

use std::{collections::HashMap, net::IpAddr};

use super::endpoint::{Endpoint, Host, normalize_name};

/// Where each rule of a policy can be found, by what it matches.
#[derive(Debug, Default)]
pub(super) struct Index {
    exact: HashMap<Box<str>, HashMap<u16, usize>>,
    wildcard: HashMap<Box<str>, HashMap<u16, usize>>,
    v4: NetTable,
    v6: NetTable,
}

/// Networks of one address family, keyed by prefix length then by masked address bits.
#[derive(Debug, Default)]
struct NetTable {
    /// Sorted by prefix length, longest first, so the first hit is the most specific.
    by_len: Vec<(u8, HashMap<u128, Ports>)>,
}

/// The rules for one name or network: per port, and for every port.
#[derive(Debug, Default)]
struct Ports {
    any: Option<usize>,
    by_port: HashMap<u16, usize>,
}

impl Index {
    /// Indexes `rules`; positions in the returned index are positions in `rules`.
    pub(super) fn new(rules: &[Endpoint]) -> Self {
        let mut index = Index::default();
        for (i, rule) in rules.iter().enumerate() {
            let port = rule.port();
            match rule.host() {
                Host::Exact(n) => insert_name(&mut index.exact, n, port, i),
                Host::Wildcard(s) => insert_name(&mut index.wildcard, s, port, i),
                Host::Network { addr, prefix } => {
                    let (table, bits, width) = match addr {
                        IpAddr::V4(a) => (&mut index.v4, u128::from(u32::from(*a)), 32),
                        IpAddr::V6(a) => (&mut index.v6, u128::from(*a), 128),
                    };
                    table.insert(*prefix, bits, width, port, i);
                }
            }
        }
        index
    }

    /// The position of the rule allowing TCP to `name` on `port`, if any.
    pub(super) fn name(&self, name: &str, port: u16) -> Option<usize> {
        let name = normalize_name(name);
        if let Some(&i) = self.exact.get(&*name).and_then(|p| p.get(&port)) {
            return Some(i);
        }
        // Every proper parent suffix, longest first: `*.s` needs at least one label before `s`.
        name.match_indices('.')
            .filter(|&(dot, _)| dot > 0)
            .find_map(|(dot, _)| self.wildcard.get(&name[dot + 1..])?.get(&port).copied())
    }

    /// The position of the most specific rule naming `name` on any port (the first of equals):
    /// what DNS asks, since a lookup does not say which port will follow.
    pub(super) fn name_any_port(&self, name: &str) -> Option<usize> {
        let first = |ports: &HashMap<u16, usize>| ports.values().min().copied();
        let name = normalize_name(name);
        if let Some(i) = self.exact.get(&*name).and_then(first) {
            return Some(i);
        }
        name.match_indices('.')
            .filter(|&(dot, _)| dot > 0)
            .find_map(|(dot, _)| first(self.wildcard.get(&name[dot + 1..])?))
    }

    /// The position of the rule allowing `ip:port`, if any.
    pub(super) fn ip(&self, ip: IpAddr, port: u16) -> Option<usize> {
        match ip.to_canonical() {
            IpAddr::V4(a) => self.v4.get(u128::from(u32::from(a)), 32, port),
            IpAddr::V6(a) => self.v6.get(u128::from(a), 128, port),
        }
    }
}

fn insert_name(
    map: &mut HashMap<Box<str>, HashMap<u16, usize>>,
    name: &str,
    port: Option<u16>,
    i: usize,
) {
    // Names always carry a port (443 by default); see `Endpoint::from_parts`.
    if let Some(port) = port {
        map.entry(name.into()).or_default().entry(port).or_insert(i);
    }
}

/// `bits` (an address of `width` bits, right-aligned) with everything past `prefix` cleared.
fn masked(bits: u128, width: u8, prefix: u8) -> u128 {
    let host_bits = u32::from(width - prefix);
    bits & u128::MAX.checked_shl(host_bits).unwrap_or(0)
}

impl NetTable {
    fn insert(&mut self, prefix: u8, bits: u128, width: u8, port: Option<u16>, i: usize) {
        let slot = match self.by_len.iter().position(|(len, _)| *len <= prefix) {
            Some(at) if self.by_len[at].0 == prefix => at,
            Some(at) => {
                self.by_len.insert(at, (prefix, HashMap::new()));
                at
            }
            None => {
                self.by_len.push((prefix, HashMap::new()));
                self.by_len.len() - 1
            }
        };
        let ports = self.by_len[slot]
            .1
            .entry(masked(bits, width, prefix))
            .or_default();
        match port {
            Some(p) => _ = ports.by_port.entry(p).or_insert(i),
            None => _ = ports.any.get_or_insert(i),
        }
    }

    fn get(&self, bits: u128, width: u8, port: u16) -> Option<usize> {
        self.by_len.iter().find_map(|(prefix, nets)| {
            let ports = nets.get(&masked(bits, width, *prefix))?;
            ports.by_port.get(&port).copied().or(ports.any)
        })
    }
}
