//! TLS inspection (issue #6): Warden ends the client's TLS with a certificate from the job's
//! ephemeral CA and opens its own TLS to the real server, so it can read and record every HTTP
//! request (method, full URL, status, bytes) — the URL, not just the host.
//!
//! Order matters for safety: the server is connected and **verified first**, against the roots
//! as they were before Warden's CA was added (plus `--upstream-ca`); a server whose certificate
//! does not verify is a refused connection, never one Warden vouches for with its own
//! certificate. The client is then offered exactly the protocol the server chose (h2 or
//! HTTP/1.1), and requests are bridged by [`http`].
//!
//! Each request is judged before it is sent on ([`judge`]: fronting, strict mode's URL rules,
//! secrets in the URL and headers) and its body scanned as it streams ([`scan_body`]); see
//! `docs/exfiltration.md`. Plain HTTP is bridged the same way ([`Inspector::bridge_plain`]).
//! Strict hosts (`allowed-urls`) are inspected even when inspection is otherwise off, and never
//! passed through in block mode ([`Inspector::plan`]).
//!
//! Not inspected (relayed as they are): hosts in `--no-inspect`, what a built-in allowance
//! allowed (the runner's own services), streams that do not look like HTTPS (no `h2`/`http/1.1`
//! ALPN, other than on port 443), and a host whose client rejected Warden's certificate earlier
//! in the job (certificate pinning, bundled roots): its first connection fails and is recorded
//! with that reason, the next ones pass through.

mod body;
pub mod http;
pub(crate) mod judge;
mod redact;
mod scan_body;
mod stream;

use std::{
    collections::HashSet,
    io,
    sync::{Arc, Mutex, atomic::AtomicU64},
};

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::{
    ClientConfig, RootCertStore, ServerConfig,
    pki_types::{CertificateDer, ServerName},
    sign::CertifiedKey,
};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::{conn::reset, guard::RecordGuard};
use crate::{
    audit::AuditLog,
    lock,
    policy::{Mode, Policy},
};

/// How long either TLS handshake may take: a server that accepts TCP and never answers TLS must
/// not hold the client's connection open until Warden stops.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// ALPN protocols Warden can bridge.
const H2: &[u8] = b"h2";
const HTTP11: &[u8] = b"http/1.1";

/// Errors setting inspection up (Warden's own, at start).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No root could be read for verifying servers.
    #[error("no trusted roots to verify servers with: {0}")]
    NoRoots(String),
    /// A `--upstream-ca` file is unusable.
    #[error("--upstream-ca {path}: {detail}")]
    UpstreamCa {
        /// The file.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
}

/// Mints leaves for server names.
pub trait Leaves: Send + Sync {
    /// A certificate (chain and key) for `server_name`.
    fn leaf(&self, server_name: &str) -> Result<Arc<CertifiedKey>, String>;
}

/// What to do with one connection.
#[derive(Debug, PartialEq, Eq)]
pub enum Plan {
    /// Intercept it.
    Inspect,
    /// Relay it untouched; with the reason when inspection was expected.
    Pass(Option<String>),
    /// Refuse it (block mode: a strict host that cannot be inspected).
    Refuse(String),
}

/// Inspection settings and state for one session.
pub struct Inspector {
    leaves: Arc<dyn Leaves>,
    upstream: ClientConfig,
    policy: Arc<Policy>,
    /// Hosts whose clients rejected Warden's certificate: passed through from then on.
    rejected: Mutex<HashSet<String>>,
}

