//! TLS inspection in block mode: a host the policy allows is inspected (its `request` records
//! say `allowed`, with the rule that allowed it, like its connection record), and a host it
//! does not allow is refused as without inspection: a reset, a `blocked` connection record, no
//! `request` record, and Warden never dials the origin.
//!
//! Needs root (skips loudly otherwise). Each test builds its own namespace and origins.

use std::time::Duration;

use tests::clients::{self, Http, exit_of, outcome, output_of};
use tests::inspect::{H1_ADDR, H2_ADDR, InspectOrigins};
use tests::{Netns, Origins, WardenRun, assert_run, assert_run_eq, audit, skip_unless_root};

/// Deadline for one `warden run`; passing runs take a few seconds.
const T: Duration = Duration::from_secs(60);

#[test]
fn block_mode_inspects_what_it_allows_and_resets_the_rest() {
    if skip_unless_root("block_mode_inspects_what_it_allows_and_resets_the_rest") {
        return;
    }
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    let inspect = InspectOrigins::start(&netns, &origins).unwrap();
    let (h2, h1) = (inspect.h2(), inspect.h1());
    let steps = [
        outcome(
            "allowed",
            &clients::curl_get(&h2.url("/allowed?token=t"), Http::V2, None),
        ),
        outcome(
            "allowed python",
            &clients::python_requests(&h2.url("/allowed/python"), None),
        ),
        outcome(
            "other",
            &clients::curl_get(&h1.url("/denied"), Http::V2, None),
        ),
    ];
    let out = WardenRun::new(&netns)
        .timeout(T)
        .args(["--tls-inspection", "--upstream-ca"])
        .args([origins.ca_pem_path()])
        .args([
            "--egress-policy",
            "block",
            "--allowed-endpoints",
            "h2.example",
        ])
        .cmd(["sh", "-c", &steps.join("\n")])
        .run()
        .unwrap();
    out.assert_success();

    for label in ["allowed", "allowed python"] {
        assert_run_eq!(out, exit_of(&out.stdout, label), Some(0), "{label}");
    }
    let text = output_of(&out.stdout, "allowed").unwrap_or_default();
    assert_run!(
        out,
        text.contains("status 200 version 2"),
        "h2 through inspection"
    );
    // curl 35: the TLS handshake was reset.
    let code = exit_of(&out.stdout, "other");
    assert_run!(
        out,
        matches!(code, Some(c) if c != 0),
        "the other host was reached"
    );
    let text = output_of(&out.stdout, "other").unwrap_or_default();
    assert_run!(
        out,
        text.contains("status 000"),
        "the other host answered: {text}"
    );

    for url in [
        "https://h2.example/allowed?token=REDACTED",
        "https://h2.example/allowed/python",
    ] {
        let found = audit::requests_for(&out.records, url);
        assert_run_eq!(out, found.len(), 1, "request records for {url}");
        assert_run_eq!(out, found[0]["decision"], "allowed", "{url}");
        assert_run_eq!(out, found[0]["rule"], "h2.example", "{url}");
        assert_run_eq!(out, found[0]["http"]["status"], 200, "{url}");
    }
    let allowed = audit::connections_to(&out.records, &H2_ADDR.ip().to_string(), 443);
    assert_run_eq!(out, allowed.len(), 2, "connections to h2.example");
    for c in allowed {
        assert_run_eq!(out, c["decision"], "allowed", "{c}");
        assert_run!(out, audit::has_flag(c, "inspected"), "{c}");
    }

    let denied = out.one_connection("h1.example", |c| {
        audit::is_to(c, &H1_ADDR.ip().to_string(), 443)
    });
    assert_run_eq!(out, denied["decision"], "blocked", "h1.example");
    assert_run_eq!(out, denied["tls"]["sni"], "h1.example", "h1.example");
    assert_run!(
        out,
        !audit::has_flag(denied, "inspected"),
        "inspected though blocked"
    );
    assert_run!(
        out,
        audit::requests_to(&out.records, "https://h1.example").is_empty(),
        "a request record for a blocked host"
    );
    assert_run_eq!(
        out,
        audit::requests(&out.records).len(),
        2,
        "request records"
    );

    assert_eq!(h2.requests().len(), 2, "{:?}", h2.requests());
    assert_eq!(h1.connections(), 0, "Warden dialled a blocked host");
}
