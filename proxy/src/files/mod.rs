//! Source-tamper detection: which process changed which file in the workspace, and whether that
//! should worry anyone (issue #10, `docs/file-monitoring.md`).
//!
//! A build that rewrites a source file after the checkout can slip a backdoor into what it
//! builds without any network traffic, so Warden watches the workspace for the whole job.
//! fanotify with a filesystem mark (`FAN_REPORT_DFID_NAME_TARGET`, `FAN_RENAME`) reports every
//! create, delete, rename, content and metadata change on the workspace's filesystem with the pid
//! of the process that made it, without BPF LSM (which runner kernels do not enable) and at no
//! cost at start: marking is one syscall, whatever the size of the tree. Events are filtered to
//! the workspace (and Warden's own files) here, attributed through the [`ProcessTracker`] (which
//! remembers exited processes, so a `sed -i` that is gone still has a name), folded into one
//! `file` record per change ([`track`]) and judged ([`detect`]). At stop the queue is drained,
//! and the tracked files that differ from the checked-out commit are reported with their last
//! writer, so a write just before `warden stop` is never lost.
//!
//! [`Monitor::start`] runs before the job's first command (so it sees the checkout too);
//! [`Monitor::finish`] returns what goes into the `stop` record.

pub mod detect;
mod env;
mod event;
pub mod git;
pub mod glob;
mod resolve;
mod sys;
mod track;
mod watch;

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
};

pub use detect::{ExpectedWriter, Rules};
pub use glob::Glob;

use crate::{
    audit::{AuditLog, FilesInfo},
    process::ProcessTracker,
};

/// What to watch.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The workspace (`--workspace`).
    pub workspace: PathBuf,
    /// Policy `file-monitoring`: ignored paths, expected writers.
    pub rules: Rules,
}

