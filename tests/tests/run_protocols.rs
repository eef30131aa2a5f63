//! `warden run` with the connections that make sniffing and relaying hard: IPv6 and v4-mapped
//! addresses, a ClientHello trickling in one byte at a time, a destination that refuses, one
//! that speaks first, and TLS records that are not a ClientHello. In each, the client must see
//! what it would see without Warden (or the documented reset), and the record must say what
//! happened.
//!
//! Needs root (skips loudly otherwise); each test builds its own namespace and origins.

use std::time::{Duration, Instant};

use tests::origins::BANNER;
use tests::{
    Netns, Origins, WardenRun, assert_run, assert_run_eq, audit, clients, skip_unless_root,
};

/// Deadline for one `warden run`; passing runs take a few seconds.
const T: Duration = Duration::from_secs(30);

#[test]
fn ipv6_and_v4_mapped() {
    if skip_unless_root("ipv6_and_v4_mapped") {
        return;
    }
    const LEN: usize = 10_000;
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    let ca = origins.ca_pem_path();
    let script = clients::script(&[
        clients::curl("https://v6.example/six", &ca),
        clients::curl("http://[2001:db8::10]/literal", &ca),
        clients::python_echo_inet6("::ffff:203.0.113.10", 7, LEN),
    ]);
    let out = WardenRun::new(&netns)
        .timeout(T)
        .cmd(["sh", "-c", &script])
        .run()
        .unwrap();
    out.assert_success();
    for said in [
        "hello from tls-origin path=/six",
        "hello from http-origin path=/literal",
        &format!("echo ok {LEN}"),
    ] {
        assert_run!(out, out.stdout.contains(said), "clients said {said:?}");
    }

    let tls = out.one_connection("https://v6.example/", |r| r["dst"]["port"] == 443);
    assert_run_eq!(out, tls["dst"]["ip"], "2001:db8::10", "dst.ip of {tls}");
    assert_run_eq!(out, tls["dst"]["name"], "v6.example", "dst.name of {tls}");
    assert_run_eq!(out, tls["tls"]["sni"], "v6.example", "tls.sni of {tls}");
    let http = out.one_connection("http://[2001:db8::10]/", |r| r["dst"]["port"] == 80);
    assert_run_eq!(out, http["dst"]["ip"], "2001:db8::10", "dst.ip of {http}");
    assert_run_eq!(out, http["http"]["host"], "[2001:db8::10]", "http.host");
    assert_run_eq!(out, http["http"]["url"], "/literal", "http.url of {http}");
    // An IP literal is not a name the client sent; the record names the address by what the
    // hosts file (as good as a DNS answer) maps it to.
    assert_run_eq!(out, http["dst"]["name"], "v6.example", "dst.name of {http}");
    for record in [tls, http] {
        assert_run!(out, !audit::has_flag(record, "v4-mapped"), "{record}");
        assert_run_eq!(out, audit::exe_name(record), "curl", "exe of {record}");
    }
    assert!(origins.tls().accepted()[0].local.is_ipv6());
    assert!(origins.http().accepted()[0].local.is_ipv6());

    let mapped = out.one_connection("::ffff:203.0.113.10", |r| r["dst"]["port"] == 7);
    assert_run_eq!(
        out,
        mapped["dst"]["ip"],
        "203.0.113.10",
        "dst.ip of {mapped}"
    );
    assert_run!(
        out,
        audit::has_flag(mapped, "v4-mapped"),
        "flags of {mapped}"
    );
    assert_run_eq!(out, mapped["bytes"]["up"], LEN, "bytes.up of {mapped}");
    assert_run_eq!(out, mapped["bytes"]["down"], LEN, "bytes.down of {mapped}");
    assert_run!(
        out,
        audit::exe_name(mapped).starts_with("python3"),
        "exe of {mapped}"
    );
    assert_run_eq!(out, origins.echo().connections(), 1, "the echo was reached");
    out.assert_bracketed();
}

