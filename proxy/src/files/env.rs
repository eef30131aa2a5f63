//! The real world behind [`Env`]: the process table and `/proc` for writers, the file system
//! for hashes and modes, git for blobs and `.gitignore`.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::Arc,
};

use crate::{audit::Process, process::ProcessTracker};

use super::{
    git::{self, CheckIgnore},
    resolve::Roots,
    track::Env,
};

/// Files larger than this are not hashed (the record says so by leaving the hash out).
const MAX_HASH: u64 = 256 << 20;

/// The real world behind [`Env`].
pub struct RealEnv {
    pub(super) roots: Roots,
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
    pub(super) fn reset_ignores(&mut self) {
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

/// The cgroup v2 path of `cgroup` relative to the mount, as `/proc/PID/cgroup` shows it.
pub fn cgroup_relative(cgroup: &Path) -> Option<String> {
    let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
    let mount = crate::cgroup::find_cgroup2_mount(&mounts)?;
    let rel = cgroup.strip_prefix(&mount).ok()?;
    Some(format!("/{}", rel.display()).replace("//", "/"))
}
