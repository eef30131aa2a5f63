//! The encodings a secret may travel in: percent-encoding (undone on the fly, so every mix of
//! escaped and literal bytes and either case of hex digits looks the same), and base64 (a named
//! secret's encoded forms are precomputed; runs in a URL or header are decoded for tokens).

use super::Encoding;

pub(super) const STD: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
pub(super) const URL: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Undoes `%XX` escapes (RFC 3986 §2.1) one byte at a time, across chunk boundaries.
#[derive(Default)]
pub(super) struct PercentDecoder {
    /// `%` and up to one hex digit seen, not yet decided.
    pending: [u8; 2],
    len: usize,
}

/// Decoded bytes out of one input byte, each with whether it came from an escape.
pub(super) type Out = ([(u8, bool); 3], usize);

impl PercentDecoder {
    /// Feeds one raw byte.
    pub fn push(&mut self, b: u8) -> Out {
        let mut out = ([(0, false); 3], 0);
        match self.len {
            0 if b == b'%' => self.hold(b),
            0 => emit(&mut out, b, false),
            1 if hex(b).is_some() => self.hold(b),
            _ => match (self.len, hex(self.pending[1]), hex(b)) {
                (2, Some(hi), Some(lo)) => {
                    self.len = 0;
                    emit(&mut out, hi << 4 | lo, true);
                }
                _ => {
                    // Not an escape after all: the held bytes were literal, and `b` starts afresh.
                    let held = std::mem::take(self);
                    for &h in &held.pending[..held.len] {
                        emit(&mut out, h, false);
                    }
                    let (more, n) = self.push(b);
                    for &(m, e) in &more[..n] {
                        emit(&mut out, m, e);
                    }
                }
            },
        }
        out
    }

    /// End of input: whatever is held was literal.
    pub fn finish(&mut self) -> Out {
        let mut out = ([(0, false); 3], 0);
        let held = std::mem::take(self);
        for &h in &held.pending[..held.len] {
            emit(&mut out, h, false);
        }
        out
    }

    fn hold(&mut self, b: u8) {
        self.pending[self.len] = b;
        self.len += 1;
    }
}

fn emit(out: &mut Out, b: u8, escaped: bool) {
    out.0[out.1] = (b, escaped);
    out.1 += 1;
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// `bytes` with everything but RFC 3986's unreserved characters as `%XX` (hex digits in
/// uppercase if `upper`).
pub(super) fn percent_encode(bytes: &[u8], upper: bool) -> Vec<u8> {
    let digits: &[u8; 16] = if upper {
        b"0123456789ABCDEF"
    } else {
        b"0123456789abcdef"
    };
    let mut out = Vec::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b);
        } else {
            out.extend_from_slice(&[
                b'%',
                digits[usize::from(b >> 4)],
                digits[usize::from(b & 15)],
            ]);
        }
    }
    out
}

/// All of `bytes` percent-decoded.
pub(super) fn percent_decode(bytes: &[u8]) -> Vec<u8> {
    let mut d = PercentDecoder::default();
    let mut v = Vec::with_capacity(bytes.len());
    for &b in bytes {
        let (o, n) = d.push(b);
        v.extend(o[..n].iter().map(|x| x.0));
    }
    let (o, n) = d.finish();
    v.extend(o[..n].iter().map(|x| x.0));
    v
}

/// Base64 without padding.
pub(super) fn base64(bytes: &[u8], alphabet: &[u8; 64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..=c.len() {
            out.push(alphabet[(n >> (18 - 6 * i) & 63) as usize]);
        }
    }
    out
}

/// The forms a secret's value is searched for in the percent-decoded stream, with their encoding.
///
/// Base64 of a value inside a longer base64 string depends on where the value starts within a
/// 3-byte group, so each of the three alignments is a pattern, keeping only the characters made
/// from the value's bits alone (neighbouring bytes change the first and last characters).
pub(super) fn forms(value: &[u8]) -> Vec<(Vec<u8>, Encoding)> {
    let plain = percent_decode(value);
    let mut forms = vec![(plain.clone(), Encoding::Plain)];
    if plain.contains(&b' ') {
        // HTML form encoding writes a space as `+`.
        let plus = plain
            .iter()
            .map(|&b| if b == b' ' { b'+' } else { b })
            .collect();
        forms.push((plus, Encoding::UrlEncoded));
    }
    for (alphabet, encoding) in [(STD, Encoding::Base64), (URL, Encoding::Base64Url)] {
        for align in 0..3 {
            let mut padded = vec![0; align];
            padded.extend_from_slice(value);
            let enc = base64(&padded, alphabet);
            let start = (8 * align).div_ceil(6);
            let end = 8 * (align + value.len()) / 6;
            forms.push((enc[start..end].to_vec(), encoding));
        }
    }
    // Inside a JSON document (a request body), a value with quotes, backslashes or line breaks
    // is escaped.
    if let Ok(text) = std::str::from_utf8(&plain)
        && let Ok(json) = serde_json::to_string(text)
        && json.len() != text.len() + 2
    {
        forms.push((
            json.as_bytes()[1..json.len() - 1].to_vec(),
            Encoding::JsonEscaped,
        ));
    }
    let mut unique: Vec<(Vec<u8>, Encoding)> = Vec::with_capacity(forms.len());
    for f in forms {
        if !unique.iter().any(|u| u.0 == f.0) {
            unique.push(f);
        }
    }
    unique
}

/// Runs of base64 characters at least `min` long in `bytes`, each decoded at all four
/// alignments (the run may begin with bytes that are not part of the encoded value, such as a
/// URL path's `/`), with the alphabet the run uses.
pub(super) fn base64_runs(bytes: &[u8], min: usize, mut each: impl FnMut(&[u8], Encoding)) {
    let is_b64 = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_');
    let mut decoded = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let len = bytes[i..].iter().take_while(|&&b| is_b64(b)).count();
        if len >= min {
            let run = &bytes[i..i + len];
            let url = run.iter().any(|&b| b == b'-' || b == b'_');
            let (alphabet, encoding) = if url {
                (URL, Encoding::Base64Url)
            } else {
                (STD, Encoding::Base64)
            };
            for skip in 0..4 {
                decoded.clear();
                decode_into(&run[skip..], alphabet, &mut decoded);
                each(&decoded, encoding);
            }
        }
        i += len.max(1);
    }
}

/// Decodes `run`, unpadded; a character outside `alphabet` decodes as zero bits.
fn decode_into(run: &[u8], alphabet: &[u8; 64], out: &mut Vec<u8>) {
    let value = |c: u8| alphabet.iter().position(|&a| a == c).unwrap_or(0) as u32;
    for g in run.chunks(4) {
        let n = g.iter().fold(0u32, |n, &c| n << 6 | value(c)) << (6 * (4 - g.len()));
        // 2, 3 or 4 characters carry 1, 2 or 3 whole bytes; a lone character carries none.
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..g.len().saturating_sub(1)]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (plain, enc) in [
            ("", ""),
            ("f", "Zg"),
            ("fo", "Zm8"),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg"),
            ("fooba", "Zm9vYmE"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes(), STD), enc.as_bytes());
        }
    }

    #[test]
    fn percent_decoding_keeps_what_is_not_an_escape() {
        assert_eq!(percent_decode(b"a%41%4a%4A%"), b"aAJJ%");
        assert_eq!(percent_decode(b"%%41%4%g%zz"), b"%A%4%g%zz");
        assert_eq!(percent_decode(b"100%"), b"100%");
        assert_eq!(percent_decode(b"%4"), b"%4");
    }
}
