//! Where daemons keep their state: one root-only directory per enforced cgroup.
//!
//! `/run/warden/cg-<cgroup id>/` holds `state.json` (what `status` reports when the daemon
//! cannot answer, including when it was last seen alive) and `control.sock`. Keying by cgroup id
//! lets several daemons run for different cgroups and lets `stop`/`status --cgroup PATH` find
//! theirs; with a single daemon no flag is needed.

use std::{
    fs, io,
    os::unix::fs::{DirBuilderExt, PermissionsExt},
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

/// The root of all daemons' state (root-only, 0700).
pub const RUN_DIR: &str = "/run/warden";

/// What a daemon wrote about itself.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct State {
    /// The daemon's pid.
    pub pid: u32,
    /// The cgroup it enforces on.
    pub cgroup: String,
    /// `audit` or `block`.
    pub mode: String,
    /// When enforcement started (RFC 3339).
    pub since: String,
    /// The audit log.
    pub audit_log: String,
    /// Last time the daemon checked its enforcement and found it intact (RFC 3339).
    pub heartbeat: String,
}

/// The state directory of the daemon for cgroup `id`.
pub fn dir_for(id: u64) -> PathBuf {
    Path::new(RUN_DIR).join(format!("cg-{id}"))
}

/// The control socket in a state directory.
pub fn socket(dir: &Path) -> PathBuf {
    dir.join("control.sock")
}

/// The read-only socket of the daemon for cgroup `id`: outside the root-only state directory,
/// so that the one non-root user the daemon names (`start --reader-uid`, the job's user once
/// `disable-sudo` took root away) can fetch the audit log and status, and nothing else.
pub fn reader_socket(id: u64) -> PathBuf {
    Path::new(RUN_DIR).join(format!("log-cg-{id}.sock"))
}

/// Creates the state directory (and `/run/warden`), root-only. `/run/warden` itself is 0711: not
/// listable, but traversable, so the job's non-root users can read the CA bundles TLS
/// inspection puts under `/run/warden/trust-*/bundles/`.
pub fn create(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    fs::set_permissions(RUN_DIR, fs::Permissions::from_mode(0o711))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
}

/// Writes `state.json` atomically (write, then rename).
pub fn write(dir: &Path, state: &State) -> io::Result<()> {
    let tmp = dir.join("state.json.tmp");
    fs::write(
        &tmp,
        serde_json::to_vec_pretty(state).map_err(io::Error::other)?,
    )?;
    fs::rename(tmp, dir.join("state.json"))
}

/// Reads `state.json`.
pub fn read(dir: &Path) -> io::Result<State> {
    let text = fs::read(dir.join("state.json"))?;
    serde_json::from_slice(&text).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Every daemon state directory there is.
pub fn all() -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(RUN_DIR) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("cg-"))
        })
        .collect();
    dirs.sort();
    dirs
}
