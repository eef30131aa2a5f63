//! The proxy: accepts redirected connections, finds where they were going and who made them,
//! sniffs what they ask for, relays them, and leaves one audit record each.
//!
//! Connections arrive either from the eBPF connect hook (original destination in the
//! [`OrigDstTable`]) or from an iptables `REDIRECT` rule (original destination from
//! `SO_ORIGINAL_DST`), for hosts without cgroup BPF and for benchmarks.

mod conn;
mod enforce;
mod guard;
mod http1;
pub mod inspect;
mod origdst;
mod relay;
mod sniffing;
mod splice;
mod upstream;

use std::{
    io,
    net::{Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::{net::TcpListener, sync::Notify};

use crate::{
    audit::AuditLog, dns::Dns, ebpf::OrigDstTable, policy::Policy, process::ProcessTracker,
    resolve::Resolver,
};

/// Everything a connection handler needs.
pub struct Context {
    /// Where records go.
    pub log: Arc<AuditLog>,
    /// Who is who.
    pub processes: Option<Arc<ProcessTracker>>,
    /// Original destinations filed by the connect hook.
    pub orig_dst: Option<OrigDstTable>,
    /// What the job may reach.
    pub policy: Arc<Policy>,
    /// Names for anti-spoofing when the job's own answers do not tell (`--no-dns`, names the
    /// job did not look up).
    pub resolver: Resolver,
    /// Warden's resolver: what the job looked up (`None`: `--no-dns`).
    pub dns: Option<Arc<Dns>>,
    /// TLS inspection (`None`: off).
    pub inspect: Option<Arc<inspect::Inspector>>,
    active: AtomicUsize,
    idle: Notify,
    /// Fires when Warden stops: connections still open end (and write their records).
    pub(crate) cancel: tokio::sync::watch::Sender<bool>,
    /// Local addresses of the proxy's open upstream sockets, to recognise its own traffic coming
    /// back (a misconfigured iptables REDIRECT) instead of looping until descriptors run out.
    own_upstreams: std::sync::Mutex<std::collections::HashSet<SocketAddr>>,
}

impl Context {
    /// A context for the given log, process table, destination table, policy and resolver.
    pub fn new(
        log: Arc<AuditLog>,
        processes: Option<Arc<ProcessTracker>>,
        orig_dst: Option<OrigDstTable>,
        policy: Arc<Policy>,
        dns: Option<Arc<Dns>>,
        inspect: Option<Arc<inspect::Inspector>>,
    ) -> Arc<Self> {
        Arc::new(Self {
            log,
            processes,
            orig_dst,
            policy,
            resolver: Resolver::default(),
            dns,
            inspect,
            active: AtomicUsize::new(0),
            idle: Notify::new(),
            cancel: tokio::sync::watch::Sender::new(false),
            own_upstreams: Default::default(),
        })
    }

    fn own_upstreams(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<SocketAddr>> {
        self.own_upstreams.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Ends every open connection (each writes its record, flagged `interrupted`) and makes
    /// [`Listeners::serve`] take the backlog and return.
    pub fn cancel(&self) {
        self.cancel.send_replace(true);
    }

    /// Connections not yet closed.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::SeqCst)
    }

    /// Waits until every connection has closed, or `timeout` passes; returns how many remain.
    pub async fn wait_idle(&self, timeout: Duration) -> usize {
        let wait = async {
            loop {
                let notified = self.idle.notified();
                if self.active() == 0 {
                    return;
                }
                notified.await;
            }
        };
        let _ = tokio::time::timeout(timeout, wait).await;
        self.active()
    }
}

/// Counts a connection as active until dropped.
struct ActiveToken(Arc<Context>);

impl ActiveToken {
    fn new(ctx: &Arc<Context>) -> Self {
        ctx.active.fetch_add(1, Ordering::SeqCst);
        Self(ctx.clone())
    }
}

impl Drop for ActiveToken {
    fn drop(&mut self) {
        if self.0.active.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// The proxy's listening sockets: 127.0.0.1 and [::1] on one port (the eBPF hook rewrites both
/// families to the same port).
pub struct Listeners {
    v4: TcpListener,
    v6: Option<TcpListener>,
}

impl Listeners {
    /// Binds 127.0.0.1 on `port` (0: any free port) and [::1] on the same port. IPv6 is optional:
    /// without it IPv6 connects from the job fail (closed, not open), which is logged.
    pub async fn bind(port: u16) -> io::Result<Self> {
        let mut last_err = None;
        for _ in 0..16 {
            let v4 = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await?;
            let port = v4.local_addr()?.port();
            match TcpListener::bind(SocketAddr::from((Ipv6Addr::LOCALHOST, port))).await {
                Ok(v6) => return Ok(Self { v4, v6: Some(v6) }),
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => last_err = Some(e),
                Err(e) => {
                    tracing::warn!(error = %e, "no IPv6 loopback: IPv6 connections from the job will fail");
                    return Ok(Self { v4, v6: None });
                }
            }
        }
        Err(last_err.unwrap_or_else(|| io::Error::other("no free port")))
    }

    /// Cookie of the network namespace the listeners are in.
    pub fn netns_cookie(&self) -> io::Result<u64> {
        crate::sys::netns_cookie(&self.v4)
    }

    /// The port both listeners use.
    pub fn port(&self) -> u16 {
        self.v4.local_addr().map_or(0, |a| a.port())
    }

    /// Accepts and handles connections until [`Context::cancel`]. Then it takes whatever is
    /// still in the accept backlog, so those connections get their record too, and returns.
    pub async fn serve(self, ctx: Arc<Context>) {
        let listeners: Vec<Arc<TcpListener>> = std::iter::once(self.v4)
            .chain(self.v6)
            .map(Arc::new)
            .collect();
        let loops: Vec<_> = listeners
            .iter()
            .map(|l| tokio::spawn(accept_loop(l.clone(), ctx.clone())))
            .collect();
        let _ = ctx.cancel.subscribe().wait_for(|c| *c).await;
        for l in &loops {
            l.abort();
        }
        for listener in &listeners {
            // A short wait, not zero: readiness of a pending connection may not be seen yet.
            while let Ok(Ok((stream, peer))) =
                tokio::time::timeout(Duration::from_millis(10), listener.accept()).await
            {
                spawn_handler(&ctx, stream, peer);
            }
        }
    }
}

async fn accept_loop(listener: Arc<TcpListener>, ctx: Arc<Context>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => spawn_handler(&ctx, stream, peer),
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::error!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

fn spawn_handler(ctx: &Arc<Context>, stream: tokio::net::TcpStream, peer: SocketAddr) {
    let token = ActiveToken::new(ctx);
    let ctx = ctx.clone();
    tokio::spawn(async move {
        let mut cancelled = ctx.cancel.subscribe();
        tokio::select! {
            // Handler first: one cancelled before it starts still learns where it was going.
            biased;
            () = conn::handle(ctx.clone(), stream, peer) => {}
            // Dropping the handler writes its record (flagged `interrupted`).
            _ = cancelled.wait_for(|c| *c) => {}
        }
        drop(token);
    });
}
