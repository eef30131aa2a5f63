//! Leaves chosen inside the handshake, as the proxy's TLS acceptor will choose them.

use std::sync::Arc;

use x509_parser::prelude::GeneralName;

use super::{client_config, handshake_with, parse, sans, server_config};
use crate::{Authority, Error, LeafResolver, Minter};

fn minter() -> Arc<Minter> {
    Arc::new(Minter::new(Authority::ephemeral().unwrap()).unwrap())
}

/// The name in the certificate the client was shown, after a handshake as a client connecting
/// to `server_name` through `resolver`, offering h2 and HTTP/1.1 to a server that speaks
/// `server_alpn`; and the protocol agreed.
fn connect(
    minter: &Minter,
    resolver: LeafResolver,
    server_alpn: &str,
    server_name: &str,
) -> Result<(String, Option<Vec<u8>>), rustls::Error> {
    let client = client_config(minter.authority(), &["h2", "http/1.1"]);
    let server = server_config(Arc::new(resolver), &[server_alpn]);
    let (client, _server) = handshake_with(client, server, server_name)?;
    let chain = client.peer_certificates().expect("server sent a chain");
    let names = sans(&parse(chain[0].as_ref()))
        .into_iter()
        .map(|n| match n {
            GeneralName::DNSName(dns) => dns.to_owned(),
            GeneralName::IPAddress(ip) => format!("{ip:?}"),
            other => format!("{other:?}"),
        })
        .collect::<Vec<_>>()
        .join(",");
    Ok((names, client.alpn_protocol().map(<[u8]>::to_vec)))
}

#[test]
fn mints_for_the_sni_and_speaks_the_chosen_protocol() {
    let minter = minter();
    let resolver = LeafResolver::new(Arc::clone(&minter));
    let (name, alpn) = connect(&minter, resolver.clone(), "h2", "tls.example").unwrap();
    assert_eq!(
        (name.as_str(), alpn.as_deref()),
        ("tls.example", Some(&b"h2"[..]))
    );
    let (name, alpn) = connect(&minter, resolver, "http/1.1", "Other.Example").unwrap();
    assert_eq!(
        (name.as_str(), alpn.as_deref()),
        ("other.example", Some(&b"http/1.1"[..]))
    );
    assert_eq!(minter.signings(), 2);
}

#[test]
fn a_client_hello_without_sni_fails_without_a_fallback() {
    let minter = minter();
    let resolver = LeafResolver::new(Arc::clone(&minter));
    // rustls sends no SNI when connecting to an address.
    connect(&minter, resolver, "h2", "192.0.2.10").unwrap_err();
    assert_eq!(minter.signings(), 0);
}

#[test]
fn a_client_hello_without_sni_gets_the_fallback_name() {
    let minter = minter();
    let resolver = LeafResolver::with_fallback(Arc::clone(&minter), "192.0.2.10").unwrap();
    let (name, _) = connect(&minter, resolver, "h2", "192.0.2.10").unwrap();
    assert_eq!(name, "[192, 0, 2, 10]");
}

#[test]
fn the_sni_wins_over_the_fallback() {
    let minter = minter();
    let resolver = LeafResolver::with_fallback(Arc::clone(&minter), "192.0.2.10").unwrap();
    let (name, _) = connect(&minter, resolver, "h2", "tls.example").unwrap();
    assert_eq!(name, "tls.example");
}

#[test]
fn an_invalid_fallback_is_an_error() {
    let err = LeafResolver::with_fallback(minter(), "not a name").unwrap_err();
    assert!(matches!(err, Error::InvalidName { .. }), "{err:?}");
}
