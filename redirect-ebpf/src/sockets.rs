//! Socket creation in block mode: only TCP and UDP over IPv4/IPv6.
//!
//! Warden sees TCP through the proxy and UDP through the sendmsg hooks; ICMP "ping" sockets
//! (unprivileged on Ubuntu runners), raw sockets and SCTP would go around both. In block mode such
//! sockets are refused when they are created (`EPERM`); in audit mode they are allowed (and not
//! yet recorded). Runs at `cgroup/sock_create` (Linux 4.10).

use aya_ebpf::{macros::cgroup_sock, programs::SockContext};

use crate::{BLOCK_UDP, global};

const AF_INET: u32 = 2;
const AF_INET6: u32 = 10;
const SOCK_STREAM: u32 = 1;
const SOCK_DGRAM: u32 = 2;
const IPPROTO_IP: u32 = 0;
const IPPROTO_TCP: u32 = 6;
const IPPROTO_UDP: u32 = 17;
const IPPROTO_MPTCP: u32 = 262;

#[cgroup_sock(sock_create)]
pub fn warden_sock_create(ctx: SockContext) -> i32 {
    if global(&BLOCK_UDP) == 0 {
        return 1;
    }
    // SAFETY: the kernel hands us a valid bpf_sock for the duration of the program.
    let sk = unsafe { &*ctx.sock };
    if sk.family != AF_INET && sk.family != AF_INET6 {
        return 1;
    }
    let allowed = match sk.type_ {
        // MPTCP falls back to TCP through the same connect hooks.
        SOCK_STREAM => matches!(sk.protocol, IPPROTO_IP | IPPROTO_TCP | IPPROTO_MPTCP),
        SOCK_DGRAM => matches!(sk.protocol, IPPROTO_IP | IPPROTO_UDP),
        _ => false,
    };
    i32::from(allowed)
}
