//! Leaves from the minter: what they contain, that they verify, and how often they are signed.

use std::sync::{Arc, Barrier};

use rustls::sign::{CertifiedKey, SingleCertAndKey};
use x509_parser::prelude::{GeneralName, X509Certificate};

use super::{client_config, handshake_with, parse, sans, server_config};
use crate::{Authority, Error, Minter};

fn minter() -> Minter {
    Minter::new(Authority::ephemeral().unwrap()).unwrap()
}

/// A handshake with a server that serves `leaf`, as a client connecting to `server_name`.
fn serve(minter: &Minter, leaf: Arc<CertifiedKey>, server_name: &str) -> Result<(), rustls::Error> {
    let server = server_config(Arc::new(SingleCertAndKey::from(leaf)), &[]);
    handshake_with(client_config(minter.authority(), &[]), server, server_name).map(drop)
}

fn leaf_cert(leaf: &CertifiedKey) -> X509Certificate<'_> {
    parse(leaf.cert[0].as_ref())
}

#[test]
fn leaf_verifies_for_its_name_only() {
    let minter = minter();
    let leaf = minter.leaf("tls.example").unwrap();
    serve(&minter, Arc::clone(&leaf), "tls.example").unwrap();
    for other in ["other.example", "sub.tls.example", "192.0.2.10"] {
        let err = serve(&minter, Arc::clone(&leaf), other).unwrap_err();
        assert!(
            matches!(err, rustls::Error::InvalidCertificate(_)),
            "{other}: {err:?}"
        );
    }
}

#[test]
fn leaf_is_refused_by_a_client_trusting_another_authority() {
    let (minter, other) = (self::minter(), self::minter());
    let leaf = other.leaf("tls.example").unwrap();
    let err = serve(&minter, leaf, "tls.example").unwrap_err();
    assert!(
        matches!(err, rustls::Error::InvalidCertificate(_)),
        "{err:?}"
    );
}

#[test]
fn chain_is_the_leaf_then_the_authority() {
    let minter = minter();
    let leaf = minter.leaf("tls.example").unwrap();
    assert_eq!(leaf.cert.len(), 2);
    assert_eq!(leaf.cert[1].as_ref(), minter.authority().cert_der());
    leaf.keys_match()
        .expect("the shared key is the one certified");
}

#[test]
fn leaf_is_a_server_certificate_for_exactly_one_name() {
    let minter = minter();
    let leaf = minter.leaf("tls.example").unwrap();
    let (cert, ca) = (leaf_cert(&leaf), parse(minter.authority().cert_der()));
    assert_eq!(sans(&cert), [GeneralName::DNSName("tls.example")]);
    assert_eq!(cert.subject().to_string(), "CN=tls.example");
    assert_eq!(cert.issuer(), ca.subject());
    assert!(!cert.is_ca());
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth && !eku.client_auth && !eku.any && eku.other.is_empty());
    let usage = cert.key_usage().unwrap().unwrap().value;
    assert!(usage.digital_signature() && !usage.key_cert_sign());
    assert!(cert.validity().not_before >= ca.validity().not_before);
    assert!(cert.validity().not_after <= ca.validity().not_after);
    assert_eq!(cert.raw_serial().len(), 16);
}

#[test]
fn every_leaf_carries_the_one_shared_key() {
    let minter = minter();
    let (a, b) = (
        minter.leaf("a.example").unwrap(),
        minter.leaf("b.example").unwrap(),
    );
    assert!(Arc::ptr_eq(&a.key, &b.key));
    let (a_cert, b_cert) = (leaf_cert(&a), leaf_cert(&b));
    assert_eq!(a_cert.public_key().raw, b_cert.public_key().raw);
    assert_ne!(a_cert.raw_serial(), b_cert.raw_serial());
    let ca = parse(minter.authority().cert_der());
    assert_ne!(a_cert.public_key().raw, ca.public_key().raw);
}

