//! One connection, from accept to its audit record.

use std::{
    io,
    net::SocketAddr,
    pin::pin,
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use tokio::{io::AsyncReadExt, io::AsyncWriteExt, net::TcpStream, time::sleep_until};
use tracing::Instrument;

use super::{
    Context, enforce,
    guard::{Claimed, RecordGuard},
    http1::Requests,
    inspect::Plan,
    origdst,
    relay::{self, RelayError, Side},
    sniffing::{self, Verdict},
    upstream,
};
use crate::{
    ebpf::Original,
    policy::{Mode, Proto, Verdict as PolicyVerdict},
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
    if let Some(dns) = ctx.dns.clone() {
        match orig.dst.port() {
            DNS_PORT => {
                rec.decided(&dns_stream());
                let (up, down) = crate::dns::server::serve_tcp(&dns, client, &orig).await;
                rec.counters.up.fetch_add(up, Ordering::Relaxed);
                rec.counters.down.fetch_add(down, Ordering::Relaxed);
                rec.completed = true;
                return;
            }
            DOT_PORT => {
                rec.flag("dns-over-tls");
                rec.decided(&dns_over_tls());
                reset(client);
                rec.completed = true;
                return;
            }
            _ => {}
        }
    }
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
    // Block mode dials only what is allowed, so a blocked destination never even sees a SYN;
    // what an IP rule allows (and everything in audit mode) is dialled while sniffing.
    let allowed_by_ip = ctx
        .policy
        .ip_rule(orig.dst.ip(), orig.dst.port(), Proto::Tcp)
        .is_some();
    let dial_early = ctx.policy.mode() == Mode::Audit || allowed_by_ip;
    let mut dial = pin!(upstream::dial(orig.dst));
    let mut upstream: Option<TcpStream> = None;
    let mut dial_error: Option<io::Error> = None;
    let mut buf = Vec::with_capacity(4096);
    let mut deadline = tokio::time::Instant::now() + SNIFF_TIMEOUT;

    let verdict = loop {
        tokio::select! {
            res = &mut dial, if dial_early && upstream.is_none() && dial_error.is_none() => match res {
                Ok(s) => upstream = Some(s),
                Err(e) => {
                    dial_error = Some(e);
                    deadline = deadline.min(tokio::time::Instant::now() + REFUSED_GRACE);
                }
            },
            res = client.read_buf(&mut buf) => match res {
                // EOF before a verdict: judged on what was sent.
                Ok(0) => break sniffing::at_end(&buf),
                Ok(_) => if let Some(v) = sniffing::judge(&buf) { break v },
                Err(e) => {
                    rec.reason(format!("client read: {e}"));
                    rec.flag("client-error");
                    return;
                }
            },
            Ok(()) = readable(upstream.as_ref()) => {
                rec.flag("server-first");
                break sniffing::at_end(&buf);
            }
            () = sleep_until(deadline) => {
                if dial_error.is_none() {
                    rec.flag("sniff-timeout");
                }
                break sniffing::at_end(&buf);
            }
        }
    };
    let claimed = match verdict {
        Verdict::Identified(s) => rec.sniffed(s),
        Verdict::Raw => Claimed::default(),
        Verdict::Unidentified(what) => Claimed {
            unidentified: Some(what),
            ..Claimed::default()
        },
        Verdict::MalformedTls(why) => {
            tracing::warn!(reason = why, "malformed ClientHello, closing");
            rec.flag("malformed-client-hello");
            rec.refused(
                ctx.policy.mode(),
                format!("malformed ClientHello ({why}): closed"),
            );
            reset(client);
            return;
        }
    };
    let (decision, job_name) = enforce::decide(ctx, orig.dst, &claimed).await;
    rec.decided(&decision);
    if let Some(name) = job_name {
        rec.dst_name(name);
    }
    if decision.verdict == PolicyVerdict::Blocked {
        enforce::block(client, &claimed, orig.dst, &decision).await;
        return;
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
    if let Some(inspector) = &ctx.inspect {
        let port = orig.dst.port();
        let tls = !claimed.http;
        let plan = match &claimed.name {
            Some(name) => {
                let builtin = decision.flags.contains(&crate::policy::FLAG_BUILTIN);
                let exe = rec
                    .record()
                    .process
                    .as_ref()
                    .map_or(String::new(), |p| p.exe.clone());
                inspector.plan(name, &claimed.alpn, port, builtin, &exe, tls)
            }
            None => Plan::Pass(None),
        };
        // A strict host reached under another name, or none (no SNI, ECH, an address rule):
        // its URL rules could not be applied.
        let named_strict = claimed
            .name
            .as_deref()
            .is_some_and(|n| inspector.is_strict(n, port));
        let plan = if named_strict {
            plan
        } else {
            let ip_names = ctx
                .dns
                .as_deref()
                .map(|d| d.names.names_for(orig.dst.ip().to_canonical()))
                .unwrap_or_default();
            let by_name = claimed.name.is_some() && !claimed.ech;
            match inspector.strict_by_address(decision.rule.as_deref(), by_name, &ip_names, port) {
                Some(host) if ctx.policy.mode() == Mode::Block => Plan::Refuse(format!(
                    "the destination is the strict host {host} (allowed-urls), but the \
                     connection does not name it (no SNI or Host, ECH, or another name): its URL \
                     rules could not be applied"
                )),
                Some(host) => Plan::Pass(Some(format!(
                    "the destination is the strict host {host}, but the connection does not \
                     name it; its URL rules were not applied"
                ))),
                None => plan,
            }
        };
        match plan {
            Plan::Inspect if tls => {
                let name = claimed.name.as_deref().unwrap_or_default();
                let log = ctx.log.clone();
                inspector
                    .intercept(
                        log,
                        rec,
                        client,
                        buf,
                        upstream,
                        name,
                        &claimed.alpn,
                        ctx.cancel.subscribe(),
                    )
                    .await;
                return;
            }
            Plan::Inspect => {
                let name = claimed.name.as_deref().unwrap_or_default();
                let log = ctx.log.clone();
                let cancel = ctx.cancel.subscribe();
                inspector
                    .bridge_plain(log, rec, client, buf, upstream, name, cancel)
                    .await;
                return;
            }
            Plan::Refuse(why) => {
                rec.blocked_midway();
                rec.reason(format!("refused: {why}"));
                reset(client);
                return;
            }
            Plan::Pass(Some(why)) => {
                rec.flag("not-inspected");
                rec.reason(format!("not inspected: {why}"));
            }
            Plan::Pass(None) => {}
        }
    }
    // Block mode follows plain HTTP request by request: a later request may not name another
    // host on a shared address.
    let mut requests = match (&claimed.name, claimed.http, ctx.policy.mode()) {
        (Some(host), true, Mode::Block) => Some(Requests::new(host)),
        _ => None,
    };
    if let Some(Err(r)) = requests.as_mut().map(|req| req.feed(&buf)) {
        return ended_with_error(rec, client, upstream, &relay::refused(r));
    }
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
    if let Err(e) = relay::relay(&mut client, &mut upstream, &rec.counters, requests.as_mut()).await
    {
        ended_with_error(rec, client, upstream, &e);
    }
}

/// DNS over TCP.
const DNS_PORT: u16 = 53;
/// DNS over TLS (RFC 7858).
const DOT_PORT: u16 = 853;

/// A DNS-over-TCP connection: Warden's resolver answers it, one `dns` record per query.
fn dns_stream() -> crate::policy::Decision {
    crate::policy::Decision {
        verdict: PolicyVerdict::Allowed,
        rule: None,
        reason: "DNS over TCP, answered by Warden's resolver (one dns record per query)".into(),
        flags: vec!["dns"],
        suggestion: None,
    }
}

/// DNS over TLS hides every lookup from Warden: refused in every mode, like QUIC; clients fall
/// back to port 53.
fn dns_over_tls() -> crate::policy::Decision {
    crate::policy::Decision {
        verdict: PolicyVerdict::Blocked,
        rule: None,
        reason: "DNS over TLS (TCP port 853) is refused in every mode: Warden could not see the \
                 lookups; clients fall back to port 53"
            .into(),
        flags: vec![],
        suggestion: None,
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
/// The policy's reason (e.g. `audited`) gives way to what actually happened.
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
    if e.op == "policy" {
        rec.flag("host-changed");
        rec.blocked_midway();
        reset(client);
        reset(upstream);
        return;
    }
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
pub(super) fn reset(stream: TcpStream) {
    let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
    drop(stream);
}