#[test]
fn client_hello_one_byte_at_a_time() {
    if skip_unless_root("client_hello_one_byte_at_a_time") {
        return;
    }
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    let ca = origins.ca_pem_path();
    let client = clients::python_https_bytewise("tls.example", "/bytewise", &ca, 2);
    let out = WardenRun::new(&netns)
        .timeout(T)
        .cmd(["sh", "-c", &client])
        .run()
        .unwrap();
    out.assert_success();
    assert_run!(
        out,
        out.stdout.contains("hello from tls-origin path=/bytewise"),
        "the client got the body"
    );
    let hello_len: u64 = out
        .stdout
        .strip_prefix("client hello ")
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("the client did not say its ClientHello's length:\n{out}"));

    let record = out.one_connection("the trickled TLS", |r| r["dst"]["port"] == 443);
    assert_run_eq!(
        out,
        record["tls"]["sni"],
        "tls.example",
        "tls.sni of {record}"
    );
    assert_run_eq!(out, record["dst"]["name"], "tls.example", "dst.name");
    assert_run_eq!(
        out,
        audit::strings(&record["tls"]["alpn"]),
        ["http/1.1"],
        "tls.alpn of {record}"
    );
    assert_run!(
        out,
        !audit::has_flag(record, "sniff-timeout"),
        "sniffed, not timed out: {record}"
    );
    let up = record["bytes"]["up"].as_u64().unwrap_or_default();
    assert_run!(
        out,
        up > hello_len,
        "bytes.up counts the ClientHello: {record}"
    );
    let requests = origins.tls().requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].sni.as_deref(), Some("tls.example"));
    out.assert_bracketed();
}

#[test]
fn upstream_refused_is_a_reset() {
    if skip_unless_root("upstream_refused_is_a_reset") {
        return;
    }
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    // 192.0.2.10 is on lo in the namespace, but nothing listens on port 9.
    let curl = clients::curl("http://192.0.2.10:9/", &origins.ca_pem_path());
    let started = Instant::now();
    let out = WardenRun::new(&netns)
        .timeout(T)
        .cmd(["sh", "-c", &format!("{curl}; echo \"curl exit $?\"")])
        .run()
        .unwrap();
    let took = started.elapsed();
    out.assert_success();
    // Without warden curl would get "refused" (7); through the proxy the documented equivalent
    // is a reset (56). Not an empty reply (52, a clean close) and not a timeout (28).
    assert_run!(
        out,
        ["curl exit 7", "curl exit 56"]
            .iter()
            .any(|said| out.stdout.contains(said)),
        "curl failed with a reset or connection error"
    );
    assert_run!(out, took < Duration::from_secs(10), "no hang: {took:?}");

    let record = out.one_connection("192.0.2.10:9", |r| r["dst"]["port"] == 9);
    assert_run_eq!(out, record["dst"]["ip"], "192.0.2.10", "dst.ip of {record}");
    assert_run!(
        out,
        audit::has_flag(record, "upstream-refused"),
        "flags of {record}"
    );
    let reason = record["reason"].as_str().unwrap_or_default();
    // The policy's reason (audited: no rule) comes first, then how the connection ended.
    assert_run!(
        out,
        reason.contains("then upstream connect: "),
        "reason of {record}"
    );
    assert_run_eq!(
        out,
        record["bytes"]["up"],
        0,
        "nothing reached it: {record}"
    );
    assert_run_eq!(out, audit::exe_name(record), "curl", "exe of {record}");
    out.assert_bracketed();
}

