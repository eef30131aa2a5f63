//! The authority is checked the way clients will check it: a real rustls client (webpki
//! underneath) must accept its leaves for the names they were issued for and reject everything
//! else, and the certificate fields a client looks at are read back with x509-parser.

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection};
use x509_parser::prelude::{GeneralName, X509Certificate, parse_x509_certificate};

use super::*;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn client_config(ca: &Authority) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(ca.cert_der().to_vec()))
        .expect("CA certificate is accepted as a trust anchor");
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

fn server_config(leaf: &Leaf) -> Arc<ServerConfig> {
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key_der.clone()));
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![CertificateDer::from(leaf.cert_der.clone())], key)
        .expect("leaf key matches leaf certificate");
    Arc::new(config)
}

/// Runs a TLS handshake entirely in memory and returns the client's verdict.
fn handshake(ca: &Authority, leaf: &Leaf, server_name: &str) -> Result<(), rustls::Error> {
    let name = ServerName::try_from(server_name.to_owned()).unwrap();
    let mut client = ClientConnection::new(client_config(ca), name).unwrap();
    let mut server = ServerConnection::new(server_config(leaf)).unwrap();
    // A TLS 1.3 handshake is two flights each way; more rounds than this means a stall.
    for _ in 0..10 {
        transfer(&mut client, &mut server)?;
        transfer(&mut server, &mut client)?;
        if !client.is_handshaking() && !server.is_handshaking() {
            return Ok(());
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

#[test]
fn leaf_verifies_for_each_dns_name() {
    let ca = Authority::generate("Warden test CA").unwrap();
    let leaf = ca.issue_leaf(&["tls.example", "v6.example"]).unwrap();
    handshake(&ca, &leaf, "tls.example").unwrap();
    handshake(&ca, &leaf, "v6.example").unwrap();
}

#[test]
fn leaf_verifies_for_ip_addresses() {
    let ca = Authority::generate("Warden test CA").unwrap();
    let leaf = ca
        .issue_leaf(&["tls.example", "192.0.2.10", "2001:db8::10"])
        .unwrap();
    handshake(&ca, &leaf, "192.0.2.10").unwrap();
    handshake(&ca, &leaf, "2001:db8::10").unwrap();
    let cert = parse(&leaf.cert_der);
    let san = cert.subject_alternative_name().unwrap().unwrap();
    let names = &san.value.general_names;
    assert!(names.contains(&GeneralName::IPAddress(&[192, 0, 2, 10])));
    assert!(names.contains(&GeneralName::DNSName("tls.example")));
    // An IP is not also written as a DNS name (webpki would reject the certificate).
    assert!(!names.contains(&GeneralName::DNSName("192.0.2.10")));
}

#[test]
fn leaf_is_rejected_for_other_names() {
    let ca = Authority::generate("Warden test CA").unwrap();
    let leaf = ca.issue_leaf(&["tls.example", "192.0.2.10"]).unwrap();
    for other in ["http.example", "192.0.2.11"] {
        let err = handshake(&ca, &leaf, other).unwrap_err();
        assert!(
            matches!(err, rustls::Error::InvalidCertificate(_)),
            "{other}: {err:?}"
        );
    }
}

#[test]
fn leaf_from_another_authority_is_rejected() {
    use rustls::CertificateError::{BadSignature, UnknownIssuer};
    let trusted = Authority::generate("Warden test CA").unwrap();
    // Every job's authority has the same name, so the other one must fail on its signature.
    for other_name in ["Warden test CA", "Someone else's CA"] {
        let other = Authority::generate(other_name).unwrap();
        let leaf = other.issue_leaf(&["tls.example"]).unwrap();
        let err = handshake(&trusted, &leaf, "tls.example").unwrap_err();
        assert!(
            matches!(
                err,
                rustls::Error::InvalidCertificate(BadSignature | UnknownIssuer)
            ),
            "{other_name}: {err:?}"
        );
    }
}

#[test]
fn authority_is_a_short_lived_leaf_only_ca() {
    let ca = Authority::generate("Warden job CA").unwrap();
    let cert = parse(ca.cert_der());
    let constraints = cert.basic_constraints().unwrap().unwrap().value;
    assert!(constraints.ca);
    assert_eq!(constraints.path_len_constraint, Some(0));
    let usage = cert.key_usage().unwrap().unwrap().value;
    assert!(usage.key_cert_sign() && usage.crl_sign());
    assert!(!usage.digital_signature());

    let now = OffsetDateTime::now_utc().unix_timestamp();
    let not_before = cert.validity().not_before.timestamp();
    let not_after = cert.validity().not_after.timestamp();
    assert!((now - 3600 - 60..=now - 3600 + 60).contains(&not_before));
    assert!((now + 86400 - 60..=now + 86400 + 60).contains(&not_after));
    assert_eq!(cert.subject().to_string(), "CN=Warden job CA");
    assert!(ca.cert_pem().starts_with("-----BEGIN CERTIFICATE-----\n"));
}

#[test]
fn leaf_stays_within_the_authority_validity() {
    let ca = Authority::generate("Warden test CA").unwrap();
    let leaf = ca.issue_leaf(&["tls.example"]).unwrap();
    let (ca_cert, leaf_cert) = (parse(ca.cert_der()), parse(&leaf.cert_der));
    assert!(leaf_cert.validity().not_after <= ca_cert.validity().not_after);
    assert!(!leaf_cert.is_ca());
    assert_eq!(leaf_cert.issuer(), ca_cert.subject());
    assert_eq!(leaf_cert.subject().to_string(), "CN=tls.example");
}

#[test]
fn serials_are_random_and_positive() {
    let ca = Authority::generate("Warden test CA").unwrap();
    let a = ca.issue_leaf(&["tls.example"]).unwrap();
    let b = ca.issue_leaf(&["tls.example"]).unwrap();
    let serials = [ca.cert_der(), &a.cert_der, &b.cert_der].map(|der| parse(der).raw_serial());
    assert_ne!(serials[0], serials[1]);
    assert_ne!(serials[1], serials[2]);
    for serial in serials {
        assert_eq!(serial.len(), 16);
        assert!(serial[0] & 0x80 == 0);
    }
}

#[test]
fn keys_are_pkcs8() {
    let ca = Authority::generate("Warden test CA").unwrap();
    let leaf = ca.issue_leaf(&["tls.example"]).unwrap();
    assert!(leaf.key_pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
    assert!(!format!("{leaf:?}").contains("PRIVATE KEY"));
    KeyPair::try_from(leaf.key_der.as_slice()).expect("PKCS#8 DER parses");
}

#[test]
fn bad_leaf_requests_are_errors() {
    let ca = Authority::generate("Warden test CA").unwrap();
    assert!(matches!(ca.issue_leaf(&[]), Err(Error::NoNames)));
    let err = ca
        .issue_leaf(&["tls.example", "bad\u{e9}name"])
        .unwrap_err();
    assert!(matches!(err, Error::InvalidName { ref name, .. } if name == "bad\u{e9}name"));
    assert_eq!(
        err.to_string(),
        "invalid certificate name \"bad\u{e9}name\""
    );
}

#[test]
fn authority_can_be_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Authority>();
    assert_send_sync::<Leaf>();
}
