//! What TLS inspection must not write down: a `request` record keeps the full URL, but the
//! values of signed-URL query parameters (`X-Amz-Signature`, `token`, `sig`, any `…_TOKEN`) are
//! `REDACTED`, other parameters kept as sent; and header values (`Authorization`, `Cookie`) are
//! never recorded anywhere in the audit log, although the origin still receives them intact.
//!
//! Needs root (skips loudly otherwise). Each test builds its own namespace and origins.

use std::time::Duration;

use tests::clients::{self, exit_of, quote};
use tests::inspect::InspectOrigins;
use tests::{Netns, Origins, WardenRun, assert_run, assert_run_eq, audit, skip_unless_root};

/// Deadline for one `warden run`; passing runs take a few seconds.
const T: Duration = Duration::from_secs(60);
/// Every secret the clients send contains this; the raw audit log must not.
const SECRET: &str = "SECRET";
/// The headers each client sends.
const AUTHORIZATION: &str = "Authorization: Bearer SECRET-BEARER";
const COOKIE: &str = "Cookie: session=SECRET-COOKIE; theme=dark";

/// A curl asking `url` with the secret headers, no CA option of its own; prints
/// `status NNN version V` (`http` is `--http2` or `--http1.1`).
fn curl_with_secrets(url: &str, http: &str) -> String {
    format!(
        "curl -sS --fail --max-time 20 {http} -H {} -H {} -o /dev/null \
         -w 'status %{{http_code}} version %{{http_version}}\\n' {}",
        quote(AUTHORIZATION),
        quote(COOKIE),
        quote(url)
    )
}

#[test]
fn signed_url_values_and_credential_headers_are_never_recorded() {
    if skip_unless_root("signed_url_values_and_credential_headers_are_never_recorded") {
        return;
    }
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    let inspect = InspectOrigins::start(&netns, &origins).unwrap();
    let (h2, h1) = (inspect.h2(), inspect.h1());
    // The example, in h2 and in HTTP/1.1; then names redacted by rule, not by list.
    let cases = [
        (
            h2.url("/signed?X-Amz-Signature=abc&token=t&x=1"),
            "--http2",
            h2.url("/signed?X-Amz-Signature=REDACTED&token=REDACTED&x=1"),
        ),
        (
            h1.url("/signed?X-Amz-Signature=abc&token=t&x=1"),
            "--http1.1",
            h1.url("/signed?X-Amz-Signature=REDACTED&token=REDACTED&x=1"),
        ),
        (
            h2.url("/more?sig=SECRET-SIG&GITHUB_TOKEN=SECRET-GH&deploy-key=SECRET-K&page=2"),
            "--http2",
            h2.url("/more?sig=REDACTED&GITHUB_TOKEN=REDACTED&deploy-key=REDACTED&page=2"),
        ),
    ];
    let script: Vec<String> = cases
        .iter()
        .enumerate()
        .map(|(i, (url, http, _))| clients::outcome(&i.to_string(), &curl_with_secrets(url, http)))
        .collect();
    let out = WardenRun::new(&netns)
        .timeout(T)
        .args(["--tls-inspection", "--upstream-ca"])
        .args([origins.ca_pem_path()])
        .cmd(["sh", "-c", &script.join("\n")])
        .run()
        .unwrap();
    out.assert_success();
    for (i, (_, _, recorded)) in cases.iter().enumerate() {
        assert_run_eq!(
            out,
            exit_of(&out.stdout, &i.to_string()),
            Some(0),
            "step {i}"
        );
        let found = audit::requests_for(&out.records, recorded);
        assert_run_eq!(out, found.len(), 1, "a request record for {recorded}");
        assert_run_eq!(out, found[0]["http"]["status"], 200, "{recorded}");
    }
    assert_run_eq!(out, audit::requests(&out.records).len(), cases.len(), "");

    // Nothing secret anywhere in the log: not in request records, not in the connection
    // records' command lines, not in any reason.
    let raw = std::fs::read_to_string(&out.audit_log).unwrap();
    for needle in [
        SECRET,
        "Bearer",
        "session=",
        "X-Amz-Signature=abc",
        "token=t&",
    ] {
        assert_run!(out, !raw.contains(needle), "{needle:?} is in the audit log");
    }
    // Only the URL, method, status, version and host are recorded of the HTTP exchange.
    for r in audit::requests(&out.records) {
        let mut keys: Vec<&str> = r["http"]
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        keys.sort_unstable();
        assert_run_eq!(
            out,
            keys,
            ["host", "method", "status", "url", "version"],
            "{r}"
        );
    }

    // Warden forwarded everything as sent: the origins got the secrets, not the redactions.
    for (origin, path) in [(h2, "/signed"), (h1, "/signed"), (h2, "/more")] {
        let seen = &origin.requests_to(path)[0];
        assert!(!seen.target.contains("REDACTED"), "{seen:?}");
        assert_eq!(
            seen.header("authorization"),
            Some("Bearer SECRET-BEARER"),
            "{seen:?}"
        );
        let cookies: Vec<&str> = seen
            .headers
            .iter()
            .filter(|(n, _)| n == "cookie")
            .map(|(_, v)| v.as_str())
            .collect();
        // h2 may split a cookie header into one field per cookie (RFC 9113 §8.2.3).
        assert!(
            cookies.join("; ") == "session=SECRET-COOKIE; theme=dark",
            "{seen:?}"
        );
    }
    assert_eq!(
        h2.requests_to("/signed")[0].target,
        "/signed?X-Amz-Signature=abc&token=t&x=1"
    );
}
