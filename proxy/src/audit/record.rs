//! The audit record: the schema users' tools and the report read (see `docs/audit-log.md`).

use serde::Serialize;

/// Version of the record schema, written as `v` in every record. Bump it when a field changes
/// meaning or is removed; adding a field does not need a bump.
pub const SCHEMA_VERSION: u32 = 1;

/// What a record is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// One TCP connection, written when it closes.
    Connection,
    /// One UDP flow (a socket sending to one destination), written at the end of the run.
    Udp,
    /// One DNS query and its answer, written when it is answered.
    Dns,
    /// One HTTP request inside an inspected TLS connection, written when its response ends.
    Request,
    /// One change to a file in the workspace or to Warden's own files (file monitoring), or a
    /// tracked file found to differ from the checked-out commit at the end.
    File,
    /// Enforcement started or stopped.
    Enforcement,
}

/// What happened to the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// A rule allowed it.
    Allowed,
    /// Block mode refused it.
    Blocked,
    /// No rule allowed it; audit mode let it through.
    Audited,
}

/// One audit record. Parts that do not apply are omitted.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    /// Schema version.
    pub v: u32,
    /// When the connection (or event) started, RFC 3339 UTC.
    pub time: String,
    /// How long the connection lasted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Record kind.
    pub kind: Kind,
    /// The process responsible.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process: Option<Process>,
    /// Where it was going.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dst: Option<Dst>,
    /// What the TLS ClientHello said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<Tls>,
    /// What the HTTP request head said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<Http>,
    /// The DNS query and answer (kind `dns` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns: Option<Dns>,
    /// The file changed (kind `file` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<FileChange>,
    /// The decision.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    /// The rule that decided, if one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Why, in words (also how a connection ended when that was not a clean close).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Notable facts (`v4-mapped`, `upstream-refused`, `malformed-client-hello`, ...).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
    /// Bytes relayed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<Bytes>,
    /// Enforcement change (kind `enforcement` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enforcement: Option<Enforcement>,
    /// What a person should look at, each with its evidence (`secret-exfiltration`,
    /// `domain-fronting`, `dns-tunnel`, ...). Each kind is also in `flags`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub anomalies: Vec<Anomaly>,
}

/// Something suspicious about a record, with the evidence for it. Never holds a secret's value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Anomaly {
    /// What kind of thing: a stable, lowercase, dashed name (`secret-exfiltration`).
    pub kind: String,
    /// The evidence, in words.
    pub detail: String,
}

impl Record {
    /// An empty record of `kind`, stamped now.
    pub fn new(kind: Kind) -> Self {
        Self {
            v: SCHEMA_VERSION,
            time: now_rfc3339(),
            duration_ms: None,
            kind,
            process: None,
            dst: None,
            tls: None,
            http: None,
            dns: None,
            file: None,
            decision: None,
            rule: None,
            reason: None,
            flags: Vec::new(),
            bytes: None,
            enforcement: None,
            anomalies: Vec::new(),
        }
    }
}

impl Record {
    /// Adds an anomaly of `kind` with its evidence, and `kind` to the flags (once).
    pub fn anomaly(&mut self, kind: &str, detail: impl Into<String>) {
        if !self.flags.iter().any(|f| f == kind) {
            self.flags.push(kind.to_string());
        }
        self.anomalies.push(Anomaly {
            kind: kind.to_string(),
            detail: detail.into(),
        });
    }

    /// Adds how things went on after the reason already given (`REASON; then MORE`).
    pub fn append_reason(&mut self, more: &str) {
        self.reason = Some(match self.reason.take() {
            Some(r) => format!("{r}; then {more}"),
            None => more.to_string(),
        });
    }
}

/// The process behind a connection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Process {
    /// Process id (thread-group id).
    pub pid: u32,
    /// Parent process id, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ppid: Option<u32>,
    /// Executable path as exec'd, or `[comm]` when only the thread name is known.
    pub exe: String,
    /// Command line, when it could be read.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub argv: Vec<String>,
    /// Executables of the parent, grandparent, ... up to the job's first process.
    pub ancestry: Vec<String>,
    /// Workflow step (set by the GitHub Action; absent for `warden run`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
}

/// The original destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dst {
    /// IP address as the process gave it (IPv4 for v4-mapped addresses).
    pub ip: String,
    /// Port.
    pub port: u16,
    /// Transport: `tcp`.
    pub proto: &'static str,
    /// Name the destination is known by (SNI or HTTP host), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// What the ClientHello said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tls {
    /// Server name indication.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    /// ALPN protocols offered.
    pub alpn: Vec<String>,
    /// The ClientHello carried an ECH extension (real or GREASE).
    pub ech: bool,
}

/// What the HTTP request head said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Http {
    /// Host header (or CONNECT target).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Request method.
    pub method: String,
    /// Request target, query string removed (it can carry signed-URL secrets). In `request`
    /// records (inspected HTTPS): the full URL, with credential-bearing query values redacted.
    pub url: String,
    /// HTTP version (`request` records).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Response status (`request` records; absent when no response came).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}

