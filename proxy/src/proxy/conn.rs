//! One connection, from accept to its audit record.

use std::{
    io,
    net::SocketAddr,
    pin::pin,
    sync::{Arc, atomic::Ordering},
    time::{Duration, Instant},
};

use sniff::Sniffed;
use tokio::{io::AsyncReadExt, io::AsyncWriteExt, net::TcpStream, time::sleep_until};
use tracing::Instrument;

use super::{
    Context, origdst,
    relay::{self, Counters, RelayError, Side},
    sniffing::{self, Verdict},
    upstream,
};
use crate::{
    audit::{Bytes, Decision, Dst, Http, Kind, Record, Tls},
    ebpf::Original,
};

/// How long the sniffers wait for a verdict before the bytes are relayed as raw TCP.
const SNIFF_TIMEOUT: Duration = Duration::from_secs(3);
/// After the destination refused, how long to keep reading the client so the record can still
/// say which name it asked for.
const REFUSED_GRACE: Duration = Duration::from_millis(200);

/// Handles one accepted connection. Writes exactly one record, whatever happens.
pub async fn handle(ctx: Arc<Context>, client: TcpStream, peer: SocketAddr) {
    let mut rec = RecordGuard::new(ctx.clone());
    let _ = client.set_nodelay(true);
    if ctx.own_upstreams().contains(&peer) {
        rec.flag("loop");
        rec.reason(
            "warden's own upstream connection came back to it: an iptables REDIRECT rule must \
             exclude warden's sockets (-m mark ! --mark 0x5752444e)",
        );
        reset(client);
        return;
    }
    let Some(orig) = origdst::find(&ctx, &client, peer) else {
        rec.flag("no-original-dst");
        rec.reason("no original destination: the connection was not redirected by warden");
        reset(client);
        return;
    };
    rec.origin(&orig);
    let span = tracing::info_span!(
        "connection",
        dst.ip = %orig.dst.ip(),
        dst.port = orig.dst.port(),
        process.pid = orig.pid,
    );
    proxy(&ctx, &mut rec, client, orig).instrument(span).await;
    rec.completed = true;
}

async fn proxy(ctx: &Context, rec: &mut RecordGuard, mut client: TcpStream, orig: Original) {
    let mut dial = pin!(upstream::dial(orig.dst));
    let mut upstream: Option<TcpStream> = None;
    let mut dial_error: Option<io::Error> = None;
    let mut buf = Vec::with_capacity(4096);
    let mut deadline = tokio::time::Instant::now() + SNIFF_TIMEOUT;

    let verdict = loop {
        tokio::select! {
            res = &mut dial, if upstream.is_none() && dial_error.is_none() => match res {
                Ok(s) => upstream = Some(s),
                Err(e) => {
                    dial_error = Some(e);
                    deadline = deadline.min(tokio::time::Instant::now() + REFUSED_GRACE);
                }
            },
            res = client.read_buf(&mut buf) => match res {
                // EOF before a verdict: whatever was sent is relayed as raw bytes.
                Ok(0) => break Verdict::Raw,
                Ok(_) => if let Some(v) = sniffing::judge(&buf) { break v },
                Err(e) => {
                    rec.reason(format!("client read: {e}"));
                    rec.flag("client-error");
                    return;
                }
            },
            Ok(()) = readable(upstream.as_ref()) => {
                rec.flag("server-first");
                break Verdict::Raw;
            }
            () = sleep_until(deadline) => {
                if dial_error.is_none() {
                    rec.flag("sniff-timeout");
                }
                break Verdict::Raw;
            }
        }
    };
    match verdict {
        Verdict::Identified(s) => rec.sniffed(s),
        Verdict::Raw => {}
        Verdict::MalformedTls(why) => {
            tracing::warn!(reason = why, "malformed ClientHello, closing");
            rec.flag("malformed-client-hello");
            rec.reason(format!("malformed ClientHello: {why}"));
            reset(client);
            return;
        }
    }

    let mut upstream = match (upstream, dial_error) {
        (Some(s), _) => s,
        (None, Some(e)) => return refuse(rec, client, &e),
        (None, None) => match dial.await {
            Ok(s) => s,
            Err(e) => return refuse(rec, client, &e),
        },
    };
    let own = upstream.local_addr().ok();
    if let Some(addr) = own {
        ctx.own_upstreams().insert(addr);
    }
    let _forget = Forget(ctx, own);
    if !buf.is_empty() {
        if let Err(e) = upstream.write_all(&buf).await {
            rec.flag("upstream-error");
            rec.reason(format!("upstream write: {e}"));
            reset(client);
            return;
        }
        rec.counters
            .up
            .fetch_add(buf.len() as u64, Ordering::Relaxed);
    }
    drop(buf);
    if let Err(e) = relay::relay(&mut client, &mut upstream, &rec.counters).await {
        ended_with_error(rec, client, upstream, &e);
    }
}

/// Removes an upstream address from [`Context::own_upstreams`] when the connection ends.
struct Forget<'a>(&'a Context, Option<SocketAddr>);

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        if let Some(addr) = self.1 {
            self.0.own_upstreams().remove(&addr);
        }
    }
}

