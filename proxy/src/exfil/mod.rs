//! Finds the job's secrets in what it sends, so an inspected request can be stopped before a
//! secret leaves for a host it does not belong to (issue #7).
//!
//! A [`Detector`] is built once per job from the named secrets (`--secret-env NAME`, the values
//! the workflow passes) and also knows the well-known token formats (GitHub, AWS access key ids,
//! PEM private keys, npm, PyPI, Slack tokens and webhooks). The proxy scans a request's URL and
//! header values with [`Detector::scan`] and its body with a [`StreamScanner`], which holds back
//! the last few bytes of each chunk so a secret split across chunks is still found before any of
//! it is forwarded. A [`Finding`] names the secret (or the token kind), never its value;
//! [`Detector::is_audience`] says whether the destination host is one where it belongs.
//!
//! What is covered:
//! - **Named secrets**: plain; base64 and base64url at each of the three alignments inside a
//!   longer encoded string; percent-encoded in any mix of escaped and literal bytes and either
//!   case of hex digits (and base64 that is itself percent-encoded); a space sent as `+`. Values
//!   shorter than [`MIN_SECRET_LEN`] bytes are ignored with a warning: they would match too much.
//! - **Token formats**: plain and percent-encoded everywhere; base64 (a run of 16 or more base64
//!   characters decoded at every alignment, as in `Authorization: Basic`) only in
//!   [`Detector::scan`], not in streamed bodies, whose runs can be megabytes long. AWS secret
//!   access keys have no recognisable shape: pass them as named secrets.
//!
//! Cost: each input byte is percent-decoded, steps one Aho–Corasick automaton over every named
//! form (O(log σ) per byte amortised) and a token matcher with a handful of open candidates;
//! nothing is allocated per byte. A value found both as a named secret and as a token is reported
//! once of each kind.

mod ac;
mod encode;
mod scan;
pub mod secrets;
mod tokens;

#[cfg(test)]
mod tests;

pub use scan::StreamScanner;
pub use tokens::{AWS, GITHUB, NOWHERE, NPM, PYPI, SLACK};

use std::fmt;
use std::sync::Arc;

/// Named secrets shorter than this are not looked for.
pub const MIN_SECRET_LEN: usize = 8;

/// A secret the job holds, by name. Its value never appears in `Debug` output.
pub struct Secret {
    /// The name records use, e.g. the environment variable's.
    pub name: String,
    value: Vec<u8>,
}

impl Secret {
    /// A named secret.
    pub fn new(name: impl Into<String>, value: impl Into<Vec<u8>>) -> Secret {
        Secret {
            name: name.into(),
            value: value.into(),
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secret")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// What was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The value of a named secret.
    Named,
    /// A well-known token format, e.g. `github-token`.
    Token(&'static str),
}

/// How what was found was encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Plain,
    Base64,
    UrlEncoded,
    Base64Url,
    JsonEscaped,
}

impl Encoding {
    /// The name records use.
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Plain => "plain",
            Encoding::Base64 => "base64",
            Encoding::UrlEncoded => "url-encoded",
            Encoding::Base64Url => "base64url",
            Encoding::JsonEscaped => "json-escaped",
        }
    }
}

/// A secret or token found in a request. Holds no part of the value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The secret's name, or the token kind (`github-token`, `aws-access-key-id`, …).
    pub name: String,
    pub kind: Kind,
    pub encoding: Encoding,
    /// Hosts (`example.com`, or `*.example.com` for any subdomain) where it belongs; `None` when
    /// unknown (a named secret that looks like no known token), `Some(&[])` for nowhere (a
    /// private key).
    pub audience: Option<&'static [&'static str]>,
}

impl Finding {
    fn token(format: &'static tokens::Format, encoding: Encoding) -> Finding {
        Finding {
            name: format.kind.to_string(),
            kind: Kind::Token(format.kind),
            encoding,
            audience: Some(format.audience),
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            Kind::Named => write!(f, "secret {}", self.name)?,
            Kind::Token(kind) => write!(f, "{kind}")?,
        }
        write!(f, " ({})", self.encoding.as_str())
    }
}

/// One searched form of a named secret.
struct Pattern {
    secret: u32,
    encoding: Encoding,
    len: u32,
}

/// What a detector and its stream scanners share.
struct Inner {
    /// Each secret's name and audience.
    secrets: Vec<(String, Option<&'static [&'static str]>)>,
    patterns: Vec<Pattern>,
    automaton: ac::Automaton,
    /// Raw bytes a stream scanner holds back at most.
    hold: usize,
    /// The longest form, in decoded bytes (line breaks not counted).
    longest_form: usize,
    /// Texts that spell a named secret, longest first, for [`Detector::redact`].
    redact: Vec<Vec<u8>>,
}

/// Looks for the job's secrets and well-known tokens. Cheap to clone.
#[derive(Clone)]
pub struct Detector {
    inner: Arc<Inner>,
}

