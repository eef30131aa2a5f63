//! Tunnel detector tests: everyday CI lookups are never flagged; tunnel-shaped ones are.

use super::*;

const A: u16 = 1;
const CNAME: u16 = 5;
const NULL: u16 = 10;
const PTR: u16 = 12;
const TXT: u16 = 16;
const AAAA: u16 = 28;
const SRV: u16 = 33;
const HTTPS: u16 = 65;

/// Deterministic random labels (xorshift64) in an alphabet.
struct Labels(u64);

impl Labels {
    fn next(&mut self, alphabet: &[u8], len: usize) -> String {
        (0..len)
            .map(|_| {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 7;
                self.0 ^= self.0 << 17;
                char::from(alphabet[(self.0 % alphabet.len() as u64) as usize])
            })
            .collect()
    }
}

const BASE32: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
const HEX: &[u8] = b"0123456789abcdef";

/// What a CI job on a hosted runner looks up: package registries, GitHub's and the
/// clouds' endpoints, with generated names among them. None of it may be flagged.
#[test]
fn everyday_ci_lookups_are_not_flagged() {
    let mut lookups: Vec<(String, u16, bool)> = [
        ("github.com", A, false),
        ("github.com", AAAA, false),
        ("api.github.com", A, false),
        ("codeload.github.com", HTTPS, false),
        ("ghcr.io", A, false),
        ("pkg-containers.githubusercontent.com", A, false),
        ("productionresultssa12.blob.core.windows.net", A, false),
        ("pipelinesghubeus22.actions.githubusercontent.com", A, false),
        ("d3k2jqx3tyrd7m.cloudfront.net", A, false),
        ("registry-1.docker.io", A, false),
        ("auth.docker.io", AAAA, false),
        ("production.cloudflare.docker.com", A, false),
        ("index.crates.io", HTTPS, false),
        ("static.crates.io", A, false),
        ("static.rust-lang.org", A, false),
        ("files.pythonhosted.org", A, false),
        ("pypi.org", HTTPS, false),
        ("registry.npmjs.org", A, false),
        ("registry.yarnpkg.com", AAAA, false),
        ("proxy.golang.org", A, false),
        ("sum.golang.org", A, false),
        ("deb.debian.org", A, false),
        ("_http._tcp.deb.debian.org", SRV, false),
        ("azure.archive.ubuntu.com", A, false),
        ("dl-cdn.alpinelinux.org", A, false),
        ("ec2-54-12-34-56.compute-1.amazonaws.com", A, false),
        ("s3.us-east-1.amazonaws.com", A, false),
        ("123456789012.dkr.ecr.us-east-1.amazonaws.com", A, false),
        (
            "a0123456789abcdef0123456789abcde-1234567890.us-east-1.elb.amazonaws.com",
            A,
            false,
        ),
        (
            "cdk-hnb659fds-assets-123456789012-us-east-1.s3.us-east-1.amazonaws.com",
            A,
            false,
        ),
        ("storage.googleapis.com", A, false),
        (
            "my-app-git-feature-very-long-branch-name-myteam.vercel.app",
            A,
            false,
        ),
        (
            "e2e-tests-runner-20240101-abcdef12.preview.example.com",
            A,
            false,
        ),
        ("kubernetes-dashboard-staging.corp.example", AAAA, false),
        ("_acme-challenge.ci.example.org", CNAME, false),
        ("_acme-challenge.ci.example.org", TXT, true),
        ("1.0.0.127.in-addr.arpa", PTR, false),
        (
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
            PTR,
            false,
        ),
        ("dns.google", HTTPS, false),
        ("GitHub.com.", A, false),
    ]
    .into_iter()
    .map(|(name, qtype, known)| (name.to_string(), qtype, known))
    .collect();
    // About 20 different hosts under githubusercontent.com, as a busy workflow uses.
    for host in [
        "objects",
        "raw",
        "avatars",
        "media",
        "camo",
        "user-images",
        "private-user-images",
        "release-assets",
        "github-releases",
        "objects-origin",
        "cloud",
        "desktop",
        "gist",
        "favicons",
        "repository-images",
        "marketplace-screenshots",
        "alive",
        "results-receiver.actions",
        "artifactcache.actions",
        "vstoken.actions",
    ] {
        lookups.push((format!("{host}.githubusercontent.com"), A, false));
        lookups.push((format!("{host}.githubusercontent.com"), AAAA, false));
    }
    let mut detector = TunnelDetector::default();
    for (name, qtype, known) in &lookups {
        assert_eq!(
            detector.observe(name, *qtype, *known),
            None,
            "{name} {qtype}"
        );
    }
}

