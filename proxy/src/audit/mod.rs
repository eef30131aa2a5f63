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
    Anomaly, Bytes, Decision, Dns, DnsLayer, Dst, Enforcement, FileChange, FilesInfo, Http, Kind,
    Process, Record, SCHEMA_VERSION, Tls, now_rfc3339,
};

use crate::summary::Summary;

/// The audit log file plus the running summary of what went into it.
pub struct AuditLog {
    path: PathBuf,
    file: Mutex<File>,
    summary: Mutex<Summary>,
    failed: std::sync::atomic::AtomicU64,
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
        })
    }

    /// Where the log is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes one record as one line. A failed write is counted ([`AuditLog::failed_writes`])
    /// and logged; `warden run` then fails even if the command succeeded.
    pub fn write(&self, record: &Record) {
        let mut line = match serde_json::to_vec(record) {
            Ok(line) => line,
            Err(e) => {
                tracing::error!(error = %e, "cannot serialise audit record");
                self.failed
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return;
            }
        };
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
