//! A process that installed the CA and died without restoring: another process restores the
//! machine from the state directory alone, as `warden stop` (or cleanup after a crash) does.

mod trust_support;

use std::fs;
use std::path::{Path, PathBuf};

use certs::trust::{Installed, Java, Layout, install, restore_from};
use trust_support::{pem, rerun, show, snapshot};

const CHILD: &str = "WARDEN_TRUST_RELOAD_ROOT";
const NAME: &str = "a_session_left_by_a_dead_process_is_restored_by_another";

fn layout(root: &Path) -> Layout {
    Layout {
        bundles: vec![root.join("ca-certificates.crt")],
        java: Java::Keystores(Vec::new()),
        state_root: root.join("run"),
    }
}

#[test]
fn a_session_left_by_a_dead_process_is_restored_by_another() {
    if let Some(root) = std::env::var_os(CHILD) {
        // The child: install, then exit without running any destructor.
        let root = PathBuf::from(root);
        let env = [(
            "SSL_CERT_FILE".to_owned(),
            root.join("corporate.pem").display().to_string(),
        )];
        let installed =
            install(&pem("Warden test CA"), &layout(&root), &env.into(), "dead").unwrap();
        fs::write(root.join("printed"), installed.print_env()).unwrap();
        std::process::exit(3);
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    fs::write(root.join("ca-certificates.crt"), pem("System Root")).unwrap();
    fs::write(root.join("corporate.pem"), pem("Corporate Root")).unwrap();
    let before = snapshot(&root.join("ca-certificates.crt"));

    let out = rerun(NAME, CHILD, root.to_str().unwrap(), &[]);
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    let state = layout(root).state_dir("dead");
    assert!(
        state.join("journal").exists(),
        "the dead process left its state"
    );
    assert_ne!(
        snapshot(&root.join("ca-certificates.crt")),
        before,
        "and its CA installed"
    );

    let loaded = Installed::load(&state).unwrap();
    assert_eq!(
        loaded.print_env(),
        fs::read_to_string(root.join("printed")).unwrap()
    );
    loaded.keep();
    restore_from(&state).unwrap();
    assert_eq!(snapshot(&root.join("ca-certificates.crt")), before);
    assert!(!state.exists());
    assert_eq!(
        fs::read_to_string(root.join("corporate.pem"))
            .unwrap()
            .matches("BEGIN")
            .count(),
        1
    );
}
