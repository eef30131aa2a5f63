//! Path globs: `*` within one segment, `**` across whole segments.
//!
//! A rule's path is split into segments like a request path and each literal part is decoded
//! with the same rules as request paths, so a rule and a request compare as decoded text and no
//! spelling of a path can match differently from another. Matching walks segments, never
//! characters across a `/`, so `/my-org/**` cannot match `/my-org-evil/x`.

use super::{
    UrlRuleReason,
    path::{decode_segment, encode_segment_into},
};

/// One segment of a rule's path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum Segment {
    /// `**`: zero or more whole segments.
    Any,
    /// Decoded literal parts with a `*` (zero or more characters, never `/`) between each two;
    /// one part means no `*`.
    Glob(Vec<String>),
}

/// Parses a rule path (what follows its leading `/`, without query) into segments. Duplicate slashes are
/// dropped like in requests; a trailing slash is kept as a final empty segment; dot segments are
/// refused, since a rule is written once and should be written plainly.
pub(super) fn parse(rest: &str) -> Result<Vec<Segment>, UrlRuleReason> {
    let count = rest.split('/').count();
    let mut segments = Vec::new();
    for (i, raw) in rest.split('/').enumerate() {
        if raw == "**" {
            segments.push(Segment::Any);
            continue;
        }
        if raw.contains("**") {
            return Err(UrlRuleReason::DoubleStar);
        }
        let parts = raw
            .split('*')
            .map(decode_segment)
            .collect::<Result<Vec<_>, _>>()
            .map_err(UrlRuleReason::Path)?;
        if let [only] = parts.as_slice() {
            match only.as_str() {
                "" if i + 1 < count => continue,
                "." | ".." => return Err(UrlRuleReason::DotSegment),
                _ => {}
            }
        }
        segments.push(Segment::Glob(parts));
    }
    Ok(segments)
}

/// Writes segments back as a path: canonical encoding for literals, which never contains `*`,
/// `/` or `,`, so the text parses back to the same segments.
pub(super) fn write(segments: &[Segment], out: &mut String) {
    for segment in segments {
        out.push('/');
        match segment {
            Segment::Any => out.push_str("**"),
            Segment::Glob(parts) => {
                for (i, part) in parts.iter().enumerate() {
                    if i > 0 {
                        out.push('*');
                    }
                    encode_segment_into(part, out);
                }
            }
        }
    }
}

/// Whether a normalised path (as [`super::normalize_path`] returns) matches the pattern. A path
/// that does not decode (not normalised by the caller) matches nothing.
pub(super) fn matches(pattern: &[Segment], normalized_path: &str) -> bool {
    let Some(rest) = normalized_path.strip_prefix('/') else {
        return false;
    };
    let Ok(segments) = rest
        .split('/')
        .map(decode_segment)
        .collect::<Result<Vec<_>, _>>()
    else {
        return false;
    };
    match_segments(pattern, &segments)
}

/// Wildcard matching over segments, `**` as the star: greedy, backtracking only to the last
/// `**` seen, so O(pattern × path) at worst.
fn match_segments(pattern: &[Segment], segments: &[String]) -> bool {
    let (mut p, mut s) = (0, 0);
    let mut retry: Option<(usize, usize)> = None;
    while s < segments.len() {
        match pattern.get(p) {
            Some(Segment::Any) => {
                retry = Some((p + 1, s));
                p += 1;
            }
            Some(Segment::Glob(parts)) if glob(parts, &segments[s]) => {
                p += 1;
                s += 1;
            }
            _ => match retry {
                Some((after_any, absorbed)) => {
                    retry = Some((after_any, absorbed + 1));
                    p = after_any;
                    s = absorbed + 1;
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|x| *x == Segment::Any)
}

/// Whether one decoded segment matches literal parts joined by `*`.
fn glob(parts: &[String], segment: &str) -> bool {
    let Some((first, rest)) = parts.split_first() else {
        return false;
    };
    let Some((last, middle)) = rest.split_last() else {
        return segment == first;
    };
    let Some(mut tail) = segment.strip_prefix(first.as_str()) else {
        return false;
    };
    for part in middle {
        match tail.find(part.as_str()) {
            Some(at) => tail = &tail[at + part.len()..],
            None => return false,
        }
    }
    tail.ends_with(last.as_str())
}
