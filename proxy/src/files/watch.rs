//! The watcher thread: reads the fanotify queue, resolves paths, feeds the [`Tracker`] and
//! writes its records; at stop it drains the queue, writes pending changes and runs the
//! end-of-job comparison.

use std::{
    collections::{HashMap, HashSet},
    os::fd::OwnedFd,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use crate::{
    audit::{AuditLog, Process},
    process::ProcessTracker,
};

use super::{
    detect,
    event::{self, Event, InfoKind},
    git::{self, Baseline, CheckIgnore},
    resolve::{Resolver, Roots},
    sys,
    track::{Counts, Env, Tracker},
};

/// Files larger than this are not hashed (the record says so by leaving the hash out).
const MAX_HASH: u64 = 256 << 20;
/// Ignore marks pin their directories' inodes: at most this many.
const MAX_IGNORE_MARKS: usize = 20_000;
/// How long a wait for events lasts (stop wakes it at once through the wake pipe).
const POLL: Duration = Duration::from_secs(1);

/// What the thread reports when it ends.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Counters.
    pub counts: Counts,
    /// The commit compared with, if any.
    pub commit: Option<String>,
    /// Queue overflows seen.
    pub lost: u64,
}

/// The real world behind [`Env`].
pub struct RealEnv {
    roots: Roots,
    processes: Option<Arc<ProcessTracker>>,
    /// The job cgroup, relative to the cgroup v2 mount (`/warden-run-…`).
    job_cgroup: Option<String>,
    check: Option<CheckIgnore>,
    ignore_cache: HashMap<String, bool>,
    blob_cache: HashMap<String, Option<String>>,
}

impl RealEnv {
    /// The environment for `roots`.
    pub fn new(
        roots: Roots,
        processes: Option<Arc<ProcessTracker>>,
        job_cgroup: Option<String>,
    ) -> RealEnv {
        RealEnv {
            roots,
            processes,
            job_cgroup,
            check: None,
            ignore_cache: HashMap::new(),
            blob_cache: HashMap::new(),
        }
    }

    fn abs(&self, key: &str) -> PathBuf {
        if key.starts_with('/') {
            PathBuf::from(key)
        } else {
            self.roots.workspace.join(key)
        }
    }

    /// `.gitignore` rules changed (or the repository appeared): ask git afresh.
    fn reset_ignores(&mut self) {
        self.check = None;
        self.ignore_cache.clear();
    }

    fn ask_git(&mut self, path: &str) -> bool {
        if let Some(&known) = self.ignore_cache.get(path) {
            return known;
        }
        if self.check.is_none() {
            self.check = CheckIgnore::start(&self.roots.workspace);
        }
        let answer = match self.check.as_mut().map(|c| c.ignored(path)) {
            Some(Some(a)) => a,
            Some(None) => {
                self.check = None;
                false
            }
            None => return false,
        };
        self.ignore_cache.insert(path.to_string(), answer);
        answer
    }

    fn in_job_cgroup(&self, pid: u32) -> bool {
        let Some(job) = &self.job_cgroup else {
            return false;
        };
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/cgroup")) else {
            return false;
        };
        text.lines()
            .filter_map(|l| l.strip_prefix("0::"))
            .any(|cg| cg == job || cg.starts_with(&format!("{job}/")))
    }
}

impl Env for RealEnv {
    fn process(&mut self, pid: u32) -> (Process, bool) {
        // The thread name stays readable while the process is a zombie, unlike its exe: the
        // fallback name for a process the tracepoints never saw and that is already gone.
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .map_or_else(|_| "unknown".to_string(), |c| c.trim_end().to_string());
        if let Some(p) = self
            .processes
            .as_ref()
            .and_then(|t| t.lookup_seen(pid, &comm))
        {
            return (p, true);
        }
        let in_job = self.in_job_cgroup(pid);
        let p = match &self.processes {
            Some(t) => t.lookup(pid, &comm),
            None => Process {
                pid,
                exe: std::fs::read_link(format!("/proc/{pid}/exe"))
                    .map_or_else(|_| format!("[{comm}]"), |p| p.display().to_string()),
                ..Process::default()
            },
        };
        (p, in_job)
    }

    fn sha256(&mut self, key: &str) -> Option<String> {
        let path = self.abs(key);
        let meta = std::fs::metadata(&path).ok()?;
        if !meta.is_file() || meta.len() > MAX_HASH {
            return None;
        }
        Some(hex(&std::fs::read(&path).ok()?))
    }

    fn mode(&mut self, key: &str) -> Option<u32> {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::symlink_metadata(self.abs(key)).ok()?;
        Some(meta.permissions().mode() & 0o7777)
    }

