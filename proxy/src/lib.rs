//! Warden: sees, and when asked blocks, every outbound connection a CI job makes.
//!
//! `warden run -- CMD` puts CMD in a fresh cgroup whose TCP connects an eBPF hook sends to the
//! proxy in this process. The proxy recovers where each connection was going and which process
//! made it, sniffs the TLS server name or HTTP host without terminating TLS, relays the bytes to
//! the real destination, and writes one audit record per connection. The modules follow that
//! path: [`cgroup`] and [`ebpf`] set up the kernel side, [`process`] keeps the process table the
//! tracepoints feed, [`proxy`] accepts, sniffs and relays, [`audit`] writes records and the
//! summary, [`files`] watches the workspace for source tampering, and [`run`] wires them
//! together for the `run` subcommand. On a GitHub Actions runner [`step`] names the workflow step
//! behind each process, and [`report`] renders a log as the job summary the GitHub Action writes.
// `unsafe` is denied everywhere but the thin syscall layers in `sys` and `files::sys`.
#![deny(unsafe_code)]

pub mod audit;
pub mod baseline;
pub mod cgroup;
pub mod config;
pub mod daemon;
pub mod dns;
pub mod ebpf;
pub mod exfil;
pub mod files;
pub mod inspection;
pub mod logs;
pub mod policy;
pub mod process;
pub mod proxy;
pub mod report;
pub mod resolve;
pub mod run;
pub mod session;
pub mod step;
pub mod suggest;
pub mod summary;
pub mod sys;
pub mod tracefs;
pub mod udp;

/// Locks `m`, carrying on past a poisoned lock: the state behind Warden's mutexes (tables,
/// caches) stays usable after a panic elsewhere, and a stuck proxy would fail open or closed.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
