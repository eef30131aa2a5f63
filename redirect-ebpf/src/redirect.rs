//! Connect redirect: send every TCP connect to a non-loopback address to the proxy.
//!
//! `connect4`/`connect6` run in the caller's context before the kernel routes the connect, so
//! they can rewrite the destination and record the original one with the caller's pid. The
//! client's local port is not chosen yet, so the record is keyed by socket cookie; `sockops` at
//! `TCP_CONNECT_CB` (fires before the SYN is sent, so the proxy can never accept first) moves it
//! to a key the proxy can compute: the accepted socket's peer address.

use aya_ebpf::{
    EbpfContext,
    bindings::{BPF_SOCK_OPS_TCP_CONNECT_CB, bpf_sock_addr},
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid,
        generated::{bpf_get_netns_cookie, bpf_get_socket_cookie},
    },
    macros::{cgroup_sock_addr, sock_ops},
    programs::{SockAddrContext, SockOpsContext},
};
use core::ptr::read_volatile;

use redirect_ebpf::{AF_INET, AF_INET6, OrigDst, SockKey};

use crate::{EXEMPT, NETNS_COOKIE, ORIG_DST, PENDING, PROXY_PORT, dns, global, udp};

const SOCK_STREAM: u32 = 1;
const SOCK_DGRAM: u32 = 2;
/// Return value that lets the connect go ahead (with whatever address we wrote).
const ALLOW: i32 = 1;
/// Return value that fails the connect with `EPERM`.
const DENY: i32 = 0;

/// A connect from a network namespace other than the proxy's cannot be redirected there: refuse
/// it instead of letting it out unrecorded (bpf_get_netns_cookie in sock_addr: Linux 5.7).
#[inline(always)]
fn foreign_netns(ctx: &SockAddrContext) -> bool {
    // SAFETY: the helper accepts a sock_addr context.
    unsafe { bpf_get_netns_cookie(ctx.as_ptr()) != global(&NETNS_COOKIE) }
}

#[cgroup_sock_addr(connect4)]
pub fn warden_connect4(ctx: SockAddrContext) -> i32 {
    if exempt(&ctx) {
        return ALLOW;
    }
    // SAFETY: the kernel hands us a valid bpf_sock_addr for the duration of the program.
    let sa = unsafe { &mut *ctx.sock_addr };
    let ip = sa.user_ip4.to_ne_bytes();
    let dns = port_of(sa) == dns::PORT && dns::enabled();
    if dns && sa.type_ == SOCK_DGRAM {
        if foreign_netns(&ctx) {
            return DENY;
        }
        dns::redirect(&ctx, sa, mapped(ip), AF_INET);
        return ALLOW;
    }
    // DNS over TCP is redirected even to a loopback resolver (a stub such as 127.0.0.53).
    if !dns && (ip[0] == 127 || ip == [0, 0, 0, 0]) {
        return ALLOW;
    }
    if sa.type_ == SOCK_DGRAM {
        return verdict(udp::check(&ctx, mapped(ip), port_of(sa), udp::Via::Connect));
    }
    if !wants_redirect(sa) {
        return ALLOW;
    }
    if foreign_netns(&ctx) {
        return DENY;
    }
    remember(&ctx, mapped(ip), sa.user_port, AF_INET);
    sa.user_ip4 = u32::from_ne_bytes([127, 0, 0, 1]);
    sa.user_port = u32::from(global(&PROXY_PORT).to_be());
    ALLOW
}

