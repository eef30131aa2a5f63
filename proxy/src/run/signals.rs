//! Signals while the command runs: passed on to it once, and never the end of cleanup.
//!
//! Handlers are installed before anything is set up, so a SIGINT or SIGTERM at any moment ends
//! in a clean detach rather than Warden's death with the cgroup left behind. A signal the
//! terminal already sent to the whole foreground process group (Ctrl-C, Ctrl-\) is not sent
//! again: tools such as terraform treat a second interrupt as "abort now". A command that ignores
//! the signal for [`GRACE`], or a second signal, gets its cgroup killed.

use std::{io, time::Duration};

use nix::{
    sys::signal::{Signal, kill},
    unistd::{Pid, getpgrp, tcgetpgrp},
};
use tokio::signal::unix::{Signal as Stream, SignalKind, signal};

/// How long a command gets to exit after a forwarded signal before its cgroup is killed.
pub const GRACE: Duration = Duration::from_secs(10);

/// The signals `warden run` handles.
pub struct Signals {
    int: Stream,
    term: Stream,
    hup: Stream,
    quit: Stream,
}

/// What to do about a signal that arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// The signal.
    pub signal: Signal,
    /// Whether the command must be sent it (false when the terminal already did).
    pub forward: bool,
}

impl Signals {
    /// Installs the handlers.
    pub fn install() -> io::Result<Self> {
        Ok(Self {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
            quit: signal(SignalKind::quit())?,
        })
    }

    /// The next signal.
    pub async fn recv(&mut self) -> Received {
        let signal = tokio::select! {
            _ = self.int.recv() => Signal::SIGINT,
            _ = self.term.recv() => Signal::SIGTERM,
            _ = self.hup.recv() => Signal::SIGHUP,
            _ = self.quit.recv() => Signal::SIGQUIT,
        };
        let from_terminal = matches!(signal, Signal::SIGINT | Signal::SIGQUIT) && in_foreground();
        Received {
            signal,
            forward: !from_terminal,
        }
    }
}

/// Whether this process's group is the terminal's foreground group: then the terminal's
/// signals reached the command (same group) as well as Warden.
fn in_foreground() -> bool {
    tcgetpgrp(std::io::stdin()).is_ok_and(|fg| fg == getpgrp())
}

/// Sends `signal` to `pid`, ignoring a process that is already gone.
pub fn send(pid: u32, signal: Signal) {
    if let Ok(pid) = i32::try_from(pid) {
        let _ = kill(Pid::from_raw(pid), signal);
    }
}
