//! A client that does not trust Warden's certificate (its own bundled roots, a pinned
//! certificate): here curl with `--cacert` naming only the origin's CA. Its first connection
//! fails, since it refuses Warden's leaf, and is recorded with the flag
//! `client-rejected-certificate`; Warden then passes that host through for the rest of the job,
//! so the same command run again succeeds against the origin's own certificate, flagged
//! `not-inspected`, with no `request` record. Other hosts stay inspected.
//!
//! Needs root (skips loudly otherwise). Each test builds its own namespace and origins.

use std::time::Duration;

use tests::clients::{self, Http, exit_of, outcome, output_of};
use tests::inspect::{H1_ADDR, H2_ADDR, InspectOrigins};
use tests::{
    Netns, Origins, RunOutput, WardenRun, assert_run, assert_run_eq, audit, skip_unless_root,
};

/// Deadline for one `warden run`; passing runs take a few seconds.
const T: Duration = Duration::from_secs(60);

#[track_caller]
fn step(out: &RunOutput, label: &str) -> (Option<i32>, String) {
    let text = output_of(&out.stdout, label).unwrap_or_default();
    (exit_of(&out.stdout, label), text)
}

#[test]
fn a_client_that_rejects_wardens_certificate_is_passed_through_next_time() {
    if skip_unless_root("a_client_that_rejects_wardens_certificate_is_passed_through_next_time") {
        return;
    }
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    let inspect = InspectOrigins::start(&netns, &origins).unwrap();
    let ca = origins.ca_pem_path();
    let pinned = clients::curl_get(&inspect.h2().url("/pinned"), Http::V2, Some(&ca));
    let steps = [
        outcome("first", &pinned),
        outcome("second", &pinned),
        // Passed through for everyone now: a client trusting only Warden's CA fails there.
        outcome(
            "environment",
            &clients::curl_get(&inspect.h2().url("/env"), Http::V2, None),
        ),
        // Another host is still inspected.
        outcome(
            "other host",
            &clients::curl_get(&inspect.h1().url("/other"), Http::V2, None),
        ),
    ];
    let out = WardenRun::new(&netns)
        .timeout(T)
        .args(["--tls-inspection", "--upstream-ca"])
        .args([&ca])
        .cmd(["sh", "-c", &steps.join("\n")])
        .run()
        .unwrap();
    out.assert_success();

    // curl 60: "SSL certificate problem: unable to get local issuer certificate".
    assert_run_eq!(out, step(&out, "first").0, Some(60), "first");
    let (code, text) = step(&out, "second");
    assert_run_eq!(out, code, Some(0), "second");
    assert_run!(out, text.contains("origin=h2.example version=HTTP/2.0"), "");
    assert_run_eq!(out, step(&out, "environment").0, Some(60), "environment");
    assert_run_eq!(out, step(&out, "other host").0, Some(0), "other host");

    let conns = audit::connections_to(&out.records, &H2_ADDR.ip().to_string(), 443);
    assert_run_eq!(out, conns.len(), 3, "connection records to h2.example");
    let (first, later) = (conns[0], &conns[1..]);
    assert_run!(
        out,
        audit::has_flag(first, "client-rejected-certificate"),
        "first"
    );
    let reason = first["reason"].as_str().unwrap_or_default();
    assert_run!(
        out,
        reason.contains("rejected Warden's certificate"),
        "{reason}"
    );
    for c in later {
        assert_run!(out, audit::has_flag(c, "not-inspected"), "{c}");
        assert_run!(out, !audit::has_flag(c, "inspected"), "{c}");
        assert_run!(
            out,
            !audit::has_flag(c, "client-rejected-certificate"),
            "{c}"
        );
        let reason = c["reason"].as_str().unwrap_or_default();
        assert_run!(
            out,
            reason.contains("rejected Warden's certificate"),
            "{reason}"
        );
    }
    assert_run!(
        out,
        audit::requests_to(&out.records, "https://h2.example").is_empty(),
        "request records for h2.example"
    );
    let other = audit::connections_to(&out.records, &H1_ADDR.ip().to_string(), 443);
    assert_run!(out, audit::has_flag(other[0], "inspected"), "h1.example");
    let found = audit::requests_for(&out.records, "https://h1.example/other");
    assert_run_eq!(out, found.len(), 1, "h1.example's request record");

    // Only the second attempt reached the origin as HTTP, and it came from the client itself.
    let seen = inspect.h2().requests();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].target, "/pinned");
    assert!(seen[0].is_h2(), "{seen:?}");
}
