//! Java's keystore: found where the JVM itself looks, imported into with keytool, and put back
//! byte for byte. Changes are made to a temporary copy of the real `cacerts`.

mod trust_support;

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use certs::trust::{Java, Keystore, Layout, discover_java, install};
use trust_support::{keystore_holds, pem, skip, snapshot, vars};

/// The JDK on this machine, as `discover_java` sees it, or `None` after saying the test is
/// skipped.
fn real_keystore(test: &str) -> Option<Keystore> {
    let found = discover_java(&vars()).into_iter().next();
    if found.is_none() {
        skip(
            test,
            "no Java (java on PATH or JAVA_HOME with a cacerts and keytool)",
        );
    }
    found
}

/// `java.home` as the JVM on PATH reports it.
fn java_home() -> PathBuf {
    let out = Command::new("java")
        .args(["-XshowSettings:properties", "-version"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    let line = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("java.home = "))
        .expect("java prints java.home");
    PathBuf::from(line)
}

fn layout(tmp: &tempfile::TempDir, keystore: Keystore) -> Layout {
    Layout {
        bundles: vec![tmp.path().join("ca-certificates.crt")],
        java: Java::Keystores(vec![keystore]),
        state_root: tmp.path().join("run"),
    }
}

#[test]
fn discovery_finds_the_keystore_the_jvm_reads() {
    let Some(found) = real_keystore("discovery_finds_the_keystore_the_jvm_reads") else {
        return;
    };
    let expected = fs::canonicalize(java_home().join("lib/security/cacerts")).unwrap();
    assert_eq!(found.cacerts, expected);
    assert!(found.keytool.ends_with("bin/keytool"), "{found:?}");
}

#[test]
fn imports_into_a_copy_of_the_real_cacerts_and_restores_it_byte_for_byte() {
    let test = "imports_into_a_copy_of_the_real_cacerts_and_restores_it_byte_for_byte";
    let Some(real) = real_keystore(test) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("cacerts");
    fs::copy(&real.cacerts, &copy).unwrap();
    fs::write(tmp.path().join("ca-certificates.crt"), pem("System Root")).unwrap();
    let before = snapshot(&copy);
    let keystore = Keystore {
        cacerts: copy.clone(),
        keytool: real.keytool.clone(),
    };

    let installed = install(
        &pem("Warden test CA"),
        &layout(&tmp, keystore),
        &vars(),
        "java-1",
    )
    .unwrap();
    assert!(keystore_holds(&real.keytool, &copy, "warden-java-1"));
    assert_ne!(snapshot(&copy).0, before.0);
    assert!(installed.modified().contains(&copy.as_path()));

    installed.restore().unwrap();
    assert_eq!(snapshot(&copy), before);
    assert!(!keystore_holds(&real.keytool, &copy, "warden-java-1"));
}

#[test]
fn a_keystore_keytool_refuses_is_left_as_it_was_and_the_rest_installs() {
    let test = "a_keystore_keytool_refuses_is_left_as_it_was_and_the_rest_installs";
    let Some(real) = real_keystore(test) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let broken = tmp.path().join("cacerts");
    fs::write(&broken, b"not a keystore").unwrap();
    let bundle = tmp.path().join("ca-certificates.crt");
    fs::write(&bundle, pem("System Root")).unwrap();
    let keystore = Keystore {
        cacerts: broken.clone(),
        keytool: real.keytool,
    };

    let installed = install(
        &pem("Warden test CA"),
        &layout(&tmp, keystore),
        &vars(),
        "java-2",
    )
    .unwrap();
    assert_eq!(fs::read(&broken).unwrap(), b"not a keystore");
    assert_eq!(
        fs::read_to_string(&bundle)
            .unwrap()
            .matches("BEGIN")
            .count(),
        2,
        "the bundle still gets the CA"
    );
    installed.restore().unwrap();
    assert_eq!(fs::read(&broken).unwrap(), b"not a keystore");
}
