//! Every packet the job sends passes here (`cgroup_skb/egress`, Linux 4.10), after the socket
//! hooks chose its destination.
//!
//! Two jobs: name the sender of each DNS query for Warden's resolver (`dns::file_query`), and
//! drop packets that would go somewhere other than the destination the hooks saw. An IPv6
//! routing header (`setsockopt(IPV6_RTHDR)` needs no privilege, or per message with a control
//! message the hooks never see) sends a datagram or a SYN addressed to `::1` — which the hooks
//! leave alone — to whatever first segment the job wrote; IPv4 source-routing options do the
//! same with `CAP_NET_RAW`. Such packets are dropped in every mode (the sender gets `EPERM`):
//! no ordinary client sets them.

use aya_ebpf::{macros::cgroup_skb, programs::SkBuffContext};

use crate::dns;

/// `ETH_P_IP` as `__sk_buff::protocol` holds it (network order).
pub const ETH_P_IP_BE: u32 = 0x0800u16.to_be() as u32;
/// `ETH_P_IPV6`, likewise.
pub const ETH_P_IPV6_BE: u32 = 0x86DDu16.to_be() as u32;
/// UDP's protocol number.
pub const IPPROTO_UDP: u8 = 17;
/// IPv6 extension headers that may come before a routing header (RFC 8200 §4.1).
const IPV6_HOP_BY_HOP: u8 = 0;
const IPV6_DEST_OPTS: u8 = 60;
/// The IPv6 routing header.
const IPV6_ROUTING: u8 = 43;
/// Extension headers looked through before giving up (there is no reason for more).
const MAX_EXT_HEADERS: usize = 4;

const PASS: i32 = 1;
const DROP: i32 = 0;

#[cgroup_skb(egress)]
pub fn warden_egress(ctx: SkBuffContext) -> i32 {
    if source_routed(&ctx) {
        return DROP;
    }
    let _ = dns::file_query(&ctx);
    PASS
}

/// Whether the packet carries IPv4 options or an IPv6 routing header (or cannot be read far
/// enough to tell, which is treated the same: fail closed).
#[inline(always)]
fn source_routed(ctx: &SkBuffContext) -> bool {
    match ctx.skb.protocol() {
        ETH_P_IP_BE => match ctx.load::<u8>(0) {
            // IHL above 5 words: options follow the fixed header.
            Ok(b) => b & 0x0f > 5,
            Err(_) => true,
        },
        ETH_P_IPV6_BE => {
            let Ok(mut next) = ctx.load::<u8>(6) else {
                return true;
            };
            let mut at = 40usize;
            for _ in 0..MAX_EXT_HEADERS {
                if next == IPV6_ROUTING {
                    return true;
                }
                if next != IPV6_HOP_BY_HOP && next != IPV6_DEST_OPTS {
                    return false;
                }
                let Ok(ext) = ctx.load::<[u8; 2]>(at) else {
                    return true;
                };
                next = ext[0];
                at += (usize::from(ext[1]) + 1) * 8;
            }
            true
        }
        _ => false,
    }
}
