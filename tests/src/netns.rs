//! A private network namespace per test, so test traffic cannot leave the machine.
//!
//! Origins listen on documentation addresses (RFC 5737 / RFC 3849) added to `lo` inside a
//! namespace the test creates; the same addresses from the root namespace would be routed to the
//! internet. Clients and warden run in there too, through [`Netns::command`], with a private
//! hosts file that maps test names (`tls.example`, …) to those addresses, and a private
//! `resolv.conf` whose nameserver is the test DNS server's address ([`RESOLV_CONF`]; the server
//! itself is started by tests that need it, see [`crate::dns`]). The namespace is deleted, and
//! anything still running in it killed, when the [`Netns`] is dropped.
//!
//! Commands enter with `nsenter --net` rather than `ip netns exec`, because the latter remounts
//! `/sys` and so hides the cgroup2 mount warden needs; `unshare --mount` gives each command its
//! own mount namespace in which the two files are bind-mounted over `/etc/hosts` and
//! `/etc/resolv.conf`, and a private copy of the trust store over `/etc/ssl/certs` (Warden's TLS
//! inspection adds its CA there; tests must never touch the real one). Lookups go through them as long as the machine's `/etc/nsswitch.conf` says
//! `hosts: files dns` (Debian's and Ubuntu's default; `resolve`, systemd-resolved's NSS module,
//! would ask the host's resolver over a Unix socket, outside the namespace).

use std::ffi::OsStr;
use std::fs::File;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context;
use nix::sched::{CloneFlags, setns};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::process;

/// Addresses put on `lo` in every test namespace (`ip addr` syntax).
pub const ADDRESSES: [&str; 8] = [
    "192.0.2.10/32",
    "198.51.100.10/32",
    "203.0.113.10/32",
    "192.0.2.20/32",
    "2001:db8::10/128",
    "2001:db8::20/128",
    // The test DNS server's (crate::dns::SERVER_ADDRS). They also give getaddrinfo's
    // AI_ADDRCONFIG the non-loopback address of each family it needs before it queries at all.
    "192.0.2.53/32",
    "2001:db8::53/128",
];

/// The hosts file every command in a test namespace sees as `/etc/hosts`.
pub const HOSTS: &str = "\
127.0.0.1 localhost
::1 localhost ip6-localhost ip6-loopback
192.0.2.10 tls.example
198.51.100.10 http.example
203.0.113.10 raw.example
192.0.2.20 banner.example
2001:db8::10 v6.example
# A subdomain, for wildcard rules (`*.tls.example` allows it, not tls.example itself).
192.0.2.10 sub.tls.example
";

/// The `options` line of every resolv.conf [`Netns`] writes: a dead resolver fails a lookup in
/// seconds (2 tries of 2 s), not the default 10 s or more.
pub const RESOLV_OPTIONS: &str = "options timeout:2 attempts:2";

/// The resolv.conf every command in a test namespace sees as `/etc/resolv.conf` until
/// [`Netns::set_resolv_conf`] changes it: the test DNS server ([`crate::dns::SERVER_V4`]).
/// Without a [`DnsServer`](crate::dns::DnsServer) running, lookups fail at once (connection
/// refused on `lo`).
pub const RESOLV_CONF: &str = "nameserver 192.0.2.53\noptions timeout:2 attempts:2\n";

/// What [`Netns::command`] runs with `sh -c`, with the hosts file as `$0` and the resolv.conf as
/// `$1`, before the command itself.
const ENTER: &str = concat!(
    r#"mount --bind "$0" /etc/hosts && mount --bind "$1" /etc/resolv.conf"#,
    r#" && mount --bind "$2" /etc/ssl/certs && shift 2 && exec "$@""#
);

/// The system trust store (the Debian bundle, its hashed links and Java's `cacerts`), which
/// every command sees as a private copy: Warden's TLS inspection adds its CA there, and tests must
/// neither race on nor touch the real one.
const TRUST_STORE: &str = "/etc/ssl/certs";

/// How long one `ip` invocation may take.
const IP_TIMEOUT: Duration = Duration::from_secs(10);

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A network namespace owned by a test. See the module documentation.
#[derive(Debug)]
pub struct Netns {
    name: String,
    dir: tempfile::TempDir,
}

