//! Table-driven tests of URL rules: parsing, canonical text, path normalisation (with the
//! encoding and dot-segment tricks a rule must not be bypassed by) and matching.

use super::*;
use crate::policy::EndpointReason;

fn rule(text: &str) -> UrlRule {
    text.parse()
        .unwrap_or_else(|e| panic!("{text:?} should parse: {e}"))
}

fn reason(text: &str) -> UrlRuleReason {
    match text.parse::<UrlRule>() {
        Ok(r) => panic!("{text:?} should not parse, got {r}"),
        Err(e) => {
            assert_eq!(e.entry, text);
            e.reason
        }
    }
}

#[test]
fn parses_and_writes_canonical_text() {
    let cases = [
        (
            "GET https://github.com/my-org/**",
            "GET https://github.com/my-org/**",
        ),
        (
            "https://uploads.example.com/*",
            "https://uploads.example.com/*",
        ),
        ("get HTTPS://GitHub.COM./a", "GET https://github.com/a"),
        (
            "  POST   https://h.example:443/x  ",
            "POST https://h.example/x",
        ),
        ("https://h.example:8443/x", "https://h.example:8443/x"),
        ("http://h.example/x", "http://h.example/x"),
        ("http://h.example:80/x", "http://h.example/x"),
        ("http://h.example:443/x", "http://h.example:443/x"),
        ("https://*.example.com/**", "https://*.example.com/**"),
        ("https://h.example/", "https://h.example/"),
        ("https://h.example//a//b/", "https://h.example/a/b/"),
        (
            "https://h.example/%6Dy-org/%7euser",
            "https://h.example/my-org/~user",
        ),
        ("https://h.example/a%2Ab", "https://h.example/a%2Ab"),
        ("https://h.example/a,b", "https://h.example/a%2Cb"),
        ("https://h.example/v*.tar.gz", "https://h.example/v*.tar.gz"),
        (
            "https://h.example/a/**/b/*-*",
            "https://h.example/a/**/b/*-*",
        ),
        (
            "M-SEARCH https://h.example/é",
            "M-SEARCH https://h.example/%C3%A9",
        ),
    ];
    for (text, canonical) in cases {
        let parsed = rule(text);
        assert_eq!(parsed.to_string(), canonical, "{text:?}");
        assert_eq!(rule(canonical), parsed, "round trip of {text:?}");
    }
}

#[test]
fn accessors() {
    let r = rule("get https://GitHub.com/x");
    assert_eq!(r.method(), Some("GET"));
    assert_eq!(r.scheme(), Scheme::Https);
    assert_eq!(r.host(), &Host::Exact("github.com".into()));
    assert_eq!(r.port(), 443);
    assert_eq!(r.endpoint().to_string(), "github.com");
    let r = rule("http://*.example.com/x");
    assert_eq!(r.method(), None);
    assert_eq!(r.host(), &Host::Wildcard("example.com".into()));
    assert_eq!(r.port(), 80);
    assert_eq!(r.endpoint().to_string(), "*.example.com:80");
}

#[test]
fn refuses_bad_entries() {
    use UrlRuleReason as R;
    let cases = [
        ("", R::Empty),
        ("   ", R::Empty),
        ("github.com", R::NotUrl),
        ("GET github.com/x", R::NotUrl),
        ("GET", R::NotUrl),
        ("GET POST https://h.example/", R::Space),
        ("https://h.example/a b", R::Space),
        ("G/T https://h.example/", R::Method("G/T".into())),
        ("1GET https://h.example/", R::Method("1GET".into())),
        ("ftp://h.example/", R::Scheme("ftp".into())),
        ("wss://h.example/", R::Scheme("wss".into())),
        ("https://user@h.example/", R::UserInfo),
        ("https://1.2.3.4/x", R::Address),
        ("https://[::1]/x", R::Address),
        ("https://::1/x", R::Host(EndpointReason::Colons)),
        ("https:///x", R::Host(EndpointReason::Empty)),
        ("https://:443/x", R::Host(EndpointReason::Empty)),
        ("https://a..b/x", R::Host(EndpointReason::EmptyLabel)),
        ("https://h*.example/x", R::Host(EndpointReason::Star)),
        ("https://h.example:0/x", R::Port("0".into())),
        ("https://h.example:65536/x", R::Port("65536".into())),
        ("https://h.example:+1/x", R::Port("+1".into())),
        ("https://h.example:/x", R::Port("".into())),
        ("https://h.example", R::NoPath("https://h.example".into())),
        ("https://h.example?q", R::Query),
        ("https://h.example/x?q=1", R::Query),
        ("https://h.example/x#top", R::Query),
        ("https://h.example/a**", R::DoubleStar),
        ("https://h.example/***", R::DoubleStar),
        ("https://h.example/a/../b", R::DotSegment),
        ("https://h.example/./b", R::DotSegment),
        ("https://h.example/%2e%2E/b", R::DotSegment),
        ("https://h.example/a%2Fb", R::Path(PathError::EncodedSlash)),
        (
            "https://h.example/a%zz",
            R::Path(PathError::BadEscape("%zz".into())),
        ),
        ("https://h.example/a%c0%ae", R::Path(PathError::NotUtf8)),
        ("https://h.example/a%00", R::Path(PathError::Control)),
        ("https://h.example/a\\b", R::Path(PathError::Backslash)),
    ];
    for (text, want) in cases {
        assert_eq!(reason(text), want, "{text:?}");
    }
}

