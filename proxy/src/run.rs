//! `warden run`: jail one command in a fresh cgroup, record its connections, clean up.
//!
//! Order matters. The proxy listens before the hooks are attached (the hooks need its port),
//! the hooks and tracepoints are attached before the command starts, and the command joins the
//! cgroup before it execs (a socket made before joining would not be redirected). At the end,
//! whatever the command left running is killed, open connections get a few seconds to finish
//! (each still writes its record), then the hooks are detached and the cgroup removed, also when
//! the command was killed or Warden got SIGINT/SIGTERM.

use std::{
    ffi::OsString, os::unix::process::ExitStatusExt, path::PathBuf, process::ExitStatus, sync::Arc,
    time::Duration,
};

use tokio::{
    process::Command,
    signal::unix::{SignalKind, signal},
    sync::Notify,
};

use crate::{
    audit::{AuditLog, Enforcement, Kind, Record},
    cgroup::JobCgroup,
    ebpf::{self, Settings},
    process::ProcessTracker,
    proxy::{Context, Listeners},
};

/// Exit status for Warden's own failures (as `docker run` and `env` use it).
pub const EXIT_WARDEN_FAILURE: i32 = 125;
/// `SO_MARK` on the proxy's upstream sockets ("WRDN"), which the connect hook never redirects.
pub const PROXY_MARK: u32 = 0x5752_444e;
/// How long open connections get to finish after the command is gone.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a command gets to exit after a forwarded SIGINT/SIGTERM before its cgroup is killed.
const SIGNAL_GRACE: Duration = Duration::from_secs(10);

/// What `warden run` was asked to do.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Audit log path; default: a new file in the working directory.
    pub audit_log: Option<PathBuf>,
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
    /// eBPF setup failed.
    #[error(transparent)]
    Ebpf(#[from] ebpf::Error),
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
    let log_path = opts.audit_log.clone().unwrap_or_else(default_log_path);
    let log = match AuditLog::open(&log_path) {
        Ok(log) => Arc::new(log),
        Err(source) => {
            eprintln!(
                "warden: {}",
                Error::AuditLog {
                    path: log_path,
                    source
                }
            );
            return EXIT_WARDEN_FAILURE;
        }
    };
    let result = rt.block_on(supervise(&opts, log.clone()));
    // Connections still open after the drain timeout are dropped here; each writes its record.
    rt.shutdown_timeout(Duration::from_secs(1));
    let code = match result {
        Ok(Finished {
            status,
            enforcement,
        }) => {
            // Detaches, removes the cgroup and writes the stop record, after every connection's.
            drop(enforcement);
            exit_code(status)
        }
        Err(e) => {
            eprintln!("warden: {}", chain(&e));
            EXIT_WARDEN_FAILURE
        }
    };
    eprint!("warden: audit mode, {}", log.summary());
    eprintln!("warden: audit log: {}", log.path().display());
    code
}

struct Finished {
    status: ExitStatus,
    enforcement: EnforcementHandle,
}

/// Keeps the hooks attached and the cgroup alive. Dropping it — on success or on any error after
/// enforcement started — detaches the programs, removes the cgroup and writes the `stop` record.
struct EnforcementHandle {
    redirect: Option<ebpf::Redirect>,
    cgroup: Option<JobCgroup>,
    info: Enforcement,
    log: Arc<AuditLog>,
}

impl EnforcementHandle {
    fn cgroup(&self) -> &JobCgroup {
        self.cgroup
            .as_ref()
            .expect("the cgroup lives until the handle drops")
    }
}

impl Drop for EnforcementHandle {
    fn drop(&mut self) {
        drop(self.redirect.take());
        if let Some(Err(e)) = self.cgroup.take().map(JobCgroup::remove) {
            eprintln!("warden: {e}");
        }
        let mut stop = Record::new(Kind::Enforcement);
        stop.enforcement = Some(Enforcement {
            event: "stop",
            proxy: None,
            ..self.info.clone()
        });
        self.log.write(&stop);
    }
}

