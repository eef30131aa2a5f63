//! DNS tunnelling detection: lookups whose names look like they carry data.
//!
//! A job that may not connect anywhere can still send data out through DNS: it looks up
//! `<data>.t.attacker.example`, the recursive resolver forwards the question to the
//! attacker's authoritative server, and the answer (often TXT) brings data back. Tools such as
//! iodine, dnscat2 and DNSExfiltrator do exactly this. Their lookups stand out in shape, not in
//! any one name, so [`TunnelDetector`] watches the stream of a session's lookups for:
//!
//! - a label of [`LONG_LABEL`] characters or more: tunnels fill labels towards the 63-octet
//!   limit (RFC 1035 §2.3.4) to carry the most data per query, while names people and services
//!   choose stay well under it;
//! - a label that looks encoded: at least [`ENTROPY_MIN_LEN`] characters with Shannon entropy
//!   of [`ENTROPY_BITS`] bits per character or more (random base32 reaches that from about 30
//!   characters, words and hyphenated names stay near 3.5-3.9), or at least [`HEX_MIN_LEN`]
//!   characters of hex digits mixing digits and letters (hex never reaches 4 bits, being a
//!   16-letter alphabet), or bytes that are not host name characters (iodine's raw encoding);
//! - a name of more than [`LONG_NAME`] characters: tunnels pack each query towards the
//!   253-character limit, while the longest everyday names (cloud endpoints, reverse lookups
//!   of IPv6 addresses) stay under about 100;
//! - many different names under one domain: past [`MANY_NAMES`] distinct names below the same
//!   domain (counted for every ancestor of two labels or more, so data spread over several
//!   labels is counted too), that lookup and every later new one is suspicious;
//! - a TXT or NULL lookup of a name no policy rule names: those are the types tunnels use to
//!   carry data back, and CI tools rarely ask for them.
//!
//! Names under [`EXEMPT_ZONES`] are not judged by shape. Most are big cloud, CDN and CI
//! providers' zones: data in a query name only reaches an attacker through an authoritative
//! server the attacker runs, and these zones' servers belong to the provider. That keeps
//! generated names such as Kubernetes load balancers (`a0123...-1234567890.elb.amazonaws.com`)
//! and CDK asset buckets out of the log. The reverse-lookup zones are exempt because their
//! names are addresses: a job that reverse-resolves its peers makes many distinct, long,
//! digit-heavy names there. The TXT rule applies everywhere: a provider may let a customer
//! publish TXT records, which is how data comes back in.
//!
//! Memory is bounded: at most [`MAX_DOMAINS`] domains are tracked (the one with the fewest
//! names, least recently seen, is forgotten first), each remembering at most
//! [`MAX_NAMES_PER_DOMAIN`] names as hashes; past that every name not remembered counts as new.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};

/// The flag on `dns` records (and the summary) of lookups that look like tunnelling.
pub const FLAG: &str = "dns-tunnel-suspected";

/// A label this long or longer is suspicious on its own.
pub const LONG_LABEL: usize = 50;
/// Labels shorter than this are never judged by entropy: short strings have low entropy
/// whatever they hold, and 12-character random labels look like CDN host names.
pub const ENTROPY_MIN_LEN: usize = 24;
/// Bits of Shannon entropy per character from which a label looks random.
pub const ENTROPY_BITS: f64 = 4.0;
/// An all-hex label (with digits and letters) this long or longer looks hex-encoded; 32 is
/// an MD5 in hex, far longer than hex ids in everyday host names.
pub const HEX_MIN_LEN: usize = 32;
/// A name longer than this is suspicious on its own.
pub const LONG_NAME: usize = 150;
/// Distinct names under one domain above which every new one is suspicious. A CI job talks to
/// a handful of hosts per domain (about 20 under githubusercontent.com at most).
pub const MANY_NAMES: usize = 30;
/// The most domains whose names are counted.
pub const MAX_DOMAINS: usize = 4096;
/// The most names remembered per domain; well past [`MANY_NAMES`], so this only bounds a
/// domain that is already flagged.
pub const MAX_NAMES_PER_DOMAIN: usize = 64;

/// Zones whose names are not judged by shape (see the module docs): providers' zones, where
/// names in lookups reach no attacker, and the reverse-lookup zones.
pub const EXEMPT_ZONES: &[&str] = &[
    "amazonaws.com",
    "cloudfront.net",
    "googleapis.com",
    "windows.net",
    "azure.com",
    "azureedge.net",
    "github.com",
    "githubusercontent.com",
    "docker.io",
    "docker.com",
    "cloudapp.net",
    "in-addr.arpa",
    "ip6.arpa",
];

/// What made a lookup look like tunnelling, in words for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suspicion {
    /// One line per signal, e.g. `label of 57 characters` or
    /// `41 different names under t.example.com`.
    pub evidence: Vec<String>,
}

/// Watches one session's lookups; see the module docs for the signals.
#[derive(Debug, Default)]
pub struct TunnelDetector {
    domains: HashMap<String, Names>,
    /// Counts observations, to tell which domain was seen least recently.
    clock: u64,
}

