//! DNS redirect: every port-53 UDP datagram of the job goes to Warden's resolver, whatever
//! resolver address it was sent to (loopback stubs such as 127.0.0.53 included), and the reply
//! comes back looking like it came from the server the client asked.
//!
//! - `connect4/6` and `sendmsg4/6` rewrite the destination to 127.0.0.1 / [::1] on `DNS_PORT`
//!   and file the original resolver (with the caller's pid) under the socket cookie in
//!   `DNS_ORIG`.
//! - `recvmsg4/6` and `getpeername4/6` rewrite Warden's address back to that original resolver
//!   (Linux 5.2 / 5.8): glibc's resolver drops replies from an address it did not ask, and a
//!   connected socket must report the peer it connected to.
//! - Warden's resolver must know who asked, but at `connect()` a UDP socket has no local port yet
//!   (it is bound after the hook runs), so the resolver cannot look the query up by its source.
//!   A `cgroup_skb/egress` program sees each query leave with its real source address and port
//!   and files the cookie's entry under them in `DNS_PEER`, before the datagram is delivered
//!   (see `egress.rs`).
//!
//! TCP port 53 is redirected to the proxy like any TCP connect (see `redirect.rs`), which hands
//! it to the resolver; TCP and UDP to 853 (DNS over TLS/QUIC) are refused elsewhere.

use aya_ebpf::{
    EbpfContext,
    bindings::bpf_sock_addr,
    helpers::{bpf_get_current_comm, bpf_get_current_pid_tgid, generated::bpf_get_socket_cookie},
    macros::{cgroup_sock_addr, map},
    maps::LruHashMap,
    programs::{SkBuffContext, SockAddrContext},
};
use core::ptr::read_volatile;

use redirect_ebpf::{OrigDst, SockKey};

use crate::{
    DNS_PORT,
    egress::{ETH_P_IP_BE, ETH_P_IPV6_BE, IPPROTO_UDP},
    global,
};

/// The standard DNS port.
pub const PORT: u16 = 53;

/// The resolver each redirected socket asked, by socket cookie (read by recvmsg/getpeername and
/// by the egress program).
#[map]
static DNS_ORIG: LruHashMap<u64, OrigDst> = LruHashMap::with_max_entries(16384, 0);

/// The same entries keyed by the query's source address and port: what the resolver looks up.
#[map]
static DNS_PEER: LruHashMap<SockKey, OrigDst> = LruHashMap::with_max_entries(16384, 0);

/// Whether the DNS redirect is on (`--no-dns` leaves the port at 0).
#[inline(always)]
pub fn enabled() -> bool {
    global(&DNS_PORT) != 0
}

/// Sends a UDP destination (`addr` v4-mapped for IPv4, `user_port` as the context holds it) to
/// the resolver and remembers it. `family` is the socket's address family.
#[inline(always)]
pub fn redirect(ctx: &SockAddrContext, sa: &mut bpf_sock_addr, addr: [u8; 16], family: u16) {
    // SAFETY: bpf_get_socket_cookie accepts a sock_addr context (Linux 4.12+).
    let cookie = unsafe { bpf_get_socket_cookie(ctx.as_ptr()) };
    let pid_tgid = bpf_get_current_pid_tgid();
    let value = OrigDst {
        addr,
        port: u16::from_be(sa.user_port as u16),
        family,
        pid: pid_tgid as u32,
        tgid: (pid_tgid >> 32) as u32,
        _pad: 0,
        cookie,
        comm: bpf_get_current_comm().unwrap_or([0; 16]),
    };
    // A full map only costs the reply's source address rewrite and attribution for this socket.
    let _ = DNS_ORIG.insert(&cookie, &value, 0);
    let v4 = addr[..12] == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];
    if family == redirect_ebpf::AF_INET {
        sa.user_ip4 = u32::from_ne_bytes([127, 0, 0, 1]);
    } else {
        sa.user_ip6[0] = 0;
        sa.user_ip6[1] = 0;
        if v4 {
            sa.user_ip6[2] = u32::from_ne_bytes([0, 0, 0xff, 0xff]);
            sa.user_ip6[3] = u32::from_ne_bytes([127, 0, 0, 1]);
        } else {
            sa.user_ip6[2] = 0;
            sa.user_ip6[3] = u32::from_ne_bytes([0, 0, 0, 1]);
        }
    }
    sa.user_port = u32::from(global(&DNS_PORT).to_be());
}

/// The original resolver of this socket, if `sa` holds Warden's resolver address.
#[inline(always)]
fn original(ctx: &SockAddrContext, sa: &bpf_sock_addr, from_resolver: bool) -> Option<OrigDst> {
    if !enabled() || !from_resolver || u16::from_be(sa.user_port as u16) != global(&DNS_PORT) {
        return None;
    }
    // SAFETY: as above.
    let cookie = unsafe { bpf_get_socket_cookie(ctx.as_ptr()) };
    // SAFETY: the value is copied out at once.
    unsafe { DNS_ORIG.get(&cookie) }.copied()
}

