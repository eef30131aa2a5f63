//! Strict mode (`--allowed-urls`, issue #7): naming a host in a URL rule inspects it (without
//! `--tls-inspection`) and allows there only the requests a rule matches. In block mode a sibling
//! path, a wrong method and a dot-segment trick get Warden's 403 naming the rule to add, and the
//! origin never sees them; in audit mode they pass and are recorded `audited`. Other hosts stay
//! uninspected.
//!
//! Needs root (skips loudly otherwise). Each test builds its own namespace and origins.

use std::time::Duration;

use tests::clients::{exit_of, outcome, output_of, quote};
use tests::inspect::InspectOrigins;
use tests::{Netns, Origins, WardenRun, assert_run, assert_run_eq, audit, skip_unless_root};

const T: Duration = Duration::from_secs(90);

/// curl printing the body, the `x-warden` header and the status; `--path-as-is` so dot
/// segments reach Warden as written.
fn curl(method: &str, url: &str) -> String {
    format!(
        "curl -sS -g --path-as-is --max-time 20 -X {method} -D - {} \
         -w '\\nstatus %{{http_code}}\\n'",
        quote(url)
    )
}

const RULES: &str = "GET https://h2.example/allowed/**, https://h2.example/any-method/*.txt";

fn steps(h2: &str, h1: &str, ca: &std::path::Path) -> Vec<String> {
    vec![
        outcome("allowed", &curl("GET", &format!("{h2}/allowed/a/b?q=1"))),
        outcome("glob", &curl("PUT", &format!("{h2}/any-method/x.txt"))),
        outcome("sibling", &curl("GET", &format!("{h2}/allowed-not/x"))),
        outcome("method", &curl("POST", &format!("{h2}/allowed/a"))),
        outcome("dots", &curl("GET", &format!("{h2}/allowed/%2e%2e/secret"))),
        // The strict host's address with no SNI (curl sends none for an IP): nothing to judge
        // its requests under.
        outcome("no sni", &curl("GET -k", "https://192.0.2.40/allowed/x")),
        // Not inspected: the client verifies the origin's own certificate.
        outcome(
            "other host",
            &format!(
                "{} --cacert {}",
                curl("GET", &format!("{h1}/plain")),
                ca.display()
            ),
        ),
    ]
}

#[test]
fn strict_mode_blocks_requests_outside_the_rules() {
    if skip_unless_root("strict_mode_blocks_requests_outside_the_rules") {
        return;
    }
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    let inspect = InspectOrigins::start(&netns, &origins).unwrap();
    let (h2, h1) = (inspect.h2(), inspect.h1());
    let out = WardenRun::new(&netns)
        .timeout(T)
        .args(["--upstream-ca"])
        .args([origins.ca_pem_path()])
        .args([
            "--egress-policy",
            "block",
            "--allowed-endpoints",
            "h1.example",
        ])
        .args(["--allowed-urls", RULES])
        .cmd([
            "sh",
            "-c",
            &steps(&h2.url(""), &h1.url(""), &origins.ca_pem_path()).join("\n"),
        ])
        .run()
        .unwrap();
    out.assert_success();
    let text = |label| output_of(&out.stdout, label).unwrap_or_default();
    for label in ["allowed", "glob", "other host"] {
        assert_run_eq!(out, exit_of(&out.stdout, label), Some(0), "{label}");
        assert_run!(
            out,
            text(label).contains("status 200"),
            "{label}: {}",
            text(label)
        );
    }
    for label in ["sibling", "method", "dots"] {
        let t = text(label);
        assert_run!(out, t.contains("status 403"), "{label}: {t}");
        assert_run!(out, t.contains("x-warden: url-not-allowed"), "{label}: {t}");
    }
    assert_run!(
        out,
        exit_of(&out.stdout, "no sni") != Some(0),
        "no SNI: {}",
        text("no sni")
    );
    let no_sni = out.one_connection("the connection without SNI", |c| {
        c["tls"]["sni"].is_null() && c["dst"]["ip"] == "192.0.2.40"
    });
    assert_run_eq!(out, no_sni["decision"], "blocked", "{no_sni}");
    assert_run!(
        out,
        no_sni["reason"]
            .as_str()
            .unwrap_or("")
            .contains("strict host h2.example"),
        "{no_sni}"
    );
    assert_run!(
        out,
        text("sibling").contains("add to allowed-urls: GET https://h2.example/allowed-not/x"),
        "the refusal names the rule to add: {}",
        text("sibling")
    );

    let one = |url: &str| {
        let found = audit::requests_for(&out.records, url);
        assert_run_eq!(out, found.len(), 1, "request records for {url}");
        found[0].clone()
    };
    let allowed = one("https://h2.example/allowed/a/b?q=1");
    assert_run_eq!(out, allowed["decision"], "allowed", "{allowed}");
    assert_run_eq!(
        out,
        allowed["rule"],
        "GET https://h2.example/allowed/**",
        "{allowed}"
    );
    let glob = one("https://h2.example/any-method/x.txt");
    assert_run_eq!(
        out,
        glob["rule"],
        "https://h2.example/any-method/*.txt",
        "{glob}"
    );
    for url in [
        "https://h2.example/allowed-not/x",
        "https://h2.example/allowed/a",
        "https://h2.example/allowed/%2e%2e/secret",
    ] {
        let r = one(url);
        assert_run_eq!(out, r["decision"], "blocked", "{r}");
        assert_run_eq!(out, r["http"]["status"], 403, "{r}");
        assert_run!(
            out,
            r["reason"].as_str().unwrap_or("").contains("allowed-urls"),
            "{r}"
        );
    }
    // The strict host's connections were inspected without --tls-inspection; the other
    // allowed host was not.
    assert_run!(
        out,
        audit::requests_to(&out.records, "https://h1.example").is_empty(),
        "h1.example was inspected"
    );
    let seen: Vec<String> = h2.requests().iter().map(|r| r.target.clone()).collect();
    assert_eq!(
        seen,
        ["/allowed/a/b?q=1", "/any-method/x.txt"],
        "the origin saw {seen:?}"
    );
}

#[test]
fn audit_mode_records_requests_outside_the_rules() {
    if skip_unless_root("audit_mode_records_requests_outside_the_rules") {
        return;
    }
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    let inspect = InspectOrigins::start(&netns, &origins).unwrap();
    let (h2, h1) = (inspect.h2(), inspect.h1());
    let out = WardenRun::new(&netns)
        .timeout(T)
        .args(["--upstream-ca"])
        .args([origins.ca_pem_path()])
        .args(["--allowed-urls", RULES])
        .cmd([
            "sh",
            "-c",
            &steps(&h2.url(""), &h1.url(""), &origins.ca_pem_path()).join("\n"),
        ])
        .run()
        .unwrap();
    out.assert_success();
    for label in ["allowed", "sibling", "method"] {
        let t = output_of(&out.stdout, label).unwrap_or_default();
        assert_run!(out, t.contains("status 200"), "{label}: {t}");
    }
    let r = audit::requests_for(&out.records, "https://h2.example/allowed-not/x");
    assert_run_eq!(out, r.len(), 1, "sibling record");
    assert_run_eq!(out, r[0]["decision"], "audited", "{}", r[0]);
    assert_run!(
        out,
        r[0]["reason"]
            .as_str()
            .unwrap_or("")
            .contains("add to allowed-urls: GET https://h2.example/allowed-not/x"),
        "{}",
        r[0]
    );
    let ok = audit::requests_for(&out.records, "https://h2.example/allowed/a/b?q=1");
    assert_run_eq!(out, ok[0]["decision"], "allowed", "{}", ok[0]);
}
