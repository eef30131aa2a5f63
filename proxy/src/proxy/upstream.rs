//! Dialing the real destination on a socket the redirect leaves alone.

use std::{io, net::SocketAddr, time::Duration};

use tokio::net::{TcpSocket, TcpStream};

/// How long to wait for the destination to accept before resetting the client.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Connects to `dst` with `SO_MARK = mark` (when non-zero), which the connect hook skips, so the
/// proxy's own traffic is never redirected back to itself even when it runs in a hooked cgroup.
pub async fn dial(dst: SocketAddr, mark: u32) -> io::Result<TcpStream> {
    let socket = if dst.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if mark != 0 {
        socket2::SockRef::from(&socket).set_mark(mark)?;
    }
    socket.set_nodelay(true)?;
    match tokio::time::timeout(CONNECT_TIMEOUT, socket.connect(dst)).await {
        Ok(result) => result,
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out")),
    }
}
