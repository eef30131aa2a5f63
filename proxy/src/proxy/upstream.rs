//! Dialing the real destination.
//!
//! The proxy's own sockets are registered with the hooks while they connect
//! ([`crate::ebpf::exempt`]), so they are never redirected even when Warden runs inside the cgroup
//! it guards (a daemon on the whole machine). They also carry [`UPSTREAM_MARK`] so that an iptables `REDIRECT` rule (the fallback for hosts
//! without cgroup BPF) can exclude them with `-m mark ! --mark 0x5752444e`; the eBPF hook does
//! not honour the mark, since a root job could set it too.

use std::{io, net::SocketAddr, time::Duration};

use tokio::net::{TcpSocket, TcpStream};

/// `SO_MARK` on upstream sockets ("WRDN"), for iptables rules to exclude.
pub const UPSTREAM_MARK: u32 = 0x5752_444e;
/// How long to wait for the destination to accept before resetting the client.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Upstream keepalive: the client's own keepalive probes now end at the proxy, which always
/// answers, so a destination that vanished is only noticed through ours.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(60);

/// Whether relaying to `dst` could only loop back into this machine (and into the proxy).
/// Redirected connections never have such a destination; `SO_ORIGINAL_DST` on a connection made
/// straight to the proxy does.
pub fn is_local_only(dst: SocketAddr) -> bool {
    let ip = dst.ip().to_canonical();
    ip.is_loopback() || ip.is_unspecified()
}

/// Connects to `dst`, with TCP_NODELAY and keepalive set.
pub async fn dial(dst: SocketAddr) -> io::Result<TcpStream> {
    if is_local_only(dst) {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "refusing to relay to a loopback or unspecified address",
        ));
    }
    let socket = if dst.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_nodelay(true)?;
    socket.set_keepalive(true)?;
    // Needs CAP_NET_ADMIN; without it only iptables setups lose their exclusion.
    if let Err(e) = socket2::SockRef::from(&socket).set_mark(UPSTREAM_MARK) {
        tracing::debug!(error = %e, "cannot set SO_MARK on the upstream socket");
    }
    let keepalive = socket2::TcpKeepalive::new().with_time(KEEPALIVE_IDLE);
    socket2::SockRef::from(&socket).set_tcp_keepalive(&keepalive)?;
    let _exempt = crate::ebpf::exempt(&socket);
    match tokio::time::timeout(CONNECT_TIMEOUT, socket.connect(dst)).await {
        Ok(result) => result,
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_only_destinations() {
        for local in [
            "127.0.0.1:80",
            "0.0.0.0:1",
            "[::1]:443",
            "[::]:1",
            "[::ffff:127.0.0.9]:8",
            "[::ffff:0.0.0.0]:9",
        ] {
            assert!(is_local_only(local.parse().unwrap()), "{local}");
        }
        for remote in [
            "192.0.2.1:80",
            "[2001:db8::1]:443",
            "[::ffff:203.0.113.1]:7",
        ] {
            assert!(!is_local_only(remote.parse().unwrap()), "{remote}");
        }
    }

    #[tokio::test]
    async fn refuses_to_dial_loopback() {
        let err = dial("127.0.0.1:9".parse().unwrap()).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
    }
}