#[test]
fn errors_quote_the_entry() {
    let err = "https://h.example".parse::<UrlRule>().unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid URL rule \"https://h.example\": has no path; write https://h.example/** \
         for every path or https://h.example/ for the root only"
    );
    let err = "https://h.example/a%2Fb".parse::<UrlRule>().unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid URL rule \"https://h.example/a%2Fb\": path contains an encoded '/' (%2F) inside \
         a segment"
    );
}

#[test]
fn lists_split_on_commas_and_newlines_not_spaces() {
    let list =
        "GET https://github.com/my-org/**, https://a.example/x\n\n  POST https://b.example/y\r\n,";
    let rules = parse_url_rule_list(list).unwrap();
    let texts: Vec<String> = rules.iter().map(ToString::to_string).collect();
    assert_eq!(
        texts,
        [
            "GET https://github.com/my-org/**",
            "https://a.example/x",
            "POST https://b.example/y"
        ]
    );
    let errs = parse_url_rule_list("https://ok.example/, ftp://x/\nhttps://y.example").unwrap_err();
    let entries: Vec<&str> = errs.iter().map(|e| e.entry.as_str()).collect();
    assert_eq!(entries, ["ftp://x/", "https://y.example"]);
    assert_eq!(parse_url_rule_list(" , \n").unwrap(), []);
}

#[test]
fn normalises_paths() {
    let cases = [
        ("/", "/"),
        ("/my-org/x", "/my-org/x"),
        ("/My-Org", "/My-Org"),
        ("/my-org/../other/x", "/other/x"),
        ("/my-org/%2e%2e/other", "/other"),
        ("/my-org/.%2E/other", "/other"),
        ("//my-org//x", "/my-org/x"),
        ("/my-org/./x", "/my-org/x"),
        ("/my-org/x/", "/my-org/x/"),
        ("/my-org/x//", "/my-org/x/"),
        ("/my-org/x/.", "/my-org/x/"),
        ("/my-org/x/..", "/my-org/"),
        ("/my-org/..", "/"),
        ("/my-org/%2e", "/my-org/"),
        ("//", "/"),
        ("/%6d%79-org", "/my-org"),
        ("/a%25b", "/a%25b"),
        ("/a%252e%252e", "/a%252e%252e"),
        ("/%252e%252e/x", "/%252e%252e/x"),
        ("/a*b,c", "/a%2Ab%2Cc"),
        ("/é", "/%C3%A9"),
        ("/%c3%a9", "/%C3%A9"),
        ("/a+b;c=d:@!$&'()~", "/a+b;c=d:@!$&'()~"),
        ("/...", "/..."),
        ("/a/.../b", "/a/.../b"),
        ("/a;b/..a;/.a", "/a;b/..a;/.a"),
        ("/<a>", "/%3Ca%3E"),
    ];
    for (raw, want) in cases {
        let got = normalize_path(raw).unwrap_or_else(|e| panic!("{raw:?}: {e}"));
        assert_eq!(got, want, "{raw:?}");
        assert_eq!(
            normalize_path(&got).as_deref(),
            Ok(want),
            "idempotent on {raw:?}"
        );
    }
}

