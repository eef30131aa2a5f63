//! The job's cgroup: found under the cgroup v2 mount, created, populated, emptied and removed.
//!
//! Warden's eBPF programs act on one cgroup, so a job is jailed by moving its first process into
//! a fresh cgroup before that process execs the command: every descendant inherits it. The mount
//! point differs between machines (`/sys/fs/cgroup` on GitHub runners, `/sys/fs/cgroup/unified`
//! on hybrid hosts), so it is read from `/proc/mounts`, never assumed.

use std::{
    fs,
    io::{self, ErrorKind},
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

/// Errors setting up or tearing down the job's cgroup. Internal: the host lacks something.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No cgroup2 filesystem is mounted.
    #[error("no cgroup v2 filesystem in /proc/mounts (Warden needs the unified hierarchy)")]
    NoCgroup2,
    /// A cgroup file operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The path given is not a cgroup on the cgroup v2 mount.
    #[error("{path} is not a cgroup under the cgroup v2 mount {root}")]
    NotACgroup {
        /// The path given.
        path: PathBuf,
        /// The cgroup v2 mount.
        root: PathBuf,
    },
    /// Processes were still in the cgroup after they were killed.
    #[error("cgroup {0} still has processes after kill")]
    NotEmpty(PathBuf),
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> Error + use<'a> {
    move |source| Error::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// This machine's cgroup v2 mount point.
fn cgroup2_root() -> Result<PathBuf, Error> {
    let mounts =
        fs::read_to_string("/proc/mounts").map_err(io_err("read", Path::new("/proc/mounts")))?;
    find_cgroup2_mount(&mounts).ok_or(Error::NoCgroup2)
}

/// Finds the cgroup v2 mount point in a `/proc/mounts` text.
pub fn find_cgroup2_mount(mounts: &str) -> Option<PathBuf> {
    mounts.lines().find_map(|line| {
        let mut fields = line.split_ascii_whitespace();
        let (_dev, dir, fstype) = (fields.next()?, fields.next()?, fields.next()?);
        (fstype == "cgroup2").then(|| PathBuf::from(unescape_mount_path(dir)))
    })
}

/// `/proc/mounts` escapes space, tab, newline and backslash as octal (`\040`).
fn unescape_mount_path(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                let v = d.iter().fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
                out.push(u8::try_from(v).unwrap_or(b'?'));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The cgroup Warden enforces on. One Warden created for a job (`warden run`) is removed, after
/// killing what is left in it, on drop; an existing one (`warden start --cgroup`) is left alone.
#[derive(Debug)]
pub struct JobCgroup {
    path: PathBuf,
    id: u64,
    removed: bool,
    owned: bool,
}

impl JobCgroup {
    /// Creates `<name>` below Warden's own cgroup, so the job keeps the resource limits and
    /// accounting of whoever started Warden (a runner service, a user session). Falls back to the
    /// cgroup v2 root when Warden's cgroup cannot have children (e.g. a systemd unit that does not
    /// delegate).
    pub fn create(name: &str) -> Result<Self, Error> {
        let root = cgroup2_root()?;
        let own = fs::read_to_string("/proc/self/cgroup")
            .ok()
            .and_then(|t| own_cgroup(&t))
            .map(|rel| root.join(rel));
        let mut last = None;
        for parent in own.iter().chain(std::iter::once(&root)) {
            let path = parent.join(name);
            match fs::create_dir(&path) {
                Ok(()) => {
                    let id = fs::metadata(&path).map_err(io_err("stat", &path))?.ino();
                    return Ok(Self {
                        path,
                        id,
                        removed: false,
                        owned: true,
                    });
                }
                Err(e) => last = Some(io_err("create cgroup", &path)(e)),
            }
        }
        Err(last.unwrap_or(Error::NoCgroup2))
    }

    /// An existing cgroup v2 directory (`None`: the v2 root, i.e. the whole machine). It must be
    /// on the cgroup v2 mount; Warden never removes it or kills its processes.
    pub fn existing(path: Option<&Path>) -> Result<Self, Error> {
        let root = cgroup2_root()?;
        let path = match path {
            Some(p) => fs::canonicalize(p).map_err(io_err("find cgroup", p))?,
            None => root.clone(),
        };
        if !path.starts_with(&root) || !path.join("cgroup.procs").exists() {
            return Err(Error::NotACgroup { path, root });
        }
        let id = fs::metadata(&path).map_err(io_err("stat", &path))?.ino();
        Ok(Self {
            path,
            id,
            removed: true,
            owned: false,
        })
    }

    /// Whether Warden created this cgroup (and so removes it).
    pub fn owned(&self) -> bool {
        self.owned
    }

    /// The cgroup directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The cgroup id the kernel reports (`bpf_get_current_cgroup_id`): the directory's inode.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The `cgroup.procs` file a process writes its pid to in order to join.
    pub fn procs_file(&self) -> PathBuf {
        self.path.join("cgroup.procs")
    }

    /// Process ids currently in the cgroup.
    pub fn pids(&self) -> Result<Vec<i32>, Error> {
        let procs = self.procs_file();
        let text = fs::read_to_string(&procs).map_err(io_err("read", &procs))?;
        Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect())
    }

    /// Kills every process in the cgroup and waits (briefly) until it is empty.
    pub fn kill_all(&self) -> Result<(), Error> {
        let kill = self.path.join("cgroup.kill");
        if let Err(e) = fs::write(&kill, "1") {
            // cgroup.kill needs Linux 5.14; older kernels get a signal per process.
            tracing::debug!(error = %e, "cgroup.kill unavailable, killing one by one");
            for pid in self.pids()? {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.pids()?.is_empty() {
            if Instant::now() > deadline {
                return Err(Error::NotEmpty(self.path.clone()));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    /// Kills what is left and removes the cgroup directory.
    pub fn remove(mut self) -> Result<(), Error> {
        self.remove_inner()
    }

    fn remove_inner(&mut self) -> Result<(), Error> {
        // One attempt only: Drop after a failed `remove` must not repeat the wait.
        if std::mem::replace(&mut self.removed, true) {
            return Ok(());
        }
        self.kill_all()?;
        // The last task can still be leaving after cgroup.procs reads empty: rmdir says EBUSY.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match fs::remove_dir(&self.path) {
                Ok(()) => break,
                Err(e) if e.kind() == ErrorKind::NotFound => break,
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => return Err(io_err("remove cgroup", &self.path)(e)),
            }
        }
        Ok(())
    }
}

impl Drop for JobCgroup {
    fn drop(&mut self) {
        if let Err(e) = self.remove_inner() {
            tracing::error!(error = %e, "could not remove the job cgroup");
        }
    }
}

/// The cgroup v2 path of this process from `/proc/self/cgroup` (`0::/a/b` → `a/b`); `None` at
/// the root or on a v1-only host.
fn own_cgroup(text: &str) -> Option<PathBuf> {
    let rel = text.lines().find_map(|l| l.strip_prefix("0::"))?.trim();
    let rel = rel.trim_start_matches('/');
    // "(deleted)" or a relative escape would point somewhere else entirely.
    if rel.is_empty() || rel.contains("..") || rel.ends_with(" (deleted)") {
        return None;
    }
    Some(PathBuf::from(rel))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_cgroup_from_proc_self_cgroup() {
        let hybrid =
            "12:pids:/user.slice\n1:name=systemd:/user.slice/x.scope\n0::/user.slice/x.scope\n";
        assert_eq!(
            own_cgroup(hybrid),
            Some(PathBuf::from("user.slice/x.scope"))
        );
        assert_eq!(own_cgroup("0::/\n"), None);
        assert_eq!(own_cgroup("1:cpu:/a\n"), None);
        assert_eq!(own_cgroup("0::/../../etc\n"), None);
    }

    #[test]
    fn finds_unified_mount_on_hybrid_hosts() {
        let mounts = "tmpfs /sys/fs/cgroup tmpfs rw 0 0\n\
                      cgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\n\
                      cgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n";
        assert_eq!(
            find_cgroup2_mount(mounts),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
    }

    #[test]
    fn finds_plain_v2_mount_and_unescapes() {
        assert_eq!(
            find_cgroup2_mount("cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n"),
            Some(PathBuf::from("/sys/fs/cgroup"))
        );
        assert_eq!(
            find_cgroup2_mount("none /mnt/my\\040cg cgroup2 rw 0 0\n"),
            Some(PathBuf::from("/mnt/my cg"))
        );
    }

    #[test]
    fn no_v2_mount_is_none() {
        assert_eq!(
            find_cgroup2_mount("cgroup /sys/fs/cgroup/cpu cgroup rw 0 0\n"),
            None
        );
        assert_eq!(find_cgroup2_mount("garbage\n\n  \n"), None);
    }
}
