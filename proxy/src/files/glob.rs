//! gitignore-style path globs, for the policy's `file-monitoring.ignore` list.
//!
//! The subset of `gitignore(5)` patterns a policy needs, without negation: `*` and `?` match
//! within one path component, `**` as a whole component matches any number of components, a
//! pattern with a `/` other than a trailing one is anchored at the workspace root, one without
//! matches a name at any depth, and a trailing `/` matches directories only. A pattern that
//! matches a directory covers everything below it. Paths are relative to the workspace, with `/`
//! separators.

/// One checked pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    text: String,
    parts: Vec<String>,
    dir_only: bool,
}

/// Why a pattern is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GlobError {
    /// Empty, or only slashes.
    #[error("empty pattern")]
    Empty,
    /// `!pattern`: re-including is not supported.
    #[error("negated patterns ('!') are not supported; list only what to ignore")]
    Negation,
    /// `..` or `.` components.
    #[error("'.' and '..' components are not allowed; patterns are relative to the workspace")]
    DotComponent,
}

impl std::str::FromStr for Glob {
    type Err = GlobError;

    fn from_str(text: &str) -> Result<Self, GlobError> {
        let t = text.trim();
        if t.starts_with('!') {
            return Err(GlobError::Negation);
        }
        let dir_only = t.ends_with('/');
        let body = t.trim_end_matches('/');
        let anchored = body.contains('/');
        let body = body.trim_start_matches('/');
        if body.is_empty() {
            return Err(GlobError::Empty);
        }
        let mut parts: Vec<String> = body
            .split('/')
            .filter(|p| !p.is_empty())
            .map(String::from)
            .collect();
        if parts.iter().any(|p| p == "." || p == "..") {
            return Err(GlobError::DotComponent);
        }
        if !anchored {
            parts.insert(0, "**".into());
        }
        Ok(Glob {
            text: t.to_string(),
            parts,
            dir_only,
        })
    }
}

impl std::fmt::Display for Glob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl Glob {
    /// Does the pattern match `path` (a file) or one of the directories above it?
    pub fn matches(&self, path: &str) -> bool {
        let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
        // Each proper prefix is a directory; the whole path is the file itself.
        (1..=comps.len()).any(|n| {
            let is_dir = n < comps.len();
            (is_dir || !self.dir_only) && components(&self.parts, &comps[..n])
        })
    }
}

impl Glob {
    /// Does the pattern match the directory `dir` or one above it?
    pub fn matches_dir(&self, dir: &str) -> bool {
        let comps: Vec<&str> = dir.split('/').filter(|c| !c.is_empty()).collect();
        (1..=comps.len()).any(|n| components(&self.parts, &comps[..n]))
    }
}

/// Does any of `globs` match `path`?
pub fn any_match(globs: &[Glob], path: &str) -> bool {
    globs.iter().any(|g| g.matches(path))
}

fn components(pat: &[String], path: &[&str]) -> bool {
    match pat.split_first() {
        None => path.is_empty(),
        Some((p, rest)) if p == "**" => {
            (0..=path.len()).any(|skip| components(rest, &path[skip..]))
        }
        Some((p, rest)) => match path.split_first() {
            Some((c, more)) => component(p.as_bytes(), c.as_bytes()) && components(rest, more),
            None => false,
        },
    }
}

/// `*` and `?` within one component (`**` inside a component acts as `*`).
fn component(pat: &[u8], name: &[u8]) -> bool {
    match pat.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => (0..=name.len()).any(|skip| component(rest, &name[skip..])),
        Some((b'?', rest)) => !name.is_empty() && component(rest, &name[1..]),
        Some((c, rest)) => name.first() == Some(c) && component(rest, &name[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(s: &str) -> Glob {
        s.parse().unwrap()
    }

    #[test]
    fn gitignore_semantics() {
        let cases: &[(&str, &str, bool)] = &[
            ("*.log", "build.log", true),
            ("*.log", "a/b/build.log", true),
            ("*.log", "a/build.log/x", true),
            ("*.log", "a/build.txt", false),
            ("target", "target/debug/x.o", true),
            ("target", "src/target", true),
            ("/target", "src/target", false),
            ("/target", "target/x", true),
            ("out/", "out", false),
            ("out/", "out/a", true),
            ("out/", "a/out/b", true),
            ("docs/*.md", "docs/a.md", true),
            ("docs/*.md", "x/docs/a.md", false),
            ("docs/*.md", "docs/sub/a.md", false),
            ("docs/**/*.md", "docs/sub/deep/a.md", true),
            ("docs/**/*.md", "docs/a.md", true),
            ("**/gen/*.rs", "a/b/gen/x.rs", true),
            ("file?.txt", "file1.txt", true),
            ("file?.txt", "file10.txt", false),
        ];
        for (pat, path, want) in cases {
            assert_eq!(g(pat).matches(path), *want, "{pat} vs {path}");
        }
        assert!(g("out/").matches_dir("out"));
        assert!(g("out/").matches_dir("a/out/b"));
        assert!(g("*.d").matches_dir("x.d"));
        assert!(!g("/out").matches_dir("a/out"));
    }

    #[test]
    fn bad_patterns_are_refused() {
        assert_eq!("!x".parse::<Glob>(), Err(GlobError::Negation));
        assert_eq!("/".parse::<Glob>(), Err(GlobError::Empty));
        assert_eq!("  ".parse::<Glob>(), Err(GlobError::Empty));
        assert_eq!("../x".parse::<Glob>(), Err(GlobError::DotComponent));
    }

    #[test]
    fn pathological_patterns_finish() {
        let p = g("**/**/**/**/*a*a*a*a*a*b");
        assert!(!p.matches(&"a/".repeat(12).to_string().replace('/', "a/")));
    }
}
