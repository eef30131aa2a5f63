//! The baseline: a job's egress lockfile (issue #9). A reviewable YAML file in the repository
//! listing what the job is expected to contact — each destination as an endpoint entry, with
//! the programs and steps that reached it and, when inspected, the URL prefixes asked for — so a
//! run can be compared with it and what is new stands out (`new-destination`).
//!
//! ```yaml
//! # Warden baseline: what this job is expected to contact. Update it with
//! #   warden baseline update --log AUDIT --baseline FILE
//! version: 1
//! destinations:
//!   - endpoint: "github.com"
//!     processes: ["git"]
//!     steps: ["checkout (actions/checkout@v4)"]
//!     urls: ["GET https://github.com/my-org/app/**"]
//! file-writers: []
//! ```
//!
//! Merging only adds: a destination, program, step or URL prefix once in the baseline stays
//! until a person removes it. The file is written sorted, quoted and one item per line, so a
//! change shows as a small diff in review. Unknown keys are kept out (and reported) so the file
//! stays what Warden can read back.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
};

use saphyr::{LoadableYamlNode, MarkedYaml, YamlData};
use serde_json::Value;

use crate::{
    logs::{has_flag, str_at},
    policy::{rule_for, url::normalize_path},
};

/// One expected destination.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Destination {
    pub processes: BTreeSet<String>,
    pub steps: BTreeSet<String>,
    pub urls: BTreeSet<String>,
}

/// The baseline: destinations by endpoint text, and expected file writers.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Baseline {
    pub destinations: BTreeMap<String, Destination>,
    /// `path-glob: process` entries (file monitoring); kept as written.
    pub file_writers: BTreeSet<String>,
}

/// Something a run did that the baseline does not list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct New {
    /// The endpoint entry (`github.com`, `203.0.113.7:22`).
    pub endpoint: String,
    /// Connections to it in the run.
    pub count: u64,
    /// Programs that made them.
    pub processes: BTreeSet<String>,
    /// Steps that made them.
    pub steps: BTreeSet<String>,
}

impl Baseline {
    /// What the records show the run contacted, as a baseline.
    pub fn from_records<'a>(records: impl IntoIterator<Item = &'a Value>) -> Baseline {
        let mut b = Baseline::default();
        for r in records {
            let Some(endpoint) = endpoint_of(r) else {
                continue;
            };
            let d = b.destinations.entry(endpoint).or_default();
            if let Some(exe) = str_at(r, &["process", "exe"]) {
                d.processes.insert(file_name(exe));
            }
            if let Some(step) = str_at(r, &["process", "step"]) {
                d.steps.insert(step.to_string());
            }
            if r["kind"] == "request"
                && let Some(prefix) = url_prefix(r)
            {
                d.urls.insert(prefix);
            }
        }
        b
    }

    /// Adds everything in `other`.
    pub fn merge(&mut self, other: Baseline) {
        for (endpoint, d) in other.destinations {
            let mine = self.destinations.entry(endpoint).or_default();
            mine.processes.extend(d.processes);
            mine.steps.extend(d.steps);
            mine.urls.extend(d.urls);
        }
        self.file_writers.extend(other.file_writers);
    }

    /// Destinations in `records` this baseline does not list, in endpoint order.
    pub fn new_destinations<'a>(&self, records: impl IntoIterator<Item = &'a Value>) -> Vec<New> {
        let mut new: BTreeMap<String, New> = BTreeMap::new();
        for r in records {
            if r["kind"] == "request" {
                continue;
            }
            let Some(endpoint) = endpoint_of(r) else {
                continue;
            };
            if self.destinations.contains_key(&endpoint) {
                continue;
            }
            let n = new.entry(endpoint.clone()).or_insert_with(|| New {
                endpoint,
                count: 0,
                processes: BTreeSet::new(),
                steps: BTreeSet::new(),
            });
            n.count += 1;
            if let Some(exe) = str_at(r, &["process", "exe"]) {
                n.processes.insert(file_name(exe));
            }
            if let Some(step) = str_at(r, &["process", "step"]) {
                n.steps.insert(step.to_string());
            }
        }
        new.into_values().collect()
    }

    /// The file's text: sorted, every string quoted.
    pub fn render(&self) -> String {
        let q = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
        let list = |items: &BTreeSet<String>| {
            let quoted: Vec<String> = items.iter().map(|s| q(s)).collect();
            format!("[{}]", quoted.join(", "))
        };
        let mut out = String::from(
            "# Warden baseline: what this job is expected to contact. Update it with\n\
             #   warden baseline update --log AUDIT --baseline FILE\n\
             # and review the diff like any other change.\nversion: 1\n",
        );
        if self.destinations.is_empty() {
            out.push_str("destinations: []\n");
        } else {
            out.push_str("destinations:\n");
        }
        for (endpoint, d) in &self.destinations {
            out.push_str(&format!("  - endpoint: {}\n", q(endpoint)));
            out.push_str(&format!("    processes: {}\n", list(&d.processes)));
            if !d.steps.is_empty() {
                out.push_str(&format!("    steps: {}\n", list(&d.steps)));
            }
            if !d.urls.is_empty() {
                out.push_str("    urls:\n");
                for u in &d.urls {
                    out.push_str(&format!("      - {}\n", q(u)));
                }
            }
        }
        out.push_str(&format!("file-writers: {}\n", list(&self.file_writers)));
        out
    }

    /// Reads a baseline file; the error names the file, line and what is wrong.
    pub fn load(path: &Path) -> Result<Baseline, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot read the baseline: {e}", path.display()))?;
        parse(&text).map_err(|(line, e)| format!("{}:{line}: {e}", path.display()))
    }
}

