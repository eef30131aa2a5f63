//! Where an accepted connection was going: the eBPF table first, then `SO_ORIGINAL_DST`.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use nix::sys::socket::{getsockopt, sockopt};
use tokio::net::TcpStream;

use crate::ebpf::Original;

use super::Context;

/// Finds the original destination of `stream`, accepted from `peer`.
pub fn find(ctx: &Context, stream: &TcpStream, peer: SocketAddr) -> Option<Original> {
    if let Some(found) = ctx.orig_dst.as_ref().and_then(|t| t.take(peer)) {
        return Some(found);
    }
    // Steered by iptables REDIRECT: netfilter remembers the pre-NAT destination.
    let dst = if peer.is_ipv4() {
        getsockopt(stream, sockopt::OriginalDst).ok().map(|sa| {
            SocketAddr::from((
                Ipv4Addr::from(u32::from_be(sa.sin_addr.s_addr)),
                u16::from_be(sa.sin_port),
            ))
        })
    } else {
        getsockopt(stream, sockopt::Ip6tOriginalDst).ok().map(|sa| {
            SocketAddr::from((
                Ipv6Addr::from(sa.sin6_addr.s6_addr),
                u16::from_be(sa.sin6_port),
            ))
        })
    }?;
    // A connection made straight to the proxy (not NATed) reports the proxy's own address.
    if super::upstream::is_local_only(dst) {
        return None;
    }
    Some(Original {
        dst,
        pid: 0,
        comm: String::new(),
        v4_mapped: false,
    })
}
