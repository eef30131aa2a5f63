//! Java keystores: finding the `cacerts` each installed JVM reads, and importing into it.
//!
//! Java ignores the system bundle and every variable: it trusts its own keystore. A runner often
//! has several JDKs (`JAVA_HOME_17_X64`, … next to `JAVA_HOME`), and a later step may switch
//! between them, so every one found is covered. On Debian they all share
//! `/etc/ssl/certs/java/cacerts` through symlinks, which is imported into once.

use std::collections::HashMap;
use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::Error;
use super::files::{self, io};

/// The password every JDK ships `cacerts` with; a keystore with another one is left alone.
const STOREPASS: &str = "changeit";

/// One keystore and the `keytool` to change it with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keystore {
    /// The keystore file (symlinks resolved: the target is what gets changed and restored).
    pub cacerts: PathBuf,
    /// The `keytool` of the same JDK, which reads that keystore's format.
    pub keytool: PathBuf,
}

/// Which Java keystores [`install`](super::install) imports the CA into.
#[derive(Debug, Clone)]
pub enum Java {
    /// Those [`discover_java`] finds from the job's environment.
    Discover,
    /// Exactly these (none: leave Java alone).
    Keystores(Vec<Keystore>),
}

/// The keystores of the JDKs named by `JAVA_HOME`, `JAVA_HOME_*` (sorted) and of `java` on
/// `PATH`, in that order, each once. A JDK without a keystore or a `keytool` is skipped.
pub fn discover_java(env: &HashMap<String, String>) -> Vec<Keystore> {
    let mut homes: Vec<PathBuf> = Vec::new();
    let mut named: Vec<(&String, &String)> = env
        .iter()
        .filter(|(k, v)| (*k == "JAVA_HOME" || k.starts_with("JAVA_HOME_")) && !v.is_empty())
        .collect();
    // JAVA_HOME sorts before JAVA_HOME_*.
    named.sort();
    homes.extend(named.into_iter().map(|(_, v)| PathBuf::from(v)));
    if let Some(java) = which("java", env).and_then(|j| fs::canonicalize(j).ok()) {
        // <home>/bin/java
        if let Some(home) = java.parent().and_then(Path::parent) {
            homes.push(home.to_owned());
        }
    }
    let mut out: Vec<Keystore> = Vec::new();
    for home in homes {
        if let Some(ks) = keystore(&home, env)
            && !out.iter().any(|o| o.cacerts == ks.cacerts)
        {
            out.push(ks);
        }
    }
    out
}

fn keystore(home: &Path, env: &HashMap<String, String>) -> Option<Keystore> {
    // JDK 9 and later; JDK 8 keeps its JRE in a subdirectory.
    let cacerts = ["lib/security/cacerts", "jre/lib/security/cacerts"]
        .iter()
        .map(|rel| home.join(rel))
        .find(|p| p.is_file())?;
    let keytool = Some(home.join("bin/keytool"))
        .filter(|p| executable(p))
        .or_else(|| which("keytool", env))?;
    Some(Keystore {
        cacerts: fs::canonicalize(cacerts).ok()?,
        keytool,
    })
}

fn which(program: &str, env: &HashMap<String, String>) -> Option<PathBuf> {
    let path = env.get("PATH")?;
    path.split(':')
        .filter(|dir| !dir.is_empty())
        .map(|dir| Path::new(dir).join(program))
        .find(|p| executable(p))
}

fn executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The alias Warden's CA gets in a keystore.
pub(super) fn alias(id: &str) -> String {
    format!("warden-{id}")
}

/// Imports `ca_file` as a trusted certificate named `alias`.
pub(super) fn import(ks: &Keystore, alias: &str, ca_file: &Path) -> Result<(), String> {
    keytool(
        &ks.keytool,
        &ks.cacerts,
        &["-importcert", "-noprompt", "-trustcacerts"],
        alias,
        Some(ca_file),
    )
}

/// Removes `alias`.
pub(super) fn delete(keytool_path: &Path, cacerts: &Path, alias: &str) -> Result<(), String> {
    keytool(keytool_path, cacerts, &["-delete"], alias, None)
}

/// Whether the keystore can be read at all, and whether it holds `alias`.
pub(super) fn holds(keytool_path: &Path, cacerts: &Path, alias: &str) -> Result<bool, String> {
    keytool(keytool_path, cacerts, &["-list"], "", None)?;
    Ok(keytool(keytool_path, cacerts, &["-list"], alias, None).is_ok())
}

fn keytool(
    program: &Path,
    cacerts: &Path,
    command: &[&str],
    alias: &str,
    file: Option<&Path>,
) -> Result<(), String> {
    let mut cmd = Command::new(program);
    cmd.args(command);
    if !alias.is_empty() {
        cmd.arg("-alias").arg(alias);
    }
    if let Some(file) = file {
        cmd.arg("-file").arg(file);
    }
    cmd.arg("-keystore")
        .arg(cacerts)
        .args(["-storepass", STOREPASS])
        .stdin(Stdio::null());
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
    if out.status.success() {
        return Ok(());
    }
    // keytool reports its errors on stdout.
    let said = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    Err(format!(
        "{} {}: {}",
        program.display(),
        out.status,
        said.trim()
    ))
}

/// Undoes the import into `cacerts`, whose bytes before were `original` and, right after the
/// import, `after` (`None` if the import failed).
pub(super) fn restore(
    ks: &Keystore,
    mode: u32,
    alias: &str,
    original: &[u8],
    after: Option<&[u8]>,
) -> Result<(), Error> {
    let path = ks.cacerts.as_path();
    let current = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            tracing::warn!(path = %path.display(), "keystore deleted while Warden ran, left absent");
            return Ok(());
        }
        Err(e) => return Err(io("read", path)(e)),
    };
    if current == original {
        // Never imported, or already restored.
    } else if after == Some(current.as_slice()) {
        files::overwrite(path, original)?;
    } else {
        // Changed by someone else too; keytool re-serializes the store, so the result holds
        // the same entries as before but need not be the same bytes.
        match holds(&ks.keytool, path, alias) {
            Ok(true) => {
                delete(&ks.keytool, path, alias).map_err(|detail| Error::Keytool {
                    path: path.to_owned(),
                    detail,
                })?;
                tracing::warn!(path = %path.display(), "keystore changed while Warden ran: removed only Warden's entry");
            }
            Ok(false) => {
                tracing::warn!(path = %path.display(), "keystore rewritten while Warden ran without Warden's entry: left as is");
            }
            Err(detail) => {
                tracing::warn!(path = %path.display(), %detail, "keystore unreadable: restored from its backup");
                files::overwrite(path, original)?;
            }
        }
    }
    if files::mode(path)? != mode {
        files::set_mode(path, mode)?;
    }
    Ok(())
}
