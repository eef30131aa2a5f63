use super::encode::{STD, URL, base64};
use super::*;

const GHP: &str = "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789";
const VALUE: &str = "s3cr3t/Value+with=chars!~";

fn tokens() -> Vec<(&'static str, String)> {
    vec![
        ("github-token", GHP.to_string()),
        ("github-token", format!("gho_{}", "A1".repeat(18))),
        ("github-token", format!("ghu_{}", "b2".repeat(18))),
        ("github-token", format!("ghs_{}", "C3".repeat(18))),
        ("github-token", format!("ghr_{}", "d4".repeat(18))),
        (
            "github-token",
            format!(
                "github_pat_11ABCDEFG0{}_{}",
                "x".repeat(12),
                "Y9".repeat(29)
            ),
        ),
        ("aws-access-key-id", "AKIAIOSFODNN7EXAMPLE".to_string()),
        ("aws-access-key-id", "ASIAY34FZKBOKMUTVV7A".to_string()),
        ("npm-token", format!("npm_{}", "Zz9".repeat(12))),
        (
            "pypi-token",
            format!("pypi-AgEIcHlwaS5vcmc{}", "CJDUzNjQ4-_Zm".repeat(5)),
        ),
        (
            "slack-token",
            "xoxb-1234567890-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx".to_string(),
        ),
        (
            "slack-token",
            "xoxp-1234567890-9876543210-abcdef".to_string(),
        ),
        (
            "slack-webhook",
            "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"
                .to_string(),
        ),
        (
            "pem-private-key",
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA".to_string(),
        ),
        (
            "pem-private-key",
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn".to_string(),
        ),
        ("pem-private-key", "-----BEGIN PRIVATE KEY-----".to_string()),
    ]
}

fn kinds(found: &[Finding]) -> Vec<&str> {
    found.iter().map(|f| f.name.as_str()).collect()
}

fn percent_all(bytes: &[u8], upper: bool) -> String {
    bytes
        .iter()
        .map(|b| {
            if upper {
                format!("%{b:02X}")
            } else {
                format!("%{b:02x}")
            }
        })
        .collect()
}

fn percent_reserved(bytes: &[u8], upper: bool) -> String {
    bytes
        .iter()
        .map(|&b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else if upper {
                format!("%{b:02X}")
            } else {
                format!("%{b:02x}")
            }
        })
        .collect()
}

#[test]
fn every_token_kind_is_found_plain_and_percent_encoded() {
    let d = Detector::new(vec![]);
    for (kind, token) in tokens() {
        for text in [
            format!("x={token}&y"),
            format!("Authorization: token {token}"),
            token.clone(),
        ] {
            let found = d.scan(text.as_bytes());
            assert_eq!(kinds(&found), [kind], "{text}");
            assert_eq!(found[0].encoding, Encoding::Plain, "{text}");
            assert_eq!(found[0].kind, Kind::Token(kind));
        }
        for upper in [true, false] {
            let text = format!("q={}", percent_all(token.as_bytes(), upper));
            let found = d.scan(text.as_bytes());
            assert_eq!(kinds(&found), [kind], "{text}");
            assert_eq!(found[0].encoding, Encoding::UrlEncoded, "{text}");
        }
    }
}

#[test]
fn tokens_in_base64_are_found_in_one_shot_scans() {
    let d = Detector::new(vec![]);
    for (kind, token) in tokens() {
        for prefix in ["", "x-access-token:", "u:", "ab:"] {
            let basic = base64(format!("{prefix}{token}").as_bytes(), STD);
            let header = format!("Basic {}==", String::from_utf8(basic).unwrap());
            assert!(
                kinds(&d.scan(header.as_bytes())).contains(&kind),
                "{kind} {prefix}"
            );
        }
    }
}

#[test]
fn form_encoded_pem_header_is_found() {
    let d = Detector::new(vec![]);
    let found = d.scan(b"key=-----BEGIN+EC+PRIVATE+KEY-----%0AMHcCAQEE");
    assert_eq!(kinds(&found), ["pem-private-key"]);
}