impl Inspector {
    /// Inspection minting with `leaves`, verifying servers against `roots` (PEM certificates
    /// as they were before Warden's CA; `--upstream-ca` files added by the caller), as
    /// `policy`'s inspection settings say (everything or strict hosts only, `no-inspect`).
    pub fn new(
        leaves: Arc<dyn Leaves>,
        roots: Vec<CertificateDer<'static>>,
        policy: Arc<Policy>,
    ) -> Result<Self, Error> {
        let mut store = RootCertStore::empty();
        let (added, _ignored) = store.add_parsable_certificates(roots);
        if added == 0 {
            return Err(Error::NoRoots("none of the roots parsed".into()));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let upstream = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(store)
            .with_no_client_auth();
        Ok(Self {
            leaves,
            upstream,
            policy,
            rejected: Mutex::default(),
        })
    }

    /// What to do with a TLS connection to `sni` (which offered `alpn`) on `port`, or with
    /// plain HTTP (`tls` false) naming `sni` as its Host. `builtin`: a built-in allowance
    /// allowed it.
    pub fn plan(
        &self,
        sni: &str,
        alpn: &[String],
        port: u16,
        builtin: bool,
        client_exe: &str,
        tls: bool,
    ) -> Plan {
        let inspection = self.policy.inspection();
        let strict = inspection.urls.for_host(sni, port);
        let block = self.policy.mode() == Mode::Block;
        let http = !tls
            || alpn
                .iter()
                .any(|p| p == "h2" || p == "http/1.1" || p == "http/1.0")
            || (alpn.is_empty() && port == 443);
        if !http {
            return match (strict, block) {
                (true, true) => Plan::Refuse(
                    "the host is strict (allowed-urls) but this is not HTTPS (no HTTP ALPN): \
                     its URL rules cannot be applied"
                        .into(),
                ),
                (true, false) => Plan::Pass(Some(
                    "not HTTPS (no HTTP ALPN): the host's URL rules were not applied".into(),
                )),
                (false, _) if inspection.enabled && tls => {
                    Plan::Pass(Some("not HTTPS (no HTTP ALPN, and not port 443)".into()))
                }
                (false, _) => Plan::Pass(None),
            };
        }
        if strict {
            // Strict hosts are always inspected: a built-in allowance or an earlier rejection
            // does not exempt them in block mode (a client that pins fails, closed).
            let name = sni.trim_end_matches('.').to_ascii_lowercase();
            if !block && lock(&self.rejected).contains(&rejection_key(&name, client_exe)) {
                return Plan::Pass(Some(
                    "this program rejected Warden's certificate for it earlier in the job (its \
                     URL rules were not applied)"
                        .into(),
                ));
            }
            return Plan::Inspect;
        }
        if !inspection.enabled {
            return Plan::Pass(None);
        }
        if builtin {
            return Plan::Pass(Some(
                "a built-in allowance (the runner's own service)".into(),
            ));
        }
        let name = sni.trim_end_matches('.').to_ascii_lowercase();
        if inspection.no_inspect.iter().any(|h| h.matches_name(&name)) {
            return Plan::Pass(Some("listed in --no-inspect".into()));
        }
        if !tls {
            return Plan::Inspect;
        }
        // In block mode a client that rejected Warden's certificate is not waved through: one
        // forged alert would switch the secret checks off for it. It fails, closed; `no-inspect`
        // lets it through on purpose.
        if !block && lock(&self.rejected).contains(&rejection_key(&name, client_exe)) {
            return Plan::Pass(Some(
                "this program rejected Warden's certificate for it earlier in the job".into(),
            ));
        }
        Plan::Inspect
    }

    /// Whether `name` on `port` is a strict host (named by `allowed-urls`).
    pub fn is_strict(&self, name: &str, port: u16) -> bool {
        self.policy.inspection().urls.for_host(name, port)
    }

    /// The strict host a connection that does not name one goes to, if any: the rule that
    /// allowed it is a strict host's (an ECH or name-less connection allowed by its address's
    /// names), or an address rule or no rule decided it (`by_name` false, or no name rule) and
    /// the job's DNS answers name the address after a strict host. A connection its own,
    /// non-strict SNI allowed is left alone even on a shared address.
    pub fn strict_by_address(
        &self,
        rule: Option<&str>,
        by_name: bool,
        ip_names: &[String],
        port: u16,
    ) -> Option<String> {
        let urls = &self.policy.inspection().urls;
        if urls.is_empty() {
            return None;
        }
        if let Some(rule) = rule
            && let Some(host) = urls.hosts().iter().find(|h| h.to_string() == rule)
        {
            return Some(host.to_string());
        }
        let by_name_rule = by_name
            && rule.is_some_and(|r| {
                r.parse::<crate::policy::Endpoint>()
                    .is_ok_and(|e| !matches!(e.host(), crate::policy::Host::Network { .. }))
            });
        if by_name_rule {
            return None;
        }
        ip_names.iter().find(|n| urls.for_host(n, port)).cloned()
    }

    /// Intercepts one connection: `client` has sent `hello` (its ClientHello, already read);
    /// `server` is connected to the destination. Returns when the connection is over; the
    /// connection record is filled in through `rec`.
    #[allow(clippy::too_many_arguments)]
    pub async fn intercept(
        &self,
        log: Arc<AuditLog>,
        rec: &mut RecordGuard,
        client: TcpStream,
        hello: Vec<u8>,
        server: TcpStream,
        sni: &str,
        alpn: &[String],
        cancel: tokio::sync::watch::Receiver<bool>,
    ) {
        rec.flag("inspected");
        // The ClientHello was read before interception began: count it whatever happens next.
        rec.counters
            .up
            .fetch_add(hello.len() as u64, std::sync::atomic::Ordering::Relaxed);
        // 1. The real server, verified, in a protocol Warden can bridge that the client offered.
        let mut upstream = self.upstream.clone();
        upstream.alpn_protocols = alpn
            .iter()
            .filter(|p| p.as_bytes() == H2 || p.as_bytes() == HTTP11)
            .map(|p| p.as_bytes().to_vec())
            .collect();
        let Ok(name) = ServerName::try_from(sni.to_string()) else {
            rec.flag("inspection-failed");
            rec.reason(format!("{sni:?} is not a server name Warden can verify"));
            reset(client);
            return;
        };
        let upstream = Arc::new(upstream);
        let dst = server.peer_addr();
        let server = match tokio::time::timeout(
            HANDSHAKE_TIMEOUT,
            TlsConnector::from(upstream.clone()).connect(name.clone(), server),
        )
        .await
        .unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, "timed out")))
        {
            Ok(s) => s,
            Err(e) => {
                let invalid = is_certificate_error(&e);
                rec.flag(if invalid {
                    "upstream-cert-invalid"
                } else {
                    "upstream-tls-error"
                });
                rec.refused_always(format!(
                    "the server's TLS {}: {e}; refused (Warden never vouches for a server it \
                     cannot verify)",
                    if invalid {
                        "certificate is not valid"
                    } else {
                        "handshake failed"
                    }
                ));
                reset(client);
                return;
            }
        };
        let h2 = server.get_ref().1.alpn_protocol() == Some(H2);
        // 2. The client, with a leaf for its server name, offered exactly that protocol.
        let leaf = match self.leaves.leaf(sni) {
            Ok(l) => l,
            Err(e) => {
                rec.flag("inspection-failed");
                rec.reason(format!("cannot mint a certificate for {sni}: {e}"));
                reset(client);
                return;
            }
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let Ok(builder) =
            ServerConfig::builder_with_provider(provider).with_safe_default_protocol_versions()
        else {
            reset(client);
            return;
        };
        let mut config = builder
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(leaf)));
        // Exactly what the server chose; a client that offered only other HTTP versions
        // (`http/1.0`) gets no ALPN and speaks HTTP/1.x all the same.
        config.alpn_protocols = if h2 {
            vec![H2.to_vec()]
        } else if alpn.iter().any(|p| p.as_bytes() == HTTP11) {
            vec![HTTP11.to_vec()]
        } else {
            Vec::new()
        };
        let counted = stream::Counting::new(client);
        let (up, down) = (counted.up.clone(), counted.down.clone());
        // Whatever happens next, the record counts the bytes the TLS handshake and HTTP read.
        let _count = CountInto(rec, up, down);
        let rec = &mut *_count.0;
        let client = match tokio::time::timeout(
            HANDSHAKE_TIMEOUT,
            TlsAcceptor::from(Arc::new(config)).accept(stream::Rewind::new(hello, counted)),
        )
        .await
        .unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, "timed out")))
        {
            Ok(c) => c,
            Err(e) => {
                let rejected = rejects_certificate(&e);
                if rejected {
                    let exe = rec.record().process.as_ref().map_or("", |p| p.exe.as_str());
                    let key = rejection_key(&sni.trim_end_matches('.').to_ascii_lowercase(), exe);
                    lock(&self.rejected).insert(key);
                    rec.flag("client-rejected-certificate");
                    let next = if self.policy.mode() == Mode::Block {
                        "block mode keeps inspecting it (add it to no-inspect to let it through)"
                    } else {
                        "its next connections to it are passed through uninspected"
                    };
                    rec.reason(format!(
                        "the client rejected Warden's certificate ({e}): it pins its server's \
                         certificate or uses its own roots; {next} ({sni})"
                    ));
                } else {
                    rec.flag("client-tls-error");
                    rec.reason(format!("TLS with the client failed: {e}"));
                }
                return;
            }
        };
        // 3. HTTP both ways.
        let upstream_config = upstream;
        let upstream = match http::Upstream::handshake(server, h2).await {
            Ok(u) => u,
            Err(e) => {
                rec.flag("upstream-error");
                rec.reason(format!("HTTP with the server failed: {e}"));
                return;
            }
        };
        let Ok(dst) = dst else {
            rec.flag("upstream-error");
            return;
        };
        let conn = Arc::new(http::Connection {
            server_name: sni.to_string(),
            scheme: "https",
            port: dst.port(),
            policy: self.policy.clone(),
            log,
            template: rec.record().clone(),
            upstream: tokio::sync::Mutex::new(upstream),
            dialer: http::Dialer {
                dst,
                tls: Some((name, upstream_config)),
                h2,
            },
            requests: AtomicU64::new(0),
            upgrades: Arc::new(tokio::sync::Semaphore::new(http::MAX_UPGRADES as usize)),
            cancel,
        });
        serve(rec, conn, client, h2).await;
    }

    /// Bridges one plain-HTTP/1 connection request by request, like an inspected one: `client`
    /// has sent `head` (read while sniffing, naming `host`); `server` is connected to the
    /// destination.
    #[allow(clippy::too_many_arguments)]
    pub async fn bridge_plain(
        &self,
        log: Arc<AuditLog>,
        rec: &mut RecordGuard,
        client: TcpStream,
        head: Vec<u8>,
        server: TcpStream,
        host: &str,
        cancel: tokio::sync::watch::Receiver<bool>,
    ) {
        rec.flag("inspected");
        rec.counters
            .up
            .fetch_add(head.len() as u64, std::sync::atomic::Ordering::Relaxed);
        let Ok(dst) = server.peer_addr() else {
            rec.flag("upstream-error");
            reset(client);
            return;
        };
        let counted = stream::Counting::new(client);
        let (up, down) = (counted.up.clone(), counted.down.clone());
        let _count = CountInto(rec, up, down);
        let rec = &mut *_count.0;
        let upstream = match http::Upstream::handshake(server, false).await {
            Ok(u) => u,
            Err(e) => {
                rec.flag("upstream-error");
                rec.reason(format!("HTTP with the server failed: {e}"));
                return;
            }
        };
        let conn = Arc::new(http::Connection {
            server_name: host.to_string(),
            scheme: "http",
            port: dst.port(),
            policy: self.policy.clone(),
            log,
            template: rec.record().clone(),
            upstream: tokio::sync::Mutex::new(upstream),
            dialer: http::Dialer {
                dst,
                tls: None,
                h2: false,
            },
            requests: AtomicU64::new(0),
            upgrades: Arc::new(tokio::sync::Semaphore::new(http::MAX_UPGRADES as usize)),
            cancel,
        });
        serve(rec, conn, stream::Rewind::new(head, counted), false).await;
    }
}

