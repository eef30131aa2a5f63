//! An installed CA: what the job is told, and how it is undone.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use rustls::pki_types::CertificateDer;

use super::files::{self, io};
use super::install::{CA_FILE, ROOTS_FILE};
use super::journal::{self, Entry};
use super::{Error, Keystore, bundle_dir, java, system};

/// The CA as installed by [`install`](super::install), or as found in a state directory by
/// [`Installed::load`]. Whoever holds it is responsible for undoing it: [`Installed::restore`]
/// explicitly, on drop as a best effort, or hand the duty on with [`Installed::keep`].
#[derive(Debug)]
pub struct Installed {
    id: String,
    dir: PathBuf,
    entries: Vec<Entry>,
    env: Vec<(String, PathBuf)>,
    armed: bool,
}

/// Undoes the session whose state is in `state_dir` (from [`Installed::keep`], another process,
/// or a crash). Nothing to do, and `Ok`, if it was already restored.
pub fn restore_from(state_dir: &Path) -> Result<(), Error> {
    match fs::symlink_metadata(state_dir.join(journal::NAME)) {
        Ok(_) => Installed::load(state_dir)?.restore(),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            // Install stopped before its journal existed, so it changed nothing.
            match fs::remove_dir_all(state_dir) {
                Err(e) if e.kind() != ErrorKind::NotFound => Err(io("remove", state_dir)(e)),
                _ => Ok(()),
            }
        }
        Err(e) => Err(io("inspect", state_dir)(e)),
    }
}

impl Installed {
    pub(super) fn empty(id: &str, dir: PathBuf) -> Installed {
        Installed {
            id: id.to_owned(),
            dir,
            entries: Vec::new(),
            env: Vec::new(),
            armed: true,
        }
    }

    pub(super) fn push(&mut self, entry: Entry) {
        if let Entry::Env { name, bundle } = &entry {
            self.env.push((name.clone(), self.dir.join(bundle)));
        }
        self.entries.push(entry);
    }

    /// Reads the state a session left in `state_dir`. The result owns the installation: dropping
    /// it restores, unless it is [`kept`](Installed::keep).
    pub fn load(state_dir: &Path) -> Result<Installed, Error> {
        let dir = std::path::absolute(state_dir).map_err(io("resolve", state_dir))?;
        let (id, entries) = journal::load(&dir)?;
        let mut installed = Installed::empty(&id, dir);
        for entry in entries {
            installed.push(entry);
        }
        Ok(installed)
    }

    /// The session id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The state directory, for [`restore_from`].
    pub fn state_dir(&self) -> &Path {
        &self.dir
    }

    /// The variables to set for the job, each naming its bundle (world-readable).
    pub fn env(&self) -> &[(String, PathBuf)] {
        &self.env
    }

    /// [`env`](Installed::env) as `NAME=VALUE` lines, for `warden start --print-env` and
    /// `$GITHUB_ENV`.
    pub fn print_env(&self) -> String {
        self.env
            .iter()
            .map(|(name, path)| format!("{name}={}\n", path.display()))
            .collect()
    }

    /// The CA certificate alone, PEM (world-readable).
    pub fn ca_path(&self) -> PathBuf {
        bundle_dir(&self.dir).join(CA_FILE)
    }

    /// A PEM bundle of the roots as they were before Warden's CA: the system bundle, and the
    /// bundle `SSL_CERT_FILE` named if that was another one. What the proxy verifies real
    /// servers against.
    pub fn roots_before_path(&self) -> PathBuf {
        bundle_dir(&self.dir).join(ROOTS_FILE)
    }

    /// The certificates of [`roots_before_path`](Installed::roots_before_path), each once; PEM
    /// blocks that do not parse are skipped.
    pub fn roots_before(&self) -> Result<Vec<CertificateDer<'static>>, Error> {
        let bytes = files::read(&self.roots_before_path())?;
        let mut roots: Vec<CertificateDer<'static>> = Vec::new();
        for cert in rustls_pemfile::certs(&mut bytes.as_slice()).flatten() {
            if !roots.contains(&cert) {
                roots.push(cert);
            }
        }
        Ok(roots)
    }

    /// The files outside the state directory that were changed: bundles and keystores.
    pub fn modified(&self) -> Vec<&Path> {
        self.entries
            .iter()
            .filter_map(|e| match e {
                Entry::Bundle { target, .. } => Some(target.as_path()),
                Entry::Java { cacerts, .. } => Some(cacerts.as_path()),
                Entry::Env { .. } => None,
            })
            .collect()
    }

    /// Leaves the CA installed past this value's life, and returns the state directory a later
    /// [`restore_from`] needs.
    pub fn keep(mut self) -> PathBuf {
        self.armed = false;
        self.dir.clone()
    }

    /// Puts every changed file back and removes the state directory. If some change cannot be
    /// undone, the others still are, and the state directory is kept for a retry.
    pub fn restore(mut self) -> Result<(), Error> {
        self.armed = false;
        self.undo()
    }

    /// Undoes a failed install; returns the error to report.
    pub(super) fn roll_back(mut self, cause: Error) -> Error {
        self.armed = false;
        match self.undo() {
            Ok(()) => cause,
            Err(rollback) => Error::RollbackFailed {
                cause: Box::new(cause),
                rollback: Box::new(rollback),
            },
        }
    }

    fn undo(&mut self) -> Result<(), Error> {
        let errors: Vec<Error> = self
            .entries
            .iter()
            .rev()
            .filter_map(|e| self.undo_one(e).err())
            .collect();
        if !errors.is_empty() {
            return Err(Error::Incomplete {
                state_dir: self.dir.clone(),
                errors,
            });
        }
        match fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(io("remove", &self.dir)(e)),
            _ => Ok(()),
        }
    }

    fn undo_one(&self, entry: &Entry) -> Result<(), Error> {
        let read = |rel: &Path| files::read(&self.dir.join(rel));
        match entry {
            Entry::Bundle {
                mode,
                target,
                backup,
                added,
            } => system::restore(target, *mode, &read(backup)?, &read(added)?),
            Entry::Java {
                mode,
                cacerts,
                backup,
                after,
                keytool,
                alias,
            } => {
                let ks = Keystore {
                    cacerts: cacerts.clone(),
                    keytool: keytool.clone(),
                };
                let after = fs::read(self.dir.join(after)).ok();
                java::restore(&ks, *mode, alias, &read(backup)?, after.as_deref())
            }
            // The bundle is in the state directory, which goes as a whole.
            Entry::Env { .. } => Ok(()),
        }
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        tracing::warn!(state = %self.dir.display(), "Warden's CA was not restored explicitly: restoring now");
        if let Err(e) = self.undo() {
            tracing::error!(error = %super::full(&e), "could not restore the trust stores");
        }
    }
}
