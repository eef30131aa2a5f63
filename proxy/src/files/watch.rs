//! The watcher thread: reads the fanotify queue, resolves paths, feeds the [`Tracker`] and
//! writes its records; at stop it drains the queue, writes pending changes and runs the
//! end-of-job comparison.

use std::{
    collections::HashSet,
    os::fd::OwnedFd,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use crate::audit::AuditLog;

use super::{
    detect,
    env::RealEnv,
    event::{self, Event, InfoKind},
    git::{self, Baseline},
    resolve::Resolver,
    sys,
    track::{Counts, Env, Tracker},
};

/// Ignore marks pin their directories' inodes: at most this many.
const MAX_IGNORE_MARKS: usize = 20_000;
/// Files recorded as found in a directory moved out of an ignored tree, at most.
const MAX_FOUND: usize = 10_000;
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
        if dir && let (Some(f), Some(n)) = (&from, &new) {
            self.unmark_moved(f, n, ev.pid);
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

    /// A directory moved from `from` (relative) to `new` by `pid`: the ignore marks on it and
    /// below it travel with the inodes, so they are removed (the new place may not be ignored;
    /// if it is, marks come back with its next events). Until Warden handled the move, changes
    /// in the moved tree were still dropped by the kernel: what is there now and was never seen
    /// is recorded as found.
    fn unmark_moved(&mut self, from: &str, new: &Path, pid: u32) {
        let moved: Vec<String> = self
            .ignore_marks
            .iter()
            .filter(|d| d.as_str() == from || d.starts_with(&format!("{from}/")))
            .cloned()
            .collect();
        if moved.is_empty() {
            return;
        }
        for d in moved {
            let below = d[from.len()..].trim_start_matches('/');
            let _ = sys::ignore_dir(&self.group, &new.join(below), false);
            self.ignore_marks.remove(&d);
        }
        for file in files_below(new, MAX_FOUND) {
            if let Some(key) = self.env.roots.key(&file) {
                self.tracker.found(&mut self.env, &key, pid);
            }
        }
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
            let mut problems = git::evasions(&ws);
            let differing = git::differs(&ws, c).unwrap_or_else(|e| {
                problems.push(format!(
                    "the comparison with the checked-out commit failed: {e}"
                ));
                Vec::new()
            });
            detect::end(&mut self.tracker, &mut self.env, c, differing);
            detect::evaded(&mut self.tracker, c, problems);
        }
        self.write_out();
        Outcome {
            counts: self.tracker.counts,
            commit,
            lost,
        }
    }
}

/// Regular files below `dir` (not following symbolic links), at most `max`.
fn files_below(dir: &Path, max: usize) -> Vec<PathBuf> {
    let (mut stack, mut found) = (vec![dir.to_path_buf()], Vec::new());
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                Ok(t) if t.is_file() => found.push(e.path()),
                _ => {}
            }
            if found.len() >= max {
                return found;
            }
        }
    }
    found
}
