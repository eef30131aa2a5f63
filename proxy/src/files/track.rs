//! From resolved changes to `file` records and detections.
//!
//! The kernel reports many small events per change (a create, several modifies, a close); the
//! tracker folds them into one record per change: a file's pending change opens with its first
//! create or modify and is written at its close-write (hashed then), or when another process
//! starts writing it, it is deleted or renamed, or monitoring stops. The tracker remembers, per
//! path, the last process that wrote it and the last content hash it saw, which is what the
//! `overwritten-by-other-process` rule and the end-of-job attribution need. Everything outside
//! the kernel (processes, hashing, git) comes through [`Env`], so the rules are tested without
//! one. Paths are workspace-relative; a key starting with `/` is one of Warden's own files.

use std::collections::HashMap;

use crate::audit::{FileChange, Kind, Process, Record};

use super::{detect, git::Baseline};

/// What the tracker needs from the world.
pub trait Env {
    /// The process `pid` and whether it belongs to the job.
    fn process(&mut self, pid: u32) -> (Process, bool);
    /// SHA-256 (hex) of the file at `key` now; `None` if unreadable or too large.
    fn sha256(&mut self, key: &str) -> Option<String>;
    /// Permission bits of the file at `key` now.
    fn mode(&mut self, key: &str) -> Option<u32>;
    /// SHA-256 (hex) of git blob `id`.
    fn blob_sha256(&mut self, id: &str) -> Option<String>;
    /// Does `.gitignore` (or `.git/info/exclude`) exclude `rel`?
    fn git_ignored(&mut self, rel: &str) -> bool;
}

/// The process that last wrote a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Writer {
    /// Its pid.
    pub pid: u32,
    /// As records name it.
    pub process: Process,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PendingOp {
    Create,
    Write,
}

#[derive(Debug, Default)]
struct FileState {
    /// A change begun and not yet written: (op, pid).
    pending: Option<(PendingOp, u32)>,
    last_writer: Option<Writer>,
    /// Content hash after the last change seen.
    sha256: Option<String>,
    /// Permission bits after the last change seen.
    mode: Option<u32>,
    /// A live `source-modified` was raised for it (once per file; the end comparison still
    /// gives its own, the canonical evidence).
    flagged: bool,
}

/// Counters for the `stop` record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// `file` records written.
    pub recorded: u64,
    /// Changes under ignored paths.
    pub ignored: u64,
    /// Anomalies raised.
    pub anomalies: u64,
}

/// The per-path state and the rules; see the module documentation.
pub struct Tracker {
    files: HashMap<String, FileState>,
    /// The index and commit the job started from (`None` until the workspace is a repository).
    pub baseline: Option<Baseline>,
    /// Policy globs and expected writers.
    pub rules: detect::Rules,
    /// Records ready to be written.
    pub out: Vec<Record>,
    /// What was seen.
    pub counts: Counts,
    /// Warden's own executable: another Warden session (its trust-store install and restore)
    /// is not tampering.
    pub own_exe: Option<String>,
}

impl Tracker {
    /// A tracker with nothing seen yet.
    pub fn new(baseline: Option<Baseline>, rules: detect::Rules) -> Tracker {
        Tracker {
            files: HashMap::new(),
            baseline,
            rules,
            out: Vec::new(),
            counts: Counts::default(),
            own_exe: None,
        }
    }

    /// `pid` created `key`.
    pub fn create(&mut self, env: &mut dyn Env, key: &str, pid: u32) {
        self.flush(env, key, false);
        self.files.entry(key.into()).or_default().pending = Some((PendingOp::Create, pid));
    }

    /// `pid` changed the content of `key`.
    pub fn modify(&mut self, env: &mut dyn Env, key: &str, pid: u32) {
        match self.files.get(key).and_then(|s| s.pending) {
            Some((_, p)) if p == pid => {}
            Some(_) => {
                self.flush(env, key, true);
                self.files.entry(key.into()).or_default().pending = Some((PendingOp::Write, pid));
            }
            None => {
                self.files.entry(key.into()).or_default().pending = Some((PendingOp::Write, pid));
            }
        }
    }

    /// A writer closed `key`: its pending change (if any) is written, with the hash of now.
    pub fn close_write(&mut self, env: &mut dyn Env, key: &str) {
        self.flush(env, key, true);
    }

