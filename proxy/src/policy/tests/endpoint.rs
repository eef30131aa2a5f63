//! The endpoint syntax of DESIGN.md, entry by entry: what parses, its canonical text, and what
//! each malformed entry's error says.

use std::net::IpAddr;

use crate::policy::{Endpoint, Host, parse_endpoint_list, rule_for};

/// (entry, canonical Display, port) for entries that must parse.
const VALID: &[(&str, &str, Option<u16>)] = &[
    // harden-runner users' entries
    ("github.com:443", "github.com", Some(443)),
    ("*.github.com:443", "*.github.com", Some(443)),
    ("api.nuget.org:443", "api.nuget.org", Some(443)),
    (
        "objects.githubusercontent.com:443",
        "objects.githubusercontent.com",
        Some(443),
    ),
    ("registry.npmjs.org:443", "registry.npmjs.org", Some(443)),
    // names
    ("example.com", "example.com", Some(443)),
    ("Example.COM.", "example.com", Some(443)),
    ("example.com:8443", "example.com:8443", Some(8443)),
    ("example.com:1", "example.com:1", Some(1)),
    ("example.com:65535", "example.com:65535", Some(65535)),
    ("example.com:0443", "example.com", Some(443)),
    ("localhost", "localhost", Some(443)),
    (
        "_acme-challenge.example.com",
        "_acme-challenge.example.com",
        Some(443),
    ),
    ("xn--bcher-kva.example", "xn--bcher-kva.example", Some(443)),
    ("a1.b-2.example", "a1.b-2.example", Some(443)),
    ("*.Example.com.:80", "*.example.com:80", Some(80)),
    ("*.com", "*.com", Some(443)),
    // IPv4
    ("203.0.113.7", "203.0.113.7", None),
    ("203.0.113.7:22", "203.0.113.7:22", Some(22)),
    ("203.0.113.7/32", "203.0.113.7", None),
    ("10.0.0.0/8", "10.0.0.0/8", None),
    ("10.0.0.0/8:53", "10.0.0.0/8:53", Some(53)),
    ("0.0.0.0/0", "0.0.0.0/0", None),
    // IPv6
    ("2001:db8::1", "2001:db8::1", None),
    ("2001:DB8::1", "2001:db8::1", None),
    ("2001:db8::/32", "2001:db8::/32", None),
    ("[2001:db8::1]", "2001:db8::1", None),
    ("[2001:db8::1]:443", "[2001:db8::1]:443", Some(443)),
    ("[2001:db8::/32]:22", "[2001:db8::/32]:22", Some(22)),
    ("[2001:db8::1/128]", "2001:db8::1", None),
    ("::/0", "::/0", None),
    ("::1", "::1", None),
    // A bare IPv6 address has no port: this is the address 2001:db8::1:443.
    ("2001:db8::1:443", "2001:db8::1:443", None),
    // v4-mapped IPv6 is IPv4
    ("::ffff:203.0.113.7", "203.0.113.7", None),
    ("[::ffff:203.0.113.7]:80", "203.0.113.7:80", Some(80)),
    ("::ffff:10.0.0.0/104", "10.0.0.0/8", None),
    ("::ffff:0:0/96", "0.0.0.0/0", None),
];

