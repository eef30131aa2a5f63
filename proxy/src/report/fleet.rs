//! The organisation-level view over many audit logs (issue #9): every destination any job
//! reached, which repositories, jobs and steps reached it, how often, first and last seen.
//!
//! A log names its job in its enforcement `start` record (`job`: repository, workflow, job, run
//! id, written by the action from the runner's `GITHUB_*` variables); a log without one (a
//! `warden run` on a workstation) is named after its file.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Serialize;
use serde_json::Value;

use super::html::esc;
use crate::logs::{has_flag, str_at};

/// What many logs say, destination by destination.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Fleet {
    /// Format version.
    pub v: u32,
    /// Logs read.
    pub logs: u64,
    /// Destinations, most connected first.
    pub destinations: Vec<FleetDestination>,
}

/// One destination across the logs.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct FleetDestination {
    /// `host:port` (`/udp` for UDP flows).
    pub destination: String,
    /// Connections and flows.
    pub connections: u64,
    /// Of which blocked.
    pub blocked: u64,
    /// Records with anomalies.
    pub anomalies: u64,
    /// Repositories (`owner/name`) whose jobs reached it.
    pub repositories: BTreeSet<String>,
    /// Jobs (`repository workflow/job #run`, or the log's file name).
    pub jobs: BTreeSet<String>,
    /// Steps.
    pub steps: BTreeSet<String>,
    /// Executables (file names).
    pub processes: BTreeSet<String>,
    /// First and last record time.
    pub first_seen: String,
    pub last_seen: String,
}

/// Flags of connections that are Warden's own business.
const SKIP: &[&str] = &["dns", "loop", "no-original-dst", "upstream-local"];

/// Builds the view from `(file, records)` pairs.
pub fn build(logs: &[(PathBuf, Vec<Value>)]) -> Fleet {
    let mut by_dest: BTreeMap<String, FleetDestination> = BTreeMap::new();
    for (path, records) in logs {
        let (repository, job) = job_of(path, records);
        for r in records {
            if !matches!(r["kind"].as_str(), Some("connection" | "udp")) {
                continue;
            }
            if SKIP.iter().any(|f| has_flag(r, f)) {
                continue;
            }
            let Some(dest) = destination(r) else {
                continue;
            };
            let d = by_dest
                .entry(dest.clone())
                .or_insert_with(|| FleetDestination {
                    destination: dest,
                    ..FleetDestination::default()
                });
            d.connections += 1;
            d.blocked += u64::from(r["decision"] == "blocked");
            d.anomalies += u64::from(r["anomalies"].as_array().is_some_and(|a| !a.is_empty()));
            if let Some(repo) = &repository {
                d.repositories.insert(repo.clone());
            }
            d.jobs.insert(job.clone());
            if let Some(step) = str_at(r, &["process", "step"]) {
                d.steps.insert(step.to_string());
            }
            if let Some(exe) = str_at(r, &["process", "exe"]) {
                d.processes
                    .insert(exe.rsplit('/').next().unwrap_or(exe).to_string());
            }
            if let Some(t) = str_at(r, &["time"]) {
                if d.first_seen.is_empty() || t < d.first_seen.as_str() {
                    d.first_seen = t.to_string();
                }
                if t > d.last_seen.as_str() {
                    d.last_seen = t.to_string();
                }
            }
        }
    }
    let mut destinations: Vec<FleetDestination> = by_dest.into_values().collect();
    destinations.sort_by(|a, b| {
        b.connections
            .cmp(&a.connections)
            .then_with(|| a.destination.cmp(&b.destination))
    });
    Fleet {
        v: 1,
        logs: logs.len() as u64,
        destinations,
    }
}

/// The log's repository and a name for its job.
fn job_of(path: &std::path::Path, records: &[Value]) -> (Option<String>, String) {
    let start = records
        .iter()
        .find(|r| r["kind"] == "enforcement" && r["enforcement"]["event"] == "start");
    let job = start.map(|s| &s["enforcement"]["job"]);
    let repository = job
        .and_then(|j| j["repository"].as_str())
        .map(str::to_string);
    let name = match job {
        Some(j) if j.is_object() => format!(
            "{} {}/{} #{}",
            j["repository"].as_str().unwrap_or("?"),
            j["workflow"].as_str().unwrap_or("?"),
            j["job"].as_str().unwrap_or("?"),
            j["run_id"].as_str().unwrap_or("?"),
        ),
        _ => path.file_name().map_or_else(
            || path.display().to_string(),
            |f| f.to_string_lossy().into_owned(),
        ),
    };
    (repository, name)
}

fn destination(r: &Value) -> Option<String> {
    let port = r["dst"]["port"].as_u64()?;
    let host = str_at(r, &["dst", "name"])
        .or_else(|| str_at(r, &["tls", "sni"]))
        .or_else(|| str_at(r, &["dst", "ip"]))?;
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    let udp = if r["kind"] == "udp" { "/udp" } else { "" };
    Some(format!("{host}:{port}{udp}"))
}