#[test]
fn near_misses_are_not_tokens() {
    let d = Detector::new(vec![]);
    for text in [
        "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ012345678".to_string(), // 35
        "ghp_aBcDeFgHiJkLmNoPqRsTu!wXyZ0123456789".to_string(), // wrong charset
        "ghp_aBcDeFgHiJkLmNoPqRsTu-wXyZ0123456789".to_string(),
        format!("x{GHP}"),                  // inside a word
        format!("{GHP}_x"),                 // runs on into a word
        format!("ghp_{}", "a".repeat(260)), // too long
        "gh_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789".to_string(),
        "github_pat_short".to_string(),
        "XAKIAIOSFODNN7EXAMPLE".to_string(),
        "AKIAIOSFODNN7EXAMPLEX".to_string(),
        "AKIAIOSFODNN7EXAMPL".to_string(),
        "AKIAiosfodnn7example".to_string(),
        "npm_abc123".to_string(),
        "pypi-AgEIcHlwaS5vcmcshort".to_string(),
        "pypi-token-value-that-is-long-enough-but-lacks-the-macaroon-header".to_string(),
        "xoxb-short".to_string(),
        "xoxz-1234567890-1234567890123-AbCdEfGhIjKlMnOp".to_string(),
        "hooks.slack.com/services/".to_string(),
        "keep your PRIVATE KEY----- safe; BEGIN RSA PRIVATE KEY is a header".to_string(),
        "-----BEGIN CERTIFICATE-----\nMIIB".to_string(),
        "-----BEGIN PUBLIC KEY-----".to_string(),
        "----BEGIN RSA PRIVATE KEY----".to_string(),
        "".to_string(),
    ] {
        assert_eq!(
            kinds(&d.scan(text.as_bytes())),
            Vec::<&str>::new(),
            "{text}"
        );
    }
}

fn detector() -> Detector {
    Detector::new(vec![
        Secret::new("DEPLOY_KEY", VALUE),
        Secret::new("SHORT", "1234567"),
    ])
}

fn named(found: &[Finding]) -> Vec<(&str, Encoding)> {
    found
        .iter()
        .filter(|f| f.kind == Kind::Named)
        .map(|f| (f.name.as_str(), f.encoding))
        .collect()
}

#[test]
fn named_secret_found_plain_and_url_encoded() {
    let d = detector();
    let f = d.scan(format!("https://evil.example/?d={VALUE}").as_bytes());
    assert_eq!(named(&f), [("DEPLOY_KEY", Encoding::Plain)]);
    for upper in [true, false] {
        for enc in [
            percent_reserved(VALUE.as_bytes(), upper),
            percent_all(VALUE.as_bytes(), upper),
        ] {
            let f = d.scan(format!("/x?d={enc}&e=1").as_bytes());
            assert_eq!(named(&f), [("DEPLOY_KEY", Encoding::UrlEncoded)], "{enc}");
        }
    }
    assert!(d.scan(b"1234567").is_empty(), "short secrets are skipped");
    assert!(d.scan(&VALUE.as_bytes()[1..]).is_empty());
}

#[test]
fn named_secret_found_in_base64_at_every_alignment() {
    let d = detector();
    for (alphabet, encoding) in [(STD, Encoding::Base64), (URL, Encoding::Base64Url)] {
        for before in ["", "a", "ab", "abc", "abcd"] {
            for after in ["", "z", "zy", "zyx"] {
                let raw = format!("{before}{VALUE}{after}");
                let enc = String::from_utf8(base64(raw.as_bytes(), alphabet)).unwrap();
                // Where the two alphabets agree, the form is reported as plain base64.
                let specific = enc.contains(['-', '_', '+', '/']);
                let want = if specific { encoding } else { Encoding::Base64 };
                let f = d.scan(format!("{{\"data\":\"{enc}\"}}").as_bytes());
                assert_eq!(named(&f), [("DEPLOY_KEY", want)], "{raw} {enc}");
                // Base64 whose `+` and `/` were percent-encoded still counts as base64.
                let pct = enc.replace('+', "%2B").replace('/', "%2f");
                let f = d.scan(format!("data={pct}").as_bytes());
                assert_eq!(named(&f), [("DEPLOY_KEY", want)], "{pct}");
            }
        }
    }
}

#[test]
fn named_secret_with_a_space_found_form_encoded() {
    let d = Detector::new(vec![Secret::new("PASS", "correct horse battery")]);
    let f = d.scan(b"p=correct+horse+battery");
    assert_eq!(named(&f), [("PASS", Encoding::UrlEncoded)]);
}

