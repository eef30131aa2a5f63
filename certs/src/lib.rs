//! Ephemeral certificate authority.
//!
//! Warden reads full HTTPS URLs by terminating TLS with a certificate it mints on the fly. The
//! key behind those certificates must never outlive the job, so the [`Authority`] is generated in
//! memory when the job starts, is valid for a day at most, may only sign leaves (path length 0),
//! and is thrown away when the process exits; only its public certificate is written out for
//! clients to trust. The end-to-end tests use the same type as their test CA, so what the tests
//! trust is exactly what the proxy mints.
//!
//! The proxy does not call the authority directly: it asks a [`Minter`] for a leaf per server
//! name. The minter signs each name once with one shared key, merges concurrent requests for a
//! name, and keeps a bounded cache, so a burst of connections to one host costs one signature.
//!
//! ```
//! let ca = certs::Authority::ephemeral().unwrap();
//! assert!(ca.common_name().starts_with("Warden ephemeral CA "));
//! let minter = certs::Minter::new(ca).unwrap();
//! let leaf = minter.leaf("example.com").unwrap();
//! assert_eq!(leaf.cert.len(), 2); // [leaf, CA]
//! assert!(minter.authority().cert_pem().contains("BEGIN CERTIFICATE"));
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod ca;
mod cache;
mod minter;
mod name;
mod resolver;
// The trust-store installer (issue #6 item 2) lives in `trust/`.
pub mod trust;

#[cfg(test)]
mod tests;

pub use ca::{Authority, Leaf};
pub use minter::{DEFAULT_CAPACITY, Minter};
pub use resolver::LeafResolver;

/// What went wrong while making a certificate. Every variant is an internal failure of Warden
/// except [`Error::InvalidName`] and [`Error::NoNames`], which the caller caused (and, through
/// the proxy, the client that sent the name).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The crypto or encoding layer refused to build a key or certificate.
    #[error("certificate generation failed")]
    Generate(#[from] rcgen::Error),
    /// A name is neither an IP address nor a valid DNS host name.
    #[error("invalid certificate name {name:?}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// Why it was rejected.
        #[source]
        source: rustls::pki_types::InvalidDnsNameError,
    },
    /// A leaf was requested without any name to put in it.
    #[error("a leaf certificate needs at least one name")]
    NoNames,
    /// The operating system's random source could not be read for a serial number.
    #[error("cannot read random bytes for a certificate serial number")]
    Random(#[source] std::io::Error),
    /// rustls would not load the leaf key rcgen generated.
    #[error("cannot load the leaf signing key")]
    SigningKey(#[source] rustls::Error),
}