    /// Writes the pending change of `key`, if any; `hash` reads the content now.
    fn flush(&mut self, env: &mut dyn Env, key: &str, hash: bool) {
        let Some((op, pid)) = self.files.get_mut(key).and_then(|s| s.pending.take()) else {
            return;
        };
        if self.ignored(env, key) {
            self.counts.ignored += 1;
            return;
        }
        let before = match op {
            PendingOp::Create => None,
            PendingOp::Write => self.known_sha(env, key),
        };
        let after = if hash { env.sha256(key) } else { None };
        let mode = env.mode(key);
        let op = match op {
            PendingOp::Create => "create",
            PendingOp::Write => "write",
        };
        let change = FileChange {
            path: key.into(),
            op,
            sha256_before: before,
            sha256_after: after.clone(),
            ..FileChange::default()
        };
        self.emit(env, change, pid, true);
        self.source_modified_now(env, key, after.as_deref());
        let state = self.files.entry(key.into()).or_default();
        state.sha256 = after;
        state.mode = mode.or(state.mode);
    }

    /// A tracked file written with content other than the checked-out commit's: flagged on the
    /// record just written, at once (a daemon that never stops — the action with
    /// `disable-sudo` — must still report it), once per file.
    fn source_modified_now(&mut self, env: &mut dyn Env, key: &str, after: Option<&str>) {
        let Some(after) = after else {
            return;
        };
        let commit = self.baseline.as_ref().and_then(|b| b.commit.clone());
        let (Some(commit), Some(blob)) = (commit, self.tracked(key).map(|t| t.blob.clone())) else {
            return;
        };
        if self.files.get(key).is_some_and(|s| s.flagged) {
            return;
        }
        if env.blob_sha256(&blob).as_deref() == Some(after) {
            return;
        }
        let Some(record) = self.out.last_mut() else {
            return;
        };
        let expected = record
            .process
            .as_ref()
            .is_some_and(|p| self.rules.expected(p, key));
        if expected {
            return;
        }
        let short: String = commit.chars().take(12).collect();
        let by = record
            .process
            .as_ref()
            .map_or_else(|| "an unknown process".to_string(), |p| p.exe.clone());
        record.anomaly(
            detect::SOURCE_MODIFIED,
            format!("{key} now differs from commit {short}: written by {by}"),
        );
        self.counts.anomalies += 1;
        self.files.entry(key.into()).or_default().flagged = true;
    }

    /// `pid` deleted `key`.
    pub fn delete(&mut self, env: &mut dyn Env, key: &str, pid: u32) {
        self.flush(env, key, false);
        if self.ignored(env, key) {
            self.counts.ignored += 1;
            return;
        }
        let change = FileChange {
            path: key.into(),
            op: "delete",
            sha256_before: self.known_sha(env, key),
            ..FileChange::default()
        };
        self.emit(env, change, pid, false);
        if let Some(s) = self.files.get_mut(key) {
            s.sha256 = None;
        }
    }

    /// `pid` renamed `from` to `to` (replacing `to` if it existed).
    pub fn rename(&mut self, env: &mut dyn Env, from: &str, to: &str, pid: u32) {
        self.flush(env, from, true);
        self.flush(env, to, false);
        let moved = self.files.remove(from).unwrap_or_default();
        let after = moved.sha256.clone().or_else(|| env.sha256(to));
        if self.ignored(env, to) && self.ignored(env, from) {
            self.counts.ignored += 1;
        } else {
            let change = FileChange {
                path: to.into(),
                op: "rename",
                from: Some(from.into()),
                sha256_before: self.known_sha(env, to),
                sha256_after: after.clone(),
                ..FileChange::default()
            };
            self.emit(env, change, pid, true);
        }
        let state = self.files.entry(to.into()).or_default();
        state.sha256 = after;
        state.mode = moved.mode.or_else(|| env.mode(to));
    }

