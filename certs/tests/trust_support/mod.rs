//! Helpers shared by the `trust*` integration tests: certificates, snapshots, skips that say so,
//! and re-running one test in a child process (after a crash, or inside a mount namespace).
#![allow(dead_code)] // each test binary uses its own part

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output};

/// A fresh self-signed CA certificate, PEM.
pub fn pem(name: &str) -> String {
    certs::Authority::generate(name).unwrap().cert_pem()
}

/// This process's environment, as `install` takes it.
pub fn vars() -> HashMap<String, String> {
    std::env::vars().collect()
}

/// Bytes and permission bits.
pub fn snapshot(path: &Path) -> (Vec<u8>, u32) {
    let mode = fs::metadata(path).unwrap().permissions().mode() & 0o7777;
    (fs::read(path).unwrap(), mode)
}

/// Says that `test` is skipped and why, where the harness cannot swallow it (it captures
/// `eprintln!`), and returns `true`; with `CI` set, a skip is a failure instead.
pub fn skip(test: &str, why: &str) -> bool {
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        panic!("{test}: {why}, and CI is set, so this is a failure, not a skip");
    }
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
    true
}

pub fn is_root() -> bool {
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Runs test `name` of this test binary again in a child, with `var` set to `value`, under
/// `wrapper` (e.g. `unshare --mount`) if given. The child must find and run exactly that test.
pub fn rerun(name: &str, var: &str, value: &str, wrapper: &[&str]) -> Output {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = match wrapper.split_first() {
        Some((program, args)) => {
            let mut c = Command::new(program);
            c.args(args).arg(&exe);
            c
        }
        None => Command::new(&exe),
    };
    cmd.args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(var, value);
    cmd.output().unwrap()
}

/// Whether `keytool` finds `alias` in `keystore`.
pub fn keystore_holds(keytool: &Path, keystore: &Path, alias: &str) -> bool {
    Command::new(keytool)
        .args([
            "-list",
            "-alias",
            alias,
            "-storepass",
            "changeit",
            "-keystore",
        ])
        .arg(keystore)
        .output()
        .unwrap()
        .status
        .success()
}

pub fn show(out: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
