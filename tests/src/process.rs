//! Running a child process with a deadline and its output captured.
//!
//! Every end-to-end test runs programs (warden, curl, python) that may hang when the thing under
//! test is broken, and a hung test is much worse than a failed one. [`Running`] reads stdout and
//! stderr on their own threads (so a chatty child never blocks on a full pipe), waits for exit
//! with a deadline and kills the child when it passes, and kills it too if the test drops it
//! early. Exit is observed with `waitid(WNOWAIT)`, which leaves the child unreaped until
//! [`Running::wait_timeout`] collects it, so a signal or kill can never hit a recycled pid.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{Id, WaitPidFlag, waitid};
use nix::unistd::Pid;

/// How long to keep reading a pipe after the child exited: a background grandchild may hold it
/// open forever, and what it writes later is not the child's output.
const DRAIN: Duration = Duration::from_secs(5);

/// What a finished child left behind.
#[derive(Debug)]
pub struct Captured {
    /// How it exited.
    pub status: ExitStatus,
    /// Everything it wrote to stdout (lossy UTF-8).
    pub stdout: String,
    /// Everything it wrote to stderr (lossy UTF-8).
    pub stderr: String,
}

/// A spawned child whose output is being captured. Dropping it kills and reaps the child.
pub struct Running {
    child: Option<Child>,
    what: String,
    stdout: Pipe,
    stderr: Pipe,
}

/// Runs `cmd` to completion with stdin closed, killing it after `timeout`.
pub fn run(cmd: Command, timeout: Duration) -> anyhow::Result<Captured> {
    Running::spawn(cmd)?.wait_timeout(timeout)
}

/// Runs `cmd` like [`run`] and returns its stdout, or an error showing both streams when it
/// did not exit 0.
pub fn run_ok(cmd: Command, timeout: Duration) -> anyhow::Result<String> {
    let what = describe(&cmd);
    let out = run(cmd, timeout)?;
    if !out.status.success() {
        bail!(
            "{what} failed with {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            out.status,
            out.stdout,
            out.stderr
        );
    }
    Ok(out.stdout)
}

/// A short, readable rendering of a command line for error messages.
pub fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}

impl Running {
    /// Spawns `cmd` with stdin from /dev/null and stdout/stderr captured.
    pub fn spawn(mut cmd: Command) -> anyhow::Result<Running> {
        let what = describe(&cmd);
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {what}"))?;
        let stdout = Pipe::capture(child.stdout.take().expect("stdout is piped"));
        let stderr = Pipe::capture(child.stderr.take().expect("stderr is piped"));
        Ok(Running {
            child: Some(child),
            what,
            stdout,
            stderr,
        })
    }

    /// The child's process id.
    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child().id() as i32)
    }

    /// Sends `signal` to the child (not to its descendants).
    pub fn signal(&self, signal: Signal) -> anyhow::Result<()> {
        kill(self.pid(), signal).with_context(|| format!("cannot send {signal} to {}", self.what))
    }

    /// Output written so far, while the child may still be running.
    pub fn output_so_far(&self) -> (String, String) {
        (self.stdout.snapshot(), self.stderr.snapshot())
    }

    /// Waits for the child to exit and returns what it left. After `timeout` the child is
    /// killed and the result is an error that shows its output so far.
    pub fn wait_timeout(mut self, timeout: Duration) -> anyhow::Result<Captured> {
        let exited = wait_exit(self.pid(), timeout);
        let mut child = self.child.take().expect("not waited yet");
        if !exited {
            // Still unreaped (WNOWAIT), so the pid cannot have been recycled.
            let _ = child.kill();
            let _ = child.wait();
            let (stdout, stderr) = self.output_so_far();
            bail!(
                "{} did not exit within {timeout:?} and was killed\n--- stdout ---\n{stdout}\n\
                 --- stderr ---\n{stderr}",
                self.what
            );
        }
        let status = child
            .wait()
            .with_context(|| format!("cannot reap {}", self.what))?;
        let deadline = Instant::now() + DRAIN;
        Ok(Captured {
            status,
            stdout: self.stdout.finish(deadline),
            stderr: self.stderr.finish(deadline),
        })
    }

    fn child(&self) -> &Child {
        self.child.as_ref().expect("not waited yet")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Waits up to `timeout` for `pid` to exit, without reaping it.
fn wait_exit(pid: Pid, timeout: Duration) -> bool {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT;
        while let Err(Errno::EINTR) = waitid(Id::Pid(pid), flags) {}
        let _ = tx.send(());
    });
    rx.recv_timeout(timeout).is_ok()
}

/// One output stream, read to EOF on its own thread.
struct Pipe {
    buf: Arc<Mutex<Vec<u8>>>,
    eof: mpsc::Receiver<()>,
}

impl Pipe {
    fn capture(mut reader: impl Read + Send + 'static) -> Pipe {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let (tx, eof) = mpsc::channel();
        let sink = Arc::clone(&buf);
        thread::spawn(move || {
            let mut chunk = [0u8; 8192];
            loop {
                match reader.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => sink.lock().unwrap().extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            let _ = tx.send(());
        });
        Pipe { buf, eof }
    }

    fn snapshot(&self) -> String {
        String::from_utf8_lossy(&self.buf.lock().unwrap()).into_owned()
    }

    fn finish(&self, deadline: Instant) -> String {
        let _ = self
            .eof
            .recv_timeout(deadline.saturating_duration_since(Instant::now()));
        self.snapshot()
    }
}
