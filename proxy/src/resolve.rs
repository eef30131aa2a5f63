//! Name resolution for anti-spoofing: does the name a connection claims resolve to the address
//! it actually goes to?
//!
//! A job could send `SNI: allowed.example` to an attacker's IP; the policy only trusts a name when
//! the destination is one of that name's addresses. Answers come from the system resolver
//! (getaddrinfo, as the job's own clients use) and are cached briefly, so a burst of connections
//! costs one lookup. Every answer also feeds a reverse map (address → names), which is how a
//! connection without a usable name (raw IP, or ECH hiding the real SNI) is matched to a name
//! rule. The DNS issue (#5) replaces both with what the job itself resolved.

use crate::lock;
use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

/// How long an answer is reused.
const TTL: Duration = Duration::from_secs(30);
/// Forward answers kept; past this, expired ones are dropped.
const MAX_CACHED: usize = 4096;
/// At most this many allowed names are resolved to find which one an address belongs to.
pub const MAX_NAMES_TO_RESOLVE: usize = 64;

/// An answer and when it was obtained.
type Answer = (Instant, Arc<[IpAddr]>);

/// A small cache in front of the system resolver.
#[derive(Default)]
pub struct Resolver {
    forward: Mutex<HashMap<String, Answer>>,
    /// Address → names that resolved to it, and when; entries older than [`TTL`] are ignored
    /// (a name may have moved) and dropped when the map grows.
    reverse: Mutex<HashMap<IpAddr, Vec<(String, Instant)>>>,
}

impl Resolver {
    /// The addresses `name` resolves to; `None` when the lookup failed (not cached: a resolver
    /// hiccup must not look like spoofing for the next 30 s).
    pub async fn resolve(&self, name: &str) -> Option<Arc<[IpAddr]>> {
        if let Some((at, ips)) = lock(&self.forward).get(name)
            && at.elapsed() < TTL
        {
            return Some(ips.clone());
        }
        let ips: Arc<[IpAddr]> = match tokio::net::lookup_host((name, 0)).await {
            Ok(addrs) => addrs.map(|a| a.ip().to_canonical()).collect(),
            Err(e) => {
                tracing::debug!(name, error = %e, "name does not resolve");
                return None;
            }
        };
        {
            let now = Instant::now();
            let mut reverse = lock(&self.reverse);
            if reverse.len() >= MAX_CACHED {
                reverse.retain(|_, names| {
                    names.retain(|(_, at)| at.elapsed() < TTL);
                    !names.is_empty()
                });
            }
            for ip in ips.iter() {
                let names = reverse.entry(*ip).or_default();
                names.retain(|(n, _)| n != name);
                names.push((name.to_string(), now));
            }
        }
        let mut forward = lock(&self.forward);
        // Bounded: names come from the job (any SNI under a wildcard rule).
        if forward.len() >= MAX_CACHED {
            forward.retain(|_, (at, _)| at.elapsed() < TTL);
        }
        forward.insert(name.to_string(), (Instant::now(), ips.clone()));
        Some(ips)
    }

    /// Whether `name` resolves to `ip`; `None` when it could not be resolved.
    pub async fn resolves_to(&self, name: &str, ip: IpAddr) -> Option<bool> {
        let ip = ip.to_canonical();
        Some(self.resolve(name).await?.contains(&ip))
    }

    /// Which of `candidates` resolve to `ip`. Names seen resolving before are found at once;
    /// otherwise up to [`MAX_NAMES_TO_RESOLVE`] candidates are resolved (cached).
    pub async fn names_for<'a>(
        &self,
        ip: IpAddr,
        candidates: impl Iterator<Item = &'a str>,
    ) -> Vec<String> {
        let ip = ip.to_canonical();
        let candidates: Vec<&str> = candidates.collect();
        let known = lock(&self.reverse).get(&ip).cloned().unwrap_or_default();
        let found: Vec<String> = known
            .into_iter()
            .filter(|(n, at)| at.elapsed() < TTL && candidates.contains(&n.as_str()))
            .map(|(n, _)| n)
            .collect();
        if !found.is_empty() || candidates.len() > MAX_NAMES_TO_RESOLVE {
            return found;
        }
        // Cached names answer at once; the rest are resolved one after another, which is rare
        // (a raw-IP or ECH connection) and bounded by MAX_NAMES_TO_RESOLVE.
        let mut names = Vec::new();
        for name in candidates {
            if self.resolves_to(name, ip).await == Some(true) {
                names.push(name.to_string());
            }
        }
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn localhost_resolves_to_loopback_and_is_remembered() {
        let r = Resolver::default();
        let on = |ip: &str| r.resolves_to("localhost", ip.parse().unwrap());
        assert_eq!(on("127.0.0.1").await, Some(true));
        assert_eq!(on("192.0.2.1").await, Some(false));
        let names = r
            .names_for(
                "127.0.0.1".parse().unwrap(),
                ["nope.invalid", "localhost"].into_iter(),
            )
            .await;
        assert_eq!(names, ["localhost"]);
    }

    #[tokio::test]
    async fn unresolvable_name_resolves_to_nothing() {
        let r = Resolver::default();
        assert!(r.resolve("does-not-exist.invalid").await.is_none());
        assert!(
            r.resolves_to("does-not-exist.invalid", "192.0.2.1".parse().unwrap())
                .await
                .is_none()
        );
    }
}
