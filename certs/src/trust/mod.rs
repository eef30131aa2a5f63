//! Making the session's CA trusted without user steps, and undoing it byte for byte at stop.
//!
//! A job only accepts Warden's certificates if every client in it trusts Warden's CA, and there
//! is no single place where "every client" looks. [`install`] therefore covers the places the
//! common runtimes read, and records everything it changed in a journal so that [`restore`]
//! (from this process, from a later `warden stop`, or after a crash) puts each file back:
//!
//! - **System bundles** (Debian/Ubuntu `/etc/ssl/certs/ca-certificates.crt`; RHEL-style
//!   `/etc/pki/tls/certs/ca-bundle.crt` and `/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem`
//!   where present): the CA is appended to the file clients read, after a byte-for-byte backup.
//!   A bundle path that is a symlink is resolved: the *target* is backed up, appended to and
//!   restored, and the link is left alone; two paths reaching one target are changed once.
//! - **Nothing in the anchor directories** (`/usr/local/share/ca-certificates`,
//!   `/etc/pki/ca-trust/source/anchors`), and `update-ca-certificates` is never run: a file there
//!   left behind by a crash would be trusted again by the next run of the store's tool, long after
//!   the key is gone, and re-running the tool at stop drops certificates added by hand. The cost:
//!   a job that itself runs the store's tool rebuilds the bundle without Warden's CA (its clients
//!   then fail loudly instead of trusting silently); the variables below still name Warden's
//!   own bundles, which the tool does not touch.
//! - **Environment variables** ([`VARIABLES`], and [`EXTEND_IF_SET`] when the runner set them):
//!   each gets a new bundle in the state directory holding the certificates of the file the
//!   variable named before (or the system bundle *as it was before*, if unset or unusable)
//!   followed by the CA, so a corporate bundle keeps working. Only certificate blocks are copied
//!   from a variable's file: Warden reads it as root and the bundle is world-readable.
//!   `NODE_EXTRA_CA_CERTS` is added to Node's own roots, so its bundle is the previous extra
//!   certificates (if any) and the CA only. `SSL_CERT_DIR` is left alone: OpenSSL reads the file
//!   as well as the directory.
//! - **Java keystores** (`cacerts` of `JAVA_HOME`, `JAVA_HOME_*` and `java` on `PATH`): the CA is
//!   imported with `keytool` after a backup. A keytool failure is a warning, never a failed
//!   install: Java clients are the least common, and the rest of inspection still works.
//!
//! Restore never re-runs a store's tool. A file nobody else touched is cut back to its backup's
//! length, which makes it byte-identical (and this is checked). A file someone else changed while
//! Warden ran (another session, a package upgrade) gets only Warden's own block removed, so two
//! overlapping sessions stopping in either order still leave the original bytes, and neither
//! leaves the other's CA behind; a file whose Warden block is gone is left as it is. Either case
//! is logged. File modes are restored; modification times are not, on purpose, so caches keyed on
//! them reload.
//!
//! The state directory, `<state_root>/trust-<id>/` (default `/run/warden`, gone at reboot like
//! the CA's key):
//!
//! ```text
//! trust-<id>/            0755
//!   journal              0600  one line per change, written before the change is made
//!   backup/              0700  n.orig (bytes before), n.added (bytes appended), n.after (Java)
//!   bundles/             0755  ca.pem, roots-before.pem, <VARIABLE>.pem: 0644, the job may run
//!                              as another user
//! ```
//!
//! ```no_run
//! # use std::collections::HashMap;
//! let ca = certs::Authority::generate("Warden job CA").unwrap();
//! let env: HashMap<String, String> = std::env::vars().collect();
//! let layout = certs::trust::Layout::system();
//! let installed = certs::trust::install(&ca.cert_pem(), &layout, &env, "cg-1234").unwrap();
//! print!("{}", installed.print_env()); // for $GITHUB_ENV
//! let dir = installed.keep(); // a later `warden stop` calls restore_from(&dir)
//! certs::trust::restore_from(&dir).unwrap();
//! ```
//!
//! [`restore`]: Installed::restore

use std::path::{Path, PathBuf};

