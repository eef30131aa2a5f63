//! Types shared by Warden's eBPF programs and the userspace loader.
//!
//! The programs in `main.rs` run in the kernel: a cgroup `connect4`/`connect6` hook sends every TCP
//! connect of the hooked cgroup to Warden's proxy and remembers where it was going; a `sockops`
//! program re-keys that memory by the client's own address and port once the kernel has chosen
//! them, so the proxy can find it from the accepted socket's peer address; and `sched`
//! tracepoints report exec, fork and exit so userspace can name the process behind a connection
//! even after it has exited. Everything crossing the boundary is one of the `#[repr(C)]` plain
//! structs below; the field layouts are the contract, so change them on both sides at once.
#![no_std]
#![warn(missing_docs)]

/// Address family values as the kernel spells them.
pub const AF_INET: u16 = 2;
/// IPv6 address family.
pub const AF_INET6: u16 = 10;

/// Global: port (host byte order) of Warden's DNS resolver on 127.0.0.1 and [::1]; 0 turns the
/// DNS redirect off (`--no-dns`).
pub const GLOBAL_DNS_PORT: &str = "DNS_PORT";
/// Name of the map from a DNS client's address (as Warden's resolver sees the query come from)
/// to the resolver it asked and the process that asked ([`OrigDst`], keyed by [`SockKey`]).
pub const MAP_DNS_PEER: &str = "DNS_PEER";

/// Name of the map of socket cookies Warden's own upstream sockets are registered under while
/// they connect: the hooks leave them alone, so a daemon guarding a cgroup it runs in (the whole
/// machine) does not redirect its own traffic back to itself. Only root can write the map.
pub const MAP_EXEMPT: &str = "EXEMPT";

/// Name of the map from client address to original destination (see [`SockKey`]).
pub const MAP_ORIG_DST: &str = "ORIG_DST";
/// Name of the ring buffer carrying [`ProcEvent`]s.
pub const MAP_PROC_EVENTS: &str = "PROC_EVENTS";

/// Global: proxy port (host byte order) that redirected connects are sent to.
pub const GLOBAL_PROXY_PORT: &str = "PROXY_PORT";
/// Global: id (inode number) of the hooked cgroup; tracepoints report only its processes.
pub const GLOBAL_CGROUP_ID: &str = "CGROUP_ID";
/// Global: cookie of the network namespace the proxy listens in. A connect from any other
/// namespace (a process in the job that called `unshare -n`, say) cannot reach the proxy, so it
/// is refused with `EPERM` rather than left unrecorded or sent to an unrelated listener.
pub const GLOBAL_NETNS_COOKIE: &str = "NETNS_COOKIE";
/// Global: 1 in block mode, where UDP not allowed by `UDP_ALLOW` is refused with `EPERM`.
pub const GLOBAL_BLOCK_UDP: &str = "BLOCK_UDP";
/// Name of the LPM trie of address rules that allow UDP ([`UdpAllow`] by v4-mapped address).
pub const MAP_UDP_ALLOW: &str = "UDP_ALLOW";
/// Name of the per-CPU counter of process events the ring buffer had no room for.
pub const MAP_LOST_EVENTS: &str = "LOST_EVENTS";
/// Global: byte offset of `child_pid` in the `sched_process_fork` tracepoint record. It moved in
/// Linux 6.x (`comm` became `__data_loc`), so userspace reads it from tracefs at load time.
pub const GLOBAL_FORK_CHILD_PID_OFFSET: &str = "FORK_CHILD_PID_OFFSET";

/// A TCP endpoint as the kernel saw it: an IPv6 address (IPv4 stored v4-mapped,
/// `::ffff:a.b.c.d`) in network byte order and a port in host byte order.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SockKey {
    /// Address bytes, network order; IPv4 as `::ffff:a.b.c.d`.
    pub addr: [u8; 16],
    /// Port, host order.
    pub port: u16,
    /// Always zero: keeps the key free of uninitialised padding.
    pub _pad: [u8; 6],
}

/// Where a redirected connect was going, and who made it.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrigDst {
    /// Original destination address, network order; IPv4 (and v4-mapped IPv6) as `::ffff:a.b.c.d`.
    pub addr: [u8; 16],
    /// Original destination port, host order.
    pub port: u16,
    /// Address family of the connecting socket ([`AF_INET`] or [`AF_INET6`]).
    pub family: u16,
    /// Thread id of the caller of `connect()`.
    pub pid: u32,
    /// Process id (thread-group id) of the caller.
    pub tgid: u32,
    /// Padding, zero.
    pub _pad: u32,
    /// Kernel socket cookie of the client socket.
    pub cookie: u64,
    /// `comm` of the calling thread, NUL-padded.
    pub comm: [u8; 16],
}