    /// The metadata of `key` changed: a `chmod` record if its permission bits did.
    pub fn attrib(&mut self, env: &mut dyn Env, key: &str, pid: u32) {
        let Some(now) = env.mode(key) else { return };
        let known = self.files.get(key).and_then(|s| s.mode);
        let tracked = self
            .tracked(key)
            .map(|t| if t.mode & 0o111 != 0 { 0o755 } else { 0o644 });
        let changed = match (known, tracked) {
            (Some(m), _) => m != now,
            // Only the executable bit is in git.
            (None, Some(t)) => (t & 0o111 != 0) != (now & 0o111 != 0),
            (None, None) => false,
        };
        self.files.entry(key.into()).or_default().mode = Some(now);
        if !changed {
            return;
        }
        if self.ignored(env, key) {
            self.counts.ignored += 1;
            return;
        }
        let change = FileChange {
            path: key.into(),
            op: "chmod",
            mode_before: known.or(tracked).map(|m| format!("{m:04o}")),
            mode_after: Some(format!("{now:04o}")),
            ..FileChange::default()
        };
        self.emit(env, change, pid, false);
    }

    /// `key` is there but no event about it was seen (its directory was ignored, then moved out
    /// by `pid`): a `create` attributed to the move, saying so. Known paths are left alone.
    pub fn found(&mut self, env: &mut dyn Env, key: &str, pid: u32) {
        if self.files.contains_key(key) || self.ignored(env, key) {
            return;
        }
        let after = env.sha256(key);
        let change = FileChange {
            path: key.into(),
            op: "create",
            sha256_after: after.clone(),
            ..FileChange::default()
        };
        self.emit(env, change, pid, true);
        if let Some(r) = self.out.last_mut() {
            r.reason = Some(
                "found in a directory moved out of an ignored one; its writer is not known".into(),
            );
        }
        let state = self.files.entry(key.into()).or_default();
        state.sha256 = after;
    }

    /// Writes every pending change (hashing now): monitoring is stopping.
    pub fn flush_all(&mut self, env: &mut dyn Env) {
        let keys: Vec<String> = self
            .files
            .iter()
            .filter(|(_, s)| s.pending.is_some())
            .map(|(k, _)| k.clone())
            .collect();
        for key in keys {
            self.flush(env, &key, true);
        }
    }

    /// The last process seen writing `key`.
    pub fn last_writer(&self, key: &str) -> Option<&Writer> {
        self.files.get(key).and_then(|s| s.last_writer.as_ref())
    }

    pub(super) fn tracked(&self, key: &str) -> Option<&super::git::Tracked> {
        self.baseline.as_ref().and_then(|b| b.files.get(key))
    }

    /// The content hash of `key` before a change: the last one seen, else its blob's.
    pub(super) fn known_sha(&mut self, env: &mut dyn Env, key: &str) -> Option<String> {
        if let Some(h) = self.files.get(key).and_then(|s| s.sha256.clone()) {
            return Some(h);
        }
        let blob = self.tracked(key)?.blob.clone();
        env.blob_sha256(&blob)
    }

    /// Not recorded, only counted: policy globs, `.gitignore` (tracked files never are), and
    /// git's own internals (but hooks and config, which decide what code git runs).
    pub(super) fn ignored(&mut self, env: &mut dyn Env, key: &str) -> bool {
        if key.starts_with('/') {
            return false;
        }
        if let Some(inner) = key.strip_prefix(".git/") {
            // Hooks git never runs (`*.sample`, which `git init` writes) are not code.
            let hook = inner.starts_with("hooks/") && !inner.ends_with(".sample");
            return !(inner == "config" || hook);
        }
        if super::glob::any_match(&self.rules.ignore, key) {
            return true;
        }
        self.tracked(key).is_none() && env.git_ignored(key)
    }

    /// Builds the record for `change` by `pid` with its detections and queues it; `writes`
    /// says the change replaced the content (so `pid` is now its last writer).
    fn emit(&mut self, env: &mut dyn Env, change: FileChange, pid: u32, writes: bool) {
        let (process, in_job) = env.process(pid);
        if change.path.starts_with('/') && self.own_exe.as_ref() == Some(&process.exe) {
            return;
        }
        let mut record = Record::new(Kind::File);
        let key = change.path.clone();
        let previous = self.last_writer(&key).cloned();
        detect::live(self, &mut record, &change, pid, &process, previous.as_ref());
        if !in_job {
            record.flags.push("outside-job".into());
        }
        record.process = Some(process.clone());
        record.file = Some(change);
        self.push(record);
        if writes {
            self.files.entry(key).or_default().last_writer = Some(Writer { pid, process });
        }
    }

    pub(super) fn push(&mut self, record: Record) {
        self.counts.recorded += 1;
        self.counts.anomalies += record.anomalies.len() as u64;
        self.out.push(record);
    }
}
