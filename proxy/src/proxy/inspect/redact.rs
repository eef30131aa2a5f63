//! What a request record may say about a URL.
//!
//! Signed URLs carry their credential in the query string (S3's `X-Amz-Signature`, Azure's SAS
//! `sig`, GCS's `X-Goog-Signature`, OAuth's `access_token`, …). A request record keeps the full
//! URL — the point of inspection — but with the values of such parameters replaced by
//! `REDACTED`; parameter names and every other value stay, so a reader still sees what was asked.

/// Query parameters whose values are credentials (compared case-insensitively). A parameter
/// whose name *ends* with one of [`SUFFIXES`] is redacted too.
const NAMES: &[&str] = &[
    "sig",
    "signature",
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
    "x-goog-signature",
    "x-goog-credential",
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "auth",
    "authorization",
    "code",
    "key",
    "api_key",
    "apikey",
    "password",
    "passwd",
    "secret",
    "client_secret",
    "session",
    "sessionid",
    "jwt",
    "credential",
    "credentials",
    "pass",
    "pwd",
    "accesskey",
    "xjfrogartapi",
];
/// Name endings that mark a credential, compared on the name's letters and digits only.
const SUFFIXES: &[&str] = &[
    "token",
    "secret",
    "password",
    "passwd",
    "signature",
    "key",
    "credential",
    "credentials",
    "sessionid",
];

/// `https://host[:port]` + `path_and_query` with credential-bearing query values redacted.
pub fn url(scheme: &str, authority: &str, path_and_query: &str) -> String {
    format!(
        "{scheme}://{authority}{}",
        path_and_query_redacted(path_and_query)
    )
}

/// The path as sent, and the query with credential values replaced by `REDACTED`. A fragment
/// never reaches a server, so none is expected; anything after `#` is dropped all the same.
pub fn path_and_query_redacted(target: &str) -> String {
    let target = target.split('#').next().unwrap_or(target);
    let Some((path, query)) = target.split_once('?') else {
        return target.to_string();
    };
    // `&` separates parameters, and so does `;` for many servers (the W3C's old advice).
    let mut out = String::with_capacity(query.len());
    for (i, pair) in query.split(['&', ';']).enumerate() {
        if i > 0 {
            // Keep the separator that was there.
            let at = query_separator_at(query, i);
            out.push(at);
        }
        match pair.split_once('=') {
            Some((name, _)) if secret(name) => {
                out.push_str(name);
                out.push_str("=REDACTED");
            }
            _ => out.push_str(pair),
        }
    }
    format!("{path}?{out}")
}

/// The `n`-th separator (1-based) of `query`.
fn query_separator_at(query: &str, n: usize) -> char {
    query
        .chars()
        .filter(|c| *c == '&' || *c == ';')
        .nth(n - 1)
        .unwrap_or('&')
}

fn secret(name: &str) -> bool {
    let decoded = percent_decoded_lower(name);
    // Letters and digits only: `X-Amz-Signature`, `x_amz_signature`, `token[]` all compare alike.
    let bare: String = decoded
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    NAMES.iter().any(|n| {
        let n: String = n.chars().filter(char::is_ascii_alphanumeric).collect();
        n == bare
    }) || SUFFIXES.iter().any(|s| bare.ends_with(s))
}

/// Lowercase, with `%XX` escapes decoded (so `X%2DAmz%2DSignature` is still caught).
fn percent_decoded_lower(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).to_ascii_lowercase()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_url_values_are_redacted() {
        let cases = [
            ("/a/b", "/a/b"),
            ("/a?x=1&y=2", "/a?x=1&y=2"),
            (
                "/o?X-Amz-Algorithm=AWS4&X-Amz-Credential=AKIA%2F1&X-Amz-Signature=abc",
                "/o?X-Amz-Algorithm=AWS4&X-Amz-Credential=REDACTED&X-Amz-Signature=REDACTED",
            ),
            (
                "/c/b?sv=2021&se=2026&sp=r&sig=XyZ%3D",
                "/c/b?sv=2021&se=2026&sp=r&sig=REDACTED",
            ),
            (
                "/cb?access_token=t&state=s",
                "/cb?access_token=REDACTED&state=s",
            ),
            ("/x?GITHUB_TOKEN=ghp_x", "/x?GITHUB_TOKEN=REDACTED"),
            ("/x?my_api_key=1", "/x?my_api_key=REDACTED"),
            (
                "/x?X%2DAmz%2DSignature=1",
                "/x?X%2DAmz%2DSignature=REDACTED",
            ),
            ("/x?flag&sig=", "/x?flag&sig=REDACTED"),
            ("/x?a=1#frag", "/x?a=1"),
            ("/x?a=1;token=S1", "/x?a=1;token=REDACTED"),
            (
                "/x?accessKey=S&pwd=S&pass=S",
                "/x?accessKey=REDACTED&pwd=REDACTED&pass=REDACTED",
            ),
            (
                "/x?credentials=S&session_id=S",
                "/x?credentials=REDACTED&session_id=REDACTED",
            ),
            (
                "/x?token[]=S&X-JFrog-Art-Api=S",
                "/x?token[]=REDACTED&X-JFrog-Art-Api=REDACTED",
            ),
            (
                "/x?page=2&sort=name&q=key+words",
                "/x?page=2&sort=name&q=key+words",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(path_and_query_redacted(input), want, "{input}");
        }
        assert_eq!(
            url("https", "h.example", "/p?token=1"),
            "https://h.example/p?token=REDACTED"
        );
    }
}