/// [`ProcEvent::kind`]: a process or thread was created (`sched_process_fork`).
pub const PROC_FORK: u32 = 1;
/// [`ProcEvent::kind`]: a process called exec successfully (`sched_process_exec`).
pub const PROC_EXEC: u32 = 2;
/// [`ProcEvent::kind`]: a task exited (`sched_process_exit`).
pub const PROC_EXIT: u32 = 3;

/// [`ProcEvent::kind`]: the first datagram (or connect) of a UDP flow; the event is a [`UdpEvent`].
pub const UDP_FLOW: u32 = 4;

/// The ports an address rule allows UDP to. Userspace folds the ports of every rule that covers a
/// prefix into that prefix's entry, so the longest-prefix match alone decides.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UdpAllow {
    /// Non-zero: every port.
    pub any_port: u32,
    /// Ports in use in `ports`.
    pub nports: u32,
    /// Allowed ports.
    pub ports: [u16; UDP_ALLOW_PORTS],
}

/// Most distinct ports one address-rule prefix can allow UDP to; userspace keeps the first ones
/// and warns (narrower, never wider, than the policy).
pub const UDP_ALLOW_PORTS: usize = 16;

/// A UDP flow: one socket sending to one destination.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct UdpFlowKey {
    /// Socket cookie.
    pub cookie: u64,
    /// Destination, network order, IPv4 v4-mapped.
    pub addr: [u8; 16],
    /// Destination port, host order.
    pub port: u16,
    /// Zero.
    pub _pad: [u8; 6],
}

/// The first sighting of a UDP flow.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct UdpEvent {
    /// Kind [`UDP_FLOW`]; `pid` is the thread id, `tgid` the process id.
    pub head: ProcEvent,
    /// The flow.
    pub flow: UdpFlowKey,
    /// 1 if the datagram (or connect) was refused.
    pub denied: u32,
    /// Zero.
    pub _pad: u32,
}

/// Length of [`ProcEvent::filename`]; longer exec paths are cut.
pub const FILENAME_LEN: usize = 256;
/// Longest single argument kept in [`ArgvBuf`]; longer ones are cut.
pub const ARG_MAX: usize = 256;
/// Bytes of arguments kept: arguments are appended while they start below this offset.
pub const ARGV_KEEP: usize = 1024;
/// Size of [`ArgvBuf::data`]: room for one more [`ARG_MAX`] argument past [`ARGV_KEEP`].
pub const ARGV_LEN: usize = ARGV_KEEP + ARG_MAX;
/// Most arguments read from one exec.
pub const MAX_ARGS: u32 = 32;

/// The arguments of an exec, captured at `sys_enter_execve` (the only point they can be read
/// without `task_struct`) and attached to the `sched_process_exec` event, so a process that exits
/// at once still has its command line.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ArgvBuf {
    /// Bytes used in `data`.
    pub len: u32,
    /// Arguments read (may be fewer than passed).
    pub argc: u32,
    /// NUL-terminated arguments, back to back.
    pub data: [u8; ARGV_LEN],
}

/// One process lifecycle event, sent through the `PROC_EVENTS` ring buffer. Exec events are an
/// [`ExecEvent`], which starts with this header.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ProcEvent {
    /// [`PROC_FORK`], [`PROC_EXEC`] or [`PROC_EXIT`].
    pub kind: u32,
    /// Fork: the child's task id. Exec: the process id. Exit: the exiting task id.
    pub pid: u32,
    /// Fork: the parent's process id. Exec: the pid before exec (differs when a non-leader
    /// thread called exec). Exit: the exiting task's process id (`pid == tgid` for a process).
    pub tgid: u32,
    /// Padding, zero.
    pub _pad: u32,
    /// `comm` of the current task when the event fired.
    pub comm: [u8; 16],
}

/// An exec event: the header plus what only exec has.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ExecEvent {
    /// Kind [`PROC_EXEC`].
    pub head: ProcEvent,
    /// The path passed to exec, NUL-terminated.
    pub filename: [u8; FILENAME_LEN],
    /// The arguments (`argv.len == 0` if they could not be read).
    pub argv: ArgvBuf,
}

#[cfg(feature = "user")]
mod user {
    // SAFETY: these are `#[repr(C)]` structs of integers and byte arrays with explicit padding
    // fields, so every bit pattern is a valid value and none has uninitialised bytes.
    unsafe impl aya::Pod for super::SockKey {}
    unsafe impl aya::Pod for super::OrigDst {}
    unsafe impl aya::Pod for super::ProcEvent {}
    unsafe impl aya::Pod for super::ExecEvent {}
    unsafe impl aya::Pod for super::ArgvBuf {}
    unsafe impl aya::Pod for super::UdpAllow {}
    unsafe impl aya::Pod for super::UdpFlowKey {}
    unsafe impl aya::Pod for super::UdpEvent {}
}