#[test]
fn refuses_ambiguous_paths() {
    use PathError as P;
    let cases = [
        ("", P::NotAbsolute),
        ("my-org/x", P::NotAbsolute),
        ("*", P::NotAbsolute),
        ("https://h.example/x", P::NotAbsolute),
        ("/my-org/%2E%2E%2Fother", P::EncodedSlash),
        ("/my-org%2fx", P::EncodedSlash),
        ("/my-org\\..\\x", P::Backslash),
        ("/my-org/%5c../x", P::Backslash),
        ("/a%00", P::Control),
        ("/a\0", P::Control),
        ("/a%0Ab", P::Control),
        ("/a%7f", P::Control),
        ("/a b", P::Control),
        ("/a%20b", P::Control),
        ("/a%c2%85", P::Control),
        ("/a%zz", P::BadEscape("%zz".into())),
        ("/a%2", P::BadEscape("%2".into())),
        ("/a%", P::BadEscape("%".into())),
        ("/a%é", P::BadEscape("%é".into())),
        ("/%c0%ae%c0%ae/x", P::NotUtf8),
        ("/%e0%80%ae", P::NotUtf8),
        ("/%ff", P::NotUtf8),
        ("/..", P::AboveRoot),
        ("/../x", P::AboveRoot),
        ("/a/../../x", P::AboveRoot),
        ("/%2e%2e/x", P::AboveRoot),
        ("/a/..;/b", P::DotParams),
        ("/a/.;x/b", P::DotParams),
        ("/a/%2e%2e;x/b", P::DotParams),
        ("/a?b", P::QueryOrFragment),
        ("/a#b", P::QueryOrFragment),
    ];
    for (raw, want) in cases {
        assert_eq!(normalize_path(raw), Err(want), "{raw:?}");
    }
}

/// Matches a request written `METHOD scheme://host:port/raw-path` (the port always written)
/// against a rule, normalising the path first: one that does not normalise matches nothing.
fn allows(rule_text: &str, request: &str) -> bool {
    let (method, url) = request.split_once(' ').unwrap();
    let (scheme, rest) = url.split_once("://").unwrap();
    let (authority, path) = rest.split_at(rest.find('/').unwrap());
    let (host, port) = authority.rsplit_once(':').unwrap();
    let port = port.parse().unwrap();
    normalize_path(path).is_ok_and(|p| rule(rule_text).matches(method, scheme, host, port, &p))
}