#[test]
fn ip_literals_get_ip_sans() {
    let minter = minter();
    let v4 = minter.leaf("192.0.2.10").unwrap();
    assert_eq!(
        sans(&leaf_cert(&v4)),
        [GeneralName::IPAddress(&[192, 0, 2, 10])]
    );
    serve(&minter, v4, "192.0.2.10").unwrap();

    let v6 = minter.leaf("2001:db8::10").unwrap();
    let mut octets = [0u8; 16];
    octets[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
    octets[15] = 0x10;
    assert_eq!(sans(&leaf_cert(&v6)), [GeneralName::IPAddress(&octets)]);
    serve(&minter, v6, "2001:db8::10").unwrap();
}

#[test]
fn names_are_compared_as_clients_compare_them() {
    let minter = minter();
    let leaf = minter.leaf("Tls.Example.").unwrap();
    assert_eq!(
        sans(&leaf_cert(&leaf)),
        [GeneralName::DNSName("tls.example")]
    );
    assert!(Arc::ptr_eq(&leaf, &minter.leaf("tls.example").unwrap()));
    assert!(Arc::ptr_eq(
        &minter.leaf("2001:DB8::10").unwrap(),
        &minter.leaf("2001:db8:0::10").unwrap()
    ));
    assert_eq!(minter.signings(), 2);
}

#[test]
fn a_name_too_long_for_a_common_name_is_only_in_the_san() {
    let minter = minter();
    let name = format!("{}.{}.example", "a".repeat(63), "b".repeat(63));
    let leaf = minter.leaf(&name).unwrap();
    let cert = leaf_cert(&leaf);
    assert_eq!(cert.subject().iter().count(), 0);
    let san = cert.subject_alternative_name().unwrap().unwrap();
    assert!(
        san.critical,
        "RFC 5280 §4.2.1.6: empty subject, critical SAN"
    );
    serve(&minter, Arc::clone(&leaf), &name).unwrap();
}

#[test]
fn invalid_names_are_errors_not_certificates() {
    let minter = minter();
    let too_long = format!("{}.example", "a.".repeat(130));
    let bad = [
        "",
        ".",
        "*.example.com",
        "*",
        "bad name.example",
        "bad\u{e9}.example",
        "a..example",
        "-lead.example",
        "trail-.example",
        "192.0.2.256",
        "[2001:db8::1]",
        "fe80::1%eth0",
        "example.com:443",
        "nul\0.example",
        &too_long,
    ];
    for name in bad {
        let err = minter.leaf(name).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidName { name: given, .. } if given == name),
            "{name:?}: {err:?}"
        );
    }
    assert_eq!(minter.signings(), 0);
    assert_eq!(minter.cached(), 0);
}

#[test]
fn concurrent_requests_for_one_host_are_one_signing() {
    const THREADS: usize = 16;
    let minter = minter();
    let start = Barrier::new(THREADS);
    let leaves: Vec<_> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|_| {
                s.spawn(|| {
                    start.wait();
                    minter.leaf("burst.example").unwrap()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    assert_eq!(minter.signings(), 1);
    assert!(leaves.iter().all(|leaf| Arc::ptr_eq(leaf, &leaves[0])));
}

#[test]
fn concurrent_requests_for_different_hosts_each_get_their_own() {
    let minter = minter();
    let names: Vec<String> = (0..16).map(|i| format!("host{i}.example")).collect();
    std::thread::scope(|s| {
        for name in &names {
            let minter = &minter;
            s.spawn(move || {
                let leaf = minter.leaf(name).unwrap();
                assert_eq!(sans(&leaf_cert(&leaf)), [GeneralName::DNSName(name)]);
            });
        }
    });
    assert_eq!(minter.signings(), 16);
    assert_eq!(minter.cached(), 16);
}

#[test]
fn the_cache_is_bounded_and_keeps_what_is_in_use() {
    let minter = Minter::with_capacity(Authority::ephemeral().unwrap(), 8).unwrap();
    let keep = minter.leaf("registry.example").unwrap();
    for i in 0..20 {
        minter.leaf(&format!("once{i}.example")).unwrap();
        // The job keeps talking to its registry.
        assert!(Arc::ptr_eq(
            &keep,
            &minter.leaf("registry.example").unwrap()
        ));
        assert!(minter.cached() <= 8);
    }
    assert_eq!(minter.cached(), 8);
    assert_eq!(minter.signings(), 21);
    minter.leaf("once19.example").unwrap();
    assert_eq!(minter.signings(), 21, "recent names stay cached");
    minter.leaf("once0.example").unwrap();
    assert_eq!(minter.signings(), 22, "an evicted name is signed again");
}

#[test]
fn the_default_cache_holds_4096_leaves() {
    assert_eq!(crate::DEFAULT_CAPACITY, 4096);
}

#[test]
fn minter_can_be_shared_across_tasks() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<Minter>();
    assert_send_sync::<crate::LeafResolver>();
    assert!(!format!("{:?}", minter()).contains("PRIVATE"));
}