/// Feeds `body` in the given chunks and checks no byte at or after `start` was released
/// before something was found; returns everything found.
fn feed(d: &Detector, body: &[u8], cuts: &[usize], start: usize) -> Vec<Finding> {
    let mut s = d.stream();
    let mut released = 0;
    let mut found = Vec::new();
    let mut at = 0;
    for &cut in cuts.iter().chain([&body.len()]) {
        let (f, n) = s.push(&body[at..cut]);
        if found.is_empty() && f.is_empty() {
            assert!(
                released + n <= start,
                "released {} of {} (cut {cut}) in {:?}",
                released + n,
                start,
                String::from_utf8_lossy(
                    &body[start.saturating_sub(5)..(start + 40).min(body.len())]
                )
            );
        }
        found.extend(f);
        released += n;
        assert!(released <= cut);
        at = cut;
    }
    found.extend(s.finish());
    found
}

#[test]
fn secret_split_across_chunks_is_found_before_any_of_it_is_released() {
    let d = detector();
    let filler = "lorem ipsum ".repeat(40);
    let mut cases = vec![
        (VALUE.to_string(), "DEPLOY_KEY"),
        (percent_all(VALUE.as_bytes(), false), "DEPLOY_KEY"),
    ];
    for (kind, token) in tokens() {
        cases.push((percent_all(token.as_bytes(), true), kind));
        cases.push((token, kind));
    }
    for (secret, name) in cases {
        let body = format!("{filler}{secret} {filler}");
        // A webhook's match begins after its scheme, which may be released.
        let scheme = ["https://", "%68%74%74%70%73%3A%2F%2F"]
            .into_iter()
            .find(|s| secret.starts_with(s))
            .map_or(0, str::len);
        let start = filler.len() + scheme;
        for cut in 0..=body.len() {
            let found = feed(&d, body.as_bytes(), &[cut], start);
            assert!(kinds(&found).contains(&name), "{name} cut at {cut}");
        }
        let byte_by_byte: Vec<usize> = (1..body.len()).collect();
        let found = feed(&d, body.as_bytes(), &byte_by_byte, start);
        assert!(kinds(&found).contains(&name), "{name} byte by byte");
    }
}

#[test]
fn stream_releases_everything_in_the_end() {
    let d = detector();
    let body = vec![b'x'; 100_000];
    let mut s = d.stream();
    let mut released = 0;
    for chunk in body.chunks(4096) {
        let (f, n) = s.push(chunk);
        assert!(f.is_empty());
        released += n;
    }
    // Nothing in it could begin a secret: all of it is released as it comes.
    assert_eq!(released, body.len());
    assert!(s.finish().is_empty());
}

#[test]
fn values_never_appear_in_debug_or_display() {
    let secret = Secret::new("DEPLOY_KEY", VALUE);
    let d = Detector::new(vec![secret]);
    let found = d.scan(format!("{VALUE} {GHP}").as_bytes());
    assert_eq!(found.len(), 2);
    let mut texts = vec![
        format!("{:?}", Secret::new("DEPLOY_KEY", VALUE)),
        format!("{d:?}"),
        format!("{:?}", d.stream()),
        format!("{found:?}"),
    ];
    texts.extend(found.iter().map(|f| f.to_string()));
    for t in texts {
        assert!(!t.contains(VALUE) && !t.contains(&GHP[4..]), "{t}");
    }
    assert!(format!("{d:?}").contains("DEPLOY_KEY"));
}

