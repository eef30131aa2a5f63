//! What the job resolved: address → names, from the answers Warden's resolver gave it.
//!
//! A connection to a bare address is recorded with the name it came from, and the anti-spoofing
//! check asks "did *this job* get this address for this name?" instead of resolving the name a
//! second time (a CDN that rotates its addresses between the two lookups would otherwise look like
//! spoofing). Answers are kept for the whole job, not for their TTL: clients cache addresses far
//! longer than the TTL says (the JVM, connection pools), and an address the job was once given for
//! a name is still that name's address as far as the job is concerned. The job's process tree is
//! the hooked cgroup: one [`Names`] per session.
//!
//! The machine's hosts file counts as an answer too (`getaddrinfo` reads it before DNS), read once
//! at start.

use std::{
    collections::{HashMap, HashSet},
    net::IpAddr,
    sync::Mutex,
};

/// Addresses remembered; past this the oldest half is forgotten (names come from the job, so
/// memory must be bounded).
const MAX_ADDRESSES: usize = 65_536;
/// Names kept per address (a shared CDN address answers for many names; the newest are kept).
const MAX_NAMES_PER_ADDRESS: usize = 16;

/// Address → names the job resolved to it. See the module documentation.
#[derive(Default)]
pub struct Names {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Names per address, oldest first, with the sequence number of their last sighting.
    by_ip: HashMap<IpAddr, Vec<(String, u64)>>,
    /// Addresses per name.
    by_name: HashMap<String, HashSet<IpAddr>>,
    seq: u64,
}

impl Names {
    /// Ties every name of `chain` (the name asked, then its CNAME targets) to every address of
    /// the answer.
    pub fn remember(&self, chain: &[String], ips: &[IpAddr]) {
        if chain.is_empty() || ips.is_empty() {
            return;
        }
        let mut inner = self.lock();
        if inner.by_ip.len() >= MAX_ADDRESSES {
            inner.forget_oldest();
        }
        inner.seq += 1;
        let seq = inner.seq;
        for ip in ips {
            let ip = ip.to_canonical();
            let names = inner.by_ip.entry(ip).or_default();
            for name in chain {
                names.retain(|(n, _)| n != name);
                names.push((name.clone(), seq));
            }
            if names.len() > MAX_NAMES_PER_ADDRESS {
                let extra = names.len() - MAX_NAMES_PER_ADDRESS;
                names.drain(..extra);
            }
            for name in chain {
                inner.by_name.entry(name.clone()).or_default().insert(ip);
            }
        }
    }

    /// Reads a hosts file (`/etc/hosts` syntax) as answers.
    pub fn load_hosts(&self, text: &str) {
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            let mut fields = line.split_whitespace();
            let Some(Ok(ip)) = fields.next().map(str::parse::<IpAddr>) else {
                continue;
            };
            if ip.is_loopback() || ip.is_unspecified() {
                continue;
            }
            let names: Vec<String> = fields.map(normalize).collect();
            self.remember(&names, &[ip]);
        }
    }

    /// The names the job resolved to `ip`, most recent first.
    pub fn names_for(&self, ip: IpAddr) -> Vec<String> {
        let inner = self.lock();
        inner
            .by_ip
            .get(&ip.to_canonical())
            .map(|names| names.iter().rev().map(|(n, _)| n.clone()).collect())
            .unwrap_or_default()
    }

    /// Whether any answer gave the job `ip`.
    pub fn knows(&self, ip: IpAddr) -> bool {
        self.lock().by_ip.contains_key(&ip.to_canonical())
    }

    /// Whether the job was given `ip` for `name`; `None` when the job never resolved `name`.
    pub fn resolved_to(&self, name: &str, ip: IpAddr) -> Option<bool> {
        let inner = self.lock();
        let ips = inner.by_name.get(&normalize(name))?;
        Some(ips.contains(&ip.to_canonical()))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Inner {
    /// Drops the addresses whose newest name is in the older half of what is remembered.
    fn forget_oldest(&mut self) {
        let mut newest: Vec<u64> = self
            .by_ip
            .values()
            .map(|names| names.last().map_or(0, |(_, s)| *s))
            .collect();
        newest.sort_unstable();
        let cut = newest[newest.len() / 2];
        self.by_ip
            .retain(|_, names| names.last().is_some_and(|(_, s)| *s > cut));
        let by_ip = &self.by_ip;
        self.by_name.retain(|name, ips| {
            ips.retain(|ip| {
                by_ip
                    .get(ip)
                    .is_some_and(|ns| ns.iter().any(|(n, _)| n == name))
            });
            !ips.is_empty()
        });
    }
}

/// Lowercase, without a trailing dot.
fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn chain_names_every_address_and_rotation_is_no_mismatch() {
        let names = Names::default();
        let chain = ["www.example".to_string(), "cdn.example".to_string()];
        names.remember(&chain, &[ip("192.0.2.1")]);
        // The CDN rotates: a later answer gives another address; both stay the name's.
        names.remember(&chain[..1], &[ip("192.0.2.2")]);
        assert_eq!(
            names.names_for(ip("192.0.2.1")),
            ["cdn.example", "www.example"]
        );
        assert_eq!(
            names.resolved_to("WWW.example.", ip("192.0.2.1")),
            Some(true)
        );
        assert_eq!(
            names.resolved_to("www.example", ip("192.0.2.2")),
            Some(true)
        );
        assert_eq!(
            names.resolved_to("www.example", ip("192.0.2.9")),
            Some(false)
        );
        assert_eq!(names.resolved_to("other.example", ip("192.0.2.1")), None);
        assert!(names.knows(ip("::ffff:192.0.2.2")));
        assert!(!names.knows(ip("192.0.2.9")));
    }

    #[test]
    fn hosts_file_entries_are_answers() {
        let names = Names::default();
        names.load_hosts("127.0.0.1 localhost\n# c\n192.0.2.10 tls.example sub.tls.example # x\nbad line\n2001:db8::10 v6.example\n");
        assert_eq!(
            names.names_for(ip("192.0.2.10")),
            ["sub.tls.example", "tls.example"]
        );
        assert_eq!(names.names_for(ip("2001:db8::10")), ["v6.example"]);
        assert!(!names.knows(ip("127.0.0.1")));
    }

    #[test]
    fn memory_is_bounded() {
        let names = Names::default();
        for i in 0..(MAX_ADDRESSES as u32 + 10) {
            let a = IpAddr::from((0x0a00_0000u32 + i).to_be_bytes());
            names.remember(&[format!("n{i}.example")], &[a]);
        }
        let inner = names.lock();
        assert!(inner.by_ip.len() <= MAX_ADDRESSES);
        assert!(inner.by_name.len() <= MAX_ADDRESSES);
        // The newest survive.
        let last = IpAddr::from((0x0a00_0000u32 + MAX_ADDRESSES as u32 + 9).to_be_bytes());
        assert!(inner.by_ip.contains_key(&last));
    }
}
