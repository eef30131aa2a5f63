//! The authority itself: a P-256 CA made in memory, and the one place certificates are signed.
//!
//! [`Authority::ephemeral`] is what a Warden run uses; [`Authority::generate`] lets the tests
//! name their CA. Both sign the same way, so a leaf the e2e origins serve is built exactly like
//! one the proxy mints.

use std::io::Read;

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
    PublicKeyData, SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};

use crate::Error;
use crate::name::{Name, fit_attribute, leaf_subject};

/// How far back certificates are dated, so a runner whose clock is a little behind the client's
/// still accepts them.
const BACKDATE: Duration = Duration::hours(1);
/// How long after its creation the authority (and so every leaf) stays valid: longer than any
/// CI job, short enough that a leaked certificate is soon worthless.
const LIFETIME: Duration = Duration::hours(24);

/// A certificate authority that lives only in memory: ECDSA P-256, valid from an hour ago for a
/// day, allowed to sign end-entity certificates only. Its private key is never serialised.
pub struct Authority {
    issuer: Issuer<'static, KeyPair>,
    common_name: String,
    cert_der: Vec<u8>,
    cert_pem: String,
    not_before: OffsetDateTime,
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
            .field("common_name", &self.common_name)
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
    /// Generates the authority for one Warden run. Its subject says what it is and where it
    /// came from, so someone who finds it in a trust store or a client's error knows:
    /// `CN=Warden ephemeral CA 2026-11-29T23:20:00Z, O=Warden, OU=host NAME pid N`. The host
    /// and process go in their own attribute because a common name may be 64 characters at
    /// most (RFC 5280 Appendix A.1).
    pub fn ephemeral() -> Result<Authority, Error> {
        let now = OffsetDateTime::now_utc();
        let host = hostname();
        let (common_name, subject) = ephemeral_subject(now, &host, std::process::id());
        Authority::build(common_name, subject, now)
    }

    /// Generates a new authority whose subject is `CN=common_name`.
    pub fn generate(common_name: &str) -> Result<Authority, Error> {
        let mut subject = DistinguishedName::new();
        subject.push(DnType::CommonName, common_name);
        Authority::build(common_name.to_owned(), subject, OffsetDateTime::now_utc())
    }

    fn build(
        common_name: String,
        subject: DistinguishedName,
        now: OffsetDateTime,
    ) -> Result<Authority, Error> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = subject;
        params.serial_number = Some(random_serial()?);
        params.not_before = now - BACKDATE;
        params.not_after = now + LIFETIME;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key)?;
        Ok(Authority {
            common_name,
            cert_der: cert.der().to_vec(),
            cert_pem: cert.pem(),
            not_before: params.not_before,
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

    /// The subject's common name, e.g. `Warden ephemeral CA 2026-11-29T23:20:00Z`: a label for
    /// logs and trust-store entries.
    pub fn common_name(&self) -> &str {
        &self.common_name
    }

    /// When the authority (and every leaf it signed) stops being valid.
    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    /// Mints a server certificate for `names`, each a DNS name, a wildcard (`*.example.com`)
    /// or an IP address (IP addresses become IP SANs, as clients connecting by address check
    /// those). The first name is also the subject's common name. The leaf has its own fresh
    /// key and expires no later than the authority. The proxy uses [`crate::Minter`] instead.
    pub fn issue_leaf(&self, names: &[&str]) -> Result<Leaf, Error> {
        let first = names.first().ok_or(Error::NoNames)?;
        let sans = names
            .iter()
            .map(|n| Name::parse_pattern(n))
            .collect::<Result<_, _>>()?;
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let cert = self.sign_leaf(first, sans, &key)?;
        Ok(Leaf {
            cert_der: cert.der().to_vec(),
            cert_pem: cert.pem(),
            key_der: key.serialize_der(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Signs a server certificate for `key` naming `sans`, with `CN=subject` when that fits,
    /// valid from an hour ago (but not before the authority) until the authority expires.
    pub(crate) fn sign_leaf(
        &self,
        subject: &str,
        sans: Vec<SanType>,
        key: &impl PublicKeyData,
    ) -> Result<Certificate, Error> {
        let now = OffsetDateTime::now_utc();
        let mut params = CertificateParams::default();
        params.distinguished_name = leaf_subject(subject);
        params.subject_alt_names = sans;
        params.serial_number = Some(random_serial()?);
        params.not_before = (now - BACKDATE).max(self.not_before);
        params.not_after = self.not_after;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        Ok(params.signed_by(key, &self.issuer)?)
    }
}

/// The ephemeral authority's common name and subject for a run started at `now` on `host` as
/// process `pid`.
pub(crate) fn ephemeral_subject(
    now: OffsetDateTime,
    host: &str,
    pid: u32,
) -> (String, DistinguishedName) {
    // Written out rather than formatted with `time`, whose formatter can fail; this cannot.
    let stamp = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    );
    let common_name = format!("Warden ephemeral CA {stamp}");
    let mut subject = DistinguishedName::new();
    subject.push(DnType::CommonName, common_name.as_str());
    subject.push(DnType::OrganizationName, "Warden");
    let origin = format!("host {host} pid {pid}");
    subject.push(DnType::OrganizationalUnitName, fit_attribute(&origin));
    (common_name, subject)
}

/// The machine's name as the kernel reports it, or `unknown`: only a label, never worth failing
/// the run for.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// A 16-byte positive serial from the OS's CSPRNG. Serials must be unique per issuer (RFC 5280
/// §4.1.2.2), and every job's authority has a similar name: a client that has cached another
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
