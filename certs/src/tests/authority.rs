//! The authority as the e2e tests use it: leaves with their own keys, for several names.

use rcgen::KeyPair;
use time::OffsetDateTime;
use x509_parser::prelude::GeneralName;

use super::{handshake, parse, sans};
use crate::{Authority, Error, Leaf};

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
    for bad in ["*.192.0.2.1", "a.*.example", "*", "bad name.example"] {
        let err = ca.issue_leaf(&[bad]).unwrap_err();
        assert!(matches!(err, Error::InvalidName { .. }), "{bad}: {err:?}");
    }
}

#[test]
fn test_origins_may_ask_for_a_wildcard() {
    let ca = Authority::generate("Warden test CA").unwrap();
    let leaf = ca.issue_leaf(&["*.Tls.Example"]).unwrap();
    handshake(&ca, &leaf, "a.tls.example").unwrap();
    let err = handshake(&ca, &leaf, "a.b.tls.example").unwrap_err();
    assert!(matches!(err, rustls::Error::InvalidCertificate(_)));
    assert_eq!(
        sans(&parse(&leaf.cert_der)),
        [GeneralName::DNSName("*.tls.example")]
    );
}

#[test]
fn authority_can_be_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Authority>();
    assert_send_sync::<Leaf>();
}