#[cgroup_sock_addr(connect6)]
pub fn warden_connect6(ctx: SockAddrContext) -> i32 {
    if exempt(&ctx) {
        return ALLOW;
    }
    // SAFETY: as above.
    let sa = unsafe { &mut *ctx.sock_addr };
    let (addr, v4_mapped, local) = read_ip6(sa);
    let dns = port_of(sa) == dns::PORT && dns::enabled();
    if dns && sa.type_ == SOCK_DGRAM {
        if foreign_netns(&ctx) {
            return DENY;
        }
        dns::redirect(&ctx, sa, addr, AF_INET6);
        return ALLOW;
    }
    if local && !dns {
        return ALLOW;
    }
    if sa.type_ == SOCK_DGRAM {
        return verdict(udp::check(&ctx, addr, port_of(sa), udp::Via::Connect));
    }
    if !wants_redirect(sa) {
        return ALLOW;
    }
    if foreign_netns(&ctx) {
        return DENY;
    }
    remember(&ctx, addr, sa.user_port, AF_INET6);
    // A v4-mapped destination makes an IPv4 connection, so it must go to the IPv4 listener.
    sa.user_ip6[0] = 0;
    sa.user_ip6[1] = 0;
    if v4_mapped {
        sa.user_ip6[2] = u32::from_ne_bytes([0, 0, 0xff, 0xff]);
        sa.user_ip6[3] = u32::from_ne_bytes([127, 0, 0, 1]);
    } else {
        sa.user_ip6[2] = 0;
        sa.user_ip6[3] = u32::from_ne_bytes([0, 0, 0, 1]);
    }
    sa.user_port = u32::from(global(&PROXY_PORT).to_be());
    ALLOW
}

/// Unconnected UDP: each datagram's destination passes here (Linux 4.18); see `udp::check`.
#[cgroup_sock_addr(sendmsg4)]
pub fn warden_sendmsg4(ctx: SockAddrContext) -> i32 {
    if exempt(&ctx) {
        return ALLOW;
    }
    // SAFETY: as above.
    let sa = unsafe { &mut *ctx.sock_addr };
    let ip = sa.user_ip4.to_ne_bytes();
    if port_of(sa) == dns::PORT && dns::enabled() {
        if foreign_netns(&ctx) {
            return DENY;
        }
        dns::redirect(&ctx, sa, mapped(ip), AF_INET);
        return ALLOW;
    }
    if ip[0] == 127 || ip == [0, 0, 0, 0] {
        return ALLOW;
    }
    verdict(udp::check(&ctx, mapped(ip), port_of(sa), udp::Via::Send))
}

#[cgroup_sock_addr(sendmsg6)]
pub fn warden_sendmsg6(ctx: SockAddrContext) -> i32 {
    if exempt(&ctx) {
        return ALLOW;
    }
    // SAFETY: as above.
    let sa = unsafe { &mut *ctx.sock_addr };
    let (addr, _, local) = read_ip6(sa);
    if port_of(sa) == dns::PORT && dns::enabled() {
        if foreign_netns(&ctx) {
            return DENY;
        }
        dns::redirect(&ctx, sa, addr, AF_INET6);
        return ALLOW;
    }
    if local {
        return ALLOW;
    }
    verdict(udp::check(&ctx, addr, port_of(sa), udp::Via::Send))
}

/// Warden's own socket (registered by cookie while it connects): left alone.
#[inline(always)]
fn exempt(ctx: &SockAddrContext) -> bool {
    // SAFETY: bpf_get_socket_cookie accepts a sock_addr context (Linux 4.12+); the lookup's
    // value is only tested for presence.
    unsafe { EXEMPT.get(&bpf_get_socket_cookie(ctx.as_ptr())).is_some() }
}

#[inline(always)]
fn verdict(allowed: bool) -> i32 {
    if allowed { ALLOW } else { DENY }
}

/// The destination port, host order.
#[inline(always)]
fn port_of(sa: &bpf_sock_addr) -> u16 {
    u16::from_be(sa.user_port as u16)
}

/// The IPv6 destination: its bytes, whether it is v4-mapped, and whether it stays on this host
/// (loopback or unspecified, also in v4-mapped form), which is never redirected or refused.
#[inline(always)]
fn read_ip6(sa: &bpf_sock_addr) -> ([u8; 16], bool, bool) {
    // One 32-bit load per word at a constant offset (see `rekey`).
    // SAFETY: reads of the context's own fields.
    let w = unsafe {
        [
            read_volatile(&raw const sa.user_ip6[0]),
            read_volatile(&raw const sa.user_ip6[1]),
            read_volatile(&raw const sa.user_ip6[2]),
            read_volatile(&raw const sa.user_ip6[3]),
        ]
    };
    let addr = words_to_bytes(w);
    let v4_mapped = w[0] == 0 && w[1] == 0 && addr[8..12] == [0, 0, 0xff, 0xff];
    let unspecified = w == [0, 0, 0, 0] || (v4_mapped && w[3] == 0);
    let loopback = if v4_mapped {
        addr[12] == 127
    } else {
        w[0] == 0 && w[1] == 0 && w[2] == 0 && addr[12..16] == [0, 0, 0, 1]
    };
    (addr, v4_mapped, unspecified || loopback)
}