/// (entry, words the error must contain) for entries that must be refused.
const INVALID: &[(&str, &[&str])] = &[
    ("", &["empty"]),
    ("exa mple.com", &["space"]),
    ("a.com\tb", &["space"]),
    ("https://example.com", &["url", "\"example.com\""]),
    ("http://example.com/path", &["url", "\"example.com:80\""]),
    (
        "https://example.com:8443/x?y",
        &["url", "\"example.com:8443\""],
    ),
    ("example.com/a", &["path"]),
    ("example.com:443/a", &["path"]),
    ("example.com:0", &["port", "out of range"]),
    ("example.com:65536", &["port", "out of range"]),
    ("example.com:99999999999", &["port", "out of range"]),
    ("example.com:", &["port", "not a number"]),
    ("example.com:https", &["port", "not a number"]),
    ("example.com:+443", &["port", "not a number"]),
    ("203.0.113.7:0", &["port", "out of range"]),
    ("10.0.0.0/33", &["prefix", "0 to 32"]),
    ("2001:db8::/129", &["prefix", "0 to 128"]),
    ("[2001:db8::/129]:443", &["prefix", "0 to 128"]),
    ("10.0.0.0/", &["prefix"]),
    ("10.0.0.0/+8", &["prefix"]),
    ("10.0.0.1/8", &["host bits", "10.0.0.0/8"]),
    ("2001:db8::1/32", &["host bits", "2001:db8::/32"]),
    ("10.0.0/8", &["not a valid ipv4"]),
    ("999.1.1.1", &["neither an ipv4 address nor a host name"]),
    ("1.2.3", &["neither an ipv4 address nor a host name"]),
    ("8080", &["neither an ipv4 address nor a host name"]),
    ("a..b.com", &["empty label"]),
    (".github.com", &["leading '.'", "*.github.com"]),
    ("*.", &["empty label"]),
    ("*", &["'*'"]),
    ("*.*.example.com", &["'*'"]),
    ("a.*.example.com", &["'*'"]),
    ("foo*.example.com", &["'*'"]),
    ("example.*", &["'*'"]),
    ("exa_mple!.com", &["'!'"]),
    ("bücher.example", &["'ü'", "xn--"]),
    ("example.com:443:80", &["more than one ':'"]),
    ("2001:db8::g", &["more than one ':'"]),
    ("2001:db8:::1", &["not a valid ipv6"]),
    ("[10.0.0.1]:80", &["brackets"]),
    ("[2001:db8::1", &["brackets"]),
    ("[2001:db8::1]443", &["brackets"]),
    ("[2001:db8::1]:", &["port"]),
    ("[2001:db8::zz]:443", &["not a valid ipv6"]),
];

#[test]
fn valid_entries_parse_to_their_canonical_form() {
    for &(entry, canonical, port) in VALID {
        let e: Endpoint = entry
            .parse()
            .unwrap_or_else(|err| panic!("{entry:?} should parse: {err}"));
        assert_eq!(e.to_string(), canonical, "{entry:?}");
        assert_eq!(e.port(), port, "{entry:?}");
        let again: Endpoint = canonical.parse().expect("canonical text parses");
        assert_eq!(again, e, "{entry:?} round trip");
    }
}

#[test]
fn invalid_entries_say_what_is_wrong_and_quote_the_entry() {
    for &(entry, words) in INVALID {
        let err = entry
            .parse::<Endpoint>()
            .expect_err(&format!("{entry:?} should be refused"));
        let text = err.to_string();
        assert!(
            text.contains(&format!("{entry:?}")),
            "{text} quotes {entry:?}"
        );
        let lower = text.to_lowercase();
        for word in words {
            assert!(
                lower.contains(word),
                "error for {entry:?} ({text}) mentions {word:?}"
            );
        }
        assert_eq!(err.entry, entry);
    }
}

#[test]
fn long_names_and_labels_are_refused() {
    let label63 = "a".repeat(63);
    let ok = format!("{label63}.example.com");
    assert!(ok.parse::<Endpoint>().is_ok());
    let label64 = format!("{}.example.com", "a".repeat(64));
    let err = label64.parse::<Endpoint>().unwrap_err().to_string();
    assert!(err.contains("longer than 63"), "{err}");
    // 4 labels of 63 + 3 dots = 255 > 253; 253 exactly is fine.
    let long = [label63.as_str(); 4].join(".");
    let err = long.parse::<Endpoint>().unwrap_err().to_string();
    assert!(err.contains("longer than 253"), "{err}");
    let exact = format!("{}.{}", [label63.as_str(); 3].join("."), "a".repeat(61));
    assert_eq!(exact.len(), 253);
    assert!(exact.parse::<Endpoint>().is_ok());
    // The trailing dot does not count.
    assert!(format!("{exact}.").parse::<Endpoint>().is_ok());
}

