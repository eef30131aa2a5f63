//! End-to-end test harness.
//!
//! Warden's promises are about what happens to real connections made by real programs, so its
//! end-to-end tests run the real `warden` binary, real clients (curl, openssl, python) and real
//! origin servers. None of that traffic may leave the machine: everything runs inside a network
//! namespace the test creates ([`Netns`]), where documentation addresses (RFC 5737, RFC 3849) sit
//! on `lo` and test host names resolve through a private hosts file. [`Origins`] serves TLS,
//! plain HTTP, echo and banner-first protocols on those addresses, with certificates from a test
//! CA made by the same [`certs::Authority`] the proxy uses. [`WardenRun`] runs `warden run` in
//! the namespace and hands back its exit status, output and parsed audit log, which [`audit`]
//! helps to query; [`clients`] has the real-client command lines to run under it; [`daemon`]
//! runs `warden start`/`stop`/`status` on a [`TestCgroup`] instead. DNS tests add a
//! [`DnsServer`]: a real dnsmasq serving the `test.example` zone at the address the namespace's
//! private `resolv.conf` names, with a log of every query that reached it. TLS-inspection tests
//! add [`InspectOrigins`]: h2 and HTTP/1.1 origins built on hyper (streamed echo, trailers,
//! WebSocket), a git repository over smart HTTP, a pip index, and origins with bad
//! certificates. File-monitoring tests add a [`workspace::TestRepo`]: a real git repository
//! to pass as `--workspace`. Every test in this crate, and every later one, is built from these pieces:
//!
//! ```no_run
//! use tests::{Netns, Origins, WardenRun, audit, clients, skip_unless_root};
//!
//! if skip_unless_root("curl_is_audited") { return Ok(()); }
//! let netns = Netns::new()?;
//! let origins = Origins::start(&netns)?;
//! let script = clients::curl("https://tls.example/x", &origins.ca_pem_path());
//! let out = WardenRun::new(&netns).cmd(["sh", "-c", &script]).run()?;
//! out.assert_success();
//! assert!(audit::find_connection(&out.records, "192.0.2.10", 443).is_some());
//! assert_eq!(origins.tls().connections(), 1);
//! # Ok::<(), anyhow::Error>(())
//! ```
#![forbid(unsafe_code)]

pub mod action;
pub mod audit;
pub mod clients;
pub mod daemon;
pub mod decision;
pub mod dns;
pub mod inspect;
pub mod netns;
pub mod origins;
pub mod process;
pub mod root;
pub mod warden;
pub mod workspace;

pub use daemon::{Daemon, TestCgroup};
pub use dns::DnsServer;
pub use inspect::InspectOrigins;
pub use netns::Netns;
pub use origins::{Origin, Origins, Service};
pub use root::skip_unless_root;
pub use warden::{RunOutput, WardenChild, WardenRun, warden_bin};