/// Parses a baseline's text; errors carry the line.
pub fn parse(text: &str) -> Result<Baseline, (usize, String)> {
    let docs = MarkedYaml::load_from_str(text).map_err(|e| {
        (
            e.marker().line(),
            format!("yaml syntax error: {}", e.info()),
        )
    })?;
    let mut b = Baseline::default();
    let Some(doc) = docs.first() else {
        return Ok(b);
    };
    let line = |n: &MarkedYaml<'_>| n.span.start.line();
    let YamlData::Mapping(map) = &doc.data else {
        return Err((
            line(doc),
            "a baseline is a mapping (version, destinations)".into(),
        ));
    };
    for (k, v) in map {
        match scalar(k).unwrap_or_default() {
            "version" => {
                if scalar(v) != Some("1") {
                    return Err((line(v), "unsupported baseline version (expected 1)".into()));
                }
            }
            "destinations" => {
                for item in seq(v).ok_or((line(v), "destinations: expected a list".into()))? {
                    let YamlData::Mapping(fields) = &item.data else {
                        return Err((line(item), "a destination is a mapping".into()));
                    };
                    let mut endpoint = None;
                    let mut d = Destination::default();
                    for (fk, fv) in fields {
                        let key = scalar(fk).unwrap_or_default();
                        let strings = || {
                            strings(fv)
                                .ok_or((line(fv), format!("{key}: expected a list of strings")))
                        };
                        match key {
                            "endpoint" => endpoint = scalar(fv).map(str::to_string),
                            "processes" => d.processes = strings()?,
                            "steps" => d.steps = strings()?,
                            "urls" => d.urls = strings()?,
                            other => {
                                return Err((
                                    line(fk),
                                    format!("unknown destination key {other:?}"),
                                ));
                            }
                        }
                    }
                    let endpoint =
                        endpoint.ok_or((line(item), "a destination needs an endpoint".into()))?;
                    b.destinations.insert(endpoint, d);
                }
            }
            "file-writers" => {
                b.file_writers = strings(v)
                    .ok_or((line(v), "file-writers: expected a list of strings".into()))?;
            }
            other => return Err((line(k), format!("unknown key {other:?}"))),
        }
    }
    Ok(b)
}

fn scalar<'n>(node: &'n MarkedYaml<'_>) -> Option<&'n str> {
    match &node.data {
        YamlData::Value(saphyr::Scalar::String(s)) => Some(s),
        YamlData::Representation(s, _, _) => Some(s),
        _ => None,
    }
    .map(|s| &**s)
    .or(match &node.data {
        YamlData::Value(saphyr::Scalar::Integer(1)) => Some("1"),
        _ => None,
    })
}

fn seq<'n, 'a>(node: &'n MarkedYaml<'a>) -> Option<&'n [MarkedYaml<'a>]> {
    match &node.data {
        YamlData::Sequence(items) => Some(items),
        _ => None,
    }
}