/// Rewrites Warden's resolver address (IPv4 socket) back to the resolver the client asked.
#[inline(always)]
fn restore4(ctx: &SockAddrContext) {
    // SAFETY: the kernel hands us a valid bpf_sock_addr for the duration of the program.
    let sa = unsafe { &mut *ctx.sock_addr };
    let from_resolver = sa.user_ip4.to_ne_bytes() == [127, 0, 0, 1];
    if let Some(orig) = original(ctx, sa, from_resolver) {
        let a = orig.addr;
        sa.user_ip4 = u32::from_ne_bytes([a[12], a[13], a[14], a[15]]);
        sa.user_port = u32::from(orig.port.to_be());
    }
}

/// The same for an IPv6 socket (the resolver is [::1], or ::ffff:127.0.0.1 for v4-mapped).
#[inline(always)]
fn restore6(ctx: &SockAddrContext) {
    // SAFETY: as above.
    let sa = unsafe { &mut *ctx.sock_addr };
    // One 32-bit load per word at a constant offset (see redirect::read_ip6).
    // SAFETY: reads of the context's own fields.
    let w = unsafe {
        [
            read_volatile(&raw const sa.user_ip6[0]),
            read_volatile(&raw const sa.user_ip6[1]),
            read_volatile(&raw const sa.user_ip6[2]),
            read_volatile(&raw const sa.user_ip6[3]),
        ]
    };
    let loopback6 = w == [0, 0, 0, u32::from_ne_bytes([0, 0, 0, 1])];
    let loopback4 = w
        == [
            0,
            0,
            u32::from_ne_bytes([0, 0, 0xff, 0xff]),
            u32::from_ne_bytes([127, 0, 0, 1]),
        ];
    if let Some(orig) = original(ctx, sa, loopback6 || loopback4) {
        let a = orig.addr;
        sa.user_ip6[0] = u32::from_ne_bytes([a[0], a[1], a[2], a[3]]);
        sa.user_ip6[1] = u32::from_ne_bytes([a[4], a[5], a[6], a[7]]);
        sa.user_ip6[2] = u32::from_ne_bytes([a[8], a[9], a[10], a[11]]);
        sa.user_ip6[3] = u32::from_ne_bytes([a[12], a[13], a[14], a[15]]);
        sa.user_port = u32::from(orig.port.to_be());
    }
}

#[cgroup_sock_addr(recvmsg4)]
pub fn warden_recvmsg4(ctx: SockAddrContext) -> i32 {
    restore4(&ctx);
    1
}

#[cgroup_sock_addr(recvmsg6)]
pub fn warden_recvmsg6(ctx: SockAddrContext) -> i32 {
    restore6(&ctx);
    1
}

#[cgroup_sock_addr(getpeername4)]
pub fn warden_getpeername4(ctx: SockAddrContext) -> i32 {
    restore4(&ctx);
    1
}

#[cgroup_sock_addr(getpeername6)]
pub fn warden_getpeername6(ctx: SockAddrContext) -> i32 {
    restore6(&ctx);
    1
}

/// Files a query leaving for the resolver under its source address and port (called by the
/// egress program for every packet of the cgroup).
#[inline(always)]
pub fn file_query(ctx: &SkBuffContext) -> Option<()> {
    if !enabled() {
        return None;
    }
    let port = global(&DNS_PORT);
    // In cgroup_skb programs the packet starts at the network header.
    let (src, udp_at) = match ctx.skb.protocol() {
        ETH_P_IP_BE => {
            let ip: [u8; 20] = ctx.load(0).ok()?;
            if ip[9] != IPPROTO_UDP || ip[16..20] != [127, 0, 0, 1] {
                return None;
            }
            let src = [
                0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ip[12], ip[13], ip[14], ip[15],
            ];
            (src, usize::from(ip[0] & 0x0f) * 4)
        }
        ETH_P_IPV6_BE => {
            let ip: [u8; 40] = ctx.load(0).ok()?;
            let mut dst_loopback = ip[39] == 1;
            let mut i = 24;
            while i < 39 {
                dst_loopback &= ip[i] == 0;
                i += 1;
            }
            if ip[6] != IPPROTO_UDP || !dst_loopback {
                return None;
            }
            let mut src = [0u8; 16];
            src.copy_from_slice(&ip[8..24]);
            (src, 40)
        }
        _ => return None,
    };
    let ports: [u8; 4] = ctx.load(udp_at).ok()?;
    if u16::from_be_bytes([ports[2], ports[3]]) != port {
        return None;
    }
    // SAFETY: bpf_get_socket_cookie accepts an skb context (Linux 4.12+).
    let cookie = unsafe { bpf_get_socket_cookie(ctx.as_ptr()) };
    let key = SockKey {
        addr: src,
        port: u16::from_be_bytes([ports[0], ports[1]]),
        _pad: [0; 6],
    };
    // SAFETY: the value is copied out at once.
    match unsafe { DNS_ORIG.get(&cookie) }.copied() {
        Some(value) => DNS_PEER.insert(&key, &value, 0).ok(),
        // Sent straight to the resolver's port, not redirected: whatever an earlier socket on
        // this port filed must not name this sender (the resolver then sees no entry).
        None => DNS_PEER.remove(&key).ok(),
    }
}