impl Netns {
    /// Creates `wt-<pid>-<n>` with `lo` up, the test addresses on it and a hosts file.
    pub fn new() -> anyhow::Result<Netns> {
        let name = format!(
            "wt-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        // A namespace with our pid and a counter value we have not used yet can only be left
        // over from a dead process that had the same pid.
        if Path::new("/run/netns").join(&name).exists() {
            remove(&name);
        }
        let dir = tempfile::Builder::new().prefix("warden-netns-").tempdir()?;
        ip(&["netns", "add", &name])?;
        // From here on, Drop cleans up whatever goes wrong.
        let netns = Netns { name, dir };
        std::fs::write(netns.hosts_path(), HOSTS)?;
        netns.set_resolv_conf(RESOLV_CONF)?;
        std::fs::create_dir(netns.trust_store_path())?;
        let copied = Command::new("cp")
            .args(["-a", &format!("{TRUST_STORE}/.")])
            .arg(netns.trust_store_path())
            .status()
            .context("copy the trust store")?;
        anyhow::ensure!(copied.success(), "cannot copy {TRUST_STORE}");
        netns.ip(&["link", "set", "lo", "up"])?;
        for addr in ADDRESSES {
            netns.add_addr(addr)?;
        }
        Ok(netns)
    }

    /// The namespace's name, as `ip netns` knows it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `/run/netns/<name>`, for `nsenter --net=` and `setns`.
    pub fn path(&self) -> PathBuf {
        Path::new("/run/netns").join(&self.name)
    }

    /// The hosts file commands in the namespace see as `/etc/hosts`.
    pub fn hosts_path(&self) -> PathBuf {
        self.dir.path().join("hosts")
    }

    /// The private copy of the system trust store commands in the namespace see as
    /// `/etc/ssl/certs` (see [`TRUST_STORE`]).
    pub fn trust_store_path(&self) -> PathBuf {
        self.dir.path().join("certs")
    }

    /// The resolv.conf commands in the namespace see as `/etc/resolv.conf`.
    pub fn resolv_conf_path(&self) -> PathBuf {
        self.dir.path().join("resolv.conf")
    }

    /// Replaces what commands in the namespace read as `/etc/resolv.conf`. The file is rewritten
    /// in place, so commands already running see it too (glibc rereads a changed resolv.conf
    /// before its next lookup); change it while no lookup is in flight.
    pub fn set_resolv_conf(&self, content: &str) -> anyhow::Result<()> {
        let path = self.resolv_conf_path();
        std::fs::write(&path, content).with_context(|| format!("cannot write {}", path.display()))
    }

    /// [`Netns::set_resolv_conf`] with these nameservers, in order, and [`RESOLV_OPTIONS`]: e.g.
    /// `127.0.0.53` or an address where nothing listens, to check that queries to any resolver
    /// are caught.
    pub fn set_nameservers(&self, servers: &[IpAddr]) -> anyhow::Result<()> {
        self.set_resolv_conf(&resolv_conf(servers))
    }

    /// Adds another address to `lo` (`ip addr` syntax, e.g. `192.0.2.30/32`); IPv6 addresses
    /// skip duplicate address detection so they can be bound at once.
    pub fn add_addr(&self, cidr: &str) -> anyhow::Result<()> {
        let mut args = vec!["addr", "add", cidr, "dev", "lo"];
        if cidr.contains(':') {
            args.push("nodad");
        }
        self.ip(&args)
    }

    /// Runs `ip -n <name> ARGS…`.
    pub fn ip(&self, args: &[&str]) -> anyhow::Result<()> {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        ip(&all)
    }

    /// A command that runs `program args…` inside the namespace with the test hosts file as
    /// `/etc/hosts` and the namespace's resolv.conf as `/etc/resolv.conf`. More arguments,
    /// environment and stdio can be set on the result as usual.
    pub fn command<I, S>(&self, program: impl AsRef<OsStr>, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net={}", self.path().display()))
            .args(["--", "unshare", "--mount", "--propagation", "private", "--"])
            .args(["sh", "-c", ENTER])
            .arg(self.hosts_path())
            .arg(self.resolv_conf_path())
            .arg(self.trust_store_path())
            .arg(program)
            .args(args);
        cmd
    }

    /// [`Netns::command`] for `sh -c SCRIPT`.
    pub fn sh(&self, script: &str) -> Command {
        self.command("sh", ["-c", script])
    }

    /// Runs `f` on a fresh thread that has joined the namespace, and returns its result.
    /// Sockets created by `f` belong to the namespace and may be used from any thread after.
    pub fn enter_thread<F, R>(&self, f: F) -> anyhow::Result<R>
    where
        F: FnOnce() -> R + Send,
        R: Send,
    {
        let ns = File::open(self.path())
            .with_context(|| format!("cannot open {}", self.path().display()))?;
        std::thread::scope(|scope| {
            let thread = scope.spawn(move || {
                setns(&ns, CloneFlags::CLONE_NEWNET).context("setns into the test namespace")?;
                Ok(f())
            });
            thread
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// Pids of processes (other than this one) whose network namespace is this one.
    pub fn pids(&self) -> Vec<Pid> {
        pids(&self.name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        remove(&self.name);
    }
}

/// Kills whatever still runs in namespace `name` and deletes it. Never panics: it runs in Drop.
fn remove(name: &str) {
    for pid in pids(name) {
        let _ = kill(pid, Signal::SIGKILL);
    }
    if let Err(e) = ip(&["netns", "del", name]) {
        eprintln!("warning: could not delete test network namespace {name}: {e:#}");
    }
}

/// A resolv.conf naming `servers`, in order, with [`RESOLV_OPTIONS`].
pub fn resolv_conf(servers: &[IpAddr]) -> String {
    let mut content: String = servers
        .iter()
        .map(|s| format!("nameserver {s}\n"))
        .collect();
    content.push_str(RESOLV_OPTIONS);
    content.push('\n');
    content
}

fn pids(name: &str) -> Vec<Pid> {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "pids", name]);
    let me = std::process::id() as i32;
    process::run_ok(cmd, IP_TIMEOUT)
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse::<i32>().ok())
        .filter(|&p| p != me)
        .map(Pid::from_raw)
        .collect()
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    let mut cmd = Command::new("ip");
    cmd.args(args);
    process::run_ok(cmd, IP_TIMEOUT).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_resolv_conf_names_the_test_dns_server() {
        assert_eq!(resolv_conf(&[crate::dns::SERVER_V4]), RESOLV_CONF);
        for addr in crate::dns::SERVER_ADDRS {
            let cidr = format!("{}/{}", addr.ip(), if addr.is_ipv4() { 32 } else { 128 });
            assert!(ADDRESSES.contains(&cidr.as_str()), "{cidr} is not on lo");
        }
    }
}
