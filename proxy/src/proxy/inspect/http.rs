//! HTTP inside an intercepted TLS connection: each request the client sends on its side is sent
//! on Warden's own connection to the real server, in the protocol both sides agreed on (h2 or
//! HTTP/1.1, chosen by the server), bodies streamed both ways, trailers and upgrades (WebSocket)
//! passed through, and one `request` record per request.
//!
//! One upstream connection serves every request of one client connection (HTTP/1.1 requests
//! one after another on it, h2 streams multiplexed), so keep-alive on the client's side is
//! keep-alive on the server's side too.

use std::{
    convert::Infallible,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use http::{HeaderValue, Request, Response, StatusCode, Uri, Version, header};
use http_body_util::{Either, Full};
use hyper::{
    body::{Bytes, Incoming},
    client::conn,
};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};

use super::{
    body::Counted,
    judge, redact,
    scan_body::{Found, Scanned},
};
use crate::{
    audit::{AuditLog, Bytes as ByteCounts, Decision, Http, Kind, Record},
    lock,
    policy::Policy,
};

/// What a response body is: the server's, counted, or Warden's own (an error page).
pub type ResponseBody = Either<Counted<Incoming, RequestRecord>, Full<Bytes>>;
type UpstreamBody = Counted<Scanned<Incoming>, ()>;

/// Warden's end of the connection to the real server.
pub enum Upstream {
    /// HTTP/1.1: one request at a time.
    H1(conn::http1::SendRequest<UpstreamBody>),
    /// h2: streams in parallel.
    H2(conn::http2::SendRequest<UpstreamBody>),
}

/// How to connect to the server again, verified the same way, when it closed the connection
/// (an idle keep-alive timeout, an h2 GOAWAY) while the client's stays open.
pub struct Dialer {
    /// The original destination.
    pub dst: std::net::SocketAddr,
    /// The verified server name and the TLS client configuration (roots, ALPN) of the first
    /// connection; `None` for plain HTTP.
    pub tls: Option<(
        rustls::pki_types::ServerName<'static>,
        Arc<rustls::ClientConfig>,
    )>,
    /// Whether the first connection spoke h2 (the new one must too).
    pub h2: bool,
}

impl Dialer {
    async fn dial(&self) -> Result<Upstream, String> {
        let tcp = crate::proxy::upstream::dial(self.dst)
            .await
            .map_err(|e| format!("reconnect: {e}"))?;
        let Some((name, config)) = &self.tls else {
            return Upstream::handshake(tcp, false)
                .await
                .map_err(|e| format!("reconnect HTTP: {e}"));
        };
        let tls = tokio_rustls::TlsConnector::from(config.clone())
            .connect(name.clone(), tcp)
            .await
            .map_err(|e| format!("reconnect TLS: {e}"))?;
        let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
        if h2 != self.h2 {
            return Err("the server changed protocol on reconnect".into());
        }
        Upstream::handshake(tls, h2)
            .await
            .map_err(|e| format!("reconnect HTTP: {e}"))
    }
}

impl Upstream {
    /// Speaks `h2` (if `h2`) or HTTP/1.1 over `io`; the connection is driven by a spawned task.
    pub async fn handshake<S>(io: S, h2: bool) -> hyper::Result<Self>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let io = TokioIo::new(io);
        if h2 {
            let (send, connection) = conn::http2::handshake(TokioExecutor::new(), io).await?;
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(error = %e, "upstream h2 connection ended");
                }
            });
            Ok(Upstream::H2(send))
        } else {
            let (send, connection) = conn::http1::handshake(io).await?;
            tokio::spawn(async move {
                if let Err(e) = connection.with_upgrades().await {
                    tracing::debug!(error = %e, "upstream HTTP/1.1 connection ended");
                }
            });
            Ok(Upstream::H1(send))
        }
    }

    fn is_closed(&self) -> bool {
        match self {
            Upstream::H1(s) => s.is_closed(),
            Upstream::H2(s) => s.is_closed(),
        }
    }
}

