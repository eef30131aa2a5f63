//! What userspace reads from and writes to the attached programs' maps: original destinations
//! (by client address, for the proxy and the resolver) and the exemptions of Warden's own
//! sockets.

use crate::lock;
use std::{
    net::{IpAddr, Ipv6Addr, SocketAddr},
    sync::Mutex,
};

use aya::maps::{HashMap, MapData};
use redirect_ebpf::{OrigDst, SockKey};

/// The exemption map of the attached programs (one session per process).
static EXEMPTIONS: Mutex<Option<HashMap<MapData, u64, u8>>> = Mutex::new(None);

/// Installs (or, with `None`, forgets) the exemption map of the attached programs.
pub(super) fn set_exemptions(map: Option<HashMap<MapData, u64, u8>>) {
    *lock(&EXEMPTIONS) = map;
}

/// Registers one of Warden's own sockets with the hooks until the guard drops, so connecting it
/// is not redirected (a daemon may run inside the cgroup it guards, e.g. the whole machine).
/// Hold it across `connect()`; a no-op when no programs are attached.
pub fn exempt(socket: &impl std::os::fd::AsRawFd) -> Exempt {
    let cookie = match crate::sys::socket_cookie(socket) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "no socket cookie; the socket is not exempt from the hooks");
            return Exempt(None);
        }
    };
    match lock(&EXEMPTIONS).as_mut() {
        Some(map) => match map.insert(cookie, 1, 0) {
            Ok(()) => Exempt(Some(cookie)),
            Err(e) => {
                tracing::warn!(error = %e, "cannot exempt a socket from the hooks");
                Exempt(None)
            }
        },
        None => Exempt(None),
    }
}

/// See [`exempt`].
#[must_use = "the socket is exempt only while the guard lives"]
pub struct Exempt(Option<u64>);

impl Drop for Exempt {
    fn drop(&mut self) {
        if let Some(cookie) = self.0
            && let Some(map) = lock(&EXEMPTIONS).as_mut()
        {
            let _ = map.remove(&cookie);
        }
    }
}

/// What the connect hook recorded for one redirected connection.
#[derive(Debug, Clone)]
pub struct Original {
    /// The destination the process asked for.
    pub dst: SocketAddr,
    /// Process id (tgid) of the caller of `connect()`.
    pub pid: u32,
    /// Thread name of the caller.
    pub comm: String,
    /// The caller used an IPv6 socket with a v4-mapped address (`::ffff:a.b.c.d`).
    pub v4_mapped: bool,
}

/// Original destinations by client address, as the sockops program filed them.
pub struct OrigDstTable(Mutex<HashMap<MapData, SockKey, OrigDst>>);

impl OrigDstTable {
    pub(super) fn new(map: HashMap<MapData, SockKey, OrigDst>) -> Self {
        Self(Mutex::new(map))
    }

    /// Looks up (and forgets) the connection (or DNS query) whose client end is `peer`, as the
    /// proxy accepted it (or the resolver received it).
    pub fn take(&self, peer: SocketAddr) -> Option<Original> {
        let key = SockKey {
            addr: to_mapped(peer.ip()).octets(),
            port: peer.port(),
            _pad: [0; 6],
        };
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let value = map.get(&key, 0).ok()?;
        let _ = map.remove(&key);
        Some(original_from(&value))
    }
}

impl OrigDstTable {
    /// Looks up, without forgetting, the entry for `peer` (DNS: a socket may send several
    /// queries from one port, each refreshing the entry as it leaves).
    pub fn get(&self, peer: SocketAddr) -> Option<Original> {
        let key = SockKey {
            addr: to_mapped(peer.ip()).octets(),
            port: peer.port(),
            _pad: [0; 6],
        };
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&key, 0).ok().map(|v| original_from(&v))
    }
}

fn to_mapped(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

fn original_from(v: &OrigDst) -> Original {
    let ip = Ipv6Addr::from(v.addr);
    // IPv4 and v4-mapped destinations are both IPv4 connections on the wire.
    let v4 = ip.to_ipv4_mapped();
    Original {
        dst: SocketAddr::new(v4.map_or(IpAddr::V6(ip), IpAddr::V4), v.port),
        pid: v.tgid,
        comm: c_str(&v.comm),
        v4_mapped: v4.is_some() && v.family == redirect_ebpf::AF_INET6,
    }
}

/// A NUL-padded kernel string.
pub fn c_str(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}
