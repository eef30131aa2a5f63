//! Relaying bytes both ways until both sides are done.
//!
//! Each direction is a read into one buffer and a write out of it (no byte is copied twice in
//! user space). EOF from one side becomes a `shutdown(SHUT_WR)` towards the other, so half-closed
//! protocols keep working; an error on one side is reported with who caused it, so the caller
//! can reset the other side instead of closing it cleanly.

use std::{
    io,
    sync::atomic::{AtomicU64, Ordering},
};

use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::TcpStream,
};

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

/// Relays until both directions reached EOF or one side failed.
pub async fn relay(
    client: &mut TcpStream,
    upstream: &mut TcpStream,
    counters: &Counters,
) -> Result<(), RelayError> {
    let (mut cr, mut cw) = client.split();
    let (mut ur, mut uw) = upstream.split();
    let up = pump(&mut cr, &mut uw, &counters.up, Side::Client, Side::Upstream);
    let down = pump(
        &mut ur,
        &mut cw,
        &counters.down,
        Side::Upstream,
        Side::Client,
    );
    tokio::try_join!(up, down).map(|_| ())
}

async fn pump<R, W>(
    r: &mut R,
    w: &mut W,
    count: &AtomicU64,
    from: Side,
    to: Side,
) -> Result<(), RelayError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; BUF_SIZE];
    loop {
        let n = r.read(&mut buf).await.map_err(|source| RelayError {
            side: from,
            op: "read",
            source,
        })?;
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
        w.write_all(&buf[..n]).await.map_err(|source| RelayError {
            side: to,
            op: "write",
            source,
        })?;
        count.fetch_add(n as u64, Ordering::Relaxed);
    }
}
