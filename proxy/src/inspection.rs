//! Setting TLS inspection up for a session: the job's ephemeral CA, the roots servers are
//! verified against, and the trust the job's clients are given.
//!
//! The CA is made when the session starts and lives in memory only; its certificate is added to
//! the machine's trust store and to bundles the job's runtimes read (`certs::trust`), which
//! are restored byte for byte when the session ends. Servers are verified against the roots as
//! they were **before** that (the system bundle and the bundle `SSL_CERT_FILE` named: a corporate
//! runner's own roots), plus `--upstream-ca` files.

use std::{collections::HashMap, path::PathBuf, sync::Arc};

use certs::trust::{self, Installed, Layout};
use rustls::{pki_types::CertificateDer, sign::CertifiedKey};

use crate::{
    policy::Policy,
    proxy::inspect::{self, Inspector, Leaves},
};

/// Errors setting inspection up: Warden's or the machine's, never the job's.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The CA or the leaf key could not be made.
    #[error("ephemeral CA: {0}")]
    Ca(#[from] certs::Error),
    /// A `--upstream-ca` file could not be read.
    #[error("--upstream-ca {path}: {detail}")]
    UpstreamCa {
        /// The file.
        path: String,
        /// What went wrong.
        detail: String,
    },
    /// The inspector refused its configuration.
    #[error(transparent)]
    Inspect(#[from] inspect::Error),
    /// The CA could not be made trusted (nothing was left changed).
    #[error("trust store: {0}")]
    Trust(#[from] trust::Error),
}

/// Mints through the certs crate's cache.
struct Minted(Arc<certs::Minter>);

impl Leaves for Minted {
    fn leaf(&self, server_name: &str) -> Result<Arc<CertifiedKey>, String> {
        self.0.leaf(server_name).map_err(|e| e.to_string())
    }
}

/// A session's inspection: the inspector the proxy uses and the trust the job was given.
pub struct Setup {
    /// What the proxy calls for each TLS connection.
    pub inspector: Arc<Inspector>,
    /// The CA's subject, for records and logs.
    pub ca_name: String,
    /// The trust-store changes, undone when dropped (or by `restore`).
    pub installed: Installed,
}

impl Setup {
    /// Variables the job's processes must see: each CA bundle Warden wrote.
    pub fn job_env(&self) -> Vec<(String, String)> {
        self.installed
            .env()
            .iter()
            .map(|(k, v)| (k.clone(), v.display().to_string()))
            .collect()
    }
}

/// Makes the CA, makes the machine and the job trust it (undone when the returned [`Setup`]'s
/// `installed` is restored or dropped), and builds the inspector for `policy`. `id` names the
/// trust state (`/run/warden/trust-<id>`); a daemon uses its cgroup's so that a later
/// `warden stop` or cleanup finds it.
pub fn setup(policy: &Arc<Policy>, upstream_ca: &[PathBuf], id: &str) -> Result<Setup, Error> {
    let mut extra = Vec::new();
    for path in upstream_ca {
        let pem = std::fs::read(path).map_err(|e| Error::UpstreamCa {
            path: path.display().to_string(),
            detail: e.to_string(),
        })?;
        let certs = parse_pem(&pem);
        if certs.is_empty() {
            return Err(Error::UpstreamCa {
                path: path.display().to_string(),
                detail: "no PEM certificate in it".into(),
            });
        }
        extra.extend(certs);
    }
    let minter = Arc::new(certs::Minter::new(certs::Authority::ephemeral()?)?);
    let ca_pem = minter.authority().cert_pem();
    let ca_name = minter.authority().common_name().to_string();
    let layout = Layout::system();
    restore_dead_runs(&layout);
    let env: HashMap<String, String> = std::env::vars().collect();
    let installed = match trust::install(&ca_pem, &layout, &env, id) {
        Err(trust::Error::StateExists(_)) => {
            // Left by a session that died: undo it, then install afresh.
            trust::restore_from(&layout.state_dir(id))?;
            trust::install(&ca_pem, &layout, &env, id)?
        }
        other => other?,
    };
    // Servers are verified against the roots as they were before Warden's CA.
    let mut roots = installed.roots_before()?;
    roots.extend(extra);
    let inspector = Inspector::new(Arc::new(Minted(minter)), roots, policy.clone())?;
    Ok(Setup {
        inspector: Arc::new(inspector),
        ca_name,
        installed,
    })
}

/// Undoes what `warden run`s that were killed (SIGKILL, OOM) left in the trust stores: their
/// state is `trust-run-<pid>-…` and their pid is gone. (Daemons' are undone by `warden stop` or
/// the cleanup that notices a dead daemon.)
fn restore_dead_runs(layout: &Layout) {
    let Ok(entries) = std::fs::read_dir(&layout.state_root) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("trust-run-")
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if std::path::Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        match trust::restore_from(&entry.path()) {
            Ok(()) => {
                tracing::warn!(state = %entry.path().display(), "restored the trust stores a killed warden run left changed")
            }
            Err(e) => tracing::error!(error = %e, "cannot restore what a killed warden run left"),
        }
    }
}

/// Undoes the trust-store changes a session with `id` left (its process died).
pub fn restore_left_over(id: &str) -> Result<(), trust::Error> {
    trust::restore_from(&Layout::system().state_dir(id))
}

fn parse_pem(pem: &[u8]) -> Vec<CertificateDer<'static>> {
    rustls_pemfile::certs(&mut &pem[..])
        .filter_map(Result::ok)
        .collect()
}
