//! The machine's real resolvers, as they were before Warden started, and how queries reach them.
//!
//! Read once at start from `/etc/resolv.conf`. When that only names a loopback stub of
//! systemd-resolved (127.0.0.53 / 127.0.0.54), the stub's own upstream servers are read from
//! `/run/systemd/resolve/resolv.conf`, so Warden talks to the same servers the stub would.
//! `--dns-upstream` overrides both. Warden's own sockets are exempt from the hooks while they
//! connect ([`crate::ebpf::exempt`]), so they never come back to Warden, even when the daemon
//! runs inside the cgroup it guards.

use std::{
    io,
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpSocket, UdpSocket},
};

/// How long one server gets to answer one UDP try.
const UDP_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a TCP exchange may take.
const TCP_TIMEOUT: Duration = Duration::from_secs(5);
/// Rounds over the server list for UDP (a lost datagram is retried).
const UDP_ROUNDS: usize = 2;
/// Where systemd-resolved writes the servers its stub forwards to.
const RESOLVED_CONF: &str = "/run/systemd/resolve/resolv.conf";

/// Errors reaching the upstream resolvers: the upstream (or the machine's configuration) is at
/// fault, never the client.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No resolver configured.
    #[error("no upstream DNS server: {0}")]
    NoServer(String),
    /// An `--dns-upstream` value that is not an address.
    #[error("invalid --dns-upstream {0:?}: expected an IP address, optionally with :port")]
    BadAddress(String),
    /// Every server failed or timed out.
    #[error("upstream DNS {servers}: {last}")]
    Failed {
        /// The servers tried.
        servers: String,
        /// The last failure.
        last: String,
    },
}

/// The resolvers queries are forwarded to, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstreams {
    servers: Vec<SocketAddr>,
}

impl Upstreams {
    /// The machine's resolvers (see the module documentation).
    pub fn from_system() -> Result<Self, Error> {
        let main = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let resolved = std::fs::read_to_string(RESOLVED_CONF).ok();
        Self::from_conf(&main, resolved.as_deref())
    }

    /// From the text of `/etc/resolv.conf` and, if present, systemd-resolved's upstream file.
    pub fn from_conf(main: &str, resolved: Option<&str>) -> Result<Self, Error> {
        let mut servers = nameservers(main);
        let stub_only = !servers.is_empty() && servers.iter().all(is_resolved_stub);
        if stub_only && let Some(upstream) = resolved.map(nameservers) {
            let upstream: Vec<SocketAddr> = upstream
                .into_iter()
                .filter(|a| !is_resolved_stub(a))
                .collect();
            if !upstream.is_empty() {
                servers = upstream;
            }
        }
        if servers.is_empty() {
            return Err(Error::NoServer(
                "/etc/resolv.conf names no nameserver; pass --dns-upstream".into(),
            ));
        }
        Ok(Self { servers })
    }

