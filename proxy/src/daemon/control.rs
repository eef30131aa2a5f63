//! The control socket: how `warden stop` and `warden status` talk to a daemon.
//!
//! One JSON request line, one JSON reply line, over a Unix socket that only root can reach: the
//! socket is 0600 in a 0700 root directory, and the daemon also checks the peer's uid
//! (`SO_PEERCRED`), so a job that lost root cannot stop enforcement.

use std::{io, path::Path, time::Duration};

use serde::{Deserialize, Serialize};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::UnixStream,
};

/// What a client asks.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase", tag = "cmd")]
pub enum Request {
    /// Report state and counts.
    Status,
    /// Flush every record, detach, clean up, exit.
    Stop,
    /// The state, then the audit log so far: one reply line followed by the log's bytes. The
    /// only request besides `status` the read-only socket takes (see [`super::state::reader_socket`]).
    Log,
}

/// A daemon's answer.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Reply {
    /// `on`, `stopped`, `lost` (the daemon is gone) or `error`.
    pub state: String,
    /// Daemon pid.
    pub pid: u32,
    /// Enforced cgroup.
    pub cgroup: String,
    /// `audit` or `block`.
    pub mode: String,
    /// Since when enforcement has been on (or was on).
    pub since: String,
    /// The audit log.
    pub audit_log: String,
    /// Connection and UDP flow records so far.
    pub connections: u64,
    /// Of which blocked.
    pub blocked: u64,
    /// The last problem the daemon saw, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When enforcement was lost (state `lost`): the last time the daemon was seen healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost_since: Option<String>,
    /// The human summary (stop only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// What later steps must set (TLS inspection's CA bundles), `NAME`, `VALUE`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<(String, String)>,
}

/// Sends `req` to the daemon listening on `socket` and waits for its reply (stop can take a few
/// seconds: open connections get time to finish).
pub async fn call(socket: &Path, req: Request) -> io::Result<Reply> {
    let stream = tokio::time::timeout(Duration::from_secs(5), UnixStream::connect(socket))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
    let (read, mut write) = stream.into_split();
    let mut line = serde_json::to_vec(&req).map_err(io::Error::other)?;
    line.push(b'\n');
    write.write_all(&line).await?;
    let mut reply = String::new();
    tokio::time::timeout(
        Duration::from_secs(60),
        BufReader::new(read).read_line(&mut reply),
    )
    .await
    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no reply in 60 s"))??;
    serde_json::from_str(&reply).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Reads one request from a connected client; `None` for anything malformed.
pub async fn read_request(stream: &mut UnixStream) -> Option<Request> {
    let mut line = String::new();
    let mut reader = BufReader::new(stream);
    tokio::time::timeout(Duration::from_secs(5), reader.read_line(&mut line))
        .await
        .ok()?
        .ok()?;
    serde_json::from_str(&line).ok()
}

/// Writes one reply line.
pub async fn write_reply(stream: &mut UnixStream, reply: &Reply) -> io::Result<()> {
    let mut line = serde_json::to_vec(reply).map_err(io::Error::other)?;
    line.push(b'\n');
    stream.write_all(&line).await
}

/// Whether the peer of `stream` is root.
pub fn peer_is_root(stream: &UnixStream) -> bool {
    peer_uid(stream) == Some(0)
}

/// The uid of the peer of `stream`.
pub fn peer_uid(stream: &UnixStream) -> Option<u32> {
    nix::sys::socket::getsockopt(stream, nix::sys::socket::sockopt::PeerCredentials)
        .ok()
        .map(|cred| cred.uid())
}

/// Sends `log` to the daemon on `socket` and copies the log that follows its reply into
/// `out`; returns the reply (the daemon's state).
pub async fn fetch_log(
    socket: &Path,
    out: &mut (impl tokio::io::AsyncWrite + Unpin),
) -> io::Result<Reply> {
    let stream = tokio::time::timeout(Duration::from_secs(5), UnixStream::connect(socket))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
    let (read, mut write) = stream.into_split();
    let mut line = serde_json::to_vec(&Request::Log).map_err(io::Error::other)?;
    line.push(b'\n');
    write.write_all(&line).await?;
    let mut read = BufReader::new(read);
    let mut reply = String::new();
    tokio::time::timeout(Duration::from_secs(30), read.read_line(&mut reply))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no reply in 30 s"))??;
    let reply: Reply =
        serde_json::from_str(&reply).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    tokio::time::timeout(
        Duration::from_secs(120),
        tokio::io::copy_buf(&mut read, out),
    )
    .await
    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "log not received in 120 s"))??;
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_one_json_word() {
        assert_eq!(
            serde_json::to_string(&Request::Stop).unwrap(),
            r#"{"cmd":"stop"}"#
        );
        assert_eq!(
            serde_json::from_str::<Request>(r#"{"cmd":"status"}"#).unwrap(),
            Request::Status
        );
        assert!(serde_json::from_str::<Request>(r#"{"cmd":"rm -rf"}"#).is_err());
    }
}
