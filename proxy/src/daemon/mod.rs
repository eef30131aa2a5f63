//! Daemon mode: `warden start`, `warden stop`, `warden status`.
//!
//! `start` checks its input, spawns a detached copy of itself (`warden __daemon`) and returns
//! only when that copy reports enforcement on (the reply comes after the hooks are attached and
//! the proxy listens, not after a sleep). The daemon serves one cgroup (default: the cgroup v2
//! root, the whole machine) until `stop`, SIGTERM or SIGINT, checking every few seconds that its
//! programs are still loaded and recording a heartbeat, so that if it dies, `status` and `stop`
//! can say enforcement was lost and since when. State lives in a root-only directory per cgroup
//! ([`state`]); clients talk to the daemon over a root-only socket ([`control`]).

mod client;
pub mod control;
pub mod state;

use client::{cleanup_dead, record_loss};
pub use client::{log, status, stop};

use std::{
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::Stdio,
    sync::Arc,
    time::Duration,
};

use control::{Reply, Request};
use std::os::unix::process::CommandExt;
use tokio::net::UnixListener;

use crate::{
    audit::{AuditLog, Enforcement, Kind, Record, now_rfc3339},
    cgroup::JobCgroup,
    policy::Policy,
    session::{Integrity, Session},
};

/// How long `start` waits for the daemon to report enforcement on.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the daemon checks its enforcement and records a heartbeat.
const HEARTBEAT: Duration = Duration::from_secs(2);
/// How long open connections get to finish at stop.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Hidden subcommand the detached daemon runs.
pub const DAEMON: &str = "__daemon";

/// What `start` and the daemon need.
#[derive(Debug, Clone)]
pub struct StartOptions {
    /// The cgroup to enforce on (`None`: the cgroup v2 root).
    pub cgroup: Option<PathBuf>,
    /// Audit log; default: a new file in the working directory.
    pub audit_log: Option<PathBuf>,
    /// The policy.
    pub policy: Arc<Policy>,
    /// Warden's resolver (`None`: `--no-dns`).
    pub dns: Option<crate::dns::Options>,
    /// Extra CAs for verifying servers under TLS inspection.
    pub upstream_ca: Vec<PathBuf>,
    /// `start --print-env`: print what later steps must set.
    pub print_env: bool,
    /// `start --reader-uid`: the one non-root user that may fetch the log and status over the
    /// read-only socket ([`state::reader_socket`]).
    pub reader_uid: Option<u32>,
    /// File monitoring of a workspace (`--workspace`), unless `--no-file-monitoring`.
    pub files: Option<crate::files::Options>,
}

/// `warden start`: spawns the daemon with `args` (the command line after `start`) and waits for
/// it. Exit 0 when enforcement is on, 1 when it could not start, 2 for bad input.
pub fn start(opts: &StartOptions, args: &[std::ffi::OsString]) -> i32 {
    let cgroup = match JobCgroup::existing(opts.cgroup.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("warden: {e}");
            return 2;
        }
    };
    let dir = state::dir_for(cgroup.id());
    if let Some(code) = refuse_if_running(&dir) {
        return code;
    }
    if let Err(e) = state::create(&dir) {
        eprintln!("warden: cannot create {}: {e}", dir.display());
        return 1;
    }
    let log_path = dir.join("daemon.log");
    let spawned = std::fs::File::create(&log_path).and_then(|stderr| {
        let exe = std::env::current_exe()?;
        std::process::Command::new(exe)
            .arg(DAEMON)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            // Its own process group: a Ctrl-C meant for the shell does not stop enforcement.
            .process_group(0)
            .spawn()
    });
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            eprintln!("warden: cannot start the daemon: {e}");
            return 1;
        }
    };
    let Some(stdout) = child.stdout.take() else {
        return 1;
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(READY_TIMEOUT).unwrap_or_default();
    match serde_json::from_str::<Reply>(&line) {
        Ok(reply) if reply.state == "on" => {
            let said = format!(
                "warden: enforcing ({} mode) on {} since {}, daemon pid {}\nwarden: audit log: {}",
                reply.mode, reply.cgroup, reply.since, reply.pid, reply.audit_log
            );
            if opts.print_env {
                // stdout is for `>> $GITHUB_ENV`: only NAME=VALUE lines.
                eprintln!("{said}");
                for (name, value) in &reply.env {
                    println!("{name}={value}");
                }
            } else {
                println!("{said}");
            }
            0
        }
        _ => {
            let _ = child.kill();
            let _ = child.wait();
            let why = std::fs::read_to_string(&log_path).unwrap_or_default();
            eprint!("{why}");
            eprintln!("warden: the daemon did not start; enforcement is NOT on");
            let _ = std::fs::remove_dir_all(&dir);
            1
        }
    }
}

