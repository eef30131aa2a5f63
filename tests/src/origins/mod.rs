//! Test origin servers inside a test namespace.
//!
//! Warden sits between clients and the servers they reach, so every end-to-end test needs
//! servers to reach: a TLS one (SNI, ALPN, interception), a plain HTTP one (Host), a raw TCP echo
//! (no protocol to sniff) and one that speaks first (a sniffer must not wait for client bytes).
//! [`Origins::start`] starts all four on the documentation addresses [`Netns`] puts on `lo`,
//! with a certificate from a test CA whose PEM is written for clients to trust explicitly.
//!
//! Sockets are bound synchronously on a thread that joined the namespace, so the origins accept
//! connections as soon as `start` returns; they are then served by a one-worker tokio runtime
//! that the [`Origins`] owns and shuts down when dropped.

mod origin;
mod serve;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::runtime::Runtime;
use tokio_rustls::TlsAcceptor;

use crate::Netns;
pub use origin::{Accepted, Origin, Request};
use serve::Serve;

const V6_ORIGIN: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10));
const fn v4(a: u8, b: u8, c: u8, d: u8, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(a, b, c, d)), port)
}

/// Where the TLS origin listens (`tls.example`, `v6.example`).
pub const TLS_ADDRS: [SocketAddr; 2] = [v4(192, 0, 2, 10, 443), SocketAddr::new(V6_ORIGIN, 443)];
/// Where the plain HTTP origin listens (`http.example`, `v6.example`).
pub const HTTP_ADDRS: [SocketAddr; 2] = [v4(198, 51, 100, 10, 80), SocketAddr::new(V6_ORIGIN, 80)];
/// Where the echo origin listens (`raw.example`).
pub const ECHO_ADDR: SocketAddr = v4(203, 0, 113, 10, 7);
/// Where the banner origin listens (`banner.example`).
pub const BANNER_ADDR: SocketAddr = v4(192, 0, 2, 20, 25);
/// What the banner origin says first.
pub const BANNER: &str = "220 banner.example ESMTP test\r\n";
/// The names (and addresses) the TLS origin's certificate is valid for.
pub const TLS_NAMES: [&str; 4] = ["tls.example", "v6.example", "192.0.2.10", "2001:db8::10"];

/// A protocol an origin can serve.
#[derive(Clone, Debug)]
pub enum Service {
    /// One HTTP/1.1 request per connection, answered `hello from <name> path=<target>`.
    Http,
    /// The same over TLS (ALPN `http/1.1`), with a leaf for these names from the test CA.
    Tls(Vec<String>),
    /// Echoes until the client's EOF, then closes its write side.
    Echo,
    /// Writes this banner first, then echoes.
    Banner(String),
}

/// The four standard origins, the test CA behind the TLS one, and the runtime serving them.
pub struct Origins {
    runtime: Option<Runtime>,
    ca: certs::Authority,
    ca_dir: tempfile::TempDir,
    tls: Origin,
    http: Origin,
    echo: Origin,
    banner: Origin,
}

