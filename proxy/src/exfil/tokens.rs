//! Well-known token formats, recognised by a hand-written streaming matcher.
//!
//! Each format is a literal prefix followed by a body of one character class, with a length rule.
//! Formats whose prefix is specific on its own (PyPI's macaroon header, a PEM `BEGIN` line, a
//! Slack webhook path) are found as soon as the minimum body has been seen; the short GitHub, npm
//! and AWS prefixes also need the body to *end* (a byte that is neither body nor word character)
//! within the allowed length, and a word character may not come just before the prefix, so
//! `XAKIA…` or a 40-character `ghp_…` are not tokens. The matcher sees one byte at a time and keeps
//! only the few candidates whose prefix or body is still open, so it never looks back at bytes it
//! has been given: total cost is O(n × open candidates), and candidates are rare.

/// Where GitHub tokens belong.
pub const GITHUB: &[&str] = &[
    "github.com",
    "*.github.com",
    "*.githubusercontent.com",
    "ghcr.io",
];
/// Where AWS credentials belong.
pub const AWS: &[&str] = &["*.amazonaws.com"];
/// Where npm tokens belong.
pub const NPM: &[&str] = &["registry.npmjs.org"];
/// Where PyPI upload tokens belong.
pub const PYPI: &[&str] = &["upload.pypi.org", "pypi.org"];
/// Where Slack tokens and webhooks belong.
pub const SLACK: &[&str] = &["slack.com", "*.slack.com", "hooks.slack.com"];
/// A private key belongs on no host.
pub const NOWHERE: &[&str] = &[];

/// One token format.
pub(super) struct Format {
    /// The token kind reported, e.g. `github-token`.
    pub kind: &'static str,
    /// Matched literally, except that a space also matches `+` (form encoding).
    pub prefix: &'static [u8],
    pub body: fn(u8) -> bool,
    pub min: usize,
    /// `None`: found once `min` body bytes are seen. `Some(max)`: the body must end within `max`.
    pub max: Option<usize>,
    pub audience: &'static [&'static str],
}

fn alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}
fn word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}
fn upper_digit(b: u8) -> bool {
    b.is_ascii_uppercase() || b.is_ascii_digit()
}
fn dashed(b: u8) -> bool {
    word(b) || b == b'-'
}
fn alnum_dash(b: u8) -> bool {
    alnum(b) || b == b'-'
}
fn path(b: u8) -> bool {
    word(b) || b == b'/'
}
fn none(_: u8) -> bool {
    false
}

const fn github(prefix: &'static [u8]) -> Format {
    // 36 today; GitHub reserves the right to grow them to 255 in all.
    Format {
        kind: "github-token",
        prefix,
        body: alnum,
        min: 36,
        max: Some(255 - 4),
        audience: GITHUB,
    }
}
const fn aws(prefix: &'static [u8]) -> Format {
    Format {
        kind: "aws-access-key-id",
        prefix,
        body: upper_digit,
        min: 16,
        max: Some(16),
        audience: AWS,
    }
}
const fn slack(prefix: &'static [u8]) -> Format {
    Format {
        kind: "slack-token",
        prefix,
        body: alnum_dash,
        min: 20,
        max: None,
        audience: SLACK,
    }
}
const fn pem(prefix: &'static [u8]) -> Format {
    Format {
        kind: "pem-private-key",
        prefix,
        body: none,
        min: 0,
        max: None,
        audience: NOWHERE,
    }
}