#[test]
fn encoded_labels_are_flagged() {
    let mut labels = Labels(0x7e57);
    let iodine = format!(
        "{}.{}.t.attacker.example",
        labels.next(BASE32, 63),
        labels.next(BASE32, 57)
    );
    let dnscat = format!(
        "{}.{}.attacker.example",
        labels.next(HEX, 62),
        labels.next(HEX, 50)
    );
    let hex40 = format!("{}.attacker.example", labels.next(HEX, 40));
    let b32 = format!("{}.attacker.example", labels.next(BASE32, 36));
    let cases: [(&str, &str); 6] = [
        (&iodine, "label of 63 characters"),
        (&dnscat, "label of 62 characters"),
        (&hex40, "(40 characters) looks hex-encoded"),
        (&b32, "(36 characters) has 4."),
        (
            "a\\255b\\000.t.attacker.example",
            "holds bytes that are not host name characters",
        ),
        (&["abcdefghijklmn"; 11].join("."), "name of 164 characters"),
    ];
    for (name, want) in cases {
        let suspicion = TunnelDetector::default().observe(name, A, false);
        let evidence = suspicion.map(|s| s.evidence.join("; ")).unwrap_or_default();
        assert!(
            evidence.contains(want),
            "{name}: {evidence:?}, want {want:?}"
        );
    }
    // The iodine name has two long labels, each its own line of evidence.
    let both = TunnelDetector::default()
        .observe(&iodine, A, false)
        .unwrap();
    assert_eq!(
        both.evidence[..2],
        ["label of 63 characters", "label of 57 characters"]
    );
}

#[test]
fn a_burst_of_names_under_one_domain_is_flagged_from_the_threshold_on() {
    let mut labels = Labels(0xb0a7);
    let mut detector = TunnelDetector::default();
    let names: Vec<String> = (0..100)
        .map(|_| format!("{}.t.attacker.example", labels.next(BASE32, 12)))
        .collect();
    for (i, name) in names.iter().enumerate() {
        let got = detector.observe(name, A, false);
        if i < MANY_NAMES {
            assert_eq!(got, None, "{i}: {name}");
        } else {
            let want = format!("{} different names under t.attacker.example", i + 1);
            assert_eq!(got.map(|s| s.evidence), Some(vec![want]), "{i}");
        }
    }
    // Asking again for a name already seen adds nothing new (for the names remembered:
    // the first MAX_NAMES_PER_DOMAIN).
    assert_eq!(detector.observe(&names[0], AAAA, false), None);
    assert_eq!(detector.observe(&names[40], A, false), None);
}

#[test]
fn data_spread_over_several_short_labels_is_counted_higher_up() {
    let mut labels = Labels(0x5b1d);
    let mut detector = TunnelDetector::default();
    let mut flagged = Vec::new();
    for i in 0..40 {
        let data: Vec<String> = (0..4).map(|_| labels.next(BASE32, 20)).collect();
        let name = format!("{}.t.attacker.example", data.join("."));
        if let Some(suspicion) = detector.observe(&name, A, false) {
            flagged.push((i, suspicion.evidence));
        }
    }
    assert_eq!(flagged.len(), 40 - MANY_NAMES, "{flagged:?}");
    assert_eq!(
        flagged[0],
        (
            30,
            vec!["31 different names under t.attacker.example".to_string()]
        )
    );
}

