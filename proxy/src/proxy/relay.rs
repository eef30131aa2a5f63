//! Relaying bytes both ways until both sides are done.
//!
//! Each direction is a read into one buffer and a write out of it (no byte is copied twice in
//! user space). The buffer is held only while bytes flow: when the socket has nothing more to
//! read it goes back to the allocator, so an idle connection (a keep-alive pool, a long poll)
//! costs no buffer at all (issue #11: memory per idle connection). EOF from one side becomes a `shutdown(SHUT_WR)` towards the other, so half-closed
//! protocols keep working; an error on one side is reported with who caused it, so the caller
//! can reset the other side instead of closing it cleanly.

use std::{
    io,
    sync::atomic::{AtomicU64, Ordering},
};

use tokio::{
    io::{AsyncWrite, AsyncWriteExt},
    net::{TcpStream, tcp::ReadHalf},
};

use super::http1::{Refusal, Requests};

const BUF_SIZE: usize = 64 * 1024;

/// Which end of the relay failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The job's process.
    Client,
    /// The destination.
    Upstream,
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Side::Client => "client",
            Side::Upstream => "upstream",
        })
    }
}

/// A relay failure and who caused it.
#[derive(Debug, thiserror::Error)]
#[error("{side} {op}: {source}")]
pub struct RelayError {
    /// The side whose socket failed.
    pub side: Side,
    /// `read`, `write` or `shutdown`.
    pub op: &'static str,
    /// The OS error.
    pub source: io::Error,
}

/// Byte counters, updated as data moves so they are right even if the relay is interrupted.
#[derive(Debug, Default)]
pub struct Counters {
    /// Client to destination.
    pub up: AtomicU64,
    /// Destination to client.
    pub down: AtomicU64,
}

/// Relays until both directions reached EOF or one side failed. With `requests`, every byte the
/// client sends is first fed to it, and a refusal ends the relay as an error of the client's
/// (op `policy`) before the refused bytes are passed on. Without, the bytes go socket to
/// socket through a pipe ([`super::splice`]) and never enter user space.
pub async fn relay(
    client: &mut TcpStream,
    upstream: &mut TcpStream,
    counters: &Counters,
    requests: Option<&mut Requests>,
) -> Result<(), RelayError> {
    if requests.is_none() {
        let (c, u) = (&*client, &*upstream);
        let up = super::splice::pump(c, u, &counters.up, (Side::Client, Side::Upstream));
        let down = super::splice::pump(u, c, &counters.down, (Side::Upstream, Side::Client));
        return tokio::try_join!(up, down).map(|_| ());
    }
    let (cr, mut cw) = client.split();
    let (ur, mut uw) = upstream.split();
    let up = pump(
        &cr,
        &mut uw,
        &counters.up,
        (Side::Client, Side::Upstream),
        requests,
    );
    let down = pump(
        &ur,
        &mut cw,
        &counters.down,
        (Side::Upstream, Side::Client),
        None,
    );
    tokio::try_join!(up, down).map(|_| ())
}

/// A refusal from [`Requests`] as a relay error (op `policy`).
pub fn refused(r: Refusal) -> RelayError {
    let text = match r {
        Refusal::HostChanged(host) => {
            format!("a later request on the connection named another host ({host})")
        }
        Refusal::Unframed(why) => format!("plain HTTP that cannot be followed: {why}"),
    };
    RelayError {
        side: Side::Client,
        op: "policy",
        source: io::Error::new(io::ErrorKind::PermissionDenied, text),
    }
}