    /// `--dns-upstream` values: `ADDR`, `ADDR:PORT` or `[V6]:PORT`.
    pub fn parse(values: &[String]) -> Result<Self, Error> {
        let servers = values
            .iter()
            .flat_map(|v| v.split(',').map(str::trim).filter(|v| !v.is_empty()))
            .map(|v| {
                v.parse::<SocketAddr>()
                    .or_else(|_| v.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
                    .map_err(|_| Error::BadAddress(v.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if servers.is_empty() {
            return Err(Error::NoServer("--dns-upstream is empty".into()));
        }
        Ok(Self { servers })
    }

    /// The servers, in order.
    pub fn servers(&self) -> &[SocketAddr] {
        &self.servers
    }

    /// Sends `query` over UDP to each server in turn until one gives a reply that `accept`
    /// takes (the caller checks id and question; anything else is ignored, as a stub resolver
    /// would). Returns the reply and the server that gave it.
    pub async fn udp(
        &self,
        query: &[u8],
        accept: impl Fn(&[u8]) -> bool,
    ) -> Result<(Vec<u8>, SocketAddr), Error> {
        let mut last = String::from("no reply");
        for _ in 0..UDP_ROUNDS {
            for &server in &self.servers {
                match udp_once(server, query, &accept).await {
                    Ok(reply) => return Ok((reply, server)),
                    Err(e) => last = format!("{server}: {e}"),
                }
            }
        }
        Err(self.failed(last))
    }

    /// The same over TCP (RFC 7766), for queries that came over TCP.
    pub async fn tcp(
        &self,
        query: &[u8],
        accept: impl Fn(&[u8]) -> bool,
    ) -> Result<(Vec<u8>, SocketAddr), Error> {
        let mut last = String::from("no reply");
        for &server in &self.servers {
            match tokio::time::timeout(TCP_TIMEOUT, tcp_once(server, query)).await {
                Ok(Ok(reply)) if accept(&reply) => return Ok((reply, server)),
                Ok(Ok(_)) => last = format!("{server}: reply does not match the query"),
                Ok(Err(e)) => last = format!("{server}: {e}"),
                Err(_) => last = format!("{server}: timed out"),
            }
        }
        Err(self.failed(last))
    }

    fn failed(&self, last: String) -> Error {
        Error::Failed {
            servers: self.list(),
            last,
        }
    }

    /// The servers, comma-separated.
    pub fn list(&self) -> String {
        let servers: Vec<String> = self.servers.iter().map(ToString::to_string).collect();
        servers.join(", ")
    }
}

/// One UDP try against one server, from a fresh socket (a random source port per query).
async fn udp_once(
    server: SocketAddr,
    query: &[u8],
    accept: &impl Fn(&[u8]) -> bool,
) -> io::Result<Vec<u8>> {
    let bind: SocketAddr = match server {
        SocketAddr::V4(_) => "0.0.0.0:0".parse().expect("literal"),
        SocketAddr::V6(_) => "[::]:0".parse().expect("literal"),
    };
    let socket = UdpSocket::bind(bind).await?;
    {
        let _exempt = crate::ebpf::exempt(&socket);
        socket.connect(server).await?;
    }
    socket.send(query).await?;
    let mut buf = vec![0u8; 65_535];
    let wait = async {
        loop {
            let n = socket.recv(&mut buf).await?;
            if accept(&buf[..n]) {
                return Ok::<_, io::Error>(buf[..n].to_vec());
            }
        }
    };
    tokio::time::timeout(UDP_TIMEOUT, wait)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "timed out"))?
}

async fn tcp_once(server: SocketAddr, query: &[u8]) -> io::Result<Vec<u8>> {
    let socket = match server {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    let mut stream = {
        let _exempt = crate::ebpf::exempt(&socket);
        socket.connect(server).await?
    };
    let framed = sniff::dns::tcp_frame(query)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "query too long"))?;
    stream.write_all(&framed).await?;
    let len = stream.read_u16().await?;
    let mut reply = vec![0u8; usize::from(len)];
    stream.read_exact(&mut reply).await?;
    Ok(reply)
}

/// `nameserver` lines of a resolv.conf, port 53. An IPv6 scope (`fe80::1%eth0`) is kept as the
/// interface's index, without which a link-local server cannot be reached.
fn nameservers(conf: &str) -> Vec<SocketAddr> {
    conf.lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|a| server(a.split_whitespace().next()?))
        .collect()
}

fn server(text: &str) -> Option<SocketAddr> {
    let (addr, scope) = match text.split_once('%') {
        Some((addr, scope)) => (addr, Some(scope)),
        None => (text, None),
    };
    match (addr.parse::<IpAddr>().ok()?, scope) {
        (IpAddr::V6(v6), Some(scope)) => {
            let index = scope
                .parse::<u32>()
                .ok()
                .or_else(|| nix::net::if_::if_nametoindex(scope).ok())?;
            Some(SocketAddr::V6(std::net::SocketAddrV6::new(
                v6, 53, 0, index,
            )))
        }
        (ip, _) => Some(SocketAddr::new(ip, 53)),
    }
}

/// systemd-resolved's stub listeners.
fn is_resolved_stub(addr: &SocketAddr) -> bool {
    matches!(addr.ip(), IpAddr::V4(v4) if v4.octets() == [127, 0, 0, 53] || v4.octets() == [127, 0, 0, 54])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn servers(u: &Upstreams) -> Vec<String> {
        u.servers().iter().map(ToString::to_string).collect()
    }

    #[test]
    fn resolv_conf_servers_in_order() {
        let u = Upstreams::from_conf(
            "# c\nsearch x\nnameserver 10.0.0.2\nnameserver fe80::1%lo\nnameserver fe80::2%7\nnameserver fe80::3%no-such-if\n",
            None,
        )
        .unwrap();
        // A link-local server keeps its scope; one on an unknown interface is unusable.
        assert_eq!(
            servers(&u),
            ["10.0.0.2:53", "[fe80::1%1]:53", "[fe80::2%7]:53"]
        );
    }

    #[test]
    fn systemd_resolved_stub_is_replaced_by_its_upstreams() {
        let main = "nameserver 127.0.0.53\noptions edns0 trust-ad\n";
        let resolved = "nameserver 168.63.129.16\nnameserver 10.1.0.1\n";
        let u = Upstreams::from_conf(main, Some(resolved)).unwrap();
        assert_eq!(servers(&u), ["168.63.129.16:53", "10.1.0.1:53"]);
        // Without the upstream file, the stub itself is asked.
        let u = Upstreams::from_conf(main, None).unwrap();
        assert_eq!(servers(&u), ["127.0.0.53:53"]);
        // Another loopback resolver (dnsmasq on 127.0.0.1) is used as it is.
        let u = Upstreams::from_conf("nameserver 127.0.0.1\n", Some(resolved)).unwrap();
        assert_eq!(servers(&u), ["127.0.0.1:53"]);
    }

    #[test]
    fn no_nameserver_is_an_error() {
        assert!(Upstreams::from_conf("search x\n", None).is_err());
    }

    #[test]
    fn override_syntax() {
        let u = Upstreams::parse(&[
            "192.0.2.53".into(),
            "[2001:db8::53]:5353, 10.0.0.1:54".into(),
        ])
        .unwrap();
        assert_eq!(
            servers(&u),
            ["192.0.2.53:53", "[2001:db8::53]:5353", "10.0.0.1:54"]
        );
        assert!(matches!(
            Upstreams::parse(&["dns.google".into()]),
            Err(Error::BadAddress(_))
        ));
        assert!(Upstreams::parse(&[String::new()]).is_err());
    }
}
