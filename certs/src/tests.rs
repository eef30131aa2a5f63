//! Certificates are checked the way clients will check them: a real rustls client (webpki
//! underneath), trusting only the authority, must accept leaves for the names they were issued
//! for and reject everything else, in a full handshake run in memory; the certificate fields a
//! client looks at are read back with x509-parser.

mod authority;
mod cache;
mod ephemeral;
mod minter;
mod resolver;

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::server::ResolvesServerCert;
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection};
use x509_parser::prelude::{GeneralName, X509Certificate, parse_x509_certificate};

use crate::{Authority, Leaf};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client that trusts `ca` alone and offers `alpn`.
fn client_config(ca: &Authority, alpn: &[&str]) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(ca.cert_der().to_vec()))
        .expect("CA certificate is accepted as a trust anchor");
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    Arc::new(config)
}

/// A server that picks its certificate with `resolver` and speaks only `alpn`, as the proxy
/// builds one per intercepted connection.
fn server_config(resolver: Arc<dyn ResolvesServerCert>, alpn: &[&str]) -> Arc<ServerConfig> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    Arc::new(config)
}

fn leaf_server_config(leaf: &Leaf) -> Arc<ServerConfig> {
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key_der.clone()));
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![CertificateDer::from(leaf.cert_der.clone())], key)
        .expect("leaf key matches leaf certificate");
    Arc::new(config)
}

/// Runs a TLS handshake for a leaf from [`Authority::issue_leaf`], returning the client's
/// verdict.
fn handshake(ca: &Authority, leaf: &Leaf, server_name: &str) -> Result<(), rustls::Error> {
    let client = client_config(ca, &[]);
    handshake_with(client, leaf_server_config(leaf), server_name).map(drop)
}

/// Runs a TLS handshake entirely in memory, as a client connecting to `server_name`.
fn handshake_with(
    client: Arc<ClientConfig>,
    server: Arc<ServerConfig>,
    server_name: &str,
) -> Result<(ClientConnection, ServerConnection), rustls::Error> {
    let name = ServerName::try_from(server_name.to_owned()).unwrap();
    let mut client = ClientConnection::new(client, name).unwrap();
    let mut server = ServerConnection::new(server).unwrap();
    // A TLS 1.3 handshake is two flights each way; more rounds than this means a stall.
    for _ in 0..10 {
        transfer(&mut client, &mut server)?;
        transfer(&mut server, &mut client)?;
        if !client.is_handshaking() && !server.is_handshaking() {
            return Ok((client, server));
        }
    }
    panic!("in-memory handshake did not finish");
}

fn transfer(
    from: &mut impl std::ops::DerefMut<Target = rustls::ConnectionCommon<impl Sized>>,
    to: &mut impl std::ops::DerefMut<Target = rustls::ConnectionCommon<impl Sized>>,
) -> Result<(), rustls::Error> {
    let mut wire = Vec::new();
    while from.wants_write() {
        from.write_tls(&mut wire).unwrap();
    }
    let mut rest = &wire[..];
    while !rest.is_empty() {
        to.read_tls(&mut rest).unwrap();
        to.process_new_packets()?;
    }
    Ok(())
}

fn parse(der: &[u8]) -> X509Certificate<'_> {
    parse_x509_certificate(der).expect("valid DER").1
}

/// The subjectAltName entries of a certificate.
fn sans<'a>(cert: &'a X509Certificate<'a>) -> Vec<GeneralName<'a>> {
    cert.subject_alternative_name()
        .expect("well-formed extensions")
        .map(|san| san.value.general_names.clone())
        .unwrap_or_default()
}
