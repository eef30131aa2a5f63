//! `warden policy suggest --log AUDIT…`: the block-mode policy that would have allowed exactly
//! what a run did (issue #9).
//!
//! Every TCP connection and UDP flow in the logs becomes an entry naming its host (the TLS SNI,
//! the HTTP Host, or the name the job's DNS answers gave its address) and port, or its address
//! when it had no name. Names are folded into a wildcard only where [`WILDCARD_MIN`] or more
//! distinct names under one parent were contacted on one port, and never where the parent is a
//! public suffix (`*.github.io`, `*.co.uk` would allow anyone's site). What the built-in
//! allowances allowed, Warden's own DNS traffic and local connections are left out: they need
//! no entry.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::{
    logs::{has_flag, str_at},
    policy::rule_for,
};

/// Distinct names under one parent that make a wildcard.
pub const WILDCARD_MIN: usize = 3;

/// How to print the suggestion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A YAML policy file (`warden run --policy`).
    Policy,
    /// The action's `allowed-endpoints:` input.
    Action,
}

/// One suggested entry and what it would have allowed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Canonical endpoint text (`github.com`, `*.example.com:8443`, `203.0.113.7:22`).
    pub rule: String,
    /// Connections and flows it covers.
    pub count: u64,
    /// Executables (file names) that made them.
    pub processes: BTreeSet<String>,
    /// The names a wildcard stands for.
    pub names: BTreeSet<String>,
}

/// What the logs say the run needed.
#[derive(Debug, Default)]
pub struct Suggestion {
    /// The entries, sorted by rule.
    pub entries: Vec<Entry>,
    /// Names looked up but never connected to (no entry: a lookup alone needs none in audit
    /// mode; in block mode it gets NXDOMAIN).
    pub lookups_only: BTreeSet<String>,
    /// Connections counted.
    pub connections: u64,
}