impl Connection {
    /// Sends `req` to the server, connecting again first if the server closed the connection
    /// (nothing of this request was sent yet, so that is always safe).
    async fn send(&self, req: Request<UpstreamBody>) -> Result<Response<Incoming>, String> {
        let mut upstream = self.upstream.lock().await;
        let ready = match &mut *upstream {
            Upstream::H1(s) => s.ready().await.is_ok(),
            Upstream::H2(s) => s.ready().await.is_ok(),
        };
        if !ready || upstream.is_closed() {
            *upstream = self.dialer.dial().await?;
            match &mut *upstream {
                Upstream::H1(s) => s.ready().await.map_err(|e| e.to_string())?,
                Upstream::H2(s) => s.ready().await.map_err(|e| e.to_string())?,
            }
        }
        match &mut *upstream {
            // HTTP/1.1: the lock is held until the response head arrives, one request at a time.
            Upstream::H1(s) => s.send_request(req).await.map_err(|e| e.to_string()),
            Upstream::H2(s) => {
                let mut s = s.clone();
                drop(upstream);
                s.send_request(req).await.map_err(|e| e.to_string())
            }
        }
    }
}

/// What every request of one connection shares.
pub struct Connection {
    /// The server name the client asked for (SNI, or the first request's Host for plain
    /// HTTP), used when a request names no authority.
    pub server_name: String,
    /// `https` or `http`.
    pub scheme: &'static str,
    /// The original destination's port.
    pub port: u16,
    /// The session's policy (strict hosts, secrets, mode).
    pub policy: Arc<Policy>,
    /// Where records go.
    pub log: Arc<AuditLog>,
    /// The connection record so far: process and destination are copied into request records.
    pub template: Record,
    /// Warden's connection to the server.
    pub upstream: tokio::sync::Mutex<Upstream>,
    /// How to connect again when the server closed it.
    pub dialer: Dialer,
    /// Requests seen on this connection.
    pub requests: AtomicU64,
    /// One permit per upgraded stream still open: the connection is over only when they are.
    pub upgrades: Arc<tokio::sync::Semaphore>,
    /// Fires when Warden stops: upgraded streams end then (and write their records).
    pub cancel: tokio::sync::watch::Receiver<bool>,
}

/// Most upgraded streams one connection can carry (HTTP/1.1 has one at most).
pub const MAX_UPGRADES: u32 = 64;

/// One request's record, written when the last owner drops it: the end of the response body,
/// or an error on the way.
pub struct RequestRecord {
    rec: Record,
    log: Arc<AuditLog>,
    started: Instant,
    up: Arc<AtomicU64>,
    down: Arc<AtomicU64>,
    /// The response was delivered whole (or there was none to deliver).
    complete: bool,
    /// What the body scan found, and where the body was going.
    found: Arc<Mutex<Found>>,
    host: String,
}

impl super::body::Ended for RequestRecord {
    fn ended(&mut self) {
        self.complete = true;
    }
}

impl Drop for RequestRecord {
    fn drop(&mut self) {
        let rec = &mut self.rec;
        let found = std::mem::take(&mut *lock(&self.found));
        if !found.bad.is_empty() {
            let bad: Vec<_> = found
                .bad
                .into_iter()
                .map(|f| (f, "the body".to_string()))
                .collect();
            let detail = judge::describe(&bad.iter().collect::<Vec<_>>(), &self.host);
            rec.anomaly(judge::SECRET_EXFILTRATION, detail.clone());
            if found.blocked {
                rec.decision = Some(Decision::Blocked);
                rec.rule = None;
                rec.reason = Some(format!(
                    "secret exfiltration: {detail}; the body was cut before it"
                ));
                self.complete = true;
            }
        }
        if !self.complete {
            rec.flags.push("incomplete".into());
            let why = "the response did not reach its end (the client went away or the server \
                       failed mid-body)";
            rec.reason = Some(match rec.reason.take() {
                Some(r) => format!("{r}; {why}"),
                None => why.into(),
            });
        }
        rec.duration_ms =
            Some(u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX));
        rec.bytes = Some(ByteCounts {
            up: self.up.load(Ordering::Relaxed),
            down: self.down.load(Ordering::Relaxed),
        });
        self.log.write(rec);
    }
}

