//! What Warden's resolver does to what passes through it (docs/dns.md, "What is decided"): ECH
//! configurations are stripped from HTTPS answers (flag `ech-stripped`), over UDP and TCP, with
//! the rest of the record kept, so clients never hide the server name from the policy; a
//! malformed query gets FORMERR (flag `malformed-query`, decision `blocked`) and Warden carries
//! on answering.
//!
//! Needs root (skips loudly otherwise). Each test runs its own dnsmasq for `test.example`,
//! whose HTTPS record for `a.test.example` carries an ECHConfigList.

use std::time::Duration;

use tests::clients::{self, exit_of, outcome, output_of};
use tests::dns::{A_NAME, DigOutput};
use tests::{
    DnsServer, Netns, RunOutput, WardenRun, assert_run, assert_run_eq, audit, process,
    skip_unless_root,
};

/// Deadline for one `warden run`; passing runs take about a second.
const T: Duration = Duration::from_secs(30);

fn run(netns: &Netns, steps: &[String]) -> RunOutput {
    let out = WardenRun::new(netns)
        .timeout(T)
        .cmd(["sh", "-c", &steps.join("\n")])
        .run()
        .unwrap();
    out.assert_success();
    out.assert_bracketed();
    out
}

#[test]
fn ech_is_stripped_from_https_answers() {
    if skip_unless_root("ech_is_stripped_from_https_answers") {
        return;
    }
    let netns = Netns::new().unwrap();
    let _server = DnsServer::start(&netns).unwrap();
    // Outside Warden, the zone's record has an ECH configuration.
    let direct = netns.sh(&clients::dig(None, A_NAME, "HTTPS", &[]));
    let direct = DigOutput::parse(&process::run_ok(direct, T).unwrap());
    let https = direct.data_of("HTTPS");
    assert!(
        https.len() == 1 && https[0].contains(" ech=") && https[0].contains(r#"alpn="h2""#),
        "the zone's HTTPS record: {direct:?}"
    );

    let steps = [
        outcome("udp", &clients::dig(None, A_NAME, "HTTPS", &[])),
        outcome("tcp", &clients::dig(None, A_NAME, "HTTPS", &["+tcp"])),
    ];
    let out = run(&netns, &steps);
    for label in ["udp", "tcp"] {
        assert_run_eq!(out, exit_of(&out.stdout, label), Some(0), "{label}");
        let dig = DigOutput::parse(&output_of(&out.stdout, label).unwrap_or_default());
        let https = dig.data_of("HTTPS");
        assert_run_eq!(out, https.len(), 1, "{label}: one HTTPS record");
        assert_run!(out, !https[0].contains("ech="), "{label}: ECH stripped");
        // Only the ech parameter went: priority, target and alpn are as the zone has them.
        let kept = direct.data_of("HTTPS")[0]
            .split(" ech=")
            .next()
            .unwrap_or_default();
        assert_run_eq!(out, https[0], kept, "{label}: the rest is kept");
    }
    let records = audit::dns_for(&out.records, A_NAME, "HTTPS");
    assert_run_eq!(out, records.len(), 2, "two HTTPS lookups");
    for record in records {
        assert_run!(out, audit::has_flag(record, "ech-stripped"), "{record}");
        let data = audit::answer_data(record, "HTTPS");
        assert_run!(
            out,
            data.len() == 1 && !data[0].contains("ech") && data[0].contains("h2"),
            "the recorded answer is what the client got: {record}"
        );
    }
}

/// A query header (id 0xabcd, recursion desired, one question) followed by a question whose
/// name is a compression pointer to nowhere: a message no parser may accept.
const BAD_QUESTION: &[u8] = b"\xab\xcd\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x05hello\xff\xff";
/// Fewer bytes than a DNS header.
const TOO_SHORT: &[u8] = b"\x12\x34garbage!";

#[test]
fn malformed_queries_get_formerr_and_warden_carries_on() {
    if skip_unless_root("malformed_queries_get_formerr_and_warden_carries_on") {
        return;
    }
    let netns = Netns::new().unwrap();
    let server = DnsServer::start(&netns).unwrap();
    let steps = [
        outcome(
            "bad",
            &clients::python_udp_exchange("192.0.2.53", 53, BAD_QUESTION, 2000),
        ),
        outcome(
            "short",
            &clients::python_udp_exchange("192.0.2.53", 53, TOO_SHORT, 500),
        ),
        outcome("after", &clients::dig(None, A_NAME, "A", &[])),
    ];
    let out = run(&netns, &steps);
    let said = |label| output_of(&out.stdout, label).unwrap_or_default();
    // FORMERR (RCODE 1, RFC 1035 §4.1.1) for the same id, as a response, from the server
    // asked; no question to echo.
    let formerr = "reply abcd81010000000000000000 from 192.0.2.53 53";
    assert_run!(out, said("bad").contains(formerr), "FORMERR: {formerr}");
    // With no complete header there may be nothing to answer; if there is, it is FORMERR.
    let short = said("short");
    assert_run!(
        out,
        short.contains("no reply") || short.contains("reply 1234810"),
        "the short query: {short}"
    );
    let after = DigOutput::parse(&said("after"));
    assert_run_eq!(
        out,
        after.data_of("A"),
        ["192.0.2.10"],
        "a normal lookup still works"
    );

    let malformed: Vec<_> = audit::dns_records(&out.records)
        .into_iter()
        .filter(|r| audit::has_flag(r, "malformed-query"))
        .collect();
    assert_run_eq!(out, malformed.len(), 2, "one record per malformed query");
    for record in malformed {
        out.assert_not_allowed(record, "blocked");
        assert_run_eq!(out, audit::exe_name(record), "python3", "{record}");
        assert_run!(out, audit::is_to(record, "192.0.2.53", 53), "{record}");
    }
    let queries = server.queries();
    assert_run!(
        out,
        queries.len() == 1 && queries[0].is(A_NAME, "A"),
        "nothing malformed went upstream: {queries:?}"
    );
}
