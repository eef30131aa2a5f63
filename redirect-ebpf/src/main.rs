//! The eBPF object Warden loads: connect redirect, sockops re-keying and process tracepoints.
//!
//! Built for `bpfel-unknown-none` by the loader's build script (aya-build); see `lib.rs` for what
//! each program does and the types it shares with userspace. Kernel requirements: cgroup
//! sock_addr hooks (4.17), ring buffers (5.8), `bpf_get_current_ancestor_cgroup_id` in tracing
//! programs (5.10); nothing here reads `task_struct`, so the object has no CO-RE relocations.
#![no_std]
#![no_main]

mod dns;
mod egress;
mod proctrack;
mod redirect;
mod sockets;
mod udp;

use aya_ebpf::{
    macros::map,
    maps::{HashMap, LruHashMap, PerCpuArray, RingBuf},
};
use redirect_ebpf::{ArgvBuf, OrigDst, SockKey};

// Set by the loader (`EbpfLoader::set_global`); read through `global()` so the compiler cannot
// fold the placeholder values into the code.
#[unsafe(no_mangle)]
static PROXY_PORT: u16 = 0;
#[unsafe(no_mangle)]
static DNS_PORT: u16 = 0;
#[unsafe(no_mangle)]
static CGROUP_ID: u64 = 0;
#[unsafe(no_mangle)]
static NETNS_COOKIE: u64 = 0;
#[unsafe(no_mangle)]
static BLOCK_UDP: u8 = 0;
#[unsafe(no_mangle)]
static FORK_CHILD_PID_OFFSET: u32 = 20;

#[inline(always)]
fn global<T: Copy>(value: &'static T) -> T {
    // SAFETY: a valid, aligned static; volatile only to defeat constant folding.
    unsafe { core::ptr::read_volatile(value) }
}

/// Connects seen by connect4/6, keyed by socket cookie, waiting for sockops to learn the client's
/// local address. Entries move to `ORIG_DST` before the SYN leaves.
#[map]
static PENDING: LruHashMap<u64, OrigDst> = LruHashMap::with_max_entries(16384, 0);

/// Original destinations keyed by the client's (address, port): what the proxy looks up.
#[map]
static ORIG_DST: LruHashMap<SockKey, OrigDst> = LruHashMap::with_max_entries(65536, 0);

/// Cookies of Warden's own sockets while they connect (see `MAP_EXEMPT`).
#[map]
static EXEMPT: HashMap<u64, u8> = HashMap::with_max_entries(4096, 0);

/// Process lifecycle events for the userspace process table (4 MiB).
#[map]
static PROC_EVENTS: RingBuf = RingBuf::with_byte_size(1 << 22, 0);

/// Arguments of execs in flight, by the calling thread's id, from `sys_enter_execve` until
/// `sched_process_exec` (LRU: a failed exec's entry just ages out).
#[map]
static EXEC_ARGV: LruHashMap<u32, ArgvBuf> = LruHashMap::with_max_entries(4096, 0);

/// Process events dropped because the ring buffer was full (userspace reports the sum).
#[map]
static LOST_EVENTS: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// Scratch space to build an [`ArgvBuf`] (too big for the 512-byte eBPF stack).
#[map]
static ARGV_SCRATCH: PerCpuArray<ArgvBuf> = PerCpuArray::with_max_entries(1, 0);

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
