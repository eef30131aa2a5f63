//! Choosing the leaf inside the TLS handshake, from the ClientHello's server name.
//!
//! There are two ways for the proxy to serve a minted leaf:
//! - it already knows the name (it parsed the ClientHello itself to connect upstream first), so
//!   it calls [`Minter::leaf`] and hands rustls the result with
//!   [`rustls::sign::SingleCertAndKey`];
//! - or it lets rustls ask, with a [`LeafResolver`] that mints by SNI. A client that dialled an
//!   IP address sends no SNI (RFC 6066 §3); the resolver then uses its fallback name (the
//!   address the proxy knows the client dialled), or without one refuses the handshake, since
//!   a certificate for a guessed name would only fail at the client anyway.

use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::name::Name;
use crate::{Error, Minter};

/// A [`ResolvesServerCert`] that mints a leaf for each ClientHello's SNI.
#[derive(Debug, Clone)]
pub struct LeafResolver {
    minter: Arc<Minter>,
    fallback: Option<Name>,
}

impl LeafResolver {
    /// Mints by SNI; a ClientHello without SNI fails the handshake.
    pub fn new(minter: Arc<Minter>) -> LeafResolver {
        LeafResolver {
            minter,
            fallback: None,
        }
    }

    /// Mints by SNI, and for `fallback` (typically the IP address the client dialled) when the
    /// ClientHello has none. An invalid `fallback` is [`Error::InvalidName`].
    pub fn with_fallback(minter: Arc<Minter>, fallback: &str) -> Result<LeafResolver, Error> {
        Ok(LeafResolver {
            minter,
            fallback: Some(Name::parse(fallback)?),
        })
    }
}

impl ResolvesServerCert for LeafResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let sni = hello.server_name().map(Name::parse);
        let name = match (sni, &self.fallback) {
            (Some(Ok(name)), _) => name,
            (None, Some(fallback)) => fallback.clone(),
            (None, None) => {
                tracing::debug!("no SNI and no fallback name: no certificate to offer");
                return None;
            }
            // rustls has already checked the SNI with the same rules, so this is not expected.
            (Some(Err(error)), _) => {
                tracing::warn!(%error, "unusable SNI");
                return None;
            }
        };
        match self.minter.leaf_for(&name) {
            Ok(leaf) => Some(leaf),
            Err(error) => {
                let error: &dyn std::error::Error = &error;
                tracing::warn!(tls.sni = %name, error, "cannot mint a leaf certificate");
                None
            }
        }
    }
}
