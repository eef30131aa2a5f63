//! The client side of daemon mode: `warden stop` and `warden status`, and what they do when the
//! daemon is gone (report the gap, record it in the daemon's audit log, clean up its pins and
//! state).

use std::path::{Path, PathBuf};

use super::{
    control::{self, Reply, Request},
    runtime, state,
};
use crate::{
    audit::{AuditLog, Enforcement, Kind, Record},
    cgroup::JobCgroup,
};

/// Removes what a dead daemon left: its pinned links (block mode kept the job's connects refused
/// until now) and its state directory.
pub(super) fn cleanup_dead(dir: &Path) {
    if let Some(id) = dir
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("cg-"))
        .and_then(|n| n.parse::<u64>().ok())
    {
        let _ = std::fs::remove_file(state::reader_socket(id));
        if let Err(e) = crate::ebpf::unpin_dir(&crate::ebpf::pin_dir(id)) {
            eprintln!("warden: cannot remove the pinned hooks: {e}");
        }
        // A daemon that died with TLS inspection on left the CA in the trust stores.
        if let Err(e) = crate::inspection::restore_left_over(&format!("cg-{id}")) {
            eprintln!("warden: cannot restore the trust store: {e}");
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// Appends `lost` and `stop` records for a daemon that died, to its own audit log.
pub(super) fn record_loss(st: &state::State) {
    let Ok(log) = AuditLog::open(Path::new(&st.audit_log)) else {
        return;
    };
    let info = Enforcement {
        event: "lost",
        mode: if st.mode == "block" { "block" } else { "audit" },
        cgroup: st.cgroup.clone(),
        programs: Vec::new(),
        proxy: None,
        dns: None,
        inspection: None,
        lost_process_events: None,
        files: None,
        job: None,
    };
    let mut lost = Record::new(Kind::Enforcement);
    lost.time.clone_from(&st.heartbeat);
    lost.enforcement = Some(info.clone());
    lost.reason = Some(if st.mode == "block" {
        format!(
            "daemon pid {} died; since {} (its last healthy check) nothing was recorded and its \
             pinned hooks refused every connection (fail-closed) until this cleanup",
            st.pid, st.heartbeat
        )
    } else {
        format!(
            "daemon pid {} died; enforcement lost since {} (its last healthy check): connections \
             went out unrecorded (audit mode fails open)",
            st.pid, st.heartbeat
        )
    });
    log.write(&lost);
    let mut stop = Record::new(Kind::Enforcement);
    stop.enforcement = Some(Enforcement {
        event: "stop",
        ..info
    });
    stop.reason = Some("cleaned up after the daemon died".into());
    log.write(&stop);
}

/// Finds the state directory for `cgroup`, or the only one there is.
fn pick(cgroup: Option<&Path>) -> Result<PathBuf, (i32, String)> {
    if let Some(path) = cgroup {
        let c = match JobCgroup::existing(Some(path)) {
            Ok(c) => c,
            // The cgroup may be gone already: find its daemon by the path it recorded.
            Err(e) => {
                let wanted = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
                return state::all()
                    .into_iter()
                    .find(|d| state::read(d).is_ok_and(|s| Path::new(&s.cgroup) == wanted))
                    .ok_or((2, e.to_string()));
            }
        };
        let dir = state::dir_for(c.id());
        return if dir.exists() {
            Ok(dir)
        } else {
            Err((1, format!("no warden daemon for {}", c.path().display())))
        };
    }
    let mut all = state::all();
    match all.len() {
        0 => Err((1, "no warden daemon is running".into())),
        1 => Ok(all.remove(0)),
        _ => {
            let names: Vec<String> = all
                .iter()
                .filter_map(|d| state::read(d).ok().map(|s| s.cgroup))
                .collect();
            Err((
                2,
                format!(
                    "several daemons run ({}); pick one with --cgroup",
                    names.join(", ")
                ),
            ))
        }
    }
}

/// `warden stop [--cgroup PATH]`. Exit 0 stopped cleanly, 1 nothing to stop or enforcement had
/// been lost (reported, cleaned up), 2 bad input.
pub fn stop(cgroup: Option<&Path>) -> i32 {
    let dir = match pick(cgroup) {
        Ok(d) => d,
        Err((code, msg)) => {
            eprintln!("warden: {msg}");
            return code;
        }
    };
    let Some(rt) = runtime() else { return 1 };
    match rt.block_on(control::call(&state::socket(&dir), Request::Stop)) {
        // Not a dead daemon: a caller that is not root (the job's user after `disable-sudo`).
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            eprintln!("warden: only root can stop Warden ({e})");
            1
        }
        Ok(r) => {
            if let Some(s) = &r.summary {
                eprint!("warden: {} mode, {s}", r.mode);
            }
            if let Some(e) = &r.last_error {
                eprintln!("warden: WARNING: enforcement was impaired: {e}");
            }
            eprintln!("warden: stopped; audit log: {}", r.audit_log);
            i32::from(r.last_error.is_some())
        }
        Err(e) => {
            let st = state::read(&dir).ok();
            match &st {
                Some(st) => {
                    eprintln!(
                        "warden: enforcement was LOST: daemon pid {} for {} is gone ({e}); last healthy check {}",
                        st.pid, st.cgroup, st.heartbeat
                    );
                    record_loss(st);
                    eprintln!("warden: cleaned up; audit log: {}", st.audit_log);
                }
                None => eprintln!("warden: daemon state unreadable in {}: {e}", dir.display()),
            }
            cleanup_dead(&dir);
            1
        }
    }
}

/// `warden status [--json] [--cgroup PATH]`. Exit 0 when on, 1 when off or lost.
pub fn status(cgroup: Option<&Path>, json: bool) -> i32 {
    let dir = match pick(cgroup) {
        Ok(d) => d,
        Err((code, msg)) => {
            let state = if code == 1 { "off" } else { "error" };
            if json {
                println!("{}", serde_json::json!({ "state": state, "error": msg }));
            } else {
                println!("warden: {state} ({msg})");
            }
            return code;
        }
    };
    let Some(rt) = runtime() else { return 1 };
    let r = match rt.block_on(control::call(&state::socket(&dir), Request::Status)) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            eprintln!(
                "warden: only root can ask the control socket ({e}); `warden log --cgroup` serves the daemon's reader"
            );
            return 1;
        }
        Err(_) => {
            let st = state::read(&dir).ok();
            Reply {
                state: "lost".into(),
                pid: st.as_ref().map_or(0, |s| s.pid),
                cgroup: st.as_ref().map(|s| s.cgroup.clone()).unwrap_or_default(),
                mode: st.as_ref().map(|s| s.mode.clone()).unwrap_or_default(),
                since: st.as_ref().map(|s| s.since.clone()).unwrap_or_default(),
                audit_log: st.as_ref().map(|s| s.audit_log.clone()).unwrap_or_default(),
                lost_since: st.as_ref().map(|s| s.heartbeat.clone()),
                last_error: Some("the daemon is not running".into()),
                ..Reply::default()
            }
        }
    };
    if json {
        println!("{}", serde_json::to_string(&r).unwrap_or_default());
    } else if r.state == "on" {
        println!(
            "warden: on ({} mode) since {} on {}, daemon pid {}",
            r.mode, r.since, r.cgroup, r.pid
        );
        println!(
            "warden: {} connection(s), {} blocked; audit log: {}",
            r.connections, r.blocked, r.audit_log
        );
        if let Some(e) = &r.last_error {
            println!("warden: last error: {e}");
        }
    } else {
        let effect = if r.mode == "block" {
            "its pinned hooks refuse every connection from the cgroup (fail-closed) and nothing is recorded"
        } else {
            "connections go out unrecorded (audit mode fails open)"
        };
        println!(
            "warden: LOST: the daemon (pid {}) for {} ({} mode) is gone since {}; {effect}; run `warden stop` to clean up",
            r.pid,
            r.cgroup,
            r.mode,
            r.lost_since.as_deref().unwrap_or("?"),
        );
    }
    i32::from(r.state != "on")
}

