//! `warden report`: what an audit log says, for people (markdown, the job summary) and for
//! tools (JSON, the GitHub Action's outputs and annotations).
//!
//! The report is computed from the log alone, so it can be rendered anywhere the log is: on the
//! runner by the action's post step, or later from an uploaded artifact. Records are read as
//! plain JSON (a newer Warden's extra fields are ignored; a line that is not JSON is counted,
//! never fatal). What a person must look at comes first: whether enforcement held, anomalies,
//! then blocked calls with the entry that would allow each; then every destination by step →
//! process → host:port, and an `allowed-endpoints` block that would allow what the job did.

mod fleet;
mod html;
mod markdown;
mod tally;

use std::path::Path;

use serde::Serialize;

pub use fleet::{Fleet, FleetDestination};
pub use markdown::{escape, render as markdown};
pub use tally::from_records;

/// Errors reading a log.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The log could not be read (the user's file).
    #[error("{path}: {source}")]
    Read {
        /// The log.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Everything the report says. Field names are the JSON report's (documented in
/// docs/report.md).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Report {
    /// Report format version.
    pub v: u32,
    /// `audit` or `block` (from the `start` record; `unknown` without one).
    pub mode: String,
    /// Whether enforcement held for the whole log, and if not, why.
    pub enforcement: Held,
    /// Counts.
    pub totals: Totals,
    /// Records with anomalies, grouped by kind, destination and step; first in every rendering.
    pub anomalies: Vec<AnomalyItem>,
    /// Blocked destinations, each with the entry that would allow it.
    pub blocked: Vec<BlockedItem>,
    /// Destinations by step, then process.
    pub steps: Vec<StepItem>,
    /// The entries that would allow everything the job reached or tried to (built-in
    /// allowances left out), sorted.
    pub allowed_endpoints: Vec<String>,
    /// The URL rules that allowed requests on strict hosts, and those blocked or audited
    /// requests there suggest, sorted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_urls: Vec<String>,
    /// Lines of the log that were not JSON records.
    #[serde(skip_serializing_if = "is_zero")]
    pub unreadable_lines: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Whether enforcement held.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Held {
    /// True when the log starts enforcement, never loses it and stops it (or, for a log
    /// fetched from a running daemon, has not stopped yet).
    pub held: bool,
    /// When enforcement started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// When it stopped (absent while it runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// The log was read while the daemon still enforced (it keeps enforcing after the report).
    pub live: bool,
    /// What went wrong, in words (`lost` and `recovered` events, a missing stop record).
    pub problems: Vec<String>,
}

/// Counts over the whole log.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Totals {
    /// TCP connections and UDP flows.
    pub connections: u64,
    /// DNS lookups.
    pub lookups: u64,
    /// Inspected HTTPS requests.
    pub requests: u64,
    /// Blocked records (connections, flows, lookups, requests).
    pub blocked: u64,
    /// Records with at least one anomaly.
    pub anomalies: u64,
}

/// One kind of anomaly at one destination in one step.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct AnomalyItem {
    /// The anomaly's kind (`secret-exfiltration`, …).
    pub kind: String,
    /// The first record's evidence.
    pub detail: String,
    /// Where it went (`host:port`, a URL's host, or the looked-up name).
    pub destination: String,
    /// The step, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// The process's executable.
    pub process: String,
    /// How many records.
    pub count: u64,
    /// The first record's time.
    pub time: String,
}

/// One blocked destination.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct BlockedItem {
    /// `host:port` (`/udp` for UDP), `lookup NAME` for a refused DNS lookup, `METHOD URL` for
    /// a refused request.
    pub destination: String,
    /// The entry to add to `allowed-endpoints` to allow it, when one would.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_with: Option<String>,
    /// The rule to add to `allowed-urls` (a request refused on a strict host), when one would.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_url: Option<String>,
    /// The first record's reason.
    pub reason: String,
    /// Steps that tried (sorted).
    pub steps: Vec<String>,
    /// Executables that tried (sorted).
    pub processes: Vec<String>,
    /// How many records.
    pub count: u64,
}

/// What one step did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct StepItem {
    /// The step (`id (what)`), or `null` for processes outside any step.
    pub step: Option<String>,
    /// Its processes, by executable.
    pub processes: Vec<ProcessItem>,
}

/// What one executable did within a step.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ProcessItem {
    /// Executable path.
    pub exe: String,
    /// Destinations, sorted.
    pub destinations: Vec<DestinationItem>,
}

/// Traffic to one destination.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct DestinationItem {
    /// `host:port` (`/udp` for UDP flows).
    pub destination: String,
    /// Addresses it went to.
    pub ips: Vec<String>,
    /// Connections (or flows).
    pub connections: u64,
    /// Of which blocked.
    pub blocked: u64,
    /// Bytes up (to the destination) and down.
    pub bytes_up: u64,
    /// Bytes down.
    pub bytes_down: u64,
    /// `allowed` (every connection), `blocked`, `audited`, or `mixed`.
    pub decision: String,
    /// The inspected requests' URLs (`METHOD URL STATUS`), in order, at most
    /// [`MAX_URLS`] (then `urls_omitted` says how many more).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    /// Requests beyond [`MAX_URLS`].
    #[serde(skip_serializing_if = "is_zero")]
    pub urls_omitted: u64,
}