/// Every format looked for.
pub(super) const FORMATS: &[Format] = &[
    github(b"ghp_"),
    github(b"gho_"),
    github(b"ghu_"),
    github(b"ghs_"),
    github(b"ghr_"),
    Format {
        kind: "github-token",
        prefix: b"github_pat_",
        body: word,
        min: 50,
        max: Some(255 - 11),
        audience: GITHUB,
    },
    aws(b"AKIA"),
    aws(b"ASIA"),
    Format {
        kind: "npm-token",
        prefix: b"npm_",
        body: alnum,
        min: 36,
        max: Some(36),
        audience: NPM,
    },
    Format {
        kind: "pypi-token",
        // `AgEIcHlwaS5vcmc` is the base64 of the macaroon's `pypi.org` location.
        prefix: b"pypi-AgEIcHlwaS5vcmc",
        body: dashed,
        min: 50,
        max: None,
        audience: PYPI,
    },
    slack(b"xoxa-"),
    slack(b"xoxb-"),
    slack(b"xoxp-"),
    slack(b"xoxr-"),
    slack(b"xoxs-"),
    Format {
        kind: "slack-webhook",
        prefix: b"hooks.slack.com/services/",
        body: path,
        min: 40,
        max: None,
        audience: SLACK,
    },
    pem(b"-----BEGIN PRIVATE KEY-----"),
    pem(b"-----BEGIN RSA PRIVATE KEY-----"),
    pem(b"-----BEGIN EC PRIVATE KEY-----"),
    pem(b"-----BEGIN DSA PRIVATE KEY-----"),
    pem(b"-----BEGIN OPENSSH PRIVATE KEY-----"),
    pem(b"-----BEGIN ENCRYPTED PRIVATE KEY-----"),
    pem(b"-----BEGIN PGP PRIVATE KEY BLOCK-----"),
];

/// For each byte, the formats whose prefix starts with it (bit `i` for `FORMATS[i]`).
static FIRST: [u32; 256] = {
    assert!(FORMATS.len() <= 32);
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < FORMATS.len() {
        t[FORMATS[i].prefix[0] as usize] |= 1 << i;
        i += 1;
    }
    t
};

/// The most bytes a token match can span, counting the byte that ends its body.
pub(super) fn longest() -> usize {
    FORMATS
        .iter()
        .map(|f| f.prefix.len() + f.max.unwrap_or(f.min) + 1)
        .max()
        .unwrap_or(0)
}

/// A format whose prefix or body is still open.
#[derive(Clone, Copy)]
struct Open {
    format: u8,
    /// Bytes matched so far, prefix included.
    matched: usize,
    /// Whether any of them came from a `%XX` escape.
    escaped: bool,
}

/// Streaming matcher over all [`FORMATS`].
#[derive(Default)]
pub(super) struct Matcher {
    open: Vec<Open>,
    prev: u8,
}

/// A token found: its format and whether any of it was percent-encoded.
pub(super) type Hit = (&'static Format, bool);

impl Matcher {
    /// Feeds one (percent-decoded) byte; `escaped` says it came from a `%XX` escape.
    pub fn feed(&mut self, b: u8, escaped: bool, hits: &mut Vec<Hit>) {
        self.open.retain_mut(|o| advance(o, b, escaped, hits));
        let mut starts = FIRST[b as usize];
        if word(b) && word(self.prev) {
            starts = 0;
        }
        while starts != 0 {
            let i = starts.trailing_zeros();
            starts &= starts - 1;
            self.open.push(Open {
                format: i as u8,
                matched: 1,
                escaped,
            });
        }
        self.prev = b;
    }

    /// Bytes the longest open candidate has matched: a later hit starts within the last that
    /// many bytes (or after).
    pub fn open_len(&self) -> usize {
        self.open.iter().map(|o| o.matched).max().unwrap_or(0)
    }

    /// End of input: a body still open ends here.
    pub fn finish(&mut self, hits: &mut Vec<Hit>) {
        for o in self.open.drain(..) {
            let f = &FORMATS[o.format as usize];
            let n = o.matched.saturating_sub(f.prefix.len());
            if o.matched >= f.prefix.len() && f.max.is_some() && n >= f.min {
                hits.push((f, o.escaped));
            }
        }
        self.prev = 0;
    }
}

/// Moves one candidate on by a byte; false when it is done (found or dead).
fn advance(o: &mut Open, b: u8, escaped: bool, hits: &mut Vec<Hit>) -> bool {
    let f = &FORMATS[o.format as usize];
    if o.matched < f.prefix.len() {
        let want = f.prefix[o.matched];
        if !(b == want || (want == b' ' && b == b'+')) {
            return false;
        }
    } else if !(f.body)(b) {
        let n = o.matched - f.prefix.len();
        if f.max.is_some() && n >= f.min && !word(b) {
            hits.push((f, o.escaped));
        }
        return false;
    }
    o.matched += 1;
    o.escaped |= escaped;
    let n = o.matched.saturating_sub(f.prefix.len());
    match f.max {
        None if o.matched >= f.prefix.len() && n >= f.min => {
            hits.push((f, o.escaped));
            false
        }
        Some(max) => n <= max,
        None => true,
    }
}
