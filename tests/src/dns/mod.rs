//! A real DNS server for the test zone, inside a test namespace.
//!
//! Warden's resolver must see every lookup a job makes, whatever the client (glibc's
//! getaddrinfo, dig over UDP or TCP, python) and whichever resolver it asks. To check that from
//! the outside, DNS tests need a real server answering a known zone, with a log of what reached
//! it. [`DnsServer::start`] runs the real `dnsmasq` (package `dnsmasq-base`) in a [`Netns`] on
//! [`SERVER_V4`] and [`SERVER_V6`], port 53, UDP and TCP, where the namespace's `resolv.conf`
//! points by default ([`netns::RESOLV_CONF`](crate::netns::RESOLV_CONF)); it answers the
//! [`Zone`] it was given (by default `test.example`: [`A_NAME`], [`ALIAS_NAME`], …) and logs
//! every query it receives, which [`DnsServer::queries`] reads back.
//!
//! It answers from its records only: it reads neither the host's `/etc/resolv.conf` nor its
//! `/etc/hosts`, forwards nothing, and answers every name it has no record for NXDOMAIN (a
//! definite answer, so a missing name fails at once rather than after timeouts and retries). It
//! runs in the foreground as root (no `dnsmasq` user needed), writes no pid file and logs to a
//! file in its own temporary directory, never to syslog. It is ready when `start` returns, and
//! killed (with the children serving TCP connections) when dropped.
//!
//! ```no_run
//! use std::time::Duration;
//! use tests::dns::{self, DnsServer};
//! use tests::{Netns, clients, process};
//!
//! let netns = Netns::new()?;
//! let dns = DnsServer::start(&netns)?;
//! let getent = netns.sh(&clients::getent("ahostsv4", dns::A_NAME));
//! let out = process::run_ok(getent, Duration::from_secs(30))?;
//! assert!(out.starts_with("192.0.2.10"));
//! assert!(dns.queries().iter().any(|q| q.is(dns::A_NAME, "A")));
//! # Ok::<(), anyhow::Error>(())
//! ```

mod dig;
mod query_log;
mod zone;

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::sys::signal::Signal;
use nix::unistd::Pid;

pub use dig::{Answer, DigOutput};
pub use query_log::Query;
pub use zone::{
    A_NAME, A_V4, A_V6, ALIAS_NAME, BURST_DOMAIN, ECH_PUBLIC_NAME, HTTP_NAME, HTTP_V4, HTTPS_ALPN,
    RAW_NAME, RAW_V4, Record, TXT_NAME, TXT_STRINGS, TYPE_HTTPS, V6ONLY_NAME, ZONE, Zone,
    ech_config_list, https_rdata,
};

use crate::Netns;
use crate::daemon::is_gone;
use crate::process::Running;

/// The server's IPv4 address in every test namespace (on `lo`, see
/// [`netns::ADDRESSES`](crate::netns::ADDRESSES)).
pub const SERVER_V4: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 53));
/// The server's IPv6 address in every test namespace.
pub const SERVER_V6: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x53));
/// Where [`DnsServer::start`] listens, UDP and TCP.
pub const SERVER_ADDRS: [SocketAddr; 2] = [
    SocketAddr::new(SERVER_V4, 53),
    SocketAddr::new(SERVER_V6, 53),
];

/// How long dnsmasq may take to bind its sockets.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// A running dnsmasq serving a [`Zone`] in a test namespace. See the module documentation.
pub struct DnsServer {
    child: Option<Running>,
    pid: Pid,
    addrs: Vec<SocketAddr>,
    zone: Zone,
    dir: tempfile::TempDir,
}

impl DnsServer {
    /// Starts a server for the default `test.example` [`Zone`] on [`SERVER_ADDRS`].
    pub fn start(netns: &Netns) -> anyhow::Result<DnsServer> {
        DnsServer::start_with(netns, Zone::default(), &[SERVER_V4, SERVER_V6])
    }