impl Origins {
    /// Starts the TLS, HTTP, echo and banner origins inside `netns`.
    pub fn start(netns: &Netns) -> anyhow::Result<Origins> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("test-origins")
            .enable_all()
            .build()?;
        let ca = certs::Authority::generate("Warden test CA")?;
        let ca_dir = tempfile::Builder::new()
            .prefix("warden-test-ca-")
            .tempdir()?;
        std::fs::write(ca_dir.path().join("ca.pem"), ca.cert_pem())?;
        let tls_names = TLS_NAMES.map(str::to_owned).to_vec();
        let start = |name, service, addrs: &[SocketAddr]| {
            start_origin(&runtime, &ca, netns, name, service, addrs)
        };
        let tls = start("tls-origin", Service::Tls(tls_names), &TLS_ADDRS)?;
        let http = start("http-origin", Service::Http, &HTTP_ADDRS)?;
        let echo = start("echo-origin", Service::Echo, &[ECHO_ADDR])?;
        let banner = start(
            "banner-origin",
            Service::Banner(BANNER.into()),
            &[BANNER_ADDR],
        )?;
        Ok(Origins {
            runtime: Some(runtime),
            ca,
            ca_dir,
            tls,
            http,
            echo,
            banner,
        })
    }

    /// Starts one more origin on the same runtime, e.g. on an address added with
    /// [`Netns::add_addr`] or on another port.
    pub fn start_origin(
        &self,
        netns: &Netns,
        name: &str,
        service: Service,
        addrs: &[SocketAddr],
    ) -> anyhow::Result<Origin> {
        let runtime = self.runtime.as_ref().expect("running until dropped");
        start_origin(runtime, &self.ca, netns, name, service, addrs)
    }

    /// The TLS origin (192.0.2.10:443, [2001:db8::10]:443).
    pub fn tls(&self) -> &Origin {
        &self.tls
    }

    /// The plain HTTP origin (198.51.100.10:80, [2001:db8::10]:80).
    pub fn http(&self) -> &Origin {
        &self.http
    }

    /// The echo origin (203.0.113.10:7).
    pub fn echo(&self) -> &Origin {
        &self.echo
    }

    /// The banner origin (192.0.2.20:25).
    pub fn banner(&self) -> &Origin {
        &self.banner
    }

    /// All four standard origins.
    pub fn all(&self) -> [&Origin; 4] {
        [&self.tls, &self.http, &self.echo, &self.banner]
    }

    /// The test CA that signed the TLS origins' certificates.
    pub fn ca(&self) -> &certs::Authority {
        &self.ca
    }

    /// The test CA certificate as a PEM file: pass it to clients explicitly (`curl --cacert`,
    /// `openssl s_client -CAfile`, `ssl.create_default_context(cafile=…)`), never through
    /// `SSL_CERT_FILE` and friends, which this machine sets globally.
    pub fn ca_pem_path(&self) -> PathBuf {
        self.ca_dir.path().join("ca.pem")
    }
}

impl Drop for Origins {
    fn drop(&mut self) {
        // shutdown_background, unlike dropping, is allowed inside an async test.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl std::fmt::Debug for Origins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Origins")
            .field("origins", &self.all())
            .field("ca_pem_path", &self.ca_pem_path())
            .finish_non_exhaustive()
    }
}

fn start_origin(
    runtime: &Runtime,
    ca: &certs::Authority,
    netns: &Netns,
    name: &str,
    service: Service,
    addrs: &[SocketAddr],
) -> anyhow::Result<Origin> {
    let how = match service {
        Service::Http => Serve::Http,
        Service::Tls(names) => Serve::Tls(acceptor(ca, &names)?),
        Service::Echo => Serve::Echo,
        Service::Banner(banner) => Serve::Banner(banner),
    };
    let listeners = netns.enter_thread(|| {
        addrs
            .iter()
            .map(|addr| {
                let listener = std::net::TcpListener::bind(addr)
                    .with_context(|| format!("{name}: cannot listen on {addr}"))?;
                listener.set_nonblocking(true)?;
                Ok(listener)
            })
            .collect::<anyhow::Result<Vec<_>>>()
    })??;
    let origin = Origin::new(name, addrs.to_vec());
    for listener in listeners {
        runtime.spawn(accept_loop(listener, origin.clone(), how.clone()));
    }
    Ok(origin)
}

fn acceptor(ca: &certs::Authority, names: &[String]) -> anyhow::Result<TlsAcceptor> {
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let leaf = ca.issue_leaf(&names)?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key_der));
    // The provider is named explicitly: the process-wide default is ambiguous when another
    // crate in the build enables a second one.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![CertificateDer::from(leaf.cert_der)], key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

async fn accept_loop(listener: std::net::TcpListener, origin: Origin, how: Serve) {
    let local = listener.local_addr().ok();
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(e) => return origin.record_error(local.unwrap_or(origin.addr()), e),
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
        let (origin, how) = (origin.clone(), how.clone());
        tokio::spawn(async move {
            if let Err(e) = serve::serve(stream, peer, &origin, &how).await {
                origin.record_error(peer, e);
            }
        });
    }
}
