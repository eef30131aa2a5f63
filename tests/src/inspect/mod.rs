//! HTTPS origins for the TLS-inspection tests.
//!
//! With inspection on, Warden terminates the client's TLS, connects to the real server itself,
//! and relays HTTP between the two, so its tests need origins that speak real HTTP the way real
//! servers do: h2 and HTTP/1.1 chosen by ALPN, streamed bodies, trailers, upgrades, and the two
//! things CI fetches most, a git repository over smart HTTP and a Python package index. They
//! also need servers Warden must refuse to talk to: one whose certificate comes from a CA
//! nobody trusts, one whose certificate names another host.
//!
//! [`InspectOrigins::start`] starts them all on documentation addresses it adds to the test
//! namespace's `lo` (and names it adds to its hosts file), with certificates from the same test
//! CA as [`Origins`], whose PEM ([`Origins::ca_pem_path`]) is what Warden's `--upstream-ca`
//! and the harness's own self-tests trust. Each origin logs connections, handshakes and every
//! request it received, with its HTTP version and headers ([`HttpsOrigin`]).
//!
//! | name | address | serves |
//! |---|---|---|
//! | `h2.example` | 192.0.2.40:443 | ALPN `h2`, `http/1.1`; the endpoints below |
//! | `h1.example` | 192.0.2.41:443 | the same, ALPN `http/1.1` only |
//! | `git.example` | 192.0.2.42:443 | `git http-backend` at `/repo.git` ([`GitRepo`]), endpoints elsewhere |
//! | `pypi.example` | 192.0.2.43:443 | a simple index at `/simple/` with [`PYPI_PACKAGE`] ([`PypiIndex`]) |
//! | `untrusted.example` | 192.0.2.44:443 | the endpoints, with a certificate from an unrelated CA |
//! | `wrong-name.example` | 192.0.2.45:443 | the endpoints, with a test-CA certificate for [`WRONG_NAME_CERT_NAME`] only |
//!
//! Every origin answers these (git and pypi outside their own paths):
//!
//! | request | answer | what it checks |
//! |---|---|---|
//! | `GET /any/path?q` | `origin=NAME version=HTTP/2.0 method=GET target=/any/path?q` | the version the origin spoke, the full target |
//! | `POST /echo` | the request body, streamed back as it arrives | streamed bodies both ways (10 MiB and more) |
//! | `/bytes/N` | N bytes, byte i being `i % 251`, streamed | large downloads |
//! | `/status/N` | status N (200–599), body `status N` | statuses other than 200 |
//! | `/trailers` | `trailers follow`, then trailers `grpc-status: 0`, `grpc-message: ok` | gRPC-style trailers (h2) |
//! | `/ws` | `101 Switching Protocols`, then a WebSocket echo of each message | HTTP/1.1 upgrades |
//!
//! ```no_run
//! use tests::inspect::{self, InspectOrigins};
//! use tests::{Netns, Origins, clients};
//!
//! let netns = Netns::new()?;
//! let origins = Origins::start(&netns)?;
//! let inspect = InspectOrigins::start(&netns, &origins)?;
//! let ca = origins.ca_pem_path();
//! let script = clients::curl_get(&inspect.h2().url("/x?y=1"), clients::Http::V2, Some(&ca));
//! let out = tests::process::run_ok(netns.sh(&script), std::time::Duration::from_secs(30))?;
//! assert!(out.contains("version=HTTP/2.0"), "{out}");
//! assert!(inspect.h2().requests()[0].is_h2());
//! # Ok::<(), anyhow::Error>(())
//! ```

mod git;
mod log;
mod pypi;
mod routes;
mod server;
mod websocket;

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use tokio::runtime::Runtime;

use crate::{Netns, Origins};
pub use git::{GIT_BRANCH, GIT_FILE, GIT_REPO, GitRepo};
pub use log::{HttpsOrigin, SeenRequest};
pub use pypi::{PYPI_PACKAGE, PYPI_VERSION, PypiIndex};
use server::{Config, Site};
pub use websocket::accept_key as websocket_accept_key;

const fn v4(a: u8, b: u8, c: u8, d: u8) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(a, b, c, d)), 443)
}

