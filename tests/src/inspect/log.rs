//! What a test can ask an inspection origin: which connections reached it, with which TLS
//! parameters, and exactly what each HTTP request looked like when it arrived.
//!
//! TLS inspection changes the connection between client and origin, so its tests compare both
//! ends: the client's output on one side, and on this side the HTTP version the origin spoke, the
//! headers it received (an `Authorization` header must still arrive, even though Warden never
//! records its value) and how many body bytes came through. Requests are logged when their head
//! arrives, before the response is written, so a client that has its answer finds its request
//! here; the body count grows while the body streams in.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::origins::Accepted;

/// A handle on one running inspection origin (cheap to clone; all clones share one log).
#[derive(Clone, Debug)]
pub struct HttpsOrigin {
    name: String,
    addr: SocketAddr,
    log: Arc<Log>,
}

/// One HTTP request the origin received.
#[derive(Clone, Debug)]
pub struct SeenRequest {
    /// The client's address as the origin sees it (Warden's, when it relayed the request).
    pub peer: SocketAddr,
    /// The server name the TLS client sent, if any.
    pub sni: Option<String>,
    /// The ALPN protocol agreed on the connection, if any (`h2`, `http/1.1`).
    pub alpn: Option<String>,
    /// The HTTP version the request arrived in, as `http` prints it: `HTTP/2.0`, `HTTP/1.1`.
    pub version: String,
    /// Request method, e.g. `GET`.
    pub method: String,
    /// Path and query, e.g. `/a/b?c=d`.
    pub target: String,
    /// `:authority` (h2) or `Host` (HTTP/1.1).
    pub authority: Option<String>,
    /// Every header, names lowercased, in arrival order (`host` included for HTTP/1.1).
    pub headers: Vec<(String, String)>,
    body_bytes: Arc<AtomicU64>,
}

impl SeenRequest {
    /// The first value of header `name` (case-insensitive), if it was sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether header `name` (case-insensitive) was sent.
    pub fn has_header(&self, name: &str) -> bool {
        self.header(name).is_some()
    }

    /// Whether this request arrived over HTTP/2.
    pub fn is_h2(&self) -> bool {
        self.version == "HTTP/2.0"
    }

    /// Request body bytes received so far (all of them once the client has its full answer
    /// from `/echo`, whose answer is the body itself).
    pub fn body_len(&self) -> u64 {
        self.body_bytes.load(Ordering::Relaxed)
    }

    pub(super) fn body_counter(&self) -> Arc<AtomicU64> {
        self.body_bytes.clone()
    }
}

/// The parts of a [`SeenRequest`] known when its head arrives.
pub(super) struct Head {
    pub peer: SocketAddr,
    pub sni: Option<String>,
    pub alpn: Option<String>,
    pub version: String,
    pub method: String,
    pub target: String,
    pub authority: Option<String>,
    pub headers: Vec<(String, String)>,
}

#[derive(Debug, Default)]
struct Log {
    entries: Mutex<Entries>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct Entries {
    accepted: Vec<Accepted>,
    handshakes: usize,
    requests: Vec<SeenRequest>,
    errors: Vec<String>,
}

impl HttpsOrigin {
    pub(super) fn new(name: &str, addr: SocketAddr) -> HttpsOrigin {
        HttpsOrigin {
            name: name.to_owned(),
            addr,
            log: Arc::default(),
        }
    }

    /// Its host name (`h2.example`, …), which its answers name too.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://<name>` followed by `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.name)
    }

    /// How many TCP connections it has accepted.
    pub fn connections(&self) -> usize {
        self.entries().accepted.len()
    }

    /// Every TCP connection it has accepted, oldest first.
    pub fn accepted(&self) -> Vec<Accepted> {
        self.entries().accepted.clone()
    }

    /// How many TLS handshakes completed. A client that refused the certificate leaves a
    /// connection here but no handshake (and an error in [`HttpsOrigin::errors`]).
    pub fn handshakes(&self) -> usize {
        self.entries().handshakes
    }

    /// Every request it received, oldest first.
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.entries().requests.clone()
    }

    /// The requests whose path (the target before any `?`) is `path`.
    pub fn requests_to(&self, path: &str) -> Vec<SeenRequest> {
        let mut requests = self.requests();
        requests.retain(|r| r.target.split('?').next() == Some(path));
        requests
    }

    /// Failed handshakes and broken connections, for diagnosis.
    pub fn errors(&self) -> Vec<String> {
        self.entries().errors.clone()
    }

    /// Waits until at least `n` connections were accepted or `timeout` passed; returns the count.
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

    pub(super) fn record_handshake(&self) {
        self.entries().handshakes += 1;
    }

    pub(super) fn record_request(&self, head: Head) -> SeenRequest {
        let request = SeenRequest {
            peer: head.peer,
            sni: head.sni,
            alpn: head.alpn,
            version: head.version,
            method: head.method,
            target: head.target,
            authority: head.authority,
            headers: head.headers,
            body_bytes: Arc::default(),
        };
        self.entries().requests.push(request.clone());
        request
    }

    pub(super) fn record_error(&self, peer: SocketAddr, error: impl std::fmt::Display) {
        self.entries().errors.push(format!("{peer}: {error}"));
    }

    fn entries(&self) -> MutexGuard<'_, Entries> {
        // A panic while holding the lock cannot leave the log half-written; keep serving.
        self.log.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}
