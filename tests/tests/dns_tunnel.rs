//! DNS tunnelling (docs/dns.md, "What is decided"): lookups shaped like data going out — many
//! different names under one domain, a very long label, a TXT lookup of a name no rule names —
//! are flagged `dns-tunnel-suspected` with the evidence in `reason`, in both modes; in block
//! mode a wildcard does not make them resolve (NXDOMAIN, never sent upstream), an exact rule
//! does.
//!
//! Needs root (skips loudly otherwise). Each test runs its own dnsmasq, whose zone answers every
//! name under `burst.test.example`; every run starts with a fresh detector.

use std::time::Duration;

use serde_json::Value;
use tests::clients::{self, quote};
use tests::dns::{BURST_DOMAIN, DigOutput, TXT_NAME};
use tests::{DnsServer, Netns, RunOutput, WardenRun, assert_run, assert_run_eq, audit};
use tests::{Origins, skip_unless_root};

/// Deadline for one `warden run`; passing runs take about a second.
const T: Duration = Duration::from_secs(30);
/// How many names the bursts look up: twice the documented "many".
const BURST: usize = 60;
/// A 60-character base32 label, as a tunnel packs data into.
const LONG_LABEL: &str = "mzxw6ytboi2dkmzqgeztgmrvgq3tknzygiytcmzugq2dknrxgyztqmzqgi3q";

fn run(netns: &Netns, args: &[&str], script: &str) -> RunOutput {
    let out = WardenRun::new(netns)
        .timeout(T)
        .args(args)
        .cmd(["sh", "-c", script])
        .run()
        .unwrap();
    out.assert_success();
    out.assert_bracketed();
    out
}

/// `BURST` different short names under burst.test.example, each label of 8 characters that
/// look random (so no single name is suspicious by its shape).
fn burst_names() -> Vec<String> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..BURST)
        .map(|_| {
            let label: String = (0..8)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    char::from(b"abcdefghijklmnopqrstuvwxyz234567"[(x % 32) as usize])
                })
                .collect();
            format!("{label}.{BURST_DOMAIN}")
        })
        .collect()
}

/// One `dig` process asking for each of `names` in turn (A), printing each header.
fn dig_all(names: &[String]) -> String {
    let names: Vec<String> = names.iter().map(|n| quote(n)).collect();
    format!(
        "dig -r +tries=1 +time=5 +noall +comments {}",
        names.join(" ")
    )
}

/// The `dns` records of `names`, in the order of `names`, one each.
#[track_caller]
fn records_of<'a>(out: &'a RunOutput, names: &[String]) -> Vec<&'a Value> {
    names
        .iter()
        .map(|name| {
            let found = audit::dns_for(&out.records, name, "A");
            assert_run_eq!(out, found.len(), 1, "lookups of {name}");
            found[0]
        })
        .collect()
}

fn flagged(record: &Value) -> bool {
    audit::has_flag(record, "dns-tunnel-suspected")
}

fn reason(record: &Value) -> &str {
    record["reason"].as_str().unwrap_or_default()
}

#[test]
fn a_burst_of_names_under_one_domain_is_flagged() {
    if skip_unless_root("a_burst_of_names_under_one_domain_is_flagged") {
        return;
    }
    let netns = Netns::new().unwrap();
    let server = DnsServer::start(&netns).unwrap();
    let names = burst_names();
    let out = run(&netns, &[], &dig_all(&names));
    let records = records_of(&out, &names);
    // A CI job talks to a handful of hosts per domain: the first names are not suspicious,
    // the last ones are, and once flagged every later new name is.
    let first = records.iter().position(|r| flagged(r)).unwrap_or(BURST);
    assert_run!(
        out,
        (10..=BURST - 10).contains(&first),
        "first flagged: #{first}"
    );
    for record in &records[first..] {
        assert_run!(out, flagged(record), "after the first: {record}");
        let evidence = format!("different names under {BURST_DOMAIN}");
        assert_run!(out, reason(record).contains(&evidence), "{record}");
        // Audit mode: flagged, still answered from upstream.
        out.assert_not_allowed(record, "audited");
        assert_run_eq!(
            out,
            audit::answer_data(record, "A"),
            ["192.0.2.10"],
            "{record}"
        );
    }
    let answered = server
        .queries()
        .iter()
        .filter(|q| q.name.ends_with(BURST_DOMAIN))
        .count();
    assert_run_eq!(out, answered, BURST, "every name was forwarded");
}

