//! Keeps secrets out of recorded command lines.
//!
//! Records are uploaded as job artifacts and read by many people, and command lines carry
//! credentials all the time: `curl -H "Authorization: Bearer …"`, `git clone
//! https://x-access-token:…@github.com/…`, `--password=…`, presigned URLs. Values are replaced by
//! [`MASK`]; what the argument was (a header name, an option name, the URL's host and path) stays.

/// What a redacted value is replaced with.
pub const MASK: &str = "***";

/// Headers whose values are credentials.
const SECRET_HEADERS: [&str; 4] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-api-key",
];
/// Option names (any case, without dashes) whose value is a credential.
const SECRET_OPTIONS: [&str; 8] = [
    "password",
    "passwd",
    "pass",
    "token",
    "secret",
    "apikey",
    "accesstoken",
    "auth",
];
/// Prefixes of well-known token formats (GitHub, Slack, npm, PyPI, GitLab).
const TOKEN_PREFIXES: [&str; 12] = [
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "xoxb-",
    "xoxp-",
    "xoxa-",
    "npm_",
    "pypi-",
    "glpat-",
];

/// What the previous argument says about this one.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Next {
    Plain,
    /// After `-H`/`--header`: a header, whose value goes if the header is a credential.
    Header,
    /// After `--password` and the like: a credential.
    Secret,
}

/// The command line with credentials masked.
pub fn argv(args: &[String]) -> Vec<String> {
    let mut next = Next::Plain;
    args.iter()
        .map(|arg| match std::mem::replace(&mut next, Next::Plain) {
            Next::Secret => MASK.to_string(),
            Next::Header => header(arg),
            Next::Plain => {
                let name = option_name(arg);
                let secret = name.is_some_and(is_secret_option);
                match arg.split_once('=') {
                    Some((opt, _)) if secret => return format!("{opt}={MASK}"),
                    None if arg == "-H" || name == Some("header") => next = Next::Header,
                    None if secret => next = Next::Secret,
                    _ => {}
                }
                mask_tokens(&mask_url(&mask_inline_headers(arg)))
            }
        })
        .collect()
}

/// `--password` → `password`; `-H` → `H`; not an option → `None`.
fn option_name(arg: &str) -> Option<&str> {
    let name = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-'))?;
    let name = name.split('=').next().unwrap_or(name);
    (!name.is_empty()).then_some(name)
}

fn is_secret_option(name: &str) -> bool {
    let n: String = name
        .chars()
        .filter(|c| *c != '-' && *c != '_')
        .flat_map(char::to_lowercase)
        .collect();
    SECRET_OPTIONS.iter().any(|s| n == *s || n.ends_with(s))
}

/// The argument after `-H`: a header keeps its name; a credential header loses its value.
fn header(arg: &str) -> String {
    match arg.split_once(':') {
        Some((name, _)) if SECRET_HEADERS.contains(&name.trim().to_ascii_lowercase().as_str()) => {
            format!("{name}: {MASK}")
        }
        _ => mask_tokens(&mask_url(arg)),
    }
}

/// `Authorization: …` inside a longer argument (a shell's `-c` script is one argument).
fn mask_inline_headers(arg: &str) -> String {
    let mut out = arg.to_string();
    for h in SECRET_HEADERS {
        let mut from = 0;
        while let Some(at) = out[from..].to_ascii_lowercase().find(&format!("{h}:")) {
            // Mask to the end of the line or of a quoted string.
            let start = from + at + h.len() + 1;
            let end = out[start..]
                .find(['\n', '"', '\''])
                .map_or(out.len(), |e| start + e);
            let masked = format!(" {MASK}");
            out.replace_range(start..end, &masked);
            from = start + masked.len();
        }
    }
    out
}

/// URLs lose userinfo and query strings: `https://user:tok@h/p?sig=…` → `https://***@h/p?***`.
fn mask_url(arg: &str) -> String {
    let mut out = String::with_capacity(arg.len());
    let mut rest = arg;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        let end = after
            .find(|c: char| c.is_whitespace() || c == '"' || c == '\'')
            .unwrap_or(after.len());
        let (url, tail) = after.split_at(end);
        let authority_end = url.find(['/', '?', '#']).unwrap_or(url.len());
        let (authority, path) = url.split_at(authority_end);
        match authority.rsplit_once('@') {
            Some((_, host)) => {
                out.push_str(MASK);
                out.push('@');
                out.push_str(host);
            }
            None => out.push_str(authority),
        }
        match path.split_once('?') {
            Some((p, _)) => {
                out.push_str(p);
                out.push('?');
                out.push_str(MASK);
            }
            None => out.push_str(path),
        }
        rest = tail;
    }
    out.push_str(rest);
    out
}

