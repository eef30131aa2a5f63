//! Setting TLS inspection up for a session: the job's ephemeral CA, the roots servers are
//! verified against, and the trust the job's clients are given.
//!
//! The CA is made when the session starts and lives in memory only; its certificate is added to
//! the machine's trust store and to bundles the job's runtimes read (`certs::trust`), which
//! are restored byte for byte when the session ends. Servers are verified against the roots as
//! they were **before** that: the system bundle and the bundle `SSL_CERT_FILE` named (a
//! corporate runner's own roots), plus `--upstream-ca` files.

use std::{path::PathBuf, sync::Arc};

use rustls::{pki_types::CertificateDer, sign::CertifiedKey};

use crate::{
    policy::Policy,
    proxy::inspect::{self, Inspector, Leaves},
};

/// The system bundle on Debian/Ubuntu, and on RHEL-like systems.
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
];

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
}

/// Mints through the certs crate's cache.
struct Minted(Arc<certs::Minter>);

impl Leaves for Minted {
    fn leaf(&self, server_name: &str) -> Result<Arc<CertifiedKey>, String> {
        self.0.leaf(server_name).map_err(|e| e.to_string())
    }
}

/// A session's inspection: the inspector the proxy uses and the CA the job must trust.
pub struct Setup {
    /// What the proxy calls for each TLS connection.
    pub inspector: Arc<Inspector>,
    /// The CA certificate, PEM.
    pub ca_pem: String,
    /// The CA's subject, for records and logs.
    pub ca_name: String,
}

/// Makes the CA and the inspector for `policy` (inspection must be enabled in it).
pub fn setup(policy: &Policy, upstream_ca: &[PathBuf]) -> Result<Setup, Error> {
    let minter = Arc::new(certs::Minter::new(certs::Authority::ephemeral()?)?);
    let ca_pem = minter.authority().cert_pem();
    let ca_name = minter.authority().common_name().to_string();
    let mut roots = roots_before();
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
        roots.extend(certs);
    }
    let inspector = Inspector::new(
        Arc::new(Minted(minter)),
        roots,
        policy.inspection().no_inspect.clone(),
    )?;
    Ok(Setup {
        inspector: Arc::new(inspector),
        ca_pem,
        ca_name,
    })
}

/// The roots the machine's clients trust now (before Warden's CA is added): the system bundle
/// and whatever `SSL_CERT_FILE` names.
fn roots_before() -> Vec<CertificateDer<'static>> {
    let mut files: Vec<PathBuf> = SYSTEM_BUNDLES.iter().map(PathBuf::from).collect();
    if let Some(extra) = std::env::var_os("SSL_CERT_FILE") {
        files.push(PathBuf::from(extra));
    }
    files
        .iter()
        .filter_map(|f| std::fs::read(f).ok())
        .flat_map(|pem| parse_pem(&pem))
        .collect()
}

fn parse_pem(pem: &[u8]) -> Vec<CertificateDer<'static>> {
    rustls_pemfile::certs(&mut &pem[..])
        .filter_map(Result::ok)
        .collect()
}