/// A DNS lookup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dns {
    /// The name asked for, lowercase, without the trailing dot.
    pub qname: String,
    /// The record type asked for (`A`, `AAAA`, `HTTPS`, ...).
    pub qtype: String,
    /// The answer's response code (`NOERROR`, `NXDOMAIN`, ...), as the client got it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rcode: Option<String>,
    /// The answer section: A, AAAA, CNAME chain and other records.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub answers: Vec<sniff::dns::AnswerRecord>,
    /// The resolver Warden asked (absent when Warden answered itself).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
}

/// A change to a file (kind `file`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FileChange {
    /// Relative to the workspace (`/`-separated); absolute for Warden's own files.
    pub path: String,
    /// `create`, `write`, `delete`, `rename`, `chmod`, or `differs` (the end-of-job comparison
    /// with the checked-out commit, not an event).
    pub op: &'static str,
    /// A rename's source path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// SHA-256 of the content before the change, when known (hex).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256_before: Option<String>,
    /// SHA-256 of the content after the change, when known (hex).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256_after: Option<String>,
    /// Permission bits before a `chmod`, octal (`0644`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode_before: Option<String>,
    /// Permission bits after, octal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode_after: Option<String>,
}

/// Bytes relayed in each direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Bytes {
    /// Client to destination.
    pub up: u64,
    /// Destination to client.
    pub down: u64,
}

/// An enforcement change.
#[derive(Debug, Clone, Serialize)]
pub struct Enforcement {
    /// `start`, `stop`, or (daemon) `lost` when its programs were found unloaded or it died.
    pub event: &'static str,
    /// `audit` (block mode comes with policies).
    pub mode: &'static str,
    /// The cgroup enforced on.
    pub cgroup: String,
    /// Kernel ids of the attached eBPF programs.
    pub programs: Vec<u32>,
    /// Where the proxy listened.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy: Option<String>,
    /// TLS inspection's CA (start only; absent when inspection is off).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inspection: Option<String>,
    /// Warden's resolver (absent: `--no-dns`, lookups neither seen nor policed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns: Option<DnsLayer>,
    /// Process events the kernel dropped (stop only; absent when none were lost).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lost_process_events: Option<u64>,
    /// File monitoring: the workspace watched (start) and what was seen (stop); absent when
    /// file monitoring is off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<FilesInfo>,
    /// The CI job Warden guards (start only; from the runner's `GITHUB_*` variables, absent
    /// elsewhere): what the report across many logs groups by.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job: Option<Job>,
}

/// A GitHub Actions job, as the runner names it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Job {
    /// `owner/name`.
    pub repository: String,
    /// The workflow's name.
    pub workflow: String,
    /// The job's id.
    pub job: String,
    /// The run's id and attempt.
    pub run_id: String,
    pub run_attempt: String,
}

impl Job {
    /// The job the environment describes (`GITHUB_REPOSITORY`, …), if it is a runner's.
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Option<Job> {
        let repository = env("GITHUB_REPOSITORY").filter(|r| !r.is_empty())?;
        let get = |k: &str| env(k).unwrap_or_default();
        Some(Job {
            repository,
            workflow: get("GITHUB_WORKFLOW"),
            job: get("GITHUB_JOB"),
            run_id: get("GITHUB_RUN_ID"),
            run_attempt: get("GITHUB_RUN_ATTEMPT"),
        })
    }
}

/// File monitoring in the `enforcement` records.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FilesInfo {
    /// The workspace watched (absolute).
    pub workspace: String,
    /// How it is watched (`fanotify`).
    pub mechanism: &'static str,
    /// The commit the end-of-job comparison uses, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// `file` records written (stop only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorded: Option<u64>,
    /// Changes under ignored paths (`.gitignore`, `file-monitoring.ignore`, git's own
    /// `.git/` internals), counted but not recorded (stop only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignored: Option<u64>,
    /// Anomalies among the `file` records (stop only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anomalies: Option<u64>,
    /// Events the kernel could not queue (stop only; absent when none were lost).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lost_events: Option<u64>,
}

/// Where Warden's resolver listens and where it forwards.
#[derive(Debug, Clone, Serialize)]
pub struct DnsLayer {
    /// The resolver's address (127.0.0.1 and [::1] on this port).
    pub resolver: String,
    /// The upstream servers, in order.
    pub upstreams: Vec<String>,
}

/// Now, RFC 3339 UTC with millisecond precision.
pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    now.format(&fmt)
        .unwrap_or_else(|_| now.unix_timestamp().to_string())
}

#[cfg(test)]
mod job_tests {
    use super::Job;

    #[test]
    fn a_job_only_on_a_runner() {
        assert_eq!(Job::from_env(|_| None), None);
        let job = Job::from_env(|k| match k {
            "GITHUB_REPOSITORY" => Some("org/app".into()),
            "GITHUB_JOB" => Some("test".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(
            (
                job.repository.as_str(),
                job.job.as_str(),
                job.workflow.as_str()
            ),
            ("org/app", "test", "")
        );
    }
}