/// URLs kept per destination.
pub const MAX_URLS: usize = 50;
/// Report format version.
pub const REPORT_VERSION: u32 = 1;

/// Reads the log at `path` and builds its report; `live` when the daemon still enforces.
pub fn from_file(path: &Path, live: bool) -> Result<Report, Error> {
    let (records, bad) = read_lenient(path)?;
    let mut report = from_records(&records, live);
    report.unreadable_lines = bad;
    Ok(report)
}

/// The records of the log at `path`, and how many lines were not records (counted, never
/// fatal: a damaged log still gets its report).
fn read_lenient(path: &Path) -> Result<(Vec<serde_json::Value>, u64), Error> {
    let text = std::fs::read(path).map_err(|source| Error::Read {
        path: path.display().to_string(),
        source,
    })?;
    let text = String::from_utf8_lossy(&text);
    let mut bad = 0;
    let records: Vec<serde_json::Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| match serde_json::from_str(l) {
            Ok(v @ serde_json::Value::Object(_)) => Some(v),
            _ => {
                bad += 1;
                None
            }
        })
        .collect();
    Ok((records, bad))
}

/// Marks every destination of `records` the baseline does not list as a `new-destination`
/// anomaly (issue #9), first among the anomalies.
pub fn apply_baseline(
    report: &mut Report,
    baseline: &crate::baseline::Baseline,
    records: &[serde_json::Value],
) {
    let new: Vec<AnomalyItem> = baseline
        .new_destinations(records)
        .into_iter()
        .map(|n| {
            report.totals.anomalies += n.count;
            AnomalyItem {
                kind: NEW_DESTINATION.into(),
                detail: format!(
                    "{} is not in the baseline ({} connection{} by {})",
                    n.endpoint,
                    n.count,
                    if n.count == 1 { "" } else { "s" },
                    n.processes.iter().cloned().collect::<Vec<_>>().join(", ")
                ),
                destination: n.endpoint,
                step: n.steps.into_iter().next(),
                process: n.processes.into_iter().next().unwrap_or_default(),
                count: n.count,
                time: String::new(),
            }
        })
        .collect();
    report.anomalies.splice(0..0, new);
}

/// The anomaly of a destination the baseline does not list.
pub const NEW_DESTINATION: &str = "new-destination";

/// What `warden report` was asked for.
pub struct Options<'a> {
    /// Logs: one file (a job's report) or several files or directories (the fleet view).
    pub logs: &'a [std::path::PathBuf],
    pub format: Format,
    /// Where to write (stdout when `None`).
    pub output: Option<&'a Path>,
    /// The daemon still enforces.
    pub live: bool,
    /// A baseline to mark new destinations against (a job's report only).
    pub baseline: Option<&'a Path>,
}

/// `warden report`. Exit 0; 1 when a log cannot be read or the output written; 2 for a bad
/// baseline.
pub fn run(opts: &Options<'_>) -> i32 {
    let single = opts.logs.len() == 1 && !opts.logs[0].is_dir();
    let text = if single {
        let (records, bad) = match read_lenient(&opts.logs[0]) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("warden: report: {e}");
                return 1;
            }
        };
        let mut report = from_records(&records, opts.live);
        report.unreadable_lines = bad;
        if let Some(path) = opts.baseline {
            match crate::baseline::Baseline::load(path) {
                Ok(b) => apply_baseline(&mut report, &b, &records),
                Err(e) => {
                    eprintln!("warden: report: {e}");
                    return 2;
                }
            }
        }
        match opts.format {
            Format::Markdown => markdown(&report),
            Format::Json => json(&report),
            Format::Html => {
                html::render(&serde_json::to_value(&report).unwrap_or_default(), &records)
            }
        }
    } else {
        if opts.baseline.is_some() {
            eprintln!("warden: report: --baseline applies to one job's log, not to many");
            return 2;
        }
        let logs = match crate::logs::read_all(opts.logs) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("warden: report: {e}");
                return 1;
            }
        };
        let f = fleet::build(&logs);
        match opts.format {
            Format::Markdown => f.markdown(),
            Format::Json => json(&f),
            Format::Html => f.html(),
        }
    };
    let written = match opts.output {
        Some(path) => std::fs::write(path, text),
        None => {
            use std::io::Write;
            std::io::stdout().write_all(text.as_bytes())
        }
    };
    match written {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("warden: report: cannot write the report: {e}");
            1
        }
    }
}

fn json<T: Serialize>(value: &T) -> String {
    let mut s = serde_json::to_string_pretty(value).unwrap_or_default();
    s.push('\n');
    s
}

/// Output formats of `warden report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The job summary.
    Markdown,
    /// The machine-readable report.
    Json,
    /// One self-contained page (timeline, process tree, filters).
    Html,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "markdown" | "md" => Ok(Format::Markdown),
            "json" => Ok(Format::Json),
            "html" => Ok(Format::Html),
            other => Err(format!("unknown format {other:?} (markdown, json or html)")),
        }
    }
}
