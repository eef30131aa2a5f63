//! The install sequence. Each step that changes a file outside the state directory first writes
//! a backup and a journal entry, so that a failure at any point (or a crash) can be undone.

use std::collections::HashMap;
use std::fs::{self, DirBuilder};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use rustls_pemfile::Item;

use super::files::{self, io};
use super::journal::{Entry, Journal};
use super::{Error, Installed, Java, Keystore, Layout, backup_dir, bundle_dir, check_id};
use super::{discover_java, env, java, system};

/// The CA's own file, and the roots as they were before it, in `bundles/`.
pub(super) const CA_FILE: &str = "ca.pem";
pub(super) const ROOTS_FILE: &str = "roots-before.pem";

/// Makes `ca_pem` trusted system-wide, in bundles for the variables of `env` (the environment
/// the job will run with), and in Java keystores, as the module documentation describes; `id`
/// names this session (`A-Z a-z 0-9 . _ -`) in file names and keytool aliases.
///
/// On error, everything already changed is put back and the state directory removed.
pub fn install(
    ca_pem: &str,
    layout: &Layout,
    env: &HashMap<String, String>,
    id: &str,
) -> Result<Installed, Error> {
    check_id(id)?;
    let ca = checked_pem(ca_pem)?;
    let state_dir =
        std::path::absolute(layout.state_dir(id)).map_err(io("resolve", &layout.state_root))?;
    if fs::symlink_metadata(&state_dir).is_ok() {
        return Err(Error::StateExists(state_dir));
    }
    if !layout.state_root.exists() {
        DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&layout.state_root)
            .map_err(io("create the directory", &layout.state_root))?;
        files::set_mode(&layout.state_root, 0o755)?;
    } else if files::mode(&layout.state_root)? & 0o001 == 0 {
        tracing::warn!(
            path = %layout.state_root.display(),
            "not searchable by other users: a job running as another user cannot read the bundles"
        );
    }
    files::create_dir(&state_dir, 0o755)?;
    let mut installed = Installed::empty(id, state_dir);
    match Steps::new(&mut installed, &ca).and_then(|mut s| s.run(layout, env)) {
        Ok(()) => Ok(installed),
        Err(cause) => Err(installed.roll_back(cause)),
    }
}

/// `pem` if it is exactly one certificate, ending in a line break.
fn checked_pem(pem: &str) -> Result<String, Error> {
    let items: Result<Vec<Item>, _> = rustls_pemfile::read_all(&mut pem.as_bytes()).collect();
    match items.as_deref() {
        Ok([Item::X509Certificate(_)]) => Ok(format!("{}\n", pem.trim_end())),
        _ => Err(Error::InvalidCa),
    }
}

struct Steps<'a> {
    installed: &'a mut Installed,
    journal: Journal,
    dir: PathBuf,
    ca: &'a str,
}