/// Well-known token shapes anywhere in the argument, plus AWS access key ids.
fn mask_tokens(arg: &str) -> String {
    let mut out = arg.to_string();
    for prefix in TOKEN_PREFIXES {
        let mut from = 0;
        while let Some(i) = out[from..].find(prefix).map(|i| i + from) {
            let body = i + prefix.len();
            let len = out[body..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
                .unwrap_or(out.len() - body);
            if len >= 8 {
                out.replace_range(body..body + len, MASK);
            }
            from = body;
        }
    }
    mask_aws_key_ids(&out)
}

/// `AKIA` / `ASIA` followed by 16 upper-case letters or digits.
fn mask_aws_key_ids(arg: &str) -> String {
    let b = arg.as_bytes();
    let mut out = String::with_capacity(arg.len());
    let mut i = 0;
    while i < b.len() {
        let key = b.get(i..i + 20).filter(|w| {
            (w.starts_with(b"AKIA") || w.starts_with(b"ASIA"))
                && w[4..]
                    .iter()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        });
        if key.is_some() {
            out.push_str(&arg[i..i + 4]);
            out.push_str(MASK);
            i += 20;
        } else {
            let ch = arg[i..].chars().next().unwrap_or('?');
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(args: &[&str]) -> Vec<String> {
        argv(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn headers_keep_their_name_lose_secret_values() {
        assert_eq!(
            r(&[
                "curl",
                "-H",
                "Authorization: Bearer abc.def",
                "-H",
                "Accept: */*",
                "https://h/"
            ]),
            [
                "curl",
                "-H",
                "Authorization: ***",
                "-H",
                "Accept: */*",
                "https://h/"
            ]
        );
        assert_eq!(
            r(&["curl", "--header", "cookie: a=b"]),
            ["curl", "--header", "cookie: ***"]
        );
        assert_eq!(
            r(&[
                "sh",
                "-c",
                "curl -H 'Authorization: token ghp_x' https://h/"
            ]),
            ["sh", "-c", "curl -H 'Authorization: ***' https://h/"]
        );
    }

    #[test]
    fn urls_lose_userinfo_and_query() {
        assert_eq!(
            r(&[
                "git",
                "clone",
                "https://x-access-token:ghs_abcdefgh12345678@github.com/o/r.git"
            ]),
            ["git", "clone", "https://***@github.com/o/r.git"]
        );
        assert_eq!(
            r(&[
                "curl",
                "https://b.s3.amazonaws.com/k?X-Amz-Signature=abc&X-Amz-Credential=d"
            ]),
            ["curl", "https://b.s3.amazonaws.com/k?***"]
        );
        assert_eq!(
            r(&["curl", "http://h.example/p"]),
            ["curl", "http://h.example/p"]
        );
    }

    #[test]
    fn secret_options_and_tokens() {
        assert_eq!(r(&["x", "--password=hunter2"]), ["x", "--password=***"]);
        assert_eq!(
            r(&["x", "--token", "abc", "next"]),
            ["x", "--token", "***", "next"]
        );
        assert_eq!(
            r(&["x", "--password", "user:pass"]),
            ["x", "--password", "***"]
        );
        assert_eq!(r(&["x", "--github-token=zz"]), ["x", "--github-token=***"]);
        assert_eq!(
            r(&["echo", "ghp_abcdefghijklmnopqrstuvwxyz0123456789"]),
            ["echo", "ghp_***"]
        );
        assert_eq!(
            r(&["env", "AWS=AKIAABCDEFGHIJKLMNOP"]),
            ["env", "AWS=AKIA***"]
        );
        assert_eq!(
            r(&["ls", "-la", "--color=auto"]),
            ["ls", "-la", "--color=auto"]
        );
    }

    #[test]
    fn odd_input_does_not_panic() {
        for s in [
            "",
            "-",
            "--",
            "--=",
            "://",
            "a://@",
            "x://u@",
            "é://ü@ö?ä",
            "Authorization:",
            "AKIA",
            "ghp_",
        ] {
            let _ = r(&[s, s]);
        }
    }
}