#[test]
fn server_first_banner() {
    if skip_unless_root("server_first_banner") {
        return;
    }
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    let out = WardenRun::new(&netns)
        .timeout(T)
        .cmd(["sh", "-c", &clients::python_banner("banner.example", 25)])
        .run()
        .unwrap();
    out.assert_success();
    assert_run_eq!(
        out,
        out.stdout.trim(),
        BANNER.trim(),
        "the client read the banner"
    );

    let record = out.one_connection("banner.example:25", |r| r["dst"]["port"] == 25);
    assert_run_eq!(out, record["dst"]["ip"], "192.0.2.20", "dst.ip of {record}");
    assert_run!(
        out,
        audit::has_flag(record, "server-first"),
        "flags of {record}"
    );
    assert_run!(
        out,
        !audit::has_flag(record, "sniff-timeout"),
        "sniffing ended when the server spoke: {record}"
    );
    for absent in ["tls", "http"] {
        assert_run!(out, record.get(absent).is_none(), "no {absent}: {record}");
    }
    // The client sends `QUIT\r\n` after the banner and reads its echo.
    assert_run_eq!(out, record["bytes"]["up"], 6, "bytes.up of {record}");
    assert_run_eq!(
        out,
        record["bytes"]["down"],
        BANNER.len() + 6,
        "bytes.down of {record}"
    );
    assert_run_eq!(out, origins.banner().connections(), 1, "one connection");
    out.assert_bracketed();
}

#[test]
fn malformed_client_hello_closed() {
    if skip_unless_root("malformed_client_hello_closed") {
        return;
    }
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    let ca = origins.ca_pem_path();
    let script = clients::script(&[
        clients::python_send_expect_close("tls.example", 443, &not_a_client_hello()),
        clients::python_send_expect_close("tls.example", 443, &overlong_session_id()),
        clients::curl("https://tls.example/after", &ca),
    ]);
    let out = WardenRun::new(&netns)
        .timeout(T)
        .cmd(["sh", "-c", &script])
        .run()
        .unwrap();
    out.assert_success();
    assert_run_eq!(
        out,
        out.stdout.matches("closed: ").count(),
        2,
        "both malformed connections were closed"
    );
    assert_run!(
        out,
        out.stdout.contains("hello from tls-origin path=/after"),
        "the next connection still works"
    );

    let records = audit::connections_to(&out.records, "192.0.2.10", 443);
    let (malformed, fine): (Vec<_>, Vec<_>) = records
        .into_iter()
        .partition(|r| audit::has_flag(r, "malformed-client-hello"));
    assert_run_eq!(
        out,
        malformed.len(),
        2,
        "two malformed ClientHellos flagged"
    );
    for record in malformed {
        assert_run!(
            out,
            audit::exe_name(record).starts_with("python3"),
            "exe of {record}"
        );
        assert_run_eq!(out, record["bytes"]["up"], 0, "not relayed: {record}");
        assert_run!(out, record.get("tls").is_none(), "no tls: {record}");
    }
    assert_run_eq!(out, fine.len(), 1, "one good connection");
    assert_run_eq!(out, fine[0]["tls"]["sni"], "tls.example", "{}", fine[0]);
    let targets: Vec<String> = origins
        .tls()
        .requests()
        .into_iter()
        .map(|r| r.target)
        .collect();
    assert_eq!(targets, ["/after"]);
    out.assert_bracketed();
}

/// A complete TLS handshake record (RFC 8446 §5.1) holding a ServerHello-typed message (type 2,
/// §4) instead of a ClientHello.
fn not_a_client_hello() -> Vec<u8> {
    tls_handshake_record(0x02, &[0x03, 0x03])
}

/// A complete ClientHello record whose session id claims 200 bytes where 5 remain
/// (RFC 8446 §4.1.2).
fn overlong_session_id() -> Vec<u8> {
    let mut body = vec![0x03, 0x03];
    body.extend([0x11; 32]);
    body.push(200);
    body.extend([0; 5]);
    tls_handshake_record(0x01, &body)
}

/// One handshake message of `msg_type` in one TLS 1.0-versioned handshake record.
fn tls_handshake_record(msg_type: u8, body: &[u8]) -> Vec<u8> {
    let len = u32::try_from(body.len()).unwrap().to_be_bytes();
    let mut message = vec![msg_type, len[1], len[2], len[3]];
    message.extend(body);
    let len = u16::try_from(message.len()).unwrap().to_be_bytes();
    let mut record = vec![0x16, 0x03, 0x01, len[0], len[1]];
    record.extend(message);
    record
}
