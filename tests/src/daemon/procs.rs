//! What the kernel says about processes and programs, for daemon tests: whether a daemon has
//! really exited (a zombie leader may still have threads closing its sockets), which daemons run
//! for a cgroup, and whether eBPF programs were unloaded.

use std::collections::HashSet;
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::unistd::Pid;

use crate::process::Running;

/// Whether process `pid` has exited: it is gone, or a zombie whose other threads are gone too.
/// A thread group leader turns zombie while its other threads may still be closing the
/// process's files (a listening socket, say), so a zombie with threads left has not exited yet.
pub fn is_gone(pid: Pid) -> bool {
    let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) else {
        return true;
    };
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .unwrap_or_default()
            .to_owned()
    };
    let zombie = field("State:").starts_with(['Z', 'X']);
    zombie && field("Threads:") == "1"
}

/// Waits up to `timeout` for `pid` to exit; whether it did.
pub fn wait_gone(pid: Pid, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if is_gone(pid) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether `pid` is a running warden daemon (`warden __daemon …`), not a recycled pid.
pub fn is_daemon(pid: Pid) -> bool {
    !is_gone(pid)
        && fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|c| c.split(|b| *b == 0).any(|arg| arg == b"__daemon"))
}

/// Waits up to `timeout` until `running` has printed `word` on stdout; its output so far, or an
/// error showing it.
pub fn wait_for_output(running: &Running, word: &str, timeout: Duration) -> anyhow::Result<String> {
    let deadline = Instant::now() + timeout;
    loop {
        let (stdout, stderr) = running.output_so_far();
        if stdout.contains(word) {
            return Ok(stdout);
        }
        if Instant::now() >= deadline {
            anyhow::bail!("no {word:?} within {timeout:?}:\n{stdout}\n{stderr}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Ids of the eBPF programs loaded now. One unloaded while the list is read cannot be opened
/// and is skipped: it is not loaded any more.
pub fn loaded_programs() -> HashSet<u32> {
    aya::programs::loaded_programs()
        .filter_map(Result::ok)
        .map(|program| program.id())
        .collect()
}

/// Waits up to `timeout` until none of `programs` is loaded; those still loaded then.
pub fn wait_unloaded(programs: &[u32], timeout: Duration) -> Vec<u32> {
    let deadline = Instant::now() + timeout;
    loop {
        let loaded = loaded_programs();
        let still: Vec<u32> = programs
            .iter()
            .copied()
            .filter(|id| loaded.contains(id))
            .collect();
        if still.is_empty() || Instant::now() >= deadline {
            return still;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Pids of running warden daemons whose command line names `cgroup`.
pub fn daemons_for(cgroup: &Path) -> Vec<Pid> {
    let wanted = cgroup.as_os_str().as_encoded_bytes();
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .map(Pid::from_raw)
        .filter(|&pid| {
            is_daemon(pid)
                && fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| c.split(|b| *b == 0).any(|arg| arg == wanted))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_not_gone() {
        assert!(!is_gone(Pid::this()));
        assert!(!is_daemon(Pid::this()));
    }
}