mod env;
mod files;
mod install;
mod installed;
mod java;
mod journal;
mod system;

#[cfg(test)]
mod tests;

pub use env::{EXTEND_IF_SET, VARIABLES};
pub use install::install;
pub use installed::{Installed, restore_from};
pub use java::{Java, Keystore, discover_java};

/// Where the trust stores and Warden's own state live. [`Layout::system`] is the real machine;
/// tests point every path into a temporary directory.
#[derive(Debug, Clone)]
pub struct Layout {
    /// System CA bundles, in order of preference; the first that exists is "the system bundle"
    /// that unset variables extend. Missing ones are skipped; symlinks are followed.
    pub bundles: Vec<PathBuf>,
    /// Which Java keystores to import into.
    pub java: Java,
    /// Where `trust-<id>/` is created.
    pub state_root: PathBuf,
}

impl Layout {
    /// The real paths: Debian/Ubuntu and RHEL-style bundles, Java found from the environment,
    /// state under `/run/warden`.
    pub fn system() -> Layout {
        Layout {
            bundles: vec![
                "/etc/ssl/certs/ca-certificates.crt".into(),
                "/etc/pki/tls/certs/ca-bundle.crt".into(),
                "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem".into(),
            ],
            java: Java::Discover,
            state_root: "/run/warden".into(),
        }
    }

    /// The state directory a session with this id uses.
    pub fn state_dir(&self, id: &str) -> PathBuf {
        self.state_root.join(format!("trust-{id}"))
    }
}

/// What went wrong while installing or restoring. [`Error::InvalidId`], [`Error::InvalidCa`] and
/// [`Error::StateExists`] are the caller's doing; the rest come from the host (a file that cannot
/// be read or written, a damaged journal).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The session id cannot be used in file names and aliases.
    #[error("invalid session id {0:?}: use 1 to 64 of A-Z a-z 0-9 . _ -, not starting with a dot")]
    InvalidId(String),
    /// The CA given is not exactly one PEM certificate.
    #[error("the CA to install is not exactly one PEM certificate")]
    InvalidCa,
    /// A session with this id is installed, or crashed and awaits [`restore_from`].
    #[error("trust state {} already exists; restore it first", .0.display())]
    StateExists(PathBuf),
    /// A file operation failed.
    #[error("cannot {op} {}", path.display())]
    Io {
        /// What was being done, e.g. "append the CA to".
        op: &'static str,
        /// The file it was done to.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// `keytool` could not take Warden's CA out of a keystore that others changed too.
    #[error("keytool cannot remove Warden's CA from {}: {detail}", path.display())]
    Keytool {
        /// The keystore.
        path: PathBuf,
        /// What keytool said.
        detail: String,
    },
    /// The journal cannot be understood.
    #[error("{}:{line}: {reason}", path.display())]
    BadJournal {
        /// The journal file.
        path: PathBuf,
        /// The 1-based line.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// Install failed, and undoing what it had done failed too.
    #[error("{cause}; rolling back also failed: {rollback}")]
    RollbackFailed {
        /// Why install failed.
        cause: Box<Error>,
        /// Why the rollback failed; its state directory is kept for `restore_from`.
        rollback: Box<Error>,
    },
    /// Some changes could not be undone; the state directory is kept so a retry can finish.
    #[error("{} change(s) not undone, state kept in {}: {}", errors.len(), state_dir.display(), list(errors))]
    Incomplete {
        /// The state directory to retry with.
        state_dir: PathBuf,
        /// One error per change not undone.
        errors: Vec<Error>,
    },
}

fn list(errors: &[Error]) -> String {
    let all: Vec<String> = errors.iter().map(full).collect();
    all.join("; ")
}

/// An error with its sources, for logs and for [`Error::Incomplete`]'s message.
fn full(e: &Error) -> String {
    let mut out = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// Session ids become file names and keytool aliases, so only a safe alphabet is accepted.
fn check_id(id: &str) -> Result<(), Error> {
    let ok = (1..=64).contains(&id.len())
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidId(id.to_owned()))
    }
}

/// The state directory's fixed names.
fn backup_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("backup")
}

fn bundle_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("bundles")
}