#[test]
fn matches_requests() {
    let org = "GET https://github.com/my-org/**";
    let cases: &[(&str, &str, bool)] = &[
        (
            org,
            "GET https://github.com:443/my-org/repo/info/refs",
            true,
        ),
        (org, "get HTTPS://GitHub.com.:443/my-org/repo", true),
        (org, "GET https://github.com:443/my-org", true),
        (org, "GET https://github.com:443/my-org/", true),
        (org, "GET https://github.com:443//my-org//repo", true),
        (org, "GET https://github.com:443/my-org/./repo", true),
        (org, "GET https://github.com:443/%6dy-org/x", true),
        (org, "GET https://github.com:443/my-org/a;b", true),
        (org, "GET https://github.com:443/my-org-evil/x", false),
        (org, "GET https://github.com:443/my-orgx", false),
        (org, "GET https://github.com:443/My-Org/x", false),
        (org, "GET https://github.com:443/my-org/../other/x", false),
        (org, "GET https://github.com:443/my-org/%2e%2e/other", false),
        (
            org,
            "GET https://github.com:443/my-org/%2E%2E%2Fother",
            false,
        ),
        (org, "GET https://github.com:443/my-org/..;/other", false),
        (org, "GET https://github.com:443/my-org%2Fx", false),
        (
            org,
            "GET https://github.com:443/my-org/%c0%ae%c0%ae/x",
            false,
        ),
        (org, "GET https://github.com:443/my-org/x%00", false),
        (org, "GET https://github.com:443/my-org\\..\\x", false),
        (org, "GET https://github.com:443/", false),
        (org, "POST https://github.com:443/my-org/x", false),
        (org, "GET http://github.com:443/my-org/x", false),
        (org, "GET https://github.com:8443/my-org/x", false),
        (org, "GET https://gist.github.com:443/my-org/x", false),
        (org, "GET https://github.com.evil:443/my-org/x", false),
        (
            "https://u.example/*",
            "PUT https://u.example:443/file",
            true,
        ),
        ("https://u.example/*", "PUT https://u.example:443/", true),
        (
            "https://u.example/*",
            "PUT https://u.example:443/a/b",
            false,
        ),
        ("https://u.example/*", "PUT https://u.example:443/a/", false),
        ("https://u.example/**", "GET https://u.example:443/", true),
        (
            "https://u.example/**",
            "GET https://u.example:443/a/b/c/",
            true,
        ),
        ("https://u.example/", "GET https://u.example:443/", true),
        ("https://u.example/", "GET https://u.example:443//", true),
        ("https://u.example/", "GET https://u.example:443/a", false),
        ("https://u.example/a", "GET https://u.example:443/a", true),
        ("https://u.example/a", "GET https://u.example:443/a/", false),
        ("https://u.example/a/", "GET https://u.example:443/a/", true),
        ("https://u.example/a/", "GET https://u.example:443/a", false),
        (
            "https://u.example/v*.tar.gz",
            "GET https://u.example:443/v1.2.tar.gz",
            true,
        ),
        (
            "https://u.example/v*.tar.gz",
            "GET https://u.example:443/v.tar.gz",
            true,
        ),
        (
            "https://u.example/v*.tar.gz",
            "GET https://u.example:443/v1.tar.gz.sig",
            false,
        ),
        (
            "https://u.example/v*.tar.gz",
            "GET https://u.example:443/x/v1.tar.gz",
            false,
        ),
        (
            "https://u.example/v*.tar.gz",
            "GET https://u.example:443/v1/x.tar.gz",
            false,
        ),
        (
            "https://u.example/v*.tar.gz",
            "GET https://u.example:443/v1%2Fx.tar.gz",
            false,
        ),
        (
            "https://u.example/*a*a",
            "GET https://u.example:443/aa",
            true,
        ),
        (
            "https://u.example/*a*a",
            "GET https://u.example:443/a",
            false,
        ),
        (
            "https://u.example/*é",
            "GET https://u.example:443/x%C3%A9",
            true,
        ),
        (
            "https://u.example/*A9",
            "GET https://u.example:443/%C3%A9",
            false,
        ),
        (
            "https://u.example/a/**/z",
            "GET https://u.example:443/a/z",
            true,
        ),
        (
            "https://u.example/a/**/z",
            "GET https://u.example:443/a/b/c/z",
            true,
        ),
        (
            "https://u.example/a/**/z",
            "GET https://u.example:443/a/z/b",
            false,
        ),
        (
            "https://u.example/a/**/z",
            "GET https://u.example:443/a/b/zz",
            false,
        ),
        (
            "https://u.example/**/z/**/y",
            "GET https://u.example:443/z/z/y",
            true,
        ),
        (
            "https://u.example/**/z/**/y",
            "GET https://u.example:443/a/z/b/y/y",
            true,
        ),
        (
            "https://u.example/**/z/**/y",
            "GET https://u.example:443/a/y/z",
            false,
        ),
        (
            "https://u.example/a%2Ab",
            "GET https://u.example:443/a*b",
            true,
        ),
        (
            "https://u.example/a%2Ab",
            "GET https://u.example:443/axb",
            false,
        ),
        (
            "https://u.example/a%2Cb",
            "GET https://u.example:443/a,b",
            true,
        ),
        (
            "https://*.u.example/**",
            "GET https://x.y.u.example:443/a",
            true,
        ),
        (
            "https://*.u.example/**",
            "GET https://u.example:443/a",
            false,
        ),
        ("http://u.example/**", "GET http://u.example:80/a", true),
        ("http://u.example/**", "GET https://u.example:80/a", false),
        ("http://u.example/**", "GET http://u.example:443/a", false),
        (
            "https://u.example:8443/**",
            "GET https://u.example:8443/a",
            true,
        ),
        (
            "https://u.example:8443/**",
            "GET https://u.example:443/a",
            false,
        ),
    ];
    for &(rule_text, request, want) in cases {
        assert_eq!(
            allows(rule_text, request),
            want,
            "{rule_text:?} vs {request:?}"
        );
    }
}