/// `Some(exit code)` when a daemon already answers for this cgroup; a dead one's state is
/// reported and cleared.
fn refuse_if_running(dir: &Path) -> Option<i32> {
    if !dir.exists() {
        return None;
    }
    let rt = runtime()?;
    match rt.block_on(control::call(&state::socket(dir), Request::Status)) {
        Ok(reply) => {
            eprintln!(
                "warden: already enforcing on {} (daemon pid {}); `warden stop --cgroup {}` first",
                reply.cgroup, reply.pid, reply.cgroup
            );
            Some(1)
        }
        Err(_) => {
            if let Ok(st) = state::read(dir) {
                eprintln!(
                    "warden: a previous daemon (pid {}) for {} died; enforcement was lost since {}",
                    st.pid, st.cgroup, st.heartbeat
                );
                record_loss(&st);
            }
            cleanup_dead(dir);
            None
        }
    }
}

fn runtime() -> Option<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()
}

/// The daemon itself (`warden __daemon …`). Prints one JSON line on stdout when enforcement is
/// on, then serves until stopped.
pub fn daemon(opts: &StartOptions) -> i32 {
    // Every connection of the job costs the daemon descriptors: not sudo's soft limit of 1024.
    let _ = crate::run::raise_nofile();
    let Ok(rt) = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    else {
        eprintln!("warden: cannot start runtime");
        return 1;
    };
    let code = rt.block_on(async {
        match serve(opts).await {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("warden: {e}");
                1
            }
        }
    });
    rt.shutdown_timeout(Duration::from_secs(1));
    code
}

