//! UDP other than DNS: one event per flow (socket × destination); QUIC (port 443) and DNS over
//! QUIC (853) refused with `EPERM` in both modes, and the rest in block mode unless an address
//! rule allows it.
//!
//! Called from connect4/6 (connected sockets) and sendmsg4/6 (each unconnected datagram). The
//! flow map only remembers which flows were reported; the decision is an LPM-trie lookup that
//! userspace filled from the policy's address rules.

use aya_ebpf::{
    EbpfContext,
    helpers::{bpf_get_current_comm, bpf_get_current_pid_tgid, generated::bpf_get_socket_cookie},
    macros::map,
    maps::{LpmTrie, LruHashMap, lpm_trie::Key},
    programs::SockAddrContext,
};
use redirect_ebpf::{UDP_ALLOW_PORTS, UDP_FLOW, UdpAllow, UdpEvent, UdpFlowKey};

use crate::{BLOCK_UDP, PROC_EVENTS, global};

/// Address rules allowing UDP, keyed by v4-mapped address and prefix length (+96 for IPv4).
#[map]
static UDP_ALLOW: LpmTrie<[u8; 16], UdpAllow> = LpmTrie::with_max_entries(16384, 0);

/// Flows already reported (LRU: a flow evicted and seen again is reported again).
#[map]
static UDP_SEEN: LruHashMap<UdpFlowKey, u8> = LruHashMap::with_max_entries(16384, 0);

const DNS_PORT: u16 = 53;
/// QUIC's port. HTTP/3 is refused in both modes so clients fall back to TCP, where Warden can see
/// the name; the refusal is reported like any other flow.
const QUIC_PORT: u16 = 443;
/// DNS over QUIC (RFC 9250) and DTLS: lookups Warden cannot see, refused in both modes.
const DOQ_PORT: u16 = 853;

/// How a UDP destination reached the hook.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// `connect()`: judged but not reported. glibc's getaddrinfo connects a UDP socket to every
    /// candidate address (RFC 6724 sorting) without sending anything, so reporting here would
    /// record flows that never existed.
    Connect,
    /// A datagram with a destination address (`sendto`/`sendmsg`): judged and reported.
    Send,
}

/// Judges (and for sends, reports) a UDP destination. Returns whether it may go ahead.
#[inline(always)]
pub fn check(ctx: &SockAddrContext, addr: [u8; 16], port: u16, via: Via) -> bool {
    let block = global(&BLOCK_UDP) != 0;
    let allowed = port != QUIC_PORT && port != DOQ_PORT && (!block || allowed_by_rule(addr, port));
    // Port 53 only gets here with the DNS layer off (`--no-dns`; otherwise `dns.rs` redirects
    // it): block mode then keeps it to the configured resolvers (userspace adds them to the
    // allow-list), so port 53 cannot carry a tunnel anywhere else. Allowed DNS is not reported.
    if via == Via::Connect || (port == DNS_PORT && allowed) {
        return allowed;
    }
    // SAFETY: bpf_get_socket_cookie accepts a sock_addr context.
    let cookie = unsafe { bpf_get_socket_cookie(ctx.as_ptr()) };
    let key = UdpFlowKey {
        cookie,
        addr,
        port,
        _pad: [0; 6],
    };
    // BPF_NOEXIST: of concurrent first datagrams, only the one that creates the entry reports.
    if UDP_SEEN.insert(&key, &0, BPF_NOEXIST).is_ok() && !report(key, !allowed) {
        // No room in the ring: forget the flow so its next datagram tries again.
        let _ = UDP_SEEN.remove(&key);
    }
    allowed
}

/// `BPF_NOEXIST` map update flag.
const BPF_NOEXIST: u64 = 1;

#[inline(always)]
fn allowed_by_rule(addr: [u8; 16], port: u16) -> bool {
    let Some(rule) = UDP_ALLOW.get(Key::new(128, addr)) else {
        return false;
    };
    if rule.any_port != 0 {
        return true;
    }
    let n = rule.nports as usize;
    for i in 0..UDP_ALLOW_PORTS {
        if i >= n {
            break;
        }
        if rule.ports[i] == port {
            return true;
        }
    }
    false
}

/// Reports a flow's first datagram; false when the ring buffer had no room.
#[inline(always)]
fn report(flow: UdpFlowKey, denied: bool) -> bool {
    let Some(mut entry) = PROC_EVENTS.reserve::<UdpEvent>(0) else {
        crate::proctrack::count_lost();
        return false;
    };
    let ev = entry.as_mut_ptr();
    let pid_tgid = bpf_get_current_pid_tgid();
    // SAFETY: `ev` points to reserved ring buffer memory the size of a UdpEvent.
    unsafe {
        (*ev).head.kind = UDP_FLOW;
        (*ev).head.pid = pid_tgid as u32;
        (*ev).head.tgid = (pid_tgid >> 32) as u32;
        (*ev).head._pad = 0;
        (*ev).head.comm = bpf_get_current_comm().unwrap_or([0; 16]);
        (*ev).flow = flow;
        (*ev).denied = u32::from(denied);
        (*ev)._pad = 0;
    }
    entry.submit(0);
    true
}
