//! Daemon mode under test: `warden start`, `stop` and `status` on a cgroup the test created.
//!
//! `warden start --cgroup PATH` enforces on an existing cgroup until `warden stop`, so its tests
//! need what `warden run` tests do not: a cgroup of their own ([`TestCgroup`]: created under the
//! cgroup v2 mount, never the root itself, emptied and removed on drop), a way to put a client in
//! it before the client makes any socket ([`TestCgroup::enter`]), and a guard that stops the
//! daemon however the test ends ([`Daemon`]), so that no daemon outlives a failed test. Every
//! `warden` command runs inside the test's [`Netns`]: the daemon inherits that namespace from
//! `start` and its proxy must listen where the clients are.
//!
//! `start` is collected like any command: the daemon it spawns gets its own stdout pipe (read by
//! `start` only) and a file for stderr, so our pipes reach EOF when `start` exits even though the
//! daemon keeps running.

mod cgroup;
mod procs;

use std::ffi::OsStr;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::Context;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

pub use cgroup::{TestCgroup, cgroup2_mount};
pub use procs::{
    daemons_for, is_daemon, is_gone, loaded_programs, wait_for_output, wait_gone, wait_unloaded,
};

use crate::process::{self, Captured};
use crate::warden::{read_records, try_warden_bin};
use crate::{Netns, audit};

/// Where daemons keep their state: `/run/warden/cg-<cgroup inode>/`.
pub const RUN_DIR: &str = "/run/warden";
/// Deadline for one `warden start/stop/status`; `stop` with a connection open takes the 5 s
/// grace and a little more.
pub const WARDEN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a daemon may take to exit after it was told to (or killed).
const EXIT_GRACE: Duration = Duration::from_secs(10);

/// Runs `warden ARGS…` inside `netns` with [`WARDEN_TIMEOUT`].
pub fn warden<I, S>(netns: &Netns, args: I) -> anyhow::Result<Captured>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    process::run(netns.command(try_warden_bin()?, args), WARDEN_TIMEOUT)
}

/// A `warden start --cgroup CGROUP --audit-log FILE [ARGS]` that has returned, whatever it
/// said, and the guard that runs `warden stop --cgroup CGROUP` when dropped (and kills the
/// daemon if even that fails). Borrowing the namespace and the cgroup makes the guard go first.
pub struct Daemon<'a> {
    netns: &'a Netns,
    cgroup: &'a TestCgroup,
    audit_log: PathBuf,
    _audit_dir: tempfile::TempDir,
    /// How `warden start` exited and what it printed.
    pub started: Captured,
}

