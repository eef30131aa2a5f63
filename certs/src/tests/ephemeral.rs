//! The per-run authority: what its certificate says about itself, and that no two are alike.

use time::OffsetDateTime;
use time::macros::datetime;
use x509_parser::prelude::X509Certificate;

use super::parse;
use crate::Authority;
use crate::ca::ephemeral_subject;

fn attribute(cert: &X509Certificate<'_>, pick: &str) -> String {
    let subject = cert.subject();
    let attr = match pick {
        "CN" => subject.iter_common_name().next(),
        "O" => subject.iter_organization().next(),
        "OU" => subject.iter_organizational_unit().next(),
        _ => None,
    };
    attr.and_then(|a| a.as_str().ok()).unwrap_or("").to_owned()
}

#[test]
fn says_what_it_is_when_and_where_it_was_made() {
    let stamp_now = || {
        let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        now.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let before = stamp_now();
    let ca = Authority::ephemeral().unwrap();
    let after = stamp_now();
    let cert = parse(ca.cert_der());

    let cn = attribute(&cert, "CN");
    assert_eq!(cn, ca.common_name());
    let stamp = cn.strip_prefix("Warden ephemeral CA ").expect(&cn);
    // RFC 3339 timestamps in UTC, all to the second, sort as text.
    assert!(
        stamp.ends_with('Z') && stamp.len() == before.len(),
        "{stamp}"
    );
    assert!(
        *before <= *stamp && *stamp <= *after,
        "{before} {stamp} {after}"
    );
    assert!(cn.len() <= 64, "RFC 5280 ub-common-name: {cn}");

    assert_eq!(attribute(&cert, "O"), "Warden");
    let origin = attribute(&cert, "OU");
    assert!(origin.starts_with("host "), "{origin}");
    assert!(
        origin.ends_with(&format!(" pid {}", std::process::id())),
        "{origin}"
    );
}

#[test]
fn is_a_short_lived_leaf_only_ca() {
    let ca = Authority::ephemeral().unwrap();
    let cert = parse(ca.cert_der());
    let constraints = cert.basic_constraints().unwrap().unwrap();
    assert!(constraints.critical);
    assert!(constraints.value.ca);
    assert_eq!(constraints.value.path_len_constraint, Some(0));
    let usage = cert.key_usage().unwrap().unwrap().value;
    assert!(usage.key_cert_sign() && usage.crl_sign());
    assert!(!usage.digital_signature());
    assert!(cert.name_constraints().unwrap().is_none());

    let now = OffsetDateTime::now_utc().unix_timestamp();
    let not_before = cert.validity().not_before.timestamp();
    let not_after = cert.validity().not_after.timestamp();
    assert!((now - 3600 - 60..=now - 3600 + 60).contains(&not_before));
    assert!((now + 86400 - 60..=now + 86400).contains(&not_after));
    assert_eq!(ca.not_after().unix_timestamp(), not_after);
    let key = cert.public_key();
    assert_eq!(
        key.algorithm.algorithm.to_id_string(),
        "1.2.840.10045.2.1",
        "id-ecPublicKey"
    );
    let curve = key.algorithm.parameters.as_ref().unwrap().as_oid().unwrap();
    assert_eq!(curve.to_id_string(), "1.2.840.10045.3.1.7", "P-256");
}

#[test]
fn two_authorities_share_neither_serial_nor_key() {
    let (a, b) = (
        Authority::ephemeral().unwrap(),
        Authority::ephemeral().unwrap(),
    );
    let (a, b) = (parse(a.cert_der()), parse(b.cert_der()));
    assert_ne!(a.raw_serial(), b.raw_serial());
    assert_eq!(a.raw_serial().len(), 16);
    assert_ne!(a.public_key().raw, b.public_key().raw);
}

#[test]
fn the_origin_attribute_fits_however_long_the_host_name() {
    let now = datetime!(2026-11-29 23:20:00.123 UTC);
    let (cn, subject) = ephemeral_subject(now, &"\u{e9}".repeat(100), 4_000_000);
    assert_eq!(cn, "Warden ephemeral CA 2026-11-29T23:20:00Z");
    let ou = match subject.get(&rcgen::DnType::OrganizationalUnitName) {
        Some(rcgen::DnValue::Utf8String(ou)) => ou.clone(),
        other => panic!("{other:?}"),
    };
    assert!(ou.len() <= 64 && ou.starts_with("host \u{e9}"), "{ou}");
}