/// `h2.example`: offers h2 and HTTP/1.1.
pub const H2_NAME: &str = "h2.example";
/// Where `h2.example` listens.
pub const H2_ADDR: SocketAddr = v4(192, 0, 2, 40);
/// `h1.example`: offers HTTP/1.1 only.
pub const H1_NAME: &str = "h1.example";
/// Where `h1.example` listens.
pub const H1_ADDR: SocketAddr = v4(192, 0, 2, 41);
/// `git.example`: the git repository.
pub const GIT_NAME: &str = "git.example";
/// Where `git.example` listens.
pub const GIT_ADDR: SocketAddr = v4(192, 0, 2, 42);
/// `pypi.example`: the package index.
pub const PYPI_NAME: &str = "pypi.example";
/// Where `pypi.example` listens.
pub const PYPI_ADDR: SocketAddr = v4(192, 0, 2, 43);
/// `untrusted.example`: a certificate from a CA that is not the test CA.
pub const UNTRUSTED_NAME: &str = "untrusted.example";
/// Where `untrusted.example` listens.
pub const UNTRUSTED_ADDR: SocketAddr = v4(192, 0, 2, 44);
/// `wrong-name.example`: a test-CA certificate that does not name it.
pub const WRONG_NAME_NAME: &str = "wrong-name.example";
/// Where `wrong-name.example` listens.
pub const WRONG_NAME_ADDR: SocketAddr = v4(192, 0, 2, 45);
/// The only name in `wrong-name.example`'s certificate.
pub const WRONG_NAME_CERT_NAME: &str = "other.example";

/// The repository's clone URL.
pub const GIT_URL: &str = "https://git.example/repo.git";
/// The package index's URL (`pip --index-url`).
pub const PYPI_INDEX_URL: &str = "https://pypi.example/simple/";

/// Every inspection origin's name and address, for the hosts file and `lo`.
pub const SITES: [(&str, SocketAddr); 6] = [
    (H2_NAME, H2_ADDR),
    (H1_NAME, H1_ADDR),
    (GIT_NAME, GIT_ADDR),
    (PYPI_NAME, PYPI_ADDR),
    (UNTRUSTED_NAME, UNTRUSTED_ADDR),
    (WRONG_NAME_NAME, WRONG_NAME_ADDR),
];

/// The running inspection origins, their repository, index and untrusted CA. At most one per
/// namespace (it adds addresses to `lo`).
pub struct InspectOrigins {
    runtime: Option<Runtime>,
    dir: tempfile::TempDir,
    repo: Arc<GitRepo>,
    index: Arc<PypiIndex>,
    h2: HttpsOrigin,
    h1: HttpsOrigin,
    git: HttpsOrigin,
    pypi: HttpsOrigin,
    untrusted: HttpsOrigin,
    wrong_name: HttpsOrigin,
}

/// How one origin is started.
struct Plan {
    name: &'static str,
    addr: SocketAddr,
    cert_names: Vec<String>,
    alpn: &'static [&'static str],
    site: Site,
    untrusted: bool,
}

const BOTH: &[&str] = &["h2", "http/1.1"];
const H1_ONLY: &[&str] = &["http/1.1"];

