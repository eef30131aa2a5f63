//! What a test can ask an origin: did a connection reach it, from where, and what was asked.
//!
//! Half of Warden's promises are negative ("this connection never reached its destination"), so
//! each origin keeps a log of every connection it accepted and every HTTP request it answered.
//! Accepts are logged before a byte is served and requests before the response is written, so
//! once a client has seen an answer the log already shows it; [`Origin::wait_for_connections`]
//! covers clients that do not wait for an answer.

use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A handle on one running origin (cheap to clone; all clones see the same log).
#[derive(Clone, Debug)]
pub struct Origin {
    name: String,
    addrs: Vec<SocketAddr>,
    log: Arc<Log>,
}

/// One accepted connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    /// The client's address as the origin sees it (the proxy's, when warden relayed it).
    pub peer: SocketAddr,
    /// The listening address the connection arrived on.
    pub local: SocketAddr,
}

/// One HTTP request an HTTP or TLS origin answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The client's address as the origin sees it.
    pub peer: SocketAddr,
    /// The server name the TLS client sent, if this was TLS and it sent one.
    pub sni: Option<String>,
    /// The ALPN protocol agreed, if this was TLS and one was.
    pub alpn: Option<String>,
    /// Request method, e.g. `GET`.
    pub method: String,
    /// Request target as sent, e.g. `/x?y=1`.
    pub target: String,
    /// The `Host` header, if present.
    pub host: Option<String>,
    /// Length of the request body that was read (`Content-Length` bodies only).
    pub body_len: usize,
}

#[derive(Debug, Default)]
struct Log {
    entries: Mutex<Entries>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct Entries {
    accepted: Vec<Accepted>,
    requests: Vec<Request>,
    errors: Vec<String>,
}

impl Origin {
    pub(super) fn new(name: &str, addrs: Vec<SocketAddr>) -> Origin {
        Origin {
            name: name.to_owned(),
            addrs,
            log: Arc::default(),
        }
    }

    /// The name it introduces itself with in answers (`hello from <name> …`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Every address it listens on.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Its first (IPv4, for the standard origins) address.
    pub fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    /// How many connections it has accepted.
    pub fn connections(&self) -> usize {
        self.entries().accepted.len()
    }

    /// How many connections it has accepted on its listening address `local` (an origin may
    /// listen on several, e.g. IPv4 and IPv6).
    pub fn connections_on(&self, local: SocketAddr) -> usize {
        self.entries()
            .accepted
            .iter()
            .filter(|a| a.local == local)
            .count()
    }

    /// Every connection it has accepted, oldest first.
    pub fn accepted(&self) -> Vec<Accepted> {
        self.entries().accepted.clone()
    }

    /// The peer address of every connection it has accepted.
    pub fn peers(&self) -> Vec<SocketAddr> {
        self.entries().accepted.iter().map(|a| a.peer).collect()
    }

    /// Every HTTP request it has answered, oldest first.
    pub fn requests(&self) -> Vec<Request> {
        self.entries().requests.clone()
    }

    /// Failed handshakes, malformed requests and other per-connection errors, for diagnosis.
    pub fn errors(&self) -> Vec<String> {
        self.entries().errors.clone()
    }

    /// Waits until at least `n` connections were accepted or `timeout` passed, and returns the
    /// count then.
    pub fn wait_for_connections(&self, n: usize, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        let mut entries = self.entries();
        while entries.accepted.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            entries = self.log.changed.wait_timeout(entries, left).unwrap().0;
        }
        entries.accepted.len()
    }

    pub(super) fn record_accept(&self, accepted: Accepted) {
        self.entries().accepted.push(accepted);
        self.log.changed.notify_all();
    }

    pub(super) fn record_request(&self, request: Request) {
        self.entries().requests.push(request);
    }

    pub(super) fn record_error(&self, peer: SocketAddr, error: impl std::fmt::Display) {
        self.entries().errors.push(format!("{peer}: {error}"));
    }

    fn entries(&self) -> MutexGuard<'_, Entries> {
        // A panic while holding the lock cannot leave the log half-written; keep serving.
        self.log.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}