/// Resolves when `upstream` has bytes to read; pending forever while there is no upstream yet.
async fn readable(upstream: Option<&TcpStream>) -> io::Result<()> {
    match upstream {
        Some(s) => s.readable().await,
        None => std::future::pending().await,
    }
}

/// The destination could not be reached: the client sees a reset, as it would without Warden.
fn refuse(rec: &mut RecordGuard, client: TcpStream, e: &io::Error) {
    let flag = match e.kind() {
        io::ErrorKind::ConnectionRefused => "upstream-refused",
        io::ErrorKind::TimedOut => "upstream-timeout",
        io::ErrorKind::PermissionDenied => "upstream-local",
        _ => "upstream-unreachable",
    };
    rec.flag(flag);
    rec.reason(format!("upstream connect: {e}"));
    reset(client);
}

/// A reset on one side is passed on as a reset to the other.
/// A reset is a normal way to end a connection (curl resets when it closes with a TLS alert still
/// unread), so it gets a neutral flag; anything else is an error.
fn ended_with_error(rec: &mut RecordGuard, client: TcpStream, upstream: TcpStream, e: &RelayError) {
    rec.reason(e.to_string());
    let was_reset = e.source.kind() == io::ErrorKind::ConnectionReset;
    match (e.side, was_reset) {
        (Side::Upstream, true) => rec.flag("upstream-reset"),
        (Side::Upstream, false) => rec.flag("upstream-error"),
        (Side::Client, true) => rec.flag("client-reset"),
        (Side::Client, false) => rec.flag("client-error"),
    }
    match e.side {
        Side::Upstream => reset(client),
        Side::Client => reset(upstream),
    }
}

/// Closes with RST instead of FIN.
fn reset(stream: TcpStream) {
    let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
    drop(stream);
}

/// The connection's record, written exactly once when the guard drops: on success, on every
/// error path, and when the task is cancelled at shutdown.
struct RecordGuard {
    ctx: Arc<Context>,
    rec: Record,
    started: Instant,
    counters: Counters,
    /// False when the handler was dropped mid-way (warden stopping with the connection open).
    completed: bool,
}

impl RecordGuard {
    fn new(ctx: Arc<Context>) -> Self {
        let mut rec = Record::new(Kind::Connection);
        // Issue #3 brings policies; until then every connection is audit mode's "no rule".
        rec.decision = Some(Decision::Audited);
        Self {
            ctx,
            rec,
            started: Instant::now(),
            counters: Counters::default(),
            completed: false,
        }
    }

    fn flag(&mut self, flag: &str) {
        self.rec.flags.push(flag.to_string());
    }

    fn reason(&mut self, reason: impl Into<String>) {
        self.rec.reason = Some(reason.into());
    }

    fn origin(&mut self, orig: &Original) {
        self.rec.dst = Some(Dst {
            ip: orig.dst.ip().to_string(),
            port: orig.dst.port(),
            proto: "tcp",
            name: None,
        });
        if orig.v4_mapped {
            self.flag("v4-mapped");
        }
        // Resolved now, not at close: by then the pid may belong to another process.
        if let (Some(procs), true) = (&self.ctx.processes, orig.pid != 0) {
            self.rec.process = Some(procs.lookup(orig.pid, &orig.comm));
        }
    }

    fn sniffed(&mut self, s: Sniffed) {
        let name = match s {
            Sniffed::Tls(hello) => {
                if hello.ech {
                    self.flag("ech");
                }
                let sni = hello.sni.clone();
                self.rec.tls = Some(Tls {
                    sni: hello.sni,
                    alpn: hello.alpn,
                    ech: hello.ech,
                });
                sni
            }
            Sniffed::Http(head) => {
                // An IP literal in Host is not a name.
                let host = head
                    .host_without_port()
                    .filter(|h| h.parse::<std::net::IpAddr>().is_err())
                    .map(str::to_string);
                self.rec.http = Some(Http {
                    host: head.host.clone(),
                    method: head.method.clone(),
                    url: strip_query(&head.path).to_string(),
                });
                host
            }
        };
        if let Some(dst) = self.rec.dst.as_mut() {
            dst.name = name;
        }
    }
}

/// Query strings can carry signed-URL secrets; records never keep them.
fn strip_query(target: &str) -> &str {
    target.split(['?', '#']).next().unwrap_or(target)
}

impl Drop for RecordGuard {
    fn drop(&mut self) {
        let rec = &mut self.rec;
        rec.duration_ms =
            Some(u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX));
        rec.bytes = Some(Bytes {
            up: self.counters.up.load(Ordering::Relaxed),
            down: self.counters.down.load(Ordering::Relaxed),
        });
        if std::thread::panicking() {
            rec.flags.push("internal-error".into());
        } else if !self.completed && rec.reason.is_none() {
            rec.flags.push("interrupted".into());
            rec.reason = Some("closed by warden while still open: enforcement was stopping".into());
        }
        self.ctx.log.write(rec);
    }
}

#[cfg(test)]
mod tests {
    use super::strip_query;

    #[test]
    fn query_and_fragment_never_reach_records() {
        assert_eq!(strip_query("/a/b?X-Amz-Signature=secret"), "/a/b");
        assert_eq!(strip_query("/a#frag"), "/a");
        assert_eq!(strip_query("http://h/p?q"), "http://h/p");
        assert_eq!(strip_query(""), "");
    }
}