#[test]
fn hosts_are_what_was_written() {
    let host = |s: &str| s.parse::<Endpoint>().unwrap().host().clone();
    assert_eq!(host("A.example"), Host::Exact("a.example".into()));
    assert_eq!(host("*.a.example"), Host::Wildcard("a.example".into()));
    let v4: IpAddr = "10.0.0.0".parse().unwrap();
    assert_eq!(
        host("10.0.0.0/8:1"),
        Host::Network {
            addr: v4,
            prefix: 8
        }
    );
    assert!("a.example".parse::<Endpoint>().unwrap().is_name());
    assert!(!"10.0.0.0/8".parse::<Endpoint>().unwrap().is_name());
}

#[test]
fn lists_split_on_whitespace_commas_and_newlines() {
    let list =
        parse_endpoint_list(" github.com:443,*.github.com\n\n10.0.0.0/8 ,, [2001:db8::1]:22\t")
            .unwrap();
    let texts: Vec<String> = list.iter().map(ToString::to_string).collect();
    assert_eq!(
        texts,
        [
            "github.com",
            "*.github.com",
            "10.0.0.0/8",
            "[2001:db8::1]:22"
        ]
    );
    assert_eq!(parse_endpoint_list("").unwrap(), vec![]);
    assert_eq!(parse_endpoint_list(" ,\n, ").unwrap(), vec![]);
}

#[test]
fn lists_report_every_bad_entry() {
    let errors =
        parse_endpoint_list("ok.example bad..example,https://x.example 10.0.0.1/8").unwrap_err();
    let entries: Vec<&str> = errors.iter().map(|e| e.entry.as_str()).collect();
    assert_eq!(entries, ["bad..example", "https://x.example", "10.0.0.1/8"]);
}

#[test]
fn rule_for_writes_the_entry_to_add() {
    let table = [
        ("example.com", 443, "example.com"),
        ("Example.COM.", 443, "example.com"),
        ("example.com", 8443, "example.com:8443"),
        ("203.0.113.7", 22, "203.0.113.7:22"),
        ("203.0.113.7", 443, "203.0.113.7:443"),
        ("2001:db8::1", 22, "[2001:db8::1]:22"),
        ("[2001:db8::1]", 80, "[2001:db8::1]:80"),
        ("::ffff:203.0.113.7", 80, "203.0.113.7:80"),
    ];
    for (input, port, want) in table {
        let rule = rule_for(input, port);
        assert_eq!(rule, want, "rule_for({input:?}, {port})");
        let e: Endpoint = rule.parse().expect("a suggestion parses");
        assert_eq!(e.to_string(), want);
    }
}

#[test]
fn matching_by_name_and_address() {
    let e = |s: &str| s.parse::<Endpoint>().unwrap();
    assert!(e("example.com").matches_name("EXAMPLE.com.", 443));
    assert!(!e("example.com").matches_name("example.com", 80));
    assert!(!e("example.com").matches_name("www.example.com", 443));
    assert!(e("*.example.com").matches_name("a.b.c.example.com", 443));
    assert!(!e("*.example.com").matches_name("example.com", 443));
    assert!(!e("*.example.com").matches_name("badexample.com", 443));
    assert!(!e("*.example.com").matches_name(".example.com", 443));
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    assert!(e("10.0.0.0/8").matches_ip(ip("10.255.0.1"), 1));
    assert!(e("10.0.0.0/8").matches_ip(ip("::ffff:10.1.2.3"), 1));
    assert!(!e("10.0.0.0/8").matches_ip(ip("11.0.0.1"), 1));
    assert!(e("10.0.0.0/8:22").matches_ip(ip("10.0.0.1"), 22));
    assert!(!e("10.0.0.0/8:22").matches_ip(ip("10.0.0.1"), 23));
    assert!(e("2001:db8::/32").matches_ip(ip("2001:db8:1::5"), 443));
    assert!(
        !e("::/0").matches_ip(ip("::ffff:10.0.0.1"), 443),
        "v4-mapped is IPv4"
    );
    assert!(!e("example.com").matches_ip(ip("10.0.0.1"), 443));
    assert!(!e("10.0.0.1").matches_name("10.0.0.1", 443));
}
