//! Restore: idempotent, from the journal alone, after crashes, and when others changed the store.

use super::*;

#[test]
fn restore_is_idempotent() {
    let m = Machine::new();
    let before = snapshot(m.bundle());
    let dir = m
        .install(&pem("Warden test CA"), &env(&[]), "t-idem")
        .keep();
    restore_from(&dir).unwrap();
    assert_eq!(snapshot(m.bundle()), before);
    restore_from(&dir).unwrap();
    assert_eq!(snapshot(m.bundle()), before);
}

#[test]
fn a_retry_after_a_partial_restore_finishes_the_job() {
    let m = Machine::new();
    let before = snapshot(m.bundle());
    let installed = m.install(&pem("Warden test CA"), &env(&[]), "t-retry");
    let dir = installed.keep();
    // Restore put the bundle back, then died before removing its state.
    fs::write(m.bundle(), &before.0).unwrap();
    restore_from(&dir).unwrap();
    assert_eq!(snapshot(m.bundle()), before);
    assert!(!dir.exists());
}

#[test]
fn load_gives_back_the_variables_and_owns_the_restore() {
    let m = Machine::new();
    let before = snapshot(m.bundle());
    let installed = m.install(&pem("Warden test CA"), &env(&[]), "t-load");
    let printed = installed.print_env();
    let modified: Vec<PathBuf> = installed
        .modified()
        .iter()
        .map(|p| p.to_path_buf())
        .collect();
    let dir = installed.keep();
    assert_ne!(snapshot(m.bundle()), before, "kept: still installed");

    let loaded = Installed::load(&dir).unwrap();
    assert_eq!(loaded.id(), "t-load");
    assert_eq!(loaded.print_env(), printed);
    assert_eq!(loaded.modified(), modified);
    drop(loaded);
    assert_eq!(snapshot(m.bundle()), before, "dropping the owner restores");
    assert!(!dir.exists());
}

#[test]
fn a_crash_in_the_middle_of_an_append_is_undone() {
    let m = Machine::new();
    let before = snapshot(m.bundle());
    let dir = m
        .install(&pem("Warden test CA"), &env(&[]), "t-crash")
        .keep();
    let added = fs::read(dir.join("backup/0.added")).unwrap();
    let mut half = before.0.clone();
    half.extend_from_slice(&added[..added.len() / 2]);
    fs::write(m.bundle(), &half).unwrap();
    restore_from(&dir).unwrap();
    assert_eq!(snapshot(m.bundle()), before);
}

#[test]
fn a_crash_before_the_journal_leaves_nothing_to_undo() {
    let m = Machine::new();
    let dir = m.layout.state_dir("t-early");
    fs::create_dir_all(&dir).unwrap();
    restore_from(&dir).unwrap();
    assert!(!dir.exists());
}

#[test]
fn changes_by_others_are_kept_and_only_wardens_block_removed() {
    let m = Machine::new();
    let installed = m.install(&pem("Warden test CA"), &env(&[]), "t-others");
    let mut bytes = fs::read(m.bundle()).unwrap();
    let theirs = pem("Added During The Job");
    bytes.extend_from_slice(theirs.as_bytes());
    fs::write(m.bundle(), &bytes).unwrap();
    let original = fs::read(installed.state_dir().join("backup/0.orig")).unwrap();
    installed.restore().unwrap();

    let mut expected = original;
    expected.extend_from_slice(theirs.as_bytes());
    assert_eq!(fs::read(m.bundle()).unwrap(), expected);
}

#[test]
fn overlapping_sessions_restore_the_original_in_either_order() {
    for first_to_stop in ["a", "b"] {
        let m = Machine::new();
        let before = snapshot(m.bundle());
        let a = m.install(&pem("Warden CA a"), &env(&[]), "t-a");
        let b = m.install(&pem("Warden CA b"), &env(&[]), "t-b");
        assert_eq!(ders(&fs::read(m.bundle()).unwrap()).len(), 4);
        if first_to_stop == "a" {
            a.restore().unwrap();
            assert_eq!(
                ders(&fs::read(m.bundle()).unwrap()).len(),
                3,
                "b's CA stays while b runs"
            );
            b.restore().unwrap();
        } else {
            b.restore().unwrap();
            a.restore().unwrap();
        }
        assert_eq!(
            snapshot(m.bundle()),
            before,
            "{first_to_stop} stopped first"
        );
    }
}

#[test]
fn a_bundle_rebuilt_during_the_job_is_left_as_rebuilt() {
    let m = Machine::new();
    let installed = m.install(&pem("Warden test CA"), &env(&[]), "t-rebuilt");
    let rebuilt = pem("Rebuilt Store");
    fs::write(m.bundle(), &rebuilt).unwrap();
    installed.restore().unwrap();
    assert_eq!(fs::read_to_string(m.bundle()).unwrap(), rebuilt);
}

#[test]
fn the_mode_is_restored() {
    let m = Machine::new();
    fs::set_permissions(m.bundle(), fs::Permissions::from_mode(0o644)).unwrap();
    let before = snapshot(m.bundle());
    let installed = m.install(&pem("Warden test CA"), &env(&[]), "t-mode");
    fs::set_permissions(m.bundle(), fs::Permissions::from_mode(0o600)).unwrap();
    installed.restore().unwrap();
    assert_eq!(snapshot(m.bundle()), before);
}

#[test]
fn the_journal_round_trips_any_path_and_ignores_an_unfinished_line() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    use super::journal::{self, Entry, Journal};

    let tmp = tempfile::tempdir().unwrap();
    let odd = PathBuf::from(OsStr::from_bytes(b"/etc/a dir/100%\n\xff\tx"));
    let entries = vec![
        Entry::Bundle {
            mode: 0o644,
            target: odd.clone(),
            backup: "backup/0.orig".into(),
            added: "backup/0.added".into(),
        },
        Entry::Java {
            mode: 0o600,
            cacerts: "/etc/ssl/certs/java/cacerts".into(),
            backup: "backup/java0.orig".into(),
            after: "backup/java0.after".into(),
            keytool: odd,
            alias: "warden-t".into(),
        },
        Entry::Env {
            name: "SSL_CERT_FILE".into(),
            bundle: "bundles/SSL_CERT_FILE.pem".into(),
        },
    ];
    let mut j = Journal::create(tmp.path(), "t-journal").unwrap();
    for e in &entries {
        j.append(e).unwrap();
    }
    let path = tmp.path().join("journal");
    let text = fs::read(&path).unwrap();
    assert_eq!(
        text.iter().filter(|&&b| b == b'\n').count(),
        4,
        "one line each, newlines escaped"
    );
    let mut torn = text.clone();
    torn.extend_from_slice(b"bundle 644 /etc/half");
    fs::write(&path, &torn).unwrap();
    assert_eq!(
        journal::load(tmp.path()).unwrap(),
        ("t-journal".to_owned(), entries)
    );

    let mut damaged = text;
    damaged.extend_from_slice(b"bundle 9z9 /x a b\n");
    fs::write(&path, &damaged).unwrap();
    match journal::load(tmp.path()).unwrap_err() {
        Error::BadJournal { line, .. } => assert_eq!(line, 5),
        other => panic!("{other:?}"),
    }
}
