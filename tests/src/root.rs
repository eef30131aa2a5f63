//! Deciding whether an end-to-end test can run here.
//!
//! End-to-end tests create network namespaces and cgroups and load eBPF programs, which needs
//! root. A developer running `cargo test` as themselves should still get a green unit-test run,
//! so those tests skip, but loudly, so nobody mistakes a skip for a pass. CI runs as root, and a
//! CI job that silently skipped every end-to-end test would be worse than a red one, so with
//! `CI` set a missing root is a failure.

use std::io::Write;

/// Returns `true` when `test` must be skipped because this process is not root (after saying so
/// on stderr), `false` when it can run. Panics instead of skipping when `CI` is set.
pub fn skip_unless_root(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return false;
    }
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        panic!(
            "{test}: end-to-end tests need root, and CI is set, so this is a failure, not a skip"
        );
    }
    // Written to the stream itself: the test harness captures `eprintln!`, and a skip nobody
    // sees is the silent pass this function exists to prevent.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: end-to-end tests need root (CI is root; run as root or set CI to fail \
         instead)"
    );
    true
}