fn strings(node: &MarkedYaml<'_>) -> Option<BTreeSet<String>> {
    seq(node)?
        .iter()
        .map(|n| scalar(n).map(str::to_string))
        .collect()
}

/// The endpoint entry of a connection or flow the baseline lists, or `None` for one it does
/// not.
fn endpoint_of(r: &Value) -> Option<String> {
    if !matches!(r["kind"].as_str(), Some("connection" | "udp" | "request")) {
        return None;
    }
    if crate::logs::NEEDS_NO_ENTRY.iter().any(|f| has_flag(r, f)) {
        return None;
    }
    let port = u16::try_from(r["dst"]["port"].as_u64()?).ok()?;
    let ip = str_at(r, &["dst", "ip"])?;
    if ip
        .parse::<std::net::IpAddr>()
        .is_ok_and(|a| a.is_loopback() || a.is_unspecified())
    {
        return None;
    }
    let name = (r["kind"] != "udp")
        .then(|| {
            str_at(r, &["tls", "sni"])
                .or_else(|| str_at(r, &["dst", "name"]))
                .map(|n| n.trim_end_matches('.').to_ascii_lowercase())
        })
        .flatten();
    Some(rule_for(name.as_deref().unwrap_or(ip), port))
}

/// `METHOD scheme://host/a/b/**` (at most two path segments, then `**`).
fn url_prefix(r: &Value) -> Option<String> {
    let method = str_at(r, &["http", "method"])?;
    let url = str_at(r, &["http", "url"])?;
    let (scheme, rest) = url.split_once("://")?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = path.split(['?', '#']).next().unwrap_or("/");
    let normalized = normalize_path(if path.is_empty() { "/" } else { path }).ok()?;
    let segments: Vec<&str> = normalized.split('/').filter(|s| !s.is_empty()).collect();
    let shown = if segments.len() > 2 {
        format!("/{}/{}/**", segments[0], segments[1])
    } else {
        normalized.clone()
    };
    Some(format!("{method} {scheme}://{authority}{shown}"))
}

fn file_name(exe: &str) -> String {
    exe.rsplit('/').next().unwrap_or(exe).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn conn(name: &str, port: u16, exe: &str, step: &str) -> Value {
        json!({"kind": "connection", "dst": {"ip": "192.0.2.1", "port": port, "name": name},
               "tls": {"sni": name}, "process": {"exe": exe, "step": step}})
    }

    #[test]
    fn round_trip_merge_and_new_destinations() {
        let first = vec![
            conn("github.com", 443, "/usr/bin/git", "checkout"),
            json!({"kind": "request", "dst": {"ip": "192.0.2.1", "port": 443, "name": "github.com"},
                   "tls": {"sni": "github.com"}, "process": {"exe": "/usr/bin/git"},
                   "http": {"method": "GET", "url": "https://github.com/org/app/info/refs?service=x"}}),
            conn("pypi.org", 443, "/usr/bin/pip", "install"),
        ];
        let b = Baseline::from_records(&first);
        let text = b.render();
        assert!(
            text.contains("\"GET https://github.com/org/app/**\""),
            "{text}"
        );
        let back = parse(&text).unwrap();
        assert_eq!(back, b);

        let second = vec![
            conn("github.com", 443, "/usr/bin/curl", "build"),
            conn("evil.example", 443, "/usr/bin/curl", "build"),
            conn("evil.example", 8443, "/usr/bin/curl", "build"),
        ];
        let new = back.new_destinations(&second);
        let names: Vec<&str> = new.iter().map(|n| n.endpoint.as_str()).collect();
        assert_eq!(names, ["evil.example", "evil.example:8443"]);
        let mut merged = back.clone();
        merged.merge(Baseline::from_records(&second));
        assert!(merged.new_destinations(&second).is_empty());
        assert_eq!(merged.destinations["github.com"].processes.len(), 2);
    }

    #[test]
    fn bad_files_name_the_line() {
        let (line, e) = parse("version: 1\ndestinations:\n  - processes: [x]\n").unwrap_err();
        assert_eq!(line, 3, "{e}");
        let (line, e) = parse("version: 1\nwat: 2\n").unwrap_err();
        assert_eq!((line, e.contains("wat")), (2, true));
    }
}