/// Builds the suggestion from the records of one or more logs.
pub fn suggest<'a>(records: impl IntoIterator<Item = &'a Value>) -> Suggestion {
    // (host or address, port) → count, processes.
    let mut seen: BTreeMap<(String, u16), Entry> = BTreeMap::new();
    let mut looked_up = BTreeSet::new();
    let mut connections = 0;
    for r in records {
        match r["kind"].as_str() {
            Some("dns") => {
                if str_at(r, &["dns", "rcode"]) == Some("NOERROR")
                    && let Some(q) = str_at(r, &["dns", "qname"])
                {
                    looked_up.insert(q.to_string());
                }
                continue;
            }
            Some("connection" | "udp") => {}
            _ => continue,
        }
        if crate::logs::NEEDS_NO_ENTRY.iter().any(|f| has_flag(r, f)) {
            continue;
        }
        let Some(port) = r["dst"]["port"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
        else {
            continue;
        };
        let Some(ip) = str_at(r, &["dst", "ip"]) else {
            continue;
        };
        if ip
            .parse::<std::net::IpAddr>()
            .is_ok_and(|a| a.is_loopback() || a.is_unspecified())
        {
            continue;
        }
        let udp = r["kind"] == "udp";
        let name = if udp { None } else { name_of(r) };
        let key = (name.unwrap_or_else(|| ip.to_string()), port);
        let e = seen.entry(key).or_default();
        e.count += 1;
        if let Some(exe) = str_at(r, &["process", "exe"]) {
            e.processes
                .insert(exe.rsplit('/').next().unwrap_or(exe).to_string());
        }
        connections += 1;
    }
    let mut entries: BTreeMap<String, Entry> = BTreeMap::new();
    let mut covered: BTreeSet<String> = BTreeSet::new();
    for ((host, port), e) in fold(seen) {
        covered.insert(host.clone());
        covered.extend(e.names.iter().cloned());
        let rule = if host.starts_with("*.") {
            match port {
                443 => host.clone(),
                p => format!("{host}:{p}"),
            }
        } else {
            rule_for(&host, port)
        };
        let slot = entries.entry(rule.clone()).or_default();
        slot.rule = rule;
        slot.count += e.count;
        slot.processes.extend(e.processes);
        slot.names.extend(e.names);
    }
    let lookups_only = looked_up
        .into_iter()
        .filter(|q| {
            !covered.contains(q)
                && !covered
                    .iter()
                    .any(|c| c.strip_prefix('*').is_some_and(|s| q.ends_with(s)))
        })
        .collect();
    Suggestion {
        entries: entries.into_values().collect(),
        lookups_only,
        connections,
    }
}

/// The name a connection asked for: SNI, then Host, then its address's name.
fn name_of(r: &Value) -> Option<String> {
    let raw = str_at(r, &["tls", "sni"])
        .or_else(|| str_at(r, &["http", "host"]))
        .or_else(|| str_at(r, &["dst", "name"]))?;
    let host = raw
        .rsplit_once(':')
        .filter(|(h, p)| !h.contains(':') && p.bytes().all(|b| b.is_ascii_digit()))
        .map_or(raw, |(h, _)| h);
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    // An address written as a name (`Host: 192.0.2.1`) is an address.
    (!host.is_empty() && host.parse::<std::net::IpAddr>().is_err()).then_some(host)
}

/// Folds names into `*.parent` where [`WILDCARD_MIN`] distinct names under one parent (not a
/// public suffix) were contacted on one port.
fn fold(seen: BTreeMap<(String, u16), Entry>) -> BTreeMap<(String, u16), Entry> {
    let mut by_parent: BTreeMap<(String, u16), Vec<String>> = BTreeMap::new();
    for (host, port) in seen.keys() {
        if host.parse::<std::net::IpAddr>().is_ok() {
            continue;
        }
        if let Some((_, parent)) = host.split_once('.')
            && widenable(parent)
        {
            by_parent
                .entry((parent.to_string(), *port))
                .or_default()
                .push(host.clone());
        }
    }
    let mut out = seen;
    for ((parent, port), names) in by_parent {
        if names.len() < WILDCARD_MIN {
            continue;
        }
        let mut folded = Entry::default();
        for n in names {
            if let Some(e) = out.remove(&(n.clone(), port)) {
                folded.count += e.count;
                folded.processes.extend(e.processes);
            }
            folded.names.insert(n);
        }
        out.insert((format!("*.{parent}"), port), folded);
    }
    out
}

/// Whether `*.parent` may be suggested: `parent` has a registrable domain of its own (it is not
/// a public suffix such as `com`, `co.uk` or `github.io`) and is not a bare label.
fn widenable(parent: &str) -> bool {
    parent.contains('.') && psl::domain(parent.as_bytes()).is_some_and(|d| d.suffix().is_known())
}

impl Suggestion {
    /// The suggestion as a YAML policy or the action's input.
    pub fn render(&self, format: Format, sources: &[String]) -> String {
        let mut out = String::new();
        match format {
            Format::Policy => {
                out.push_str(&format!(
                    "# Suggested by `warden policy suggest` from {}: {} connection{} to {} \
                     destination{}.\n# Review it: every entry allowed something the run did.\n\
                     mode: block\nallowed-endpoints:",
                    sources.join(", "),
                    self.connections,
                    plural(self.connections),
                    self.entries.len(),
                    plural(self.entries.len() as u64),
                ));
                if self.entries.is_empty() {
                    out.push_str(" []");
                }
                out.push('\n');
                for e in &self.entries {
                    let mut why = format!(
                        "{} connection{}: {}",
                        e.count,
                        plural(e.count),
                        e.processes.iter().cloned().collect::<Vec<_>>().join(", ")
                    );
                    if !e.names.is_empty() {
                        why.push_str(&format!(
                            " (for {})",
                            e.names.iter().cloned().collect::<Vec<_>>().join(", ")
                        ));
                    }
                    out.push_str(&format!("  - \"{}\"  # {why}\n", e.rule));
                }
            }
            Format::Action => {
                out.push_str("allowed-endpoints: >\n");
                for e in &self.entries {
                    out.push_str(&format!("  {}\n", action_entry(&e.rule)));
                }
            }
        }
        if !self.lookups_only.is_empty() {
            out.push_str(
                "# Looked up but never connected to (no entry needed; in block mode these \
                 lookups get NXDOMAIN):\n",
            );
            for q in &self.lookups_only {
                out.push_str(&format!("#   {q}\n"));
            }
        }
        out
    }
}

/// harden-runner's `host:port` form (it always writes the port).
/// `rule` as the action's `allowed-endpoints` input spells it: with its port (`host:443`), as
/// harden-runner users write it.
pub fn action_entry(rule: &str) -> String {
    let has_port = rule
        .rsplit_once(':')
        .is_some_and(|(h, p)| (!h.contains(':') || h.ends_with(']')) && p.parse::<u16>().is_ok());
    if has_port || rule.contains('/') {
        rule.to_string()
    } else {
        format!("{rule}:443")
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn conn(sni: &str, ip: &str, port: u16, exe: &str) -> Value {
        json!({"kind": "connection", "dst": {"ip": ip, "port": port, "proto": "tcp"},
               "tls": {"sni": sni, "alpn": [], "ech": false},
               "process": {"pid": 1, "exe": exe, "ancestry": []}})
    }

    #[test]
    fn exact_names_ports_and_addresses() {
        let records = vec![
            conn("github.com", "192.0.2.1", 443, "/usr/bin/git"),
            conn("github.com", "192.0.2.1", 443, "/usr/bin/curl"),
            conn("api.example.com", "192.0.2.2", 8443, "/usr/bin/curl"),
            json!({"kind": "connection", "dst": {"ip": "2001:db8::1", "port": 22, "proto": "tcp"}}),
            json!({"kind": "udp", "dst": {"ip": "198.51.100.7", "port": 123, "proto": "udp"}}),
            json!({"kind": "connection", "flags": ["builtin"],
                   "dst": {"ip": "192.0.2.9", "port": 443, "name": "results.example"}}),
            json!({"kind": "dns", "dns": {"qname": "unused.example.org", "qtype": "A", "rcode": "NOERROR"}}),
            json!({"kind": "dns", "dns": {"qname": "github.com", "qtype": "A", "rcode": "NOERROR"}}),
        ];
        let s = suggest(&records);
        let rules: Vec<&str> = s.entries.iter().map(|e| e.rule.as_str()).collect();
        assert_eq!(
            rules,
            [
                "198.51.100.7:123",
                "[2001:db8::1]:22",
                "api.example.com:8443",
                "github.com"
            ]
        );
        assert_eq!(s.entries[3].count, 2);
        assert_eq!(
            s.lookups_only.iter().collect::<Vec<_>>(),
            ["unused.example.org"]
        );
        let yaml = s.render(Format::Policy, &["a.jsonl".into()]);
        let parsed = crate::policy::file::parse(&yaml, "suggested.yml").unwrap();
        assert_eq!(parsed.allowed_endpoints.unwrap().len(), 4);
        let action = s.render(Format::Action, &[]);
        assert!(action.contains("  github.com:443\n"), "{action}");
        assert!(action.contains("  [2001:db8::1]:22\n"), "{action}");
    }

    #[test]
    fn wildcards_only_for_many_names_and_never_a_public_suffix() {
        let mut records = Vec::new();
        for n in ["a", "b", "c"] {
            records.push(conn(
                &format!("{n}.cdn.example.com"),
                "192.0.2.1",
                443,
                "curl",
            ));
            records.push(conn(&format!("{n}.github.io"), "192.0.2.2", 443, "curl"));
            records.push(conn(&format!("{n}.co.uk"), "192.0.2.3", 443, "curl"));
        }
        records.push(conn("x.two.example.com", "192.0.2.4", 443, "curl"));
        records.push(conn("y.two.example.com", "192.0.2.4", 443, "curl"));
        let s = suggest(&records);
        let rules: Vec<&str> = s.entries.iter().map(|e| e.rule.as_str()).collect();
        assert!(rules.contains(&"*.cdn.example.com"), "{rules:?}");
        assert!(
            !rules.iter().any(|r| r.contains("*.github.io")),
            "{rules:?}"
        );
        assert!(!rules.iter().any(|r| r.contains("*.co.uk")), "{rules:?}");
        assert!(
            rules.contains(&"a.github.io") && rules.contains(&"b.co.uk"),
            "{rules:?}"
        );
        assert!(
            rules.contains(&"x.two.example.com"),
            "two names are not many: {rules:?}"
        );
    }
}