fn join(set: &BTreeSet<String>) -> String {
    set.iter().cloned().collect::<Vec<_>>().join(", ")
}

impl Fleet {
    /// A markdown table.
    pub fn markdown(&self) -> String {
        let mut out = format!(
            "# Warden: destinations across {} job log{}\n\n| Destination | Connections | Blocked | \
             Anomalies | Repositories | Jobs | Steps | First seen | Last seen |\n|---|---:|---:|---:|---|---:|---|---|---|\n",
            self.logs,
            if self.logs == 1 { "" } else { "s" }
        );
        for d in &self.destinations {
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} | {} | {} | {} | {} | {} |",
                d.destination,
                d.connections,
                d.blocked,
                d.anomalies,
                join(&d.repositories).replace('|', "\\|"),
                d.jobs.len(),
                join(&d.steps).replace('|', "\\|"),
                d.first_seen,
                d.last_seen
            );
        }
        out
    }

    /// One self-contained HTML page with a filterable table.
    pub fn html(&self) -> String {
        let mut out = String::from(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Warden: \
             destinations across jobs</title><style>body{font:14px/1.45 system-ui,sans-serif;\
             margin:1.5em}table{border-collapse:collapse}td,th{padding:.25em .6em;border-bottom:1px \
             solid #eaeef2;text-align:left;vertical-align:top}.blocked{background:#fff1f0}\
             .anomaly{background:#fff8c5}.hidden{display:none}</style></head><body>\n",
        );
        let _ = write!(
            out,
            "<h1>Destinations across {} job logs</h1>\n<input id=\"filter\" type=\"search\" \
             placeholder=\"filter\" size=\"40\">\n<table id=\"fleet\"><thead><tr><th>Destination</th>\
             <th>Connections</th><th>Blocked</th><th>Anomalies</th><th>Repositories</th><th>Jobs</th>\
             <th>Steps</th><th>First seen</th><th>Last seen</th></tr></thead><tbody>\n",
            self.logs
        );
        for d in &self.destinations {
            let class = if d.anomalies > 0 {
                "anomaly"
            } else if d.blocked > 0 {
                "blocked"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "<tr class=\"{class}\"><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td>\
                 <td>{}</td><td title=\"{}\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&d.destination),
                d.connections,
                d.blocked,
                d.anomalies,
                esc(&join(&d.repositories)),
                esc(&join(&d.jobs)),
                d.jobs.len(),
                esc(&join(&d.steps)),
                esc(&d.first_seen),
                esc(&d.last_seen)
            );
        }
        out.push_str(
            "</tbody></table>\n<script>(function(){var f=document.getElementById('filter');\
             var rows=document.querySelectorAll('#fleet tbody tr');f.addEventListener('input',\
             function(){var q=f.value.toLowerCase();rows.forEach(function(r){r.classList.toggle(\
             'hidden',q&&r.textContent.toLowerCase().indexOf(q)<0)})})})();</script>\n</body></html>\n",
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn conn(name: &str, time: &str, decision: &str) -> Value {
        json!({"kind": "connection", "time": time, "decision": decision,
               "dst": {"ip": "192.0.2.1", "port": 443, "name": name},
               "process": {"exe": "/usr/bin/curl", "step": "build"}})
    }

    #[test]
    fn counts_each_destination_across_logs() {
        let start = json!({"kind": "enforcement", "enforcement": {"event": "start",
            "job": {"repository": "org/app", "workflow": "ci", "job": "test", "run_id": "7"}}});
        let logs = vec![
            (
                PathBuf::from("a.jsonl"),
                vec![
                    start,
                    conn("github.com", "2026-01-02T00:00:00.000Z", "allowed"),
                    conn("evil.example", "2026-01-02T00:00:01.000Z", "blocked"),
                ],
            ),
            (
                PathBuf::from("b.jsonl"),
                vec![
                    conn("github.com", "2026-01-01T00:00:00.000Z", "allowed"),
                    conn("github.com", "2026-01-03T00:00:00.000Z", "allowed"),
                ],
            ),
        ];
        let f = build(&logs);
        assert_eq!(f.logs, 2);
        let gh = &f.destinations[0];
        assert_eq!(
            (gh.destination.as_str(), gh.connections),
            ("github.com:443", 3)
        );
        assert_eq!(gh.jobs.len(), 2);
        assert_eq!(gh.repositories.iter().collect::<Vec<_>>(), ["org/app"]);
        assert_eq!(gh.first_seen, "2026-01-01T00:00:00.000Z");
        assert_eq!(gh.last_seen, "2026-01-03T00:00:00.000Z");
        assert_eq!(f.destinations[1].blocked, 1);
        assert!(f.markdown().contains("| `evil.example:443` | 1 | 1 |"));
        assert!(f.html().contains("class=\"blocked\""));
    }
}
