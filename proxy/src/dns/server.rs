//! Where the job's queries arrive: UDP sockets on 127.0.0.1 and [::1] (one port for both, the
//! port the eBPF redirect writes), and DNS-over-TCP streams the proxy hands over.

use std::{
    io,
    net::{Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpStream, UdpSocket},
    sync::{Semaphore, watch},
    task::JoinSet,
};

use super::{Asker, Dns, Transport};
use crate::ebpf::Original;

/// Queries answered at once; more wait for a slot (the socket buffer holds them meanwhile).
const CONCURRENT_QUERIES: usize = 256;
/// How long queries in flight at stop get to finish; the rest are cut (and recorded as
/// interrupted).
const DRAIN: Duration = Duration::from_secs(3);
/// A TCP client idle this long between queries is closed (RFC 7766 §6.2.3 suggests seconds).
const TCP_IDLE: Duration = Duration::from_secs(10);

/// The resolver's UDP sockets.
pub struct Listeners {
    v4: UdpSocket,
    v6: Option<UdpSocket>,
}

impl Listeners {
    /// Binds 127.0.0.1 on a free port and [::1] on the same one (IPv6 optional, as for the
    /// proxy: without it IPv6 queries fail closed).
    pub async fn bind() -> io::Result<Self> {
        let mut last_err = None;
        for _ in 0..16 {
            let v4 = UdpSocket::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
            let port = v4.local_addr()?.port();
            match UdpSocket::bind(SocketAddr::from((Ipv6Addr::LOCALHOST, port))).await {
                Ok(v6) => return Ok(Self { v4, v6: Some(v6) }),
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => last_err = Some(e),
                Err(e) => {
                    tracing::warn!(error = %e, "no IPv6 loopback: IPv6 DNS queries from the job will fail");
                    return Ok(Self { v4, v6: None });
                }
            }
        }
        Err(last_err.unwrap_or_else(|| io::Error::other("no free port")))
    }

    /// The port both sockets use.
    pub fn port(&self) -> u16 {
        self.v4.local_addr().map_or(0, |a| a.port())
    }

    /// Answers queries until `stop` turns true, then gives those in flight a moment to finish.
    pub async fn serve(self, dns: Arc<Dns>, mut stop: watch::Receiver<bool>) {
        let slots = Arc::new(Semaphore::new(CONCURRENT_QUERIES));
        let sockets: Vec<Arc<UdpSocket>> = std::iter::once(self.v4)
            .chain(self.v6)
            .map(Arc::new)
            .collect();
        let (cut, _) = watch::channel(false);
        let mut loops = JoinSet::new();
        for socket in sockets {
            let (dns, slots, cut) = (dns.clone(), slots.clone(), cut.subscribe());
            loops.spawn(receive(socket, dns, slots, cut));
        }
        let _ = stop.wait_for(|s| *s).await;
        loops.abort_all();
        while loops.join_next().await.is_some() {}
        // Queries in flight hold a slot each: wait for them, then cut the stragglers (each
        // writes its record as it is dropped) and wait for that.
        let all = CONCURRENT_QUERIES as u32;
        if tokio::time::timeout(DRAIN, slots.acquire_many(all))
            .await
            .is_err()
        {
            cut.send_replace(true);
            let _ = tokio::time::timeout(Duration::from_secs(1), slots.acquire_many(all)).await;
        }
    }
}

async fn receive(
    socket: Arc<UdpSocket>,
    dns: Arc<Dns>,
    slots: Arc<Semaphore>,
    cut: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 65_535];
    loop {
        let (n, peer) = match socket.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "DNS receive failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let query = buf[..n].to_vec();
        let (socket, dns, mut cut) = (socket.clone(), dns.clone(), cut.clone());
        tokio::spawn(async move {
            let asker = Asker {
                source: peer,
                transport: Transport::Udp,
                orig: None,
            };
            tokio::select! {
                reply = dns.answer(&query, asker) => {
                    if let Some(reply) = reply
                        && let Err(e) = socket.send_to(&reply, peer).await
                    {
                        tracing::debug!(error = %e, %peer, "DNS reply not sent");
                    }
                }
                () = async { let _ = cut.wait_for(|c| *c).await; } => {}
            }
            drop(permit);
        });
    }
}

/// Serves one DNS-over-TCP connection the proxy accepted (original destination `orig`): queries
/// one after another (RFC 7766 framing) until the client closes or idles. Returns the bytes read
/// and written.
pub async fn serve_tcp(dns: &Dns, mut client: TcpStream, orig: &Original) -> (u64, u64) {
    let peer = client
        .peer_addr()
        .unwrap_or_else(|_| SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)));
    let (mut up, mut down) = (0u64, 0u64);
    let mut buf = Vec::with_capacity(512);
    loop {
        // Answer every complete frame in the buffer, then read more.
        loop {
            let (consumed, query) = match sniff::dns::tcp_unframe(&buf) {
                sniff::Parse::Done((consumed, query)) => (consumed, query.to_vec()),
                sniff::Parse::NeedMore => break,
                _ => return (up, down),
            };
            buf.drain(..consumed);
            let asker = Asker {
                source: peer,
                transport: Transport::Tcp,
                orig: Some(orig.clone()),
            };
            let Some(reply) = dns.answer(&query, asker).await else {
                return (up, down);
            };
            let Some(framed) = sniff::dns::tcp_frame(&reply) else {
                return (up, down);
            };
            if client.write_all(&framed).await.is_err() {
                return (up, down);
            }
            down += framed.len() as u64;
        }
        match tokio::time::timeout(TCP_IDLE, client.read_buf(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => up += n as u64,
            _ => return (up, down),
        }
    }
}