impl<'a> Steps<'a> {
    fn new(installed: &'a mut Installed, ca: &'a str) -> Result<Steps<'a>, Error> {
        let dir = installed.state_dir().to_owned();
        let journal = Journal::create(&dir, installed.id())?;
        files::create_dir(&backup_dir(&dir), 0o700)?;
        files::create_dir(&bundle_dir(&dir), 0o755)?;
        Ok(Steps {
            installed,
            journal,
            dir,
            ca,
        })
    }

    fn run(&mut self, layout: &Layout, env: &HashMap<String, String>) -> Result<(), Error> {
        // Everything is read before anything is changed: a variable may name a system bundle.
        let originals = system::read_bundles(&layout.bundles)?;
        let system_before = originals.first().map(|o| o.bytes.as_slice());
        if system_before.is_none() {
            tracing::warn!(
                "no system CA bundle found: variables unset before trust only Warden's CA"
            );
        }
        let bases = env::bases(env, system_before);
        files::create(
            &bundle_dir(&self.dir).join(CA_FILE),
            self.ca.as_bytes(),
            0o644,
        )?;
        let roots = roots_before(system_before.unwrap_or_default(), &bases);
        files::create(&bundle_dir(&self.dir).join(ROOTS_FILE), &roots, 0o644)?;
        for (name, base) in bases {
            self.variable(name, base)?;
        }
        for (n, original) in originals.iter().enumerate() {
            self.bundle(n, original)?;
        }
        let keystores = match &layout.java {
            Java::Discover => discover_java(env),
            Java::Keystores(listed) => listed.clone(),
        };
        for (n, ks) in keystores.iter().enumerate() {
            self.keystore(n, ks)?;
        }
        Ok(())
    }

    fn record(&mut self, entry: Entry) -> Result<(), Error> {
        self.journal.append(&entry)?;
        self.installed.push(entry);
        Ok(())
    }

    fn variable(&mut self, name: &str, mut bytes: Vec<u8>) -> Result<(), Error> {
        let rel = Path::new("bundles").join(format!("{name}.pem"));
        bytes.extend(system::block(&bytes, self.ca, self.installed.id()));
        files::create(&self.dir.join(&rel), &bytes, 0o644)?;
        self.record(Entry::Env {
            name: name.to_owned(),
            bundle: rel,
        })
    }

    fn bundle(&mut self, n: usize, original: &system::Original) -> Result<(), Error> {
        let block = system::block(&original.bytes, self.ca, self.installed.id());
        let backup = Path::new("backup").join(format!("{n}.orig"));
        let added = Path::new("backup").join(format!("{n}.added"));
        files::create(&self.dir.join(&backup), &original.bytes, 0o600)?;
        files::create(&self.dir.join(&added), &block, 0o600)?;
        self.record(Entry::Bundle {
            mode: original.mode,
            target: original.target.clone(),
            backup,
            added,
        })?;
        files::append(&original.target, &block)
    }

    /// Imports into one keystore. Only a failure to keep Warden's own records, or to undo a
    /// failed import, is an error; an import keytool refuses is a warning.
    fn keystore(&mut self, n: usize, ks: &Keystore) -> Result<(), Error> {
        let (bytes, mode) =
            match files::read(&ks.cacerts).and_then(|b| Ok((b, files::mode(&ks.cacerts)?))) {
                Ok(read) => read,
                Err(e) => {
                    tracing::warn!(error = %e, "Java will not trust Warden's CA");
                    return Ok(());
                }
            };
        let backup = Path::new("backup").join(format!("java{n}.orig"));
        let after = Path::new("backup").join(format!("java{n}.after"));
        let alias = java::alias(self.installed.id());
        files::create(&self.dir.join(&backup), &bytes, 0o600)?;
        self.record(Entry::Java {
            mode,
            cacerts: ks.cacerts.clone(),
            backup,
            after: after.clone(),
            keytool: ks.keytool.clone(),
            alias: alias.clone(),
        })?;
        let ca_file = bundle_dir(&self.dir).join(CA_FILE);
        match java::import(ks, &alias, &ca_file) {
            Ok(()) => files::create(&self.dir.join(&after), &files::read(&ks.cacerts)?, 0o600),
            Err(detail) => {
                tracing::warn!(keystore = %ks.cacerts.display(), %detail, "keytool refused Warden's CA: Java will not trust it");
                // keytool may have written part of a keystore before failing.
                if files::read(&ks.cacerts)? != bytes {
                    files::overwrite(&ks.cacerts, &bytes)?;
                }
                Ok(())
            }
        }
    }
}

/// The roots clients trusted before Warden: the system bundle, and the certificates
/// `SSL_CERT_FILE` named if those were others (a corporate bundle, which may hold the CA of a
/// proxy upstream).
fn roots_before(system: &[u8], bases: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut roots = system.to_vec();
    let ssl_cert_file = bases.iter().find(|(n, _)| *n == "SSL_CERT_FILE");
    if let Some((_, other)) = ssl_cert_file
        && *other != system
        && *other != env::certificates(system)
    {
        roots.push(b'\n');
        roots.extend_from_slice(other);
    }
    roots
}