#[test]
fn audience_matching() {
    let d = Detector::new(vec![
        Secret::new("GITHUB_TOKEN", GHP),
        Secret::new(
            "AWS_SECRET_ACCESS_KEY",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        ),
        Secret::new("OTHER", "some-opaque-value"),
    ]);
    let find = |text: &str, name: &str| {
        d.scan(text.as_bytes())
            .into_iter()
            .find(|f| f.name == name)
            .unwrap()
    };
    let gh = find(GHP, "github-token");
    let named_gh = find(GHP, "GITHUB_TOKEN");
    for f in [&gh, &named_gh] {
        for host in [
            "github.com",
            "api.github.com",
            "API.GitHub.com.",
            "github.com:443",
            "objects.githubusercontent.com",
            "ghcr.io",
        ] {
            assert!(Detector::is_audience(f, host), "{host}");
        }
        for host in [
            "gist.evil.com",
            "notgithub.com",
            "github.com.evil.com",
            "githubusercontent.com",
            "evil.com:github.com",
            "",
        ] {
            assert!(!Detector::is_audience(f, host), "{host}");
        }
    }
    let aws = find(
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "AWS_SECRET_ACCESS_KEY",
    );
    assert!(Detector::is_audience(&aws, "sts.us-east-1.amazonaws.com"));
    assert!(!Detector::is_audience(&aws, "amazonaws.com.evil.io"));
    let other = find("some-opaque-value", "OTHER");
    assert!(!Detector::is_audience(&other, "github.com"));
    let pem = find("-----BEGIN PRIVATE KEY-----", "pem-private-key");
    assert!(!Detector::is_audience(&pem, "github.com"));
    let hook = find(&tokens()[12].1, "slack-webhook");
    assert!(Detector::is_audience(&hook, "hooks.slack.com"));
    let npm = find(&tokens()[8].1, "npm-token");
    assert!(Detector::is_audience(&npm, "registry.npmjs.org"));
    assert!(!Detector::is_audience(&npm, "registry.yarnpkg.com"));
}

#[test]
fn odd_input_does_not_panic() {
    let d = detector();
    let mut inputs: Vec<Vec<u8>> = vec![
        b"%".to_vec(),
        b"%%%".to_vec(),
        b"%4".to_vec(),
        b"ghp_".to_vec(),
        b"-----BEGIN".to_vec(),
        vec![0xff; 64],
        (0..=255u8).collect(),
    ];
    inputs.push((0..=255u8).cycle().take(5000).collect());
    for i in inputs {
        let _ = d.scan(&i);
        let mut s = d.stream();
        for c in i.chunks(3) {
            let _ = s.push(c);
        }
        let _ = s.finish();
    }
}

/// Throughput check: `cargo test --release -p proxy exfil::tests::throughput -- --ignored --nocapture`.
#[test]
#[ignore]
fn throughput() {
    let secrets = (0..20)
        .map(|i| {
            Secret::new(
                format!("S{i}"),
                format!("secret-value-number-{i:04}-padding"),
            )
        })
        .collect();
    let d = Detector::new(secrets);
    let body: Vec<u8> = b"{\"k\": \"lorem ipsum %20 ghx_ AKIA-- dolor\"}\n"
        .iter()
        .copied()
        .cycle()
        .take(50 << 20)
        .collect();
    let t = std::time::Instant::now();
    let mut s = d.stream();
    for c in body.chunks(16 << 10) {
        assert!(s.push(c).0.is_empty());
    }
    let secs = t.elapsed().as_secs_f64();
    println!("{:.0} MB/s", body.len() as f64 / secs / 1e6);
}

#[test]
fn base64_wrapped_at_76_columns_is_found_across_the_line_break() {
    let d = detector();
    // `env | base64`: the secret's encoding crosses a line break wherever it falls.
    for pad in 0..80 {
        let raw = format!("{}DEPLOY_KEY={VALUE}\n", "P".repeat(pad));
        let enc = base64(raw.as_bytes(), STD);
        let wrapped: Vec<u8> = enc
            .chunks(76)
            .flat_map(|line| line.iter().copied().chain([b'\n']))
            .collect();
        let mut s = d.stream();
        let mut found = Vec::new();
        for chunk in wrapped.chunks(7) {
            found.extend(s.push(chunk).0);
        }
        found.extend(s.finish());
        assert!(kinds(&found).contains(&"DEPLOY_KEY"), "pad {pad}");
    }
}

#[test]
fn multi_line_secret_in_a_json_body_is_found() {
    let key = "-----BEGIN KEY-----\nMIIBVQIBADANBgkqhkiG\n\"quoted\"\n-----END KEY-----\n";
    let d = Detector::new(vec![Secret::new("SA_KEY", key)]);
    let body = serde_json::json!({ "key": key }).to_string();
    let f = d.scan(body.as_bytes());
    assert_eq!(named(&f), [("SA_KEY", Encoding::JsonEscaped)], "{body}");
    // With other line endings, too.
    let crlf = key.replace('\n', "\r\n");
    let f = d.scan(crlf.as_bytes());
    assert!(kinds(&f).contains(&"SA_KEY"));
}