#[test]
fn txt_and_null_lookups_of_names_no_rule_names() {
    let cases = [
        (
            "cmd.attacker.example",
            TXT,
            false,
            Some("TXT lookup of a name no rule names"),
        ),
        (
            "x.attacker.example",
            NULL,
            false,
            Some("NULL lookup of a name no rule names"),
        ),
        ("_acme-challenge.ci.example.org", TXT, true, None),
        (
            "txt.s3.amazonaws.com",
            TXT,
            false,
            Some("TXT lookup of a name no rule names"),
        ),
        ("cmd.attacker.example", A, false, None),
        ("cmd.attacker.example", HTTPS, false, None),
    ];
    for (name, qtype, known, want) in cases {
        let got = TunnelDetector::default().observe(name, qtype, known);
        assert_eq!(
            got.map(|s| s.evidence),
            want.map(|w| vec![w.to_string()]),
            "{name} {qtype}"
        );
    }
}

#[test]
fn near_misses_are_not_flagged() {
    let mut labels = Labels(0x4ea7);
    let cases = [
        // 49 characters of words: one short of LONG_LABEL.
        "continuous-integration-pipeline-artifacts-mirrors.corp.example".to_string(),
        // Random, but shorter than ENTROPY_MIN_LEN.
        format!("{}.attacker.example", labels.next(BASE32, 23)),
        // Hex, but shorter than HEX_MIN_LEN; and 40 hex letters without a digit.
        format!("{}.attacker.example", labels.next(HEX, 31)),
        format!("{}.attacker.example", "abcdef".repeat(7)),
        // 150 characters exactly.
        format!("{}.abcdefg.example", ["abcdefghijklmn"; 9].join(".")),
        // Long and random, but under a provider's zone.
        format!("{}.s3.amazonaws.com", labels.next(BASE32, 63)),
    ];
    for name in &cases {
        assert_eq!(
            TunnelDetector::default().observe(name, A, false),
            None,
            "{name} ({})",
            name.len()
        );
    }
    assert_eq!(cases[0].split('.').next().unwrap().len(), LONG_LABEL - 1);
    assert_eq!(cases[4].len(), LONG_NAME);
    // MANY_NAMES different names under one domain, but not one more.
    let mut detector = TunnelDetector::default();
    for i in 0..MANY_NAMES {
        assert_eq!(
            detector.observe(&format!("svc{i}.corp.example"), A, false),
            None
        );
    }
    assert!(
        detector
            .observe("svc-extra.corp.example", A, false)
            .is_some()
    );
}

#[test]
fn exempt_zones_match_whole_labels() {
    let cases = [
        ("amazonaws.com", true),
        ("s3.amazonaws.com", true),
        ("x.1.168.192.in-addr.arpa", true),
        ("notamazonaws.com", false),
        ("amazonaws.com.attacker.example", false),
    ];
    for (name, want) in cases {
        assert_eq!(in_exempt_zone(name), want, "{name}");
    }
}

#[test]
fn memory_stays_bounded_and_a_busy_domain_is_kept() {
    let mut labels = Labels(0x3e3);
    let mut detector = TunnelDetector::default();
    // Start a tunnel, then bury it under many one-off domains.
    for _ in 0..20 {
        detector.observe(
            &format!("{}.t.attacker.example", labels.next(BASE32, 12)),
            A,
            false,
        );
    }
    for i in 0..2 * MAX_DOMAINS {
        detector.observe(&format!("host.d{i}.example"), A, false);
    }
    assert!(detector.domains.len() <= MAX_DOMAINS);
    let mut flagged = 0;
    for _ in 0..20 {
        let name = format!("{}.t.attacker.example", labels.next(BASE32, 12));
        flagged += usize::from(detector.observe(&name, A, false).is_some());
    }
    assert_eq!(flagged, 40 - MANY_NAMES, "the tunnel's count survived");
    // Far past the cap, names are counted, not stored.
    for _ in 0..1000 {
        detector.observe(
            &format!("{}.t.attacker.example", labels.next(BASE32, 12)),
            A,
            false,
        );
    }
    let names = &detector.domains["t.attacker.example"];
    assert_eq!(names.hashes.len(), MAX_NAMES_PER_DOMAIN);
    assert_eq!(names.count(), 1040);
}
