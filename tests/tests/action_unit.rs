//! The action's JavaScript unit tests (`action/test/`), run by node's own test runner: inputs,
//! sudoers rules, workflow-command escaping, the `warden start` command line for each binary's
//! features, and the binary's download rules. The end-to-end tests are in `action_job.rs`.

use std::path::Path;
use std::process::Command;

#[test]
fn node_unit_tests_pass() {
    let action = Path::new(env!("CARGO_MANIFEST_DIR")).join("../action");
    let out = Command::new("node")
        .arg("--test")
        .arg(action.join("test/lib.test.js"))
        .output()
        .expect("node is needed (scripts/setup-deps.sh installs it)");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