    /// Starts a server for `zone` on port 53 of `ips`, which must be on the namespace's `lo`
    /// (see [`Netns::add_addr`]).
    pub fn start_with(netns: &Netns, zone: Zone, ips: &[IpAddr]) -> anyhow::Result<DnsServer> {
        let dir = tempfile::Builder::new().prefix("warden-dns-").tempdir()?;
        let addrs: Vec<SocketAddr> = ips.iter().map(|&ip| SocketAddr::new(ip, 53)).collect();
        let config = dir.path().join("dnsmasq.conf");
        std::fs::write(
            &config,
            config_text(&zone, &addrs, &dir.path().join("queries.log")),
        )
        .with_context(|| format!("cannot write {}", config.display()))?;
        let cmd = netns.command(
            "dnsmasq",
            [
                "--keep-in-foreground".to_owned(),
                format!("--conf-file={}", config.display()),
            ],
        );
        let child = Running::spawn(cmd)?;
        let pid = child.pid();
        let mut server = DnsServer {
            child: Some(child),
            pid,
            addrs,
            zone,
            dir,
        };
        server.wait_ready()?;
        Ok(server)
    }

    /// Where it listens (UDP and TCP).
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// What it answers.
    pub fn zone(&self) -> &Zone {
        &self.zone
    }

    /// dnsmasq's process id (TCP connections are served by short-lived children of it).
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// Its configuration file, to show in a failure message.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("dnsmasq.conf")
    }

    /// Its log file: every query, each followed by how it was answered.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("queries.log")
    }

    /// Its log so far (empty if unreadable).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Every query it has received so far, in order. A query is logged when it arrives, before
    /// it is answered, so once a client has its answer the query is here.
    pub fn queries(&self) -> Vec<Query> {
        query_log::parse(&self.log(), self.pid.as_raw())
    }

    /// The queries for `name` so far (case-insensitive, trailing dot ignored).
    pub fn queries_for(&self, name: &str) -> Vec<Query> {
        self.queries()
            .into_iter()
            .filter(|q| q.is_for(name))
            .collect()
    }

    /// Waits up to `timeout` until at least `n` received queries satisfy `matches`, for clients
    /// that do not wait for the answer; returns those that do (fewer than `n` on timeout).
    pub fn wait_for_queries(
        &self,
        n: usize,
        timeout: Duration,
        matches: impl Fn(&Query) -> bool,
    ) -> Vec<Query> {
        let deadline = Instant::now() + timeout;
        loop {
            let found: Vec<Query> = self.queries().into_iter().filter(&matches).collect();
            if found.len() >= n || Instant::now() >= deadline {
                return found;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until every address has its UDP socket bound and its TCP socket listening, as the
    /// kernel shows them in dnsmasq's own network namespace: no probe query, so the log holds
    /// the test's queries only.
    fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if is_gone(self.pid) {
                let out = self
                    .child
                    .take()
                    .expect("running")
                    .wait_timeout(READY_TIMEOUT)?;
                let hint = match out.status.code() {
                    Some(127) => " (scripts/setup-deps.sh installs it: dnsmasq-base)",
                    _ => "",
                };
                bail!(
                    "dnsmasq exited at start with {}{hint}: {}{}\nconfiguration ({}):\n{}",
                    out.status,
                    out.stderr,
                    self.log(),
                    self.config_path().display(),
                    std::fs::read_to_string(self.config_path()).unwrap_or_default()
                );
            }
            if self.addrs.iter().all(|&addr| listening(self.pid, addr)) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "dnsmasq did not listen on {:?} within {READY_TIMEOUT:?}",
                    self.addrs
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            // On SIGTERM dnsmasq also kills the children serving TCP connections; wait_timeout
            // kills dnsmasq itself if it does not exit.
            let _ = child.signal(Signal::SIGTERM);
            let _ = child.wait_timeout(Duration::from_secs(5));
        }
    }
}

