//! Running the real `warden` binary the way a user would, inside a test namespace.
//!
//! End-to-end tests are black-box: they start `warden run --audit-log FILE [ARGS] -- CMD` and
//! judge it by its exit status, its output and its audit log. [`WardenRun`] builds that command
//! line, runs it inside a [`Netns`] with a deadline, and parses the audit log; a log line that
//! is not JSON fails the run, since users' tools would choke on it too. [`WardenRun::spawn`]
//! returns a [`WardenChild`] for tests that need to signal warden while CMD is running.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::Duration;

use anyhow::{Context, bail};
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use serde_json::Value;

use crate::process::{Captured, Running};
use crate::{Netns, audit};

/// How long a `warden run` may take before it is killed and the test fails.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// The `warden` binary under test: `$WARDEN_BIN`, or `warden` in the cargo profile directory
/// this test executable was built into, or an error saying how to build it.
pub fn try_warden_bin() -> anyhow::Result<PathBuf> {
    if let Some(bin) = std::env::var_os("WARDEN_BIN") {
        return Ok(PathBuf::from(bin));
    }
    let exe = std::env::current_exe().context("cannot locate the test executable")?;
    // Test executables live in target/<profile>/deps/, binaries in target/<profile>/.
    let candidates: Vec<PathBuf> = exe
        .ancestors()
        .skip(1)
        .take(2)
        .map(|dir| dir.join("warden"))
        .collect();
    if let Some(found) = candidates.iter().find(|c| c.is_file()) {
        return Ok(found.clone());
    }
    bail!(
        "the warden binary is not built (looked for {}); run `cargo build -p proxy` first, \
         or set WARDEN_BIN to its path",
        candidates[candidates.len() - 1].display()
    )
}

/// [`try_warden_bin`], panicking with its message when the binary is missing.
pub fn warden_bin() -> PathBuf {
    try_warden_bin().unwrap_or_else(|e| panic!("{e:#}"))
}

/// A `warden run` to be executed inside a test namespace. See the module documentation.
#[derive(Debug)]
pub struct WardenRun<'a> {
    netns: &'a Netns,
    bin: Option<PathBuf>,
    audit_log: Option<PathBuf>,
    args: Vec<OsString>,
    cmd: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    timeout: Duration,
}

impl<'a> WardenRun<'a> {
    /// A run in `netns`, with no command yet and the audit log in a fresh temporary directory.
    pub fn new(netns: &'a Netns) -> WardenRun<'a> {
        WardenRun {
            netns,
            bin: None,
            audit_log: None,
            args: Vec::new(),
            cmd: Vec::new(),
            env: Vec::new(),
            timeout: RUN_TIMEOUT,
        }
    }

    /// Runs `bin` instead of [`warden_bin`] (the harness's own tests use a stand-in).
    pub fn bin(mut self, bin: impl Into<PathBuf>) -> Self {
        self.bin = Some(bin.into());
        self
    }

    /// Writes the audit log to `path` instead of a temporary file.
    pub fn audit_log(mut self, path: impl Into<PathBuf>) -> Self {
        self.audit_log = Some(path.into());
        self
    }

    /// Adds warden options that go between `run` and `--` (e.g. `--policy FILE`).
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Sets the command warden runs (everything after `--`).
    pub fn cmd<I, S>(mut self, cmd: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd = cmd.into_iter().map(|a| a.as_ref().to_owned()).collect();
        self
    }

    /// Sets an environment variable for warden (and so for the command).
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// Replaces the default deadline of [`RUN_TIMEOUT`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Runs warden to completion and collects its status, output and audit log.
    pub fn run(self) -> anyhow::Result<RunOutput> {
        self.spawn()?.wait()
    }

    /// Starts warden and returns at once; stdout and stderr are captured.
    pub fn spawn(self) -> anyhow::Result<WardenChild> {
        let (audit_log, audit_dir) = match &self.audit_log {
            Some(path) => (path.clone(), None),
            None => {
                let dir = tempfile::Builder::new().prefix("warden-audit-").tempdir()?;
                (dir.path().join("audit.jsonl"), Some(dir))
            }
        };
        let cmd = self.build(&audit_log)?;
        Ok(WardenChild {
            running: Running::spawn(cmd)?,
            audit_log,
            audit_dir,
            timeout: self.timeout,
        })
    }

    /// The command line alone, for callers that run it their own way (the demo inherits stdio
    /// and has no deadline). Needs an explicit [`WardenRun::audit_log`].
    pub fn command(&self) -> anyhow::Result<Command> {
        let Some(audit_log) = &self.audit_log else {
            bail!("WardenRun::command needs an explicit audit_log");
        };
        self.build(audit_log)
    }

    fn build(&self, audit_log: &Path) -> anyhow::Result<Command> {
        if self.cmd.is_empty() {
            bail!("WardenRun needs a command: call .cmd([...]) before running");
        }
        let bin = match &self.bin {
            Some(bin) => bin.clone(),
            None => try_warden_bin()?,
        };
        let run = [
            OsStr::new("run"),
            OsStr::new("--audit-log"),
            audit_log.as_os_str(),
        ];
        let mut cmd = self.netns.command(&bin, run);
        cmd.args(&self.args).arg("--").args(&self.cmd);
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        Ok(cmd)
    }
}

/// A running `warden run`. Dropping it kills warden.
pub struct WardenChild {
    running: Running,
    audit_log: PathBuf,
    audit_dir: Option<tempfile::TempDir>,
    timeout: Duration,
}

impl WardenChild {
    /// Warden's process id.
    pub fn pid(&self) -> Pid {
        self.running.pid()
    }

