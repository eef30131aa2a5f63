//! Accepting TLS connections and serving HTTP/1.1 and h2 on them with hyper.
//!
//! Each inspection origin is one listener with its own certificate and ALPN list. A connection
//! is logged when accepted, again when its handshake completes (so a client that refused the
//! certificate is visible as a connection without a handshake), and each request when its head
//! arrives. hyper's `auto` builder serves whichever protocol the client speaks, with upgrades
//! enabled for the WebSocket endpoint; what each request gets is up to the origin's [`Site`].

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use anyhow::Context;
use http::{Request, Response};
use http_body_util::combinators::BoxBody;
use hyper::body::{Bytes, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

use super::git::GitRepo;
use super::log::{Head, HttpsOrigin};
use super::pypi::PypiIndex;
use super::routes;
use crate::Netns;
use crate::origins::Accepted;

/// Any error a handler or body can fail with.
pub(super) type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// Every response body.
pub(super) type Body = BoxBody<Bytes, BoxError>;

/// What an origin serves besides the generic endpoints.
#[derive(Clone)]
pub(super) enum Site {
    /// The generic endpoints only.
    Generic,
    /// `git http-backend` for paths under the repository, generic endpoints elsewhere.
    Git(Arc<GitRepo>),
    /// The simple index and its files, generic endpoints elsewhere.
    Pypi(Arc<PypiIndex>),
}

/// How an origin is configured: its log, certificate, protocols and site.
pub(super) struct Config {
    pub origin: HttpsOrigin,
    pub acceptor: TlsAcceptor,
    pub http1_only: bool,
    pub site: Site,
}

/// One accepted, handshaken connection, as handlers see it.
pub(super) struct Conn {
    pub origin: HttpsOrigin,
    pub site: Site,
    pub peer: SocketAddr,
    pub sni: Option<String>,
    pub alpn: Option<String>,
}

/// A rustls acceptor presenting `leaf` and offering `alpn`, in order of preference.
pub(super) fn acceptor(leaf: &certs::Leaf, alpn: &[&str]) -> anyhow::Result<TlsAcceptor> {
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key_der.clone()));
    // The provider is named explicitly: the process-wide default is ambiguous when another crate
    // in the build enables a second one.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![CertificateDer::from(leaf.cert_der.clone())], key)?;
    config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Binds `addr` from a thread inside `netns`, so the origin accepts as soon as this returns.
pub(super) fn bind(netns: &Netns, addr: SocketAddr) -> anyhow::Result<std::net::TcpListener> {
    netns.enter_thread(|| {
        let listener = std::net::TcpListener::bind(addr)
            .with_context(|| format!("cannot listen on {addr} in the test namespace"))?;
        listener.set_nonblocking(true)?;
        Ok(listener)
    })?
}

/// Accepts and serves connections until the runtime shuts down.
pub(super) async fn accept_loop(listener: std::net::TcpListener, config: Arc<Config>) {
    let origin = &config.origin;
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(e) => return origin.record_error(origin.addr(), e),
    };
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                origin.record_error(origin.addr(), format!("accept: {e}"));
                // Back off from resource exhaustion (EMFILE) instead of spinning.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let local = stream.local_addr().unwrap_or(origin.addr());
        origin.record_accept(Accepted { peer, local });
        let config = config.clone();
        tokio::spawn(async move {
            if let Err(e) = serve(stream, peer, &config).await {
                config.origin.record_error(peer, chain(&*e));
            }
        });
    }
}

async fn serve(stream: TcpStream, peer: SocketAddr, config: &Config) -> Result<(), BoxError> {
    let stream = config
        .acceptor
        .accept(stream)
        .await
        .map_err(|e| format!("tls handshake: {e}"))?;
    config.origin.record_handshake();
    let tls = stream.get_ref().1;
    let conn = Arc::new(Conn {
        origin: config.origin.clone(),
        site: config.site.clone(),
        peer,
        sni: tls.server_name().map(str::to_owned),
        alpn: tls
            .alpn_protocol()
            .map(|p| String::from_utf8_lossy(p).into_owned()),
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    if config.http1_only {
        builder = builder.http1_only();
    }
    let service = hyper::service::service_fn(move |req| handle(req, conn.clone()));
    builder
        .serve_connection_with_upgrades(TokioIo::new(stream), service)
        .await
}

async fn handle(req: Request<Incoming>, conn: Arc<Conn>) -> Result<Response<Body>, Infallible> {
    let seen = conn.origin.record_request(head(&req, &conn));
    let req = req.map(|body| Counted {
        inner: body,
        count: seen.body_counter(),
    });
    let path = req.uri().path().to_owned();
    let response = match &conn.site {
        Site::Git(repo) if repo.serves(&path) => super::git::cgi(req, &conn, repo).await,
        Site::Pypi(index) if index.serves(&path) => Ok(index.serve(&path)),
        _ => Ok(routes::generic(req, &conn).await),
    };
    Ok(response.unwrap_or_else(|e| {
        conn.origin.record_error(conn.peer, chain(&*e));
        routes::text(500, format!("{e}\n"))
    }))
}

/// `error: source: source…`, since hyper's own messages ("connection error") say little.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(&format!(": {e}"));
        source = e.source();
    }
    text
}

fn head(req: &Request<Incoming>, conn: &Conn) -> Head {
    let headers = req
        .headers()
        .iter()
        .map(|(name, value)| {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            (name.as_str().to_owned(), value)
        })
        .collect();
    let authority = req.uri().authority().map(|a| a.to_string()).or_else(|| {
        let host = req.headers().get(http::header::HOST)?;
        Some(String::from_utf8_lossy(host.as_bytes()).into_owned())
    });
    Head {
        peer: conn.peer,
        sni: conn.sni.clone(),
        alpn: conn.alpn.clone(),
        version: format!("{:?}", req.version()),
        method: req.method().to_string(),
        target: req
            .uri()
            .path_and_query()
            .map_or_else(|| req.uri().path().to_owned(), |pq| pq.to_string()),
        authority,
        headers,
    }
}

/// A request body that counts its data bytes into the request's log entry as they stream in.
pub(super) struct Counted {
    inner: Incoming,
    count: Arc<AtomicU64>,
}

impl hyper::body::Body for Counted {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            self.count.fetch_add(data.len() as u64, Ordering::Relaxed);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
