//! The thin syscall layer: the few socket options and calls no safe wrapper offers.
//!
//! The only `unsafe` in the `warden` crate lives here, each call with the invariant it relies on.
#![allow(unsafe_code)]

use std::{
    io,
    os::fd::{AsRawFd, BorrowedFd, OwnedFd},
};

/// `SO_NETNS_COOKIE` (Linux 5.14): the cookie of the network namespace a socket belongs to, the
/// same value `bpf_get_netns_cookie` returns in the eBPF programs.
pub fn netns_cookie(socket: &impl AsRawFd) -> io::Result<u64> {
    let mut cookie: u64 = 0;
    let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
    // SAFETY: `cookie` and `len` are valid for writes of the sizes given, for the whole call, and
    // the fd is borrowed from a live socket.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_NETNS_COOKIE,
            (&raw mut cookie).cast(),
            &raw mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(cookie)
}

/// `SO_COOKIE` (Linux 4.13): the socket's cookie, the value `bpf_get_socket_cookie` returns for
/// it in the eBPF programs.
pub fn socket_cookie(socket: &impl AsRawFd) -> io::Result<u64> {
    let mut cookie: u64 = 0;
    let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
    // SAFETY: as in `netns_cookie`.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_COOKIE,
            (&raw mut cookie).cast(),
            &raw mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(cookie)
}

/// `splice(2)` (Linux 2.6.17) from `from` to `to`, one of which is a pipe: at most `len` bytes,
/// without blocking, moving pages instead of copying where the kernel can.
pub fn splice(from: BorrowedFd<'_>, to: BorrowedFd<'_>, len: usize) -> io::Result<usize> {
    // SAFETY: both descriptors are borrowed from live files for the whole call; null offsets
    // are what splice requires for sockets and pipes, and it writes through no pointer here.
    let n = unsafe {
        libc::splice(
            from.as_raw_fd(),
            std::ptr::null_mut(),
            to.as_raw_fd(),
            std::ptr::null_mut(),
            len,
            libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// A non-blocking, close-on-exec pipe: (read end, write end).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    #[test]
    fn sockets_have_distinct_cookies() {
        let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let (ca, cb) = (
            super::socket_cookie(&a).unwrap(),
            super::socket_cookie(&b).unwrap(),
        );
        assert_ne!(ca, cb);
        assert_ne!(ca, 0);
    }

    #[test]
    fn sockets_of_one_namespace_share_a_cookie() {
        let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let (ca, cb) = (
            super::netns_cookie(&a).unwrap(),
            super::netns_cookie(&b).unwrap(),
        );
        assert_eq!(ca, cb);
        assert_ne!(ca, 0);
    }
}