    fn blob_sha256(&mut self, id: &str) -> Option<String> {
        if let Some(h) = self.blob_cache.get(id) {
            return h.clone();
        }
        let h = git::blob(&self.roots.workspace, id).map(|b| hex(&b));
        self.blob_cache.insert(id.to_string(), h.clone());
        h
    }

    fn git_ignored(&mut self, rel: &str) -> bool {
        // Leading directories first: everything below an ignored one is ignored, and asking
        // once per directory keeps a build's output tree to a few round trips.
        let mut at = 0;
        while let Some(i) = rel[at..].find('/') {
            let dir = &rel[..=at + i];
            if self.ask_git(dir) {
                return true;
            }
            at += i + 1;
        }
        self.ask_git(rel)
    }
}

/// SHA-256 of `data`, lowercase hex.
pub fn hex(data: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, data);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Everything the thread owns.
pub struct Watcher {
    /// The fanotify group.
    pub group: OwnedFd,
    /// Readable once the watcher must stop (the read end of a pipe [`super::Monitor`] writes).
    pub wake: OwnedFd,
    /// Paths.
    pub resolver: Resolver,
    /// The rules and state.
    pub tracker: Tracker,
    /// Processes, hashing, git.
    pub env: RealEnv,
    /// Where records go.
    pub log: Arc<AuditLog>,
    /// Warden's own pid: its writes are not the job's.
    pub own_pid: u32,
    /// Ignored directories (relative) whose events the kernel drops at the source.
    pub ignore_marks: HashSet<String>,
    /// The kernel refused ignore marks (before 6.0): every event comes to Warden.
    pub ignore_marks_failed: bool,
}

impl Watcher {
    /// Runs until `stop`, then drains and finishes (unless `abandon`: Warden failed to start).
    pub fn run(mut self, stop: &AtomicBool, abandon: &AtomicBool) -> Outcome {
        let mut buf = vec![0u8; 256 * 1024];
        let mut lost = 0;
        loop {
            if abandon.load(Ordering::Acquire) {
                return Outcome::default();
            }
            let stopping = stop.load(Ordering::Acquire);
            let n = if stopping {
                sys::read_now(&self.group, &mut buf)
            } else {
                sys::read(&self.group, &self.wake, &mut buf, POLL)
            };
            match n {
                Ok(0) if stopping => break,
                Ok(0) => {}
                Ok(n) => {
                    for ev in event::parse(&buf[..n]) {
                        if ev.has(libc::FAN_Q_OVERFLOW) {
                            lost += 1;
                            tracing::error!("file events were lost (fanotify queue overflow)");
                            continue;
                        }
                        self.handle(&ev);
                    }
                    self.write_out();
                }
                Err(e) => {
                    tracing::error!(error = %e, "reading file events failed; file monitoring stops");
                    break;
                }
            }
        }
        self.finish(lost)
    }

    fn write_out(&mut self) {
        for r in self.tracker.out.drain(..) {
            self.log.write(&r);
        }
    }

    fn handle(&mut self, ev: &Event) {
        if ev.pid == self.own_pid || ev.pid == 0 {
            return;
        }
        let dir = ev.has(libc::FAN_ONDIR);
        if ev.has(libc::FAN_RENAME) {
            return self.rename(ev, dir);
        }
        let Some(path) = self.resolver.path(ev, InfoKind::Dir) else {
            tracing::trace!(mask = ev.mask, pid = ev.pid, infos = ?ev.infos, "file event without a path");
            return;
        };
        tracing::trace!(mask = ev.mask, pid = ev.pid, path = %path.display(), "file event");
        if dir {
            if ev.has(libc::FAN_DELETE) {
                self.resolver.dir_deleted(&path);
            }
            return;
        }
        let Some(key) = self.env.roots.key(&path) else {
            return;
        };
        self.git_housekeeping(&key);
        if self.in_ignored_dir(&key) {
            if ev.mask & (libc::FAN_CREATE | libc::FAN_CLOSE_WRITE | libc::FAN_DELETE) != 0 {
                self.tracker.counts.ignored += 1;
            }
            return;
        }
        let (t, env, pid) = (&mut self.tracker, &mut self.env, ev.pid);
        if ev.has(libc::FAN_CREATE) {
            t.create(env, &key, pid);
        }
        if ev.has(libc::FAN_MODIFY) {
            t.modify(env, &key, pid);
        }
        if ev.has(libc::FAN_ATTRIB) {
            t.attrib(env, &key, pid);
        }
        if ev.has(libc::FAN_CLOSE_WRITE) {
            t.close_write(env, &key);
        }
        if ev.has(libc::FAN_DELETE) {
            t.delete(env, &key, pid);
        }
    }

