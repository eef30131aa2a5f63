//! Relaying one direction of a pass-through connection with `splice(2)`: socket → pipe →
//! socket, so the bytes never enter user space (issue #11: CPU per GiB relayed).
//!
//! The pipe exists only while bytes flow. When the source has had nothing to read for a
//! moment it is closed, so an idle connection holds no pipe (two descriptors and up to 64 KiB of pages)
//! and ten thousand idle connections do not run out of descriptors.

use std::{
    io,
    os::fd::{AsFd, OwnedFd},
    sync::atomic::{AtomicU64, Ordering},
};

use tokio::{io::Interest, net::TcpStream};

use super::relay::{RelayError, Side};
use crate::sys;

/// The most one splice moves: the default pipe capacity.
const CHUNK: usize = 64 * 1024;
/// How long a connection with nothing to read keeps its pipe.
const KEEP_PIPE: std::time::Duration = std::time::Duration::from_millis(50);

/// Moves bytes from `from` to `to` until `from` ends (then `to` is shut down for writing) or
/// one side fails. `count` grows as bytes reach `to`.
pub async fn pump(
    from: &TcpStream,
    to: &TcpStream,
    count: &AtomicU64,
    (src, dst): (Side, Side),
) -> Result<(), RelayError> {
    let err = |side, op| move |source| RelayError { side, op, source };
    let mut pipe: Option<(OwnedFd, OwnedFd)> = None;
    loop {
        if pipe.is_none() {
            from.readable().await.map_err(err(src, "read"))?;
            pipe = Some(sys::pipe().map_err(err(src, "read"))?);
        }
        let Some((pipe_r, pipe_w)) = &pipe else {
            continue;
        };
        let spliced = from.try_io(Interest::READABLE, || {
            sys::splice(from.as_fd(), pipe_w.as_fd(), CHUNK)
        });
        let mut pending = match spliced {
            Ok(0) => return shutdown_write(to).map_err(err(dst, "shutdown")),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                // A pause in a transfer keeps the pipe; a connection idle for longer gives it
                // back until there is something to move again.
                if tokio::time::timeout(KEEP_PIPE, from.readable())
                    .await
                    .is_err()
                {
                    pipe = None;
                }
                continue;
            }
            Err(e) => return Err(err(src, "read")(e)),
        };
        while pending > 0 {
            to.writable().await.map_err(err(dst, "write"))?;
            match to.try_io(Interest::WRITABLE, || {
                sys::splice(pipe_r.as_fd(), to.as_fd(), pending)
            }) {
                Ok(n) => {
                    pending -= n;
                    count.fetch_add(n as u64, Ordering::Relaxed);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(err(dst, "write")(e)),
            }
        }
    }
}

/// `shutdown(SHUT_WR)`, as `AsyncWriteExt::shutdown` does for a `TcpStream`; a peer that is
/// already gone is not an error.
fn shutdown_write(s: &TcpStream) -> io::Result<()> {
    match socket2::SockRef::from(s).shutdown(std::net::Shutdown::Write) {
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
        other => other,
    }
}
