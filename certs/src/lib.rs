//! Ephemeral certificate authority.
//!
//! Warden reads full HTTPS URLs by terminating TLS with a certificate it mints on the fly. The
//! key behind those certificates must never outlive the job, so the authority is generated in
//! memory when the job starts, is valid for a day at most, may only sign leaves (path length 0),
//! and is thrown away when the process exits; only its public certificate is written out for
//! clients to trust. The end-to-end tests use the same type as their test CA, so what the tests
//! trust is exactly what the proxy mints.
//!
//! ```
//! let ca = certs::Authority::generate("Warden job CA").unwrap();
//! let leaf = ca.issue_leaf(&["example.com", "192.0.2.1"]).unwrap();
//! assert!(leaf.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
//! assert!(ca.cert_pem().contains("BEGIN CERTIFICATE"));
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::io::Read;
use std::net::IpAddr;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};

#[cfg(test)]
mod tests;

/// How far back certificates are dated, so a runner whose clock is a little behind the client's
/// still accepts them.
const BACKDATE: Duration = Duration::hours(1);
/// How long the authority (and so every leaf) stays valid: longer than any CI job.
const LIFETIME: Duration = Duration::hours(24);

/// What went wrong while making a certificate. Every variant is an internal failure of Warden
/// except [`Error::InvalidName`] and [`Error::NoNames`], which the caller caused.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The crypto or encoding layer refused to build a key or certificate.
    #[error("certificate generation failed")]
    Generate(#[from] rcgen::Error),
    /// A leaf name is neither an IP address nor a valid DNS name.
    #[error("invalid certificate name {name:?}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// Why rcgen rejected it.
        #[source]
        source: rcgen::Error,
    },
    /// A leaf was requested without any name to put in it.
    #[error("a leaf certificate needs at least one name")]
    NoNames,
    /// The operating system's random source could not be read for a serial number.
    #[error("cannot read random bytes for a certificate serial number")]
    Random(#[source] std::io::Error),
}

/// A certificate authority that lives only in memory: ECDSA P-256, valid from an hour ago for a
/// day, allowed to sign end-entity certificates only.
pub struct Authority {
    issuer: Issuer<'static, KeyPair>,
    cert_der: Vec<u8>,
    cert_pem: String,
    not_after: OffsetDateTime,
}

/// An end-entity certificate minted by an [`Authority`], with its own fresh private key.
#[derive(Clone)]
pub struct Leaf {
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key, PKCS#8 DER.
    pub key_der: Vec<u8>,
    /// The private key, PKCS#8 PEM.
    pub key_pem: String,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority")
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Leaf {
    // Never print the private key, even in a test failure.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leaf")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

impl Authority {
    /// Generates a new authority whose subject is `common_name`.
    pub fn generate(common_name: &str) -> Result<Authority, Error> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let now = OffsetDateTime::now_utc();
        let mut params = CertificateParams::default();
        params.distinguished_name = name(common_name);
        params.serial_number = Some(random_serial()?);
        params.not_before = now - BACKDATE;
        params.not_after = now + LIFETIME;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key)?;
        Ok(Authority {
            cert_der: cert.der().to_vec(),
            cert_pem: cert.pem(),
            not_after: params.not_after,
            issuer: Issuer::new(params, key),
        })
    }

    /// The authority's certificate in PEM, the form clients are told to trust.
    pub fn cert_pem(&self) -> String {
        self.cert_pem.clone()
    }

    /// The authority's certificate in DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// Mints a server certificate for `names`, each a DNS name or an IP address (IP addresses
    /// become IP SANs, as clients connecting by address check those). The first name is also the
    /// subject's common name. The leaf expires no later than the authority.
    pub fn issue_leaf(&self, names: &[&str]) -> Result<Leaf, Error> {
        let first = names.first().ok_or(Error::NoNames)?;
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let now = OffsetDateTime::now_utc();
        let mut params = CertificateParams::default();
        params.distinguished_name = name(first);
        params.subject_alt_names = names.iter().map(|n| san(n)).collect::<Result<_, _>>()?;
        params.serial_number = Some(random_serial()?);
        params.not_before = now - BACKDATE;
        params.not_after = (now + LIFETIME).min(self.not_after);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Leaf {
            cert_der: cert.der().to_vec(),
            cert_pem: cert.pem(),
            key_der: key.serialize_der(),
            key_pem: key.serialize_pem(),
        })
    }
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}

fn san(name: &str) -> Result<SanType, Error> {
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    let dns = name.try_into().map_err(|source| Error::InvalidName {
        name: name.to_owned(),
        source,
    })?;
    Ok(SanType::DnsName(dns))
}

/// A 16-byte positive serial from the OS's CSPRNG. Serials must be unique per issuer (RFC 5280
/// §4.1.2.2), and every job's authority has the same name: a client that has cached another
/// job's certificate with the same issuer and serial refuses the new one (Firefox's
/// `SEC_ERROR_REUSED_ISSUER_AND_SERIAL`), so serials are random rather than counted.
fn random_serial() -> Result<SerialNumber, Error> {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(Error::Random)?;
    // Positive (top bit clear) and a fixed length (non-zero first byte).
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    Ok(SerialNumber::from_slice(&bytes))
}
