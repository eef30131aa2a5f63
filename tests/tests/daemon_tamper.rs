//! A root process that detaches the daemon's hooks (`BPF_LINK_DETACH`, as `bpftool link detach`
//! does) does not silently end enforcement: the daemon notices within its check interval,
//! records `lost` and `recovered`, attaches the hooks again, reports it in `status`, and the
//! cgroup's traffic is recorded again.
//!
//! Needs root (skips loudly otherwise).

use std::time::Duration;

use tests::{Daemon, Netns, Origins, TestCgroup, audit, clients, skip_unless_root};

const T: Duration = Duration::from_secs(30);

/// Detaches every cgroup link the given process holds for cgroup id `argv[2]`, through the raw
/// bpf(2) syscall: BPF_LINK_GET_FD_BY_ID (30), then BPF_LINK_DETACH (34).
const DETACH_PY: &str = r#"
import ctypes, os, sys
pid, cgroup = sys.argv[1], sys.argv[2]
libc = ctypes.CDLL(None, use_errno=True)
SYS_bpf = 321
def bpf(cmd, attr):
    buf = ctypes.create_string_buffer(attr.ljust(128, b"\0"))
    return libc.syscall(SYS_bpf, cmd, buf, 128)
n = 0
for fd in os.listdir(f"/proc/{pid}/fdinfo"):
    try:
        info = dict(l.split(":", 1) for l in open(f"/proc/{pid}/fdinfo/{fd}").read().splitlines() if ":" in l)
    except OSError:
        continue
    if info.get("cgroup_id", "").strip() != cgroup or "link_id" not in info:
        continue
    link_fd = bpf(30, int(info["link_id"]).to_bytes(4, "little"))
    if link_fd < 0 or bpf(34, link_fd.to_bytes(4, "little")) != 0:
        sys.exit(f"detach failed: errno {ctypes.get_errno()}")
    n += 1
print(f"detached {n}")
"#;

#[test]
fn detached_hooks_are_noticed_and_reattached() {
    if skip_unless_root("detached_hooks_are_noticed_and_reattached") {
        return;
    }
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    let cgroup = TestCgroup::new().unwrap();
    let daemon = Daemon::start(&netns, &cgroup, ["--egress-policy", "audit"]).unwrap();
    daemon.assert_started();
    let pid = daemon.pid().expect("daemon pid").to_string();
    let out = std::process::Command::new("python3")
        .args(["-c", DETACH_PY, &pid, &cgroup.id().to_string()])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && said.starts_with("detached ") && !said.contains("detached 0"),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let recovered = daemon
        .wait_for_record(T, |r| r["enforcement"]["event"] == "recovered")
        .unwrap();
    assert!(
        recovered["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("detached"),
        "{recovered}"
    );
    let records = daemon.records().unwrap();
    assert!(
        audit::enforcement(&records)
            .iter()
            .any(|r| r["enforcement"]["event"] == "lost"),
        "a lost record precedes the recovery"
    );
    let (_, status) = daemon.status_json().unwrap();
    assert_eq!(status["state"], "on", "{status}");
    assert!(
        status["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("re-attached"),
        "{status}"
    );

    // Enforced again: a connection from the cgroup is recorded.
    let script = clients::curl("http://http.example/after-reattach", &origins.ca_pem_path());
    let run = daemon.run_in_cgroup(&script, T).unwrap();
    assert!(run.status.success(), "{run:?}\n{daemon}");
    daemon
        .wait_for_record(T, |r| r["http"]["url"] == "/after-reattach")
        .unwrap();
    let stopped = daemon.stop().unwrap();
    assert_eq!(
        stopped.status.code(),
        Some(1),
        "stop reports that enforcement was impaired"
    );
}