impl std::fmt::Debug for DnsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsServer")
            .field("pid", &self.pid)
            .field("addrs", &self.addrs)
            .field("config", &self.config_path())
            .field("log", &self.log_path())
            .finish_non_exhaustive()
    }
}

/// dnsmasq's whole configuration (it is started with this file only, so neither
/// `/etc/dnsmasq.conf` nor anything else of the host's is read).
fn config_text(zone: &Zone, addrs: &[SocketAddr], log: &std::path::Path) -> String {
    let mut lines = vec![
        "# Written by the test harness (tests/src/dns/mod.rs) for one test.".to_owned(),
        // Never the host's resolvers or hosts file: answers come from the records below only.
        "no-resolv".to_owned(),
        "no-hosts".to_owned(),
        // Root needs no `dnsmasq` user; no pid file (the harness owns the process).
        "user=root".to_owned(),
        "group=root".to_owned(),
        "pid-file=".to_owned(),
        // Exactly these addresses: not 127.0.0.1, nor anything added to lo later, so a test can
        // point resolv.conf at an address where nothing listens.
        "bind-interfaces".to_owned(),
        "port=53".to_owned(),
        format!("log-facility={}", log.display()),
        // `extra` adds the client's address and port to each query line.
        "log-queries=extra".to_owned(),
    ];
    lines.extend(addrs.iter().map(|a| format!("listen-address={}", a.ip())));
    lines.extend(zone.dnsmasq_lines());
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

/// Whether process `pid` has a UDP socket bound to `addr` and a TCP socket listening on it.
/// `/proc/<pid>/net/{udp,tcp}{,6}` list every socket of `pid`'s network namespace, so a socket
/// counts only if its inode is one of `pid`'s open files: another server on the same address
/// must not pass for this one.
fn listening(pid: Pid, addr: SocketAddr) -> bool {
    // The kernel prints each 32-bit word of the address in host byte order.
    let (suffix, octets) = match addr.ip() {
        IpAddr::V4(ip) => ("", ip.octets().to_vec()),
        IpAddr::V6(ip) => ("6", ip.octets().to_vec()),
    };
    let words = octets.chunks(4).map(|w| {
        let w: [u8; 4] = w.try_into().expect("4-byte words");
        format!("{:08X}", u32::from_ne_bytes(w))
    });
    let local = format!("{}:{:04X}", words.collect::<String>(), addr.port());
    let inodes = socket_inodes(pid);
    // Socket states (include/net/tcp_states.h): 07 is TCP_CLOSE (an unconnected UDP socket),
    // 0A is TCP_LISTEN.
    let has = |proto: &str, state: &str| {
        std::fs::read_to_string(format!("/proc/{pid}/net/{proto}{suffix}")).is_ok_and(|table| {
            table.lines().skip(1).any(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                fields.get(1) == Some(&local.as_str())
                    && fields.get(3) == Some(&state)
                    && fields.get(9).is_some_and(|inode| inodes.contains(*inode))
            })
        })
    };
    has("udp", "07") && has("tcp", "0A")
}

/// The inodes of the sockets process `pid` has open (its `/proc/<pid>/fd/*` links read
/// `socket:[INODE]`).
fn socket_inodes(pid: Pid) -> HashSet<String> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return HashSet::new();
    };
    fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_str()?;
            Some(
                target
                    .strip_prefix("socket:[")?
                    .strip_suffix(']')?
                    .to_owned(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configuration_reads_nothing_of_the_host() {
        let text = config_text(
            &Zone::default(),
            &SERVER_ADDRS,
            std::path::Path::new("/tmp/q.log"),
        );
        for line in [
            "no-resolv",
            "no-hosts",
            "user=root",
            "pid-file=",
            "bind-interfaces",
            "log-facility=/tmp/q.log",
            "log-queries=extra",
            "listen-address=192.0.2.53",
            "listen-address=2001:db8::53",
            "address=/#/",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
        }
        assert!(!text.contains("server="), "nothing is forwarded:\n{text}");
    }
}