/// Errors starting file monitoring: Warden's own (the workspace is checked before).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The workspace is not a directory Warden can read.
    #[error("workspace {path}: {source}")]
    Workspace {
        /// As given.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// fanotify is unavailable or refused the mark.
    #[error("file monitoring (fanotify, Linux 5.17+, root): {what}: {source}")]
    Fanotify {
        /// What was being done.
        what: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Checks `--workspace`: an existing directory. Returns it absolute and canonical.
pub fn check_workspace(path: &Path) -> Result<PathBuf, Error> {
    let err = |source| Error::Workspace {
        path: path.to_path_buf(),
        source,
    };
    let canonical = std::fs::canonicalize(path).map_err(err)?;
    if !canonical.is_dir() {
        return Err(err(std::io::Error::new(
            std::io::ErrorKind::NotADirectory,
            "not a directory",
        )));
    }
    Ok(canonical)
}

/// File monitoring, running.
pub struct Monitor {
    stop: Arc<AtomicBool>,
    /// Written to wake the watcher's wait when it must stop.
    wake: Option<std::os::fd::OwnedFd>,
    /// Dropped without [`Monitor::finish`] (a failed start): the thread ends without the
    /// end-of-job comparison.
    abandon: Arc<AtomicBool>,
    thread: Option<JoinHandle<watch::Outcome>>,
    info: FilesInfo,
}

impl Monitor {
    /// Starts watching `opts.workspace` and `warden_files` (Warden's state, trust store and
    /// audit log, which only Warden may change), writing records to `log`. `job_cgroup` tells
    /// the job's processes from others.
    pub fn start(
        opts: &Options,
        warden_files: Vec<PathBuf>,
        log: Arc<AuditLog>,
        processes: Option<Arc<ProcessTracker>>,
        job_cgroup: Option<&Path>,
    ) -> Result<Monitor, Error> {
        let workspace = check_workspace(&opts.workspace)?;
        let fan = |what| move |source| Error::Fanotify { what, source };
        let group = sys::init().map_err(fan("fanotify_init"))?;
        // The binary too: replacing it mid-job would subvert `warden stop` and the report.
        let own_exe = std::env::current_exe().ok();
        let candidates: Vec<PathBuf> = warden_files
            .iter()
            .chain(own_exe.as_ref())
            .filter_map(|p| std::fs::canonicalize(p).ok())
            .collect();
        sys::mark_filesystem(&group, &workspace).map_err(fan("mark the filesystem"))?;
        let (mut dirs, warden) = guard(&group, candidates);
        dirs.insert(0, workspace.clone());
        let dir_refs: Vec<&Path> = dirs.iter().map(PathBuf::as_path).collect();
        let resolver = resolve::Resolver::new(&dir_refs).map_err(fan("open the filesystem"))?;
        // The index as checked out, if the checkout already ran: not a hash of every file.
        let baseline = git::Baseline::read(&workspace);
        let info = FilesInfo {
            workspace: workspace.display().to_string(),
            mechanism: "fanotify",
            commit: baseline.as_ref().and_then(|b| b.commit.clone()),
            ..FilesInfo::default()
        };
        let roots = resolve::Roots { workspace, warden };
        let env = env::RealEnv::new(roots, processes, job_cgroup.and_then(env::cgroup_relative));
        let mut tracker = track::Tracker::new(baseline, opts.rules.clone());
        tracker.own_exe = own_exe.map(|p| p.display().to_string());
        let (wake_rx, wake) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| Error::Fanotify {
                what: "make the wake pipe",
                source: e.into(),
            })?;
        let watcher = watch::Watcher {
            group,
            wake: wake_rx,
            resolver,
            tracker,
            env,
            log,
            own_pid: std::process::id(),
            ignore_marks: std::collections::HashSet::new(),
            ignore_marks_failed: false,
        };
        let stop = Arc::new(AtomicBool::new(false));
        let abandon = Arc::new(AtomicBool::new(false));
        let (thread_stop, thread_abandon) = (stop.clone(), abandon.clone());
        let thread = std::thread::Builder::new()
            .name("warden-files".into())
            .spawn(move || watcher.run(&thread_stop, &thread_abandon))
            .map_err(fan("start the watcher thread"))?;
        Ok(Monitor {
            stop,
            wake: Some(wake),
            abandon,
            thread: Some(thread),
            info,
        })
    }

    /// What the `start` record says.
    pub fn info(&self) -> &FilesInfo {
        &self.info
    }

    /// Drains the queue, writes pending changes and the end-of-job comparison, and returns what
    /// the `stop` record says. Blocks (git runs here): call it off the async workers.
    pub fn finish(mut self) -> FilesInfo {
        self.stop.store(true, Ordering::Release);
        // Closing the write end makes the read end readable (EOF): the wait ends now.
        drop(self.wake.take());
        let outcome = self
            .thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default();
        FilesInfo {
            commit: outcome.commit.or(self.info.commit.clone()),
            recorded: Some(outcome.counts.recorded),
            ignored: Some(outcome.counts.ignored),
            anomalies: Some(outcome.counts.anomalies),
            lost_events: (outcome.lost > 0).then_some(outcome.lost),
            ..self.info.clone()
        }
    }
}

/// Marks the filesystems of Warden's own files `paths`, where their filesystem allows it
/// (tmpfs reports no filesystem id before Linux 6.7, so fanotify cannot mark it; the workspace
/// matters most and is marked first). Returns the directories marked and the paths guarded.
fn guard(group: &std::os::fd::OwnedFd, paths: Vec<PathBuf>) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let (mut dirs, mut guarded) = (Vec::new(), Vec::new());
    for p in paths {
        let dir = if p.is_dir() {
            p.clone()
        } else {
            p.parent().unwrap_or(&p).to_path_buf()
        };
        match sys::mark_filesystem(group, &dir).and_then(|()| sys::fsid(&dir)) {
            Ok(_) => {
                dirs.push(dir);
                guarded.push(p);
            }
            Err(e) => {
                tracing::warn!(path = %p.display(), error = %e, "cannot guard this file");
                eprintln!("warden: file monitoring cannot guard {}: {e}", p.display());
            }
        }
    }
    (dirs, guarded)
}

impl Drop for Monitor {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.abandon.store(true, Ordering::Release);
            self.stop.store(true, Ordering::Release);
            drop(self.wake.take());
        }
    }
}

#[cfg(test)]
mod tests;
