//! The process table: who is who in the job, fed by the kernel's exec/fork/exit tracepoints.
//!
//! A connection record must name its process even when that process exited a millisecond after
//! connecting, so the table is built from kernel events rather than from `/proc` at connection
//! time: fork gives the parent, exec the executable, exit marks the entry as gone (it is kept so
//! later records can still name it). Lookups first drain the ring buffer, so any event the kernel
//! emitted before the lookup is in the table: a connect always comes after the exec that made its
//! process. `/proc` is read only when an exec event is applied (for argv) and as a fallback for a
//! process the table never saw, never on a connection's setup path.

use std::{
    collections::HashMap,
    fs,
    os::fd::{AsFd, OwnedFd},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use aya::maps::{MapData, RingBuf};
use redirect_ebpf::{ARGV_LEN, FILENAME_LEN, PROC_EXEC, PROC_EXIT, PROC_FORK, UDP_FLOW};
use tokio::io::unix::AsyncFd;

use crate::{
    audit::{Process, now_rfc3339, redact},
    ebpf::c_str,
    udp::UdpFlow,
};

/// Exited processes are forgotten only when the table is this big, and only if they exited
/// longer than [`KEEP_EXITED`] ago.
const GC_THRESHOLD: usize = 50_000;
const KEEP_EXITED: Duration = Duration::from_secs(300);
const MAX_ANCESTRY: usize = 64;

#[derive(Debug, Clone, Default)]
struct Entry {
    ppid: Option<u32>,
    exe: String,
    argv: Vec<String>,
    exited: Option<Instant>,
    /// The workflow step this process belongs to (see [`crate::step`]): described when a child
    /// of the runner's worker execs, inherited by everything it forks.
    step: Option<Arc<str>>,
}

struct Inner {
    ring: RingBuf<MapData>,
    table: Table,
    udp_flows: Vec<UdpFlow>,
    /// Where UDP flow records go as their events arrive (kept in `udp_flows` until one is set).
    udp_sink: Option<(Arc<crate::audit::AuditLog>, Arc<crate::policy::Policy>)>,
}

/// The table proper, kept apart from the ring buffer so it can be tested without a kernel.
#[derive(Debug, Default)]
struct Table {
    map: HashMap<u32, Entry>,
    root: Option<u32>,
    last_gc: Option<Instant>,
}

/// The job's process table.
pub struct ProcessTracker {
    inner: Mutex<Inner>,
    ring_fd: OwnedFd,
}

/// One decoded ring buffer event.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Event {
    kind: u32,
    pid: u32,
    tgid: u32,
    comm: String,
    filename: String,
    /// Arguments captured by the kernel at exec; empty if it could not read them.
    argv: Vec<String>,
}

enum Decoded {
    Proc(Event),
    Udp(UdpEvent),
}

/// A decoded `redirect_ebpf::UdpEvent`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct UdpEvent {
    tgid: u32,
    comm: String,
    dst: std::net::SocketAddr,
    denied: bool,
}

/// `UdpEvent`: header (32), cookie (8), address (16), port (2), padding (6), denied (4).
fn decode_udp(b: &[u8]) -> Option<UdpEvent> {
    let tgid = u32::from_ne_bytes(b.get(8..12)?.try_into().ok()?);
    let addr: [u8; 16] = b.get(40..56)?.try_into().ok()?;
    let port = u16::from_ne_bytes(b.get(56..58)?.try_into().ok()?);
    let denied = u32::from_ne_bytes(b.get(64..68)?.try_into().ok()?) != 0;
    let ip = std::net::Ipv6Addr::from(addr).to_canonical();
    Some(UdpEvent {
        tgid,
        comm: c_str(b.get(16..32)?),
        dst: std::net::SocketAddr::new(ip, port),
        denied,
    })
}

/// Offset of `argv` (`ArgvBuf`: len, argc, data) in `redirect_ebpf::ExecEvent`.
const ARGV_AT: usize = 32 + FILENAME_LEN;

impl Event {
    /// Decodes a `redirect_ebpf::ProcEvent` from ring buffer bytes; `None` if too short.
    fn decode(b: &[u8]) -> Option<Self> {
        let u32_at = |o: usize| Some(u32::from_ne_bytes(b.get(o..o + 4)?.try_into().ok()?));
        Some(Self {
            kind: u32_at(0)?,
            pid: u32_at(4)?,
            tgid: u32_at(8)?,
            comm: c_str(b.get(16..32)?),
            // Fork and exit events are the 32-byte header only.
            filename: b.get(32..32 + FILENAME_LEN).map(c_str).unwrap_or_default(),
            argv: decode_argv(b),
        })
    }
}