async fn serve(opts: &StartOptions) -> Result<(), String> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    let cgroup = JobCgroup::existing(opts.cgroup.as_deref()).map_err(|e| e.to_string())?;
    let dir = state::dir_for(cgroup.id());
    state::create(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let log_path = opts.audit_log.clone().unwrap_or_else(|| {
        PathBuf::from(format!(
            "warden-{}-{}.audit.jsonl",
            now_rfc3339().replace([':', '.'], ""),
            std::process::id()
        ))
    });
    let log = Arc::new(
        AuditLog::open(&log_path).map_err(|e| format!("audit log {}: {e}", log_path.display()))?,
    );
    // Block mode pins its links: if this process dies, the job's connects keep going to a port
    // nobody listens on and are refused (fail-closed) until `warden stop` removes the pins.
    let pin = (opts.policy.mode() == crate::policy::Mode::Block)
        .then(|| crate::ebpf::pin_dir(cgroup.id()));
    if let Some(dir) = &pin {
        let _ = crate::ebpf::unpin_dir(dir);
    }
    let session = Session::start(
        cgroup,
        opts.policy.clone(),
        log.clone(),
        pin.as_deref(),
        opts.dns.clone(),
        &opts.upstream_ca,
        // The daemon's state directory is Warden's own: a job that edits it is tampering.
        opts.files
            .clone()
            .map(|options| crate::session::FilesSetup {
                options,
                warden_files: vec![dir.clone()],
            }),
    )
    .await
    .map_err(|e| e.to_string())?;
    let socket = state::socket(&dir);
    let _ = std::fs::remove_file(&socket);
    let listener = UnixListener::bind(&socket).map_err(|e| format!("{}: {e}", socket.display()))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| e.to_string())?;
    }
    let readers = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_READERS));
    let log_path_for_readers = log.path().to_path_buf();
    let reader = match opts.reader_uid {
        Some(uid) => Some((bind_reader(session.cgroup().id())?, uid)),
        None => None,
    };
    let since = now_rfc3339();
    let mut st = state::State {
        pid: std::process::id(),
        cgroup: session.cgroup().path().display().to_string(),
        mode: session.info().mode.to_string(),
        since: since.clone(),
        audit_log: log.path().display().to_string(),
        heartbeat: since,
    };
    state::write(&dir, &st).map_err(|e| e.to_string())?;
    let mut on = reply(&st, &log, "on", None);
    on.env = session.job_env().to_vec();
    let mut ready = serde_json::to_string(&on).unwrap_or_default();
    ready.push('\n');
    {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(ready.as_bytes());
        let _ = out.flush();
    }

    let mut session = session;
    let mut last_error: Option<String> = None;
    let mut ticker = tokio::time::interval(HEARTBEAT);
    let stopper = loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((mut stream, _)) = accepted else { continue };
                if !control::peer_is_root(&stream) {
                    continue;
                }
                match control::read_request(&mut stream).await {
                    Some(Request::Status) => {
                        let r = reply(&st, &log, "on", last_error.clone());
                        let _ = control::write_reply(&mut stream, &r).await;
                    }
                    Some(Request::Log) => {
                        tokio::spawn(send_log(stream, reply(&st, &log, "on", last_error.clone()), log.path().to_path_buf()));
                    }
                    Some(Request::Stop) => break Some(stream),
                    None => {}
                }
            }
            Some(stream) = accept_reader(reader.as_ref()) => {
                // The job's user may be the attacker: serve it on its own task, never on the
                // loop that keeps enforcement, never take `stop` from it, and serve only a few
                // at a time (each holds a descriptor and a buffer): the rest are closed.
                if let Ok(permit) = readers.clone().try_acquire_owned() {
                    let r = reply(&st, &log, "on", last_error.clone());
                    let path = log_path_for_readers.clone();
                    tokio::spawn(async move {
                        let _permit = permit;
                        serve_reader(stream, r, path).await;
                    });
                }
            }
            _ = term.recv() => break None,
            _ = int.recv() => break None,
            _ = ticker.tick() => {
                let integrity = session.verify();
                let enforcement = |event| Some(Enforcement { event, proxy: None, files: None, job: None, ..session.info().clone() });
                match integrity {
                    Integrity::Intact => {
                        st.heartbeat = now_rfc3339();
                        let _ = state::write(&dir, &st);
                    }
                    Integrity::Recovered(what) => {
                        for event in ["lost", "recovered"] {
                            let mut r = Record::new(Kind::Enforcement);
                            r.enforcement = enforcement(event);
                            r.reason = Some(what.clone());
                            log.write(&r);
                        }
                        last_error = Some(format!("{what} (re-attached)"));
                        st.heartbeat = now_rfc3339();
                        let _ = state::write(&dir, &st);
                    }
                    Integrity::Lost(what) => {
                        if last_error.as_deref() != Some(what.as_str()) {
                            let mut r = Record::new(Kind::Enforcement);
                            r.enforcement = enforcement("lost");
                            r.reason = Some(what.clone());
                            log.write(&r);
                            last_error = Some(what);
                        }
                    }
                }
            }
        }
    };
    drop(listener);
    if reader.is_some() {
        let _ = std::fs::remove_file(state::reader_socket(session.cgroup().id()));
    }
    let handle = session.close(STOP_GRACE).await;
    drop(handle); // detaches, writes the stop record
    let mut r = reply(&st, &log, "stopped", last_error);
    r.summary = Some(log.summary().to_string());
    if let Some(mut stream) = stopper {
        let _ = control::write_reply(&mut stream, &r).await;
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Binds the read-only socket: 0666 (connecting needs write permission on it), the peer's uid
/// checked on every connection.
fn bind_reader(cgroup_id: u64) -> Result<UnixListener, String> {
    use std::os::unix::fs::PermissionsExt;
    let path = state::reader_socket(cgroup_id);
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(listener)
}

/// The next connection on the read-only socket from root or the reader; pends forever without
/// a socket.
async fn accept_reader(reader: Option<&(UnixListener, u32)>) -> Option<tokio::net::UnixStream> {
    let Some((listener, uid)) = reader else {
        return std::future::pending().await;
    };
    let (stream, _) = listener.accept().await.ok()?;
    let peer = control::peer_uid(&stream)?;
    (peer == 0 || peer == *uid).then_some(stream)
}

/// Answers one request on the read-only socket: `status` or `log`, nothing else.
async fn serve_reader(mut stream: tokio::net::UnixStream, r: Reply, log: PathBuf) {
    match control::read_request(&mut stream).await {
        Some(Request::Status) => {
            let _ = tokio::time::timeout(
                Duration::from_secs(5),
                control::write_reply(&mut stream, &r),
            )
            .await;
        }
        Some(Request::Log) => send_log(stream, r, log).await,
        _ => {}
    }
}

/// Readers served at once on the read-only socket.
const MAX_READERS: usize = 4;

/// Writes `r`, then the audit log as it is now, streamed (a large log is never held in memory).
/// Records are written whole with one `write(2)` each, so the copy ends on a record boundary
/// unless a record is being appended right now: the copy stops at the last newline.
async fn send_log(mut stream: tokio::net::UnixStream, r: Reply, log: PathBuf) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let send = async {
        control::write_reply(&mut stream, &r).await?;
        let mut file = tokio::fs::File::open(&log).await?;
        let mut left = file.metadata().await?.len();
        let mut buf = vec![0u8; 64 * 1024];
        let mut pending: Vec<u8> = Vec::new();
        while left > 0 {
            let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            let n = file.read(&mut buf[..want]).await?;
            if n == 0 {
                break;
            }
            left -= n as u64;
            pending.extend_from_slice(&buf[..n]);
            if let Some(i) = pending.iter().rposition(|&b| b == b'\n') {
                stream.write_all(&pending[..=i]).await?;
                pending.drain(..=i);
            }
        }
        stream.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(120), send).await;
}

fn reply(st: &state::State, log: &AuditLog, state: &str, last_error: Option<String>) -> Reply {
    let summary = log.summary();
    Reply {
        state: state.into(),
        pid: st.pid,
        cgroup: st.cgroup.clone(),
        mode: st.mode.clone(),
        since: st.since.clone(),
        audit_log: st.audit_log.clone(),
        connections: summary.connections(),
        blocked: summary.blocked(),
        last_error,
        lost_since: None,
        summary: None,
        env: Vec::new(),
    }
}