/// Handles one request from the client: forwards it, and returns the server's response (or a
/// 502 naming what went wrong).
pub async fn forward(
    conn: Arc<Connection>,
    mut req: Request<Incoming>,
) -> Result<Response<ResponseBody>, Infallible> {
    conn.requests.fetch_add(1, Ordering::Relaxed);
    let authority = authority(&req, &conn.server_name);
    let target = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let host = judge::host_of(&authority);
    let mut record = RequestRecord {
        rec: request_record(&conn, &req, &authority, &target),
        log: conn.log.clone(),
        started: Instant::now(),
        up: Arc::default(),
        down: Arc::default(),
        complete: false,
        found: Arc::default(),
        host: host.clone(),
    };
    let judgment = judge::judge(
        &conn.policy,
        &judge::Request {
            scheme: conn.scheme,
            server_name: &conn.server_name,
            port: conn.port,
            authority: &authority,
            method: req.method(),
            target: &target,
            headers: req.headers(),
        },
    );
    for (kind, detail) in judgment.anomalies {
        record.rec.anomaly(kind, detail);
    }
    if let Some((decision, rule)) = judgment.decision {
        record.rec.decision = Some(decision);
        record.rec.rule = rule;
    }
    if let Some(reason) = judgment.reason {
        record.rec.reason = Some(reason);
    }
    if let Some((tag, message)) = judgment.refusal {
        return Ok(forbidden(record, tag, &message));
    }
    if req.headers().contains_key(header::UPGRADE) && !wants_upgrade(&req) {
        // Only WebSocket is passed on: after an upgrade to anything else (`h2c`) the stream
        // would carry requests Warden never judges. The server sees a plain request.
        let headers = req.headers_mut();
        headers.remove(header::UPGRADE);
        headers.remove("http2-settings");
        headers.remove(header::CONNECTION);
        record.rec.flags.push("upgrade-removed".into());
    }
    let client_upgrade = wants_upgrade(&req).then(|| hyper::upgrade::on(&mut req));
    let (mut parts, body) = req.into_parts();
    // The server sees exactly the authority the record names (RFC 9112 §3.2.2: an
    // absolute-form target wins over Host).
    parts.headers.remove(header::HOST);
    if conn.dialer.h2 {
        let uri = format!("{}://{authority}{target}", conn.scheme);
        parts.uri = Uri::try_from(uri).unwrap_or_else(|_| Uri::from_static("/"));
        parts.version = Version::HTTP_2;
    } else {
        parts.uri = Uri::try_from(target.as_str()).unwrap_or_else(|_| Uri::from_static("/"));
        parts.version = Version::HTTP_11;
        if let Ok(host) = HeaderValue::from_str(&authority) {
            parts.headers.insert(header::HOST, host);
        }
    }
    let body = Scanned::new(body, conn.policy.clone(), host, record.found.clone());
    let body = Counted::new(body, record.up.clone(), None);
    let response = match conn.send(Request::from_parts(parts, body)).await {
        Ok(r) => r,
        Err(_) if lock(&record.found).blocked => {
            let message = "refused: the request body carries a secret bound for a host it does \
                           not belong to (see the audit log)";
            return Ok(forbidden(record, judge::SECRET_EXFILTRATION, message));
        }
        Err(e) => {
            record.rec.flags.push("upstream-error".into());
            record.rec.reason = Some(format!("upstream request: {e}"));
            return Ok(bad_gateway(record, &e));
        }
    };
    let mut response = response;
    if let Some(http) = record.rec.http.as_mut() {
        http.status = Some(response.status().as_u16());
    }
    if response.status() == StatusCode::SWITCHING_PROTOCOLS
        && let Some(client_upgrade) = client_upgrade
    {
        let upstream_upgrade = hyper::upgrade::on(&mut response);
        record.rec.flags.push("upgraded".into());
        let (up, down) = (record.up.clone(), record.down.clone());
        let open = conn.upgrades.clone().try_acquire_owned().ok();
        record.complete = true;
        let mut cancel = conn.cancel.clone();
        tokio::spawn(async move {
            let _open = open;
            let _record = record;
            let (Ok(client), Ok(server)) = (client_upgrade.await, upstream_upgrade.await) else {
                return;
            };
            // Counted as they pass, so a stream that ends with a reset still has its bytes.
            let mut client = super::stream::Counting::new(TokioIo::new(client));
            let mut server = TokioIo::new(server);
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                _ = cancel.wait_for(|c| *c) => {}
            }
            up.fetch_add(client.up.load(Ordering::Relaxed), Ordering::Relaxed);
            down.fetch_add(client.down.load(Ordering::Relaxed), Ordering::Relaxed);
        });
        let (parts, _) = response.into_parts();
        return Ok(Response::from_parts(
            parts,
            Either::Right(Full::new(Bytes::new())),
        ));
    }
    let down = record.down.clone();
    let (parts, body) = response.into_parts();
    Ok(Response::from_parts(
        parts,
        Either::Left(Counted::new(body, down, Some(record))),
    ))
}

