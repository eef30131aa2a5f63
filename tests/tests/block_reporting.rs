//! What `warden run` tells the user about the connections no rule allowed: with
//! `--fail-on-blocked`, exit status 3 when the command succeeded but something was blocked (and
//! the command's own status otherwise); and, in every record of such a connection, the entry to
//! add to allowed-endpoints.
//!
//! Needs root (skips loudly otherwise). Each test builds its own namespace and origins.

use std::time::Duration;

use serde_json::Value;
use tests::clients::{self, outcome};
use tests::{Netns, Origins, WardenRun, assert_run, assert_run_eq, audit, skip_unless_root};

/// Deadline for one `warden run`; passing runs take a few seconds.
const T: Duration = Duration::from_secs(30);

#[test]
fn fail_on_blocked() {
    if skip_unless_root("fail_on_blocked") {
        return;
    }
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    let ca = origins.ca_pem_path();
    // curl without --fail exits 0 on the 403, so the command itself succeeds.
    let refused = clients::curl_status(&[], "http://http.example/", &ca);
    let allowed = clients::curl("https://tls.example/", &ca);
    let failing = format!("{refused}; exit 5");
    // (what, mode, --fail-on-blocked, script, blocked records, exit status)
    let cases = [
        ("blocked, command ok", "block", true, &refused, 1, 3),
        ("nothing blocked", "block", true, &allowed, 0, 0),
        ("blocked, command failed", "block", true, &failing, 1, 5),
        ("blocked, no flag", "block", false, &refused, 1, 0),
        ("audited is not blocked", "audit", true, &refused, 0, 0),
    ];
    for (what, mode, flag, script, blocked, code) in cases {
        let mut args = vec![
            "--egress-policy",
            mode,
            "--allowed-endpoints",
            "tls.example",
        ];
        if flag {
            args.push("--fail-on-blocked");
        }
        let out = WardenRun::new(&netns)
            .timeout(T)
            .args(&args)
            .cmd(["sh", "-c", script])
            .run()
            .unwrap();
        assert_run_eq!(out, out.code(), Some(code), "{what}: exit status");
        let records = audit::connections(&out.records);
        let n = records
            .iter()
            .filter(|r| r["decision"] == "blocked")
            .count();
        assert_run_eq!(out, n, blocked, "{what}: blocked records");
        let says = out.stderr.contains("--fail-on-blocked");
        assert_run_eq!(out, says, code == 3, "{what}: stderr explains exit 3");
        out.assert_bracketed();
    }
}

/// docs/policy.md ("How a connection is decided", step 5): when no rule allows a connection,
/// "the record suggests the entry to add", in both modes. The 403 page is not enough: TLS and
/// raw TCP clients never see one, and audit mode is where users learn what to allow. Where in the
/// record is not specified, so any string warden adds about the decision counts (not the facts
/// about the connection: `process`, `dst`, `tls`, `http`).
#[test]
fn records_suggest_the_entry_to_add() {
    if skip_unless_root("records_suggest_the_entry_to_add") {
        return;
    }
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    let ca = origins.ca_pem_path();
    let script = [
        outcome(
            "http",
            &clients::curl_status(&[], "http://http.example/", &ca),
        ),
        outcome("tls", &clients::curl("https://v6.example/", &ca)),
        outcome("raw", &clients::python_echo("raw.example", 7, 1000)),
    ]
    .join("\n");
    for mode in ["block", "audit"] {
        let out = WardenRun::new(&netns)
            .timeout(T)
            .args([
                "--egress-policy",
                mode,
                "--allowed-endpoints",
                "tls.example",
            ])
            .cmd(["sh", "-c", &script])
            .run()
            .unwrap();
        out.assert_success();
        for (ip, port, entry) in [
            ("198.51.100.10", 80, "http.example:80"),
            ("2001:db8::10", 443, "v6.example"),
            ("203.0.113.10", 7, "203.0.113.10:7"),
        ] {
            let record = out.one_connection(&format!("{ip}:{port}"), |r| audit::is_to(r, ip, port));
            assert_run!(
                out,
                suggests(record, entry),
                "{mode} mode: the record suggests {entry:?}: {record}"
            );
        }
    }
}

/// Whether `entry` appears in what the record says about the decision.
fn suggests(record: &Value, entry: &str) -> bool {
    let facts = ["process", "dst", "tls", "http", "time", "kind"];
    record.as_object().is_some_and(|fields| {
        fields
            .iter()
            .filter(|(key, _)| !facts.contains(&key.as_str()))
            .any(|(_, value)| value.to_string().contains(entry))
    })
}