impl InspectOrigins {
    /// Makes the repository and the wheel, adds [`SITES`] to `netns` (addresses on `lo`, names
    /// in its hosts file) and starts every origin there, with leaves from `origins`' test CA
    /// (and, for `untrusted.example`, from a CA of its own).
    pub fn start(netns: &Netns, origins: &Origins) -> anyhow::Result<InspectOrigins> {
        let dir = tempfile::Builder::new()
            .prefix("warden-inspect-")
            .tempdir()?;
        let (projects, work, packages) = (
            dir.path().join("git"),
            dir.path().join("work"),
            dir.path().join("packages"),
        );
        for d in [&projects, &packages] {
            std::fs::create_dir(d)?;
        }
        let repo = Arc::new(GitRepo::create(&projects, &work).context("the test git repository")?);
        let index = Arc::new(PypiIndex::create(&packages).context("the test package index")?);
        let untrusted_ca = certs::Authority::generate("Unrelated test CA (never trusted)")?;
        std::fs::write(dir.path().join("untrusted-ca.pem"), untrusted_ca.cert_pem())?;
        add_sites(netns)?;

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("inspect-origins")
            .enable_all()
            .build()?;
        let start = |plan: Plan| -> anyhow::Result<HttpsOrigin> {
            let ca = if plan.untrusted {
                &untrusted_ca
            } else {
                origins.ca()
            };
            let names: Vec<&str> = plan.cert_names.iter().map(String::as_str).collect();
            let leaf = ca.issue_leaf(&names)?;
            let origin = HttpsOrigin::new(plan.name, plan.addr);
            let config = Arc::new(Config {
                origin: origin.clone(),
                acceptor: server::acceptor(&leaf, plan.alpn)?,
                http1_only: plan.alpn == H1_ONLY,
                site: plan.site,
            });
            let listener = server::bind(netns, plan.addr)
                .with_context(|| format!("starting {}", plan.name))?;
            runtime.spawn(server::accept_loop(listener, config));
            Ok(origin)
        };
        let plan = |name: &'static str, addr: SocketAddr, alpn, site| Plan {
            name,
            addr,
            cert_names: vec![name.to_owned(), addr.ip().to_string()],
            alpn,
            site,
            untrusted: false,
        };
        let h2 = start(plan(H2_NAME, H2_ADDR, BOTH, Site::Generic))?;
        let h1 = start(plan(H1_NAME, H1_ADDR, H1_ONLY, Site::Generic))?;
        let git = start(plan(GIT_NAME, GIT_ADDR, BOTH, Site::Git(repo.clone())))?;
        let pypi = start(plan(PYPI_NAME, PYPI_ADDR, BOTH, Site::Pypi(index.clone())))?;
        let untrusted = start(Plan {
            untrusted: true,
            ..plan(UNTRUSTED_NAME, UNTRUSTED_ADDR, BOTH, Site::Generic)
        })?;
        let wrong_name = start(Plan {
            cert_names: vec![WRONG_NAME_CERT_NAME.to_owned()],
            ..plan(WRONG_NAME_NAME, WRONG_NAME_ADDR, BOTH, Site::Generic)
        })?;
        Ok(InspectOrigins {
            runtime: Some(runtime),
            dir,
            repo,
            index,
            h2,
            h1,
            git,
            pypi,
            untrusted,
            wrong_name,
        })
    }

    /// `h2.example` (h2 and HTTP/1.1).
    pub fn h2(&self) -> &HttpsOrigin {
        &self.h2
    }

    /// `h1.example` (HTTP/1.1 only).
    pub fn h1(&self) -> &HttpsOrigin {
        &self.h1
    }

    /// `git.example` (the repository at [`GIT_URL`]).
    pub fn git(&self) -> &HttpsOrigin {
        &self.git
    }

    /// `pypi.example` (the index at [`PYPI_INDEX_URL`]).
    pub fn pypi(&self) -> &HttpsOrigin {
        &self.pypi
    }

    /// `untrusted.example` (a certificate from an unrelated CA).
    pub fn untrusted(&self) -> &HttpsOrigin {
        &self.untrusted
    }

    /// `wrong-name.example` (a test-CA certificate for [`WRONG_NAME_CERT_NAME`] only).
    pub fn wrong_name(&self) -> &HttpsOrigin {
        &self.wrong_name
    }

    /// Every inspection origin, in [`SITES`] order.
    pub fn all(&self) -> [&HttpsOrigin; 6] {
        [
            &self.h2,
            &self.h1,
            &self.git,
            &self.pypi,
            &self.untrusted,
            &self.wrong_name,
        ]
    }

    /// The repository `git.example` serves.
    pub fn repo(&self) -> &GitRepo {
        &self.repo
    }

    /// The index `pypi.example` serves.
    pub fn index(&self) -> &PypiIndex {
        &self.index
    }

    /// The CA that signed `untrusted.example`'s certificate, to show that certificate is valid
    /// in every way but trust.
    pub fn untrusted_ca_pem_path(&self) -> PathBuf {
        self.dir.path().join("untrusted-ca.pem")
    }
}

/// Puts every [`SITES`] address on `netns`'s `lo` and its name in the namespace's hosts file
/// (appended in place, so commands already running see it too).
fn add_sites(netns: &Netns) -> anyhow::Result<()> {
    let mut hosts = std::fs::OpenOptions::new()
        .append(true)
        .open(netns.hosts_path())
        .context("the test namespace's hosts file")?;
    writeln!(hosts, "# TLS inspection origins (tests/src/inspect)")?;
    for (name, addr) in SITES {
        netns.add_addr(&format!("{}/32", addr.ip()))?;
        writeln!(hosts, "{} {name}", addr.ip())?;
    }
    Ok(())
}

impl Drop for InspectOrigins {
    fn drop(&mut self) {
        // shutdown_background, unlike dropping, is allowed inside an async test.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl std::fmt::Debug for InspectOrigins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InspectOrigins")
            .field("origins", &self.all())
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}
