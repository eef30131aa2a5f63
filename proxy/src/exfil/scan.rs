//! The scanning engine shared by one-shot and streaming scans.
//!
//! Raw bytes go through a streaming percent-decoder; each decoded byte steps the Aho–Corasick
//! automaton of named-secret forms (line breaks skipped) and the token matcher. Nothing is
//! buffered here: the caller keeps the unreleased bytes, and [`StreamScanner::push`] only says
//! how many of them are safe.
//!
//! Safe means: no match can still start in them. The automaton's state stands for the last
//! `depth` bytes (the longest suffix of the input that begins some form), the token matcher's
//! longest open candidate for its last `open_len`, and the decoder may hold a `%` and a digit
//! not yet decoded; every later match starts inside those or after them. The engine remembers
//! at which raw offset each recent decoded byte began, so exactly the bytes before the earliest
//! of those starts are released at once. A body of ordinary bytes is released as it comes (a
//! streaming RPC is not held up), and a secret split across chunks is held whole until it is
//! judged.

use super::encode::PercentDecoder;
use super::tokens::{self, Hit, Matcher};
use super::{Detector, Encoding, Finding, Inner, Kind};
use std::{collections::VecDeque, sync::Arc};

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
    /// Raw bytes read.
    raw: u64,
    /// Raw offset of the first raw byte not yet decoded.
    undecoded: u64,
    /// Raw start offsets of the last decoded bytes the automaton read (no line breaks).
    ac_starts: VecDeque<u64>,
    /// Raw start offsets of the last decoded bytes.
    starts: VecDeque<u64>,
    /// Start offsets kept: enough for the longest form and the longest token.
    keep_ac: usize,
    keep: usize,
}

impl Engine {
    pub fn new(inner: Arc<Inner>) -> Engine {
        let keep_ac = inner.longest_form;
        Engine {
            inner,
            raw: 0,
            undecoded: 0,
            ac_starts: VecDeque::new(),
            starts: VecDeque::new(),
            keep_ac,
            keep: tokens::longest(),
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
            self.raw += 1;
            let (out, n) = self.decoder.push(b);
            for &(d, escaped) in &out[..n] {
                self.decoded(d, escaped, found);
            }
        }
    }

    /// The raw offset before which no match can start any more.
    pub fn safe(&self) -> u64 {
        let back = |starts: &VecDeque<u64>, n: usize| {
            (n > 0).then(|| {
                starts
                    .get(starts.len().saturating_sub(n))
                    .copied()
                    .unwrap_or(0)
            })
        };
        let ac = back(&self.ac_starts, self.inner.automaton.depth(self.state));
        let tok = back(&self.starts, self.tokens.open_len());
        [Some(self.undecoded), ac, tok]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(self.undecoded)
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
        let start = self.undecoded;
        self.undecoded += if escaped { 3 } else { 1 };
        remember(&mut self.starts, start, self.keep);
        self.tokens.feed(b, escaped, &mut self.hits);
        self.drain_hits(found);
        if matches!(b, b'\r' | b'\n') {
            return;
        }
        remember(&mut self.ac_starts, start, self.keep_ac);
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

/// Pushes `start`, keeping the last `keep`.
fn remember(starts: &mut VecDeque<u64>, start: u64, keep: usize) {
    if keep == 0 {
        return;
    }
    if starts.len() == keep {
        starts.pop_front();
    }
    starts.push_back(start);
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
    seen: u64,
    released: u64,
}

impl StreamScanner {
    pub(super) fn new(detector: &Detector) -> StreamScanner {
        StreamScanner {
            engine: Engine::new(detector.inner.clone()),
            seen: 0,
            released: 0,
        }
    }

    /// Feeds a chunk; returns the findings in it and how many more bytes may be sent on now,
    /// counted from the first byte not yet released (the held-back tail first, then this chunk).
    ///
    /// Bytes where a secret or token could still begin are held (at most
    /// [`Detector::hold_back`] unless line breaks pad a match), so a secret split across chunks is
    /// found before any byte of it is released; the rest is released at once. The scanner keeps
    /// no copy of the body: the caller holds the unreleased bytes, and drops them if it blocks on
    /// a finding.
    pub fn push(&mut self, chunk: &[u8]) -> (Vec<Finding>, usize) {
        let mut found = Vec::new();
        self.engine.feed(chunk, &mut found);
        self.seen += chunk.len() as u64;
        let safe = self.engine.safe().min(self.seen).max(self.released);
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