/// The names seen below one domain.
#[derive(Debug, Default)]
struct Names {
    hashes: HashSet<u64>,
    /// Names not remembered because `hashes` was full.
    beyond_cap: usize,
    last_seen: u64,
}

impl Names {
    fn count(&self) -> usize {
        self.hashes.len() + self.beyond_cap
    }

    /// Records `below` (the part of a name left of this domain); true if it was new.
    fn insert(&mut self, below: &str) -> bool {
        let hash = hash(below);
        if self.hashes.contains(&hash) {
            return false;
        }
        if self.hashes.len() < MAX_NAMES_PER_DOMAIN {
            self.hashes.insert(hash);
        } else {
            self.beyond_cap += 1;
        }
        true
    }
}

impl TunnelDetector {
    /// Judges one lookup of `name` (any case, trailing dot optional) for `qtype`; `known` says
    /// whether a policy rule names it. Returns what looked like tunnelling, if anything.
    pub fn observe(&mut self, name: &str, qtype: u16, known: bool) -> Option<Suspicion> {
        let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
        let mut evidence = Vec::new();
        if !in_exempt_zone(&name) {
            evidence.extend(name.split('.').filter_map(label_evidence));
            if name.len() > LONG_NAME {
                evidence.push(format!("name of {} characters", name.len()));
            }
            evidence.extend(self.count_names(&name));
        }
        if !known && matches!(qtype, 10 | 16) {
            let kind = if qtype == 16 { "TXT" } else { "NULL" };
            evidence.push(format!("{kind} lookup of a name no rule names"));
        }
        (!evidence.is_empty()).then_some(Suspicion { evidence })
    }

    /// Counts `name` under each of its ancestors of two labels or more; evidence names the
    /// nearest ancestor that now has too many names, if `name` is new there.
    fn count_names(&mut self, name: &str) -> Option<String> {
        self.clock += 1;
        let mut found = None;
        for (dot, _) in name.match_indices('.') {
            let (below, domain) = (&name[..dot], &name[dot + 1..]);
            if !domain.contains('.') {
                break;
            }
            let clock = self.clock;
            let names = self.domain(domain);
            names.last_seen = clock;
            if names.insert(below) && names.count() > MANY_NAMES && found.is_none() {
                found = Some(format!("{} different names under {domain}", names.count()));
            }
        }
        found
    }

    /// The entry for `domain`, making room for it if the table is full.
    fn domain(&mut self, domain: &str) -> &mut Names {
        if !self.domains.contains_key(domain) && self.domains.len() >= MAX_DOMAINS {
            let victim = self
                .domains
                .iter()
                .min_by_key(|(_, names)| (names.count(), names.last_seen))
                .map(|(domain, _)| domain.clone());
            if let Some(victim) = victim {
                self.domains.remove(&victim);
            }
        }
        self.domains.entry(domain.to_string()).or_default()
    }
}

fn in_exempt_zone(name: &str) -> bool {
    EXEMPT_ZONES.iter().any(|zone| {
        name == *zone
            || name
                .strip_suffix(zone)
                .is_some_and(|rest| rest.ends_with('.'))
    })
}

/// Why `label` looks like encoded data, if it does.
fn label_evidence(label: &str) -> Option<String> {
    let len = label.len();
    if len >= LONG_LABEL {
        return Some(format!("label of {len} characters"));
    }
    // Labels reach this detector in sniff::dns's text form, where a byte that is not a letter,
    // digit, '-', '_' or '*' is written as a \DDD escape.
    if label.contains('\\') {
        return Some(format!(
            "label \"{label}\" holds bytes that are not host name characters"
        ));
    }
    let bits = entropy(label);
    if len >= ENTROPY_MIN_LEN && bits >= ENTROPY_BITS {
        return Some(format!(
            "label \"{label}\" ({len} characters) has {bits:.1} bits of entropy per character"
        ));
    }
    let hex = label.bytes().all(|b| b.is_ascii_hexdigit());
    let mixed =
        label.bytes().any(|b| b.is_ascii_digit()) && label.bytes().any(|b| b.is_ascii_alphabetic());
    if len >= HEX_MIN_LEN && hex && mixed {
        return Some(format!(
            "label \"{label}\" ({len} characters) looks hex-encoded"
        ));
    }
    None
}

/// Shannon entropy of `text`'s bytes, in bits per byte.
fn entropy(text: &str) -> f64 {
    let mut counts = [0u32; 256];
    for byte in text.bytes() {
        counts[usize::from(byte)] += 1;
    }
    let len = text.len() as f64;
    counts
        .iter()
        .filter(|&&count| count > 0)
        .map(|&count| {
            let p = f64::from(count) / len;
            -p * p.log2()
        })
        .sum()
}

/// A fixed hash (SipHash with zero keys): names are remembered as 8 bytes, not as strings.
fn hash(text: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    text.hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests;