/// Serves the client's side of a bridged connection with hyper until it ends (and its upgraded
/// streams with it).
async fn serve<S>(rec: &mut RecordGuard, conn: Arc<http::Connection>, client: S, h2: bool)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    {
        let service = {
            let conn = conn.clone();
            service_fn(move |req| http::forward(conn.clone(), req))
        };
        let io = TokioIo::new(client);
        let served = if h2 {
            hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .serve_connection(io, service)
                .await
        } else {
            hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .with_upgrades()
                .await
        };
        if let Err(e) = served {
            rec.reason(format!("HTTP with the client ended: {e}"));
        }
        // An upgraded stream (WebSocket) outlives hyper's connection: the connection is over,
        // and its record written, when the stream is.
        let _ = conn.upgrades.acquire_many(http::MAX_UPGRADES).await;
    }
}

/// Adds the client's byte counts to the connection record when the interception ends.
struct CountInto<'a>(&'a mut RecordGuard, Arc<AtomicU64>, Arc<AtomicU64>);

impl Drop for CountInto<'_> {
    fn drop(&mut self) {
        use std::sync::atomic::Ordering::Relaxed;
        let counters = &self.0.counters;
        counters.up.fetch_add(self.1.load(Relaxed), Relaxed);
        counters.down.fetch_add(self.2.load(Relaxed), Relaxed);
    }
}

/// A host is passed through after a rejection only for the program that rejected Warden's
/// certificate (one pinning client must not switch inspection off for the whole job).
fn rejection_key(host: &str, exe: &str) -> String {
    format!("{host} {exe}")
}

/// The server's certificate did not verify (as opposed to a network or protocol failure).
fn is_certificate_error(e: &io::Error) -> bool {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .is_some_and(|e| matches!(e, rustls::Error::InvalidCertificate(_)))
}

/// The client ended the handshake with an alert about Warden's certificate.
fn rejects_certificate(e: &io::Error) -> bool {
    use rustls::AlertDescription as A;
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .is_some_and(|e| {
            matches!(
                e,
                rustls::Error::AlertReceived(
                    A::BadCertificate
                        | A::UnknownCA
                        | A::CertificateUnknown
                        | A::UnsupportedCertificate
                        | A::CertificateExpired
                        | A::AccessDenied
                )
            )
        })
}
