//! Parsers never panic (STYLE.md): every prefix of real entries and files, and many random
//! strings over the characters the grammar cares about. Whatever parses must print back to
//! text that parses to the same endpoint.

use crate::policy::{Endpoint, file};

const ENTRIES: &[&str] = &[
    "*.github.com:443",
    "[2001:db8::/32]:443",
    "::ffff:10.0.0.0/104",
    "10.0.0.0/8:53",
    "https://user@example.com:8443/p?q",
    "bücher.example",
];

const FILE: &str = "mode: block # comment
allowed-endpoints:
  - github.com:443
  - \"*.githubusercontent.com\"
  - '[2001:db8::1]:22'
extra: &a [1, *a]
other: |
  github.com bad..x
";

/// Parses `text` as an endpoint; if it parses, its canonical text must parse back to it.
fn round_trips(text: &str) {
    if let Ok(e) = text.parse::<Endpoint>() {
        let again: Endpoint = e
            .to_string()
            .parse()
            .unwrap_or_else(|err| panic!("{text:?} -> {e} does not parse: {err}"));
        assert_eq!(again, e, "{text:?}");
    }
}

#[test]
fn every_prefix_and_suffix_of_entries() {
    for entry in ENTRIES {
        for (i, _) in entry.char_indices() {
            round_trips(&entry[..i]);
            round_trips(&entry[i..]);
        }
    }
}

#[test]
fn random_entries() {
    const ALPHABET: &[char] = &[
        'a', 'b', 'f', 'x', '0', '1', '9', '.', ':', '/', '[', ']', '*', '-', '_', '%', ' ', 'é',
    ];
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    for _ in 0..20_000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let len = (state % 24) as usize;
        let text: String = (0..len)
            .map(|i| ALPHABET[((state >> (i * 2 % 60)) % ALPHABET.len() as u64) as usize])
            .collect();
        round_trips(&text);
    }
}

#[test]
fn every_prefix_of_a_policy_file() {
    for (i, _) in FILE.char_indices() {
        let _ = file::parse(&FILE[..i], "p.yml");
        let _ = file::parse(&FILE[i..], "p.yml");
    }
}