#[test]
fn unnormalised_paths_match_nothing() {
    let r = rule("https://u.example/**");
    for raw in ["", "a", "/a%2Fb", "/a%zz", "/%ff", "/a?b"] {
        assert!(!r.matches("GET", "https", "u.example", 443, raw), "{raw:?}");
    }
}

#[test]
fn rule_sets() {
    let rules: UrlRules = parse_url_rule_list(
        "GET https://github.com/my-org/**\n\
         https://github.com/**\n\
         POST https://uploads.example.com/*\n\
         http://github.com/x",
    )
    .unwrap()
    .into_iter()
    .collect();
    let hosts: Vec<String> = rules.hosts().iter().map(ToString::to_string).collect();
    assert_eq!(
        hosts,
        ["github.com", "uploads.example.com", "github.com:80"]
    );
    assert!(rules.for_host("GitHub.com.", 443));
    assert!(rules.for_host("github.com", 80));
    assert!(!rules.for_host("github.com", 8443));
    assert!(!rules.for_host("api.github.com", 443));
    let found = |m, s, h, p, path| rules.find(m, s, h, p, path).map(ToString::to_string);
    assert_eq!(
        found("GET", "https", "github.com", 443, "/my-org/x").as_deref(),
        Some("GET https://github.com/my-org/**")
    );
    assert_eq!(
        found("PUT", "https", "github.com", 443, "/my-org/x").as_deref(),
        Some("https://github.com/**")
    );
    assert_eq!(
        found("GET", "https", "uploads.example.com", 443, "/a"),
        None
    );
    assert_eq!(found("GET", "http", "github.com", 80, "/y"), None);
    assert_eq!(rules.rules().len(), 4);
    assert!(!rules.is_empty());
    assert!(UrlRules::default().is_empty());
    assert!(!UrlRules::default().for_host("github.com", 443));
}

#[test]
fn suggests_the_rule_for_a_request() {
    let cases = [
        (
            "get",
            "https",
            "GitHub.com.",
            443,
            "/gists",
            Some("GET https://github.com/gists"),
        ),
        (
            "POST",
            "http",
            "a.example",
            8080,
            "/a%2Ab/",
            Some("POST http://a.example:8080/a%2Ab/"),
        ),
        (
            "GET",
            "https",
            "a.example",
            443,
            "/",
            Some("GET https://a.example/"),
        ),
        ("GET", "https", "1.2.3.4", 443, "/", None),
        ("GET", "https", "a.example", 443, "/a*", None),
        ("GET", "https", "a.example", 443, "/**", None),
        ("G T", "https", "a.example", 443, "/", None),
        ("GET", "ftp", "a.example", 443, "/", None),
    ];
    for (method, scheme, host, port, path, want) in cases {
        let got = UrlRule::for_request(method, scheme, host, port, path);
        assert_eq!(
            got.as_ref().map(ToString::to_string).as_deref(),
            want,
            "{path:?}"
        );
        if let Some(rule) = got {
            assert!(rule.matches(method, scheme, host, port, path));
        }
    }
}

/// Arbitrary input never panics, and whatever parses round-trips through its canonical text.
#[test]
fn never_panics() {
    let pieces = [
        "GET ",
        "https://",
        "h.example",
        ":8443",
        "/",
        "//",
        "*",
        "**",
        "%",
        "%2",
        "%2f",
        "%2e",
        ".",
        "..",
        "é",
        "\\",
        "?",
        "#",
        "@",
        "[",
        ":",
        ",",
        " ",
        "\0",
        "a",
    ];
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    for _ in 0..20_000 {
        let mut text = String::new();
        for _ in 0..(seed % 9) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            text.push_str(pieces[(seed % pieces.len() as u64) as usize]);
        }
        if let Ok(r) = text.parse::<UrlRule>() {
            assert_eq!(rule(&r.to_string()), r, "{text:?}");
        }
        if let Some(path) = text.strip_prefix("GET https://h.example")
            && let Ok(p) = normalize_path(path)
        {
            assert_eq!(normalize_path(&p).as_deref(), Ok(p.as_str()), "{path:?}");
        }
        let _ = normalize_path(&text);
    }
}