    /// Sends `signal` to warden itself (e.g. `SIGTERM` to check it cleans up).
    pub fn signal(&self, signal: Signal) -> anyhow::Result<()> {
        self.running.signal(signal)
    }

    /// Warden's stdout and stderr so far.
    pub fn output_so_far(&self) -> (String, String) {
        self.running.output_so_far()
    }

    /// Where the audit log is being written.
    pub fn audit_log(&self) -> &Path {
        &self.audit_log
    }

    /// Waits until the audit log has a record that satisfies `wanted` and returns it (see
    /// [`audit::wait_for_record`]); the error also shows warden's output so far.
    pub fn wait_for_record(
        &self,
        timeout: Duration,
        wanted: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        audit::wait_for_record(&self.audit_log, timeout, wanted).with_context(|| {
            let (stdout, stderr) = self.output_so_far();
            format!("warden so far:\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}")
        })
    }

    /// Waits for warden to exit (killing it after the run's deadline) and collects the result.
    pub fn wait(self) -> anyhow::Result<RunOutput> {
        let Captured {
            status,
            stdout,
            stderr,
        } = self.running.wait_timeout(self.timeout)?;
        let records = read_records(&self.audit_log).with_context(|| {
            format!(
                "warden exited with {status}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
            )
        })?;
        Ok(RunOutput {
            status,
            stdout,
            stderr,
            records,
            audit_log: self.audit_log,
            _audit_dir: self.audit_dir,
        })
    }
}

/// What a finished `warden run` left behind.
pub struct RunOutput {
    /// Warden's exit status (CMD's, unless warden itself failed).
    pub status: ExitStatus,
    /// Warden's stdout (CMD's stdout passes through it).
    pub stdout: String,
    /// Warden's stderr (its summary, and CMD's stderr).
    pub stderr: String,
    /// The audit log, one JSON value per line; empty if warden wrote no log.
    pub records: Vec<Value>,
    /// Where the audit log is (kept until this value is dropped, if it was temporary).
    pub audit_log: PathBuf,
    _audit_dir: Option<tempfile::TempDir>,
}

impl RunOutput {
    /// The exit code, if warden exited rather than being killed by a signal.
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Panics, showing the whole run, unless warden exited 0.
    #[track_caller]
    pub fn assert_success(&self) -> &Self {
        assert!(self.status.success(), "warden run failed:\n{self}");
        self
    }

    /// Panics, showing the whole run, unless warden exited with `code`.
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(self.code(), Some(code), "unexpected exit status:\n{self}");
        self
    }

    /// Panics, showing the whole run, unless its log is bracketed by matching enforcement
    /// start and stop records (see [`audit::enforcement_bracket`]); returns what they say.
    #[track_caller]
    pub fn assert_bracketed(&self) -> audit::Enforcement {
        audit::enforcement_bracket(&self.records)
            .unwrap_or_else(|e| panic!("enforcement records: {e}\n{self}"))
    }

    /// The one `connection` record that satisfies `wanted`; panics, showing the whole run, when
    /// there is none or more than one. `what` names the record in that message.
    #[track_caller]
    pub fn one_connection(&self, what: &str, wanted: impl Fn(&Value) -> bool) -> &Value {
        let found: Vec<&Value> = audit::connections(&self.records)
            .into_iter()
            .filter(|r| wanted(r))
            .collect();
        assert!(
            found.len() == 1,
            "expected exactly one connection record for {what}, found {}:\n{self}",
            found.len()
        );
        found[0]
    }
}

impl fmt::Display for RunOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "status: {}", self.status)?;
        writeln!(f, "--- stdout ---\n{}", self.stdout)?;
        writeln!(f, "--- stderr ---\n{}", self.stderr)?;
        writeln!(f, "--- audit log {} ---", self.audit_log.display())?;
        for record in &self.records {
            writeln!(f, "{record}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for RunOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// `assert!` that shows the whole [`RunOutput`] when it fails, so a CI log is enough to debug:
/// `assert_run!(out, condition, "format", args…)`.
#[macro_export]
macro_rules! assert_run {
    ($out:expr, $cond:expr, $($msg:tt)+) => {
        assert!($cond, "{}\n{}", format_args!($($msg)+), $out)
    };
}

/// `assert_eq!` that shows the whole [`RunOutput`] when it fails:
/// `assert_run_eq!(out, left, right, "format", args…)`.
#[macro_export]
macro_rules! assert_run_eq {
    ($out:expr, $left:expr, $right:expr, $($msg:tt)+) => {
        assert_eq!($left, $right, "{}\n{}", format_args!($($msg)+), $out)
    };
}

/// Parses a JSON-lines audit log; a missing file is an empty log.
pub fn read_records(path: &Path) -> anyhow::Result<Vec<Value>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line).with_context(|| {
                format!(
                    "{}:{}: audit record is not JSON: {line}",
                    path.display(),
                    i + 1
                )
            })
        })
        .collect()
}
