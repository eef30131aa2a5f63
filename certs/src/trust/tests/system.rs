//! The system bundle: appended to after a backup, put back byte for byte.

use super::*;

#[test]
fn appends_to_the_bundle_and_restores_it_byte_for_byte() {
    let m = Machine::new();
    fs::set_permissions(m.bundle(), fs::Permissions::from_mode(0o640)).unwrap();
    let before = snapshot(m.bundle());
    let ca = pem("Warden test CA");
    let installed = m.install(&ca, &env(&[]), "t-1");

    let now = fs::read(m.bundle()).unwrap();
    assert!(
        now.starts_with(&before.0),
        "the original bytes are kept in front"
    );
    let certs = ders(&now);
    assert_eq!(certs.len(), 3);
    assert_eq!(certs[2], der(&ca), "the CA is appended last");
    assert_eq!(mode(m.bundle()), 0o640, "appending keeps the mode");
    assert_eq!(
        installed.modified(),
        vec![fs::canonicalize(m.bundle()).unwrap()]
    );

    let dir = installed.state_dir().to_owned();
    assert_eq!(dir, m.path("run/trust-t-1"));
    assert_eq!(
        fs::read(dir.join("backup/0.orig")).unwrap(),
        before.0,
        "backup is byte for byte"
    );

    installed.restore().unwrap();
    assert_eq!(snapshot(m.bundle()), before);
    assert!(!dir.exists(), "the state directory goes at restore");
}

#[test]
fn state_directory_is_root_only_except_the_bundles() {
    let m = Machine::new();
    let installed = m.install(&pem("Warden test CA"), &env(&[]), "t-modes");
    let dir = installed.state_dir().to_owned();
    assert_eq!(mode(&dir), 0o755);
    assert_eq!(mode(&dir.join("journal")), 0o600);
    assert_eq!(mode(&dir.join("backup")), 0o700);
    assert_eq!(mode(&dir.join("backup/0.orig")), 0o600);
    assert_eq!(mode(&dir.join("backup/0.added")), 0o600);
    assert_eq!(mode(&dir.join("bundles")), 0o755);
    assert_eq!(mode(&installed.ca_path()), 0o644);
    assert_eq!(mode(&installed.roots_before_path()), 0o644);
    for (name, path) in installed.env() {
        assert_eq!(mode(path), 0o644, "{name}");
        assert_eq!(path.parent().unwrap(), dir.join("bundles"));
    }
    installed.restore().unwrap();
}

#[test]
fn symlinked_bundles_change_their_target_once() {
    let mut m = Machine::new();
    let target = m.bundle().to_owned();
    let link = m.path("etc/ssl/cert.pem");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let missing = m.path("etc/pki/tls/certs/ca-bundle.crt");
    m.layout.bundles = vec![link.clone(), missing, target.clone()];
    let before = snapshot(&target);
    let installed = m.install(&pem("Warden test CA"), &env(&[]), "t-link");

    assert_eq!(
        ders(&fs::read(&target).unwrap()).len(),
        3,
        "appended once, not per path"
    );
    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        installed.modified(),
        vec![fs::canonicalize(&target).unwrap()]
    );
    installed.restore().unwrap();
    assert_eq!(snapshot(&target), before);
    assert_eq!(
        fs::read_link(&link).unwrap(),
        target,
        "the link is left alone"
    );
}

#[test]
fn a_bundle_without_a_final_line_break_is_restored_exactly() {
    let m = Machine::new();
    let mut bytes = fs::read(m.bundle()).unwrap();
    bytes.pop();
    fs::write(m.bundle(), &bytes).unwrap();
    let ca = pem("Warden test CA");
    let installed = m.install(&ca, &env(&[]), "t-nl");
    assert_eq!(ders(&fs::read(m.bundle()).unwrap()).last(), Some(&der(&ca)));
    installed.restore().unwrap();
    assert_eq!(fs::read(m.bundle()).unwrap(), bytes);
}

#[test]
fn rolls_back_when_a_later_bundle_cannot_be_written() {
    let mut m = Machine::new();
    // Readable by anyone, writable by no one, root included.
    let unwritable = PathBuf::from("/proc/sys/kernel/osrelease");
    m.layout.bundles.push(unwritable.clone());
    let before = snapshot(m.bundle());
    let err = install(&pem("Warden test CA"), &m.layout, &env(&[]), "t-fail").unwrap_err();

    match &err {
        Error::Io { op, path, .. } => {
            assert_eq!(*op, "append the CA to");
            assert_eq!(path, &unwritable);
        }
        other => panic!("expected an append error, got {other:?}"),
    }
    assert!(
        err.to_string().contains("/proc/sys/kernel/osrelease"),
        "{err}"
    );
    assert_eq!(snapshot(m.bundle()), before, "the first bundle is put back");
    assert!(
        !m.layout.state_dir("t-fail").exists(),
        "nothing is left behind"
    );
}

#[test]
fn refuses_a_session_whose_state_exists() {
    let m = Machine::new();
    let first = m.install(&pem("Warden test CA"), &env(&[]), "t-twice");
    let journal = fs::read(first.state_dir().join("journal")).unwrap();
    let err = install(&pem("Another CA"), &m.layout, &env(&[]), "t-twice").unwrap_err();
    assert!(matches!(err, Error::StateExists(_)), "{err:?}");
    assert_eq!(
        fs::read(first.state_dir().join("journal")).unwrap(),
        journal
    );
    assert_eq!(
        ders(&fs::read(m.bundle()).unwrap()).len(),
        3,
        "appended by the first only"
    );
    first.restore().unwrap();
}

#[test]
fn rejects_bad_ids_and_cas_before_touching_anything() {
    let m = Machine::new();
    let before = snapshot(m.bundle());
    let ca = pem("Warden test CA");
    for id in ["", ".hidden", "a/b", "a b", "x\ny", &"x".repeat(65)] {
        let err = install(&ca, &m.layout, &env(&[]), id).unwrap_err();
        assert!(matches!(err, Error::InvalidId(_)), "{id:?}: {err:?}");
    }
    let two = format!("{ca}{}", pem("Other"));
    for bad in ["", "not a certificate", two.as_str()] {
        let err = install(bad, &m.layout, &env(&[]), "t-bad").unwrap_err();
        assert!(matches!(err, Error::InvalidCa), "{bad:?}: {err:?}");
    }
    assert_eq!(snapshot(m.bundle()), before);
    assert!(!m.layout.state_root.exists());
}

#[test]
fn roots_before_are_the_system_roots_and_ssl_cert_file_without_warden() {
    let m = Machine::new();
    let corporate = m.pem_file("corporate.pem", "Corporate Proxy CA");
    let ca = pem("Warden test CA");
    let installed = m.install(&ca, &env(&[("SSL_CERT_FILE", &corporate)]), "t-roots");
    let roots: Vec<Vec<u8>> = installed
        .roots_before()
        .unwrap()
        .iter()
        .map(|c| c.to_vec())
        .collect();
    let mut expected = ders(&fs::read(installed.state_dir().join("backup/0.orig")).unwrap());
    expected.push(der(&fs::read_to_string(&corporate).unwrap()));
    assert_eq!(roots, expected);
    assert!(!roots.contains(&der(&ca)));
    installed.restore().unwrap();
}