/// `warden log [--cgroup PATH] [--output FILE]`: the daemon's audit log so far, written to FILE
/// (created 0600) or stdout, and its state on stderr. Works for the daemon's `--reader-uid`
/// (over the read-only socket; it must name the cgroup, since `/run/warden` is not listable)
/// as for root. Exit 0 when the log was copied, 1 when not, 2 for bad input.
pub fn log(cgroup: Option<&Path>, output: Option<&Path>) -> i32 {
    let socket = match log_socket(cgroup) {
        Ok(s) => s,
        Err((code, msg)) => {
            eprintln!("warden: {msg}");
            return code;
        }
    };
    let Some(rt) = runtime() else { return 1 };
    let fetched = rt.block_on(async {
        match output {
            Some(path) => {
                use std::os::unix::fs::OpenOptionsExt;
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(path)
                    .map_err(|e| {
                        std::io::Error::new(e.kind(), format!("{}: {e}", path.display()))
                    })?;
                let mut file = tokio::fs::File::from_std(file);
                let r = control::fetch_log(&socket, &mut file).await?;
                tokio::io::AsyncWriteExt::flush(&mut file).await?;
                Ok::<_, std::io::Error>(r)
            }
            None => control::fetch_log(&socket, &mut tokio::io::stdout()).await,
        }
    });
    match fetched {
        Ok(r) => {
            let impaired = r
                .last_error
                .as_deref()
                .map(|e| format!("; last error: {e}"))
                .unwrap_or_default();
            eprintln!(
                "warden: log of the daemon for {} ({} mode, {}, {} connection(s), {} blocked{impaired})",
                r.cgroup, r.mode, r.state, r.connections, r.blocked
            );
            0
        }
        Err(e) => {
            eprintln!(
                "warden: cannot fetch the log from {}: {e}",
                socket.display()
            );
            1
        }
    }
}

/// The socket `warden log` asks: the read-only one when the daemon has it, else (root) the
/// control socket.
fn log_socket(cgroup: Option<&Path>) -> Result<PathBuf, (i32, String)> {
    let id = match cgroup {
        Some(path) => JobCgroup::existing(Some(path))
            .map_err(|e| (2, e.to_string()))?
            .id(),
        None => {
            let dir = pick(None)?;
            return Ok(state::socket(&dir));
        }
    };
    let reader = state::reader_socket(id);
    if reader.exists() {
        Ok(reader)
    } else {
        Ok(state::socket(&state::dir_for(id)))
    }
}
