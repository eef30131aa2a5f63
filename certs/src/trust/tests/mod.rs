//! Install and restore against a temporary [`Layout`]: bundles, backups and bundles for variables
//! are checked byte for byte and mode for mode, the way `warden stop` must leave a machine.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

use super::*;
use crate::Authority;

mod env;
mod restore;
mod system;

/// A fake machine: a system bundle of two certificates at `etc/ssl/ca-certificates.crt`, state
/// under `run/`, Java left alone.
struct Machine {
    tmp: TempDir,
    layout: Layout,
}

impl Machine {
    fn new() -> Machine {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir_all(tmp.path().join("etc/ssl")).unwrap();
        let bundle = tmp.path().join("etc/ssl/ca-certificates.crt");
        fs::write(&bundle, format!("{}{}", pem("Root One"), pem("Root Two"))).unwrap();
        let layout = Layout {
            bundles: vec![bundle],
            java: Java::Keystores(Vec::new()),
            state_root: tmp.path().join("run"),
        };
        Machine { tmp, layout }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    fn bundle(&self) -> &Path {
        &self.layout.bundles[0]
    }

    /// A file holding one certificate, as a runner's own bundle.
    fn pem_file(&self, rel: &str, name: &str) -> String {
        let path = self.path(rel);
        fs::write(&path, pem(name)).unwrap();
        path.to_str().unwrap().to_owned()
    }

    fn install(&self, ca: &str, env: &HashMap<String, String>, id: &str) -> Installed {
        install(ca, &self.layout, env, id).unwrap()
    }
}

/// A fresh self-signed CA certificate, PEM.
fn pem(name: &str) -> String {
    Authority::generate(name).unwrap().cert_pem()
}

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The certificates in a PEM file, DER, in order.
fn ders(bytes: &[u8]) -> Vec<Vec<u8>> {
    rustls_pemfile::certs(&mut &bytes[..])
        .map(|c| c.unwrap().to_vec())
        .collect()
}

fn der(pem: &str) -> Vec<u8> {
    let all = ders(pem.as_bytes());
    assert_eq!(all.len(), 1);
    all.into_iter().next().unwrap()
}

/// Bytes and permission bits, what restore must give back.
fn snapshot(path: &Path) -> (Vec<u8>, u32) {
    let mode = fs::metadata(path).unwrap().permissions().mode() & 0o7777;
    (fs::read(path).unwrap(), mode)
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}