/// The authority a request is for: `:authority` (h2) or the absolute-form target's, else
/// `Host`, else the SNI; without userinfo (`user:password@` never reaches a record or, from
/// Warden, the server: credentials belong in headers).
fn authority(req: &Request<Incoming>, sni: &str) -> String {
    let raw = req
        .uri()
        .authority()
        .map(|a| a.as_str().to_string())
        .or_else(|| {
            req.headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_string)
        })
        .unwrap_or_else(|| sni.to_string());
    match raw.rsplit_once('@') {
        Some((_, host)) => host.to_string(),
        None => raw,
    }
}

/// An HTTP/1.1 request to switch to WebSocket (the one upgrade Warden passes on).
fn wants_upgrade(req: &Request<Incoming>) -> bool {
    req.version() == Version::HTTP_11
        && req
            .headers()
            .get_all(header::UPGRADE)
            .iter()
            .any(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"))
}

fn request_record(
    conn: &Connection,
    req: &Request<Incoming>,
    authority: &str,
    target: &str,
) -> Record {
    let template = &conn.template;
    let mut rec = Record::new(Kind::Request);
    rec.process = template.process.clone();
    rec.dst = template.dst.clone();
    rec.decision = template.decision;
    rec.rule = template.rule.clone();
    rec.http = Some(Http {
        host: Some(authority.to_string()),
        method: req.method().to_string(),
        url: judge::redact_secrets(&conn.policy, &redact::url(conn.scheme, authority, target)),
        version: Some(format!("{:?}", req.version())),
        status: None,
    });
    rec
}

fn bad_gateway(mut record: RequestRecord, why: &str) -> Response<ResponseBody> {
    if let Some(http) = record.rec.http.as_mut() {
        http.status = Some(StatusCode::BAD_GATEWAY.as_u16());
    }
    record.rec.decision = record.rec.decision.or(Some(Decision::Allowed));
    record.complete = true;
    drop(record);
    let body = format!("Warden could not forward this request to the server: {why}\n");
    let mut response = Response::new(Either::Right(Full::new(Bytes::from(body))));
    *response.status_mut() = StatusCode::BAD_GATEWAY;
    response
        .headers_mut()
        .insert("x-warden", HeaderValue::from_static("upstream-error"));
    response
}

/// Warden's refusal of one request: 403 with `x-warden: TAG` and `message`.
fn forbidden(
    mut record: RequestRecord,
    tag: &'static str,
    message: &str,
) -> Response<ResponseBody> {
    if let Some(http) = record.rec.http.as_mut() {
        http.status = Some(StatusCode::FORBIDDEN.as_u16());
    }
    record.rec.decision = Some(Decision::Blocked);
    record.rec.rule = None;
    record.complete = true;
    drop(record);
    let mut response = Response::new(Either::Right(Full::new(Bytes::from(format!(
        "{message}\n"
    )))));
    *response.status_mut() = StatusCode::FORBIDDEN;
    let headers = response.headers_mut();
    headers.insert("x-warden", HeaderValue::from_static(tag));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
