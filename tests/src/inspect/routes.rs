//! The endpoints every inspection origin serves, each exercising one thing an intercepting
//! proxy must carry intact: versions, streamed bodies both ways, statuses, trailers, upgrades.
//!
//! The table of endpoints is in the [module documentation](super).

use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use http_body_util::channel::Channel;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Bytes;

use super::server::{Body, BoxError, Conn, Counted};
use super::websocket;

/// Largest `/bytes/N` served.
const MAX_BYTES: u64 = 1 << 30;
/// Size of each chunk `/bytes/N` streams.
const CHUNK: usize = 64 * 1024;

/// Routes one request to the generic endpoints.
pub(super) async fn generic(req: Request<Counted>, conn: &Conn) -> Response<Body> {
    let path = req.uri().path().to_owned();
    if path == "/echo" {
        return echo(req).await;
    }
    if path == "/trailers" {
        return trailers();
    }
    if path == "/ws" {
        return websocket::upgrade(req, conn);
    }
    if let Some(n) = path.strip_prefix("/bytes/") {
        return match n.parse::<u64>() {
            Ok(n) if n <= MAX_BYTES => bytes(n),
            _ => text(400, format!("bad byte count {n:?}\n")),
        };
    }
    if let Some(n) = path.strip_prefix("/status/") {
        return match n.parse::<u16>() {
            Ok(n) if (200..600).contains(&n) => text(n, format!("status {n}\n")),
            _ => text(400, format!("bad status {n:?}\n")),
        };
    }
    hello(req, conn).await
}

/// A `text/plain` answer with `status`.
pub(super) fn text(status: u16, body: String) -> Response<Body> {
    let mut response = Response::new(full(body));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// A whole body at once.
pub(super) fn full(body: impl Into<Bytes>) -> Body {
    Full::new(body.into()).map_err(|e| match e {}).boxed()
}

/// No body at all.
pub(super) fn empty() -> Body {
    Empty::new().map_err(|e| match e {}).boxed()
}

async fn hello(req: Request<Counted>, conn: &Conn) -> Response<Body> {
    let line = format!(
        "origin={} version={:?} method={} target={}\n",
        conn.origin.name(),
        req.version(),
        req.method(),
        req.uri().path_and_query().map_or("/", |pq| pq.as_str()),
    );
    // Read (and count) any body, so a POST anywhere is answered only once it has arrived.
    if let Err(e) = req.into_body().collect().await {
        return text(400, format!("reading the request body: {e}\n"));
    }
    text(200, line)
}

async fn echo(req: Request<Counted>) -> Response<Body> {
    let content_type = req.headers().get(header::CONTENT_TYPE).cloned();
    let content_length = req.headers().get(header::CONTENT_LENGTH).cloned();
    let mut body = req.into_body();
    // Reading before answering is what makes hyper send `100 Continue` to a client that sent
    // `Expect: 100-continue` (curl, for large bodies): once the response head is out it cannot,
    // and curl would wait a second before sending the body anyway.
    let first = body.frame().await;
    let (mut tx, out) = Channel::<Bytes, BoxError>::new(4);
    tokio::spawn(async move {
        let mut next = first;
        while let Some(frame) = next {
            match frame {
                Ok(frame) => {
                    if tx.send(frame).await.is_err() {
                        return; // The client went away.
                    }
                }
                Err(e) => return tx.abort(e.into()),
            }
            next = body.frame().await;
        }
    });
    let mut response = Response::new(out.boxed());
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        content_type.unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    // A request body of known length goes back with that length; any other goes back chunked
    // (HTTP/1.1) or as it comes (h2).
    if let Some(length) = content_length {
        headers.insert(header::CONTENT_LENGTH, length);
    }
    response
}

fn bytes(n: u64) -> Response<Body> {
    let (mut tx, body) = Channel::<Bytes, BoxError>::new(4);
    tokio::spawn(async move {
        let mut sent = 0u64;
        while sent < n {
            let len = (n - sent).min(CHUNK as u64);
            let chunk: Vec<u8> = (sent..sent + len).map(|i| (i % 251) as u8).collect();
            if tx.send_data(Bytes::from(chunk)).await.is_err() {
                return; // The client went away.
            }
            sent += len;
        }
    });
    let mut response = Response::new(body.boxed());
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(n));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    response
}

fn trailers() -> Response<Body> {
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    trailers.insert("grpc-message", HeaderValue::from_static("ok"));
    let body = Full::new(Bytes::from_static(b"trailers follow\n"))
        .with_trailers(async move { Some(Ok(trailers)) })
        .map_err(|e| match e {})
        .boxed();
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    // HTTP/1.1 sends declared trailers only, and only to a client that asked with `TE: trailers`.
    headers.insert(
        header::TRAILER,
        HeaderValue::from_static("grpc-status, grpc-message"),
    );
    response
}
