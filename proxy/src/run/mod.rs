//! `warden run`: jail one command in a fresh cgroup, record its connections, clean up.
//!
//! Order matters. Signal handlers come first, so no signal can end Warden half-way. The proxy
//! listens before the hooks are attached (the hooks need its port), the hooks and tracepoints are
//! attached before the command starts, and the command joins the cgroup before it execs (a socket
//! made before joining would not be redirected). At the end, whatever the command left running is
//! killed, open connections get a few seconds to finish, the rest are closed, every record is
//! written, and only then are the hooks detached, the cgroup removed and the stop record written,
//! also when the command was killed or Warden got SIGINT/SIGTERM.

mod child;
pub use child::raise_nofile;
mod signals;

use std::{ffi::OsString, path::PathBuf, process::ExitStatus, sync::Arc, time::Duration};

pub use child::{ENTER_CGROUP, enter_cgroup_and_exec};

use crate::{
    audit::AuditLog,
    cgroup::JobCgroup,
    policy::Policy,
    session::{self, EnforcementHandle, Session},
};

/// Exit status for Warden's own failures (as `docker run` and `env` use it).
pub const EXIT_WARDEN_FAILURE: i32 = 125;
/// Exit status with `--fail-on-blocked` when the command succeeded but something was blocked.
pub const EXIT_BLOCKED: i32 = 3;
/// How long open connections get to finish after the command is gone.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// What `warden run` was asked to do.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Audit log path; default: a new file in the working directory.
    pub audit_log: Option<PathBuf>,
    /// What the job may reach, and whether the rest is refused.
    pub policy: Arc<Policy>,
    /// Warden's resolver (`None`: `--no-dns`).
    pub dns: Option<crate::dns::Options>,
    /// Extra CAs for verifying servers under TLS inspection.
    pub upstream_ca: Vec<PathBuf>,
    /// Exit [`EXIT_BLOCKED`] when the command succeeded but something was blocked.
    pub fail_on_blocked: bool,
    /// File monitoring of a workspace (`--workspace`), unless `--no-file-monitoring`.
    pub files: Option<crate::files::Options>,
    /// The command and its arguments.
    pub cmd: Vec<OsString>,
}

/// Errors before or around the command: all exit 125.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The audit log could not be opened.
    #[error("cannot open audit log {path}: {source}")]
    AuditLog {
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Cgroup setup failed.
    #[error(transparent)]
    Cgroup(#[from] crate::cgroup::Error),
    /// Attaching failed.
    #[error(transparent)]
    Session(#[from] session::Error),
    /// Something else in Warden failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
}

fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::Io { what, source }
}

/// Runs the command under Warden and returns the exit status `warden run` should exit with.
pub fn run(opts: RunOptions) -> i32 {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("warden: cannot start runtime: {e}");
            return EXIT_WARDEN_FAILURE;
        }
    };
    // Signal handlers need the runtime; installing them is the first thing it does.
    let signals = match rt.block_on(async { signals::Signals::install() }) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("warden: cannot install signal handlers: {e}");
            return EXIT_WARDEN_FAILURE;
        }
    };
    let nofile = child::raise_nofile();
    let log_path = opts.audit_log.clone().unwrap_or_else(default_log_path);
    let log = match AuditLog::open(&log_path) {
        Ok(log) => Arc::new(log),
        Err(source) => {
            let e = Error::AuditLog {
                path: log_path,
                source,
            };
            eprintln!("warden: {e}");
            return EXIT_WARDEN_FAILURE;
        }
    };
    let mode = opts.policy.mode();
    let result = rt.block_on(supervise(&opts, log.clone(), signals, nofile));
    rt.shutdown_timeout(Duration::from_secs(1));
    let mut code = match result {
        Ok(Finished {
            status,
            enforcement,
        }) => {
            // Detaches, removes the cgroup and writes the stop record, after every connection's.
            drop(enforcement);
            child::exit_code(status)
        }
        Err(e) => {
            eprintln!("warden: {}", chain(&e));
            EXIT_WARDEN_FAILURE
        }
    };
    let summary = log.summary();
    eprint!("warden: {mode} mode, {summary}");
    if opts.fail_on_blocked && code == 0 && summary.blocked() > 0 {
        eprintln!(
            "warden: --fail-on-blocked: {} connection(s) or lookup(s) were blocked",
            summary.blocked()
        );
        code = EXIT_BLOCKED;
    }
    let failed = log.failed_writes();
    if failed > 0 {
        eprintln!(
            "warden: ERROR: {failed} audit record(s) could not be written; the log is incomplete"
        );
        if code == 0 {
            code = EXIT_WARDEN_FAILURE;
        }
    }
    eprintln!("warden: audit log: {}", log.path().display());
    code
}

struct Finished {
    status: ExitStatus,
    enforcement: EnforcementHandle,
}

async fn supervise(
    opts: &RunOptions,
    log: Arc<AuditLog>,
    mut signals: signals::Signals,
    nofile: Option<u64>,
) -> Result<Finished, Error> {
    let name = format!("warden-run-{}-{}", std::process::id(), nanos());
    let cgroup = JobCgroup::create(&name)?;
    let session = Session::start(
        cgroup,
        opts.policy.clone(),
        log,
        None,
        opts.dns.clone(),
        &opts.upstream_ca,
        opts.files.clone().map(|options| session::FilesSetup {
            options,
            warden_files: Vec::new(),
        }),
    )
    .await?;
    let cgroup = session.cgroup();
    let mut command = child::command(&cgroup.procs_file(), nofile, &opts.cmd)
        .map_err(io("find warden's own executable"))?;
    command.envs(session.job_env().iter().map(|(k, v)| (k, v)));
    let mut child = command.spawn().map_err(io("start the command"))?;
    if let Some(pid) = child.id() {
        session.processes.set_root(pid);
    }
    let status = wait(&mut child, cgroup, &mut signals).await?;
    // Leftover background processes would escape once the hooks detach: end them.
    if let Err(e) = cgroup.kill_all() {
        tracing::error!(error = %e, "could not empty the job cgroup");
    }
    let enforcement = session.close(DRAIN_TIMEOUT).await;
    Ok(Finished {
        status,
        enforcement,
    })
}

/// Waits for the command, passing signals on; a second signal, or a command that outlives the
/// grace period after the first, gets its whole cgroup killed.
async fn wait(
    child: &mut tokio::process::Child,
    cgroup: &JobCgroup,
    signals: &mut signals::Signals,
) -> Result<ExitStatus, Error> {
    let mut grace: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            status = child.wait() => return status.map_err(io("wait for the command")),
            received = signals.recv() => {
                if grace.is_some() {
                    tracing::warn!(signal = %received.signal, "second signal: killing the job");
                    let _ = cgroup.kill_all();
                    continue;
                }
                if let (true, Some(pid)) = (received.forward, child.id()) {
                    signals::send(pid, received.signal);
                }
                grace = Some(tokio::time::Instant::now() + signals::GRACE);
            }
            () = sleep_until_opt(grace) => {
                tracing::warn!("the command ignored the signal; killing the job");
                let _ = cgroup.kill_all();
                grace = None;
            }
        }
    }
}

async fn sleep_until_opt(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// An error with its sources, `a: b: c`.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.ends_with(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

fn default_log_path() -> PathBuf {
    let stamp = crate::audit::now_rfc3339().replace([':', '.'], "");
    PathBuf::from(format!("warden-{stamp}-{}.audit.jsonl", std::process::id()))
}
