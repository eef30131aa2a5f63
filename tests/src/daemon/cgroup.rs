//! A cgroup per test, for daemon tests: `warden start --cgroup` enforces on a cgroup that must
//! already exist, and a test may only ever give it one it created. [`TestCgroup`] is a fresh
//! child of the cgroup v2 mount found in `/proc/mounts` (hybrid hosts mount it at
//! `/sys/fs/cgroup/unified`), never the root itself; dropping it kills what is left in it and
//! removes it.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use nix::unistd::Pid;

use super::RUN_DIR;
use crate::clients::quote;

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A cgroup owned by a test: `<cgroup v2 mount>/wt-<pid>-<n>`. Dropping it kills whatever is
/// still in it and removes it.
#[derive(Debug)]
pub struct TestCgroup {
    path: PathBuf,
    id: u64,
}

impl TestCgroup {
    /// Creates a fresh cgroup directly below the cgroup v2 mount found in `/proc/mounts`.
    pub fn new() -> anyhow::Result<TestCgroup> {
        let mounts = fs::read_to_string("/proc/mounts")?;
        let root = cgroup2_mount(&mounts).context("no cgroup2 filesystem in /proc/mounts")?;
        let name = format!(
            "wt-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = root.join(name);
        // Ours by name, so only left over from a dead process that had our pid.
        if path.exists() {
            remove(&path);
        }
        fs::create_dir(&path).with_context(|| format!("cannot create {}", path.display()))?;
        let id = fs::metadata(&path)?.ino();
        Ok(TestCgroup { path, id })
    }

    /// The cgroup directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The cgroup id (the directory's inode), which names a daemon's state directory.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// `/run/warden/cg-<id>`: exists exactly while a daemon for this cgroup is on or was lost
    /// and not yet cleaned up.
    pub fn state_dir(&self) -> PathBuf {
        Path::new(RUN_DIR).join(format!("cg-{}", self.id))
    }

    /// Processes in the cgroup now.
    pub fn pids(&self) -> Vec<Pid> {
        fs::read_to_string(self.path.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .map(Pid::from_raw)
            .collect()
    }

    /// A shell script that moves its own shell into this cgroup, then runs `script`: everything
    /// `script` starts is in the cgroup from its first instruction. Exits 97 if it cannot join.
    pub fn enter(&self, script: &str) -> String {
        let procs = self.path.join("cgroup.procs");
        format!(
            "echo $$ > {} || exit 97\n{script}",
            quote(&procs.to_string_lossy())
        )
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        // A daemon's state outliving its cgroup can no longer be found by `--cgroup`: say so.
        let state = self.state_dir();
        if state.exists() {
            eprintln!(
                "warning: {} outlives its test cgroup {}",
                state.display(),
                self.path.display()
            );
        }
        remove(&self.path);
    }
}

/// The cgroup v2 mount point in a `/proc/mounts` text.
pub fn cgroup2_mount(mounts: &str) -> Option<PathBuf> {
    mounts.lines().find_map(|line| {
        let mut fields = line.split_ascii_whitespace();
        let (_dev, dir, fstype) = (fields.next()?, fields.next()?, fields.next()?);
        (fstype == "cgroup2").then(|| PathBuf::from(dir.replace("\\040", " ")))
    })
}

/// Kills what is in cgroup `path` and removes it. Never panics: it runs in Drop.
fn remove(path: &Path) {
    let _ = fs::write(path.join("cgroup.kill"), "1");
    // The last task may still be leaving after the kill: rmdir says EBUSY until it has.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match fs::remove_dir(path) {
            Ok(()) => return,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(e) if Instant::now() > deadline => {
                eprintln!("warning: cannot remove test cgroup {}: {e}", path.display());
                return;
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_cgroup2_mount_on_hybrid_hosts() {
        let hybrid = "tmpfs /sys/fs/cgroup tmpfs rw 0 0\n\
                      cgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\n\
                      cgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n";
        assert_eq!(
            cgroup2_mount(hybrid),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        assert_eq!(cgroup2_mount("cgroup /a cgroup rw 0 0\n"), None);
    }
}