impl Detector {
    /// Builds the detector; a secret shorter than [`MIN_SECRET_LEN`] is skipped with a warning.
    pub fn new(secrets: Vec<Secret>) -> Detector {
        let mut names = Vec::new();
        let mut patterns = Vec::new();
        let mut forms = Vec::new();
        let mut redact = Vec::new();
        for s in secrets {
            if s.value.len() < MIN_SECRET_LEN {
                tracing::warn!(
                    secret = %s.name,
                    "secret shorter than {MIN_SECRET_LEN} bytes is not looked for: it would match too much"
                );
                continue;
            }
            let id = names.len() as u32;
            for upper in [true, false] {
                redact.push(encode::percent_encode(&s.value, upper));
            }
            // As a JSON string spells it (records are JSON).
            if let Ok(text) = std::str::from_utf8(&s.value)
                && let Ok(json) = serde_json::to_string(text)
            {
                redact.push(json.as_bytes()[1..json.len() - 1].to_vec());
            }
            for (bytes, encoding) in encode::forms(&s.value) {
                if bytes.len() >= MIN_SECRET_LEN {
                    redact.push(bytes.clone());
                }
                // Line breaks are not matched (the scan skips them too): base64 wrapped at 76
                // columns, a multi-line key sent with other line endings, are still found.
                let bytes: Vec<u8> = bytes
                    .into_iter()
                    .filter(|b| !matches!(b, b'\r' | b'\n'))
                    .collect();
                if bytes.is_empty() {
                    continue;
                }
                patterns.push(Pattern {
                    secret: id,
                    encoding,
                    len: bytes.len() as u32,
                });
                forms.push(bytes);
            }
            let audience = audience_of(&s.name, &s.value);
            names.push((s.name, audience));
        }
        let automaton = ac::Automaton::new(&forms);
        // A match spans at most 3 raw bytes per decoded byte (`%XX`), and the decoder may wait
        // two more bytes before it knows whether a `%` starts an escape.
        let longest = forms.iter().map(Vec::len).chain([tokens::longest()]).max();
        let hold = 3 * longest.unwrap_or(0) + 2;
        Detector {
            inner: Arc::new(Inner {
                secrets: names,
                patterns,
                automaton,
                hold,
                longest_form: forms.iter().map(Vec::len).max().unwrap_or(0),
                redact: {
                    redact.sort_by_key(|r| std::cmp::Reverse(r.len()));
                    redact.dedup();
                    redact
                },
            }),
        }
    }

    /// `text` with every plain, percent-encoded or base64 spelling of a named secret replaced
    /// by `***` (the last defence for what Warden writes: records quote command lines, URLs
    /// and reasons). `None` when there was nothing to replace.
    pub fn redact(&self, text: &[u8]) -> Option<Vec<u8>> {
        let mut out: Option<Vec<u8>> = None;
        for form in &self.inner.redact {
            let current = out.as_deref().unwrap_or(text);
            if let Some(replaced) = replace_all(current, form, b"***") {
                out = Some(replaced);
            }
        }
        out
    }

    /// Everything found in `bytes`, a URL or a header value, each finding once.
    pub fn scan(&self, bytes: &[u8]) -> Vec<Finding> {
        let mut found = Vec::new();
        let mut engine = scan::Engine::new(self.inner.clone());
        engine.feed(bytes, &mut found);
        engine.finish(&mut found);
        let decoded = encode::percent_decode(bytes);
        let mut hits = Vec::new();
        encode::base64_runs(&decoded, 16, |run, encoding| {
            let mut m = tokens::Matcher::default();
            for &b in run {
                m.feed(b, false, &mut hits);
            }
            m.finish(&mut hits);
            for (format, _) in hits.drain(..) {
                scan::add(&mut found, Finding::token(format, encoding));
            }
        });
        found
    }

    /// A scanner for a body arriving in chunks.
    pub fn stream(&self) -> StreamScanner {
        StreamScanner::new(self)
    }

    /// How many bytes a [`StreamScanner`] holds back at most.
    pub fn hold_back(&self) -> usize {
        self.inner.hold
    }

    /// Whether `host` (a name, optionally with `:port`) is one where what was found belongs.
    pub fn is_audience(finding: &Finding, host: &str) -> bool {
        let host = strip_port(host).trim_end_matches('.').to_ascii_lowercase();
        finding.audience.is_some_and(|hosts| {
            hosts.iter().any(|h| match h.strip_prefix("*.") {
                Some(parent) => host
                    .strip_suffix(parent)
                    .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
                None => host == *h,
            })
        })
    }
}

impl fmt::Debug for Detector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.inner.secrets.iter().map(|s| s.0.as_str()).collect();
        f.debug_struct("Detector")
            .field("secrets", &names)
            .field("patterns", &self.inner.patterns.len())
            .field("states", &self.inner.automaton.len())
            .field("hold", &self.inner.hold)
            .finish()
    }
}

/// `haystack` with each `needle` replaced, or `None` when there is none.
fn replace_all(haystack: &[u8], needle: &[u8], with: &[u8]) -> Option<Vec<u8>> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    let mut out = Vec::new();
    let mut i = 0;
    let mut last = 0;
    while i + needle.len() <= haystack.len() {
        if &haystack[i..i + needle.len()] == needle {
            out.extend_from_slice(&haystack[last..i]);
            out.extend_from_slice(with);
            i += needle.len();
            last = i;
        } else {
            i += 1;
        }
    }
    if last == 0 {
        return None;
    }
    out.extend_from_slice(&haystack[last..]);
    Some(out)
}

/// `host:port` → `host`; an IPv6 literal keeps its brackets' content whole.
fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((h, port)) if !h.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

/// Where a named secret belongs: that of the token format its value contains, or AWS for the
/// `AWS_…` credentials that have no recognisable shape.
fn audience_of(name: &str, value: &[u8]) -> Option<&'static [&'static str]> {
    let mut m = tokens::Matcher::default();
    let mut hits = Vec::new();
    for &b in value {
        m.feed(b, false, &mut hits);
    }
    m.finish(&mut hits);
    if let Some((format, _)) = hits.first() {
        return Some(format.audience);
    }
    name.to_ascii_uppercase().starts_with("AWS_").then_some(AWS)
}
