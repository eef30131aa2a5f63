//! The scanning engine shared by one-shot and streaming scans.
//!
//! Raw bytes go through a streaming percent-decoder; each decoded byte steps the Aho–Corasick
//! automaton of named-secret forms and the token matcher. Nothing is buffered here: the caller
//! keeps the unreleased bytes, and [`StreamScanner::push`] only says how many of them are safe.

use super::encode::PercentDecoder;
use super::tokens::{Hit, Matcher};
use super::{Detector, Encoding, Finding, Inner, Kind};
use std::sync::Arc;

/// State of one scan.
pub(super) struct Engine {
    inner: Arc<Inner>,
    decoder: PercentDecoder,
    state: u32,
    /// Decoded bytes seen.
    pos: u64,
    /// One past the decoded position of the last byte that came from an escape.
    escaped_until: u64,
    tokens: Matcher,
    hits: Vec<Hit>,
}

impl Engine {
    pub fn new(inner: Arc<Inner>) -> Engine {
        Engine {
            inner,
            decoder: PercentDecoder::default(),
            state: 0,
            pos: 0,
            escaped_until: 0,
            tokens: Matcher::default(),
            hits: Vec::new(),
        }
    }

    /// Scans `bytes`, adding what is found to `found`.
    pub fn feed(&mut self, bytes: &[u8], found: &mut Vec<Finding>) {
        for &b in bytes {
            let (out, n) = self.decoder.push(b);
            for &(d, escaped) in &out[..n] {
                self.decoded(d, escaped, found);
            }
        }
    }

    /// End of input.
    pub fn finish(&mut self, found: &mut Vec<Finding>) {
        let (out, n) = self.decoder.finish();
        for &(d, escaped) in &out[..n] {
            self.decoded(d, escaped, found);
        }
        self.tokens.finish(&mut self.hits);
        self.drain_hits(found);
    }

    fn decoded(&mut self, b: u8, escaped: bool, found: &mut Vec<Finding>) {
        self.pos += 1;
        if escaped {
            self.escaped_until = self.pos;
        }
        self.state = self.inner.automaton.step(self.state, b);
        for &p in self.inner.automaton.matches(self.state) {
            let pattern = &self.inner.patterns[p as usize];
            let start = self.pos - pattern.len as u64;
            let encoding = match pattern.encoding {
                Encoding::Plain if self.escaped_until > start => Encoding::UrlEncoded,
                e => e,
            };
            let secret = &self.inner.secrets[pattern.secret as usize];
            add(
                found,
                Finding {
                    name: secret.0.clone(),
                    kind: Kind::Named,
                    encoding,
                    audience: secret.1,
                },
            );
        }
        self.tokens.feed(b, escaped, &mut self.hits);
        self.drain_hits(found);
    }

    fn drain_hits(&mut self, found: &mut Vec<Finding>) {
        for (format, escaped) in self.hits.drain(..) {
            let encoding = if escaped {
                Encoding::UrlEncoded
            } else {
                Encoding::Plain
            };
            add(found, Finding::token(format, encoding));
        }
    }
}

/// Adds a finding unless the same one is already there.
pub(super) fn add(found: &mut Vec<Finding>, f: Finding) {
    if !found.contains(&f) {
        found.push(f);
    }
}

/// Scans a body that arrives in chunks, holding back the bytes that could still be the start of
/// a secret.
pub struct StreamScanner {
    engine: Engine,
    hold: u64,
    seen: u64,
    released: u64,
}

impl StreamScanner {
    pub(super) fn new(detector: &Detector) -> StreamScanner {
        StreamScanner {
            hold: detector.inner.hold as u64,
            engine: Engine::new(detector.inner.clone()),
            seen: 0,
            released: 0,
        }
    }

    /// Feeds a chunk; returns the findings in it and how many more bytes may be sent on now,
    /// counted from the first byte not yet released (the held-back tail first, then this chunk).
    ///
    /// The last [`Detector::hold_back`] bytes are always held, so a secret split across chunks is
    /// found before any byte of it is released. The scanner keeps no copy of the body: the caller
    /// holds the unreleased bytes, and drops them if it blocks on a finding.
    pub fn push(&mut self, chunk: &[u8]) -> (Vec<Finding>, usize) {
        let mut found = Vec::new();
        self.engine.feed(chunk, &mut found);
        self.seen += chunk.len() as u64;
        let safe = self.seen.saturating_sub(self.hold).max(self.released);
        let n = safe - self.released;
        self.released = safe;
        (found, n as usize)
    }

    /// End of body: scans the held-back tail's last open matches. Every byte not yet released
    /// may then be sent on, unless the findings say otherwise.
    pub fn finish(&mut self) -> Vec<Finding> {
        let mut found = Vec::new();
        self.engine.finish(&mut found);
        self.released = self.seen;
        found
    }
}

impl std::fmt::Debug for StreamScanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamScanner")
            .field("seen", &self.seen)
            .field("released", &self.released)
            .finish_non_exhaustive()
    }
}