/// NUL-separated arguments, `len` bytes of `data` (clamped: the kernel side is trusted but a
/// bad length must not panic here).
fn decode_argv(b: &[u8]) -> Vec<String> {
    let Some(len) = b
        .get(ARGV_AT..ARGV_AT + 4)
        .and_then(|l| l.try_into().ok())
        .map(u32::from_ne_bytes)
    else {
        return Vec::new();
    };
    let len = (len as usize).min(ARGV_LEN);
    let data = b.get(ARGV_AT + 8..ARGV_AT + 8 + len).unwrap_or_default();
    data.split(|&c| c == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

impl ProcessTracker {
    /// A tracker reading `ring` (the `PROC_EVENTS` map).
    pub fn new(ring: RingBuf<MapData>) -> std::io::Result<Arc<Self>> {
        let ring_fd = ring.as_fd().try_clone_to_owned()?;
        Ok(Arc::new(Self {
            inner: Mutex::new(Inner {
                ring,
                table: Table::default(),
                udp_flows: Vec::new(),
                udp_sink: None,
            }),
            ring_fd,
        }))
    }

    /// Marks `pid` as the job's first process: ancestries stop there.
    pub fn set_root(&self, pid: u32) {
        self.lock().table.root = Some(pid);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies events as the kernel produces them, until the task is dropped.
    pub async fn run(self: Arc<Self>) -> std::io::Result<()> {
        // The AsyncFd owns this OwnedFd and closes it only after deregistering it, which is the
        // I/O-safety condition tokio's unsafe `register_with_interest` asks callers to uphold.
        #[allow(deprecated)]
        let fd = AsyncFd::with_interest(self.ring_fd.try_clone()?, tokio::io::Interest::READABLE)?;
        loop {
            let mut guard = fd.readable().await?;
            self.lock().drain();
            guard.clear_ready();
        }
    }

    /// From now on, writes each UDP flow's record to `log` as soon as the kernel reports it (so a
    /// crash loses none), including those already waiting.
    pub fn write_udp_to(
        &self,
        log: Arc<crate::audit::AuditLog>,
        policy: Arc<crate::policy::Policy>,
    ) {
        let mut inner = self.lock();
        for flow in std::mem::take(&mut inner.udp_flows) {
            log.write(&flow.record(&policy));
        }
        inner.udp_sink = Some((log, policy));
    }

    /// The UDP flows reported so far (each once), with their processes.
    pub fn take_udp_flows(&self) -> Vec<UdpFlow> {
        let mut inner = self.lock();
        inner.drain();
        std::mem::take(&mut inner.udp_flows)
    }

    /// The process `pid` as the record should name it; `comm` is the thread name the connect
    /// hook saw, used when nothing better is known.
    pub fn lookup(&self, pid: u32, comm: &str) -> Process {
        let mut inner = self.lock();
        inner.drain();
        inner.table.describe(pid, comm)
    }

    /// The process `pid` if the tracepoints saw it in the job (exited or not); `None` for a
    /// process they never saw (outside the job, or older than enforcement). File monitoring
    /// uses it: its events come from every process on the filesystem.
    pub fn lookup_seen(&self, pid: u32, comm: &str) -> Option<Process> {
        let mut inner = self.lock();
        inner.drain();
        let table = &inner.table;
        table
            .map
            .contains_key(&pid)
            .then(|| table.describe(pid, comm))
    }
}

impl Inner {
    fn drain(&mut self) {
        let mut events = Vec::new();
        while let Some(item) = self.ring.next() {
            let decoded = if item.get(..4) == Some(&UDP_FLOW.to_ne_bytes()[..]) {
                decode_udp(&item).map(Decoded::Udp)
            } else {
                Event::decode(&item).map(Decoded::Proc)
            };
            match decoded {
                Some(ev) => events.push(ev),
                None => tracing::warn!(len = item.len(), "short event"),
            }
        }
        // In ring order: a flow's process is the one its pid named when it sent.
        for ev in events {
            match ev {
                Decoded::Proc(ev) => self.table.apply(ev),
                Decoded::Udp(u) => {
                    let flow = UdpFlow {
                        time: now_rfc3339(),
                        process: self.table.describe(u.tgid, &u.comm),
                        dst: u.dst,
                        denied: u.denied,
                    };
                    match &self.udp_sink {
                        Some((log, policy)) => log.write(&flow.record(policy)),
                        None => self.udp_flows.push(flow),
                    }
                }
            }
        }
        self.table.gc();
    }
}

impl Table {
    /// Forgets long-exited processes once the table is big, at most once a second (a scan of a
    /// big table on every drain would cost more than the events themselves).
    fn gc(&mut self) {
        if self.map.len() > GC_THRESHOLD
            && self
                .last_gc
                .is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
        {
            self.last_gc = Some(Instant::now());
            self.map
                .retain(|_, e| e.exited.is_none_or(|t| t.elapsed() < KEEP_EXITED));
        }
    }

    fn apply(&mut self, ev: Event) {
        match ev.kind {
            PROC_FORK => {
                // A new task inherits its parent's image until it execs.
                let parent = self.map.get(&ev.tgid).cloned().unwrap_or_default();
                self.map.insert(
                    ev.pid,
                    Entry {
                        ppid: Some(ev.tgid),
                        exited: None,
                        ..parent
                    },
                );
            }
            PROC_EXEC => {
                // A non-leader thread that execs takes over the leader's pid (`tgid` is old_pid).
                if ev.tgid != ev.pid {
                    self.map.remove(&ev.tgid);
                }
                let entry = self.map.entry(ev.pid).or_insert_with(|| Entry {
                    ppid: proc_ppid(ev.pid),
                    ..Entry::default()
                });
                entry.exe = if ev.filename.is_empty() {
                    format!("[{}]", ev.comm)
                } else {
                    ev.filename
                };
                entry.argv = if ev.argv.is_empty() {
                    proc_cmdline(ev.pid).unwrap_or_default()
                } else {
                    ev.argv
                };
                entry.exited = None;
                self.note_step(ev.pid);
            }
            PROC_EXIT if ev.pid == ev.tgid => {
                if let Some(e) = self.map.get_mut(&ev.pid) {
                    e.exited = Some(Instant::now());
                }
            }
            PROC_EXIT => {
                self.map.remove(&ev.pid);
            }
            other => tracing::warn!(kind = other, "unknown process event"),
        }
    }

    /// If `pid` (which just exec'd) is a step — a child of the runner's worker without a step
    /// yet — describes it now, while it is alive, from its environment and command line.
    fn note_step(&mut self, pid: u32) {
        let Some(entry) = self.map.get(&pid) else {
            return;
        };
        let Some(ppid) = entry.ppid.filter(|_| entry.step.is_none()) else {
            return;
        };
        let parent_exe = self.map.get(&ppid).map(|p| p.exe.as_str()).unwrap_or("");
        let worker = if parent_exe.is_empty() {
            crate::step::proc_is_worker(ppid)
        } else {
            crate::step::is_worker_exe(parent_exe)
        };
        if !worker {
            return;
        }
        let step: Arc<str> = crate::step::describe(pid, &entry.argv).into();
        if let Some(e) = self.map.get_mut(&pid) {
            e.step = Some(step);
        }
    }

    /// The step of `pid`: its own, or its nearest ancestor's.
    fn step_of(&self, pid: u32) -> Option<String> {
        let mut cur = Some(pid);
        for _ in 0..=MAX_ANCESTRY {
            let entry = self.map.get(&cur?)?;
            if let Some(step) = &entry.step {
                return Some(step.to_string());
            }
            cur = entry.ppid;
        }
        None
    }

    fn describe(&self, pid: u32, comm: &str) -> Process {
        let Some(entry) = self.map.get(&pid) else {
            return from_proc(pid, comm);
        };
        let mut ancestry = Vec::new();
        let mut cur = if Some(pid) == self.root {
            None
        } else {
            entry.ppid
        };
        while let Some(p) = cur {
            let Some(parent) = self.map.get(&p) else {
                break;
            };
            ancestry.push(parent.exe.clone());
            if Some(p) == self.root || ancestry.len() >= MAX_ANCESTRY {
                break;
            }
            cur = parent.ppid;
        }
        Process {
            pid,
            ppid: entry.ppid,
            exe: if entry.exe.is_empty() {
                format!("[{comm}]")
            } else {
                entry.exe.clone()
            },
            argv: redact::argv(&entry.argv),
            ancestry,
            step: self.step_of(pid),
        }
    }
}

/// A process the tracepoints never reported (e.g. started before enforcement): read `/proc`.
fn from_proc(pid: u32, comm: &str) -> Process {
    let exe = fs::read_link(format!("/proc/{pid}/exe"))
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| format!("[{comm}]"));
    Process {
        pid,
        ppid: proc_ppid(pid),
        exe,
        argv: redact::argv(&proc_cmdline(pid).unwrap_or_default()),
        ancestry: Vec::new(),
        step: None,
    }
}

fn proc_cmdline(pid: u32) -> Option<Vec<String>> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        raw.split(|&b| b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect(),
    )
}

fn proc_ppid(pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat_ppid(&stat)
}

/// `/proc/PID/stat`: `pid (comm) state ppid ...`; comm may contain spaces and parentheses.
fn parse_stat_ppid(stat: &str) -> Option<u32> {
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_ascii_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: u32, pid: u32, tgid: u32, filename: &str) -> Vec<u8> {
        let mut b = vec![0u8; ARGV_AT + 8 + ARGV_LEN];
        b[0..4].copy_from_slice(&kind.to_ne_bytes());
        b[4..8].copy_from_slice(&pid.to_ne_bytes());
        b[8..12].copy_from_slice(&tgid.to_ne_bytes());
        b[16..20].copy_from_slice(b"sh\0\0");
        b[32..32 + filename.len()].copy_from_slice(filename.as_bytes());
        b
    }

    #[test]
    fn decodes_udp_events() {
        let mut b = vec![0u8; 72];
        b[0..4].copy_from_slice(&UDP_FLOW.to_ne_bytes());
        b[8..12].copy_from_slice(&42u32.to_ne_bytes());
        b[16..19].copy_from_slice(b"dig");
        b[40..56].copy_from_slice(
            &std::net::Ipv4Addr::new(192, 0, 2, 9)
                .to_ipv6_mapped()
                .octets(),
        );
        b[56..58].copy_from_slice(&5353u16.to_ne_bytes());
        b[64..68].copy_from_slice(&1u32.to_ne_bytes());
        let u = decode_udp(&b).unwrap();
        assert_eq!((u.tgid, u.comm.as_str(), u.denied), (42, "dig", true));
        assert_eq!(u.dst, "192.0.2.9:5353".parse().unwrap());
        assert_eq!(decode_udp(&b[..60]), None);
    }

    #[test]
    fn decodes_header_only_events() {
        let ev = Event::decode(&event(PROC_FORK, 11, 10, "")[..32]).unwrap();
        assert_eq!((ev.kind, ev.pid, ev.tgid), (PROC_FORK, 11, 10));
        assert!(ev.filename.is_empty() && ev.argv.is_empty());
    }

    #[test]
    fn decodes_events_and_rejects_short_ones() {
        let ev = Event::decode(&event(PROC_EXEC, 10, 10, "/bin/sh")).unwrap();
        assert_eq!((ev.kind, ev.pid, ev.tgid), (PROC_EXEC, 10, 10));
        assert_eq!((ev.comm.as_str(), ev.filename.as_str()), ("sh", "/bin/sh"));
        assert!(ev.argv.is_empty());
        assert_eq!(Event::decode(&[0u8; 20]), None);
    }

    #[test]
    fn decodes_argv_and_clamps_bad_lengths() {
        let mut b = event(PROC_EXEC, 10, 10, "/usr/bin/curl");
        let args = b"curl\0-s\0https://x.example/\0";
        b[ARGV_AT..ARGV_AT + 4].copy_from_slice(&(args.len() as u32).to_ne_bytes());
        b[ARGV_AT + 8..ARGV_AT + 8 + args.len()].copy_from_slice(args);
        let ev = Event::decode(&b).unwrap();
        assert_eq!(ev.argv, ["curl", "-s", "https://x.example/"]);
        b[ARGV_AT..ARGV_AT + 4].copy_from_slice(&u32::MAX.to_ne_bytes());
        assert_eq!(Event::decode(&b).unwrap().argv.len(), 3);
        b.truncate(ARGV_AT + 20);
        assert!(Event::decode(&b).unwrap().argv.is_empty());
    }

    fn apply(t: &mut Table, kind: u32, pid: u32, tgid: u32, filename: &str) {
        t.apply(Event::decode(&event(kind, pid, tgid, filename)).unwrap());
    }

    #[test]
    fn ancestry_follows_forks_and_execs_up_to_the_root() {
        let mut t = Table {
            root: Some(100),
            ..Table::default()
        };
        apply(&mut t, PROC_EXEC, 100, 100, "/bin/sh");
        apply(&mut t, PROC_FORK, 101, 100, "");
        apply(&mut t, PROC_EXEC, 101, 101, "/usr/bin/make");
        apply(&mut t, PROC_FORK, 102, 101, "");
        apply(&mut t, PROC_EXEC, 102, 102, "/usr/bin/curl");
        apply(&mut t, PROC_EXIT, 102, 102, "");
        let p = t.describe(102, "curl");
        assert_eq!(p.exe, "/usr/bin/curl");
        assert_eq!(p.ppid, Some(101));
        assert_eq!(p.ancestry, ["/usr/bin/make", "/bin/sh"]);
        assert!(t.describe(100, "sh").ancestry.is_empty());
    }

    #[test]
    fn forked_child_without_exec_inherits_parent_image() {
        let mut t = Table::default();
        apply(&mut t, PROC_EXEC, 5, 5, "/bin/bash");
        apply(&mut t, PROC_FORK, 6, 5, "");
        let p = t.describe(6, "bash");
        assert_eq!((p.exe.as_str(), p.ppid), ("/bin/bash", Some(5)));
        assert_eq!(p.ancestry, ["/bin/bash"]);
    }

    #[test]
    fn thread_exit_forgets_thread_but_process_exit_keeps_entry() {
        let mut t = Table::default();
        apply(&mut t, PROC_EXEC, 5, 5, "/usr/bin/python3");
        apply(&mut t, PROC_FORK, 9, 5, "");
        apply(&mut t, PROC_EXIT, 9, 5, "");
        apply(&mut t, PROC_EXIT, 5, 5, "");
        assert!(!t.map.contains_key(&9));
        assert_eq!(t.describe(5, "python3").exe, "/usr/bin/python3");
    }

    #[test]
    fn children_of_the_runner_worker_are_steps_and_their_descendants_inherit() {
        // Pids above the kernel's PID_MAX_LIMIT: /proc never has them, so the step is described
        // from the command line alone.
        let (worker, step, child, other) = (4_194_400, 4_194_401, 4_194_402, 4_194_403);
        let mut t = Table::default();
        apply(
            &mut t,
            PROC_EXEC,
            worker,
            worker,
            "/runner/bin/Runner.Worker",
        );
        apply(&mut t, PROC_FORK, step, worker, "");
        let mut exec = event(PROC_EXEC, step, step, "/usr/bin/node");
        let args = b"node\0/w/_actions/actions/setup-go/v5/dist/index.js\0";
        exec[ARGV_AT..ARGV_AT + 4].copy_from_slice(&(args.len() as u32).to_ne_bytes());
        exec[ARGV_AT + 8..ARGV_AT + 8 + args.len()].copy_from_slice(args);
        t.apply(Event::decode(&exec).unwrap());
        apply(&mut t, PROC_FORK, child, step, "");
        apply(&mut t, PROC_EXEC, child, child, "/usr/bin/git");
        apply(&mut t, PROC_FORK, other, worker, "");
        let expected = Some("actions/setup-go@v5".to_string());
        assert_eq!(t.describe(step, "node").step, expected);
        assert_eq!(t.describe(child, "git").step, expected);
        // The worker itself, and a fork of it that has not exec'd, belong to no step.
        assert_eq!(t.describe(worker, "Runner.Worker").step, None);
        assert_eq!(t.describe(other, "Runner.Worker").step, None);
    }

    #[test]
    fn a_step_cannot_relabel_its_children_with_a_worker_of_its_own() {
        let (worker, step, fake, child) = (4_194_410, 4_194_411, 4_194_412, 4_194_413);
        let mut t = Table::default();
        apply(
            &mut t,
            PROC_EXEC,
            worker,
            worker,
            "/runner/bin/Runner.Worker",
        );
        apply(&mut t, PROC_FORK, step, worker, "");
        apply(&mut t, PROC_EXEC, step, step, "/usr/bin/bash");
        let real = t.describe(step, "bash").step;
        assert!(real.is_some());
        // The step runs a program it named Runner.Worker, whose child claims another step.
        apply(&mut t, PROC_FORK, fake, step, "");
        apply(&mut t, PROC_EXEC, fake, fake, "/tmp/x/Runner.Worker");
        apply(&mut t, PROC_FORK, child, fake, "");
        apply(&mut t, PROC_EXEC, child, child, "/usr/bin/curl");
        assert_eq!(t.describe(child, "curl").step, real);
    }

    #[test]
    fn stat_ppid_survives_odd_comm() {
        assert_eq!(parse_stat_ppid("42 (a) b (c)) S 7 42 42 0"), Some(7));
        assert_eq!(parse_stat_ppid("garbage"), None);
    }
}