async fn pump<W>(
    r: &ReadHalf<'_>,
    w: &mut W,
    count: &AtomicU64,
    (from, to): (Side, Side),
    mut requests: Option<&mut Requests>,
) -> Result<(), RelayError>
where
    W: AsyncWrite + Unpin,
{
    let read_error = |source| RelayError {
        side: from,
        op: "read",
        source,
    };
    // `None` while the connection is idle; never zeroed (reads fill it).
    let mut buf: Option<Vec<u8>> = None;
    loop {
        if buf.is_none() {
            r.readable().await.map_err(read_error)?;
        }
        let b = buf.get_or_insert_with(|| Vec::with_capacity(BUF_SIZE));
        b.clear();
        let n = match r.try_read_buf(b) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                buf = None;
                continue;
            }
            Err(e) => return Err(read_error(e)),
        };
        if n == 0 {
            return match w.shutdown().await {
                Err(e) if e.kind() != io::ErrorKind::NotConnected => Err(RelayError {
                    side: to,
                    op: "shutdown",
                    source: e,
                }),
                _ => Ok(()),
            };
        }
        if let Some(req) = requests.as_deref_mut() {
            req.feed(&b[..n]).map_err(refused)?;
        }
        w.write_all(&b[..n]).await.map_err(|source| RelayError {
            side: to,
            op: "write",
            source,
        })?;
        count.fetch_add(n as u64, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use tokio::{io::AsyncReadExt, net::TcpListener};

    use super::*;

    /// A connected pair of real loopback sockets.
    async fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        let (a, b) = tokio::join!(TcpStream::connect(l.local_addr().unwrap()), l.accept());
        (a.unwrap(), b.unwrap().0)
    }

    /// client_app <-> (client | relay | upstream) <-> server_app
    async fn relayed() -> (
        TcpStream,
        TcpStream,
        tokio::task::JoinHandle<(Result<(), RelayError>, Counters)>,
    ) {
        let (client_app, mut client) = pair().await;
        let (mut upstream, server_app) = pair().await;
        let task = tokio::spawn(async move {
            let counters = Counters::default();
            let r = relay(&mut client, &mut upstream, &counters, None).await;
            (r, counters)
        });
        (client_app, server_app, task)
    }

    #[tokio::test]
    async fn half_close_is_propagated_and_bytes_counted() {
        let (mut client_app, mut server_app, task) = relayed().await;
        client_app.write_all(b"request").await.unwrap();
        client_app.shutdown().await.unwrap();
        // The server sees the request and then EOF, yet can still answer.
        let mut got = Vec::new();
        server_app.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"request");
        server_app
            .write_all(b"response after half-close")
            .await
            .unwrap();
        server_app.shutdown().await.unwrap();
        let mut answer = Vec::new();
        client_app.read_to_end(&mut answer).await.unwrap();
        assert_eq!(answer, b"response after half-close");
        let (result, counters) = task.await.unwrap();
        result.unwrap();
        assert_eq!(counters.up.load(Ordering::Relaxed), 7);
        assert_eq!(counters.down.load(Ordering::Relaxed), 25);
    }

    #[tokio::test]
    async fn upstream_reset_is_reported_as_upstream() {
        let (mut client_app, server_app, task) = relayed().await;
        socket2::SockRef::from(&server_app)
            .set_linger(Some(std::time::Duration::ZERO))
            .unwrap();
        drop(server_app);
        let (result, _) = task.await.unwrap();
        let err = result.unwrap_err();
        assert_eq!(
            (err.side, err.source.kind()),
            (Side::Upstream, io::ErrorKind::ConnectionReset)
        );
        // The relay's caller resets the client; here the client end just sees the relay's close.
        let mut rest = Vec::new();
        let _ = client_app.read_to_end(&mut rest).await;
    }

    #[tokio::test]
    async fn large_transfer_arrives_intact() {
        let (mut client_app, mut server_app, task) = relayed().await;
        let payload: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let sent = payload.clone();
        let writer = tokio::spawn(async move {
            client_app.write_all(&sent).await.unwrap();
            client_app.shutdown().await.unwrap();
            client_app
        });
        let mut got = Vec::new();
        server_app.read_to_end(&mut got).await.unwrap();
        assert!(got == payload, "payload corrupted in transit");
        drop(server_app);
        drop(writer.await.unwrap());
        let (_, counters) = task.await.unwrap();
        assert_eq!(counters.up.load(Ordering::Relaxed), payload.len() as u64);
    }
}