async fn supervise(opts: &RunOptions, log: Arc<AuditLog>) -> Result<Finished, Error> {
    let name = format!("warden-run-{}-{}", std::process::id(), nanos());
    let cgroup = JobCgroup::create(&name)?;
    let listeners = Listeners::bind(0).await.map_err(io("bind proxy"))?;
    let port = listeners.port();
    let (redirect, orig_dst, events) = ebpf::attach(
        &cgroup,
        Settings {
            proxy_port: port,
            proxy_mark: PROXY_MARK,
        },
    )?;
    let processes = ProcessTracker::new(events).map_err(io("process events"))?;
    tokio::spawn(processes.clone().run());
    let ctx = Context::new(
        log.clone(),
        Some(processes.clone()),
        Some(orig_dst),
        PROXY_MARK,
    );
    let stop = Arc::new(Notify::new());
    tokio::spawn(listeners.serve(ctx.clone(), stop.clone()));

    let info = Enforcement {
        event: "start",
        mode: "audit",
        cgroup: cgroup.path().display().to_string(),
        programs: redirect.program_ids().to_vec(),
        proxy: Some(format!("127.0.0.1:{port}")),
    };
    let mut start = Record::new(Kind::Enforcement);
    start.enforcement = Some(info.clone());
    log.write(&start);
    let enforcement = EnforcementHandle {
        redirect: Some(redirect),
        cgroup: Some(cgroup),
        info,
        log,
    };
    let cgroup = enforcement.cgroup();

    let exe = std::env::current_exe().map_err(io("find warden's own executable"))?;
    let mut child = Command::new(exe)
        .arg(ENTER_CGROUP)
        .arg(cgroup.procs_file())
        .arg("--")
        .args(&opts.cmd)
        .kill_on_drop(false)
        .spawn()
        .map_err(io("start the command"))?;
    if let Some(pid) = child.id() {
        processes.set_root(pid);
    }
    let status = wait_forwarding_signals(&mut child, cgroup).await?;

    // Leftover background processes would escape once the hooks detach: end them.
    if let Err(e) = cgroup.kill_all() {
        tracing::error!(error = %e, "could not empty the job cgroup");
    }
    let open = ctx.wait_idle(DRAIN_TIMEOUT).await;
    if open > 0 {
        tracing::warn!(
            open,
            "connections still open after the command ended; closing them"
        );
    }
    stop.notify_waiters();
    Ok(Finished {
        status,
        enforcement,
    })
}

/// The hidden subcommand the child runs: join the cgroup, then exec the command.
pub const ENTER_CGROUP: &str = "__enter-cgroup";

async fn wait_forwarding_signals(
    child: &mut tokio::process::Child,
    cgroup: &JobCgroup,
) -> Result<ExitStatus, Error> {
    let mut int = signal(SignalKind::interrupt()).map_err(io("signal handler"))?;
    let mut term = signal(SignalKind::terminate()).map_err(io("signal handler"))?;
    let mut hup = signal(SignalKind::hangup()).map_err(io("signal handler"))?;
    let mut grace: Option<tokio::time::Instant> = None;
    loop {
        let forward = tokio::select! {
            status = child.wait() => return status.map_err(io("wait for the command")),
            _ = int.recv() => nix::sys::signal::Signal::SIGINT,
            _ = term.recv() => nix::sys::signal::Signal::SIGTERM,
            _ = hup.recv() => nix::sys::signal::Signal::SIGHUP,
            () = sleep_until_opt(grace) => {
                tracing::warn!("command ignored the signal; killing its cgroup");
                let _ = cgroup.kill_all();
                grace = None;
                continue;
            }
        };
        if let Some(pid) = child.id() {
            let pid = nix::unistd::Pid::from_raw(pid as i32);
            let _ = nix::sys::signal::kill(pid, forward);
        }
        grace.get_or_insert(tokio::time::Instant::now() + SIGNAL_GRACE);
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

fn exit_code(status: ExitStatus) -> i32 {
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(EXIT_WARDEN_FAILURE)
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

/// Child side of `warden run`: join the cgroup at `procs`, then become `cmd`. Returns only on
/// failure, with the exit status to use (125 cgroup, 126 not executable, 127 not found).
pub fn enter_cgroup_and_exec(procs: &std::path::Path, cmd: &[OsString]) -> i32 {
    use std::os::unix::process::CommandExt;
    if let Err(e) = std::fs::write(procs, std::process::id().to_string()) {
        eprintln!("warden: cannot join cgroup {}: {e}", procs.display());
        return EXIT_WARDEN_FAILURE;
    }
    let Some((prog, args)) = cmd.split_first() else {
        eprintln!("warden: no command given");
        return EXIT_WARDEN_FAILURE;
    };
    let e = std::process::Command::new(prog).args(args).exec();
    eprintln!("warden: cannot run {}: {e}", prog.to_string_lossy());
    if e.kind() == std::io::ErrorKind::NotFound {
        127
    } else {
        126
    }
}
