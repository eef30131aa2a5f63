//! Leaf certificates for the proxy, one per server name, made as cheaply as possible.
//!
//! Every intercepted connection needs a certificate for the name the client asked for, and a CI
//! job opens many connections to few hosts, often all at once (a package manager fetching in
//! parallel). So:
//! - every leaf carries the same key, generated once: minting is one ECDSA signature (about
//!   100 µs) and no key generation, and the key is loaded into rustls once;
//! - each name is signed once: concurrent requests for a name wait for the first one's result
//!   (single flight) and later ones hit a cache;
//! - the cache is bounded ([`DEFAULT_CAPACITY`], least recently used evicted; see `cache.rs`).
//!
//! Cached leaves never need refreshing: each is valid until its authority expires, and nothing
//! is valid after that.
//!
//! The code is synchronous on purpose: it runs inside rustls' synchronous certificate callback,
//! and a waiter blocks for at most one signature. [`Minter`] is `Send + Sync` and meant to be
//! shared in an `Arc` by every connection task.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rcgen::{KeyPair, PKCS_ECDSA_P256_SHA256, PublicKeyData, SignatureAlgorithm};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::{CertifiedKey, SigningKey};

use crate::cache::Lru;
use crate::name::Name;
use crate::{Authority, Error};

/// How many leaves a [`Minter`] keeps by default: more distinct hosts than a CI job talks to,
/// and about 4 MB of certificates.
pub const DEFAULT_CAPACITY: usize = 4096;

/// Mints and caches leaf certificates for the proxy, all signed by one [`Authority`] and all
/// carrying one shared key.
pub struct Minter {
    authority: Authority,
    ca_cert: CertificateDer<'static>,
    /// The shared leaf key as rustls signs with it.
    signing_key: Arc<dyn SigningKey>,
    /// Its public half, as rcgen writes it into certificates. The private half is kept only by
    /// rustls.
    public_key: LeafPublicKey,
    cache: Mutex<Lru<Name, Arc<Slot>>>,
    signings: AtomicU64,
}

/// One name's leaf: empty until signed. Whoever holds the lock signs; the others wait on it and
/// then find the leaf. A failed signing leaves it empty, so the next caller tries again.
#[derive(Default)]
struct Slot(Mutex<Option<Arc<CertifiedKey>>>);

struct LeafPublicKey(Vec<u8>);

impl PublicKeyData for LeafPublicKey {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &PKCS_ECDSA_P256_SHA256
    }
}

impl std::fmt::Debug for Minter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Minter")
            .field("authority", &self.authority)
            .field("cached", &self.cached())
            .field("signings", &self.signings())
            .finish_non_exhaustive()
    }
}

impl Minter {
    /// A minter for `authority` keeping up to [`DEFAULT_CAPACITY`] leaves.
    pub fn new(authority: Authority) -> Result<Minter, Error> {
        Minter::with_capacity(authority, DEFAULT_CAPACITY)
    }

    /// A minter for `authority` keeping up to `capacity` leaves (at least one).
    pub fn with_capacity(authority: Authority, capacity: usize) -> Result<Minter, Error> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let pkcs8 = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let signing_key =
            rustls::crypto::ring::sign::any_ecdsa_type(&pkcs8).map_err(Error::SigningKey)?;
        Ok(Minter {
            ca_cert: CertificateDer::from(authority.cert_der().to_vec()),
            authority,
            signing_key,
            public_key: LeafPublicKey(key.public_key_raw().to_vec()),
            cache: Mutex::new(Lru::new(capacity)),
            signings: AtomicU64::new(0),
        })
    }

    /// The authority the leaves chain to, whose certificate clients must trust.
    pub fn authority(&self) -> &Authority {
        &self.authority
    }

    /// The certificate chain `[leaf, CA]` and key for `server_name` (a DNS host name from SNI,
    /// or an IP literal for a client that dialled an address), from the cache or freshly signed.
    /// The leaf names exactly that host (lowercased, without a trailing dot) and serves for
    /// TLS server authentication only. An invalid name is [`Error::InvalidName`]; wildcards are
    /// invalid.
    pub fn leaf(&self, server_name: &str) -> Result<Arc<CertifiedKey>, Error> {
        self.leaf_for(&Name::parse(server_name)?)
    }

    pub(crate) fn leaf_for(&self, name: &Name) -> Result<Arc<CertifiedKey>, Error> {
        let slot = self.slot(name);
        let mut leaf = lock(&slot.0);
        if let Some(leaf) = &*leaf {
            return Ok(Arc::clone(leaf));
        }
        let minted = Arc::new(self.mint(name)?);
        *leaf = Some(Arc::clone(&minted));
        Ok(minted)
    }

    /// How many certificates this minter has signed: a measure of cache effectiveness, and how
    /// tests check that requests were merged.
    pub fn signings(&self) -> u64 {
        self.signings.load(Ordering::Relaxed)
    }

    /// How many names have a cached (or in-flight) leaf.
    pub fn cached(&self) -> usize {
        lock(&self.cache).len()
    }

    /// The name's slot, made if new. The cache lock is held only for this lookup, never while
    /// signing, so one slow name does not hold up others.
    fn slot(&self, name: &Name) -> Arc<Slot> {
        let mut cache = lock(&self.cache);
        if let Some(slot) = cache.get(name) {
            return Arc::clone(slot);
        }
        let slot = Arc::new(Slot::default());
        cache.insert(name.clone(), Arc::clone(&slot));
        slot
    }

    fn mint(&self, name: &Name) -> Result<CertifiedKey, Error> {
        let subject = name.to_string();
        let cert = self
            .authority
            .sign_leaf(&subject, vec![name.san()?], &self.public_key)?;
        self.signings.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(tls.sni = %subject, "minted a leaf certificate");
        let chain = vec![cert.der().clone(), self.ca_cert.clone()];
        Ok(CertifiedKey::new(chain, Arc::clone(&self.signing_key)))
    }
}

/// Locks `mutex` even if a thread panicked holding it: the data (a cache, a leaf slot) is
/// consistent between statements, and serving on beats failing every later handshake.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