    fn rename(&mut self, ev: &Event, dir: bool) {
        let old = self.resolver.path(ev, InfoKind::Old);
        let new = self.resolver.path(ev, InfoKind::New);
        if dir && let (Some(o), Some(n)) = (&old, &new) {
            self.resolver.dir_renamed(o, n);
        }
        let from = old.as_deref().and_then(|p| self.env.roots.key(p));
        let to = new.as_deref().and_then(|p| self.env.roots.key(p));
        for k in [&from, &to].into_iter().flatten() {
            self.git_housekeeping(k);
        }
        let (t, env, pid) = (&mut self.tracker, &mut self.env, ev.pid);
        match (from, to) {
            (Some(f), Some(to)) => t.rename(env, &f, &to, pid),
            (Some(f), None) => t.delete(env, &f, pid),
            (None, Some(to)) if !dir => {
                t.create(env, &to, pid);
                t.close_write(env, &to);
            }
            _ => {}
        }
    }

    /// Is `key` in a directory ignored as a whole (policy glob, `.gitignore`, git's object
    /// store)? Such a directory gets an ignore mark, so its later events never come.
    fn in_ignored_dir(&mut self, key: &str) -> bool {
        let Some((dir, _)) = key.rsplit_once('/') else {
            return false;
        };
        if key.starts_with('/') {
            return false;
        }
        if self.ignore_marks.contains(dir) {
            return true;
        }
        if !self.dir_ignorable(dir) {
            return false;
        }
        if !self.ignore_marks_failed && self.ignore_marks.len() < MAX_IGNORE_MARKS {
            match sys::ignore_dir(&self.group, &self.env.roots.workspace.join(dir), true) {
                Ok(()) => {
                    self.ignore_marks.insert(dir.to_string());
                }
                Err(e) => {
                    tracing::debug!(error = %e, dir, "no ignore mark; filtering in Warden");
                    self.ignore_marks_failed = e.raw_os_error() == Some(libc::EINVAL);
                }
            }
        }
        true
    }

    fn dir_ignorable(&mut self, dir: &str) -> bool {
        // `.git` itself holds the index and config Warden watches; hooks run code.
        if dir == ".git"
            || dir == ".git/info"
            || dir == ".git/hooks"
            || dir.starts_with(".git/hooks/")
        {
            return false;
        }
        if dir.starts_with(".git/") {
            return true;
        }
        if self
            .tracker
            .baseline
            .as_ref()
            .is_some_and(|b| b.dirs.contains(dir))
        {
            return false;
        }
        if self.tracker.rules.ignore.iter().any(|g| g.matches_dir(dir)) {
            return true;
        }
        self.env.git_ignored(&format!("{dir}/"))
    }

    /// Ignore decisions changed: every ignore mark goes, and is made again as events come.
    fn reset_ignore_marks(&mut self) {
        for dir in self.ignore_marks.drain() {
            let _ = sys::ignore_dir(&self.group, &self.env.roots.workspace.join(&dir), false);
        }
        self.env.reset_ignores();
    }

    /// A changed `.gitignore` or index: ask git again; the first index is the baseline.
    fn git_housekeeping(&mut self, key: &str) {
        if key.ends_with(".gitignore") || key == ".git/info/exclude" {
            self.reset_ignore_marks();
        }
        let no_commit = self
            .tracker
            .baseline
            .as_ref()
            .is_none_or(|b| b.commit.is_none());
        if key == ".git/index"
            && no_commit
            && let Some(b) = Baseline::read(&self.env.roots.workspace)
        {
            self.tracker.baseline = Some(b);
            self.reset_ignore_marks();
        }
    }

    fn finish(mut self, lost: u64) -> Outcome {
        self.tracker.flush_all(&mut self.env);
        let ws = self.env.roots.workspace.clone();
        let commit = match self
            .tracker
            .baseline
            .as_ref()
            .and_then(|b| b.commit.clone())
        {
            Some(c) => Some(c),
            // Warden started before the checkout and saw no index write: take it now.
            None => {
                self.tracker.baseline = Baseline::read(&ws);
                self.tracker
                    .baseline
                    .as_ref()
                    .and_then(|b| b.commit.clone())
            }
        };
        if let Some(c) = &commit {
            let differing = git::differs(&ws, c);
            detect::end(&mut self.tracker, &mut self.env, c, differing);
        }
        self.write_out();
        Outcome {
            counts: self.tracker.counts,
            commit,
            lost,
        }
    }
}

/// The cgroup v2 path of `cgroup` relative to the mount, as `/proc/PID/cgroup` shows it.
pub fn cgroup_relative(cgroup: &Path) -> Option<String> {
    let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
    let mount = crate::cgroup::find_cgroup2_mount(&mounts)?;
    let rel = cgroup.strip_prefix(&mount).ok()?;
    Some(format!("/{}", rel.display()).replace("//", "/"))
}