#[test]
fn long_labels_and_txt_lookups_are_flagged() {
    if skip_unless_root("long_labels_and_txt_lookups_are_flagged") {
        return;
    }
    let netns = Netns::new().unwrap();
    let _server = DnsServer::start(&netns).unwrap();
    let long = format!("{LONG_LABEL}.{BURST_DOMAIN}");
    let script = clients::script(&[
        clients::dig(None, &long, "A", &[]),
        clients::dig(None, "plain.burst.test.example", "A", &[]),
        clients::dig(None, TXT_NAME, "TXT", &[]),
        clients::dig(None, BURST_DOMAIN, "TXT", &[]),
    ]);
    // A rule names txt.test.example: asking for its TXT record is not suspicious.
    let out = run(&netns, &["--allowed-endpoints", TXT_NAME], &script);
    let one = |name: &str, qtype| {
        let found = audit::dns_for(&out.records, name, qtype);
        assert_run_eq!(out, found.len(), 1, "{qtype} lookups of {name}");
        found[0]
    };
    let long = one(&long, "A");
    assert_run!(out, flagged(long), "{long}");
    assert_run!(
        out,
        reason(long).contains("label of 60 characters"),
        "{long}"
    );
    assert_run_eq!(
        out,
        long["dns"]["rcode"],
        "NOERROR",
        "audit mode answers: {long}"
    );
    let plain = one("plain.burst.test.example", "A");
    assert_run!(out, !flagged(plain), "{plain}");
    let txt = one(BURST_DOMAIN, "TXT");
    assert_run!(out, flagged(txt), "{txt}");
    assert_run!(
        out,
        reason(txt).contains("TXT lookup of a name no rule names"),
        "{txt}"
    );
    let named = one(TXT_NAME, "TXT");
    assert_run!(out, !flagged(named), "a rule names it: {named}");
    out.assert_allowed(named, TXT_NAME);
    assert_run_eq!(out, audit::answer_data(named, "TXT").len(), 1, "{named}");
}

#[test]
fn block_mode_refuses_suspected_tunnels_under_a_wildcard() {
    if skip_unless_root("block_mode_refuses_suspected_tunnels_under_a_wildcard") {
        return;
    }
    let netns = Netns::new().unwrap();
    let server = DnsServer::start(&netns).unwrap();
    let mut names = burst_names();
    let long = format!("{LONG_LABEL}.{BURST_DOMAIN}");
    let exact = format!("{}.{BURST_DOMAIN}", LONG_LABEL.replace('m', "n"));
    names.extend([long.clone(), exact.clone()]);
    let wildcard = format!("*.{BURST_DOMAIN}");
    let allowed = format!("{wildcard} {exact}");
    let out = run(
        &netns,
        &["--egress-policy", "block", "--allowed-endpoints", &allowed],
        &dig_all(&names),
    );
    let statuses: Vec<Option<String>> = out
        .stdout
        .split(";; Got answer:")
        .skip(1)
        .map(|part| DigOutput::parse(part).status)
        .collect();
    assert_run_eq!(out, statuses.len(), names.len(), "dig answered every query");
    let records = records_of(&out, &names);
    for (record, status) in records.iter().zip(&statuses) {
        let status = status.as_deref().unwrap_or_default();
        if flagged(record) && record["dns"]["qname"] != exact.as_str() {
            out.assert_not_allowed(record, "blocked");
            assert_run_eq!(out, status, "NXDOMAIN", "{record}");
            assert_run!(out, record["dns"].get("upstream").is_none(), "{record}");
        } else {
            let exactly = record["dns"]["qname"] == exact.as_str();
            out.assert_allowed(record, if exactly { &exact } else { &wildcard });
            assert_run_eq!(out, status, "NOERROR", "{record}");
        }
    }
    let refused = records
        .iter()
        .filter(|r| r["decision"] == "blocked")
        .count();
    assert_run!(
        out,
        refused >= 10,
        "the burst's later names were refused: {refused}"
    );
    assert_run!(
        out,
        flagged(records[BURST]) && records[BURST]["decision"] == "blocked",
        "the long label"
    );
    assert_run!(
        out,
        flagged(records[BURST + 1]),
        "an exact rule allows it, still flagged"
    );
    // Only what was allowed went upstream.
    let forwarded = server
        .queries()
        .iter()
        .filter(|q| q.name.ends_with(BURST_DOMAIN))
        .count();
    assert_run_eq!(out, forwarded, names.len() - refused, "forwarded lookups");
}

#[test]
fn a_tunnel_shaped_server_name_is_not_looked_up_upstream() {
    if skip_unless_root("a_tunnel_shaped_server_name_is_not_looked_up_upstream") {
        return;
    }
    let netns = Netns::new().unwrap();
    let server = DnsServer::start(&netns).unwrap();
    let origins = Origins::start(&netns).unwrap();
    // The job never looks the name up: it only sends it as the SNI, to an address the wildcard
    // allows by name. Warden must not carry the name to the zone's servers itself.
    let long = format!("{LONG_LABEL}.{BURST_DOMAIN}");
    let url = format!("https://{long}/");
    let resolve = format!("{long}:443:192.0.2.10");
    let curl = clients::curl_with(&["-k", "--resolve", &resolve], &url, &origins.ca_pem_path());
    let allowed = format!("*.{BURST_DOMAIN}");
    let out = run(
        &netns,
        &["--egress-policy", "block", "--allowed-endpoints", &allowed],
        &format!("{curl} || true"),
    );
    assert_run!(
        out,
        audit::connections(&out.records).len() == 1,
        "one connection"
    );
    let queries = server.queries_for(&long);
    assert_run!(
        out,
        queries.is_empty(),
        "the tunnel-shaped name went upstream: {queries:?}"
    );
}