impl<'a> Daemon<'a> {
    /// Runs `warden start` on `cgroup` inside `netns` with the audit log in a fresh temporary
    /// directory and `args` (mode, endpoints, …) after.
    pub fn start<I, S>(netns: &'a Netns, cgroup: &'a TestCgroup, args: I) -> anyhow::Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Self::start_with(netns, cgroup, args, false)
    }

    /// Like [`Daemon::start`], but `warden start` (and so the daemon it spawns) runs *inside*
    /// `cgroup`, as a daemon guarding a whole machine does: its own traffic must not be
    /// redirected back to itself.
    pub fn start_inside<I, S>(
        netns: &'a Netns,
        cgroup: &'a TestCgroup,
        args: I,
    ) -> anyhow::Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Self::start_with(netns, cgroup, args, true)
    }

    fn start_with<I, S>(
        netns: &'a Netns,
        cgroup: &'a TestCgroup,
        args: I,
        inside: bool,
    ) -> anyhow::Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let dir = tempfile::Builder::new().prefix("warden-audit-").tempdir()?;
        let audit_log = dir.path().join("audit.jsonl");
        let mut cmd = if inside {
            let script = cgroup.enter(r#"exec "$0" "$@""#);
            let mut cmd = netns.command("sh", ["-c", &script]);
            cmd.arg(try_warden_bin()?);
            cmd
        } else {
            netns.command(try_warden_bin()?, std::iter::empty::<&str>())
        };
        cmd.args(["start", "--cgroup"]);
        cmd.arg(cgroup.path()).arg("--audit-log").arg(&audit_log);
        cmd.args(args);
        let started = process::run(cmd, WARDEN_TIMEOUT)?;
        Ok(Daemon {
            netns,
            cgroup,
            audit_log,
            _audit_dir: dir,
            started,
        })
    }

    /// Panics, showing everything, unless `start` exited 0.
    #[track_caller]
    pub fn assert_started(&self) -> &Self {
        assert!(
            self.started.status.success(),
            "warden start failed:\n{self}"
        );
        self
    }

    /// The daemon's pid, from `start`'s "… daemon pid N" line.
    pub fn pid(&self) -> Option<Pid> {
        // `start --print-env` keeps stdout for NAME=VALUE lines and says the rest on stderr.
        let line = self
            .started
            .stdout
            .lines()
            .chain(self.started.stderr.lines())
            .find(|l| l.contains("daemon pid "))?;
        let pid = line.rsplit("daemon pid ").next()?.trim().parse().ok()?;
        Some(Pid::from_raw(pid))
    }

    /// The cgroup it was started on.
    pub fn cgroup(&self) -> &TestCgroup {
        self.cgroup
    }

    /// The audit log this daemon was told to write.
    pub fn audit_log(&self) -> &Path {
        &self.audit_log
    }

    /// The audit log's records so far; a line that is not JSON is an error.
    pub fn records(&self) -> anyhow::Result<Vec<Value>> {
        read_records(&self.audit_log)
    }

    /// Waits until the audit log has a record that satisfies `wanted` (see
    /// [`audit::wait_for_record`]).
    pub fn wait_for_record(
        &self,
        timeout: Duration,
        wanted: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        audit::wait_for_record(&self.audit_log, timeout, wanted)
    }

    /// `warden stop --cgroup CGROUP`.
    pub fn stop(&self) -> anyhow::Result<Captured> {
        self.warden(&["stop", "--cgroup"])
    }

    /// `warden status --cgroup CGROUP`.
    pub fn status(&self) -> anyhow::Result<Captured> {
        self.warden(&["status", "--cgroup"])
    }

    /// `warden status --json --cgroup CGROUP` and its output parsed.
    pub fn status_json(&self) -> anyhow::Result<(Captured, Value)> {
        let out = self.warden(&["status", "--json", "--cgroup"])?;
        let json = serde_json::from_str(out.stdout.trim())
            .with_context(|| format!("status --json printed no JSON: {out:?}"))?;
        Ok((out, json))
    }

    /// `warden ARGS… CGROUP` in the namespace (ARGS ending in `--cgroup`).
    fn warden(&self, args: &[&str]) -> anyhow::Result<Captured> {
        let mut all: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        all.push(self.cgroup.path().as_os_str());
        warden(self.netns, all)
    }

    /// A command running `script` with `sh` in the namespace, inside the cgroup from before its
    /// first instruction (see [`TestCgroup::enter`]).
    pub fn in_cgroup(&self, script: &str) -> Command {
        self.netns.sh(&self.cgroup.enter(script))
    }

    /// Runs `script` in the cgroup (see [`Daemon::in_cgroup`]) to completion.
    pub fn run_in_cgroup(&self, script: &str, timeout: Duration) -> anyhow::Result<Captured> {
        process::run(self.in_cgroup(script), timeout)
    }

    /// What the daemon wrote to stderr (kept in its state directory while it runs).
    pub fn daemon_log(&self) -> String {
        fs::read_to_string(self.cgroup.state_dir().join("daemon.log")).unwrap_or_default()
    }

    /// Panics unless the daemon is gone (waiting a little for it to exit) and its state
    /// directory removed.
    #[track_caller]
    pub fn assert_gone(&self) {
        if let Some(pid) = self.pid() {
            assert!(
                wait_gone(pid, EXIT_GRACE),
                "daemon {pid} still runs:\n{self}"
            );
        }
        let dir = self.cgroup.state_dir();
        assert!(!dir.exists(), "{} is left behind:\n{self}", dir.display());
    }
}

impl Drop for Daemon<'_> {
    fn drop(&mut self) {
        let _ = self.stop();
        let Some(pid) = self.pid() else { return };
        if wait_gone(pid, Duration::ZERO) || !is_daemon(pid) {
            return;
        }
        // `stop` could not stop it: kill it, and let a second `stop` clean up after it.
        eprintln!("warning: warden daemon {pid} survived `warden stop`; killing it");
        let _ = kill(pid, Signal::SIGKILL);
        wait_gone(pid, EXIT_GRACE);
        let _ = self.stop();
    }
}

impl fmt::Display for Daemon<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "cgroup: {}", self.cgroup.path().display())?;
        writeln!(f, "warden start: {}", self.started.status)?;
        writeln!(f, "--- start stdout ---\n{}", self.started.stdout)?;
        writeln!(f, "--- start stderr ---\n{}", self.started.stderr)?;
        writeln!(
            f,
            "--- daemon stderr (while running) ---\n{}",
            self.daemon_log()
        )?;
        let log = fs::read_to_string(&self.audit_log).unwrap_or_default();
        write!(f, "--- audit log {} ---\n{log}", self.audit_log.display())
    }
}

impl fmt::Debug for Daemon<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
