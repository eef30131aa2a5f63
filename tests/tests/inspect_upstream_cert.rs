//! Warden never vouches for a server it could not verify: under TLS inspection, a server whose
//! certificate comes from a CA nobody trusts (`untrusted.example`) or names another host
//! (`wrong-name.example`) is refused. The client fails (it gets a reset, never Warden's
//! certificate for that name), the connection record says `blocked` with the flag
//! `upstream-cert-invalid` in audit mode as in block mode (even when the policy allows the
//! host), and the origin never receives an HTTP request.
//!
//! Needs root (skips loudly otherwise). Each test builds its own namespace and origins.

use std::time::Duration;

use tests::clients::{self, Http, exit_of, outcome, output_of};
use tests::inspect::{H2_ADDR, HttpsOrigin, InspectOrigins, UNTRUSTED_ADDR, WRONG_NAME_ADDR};
use tests::{
    Netns, Origins, RunOutput, WardenRun, assert_run, assert_run_eq, audit, skip_unless_root,
};

/// Deadline for one `warden run`; passing runs take a few seconds.
const T: Duration = Duration::from_secs(60);

/// Clients to both bad origins (curl and Python each), and curl to h2.example, the control
/// that shows inspection itself works in the same run.
fn script(inspect: &InspectOrigins) -> String {
    let (untrusted, wrong) = (inspect.untrusted(), inspect.wrong_name());
    [
        outcome(
            "untrusted curl",
            &clients::curl_get(&untrusted.url("/u/curl"), Http::V2, None),
        ),
        outcome(
            "untrusted python",
            &clients::python_urllib(&untrusted.url("/u/python"), None),
        ),
        outcome(
            "wrong-name curl",
            &clients::curl_get(&wrong.url("/w/curl"), Http::V1, None),
        ),
        outcome(
            "wrong-name python",
            &clients::python_urllib(&wrong.url("/w/python"), None),
        ),
        outcome(
            "control",
            &clients::curl_get(&inspect.h2().url("/control"), Http::V2, None),
        ),
    ]
    .join("\n")
}

fn run(netns: &Netns, origins: &Origins, inspect: &InspectOrigins, extra: &[&str]) -> RunOutput {
    WardenRun::new(netns)
        .timeout(T)
        .args(["--tls-inspection", "--upstream-ca"])
        .args([origins.ca_pem_path()])
        .args(extra)
        .cmd(["sh", "-c", &script(inspect)])
        .run()
        .unwrap()
}

/// What every run must show, whatever its mode.
#[track_caller]
fn assert_refused(out: &RunOutput, inspect: &InspectOrigins) {
    for label in ["untrusted curl", "wrong-name curl"] {
        let code = exit_of(&out.stdout, label);
        assert_run!(out, matches!(code, Some(c) if c != 0), "{label} succeeded");
        let text = output_of(&out.stdout, label).unwrap_or_default();
        assert_run!(out, !text.contains("status 200"), "{label} got an answer");
    }
    for label in ["untrusted python", "wrong-name python"] {
        assert_run_eq!(out, exit_of(&out.stdout, label), Some(2), "{label}");
        let text = output_of(&out.stdout, label).unwrap_or_default();
        assert_run!(out, text.starts_with("error "), "{label}: {text}");
    }
    assert_run_eq!(out, exit_of(&out.stdout, "control"), Some(0), "control");

    let bad: [(&HttpsOrigin, std::net::SocketAddr); 2] = [
        (inspect.untrusted(), UNTRUSTED_ADDR),
        (inspect.wrong_name(), WRONG_NAME_ADDR),
    ];
    for (origin, addr) in bad {
        let name = origin.name();
        let conns = audit::connections_to(&out.records, &addr.ip().to_string(), 443);
        assert_run_eq!(out, conns.len(), 2, "connection records to {name}");
        for c in conns {
            assert_run_eq!(out, c["decision"], "blocked", "{name}");
            assert_run!(out, audit::has_flag(c, "upstream-cert-invalid"), "{name}");
            assert_run_eq!(out, c["tls"]["sni"], name, "{name}");
            let reason = c["reason"].as_str().unwrap_or_default();
            assert_run!(out, reason.contains("certificate"), "{name}: {reason}");
        }
        let prefix = format!("https://{name}");
        assert_run!(
            out,
            audit::requests_to(&out.records, &prefix).is_empty(),
            "{name}"
        );
        // Warden reached the origin and gave up at its certificate: no handshake, no request.
        assert!(origin.connections() >= 2, "{name}: {:?}", origin.accepted());
        assert_eq!(origin.handshakes(), 0, "{name}: {:?}", origin.errors());
        assert!(
            origin.requests().is_empty(),
            "{name}: {:?}",
            origin.requests()
        );
    }
    let control = audit::connections_to(&out.records, &H2_ADDR.ip().to_string(), 443);
    assert_run!(out, audit::has_flag(control[0], "inspected"), "control");
    assert_run!(
        out,
        !audit::has_flag(control[0], "upstream-cert-invalid"),
        "control"
    );
    assert_run_eq!(
        out,
        audit::requests(&out.records).len(),
        1,
        "only the control's"
    );
}

#[test]
fn invalid_upstream_certificates_are_refused_in_audit_mode() {
    if skip_unless_root("invalid_upstream_certificates_are_refused_in_audit_mode") {
        return;
    }
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    let inspect = InspectOrigins::start(&netns, &origins).unwrap();
    let out = run(&netns, &origins, &inspect, &[]);
    out.assert_bracketed();
    assert_refused(&out, &inspect);
    let control = audit::connections_to(&out.records, &H2_ADDR.ip().to_string(), 443);
    assert_run_eq!(out, control[0]["decision"], "audited", "control");
}

#[test]
fn invalid_upstream_certificates_are_refused_even_when_allowed() {
    if skip_unless_root("invalid_upstream_certificates_are_refused_even_when_allowed") {
        return;
    }
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    let inspect = InspectOrigins::start(&netns, &origins).unwrap();
    let allowed = "untrusted.example,wrong-name.example,h2.example";
    let extra = ["--egress-policy", "block", "--allowed-endpoints", allowed];
    let out = run(&netns, &origins, &inspect, &extra);
    assert_refused(&out, &inspect);
    let control = audit::connections_to(&out.records, &H2_ADDR.ip().to_string(), 443);
    assert_run_eq!(out, control[0]["decision"], "allowed", "control");
}
