//! The real `Layout::system()`: the machine's bundle trusts the CA while installed, not after, and
//! is byte-identical after restore. The work happens in a child running in a private mount
//! namespace, over private copies of `/etc/ssl/certs` (the bundle, the hashed directory and, on
//! Debian, Java's cacerts) and `/run` (Warden's state): concurrent tests and jobs on this machine
//! never see a modified store, and the real files are checked to be untouched.

mod trust_support;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use certs::trust::{Java, Layout, discover_java, install};
use trust_support::{is_root, keystore_holds, rerun, show, skip, snapshot, vars};

const CHILD: &str = "WARDEN_TRUST_SYSTEM_NAMESPACE";
const NAME: &str = "the_system_store_trusts_the_ca_only_while_installed";
const CERTS: &str = "/etc/ssl/certs";
const BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

#[test]
fn the_system_store_trusts_the_ca_only_while_installed() {
    if std::env::var_os(CHILD).is_some() {
        in_private_namespace();
        return;
    }
    if !is_root() && skip(NAME, "needs root for a mount namespace (CI is root)") {
        return;
    }
    if !Path::new(BUNDLE).is_file() && skip(NAME, "no Debian-style system bundle") {
        return;
    }
    let real = real_files();
    let before: Vec<_> = real.iter().map(|p| snapshot(p)).collect();

    let out = rerun(
        NAME,
        CHILD,
        "1",
        &["unshare", "--mount", "--propagation", "private", "--"],
    );
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 passed"),
        "{}",
        show(&out)
    );

    for (path, before) in real.iter().zip(before) {
        assert_eq!(
            snapshot(path),
            before,
            "{} was modified outside the namespace",
            path.display()
        );
    }
}

/// The real files the child changes its copies of.
fn real_files() -> Vec<PathBuf> {
    let mut files = vec![PathBuf::from(BUNDLE)];
    files.extend(discover_java(&vars()).into_iter().map(|k| k.cacerts));
    files
}

fn in_private_namespace() {
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("certs");
    run("cp", &["-a", CERTS, copy.to_str().unwrap()]);
    run("mount", &["--bind", copy.to_str().unwrap(), CERTS]);
    run("mount", &["-t", "tmpfs", "warden-test-run", "/run"]);

    let mut env = vars();
    env.remove(CHILD);
    let layout = layout_within_copies(&env);
    let ca = certs::Authority::generate("Warden trust_system test CA").unwrap();
    let leaf = ca.issue_leaf(&["trust-test.example"]).unwrap();
    let leaf_pem = tmp.path().join("leaf.pem");
    fs::write(&leaf_pem, &leaf.cert_pem).unwrap();
    let before = snapshot(Path::new(BUNDLE));
    let keystores = match &layout.java {
        Java::Keystores(k) => k.clone(),
        Java::Discover => unreachable!("layout_within_copies lists them"),
    };
    let java_before: Vec<_> = keystores.iter().map(|k| snapshot(&k.cacerts)).collect();
    assert!(
        !verifies(Some(Path::new(BUNDLE)), &leaf_pem),
        "not trusted before"
    );

    let id = format!("test-{}", std::process::id());
    let installed = install(&ca.cert_pem(), &layout, &env, &id).unwrap();
    assert!(installed.state_dir().starts_with("/run/warden"));
    assert!(
        verifies(Some(Path::new(BUNDLE)), &leaf_pem),
        "trusted through the bundle"
    );
    assert!(
        verifies(None, &leaf_pem),
        "trusted through OpenSSL's default paths"
    );
    for (name, path) in installed.env() {
        if name != "NODE_EXTRA_CA_CERTS" {
            assert!(verifies(Some(path), &leaf_pem), "trusted through {name}");
        }
    }
    for ks in &keystores {
        assert!(keystore_holds(
            &ks.keytool,
            &ks.cacerts,
            &format!("warden-{id}")
        ));
    }
    let state = installed.state_dir().to_owned();
    installed.restore().unwrap();
    assert!(
        !verifies(Some(Path::new(BUNDLE)), &leaf_pem),
        "not trusted after"
    );
    assert_eq!(
        snapshot(Path::new(BUNDLE)),
        before,
        "byte for byte, mode for mode"
    );
    for (ks, before) in keystores.iter().zip(java_before) {
        assert!(!keystore_holds(
            &ks.keytool,
            &ks.cacerts,
            &format!("warden-{id}")
        ));
        assert_eq!(snapshot(&ks.cacerts), before, "{}", ks.cacerts.display());
    }
    assert!(!state.exists());
}

/// `Layout::system()`, with Java limited to keystores inside the private copy of
/// `/etc/ssl/certs` (Debian's shared cacerts), so a JDK keeping its own cacerts elsewhere is not
/// modified for real.
fn layout_within_copies(env: &HashMap<String, String>) -> Layout {
    let (inside, outside): (Vec<_>, Vec<_>) = discover_java(env)
        .into_iter()
        .partition(|k| k.cacerts.starts_with(CERTS));
    for k in outside {
        eprintln!(
            "not importing into {} (outside the private copy)",
            k.cacerts.display()
        );
    }
    Layout {
        java: Java::Keystores(inside),
        ..Layout::system()
    }
}

/// Whether `openssl verify` accepts `leaf` with `ca_file` (without the hashed directory), or with
/// OpenSSL's default paths when `None`.
fn verifies(ca_file: Option<&Path>, leaf: &Path) -> bool {
    let mut cmd = Command::new("openssl");
    cmd.arg("verify")
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR");
    if let Some(file) = ca_file {
        cmd.arg("-no-CApath").arg("-CAfile").arg(file);
    }
    let out = cmd.arg(leaf).output().unwrap();
    out.status.success()
}

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(out.status.success(), "{program} {args:?}: {}", show(&out));
}
