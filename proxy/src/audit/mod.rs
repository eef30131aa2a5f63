//! The audit log: one JSON line per connection (and per enforcement change), written so that a
//! kill loses nothing already closed.
//!
//! Records follow the schema in `docs/audit-log.md` (version [`SCHEMA_VERSION`]). Each record is
//! serialised into one buffer and written with a single `write(2)` on a file opened for append,
//! so concurrent connections never interleave and a record is in the kernel's hands as soon as
//! [`AuditLog::write`] returns. The same call feeds the end-of-run [`Summary`].

mod record;
pub mod redact;

use std::{
    fs::{File, OpenOptions},
    io::{self, Write},
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
    sync::Mutex,
};

pub use record::{
    Anomaly, Bytes, Decision, Dns, DnsLayer, Dst, Enforcement, FileChange, FilesInfo, Http, Job,
    Kind, Process, Record, SCHEMA_VERSION, Tls, now_rfc3339,
};

use crate::summary::Summary;

/// A copy of `record` with every spelling of a named secret in its texts replaced.
fn redact_record(record: &Record, detector: &crate::exfil::Detector) -> Record {
    let clean = |s: &mut String| {
        if let Some(r) = detector.redact(s.as_bytes()) {
            *s = String::from_utf8_lossy(&r).into_owned();
        }
    };
    let mut r = record.clone();
    if let Some(p) = r.process.as_mut() {
        clean(&mut p.exe);
        p.argv.iter_mut().for_each(clean);
        p.ancestry.iter_mut().for_each(clean);
        if let Some(step) = p.step.as_mut() {
            clean(step);
        }
    }
    if let Some(d) = r.dst.as_mut()
        && let Some(n) = d.name.as_mut()
    {
        clean(n);
    }
    if let Some(h) = r.http.as_mut() {
        clean(&mut h.url);
        if let Some(host) = h.host.as_mut() {
            clean(host);
        }
    }
    for s in r.reason.iter_mut().chain(r.rule.iter_mut()) {
        clean(s);
    }
    for a in &mut r.anomalies {
        clean(&mut a.detail);
    }
    r
}

/// Policy and DNS flags that are also anomalies (a person should look): the decision's reason
/// is their evidence.
pub const ANOMALY_FLAGS: &[&str] = &["sni-ip-mismatch", "doh", "dns-tunnel-suspected"];

/// The anomaly of a destination sent more than the upload budget.
pub const UPLOAD_BUDGET: &str = "upload-budget";

impl Protect {
    /// Counts a connection's upload; the anomaly's evidence when it crosses the budget.
    fn over_budget(&self, record: &Record) -> Option<String> {
        let budget = self.budget?;
        if record.kind != Kind::Connection {
            return None;
        }
        let up = record.bytes.as_ref()?.up;
        let dst = record.dst.as_ref()?;
        let key = dst
            .name
            .as_deref()
            .map(|n| n.trim_end_matches('.').to_ascii_lowercase())
            .unwrap_or_else(|| dst.ip.clone());
        let mut uploaded = self.uploaded.lock().unwrap_or_else(|e| e.into_inner());
        let total = uploaded.entry(key.clone()).or_default();
        let before = *total;
        *total = total.saturating_add(up);
        (before <= budget && *total > budget).then(|| {
            format!(
                "{key} has been sent {} bytes over the job's connections, more than the upload \
                 budget of {budget} bytes",
                *total
            )
        })
    }
}

/// The audit log file plus the running summary of what went into it.
pub struct AuditLog {
    path: PathBuf,
    file: Mutex<File>,
    summary: Mutex<Summary>,
    failed: std::sync::atomic::AtomicU64,
    protect: std::sync::OnceLock<Protect>,
}

/// What every record goes through before it is written: the job's secrets taken out, and the
/// upload budget counted.
struct Protect {
    detector: crate::exfil::Detector,
    budget: Option<u64>,
    /// Bytes sent so far per destination (name, or address).
    uploaded: Mutex<std::collections::HashMap<String, u64>>,
}

impl AuditLog {
    /// Opens `path` for appending (created 0600: records name hosts and commands).
    pub fn open(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)?;
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        Ok(Self {
            path,
            file: Mutex::new(file),
            summary: Mutex::new(Summary::default()),
            failed: std::sync::atomic::AtomicU64::new(0),
            protect: std::sync::OnceLock::new(),
        })
    }

    /// From now on, spellings of the job's named secrets are replaced by `***` in every
    /// record, and a destination's connections that together send more than `upload_budget`
    /// bytes get an `upload-budget` anomaly (on the connection that crosses it). Set once.
    pub fn protect(&self, exfil: &crate::policy::Exfil) {
        let _ = self.protect.set(Protect {
            detector: exfil.detector.clone(),
            budget: exfil.upload_budget,
            uploaded: Mutex::default(),
        });
    }

    /// Where the log is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes one record as one line. A failed write is counted ([`AuditLog::failed_writes`])
    /// and logged; `warden run` then fails even if the command succeeded.
    pub fn write(&self, record: &Record) {
        let over = self.protect.get().and_then(|p| p.over_budget(record));
        let mut owned;
        let record = match over {
            Some(detail) => {
                owned = record.clone();
                owned.anomaly(UPLOAD_BUDGET, detail);
                &owned
            }
            None => record,
        };
        let mut line = match serde_json::to_vec(record) {
            Ok(line) => line,
            Err(e) => {
                tracing::error!(error = %e, "cannot serialise audit record");
                self.failed
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return;
            }
        };
        let mut redacted_record = None;
        if let Some(p) = self.protect.get()
            && let Some(redacted) = p.detector.redact(&line)
        {
            line = redacted;
            // The summary (printed, and shown by reports) must not hold the secret either.
            redacted_record = Some(redact_record(record, &p.detector));
        }
        let record = redacted_record.as_ref().unwrap_or(record);
        line.push(b'\n');
        {
            let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
            if let Err(e) = file.write_all(&line) {
                tracing::error!(error = %e, path = %self.path.display(), "cannot write audit record");
                self.failed
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        self.summary
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .add(record);
    }

    /// Records that could not be written (disk full, I/O error).
    pub fn failed_writes(&self) -> u64 {
        self.failed.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A copy of the summary so far.
    pub fn summary(&self) -> Summary {
        self.summary
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}