/// TCP only. The proxy's own upstream sockets need no exemption: the proxy runs outside the
/// hooked cgroup. (An exemption by `SO_MARK` would let a root job mark its sockets and skip us.)
#[inline(always)]
fn wants_redirect(sa: &bpf_sock_addr) -> bool {
    sa.type_ == SOCK_STREAM
}

#[inline(always)]
fn words_to_bytes(w: [u32; 4]) -> [u8; 16] {
    let (a, b, c, d) = (
        w[0].to_ne_bytes(),
        w[1].to_ne_bytes(),
        w[2].to_ne_bytes(),
        w[3].to_ne_bytes(),
    );
    [
        a[0], a[1], a[2], a[3], b[0], b[1], b[2], b[3], c[0], c[1], c[2], c[3], d[0], d[1], d[2],
        d[3],
    ]
}

#[inline(always)]
fn mapped(ip: [u8; 4]) -> [u8; 16] {
    [
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ip[0], ip[1], ip[2], ip[3],
    ]
}

#[inline(always)]
fn remember(ctx: &SockAddrContext, addr: [u8; 16], user_port: u32, family: u16) {
    // SAFETY: bpf_get_socket_cookie accepts a sock_addr context (Linux 4.12+).
    let cookie = unsafe { bpf_get_socket_cookie(ctx.as_ptr()) };
    let pid_tgid = bpf_get_current_pid_tgid();
    let value = OrigDst {
        addr,
        port: u16::from_be(user_port as u16),
        family,
        pid: pid_tgid as u32,
        tgid: (pid_tgid >> 32) as u32,
        _pad: 0,
        cookie,
        comm: bpf_get_current_comm().unwrap_or([0; 16]),
    };
    // A full map only loses attribution for this one connection; the proxy still relays it.
    let _ = PENDING.insert(&cookie, &value, 0);
}

#[sock_ops]
pub fn warden_sock_ops(ctx: SockOpsContext) -> u32 {
    if ctx.op() == BPF_SOCK_OPS_TCP_CONNECT_CB {
        rekey(&ctx);
    }
    1
}

#[inline(always)]
fn rekey(ctx: &SockOpsContext) {
    // SAFETY: bpf_get_socket_cookie accepts a sock_ops context (Linux 4.18+).
    let cookie = unsafe { bpf_get_socket_cookie(ctx.as_ptr()) };
    // SAFETY: the value is copied out before the entry is removed below.
    let Some(value) = (unsafe { PENDING.get(&cookie) }).copied() else {
        return;
    };
    let addr = if ctx.family() == u32::from(AF_INET) {
        mapped(ctx.local_ip4().to_ne_bytes())
    } else {
        // SAFETY: valid context pointer. Each word is its own volatile 32-bit load at a constant
        // offset: the verifier rejects loads through a computed ctx pointer, which is what the
        // compiler makes of array copies or loops here (PLATFORM-NOTES).
        let ops = ctx.ops;
        let w = unsafe {
            [
                read_volatile(&raw const (*ops).local_ip6[0]),
                read_volatile(&raw const (*ops).local_ip6[1]),
                read_volatile(&raw const (*ops).local_ip6[2]),
                read_volatile(&raw const (*ops).local_ip6[3]),
            ]
        };
        words_to_bytes(w)
    };
    let key = SockKey {
        addr,
        // `local_port` is in host byte order in bpf_sock_ops.
        port: ctx.local_port() as u16,
        _pad: [0; 6],
    };
    let _ = ORIG_DST.insert(&key, &value, 0);
    let _ = PENDING.remove(&cookie);
}
