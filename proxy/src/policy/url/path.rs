//! Request paths: percent-decoding (RFC 3986 §2.1), dot-segment removal (§5.2.4) and the one
//! canonical encoding that both request paths and rule literals are written in.
//!
//! Every escape is decoded, so `/%6dy-org` and `/my-org` are the same path, and a decoded `.` or
//! `..` is a dot segment like a literal one (servers decode before they resolve). What cannot be
//! decoded into one unambiguous path is refused, never guessed at: an encoded `/` (a server may or
//! may not split on it), a backslash (some servers treat it as `/`), NUL and other control
//! characters, invalid escapes, invalid UTF-8 (including overlong forms such as `%c0%ae`), a
//! `..;` segment (a dot segment to servers that strip path parameters, as in Orange Tsai's
//! "Breaking Parser Logic", Black Hat 2018), and `..` above the root. A refused path matches no rule.

/// Why a request path cannot be normalised. Caused by the client that sent the request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// Not origin-form: the path must start with `/`.
    #[error("does not start with '/'")]
    NotAbsolute,
    /// `%2F` inside a segment: `a%2Fb` is one segment to some servers and two to others.
    #[error("contains an encoded '/' (%2F) inside a segment")]
    EncodedSlash,
    /// A raw or encoded `\`, which some servers read as `/`.
    #[error("contains a backslash (raw or %5C)")]
    Backslash,
    /// NUL, another control character or a space, raw or encoded.
    #[error("contains NUL, a space or a control character")]
    Control,
    /// `%` not followed by two hex digits.
    #[error("{0:?} is not a valid percent-escape")]
    BadEscape(String),
    /// The decoded bytes are not UTF-8 (or are an overlong form).
    #[error("decodes to invalid UTF-8")]
    NotUtf8,
    /// More `..` segments than there are segments to remove.
    #[error("'..' climbs above the root")]
    AboveRoot,
    /// `..;x` or `.;x`: a dot segment to servers that strip `;` parameters (Tomcat, Jetty).
    #[error("has a '.' or '..' segment with ';' parameters")]
    DotParams,
    /// A raw `?` or `#`: the caller must pass the path without its query.
    #[error("contains '?' or '#' (pass the path without its query)")]
    QueryOrFragment,
}

/// Normalises a request path (origin-form, without its query) into its canonical text.
///
/// Percent-escapes are decoded, `.` and `..` segments resolved (a `..` above the root is an
/// error), and empty segments from duplicate slashes dropped. A trailing slash is kept:
/// `/a/b/` and `/a/b` stay different paths, as they are to most servers. The result is
/// re-encoded canonically (unreserved characters and `!$&'()+;=:@` as they are, everything else,
/// `%`, `*` and `,` included, as uppercase `%XX`), so it is a valid path, safe to log, and
/// normalising it again gives it back unchanged.
pub fn normalize_path(raw: &str) -> Result<String, PathError> {
    let rest = raw.strip_prefix('/').ok_or(PathError::NotAbsolute)?;
    let count = rest.split('/').count();
    let mut kept: Vec<String> = Vec::new();
    let mut trailing_slash = false;
    for (i, raw_segment) in rest.split('/').enumerate() {
        let segment = decode_segment(raw_segment)?;
        let is_last = i + 1 == count;
        trailing_slash = is_last;
        match segment.as_str() {
            "" | "." => {}
            ".." => {
                kept.pop().ok_or(PathError::AboveRoot)?;
            }
            _ => {
                kept.push(segment);
                trailing_slash = false;
            }
        }
    }
    let mut out = String::with_capacity(raw.len());
    for segment in &kept {
        out.push('/');
        encode_segment_into(segment, &mut out);
    }
    if kept.is_empty() || trailing_slash {
        out.push('/');
    }
    Ok(out)
}

/// Decodes one segment (text between slashes), refusing what [`normalize_path`] refuses.
pub(super) fn decode_segment(raw: &str) -> Result<String, PathError> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let decoded = bytes
                .get(i + 1..i + 3)
                .and_then(|h| Some((hex(h[0])? << 4) | hex(h[1])?))
                .ok_or_else(|| PathError::BadEscape(raw[i..].chars().take(3).collect()))?;
            match decoded {
                b'/' => return Err(PathError::EncodedSlash),
                _ => out.push(check_byte(decoded)?),
            }
            i += 3;
        } else {
            if matches!(b, b'?' | b'#') {
                return Err(PathError::QueryOrFragment);
            }
            out.push(check_byte(b)?);
            i += 1;
        }
    }
    let text = String::from_utf8(out).map_err(|_| PathError::NotUtf8)?;
    if text.chars().any(char::is_control) {
        return Err(PathError::Control);
    }
    if let Some((".." | ".", _)) = text.split_once(';') {
        return Err(PathError::DotParams);
    }
    Ok(text)
}

fn check_byte(b: u8) -> Result<u8, PathError> {
    match b {
        b'\\' => Err(PathError::Backslash),
        b' ' | 0x00..=0x1f | 0x7f => Err(PathError::Control),
        _ => Ok(b),
    }
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Appends `segment` in the canonical encoding: RFC 3986 unreserved characters and the
/// sub-delimiters `!$&'()+;=` plus `:@` as they are; every other byte as `%XX`. `*` and `,` are
/// encoded too, so a canonical path never looks like a glob or splits a rule list.
pub(super) fn encode_segment_into(segment: &str, out: &mut String) {
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()+;=:@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}
