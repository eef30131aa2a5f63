//! Edges of the DNS layer found in review: a query sent straight to the resolver's port (not
//! redirected by the hooks) is refused and recorded `unattributed`, never forwarded; a lookup
//! still waiting for its upstream when Warden stops is recorded `interrupted`, not lost; a
//! reverse name padded with zeros (data for the reverse zone's owner) is not taken for the
//! address it parses to.
//!
//! Needs root (skips loudly otherwise).

use std::{net::UdpSocket, time::Duration};

use tests::clients::{self, outcome, output_of};
use tests::dns::{A_NAME, DigOutput};
use tests::{DnsServer, Netns, WardenRun, assert_run, assert_run_eq, audit, skip_unless_root};

const T: Duration = Duration::from_secs(30);

#[test]
fn a_query_straight_to_the_resolver_port_is_refused() {
    if skip_unless_root("a_query_straight_to_the_resolver_port_is_refused") {
        return;
    }
    let netns = Netns::new().unwrap();
    let server = DnsServer::start(&netns).unwrap();
    // The job finds Warden's resolver (the only UDP socket on 127.0.0.1) and asks it directly.
    let find = "port=$(ss -Hlun 'src 127.0.0.1' | awk '{print $4}' | sed 's/.*://' | head -1)";
    let direct = format!(
        "{find}\n{}",
        outcome(
            "direct",
            &format!("dig -r +tries=1 +time=3 -p \"$port\" @127.0.0.1 {A_NAME} A +noall +comments")
        )
    );
    let out = WardenRun::new(&netns)
        .timeout(T)
        .cmd(["sh", "-c", &direct])
        .run()
        .unwrap();
    out.assert_success();
    let dig = DigOutput::parse(&output_of(&out.stdout, "direct").unwrap_or_default());
    assert_run_eq!(out, dig.status.as_deref(), Some("REFUSED"), "{dig:?}");
    let records = audit::dns_for(&out.records, A_NAME, "A");
    assert_run_eq!(out, records.len(), 1, "one record");
    let r = records[0];
    assert_run_eq!(out, r["decision"], "blocked", "{r}");
    assert_run!(out, audit::has_flag(r, "unattributed"), "{r}");
    assert_run!(
        out,
        r["dns"].get("upstream").is_none(),
        "not forwarded: {r}"
    );
    assert_run!(out, server.queries_for(A_NAME).is_empty(), "never upstream");
}

#[test]
fn a_lookup_cut_at_stop_is_recorded() {
    if skip_unless_root("a_lookup_cut_at_stop_is_recorded") {
        return;
    }
    let netns = Netns::new().unwrap();
    let _server = DnsServer::start(&netns).unwrap();
    // An upstream that takes queries and never answers.
    let sink = netns
        .enter_thread(|| UdpSocket::bind(("192.0.2.20", 5353)))
        .unwrap()
        .unwrap();
    // The command exits while its lookup is still waiting upstream.
    let script = format!("dig -r +tries=1 +time=9 {A_NAME} A >/dev/null 2>&1 &\nsleep 0.5");
    let out = WardenRun::new(&netns)
        .timeout(T)
        .args(["--dns-upstream", "192.0.2.20:5353"])
        .cmd(["sh", "-c", &script])
        .run()
        .unwrap();
    out.assert_success();
    out.assert_bracketed();
    let records = audit::dns_for(&out.records, A_NAME, "A");
    assert_run_eq!(out, records.len(), 1, "the lookup is recorded");
    let r = records[0];
    assert_run!(
        out,
        audit::has_flag(r, "interrupted") || audit::has_flag(r, "upstream-error"),
        "cut at stop (or given up on): {r}"
    );
    drop(sink);
}

#[test]
fn padded_reverse_names_are_not_addresses() {
    if skip_unless_root("padded_reverse_names_are_not_addresses") {
        return;
    }
    let netns = Netns::new().unwrap();
    let server = DnsServer::start(&netns).unwrap();
    let steps = [
        clients::dig_short(None, A_NAME, "A", &[]),
        outcome(
            "canonical",
            &clients::dig(None, "10.2.0.192.in-addr.arpa", "PTR", &[]),
        ),
        outcome(
            "padded",
            &clients::dig(None, "010.2.0.192.in-addr.arpa", "PTR", &[]),
        ),
    ];
    let out = WardenRun::new(&netns)
        .timeout(T)
        .args(["--egress-policy", "block", "--allowed-endpoints", A_NAME])
        .cmd(["sh", "-c", &steps.join("\n")])
        .run()
        .unwrap();
    out.assert_success();
    let canonical = &audit::dns_for(&out.records, "10.2.0.192.in-addr.arpa", "PTR");
    assert_run_eq!(out, canonical[0]["decision"], "allowed", "{}", canonical[0]);
    let padded = &audit::dns_for(&out.records, "010.2.0.192.in-addr.arpa", "PTR");
    assert_run_eq!(out, padded[0]["decision"], "blocked", "{}", padded[0]);
    let dig = DigOutput::parse(&output_of(&out.stdout, "padded").unwrap_or_default());
    assert_run_eq!(out, dig.status.as_deref(), Some("NXDOMAIN"), "{dig:?}");
    assert_run!(
        out,
        server.queries_for("010.2.0.192.in-addr.arpa").is_empty(),
        "the padded name never went upstream"
    );
}
