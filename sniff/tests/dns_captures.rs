//! Real DNS traffic, dig asking dnsmasq on loopback (see `tests/data/dns/capture.py`): each
//! query and answer read whole and prefix by prefix, answered locally, and unframed from TCP.

mod common;
mod dns_common;

use dns_common::{TCP_CASE, UDP_CASES, dns_capture, dns_pair};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RData;
use hickory_proto::rr::rdata::svcb::SvcParamKey;
use sniff::Parse;
use sniff::dns::{
    AnswerRecord, Rcode, WireError, parse_query, read_answer, tcp_frame, tcp_unframe,
};

/// What dig asked and dnsmasq answered in each case, as `dig` printed it.
struct Expected {
    name: &'static str,
    qtype: &'static str,
    rcode: &'static str,
    records: &'static [(&'static str, &'static str, &'static str, u32)],
    names: &'static [&'static str],
    ech_stripped: bool,
}

fn expected(case: &str) -> Expected {
    let www_a: &[_] = &[("www.warden.test", "A", "192.0.2.10", 60)];
    let (name, qtype, rcode, records, names, ech_stripped) = match case {
        "a-edns" | "tcp-a" => (
            "www.warden.test",
            "A",
            "NOERROR",
            www_a,
            &["www.warden.test"][..],
            false,
        ),
        "aaaa-noedns" => (
            "www.warden.test",
            "AAAA",
            "NOERROR",
            &[("www.warden.test", "AAAA", "2001:db8::10", 60)][..],
            &["www.warden.test"][..],
            false,
        ),
        "cname-chain" => (
            "alias.warden.test",
            "A",
            "NOERROR",
            &[
                ("alias.warden.test", "CNAME", "edge.cdn.warden.test", 60),
                ("edge.cdn.warden.test", "CNAME", "e1.cdn.warden.test", 60),
                ("e1.cdn.warden.test", "A", "192.0.2.21", 60),
            ][..],
            &[
                "alias.warden.test",
                "edge.cdn.warden.test",
                "e1.cdn.warden.test",
            ][..],
            false,
        ),
        "nxdomain" => (
            "missing.warden.test",
            "A",
            "NXDOMAIN",
            &[][..],
            &["missing.warden.test"][..],
            false,
        ),
        "https-ech" => (
            "crypto.warden.test",
            "HTTPS",
            "NOERROR",
            &[(
                "crypto.warden.test",
                "HTTPS",
                "1 . mandatory=alpn alpn=h2,h3 ipv4hint=192.0.2.30 ipv6hint=2001:db8::30",
                60,
            )][..],
            &["crypto.warden.test"][..],
            true,
        ),
        "txt" => (
            "txt.warden.test",
            "TXT",
            "NOERROR",
            &[("txt.warden.test", "TXT", "\"v=spf1 -all\"", 60)][..],
            &["txt.warden.test"][..],
            false,
        ),
        other => panic!("no expectation for {other}"),
    };
    Expected {
        name,
        qtype,
        rcode,
        records,
        names,
        ech_stripped,
    }
}

fn all_cases() -> impl Iterator<Item = &'static str> {
    UDP_CASES.into_iter().chain([TCP_CASE])
}

#[test]
fn captures_read_as_dig_printed_them() {
    for case in all_cases() {
        let want = expected(case);
        let (query_bytes, answer_bytes) = dns_pair(case);
        let query = parse_query(&query_bytes).unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_eq!(
            (query.name.as_str(), query.qtype_name()),
            (want.name, want.qtype.to_string()),
            "{case}"
        );
        let answer = read_answer(&query, &answer_bytes).unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_eq!(answer.rcode, want.rcode, "{case}");
        let records: Vec<_> = answer
            .records
            .iter()
            .map(|r| (r.name.as_str(), r.rtype.as_str(), r.data.as_str(), r.ttl))
            .collect();
        assert_eq!(records, want.records, "{case}");
        assert_eq!(answer.names(&query.name), want.names, "{case}");
        assert_eq!(answer.ech_stripped, want.ech_stripped, "{case}");
        assert!(!answer.truncated, "{case}");
        if !want.ech_stripped {
            assert_eq!(
                answer.bytes, answer_bytes,
                "{case}: bytes passed through unchanged"
            );
        }
    }
}

#[test]
fn addresses_of_the_captures() {
    let cases = [
        ("a-edns", vec![("192.0.2.10", 60)]),
        ("aaaa-noedns", vec![("2001:db8::10", 60)]),
        ("cname-chain", vec![("192.0.2.21", 60)]),
        ("nxdomain", vec![]),
        ("https-ech", vec![]),
    ];
    for (case, want) in cases {
        let (query, answer) = dns_pair(case);
        let answer = read_answer(&parse_query(&query).unwrap(), &answer).unwrap();
        let want: Vec<_> = want
            .into_iter()
            .map(|(ip, ttl)| (ip.parse().unwrap(), ttl))
            .collect();
        assert_eq!(answer.addresses(), want, "{case}");
    }
}

#[test]
fn every_prefix_of_a_capture_is_an_error() {
    for case in all_cases() {
        let (query_bytes, answer_bytes) = dns_pair(case);
        let query = parse_query(&query_bytes).unwrap();
        for cut in 0..query_bytes.len() {
            assert!(
                parse_query(&query_bytes[..cut]).is_err(),
                "{case} query cut at {cut}"
            );
        }
        for cut in 0..answer_bytes.len() {
            assert!(
                read_answer(&query, &answer_bytes[..cut]).is_err(),
                "{case} answer cut at {cut}"
            );
        }
    }
}

#[test]
fn ech_is_removed_from_the_real_https_answer() {
    let (query, answer) = dns_pair("https-ech");
    let query = parse_query(&query).unwrap();
    let before = Message::from_vec(&answer).unwrap();
    let read = read_answer(&query, &answer).unwrap();
    let after = Message::from_vec(&read.bytes).unwrap();
    let keys = |m: &Message| match m.answers()[0].data() {
        RData::HTTPS(https) => https
            .svc_params()
            .iter()
            .map(|(k, _)| *k)
            .collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    use SvcParamKey::*;
    assert_eq!(
        keys(&before),
        [Mandatory, Alpn, Ipv4Hint, EchConfigList, Ipv6Hint]
    );
    assert_eq!(keys(&after), [Mandatory, Alpn, Ipv4Hint, Ipv6Hint]);
    assert_eq!(after.id(), before.id());
    assert_eq!(after.queries(), before.queries());
    assert_eq!(after.extensions(), before.extensions());
    assert!(read.bytes.len() < answer.len());
    let again = read_answer(&query, &read.bytes).unwrap();
    assert!(!again.ech_stripped);
    assert_eq!(again.records, read.records);
}

#[test]
fn local_replies_to_real_queries() {
    for case in all_cases() {
        let (query_bytes, _) = dns_pair(case);
        let asked = Message::from_vec(&query_bytes).unwrap();
        let query = parse_query(&query_bytes).unwrap();
        let reply = Message::from_vec(&query.reply(Rcode::Refused)).unwrap();
        assert_eq!(reply.id(), asked.id(), "{case}");
        assert_eq!(reply.queries(), asked.queries(), "{case}");
        assert_eq!(reply.response_code(), ResponseCode::Refused, "{case}");
        assert_eq!(
            reply.extensions().is_some(),
            asked.extensions().is_some(),
            "{case}"
        );
        // dig's own answer read against its query: the reply is well formed for the client.
        let read = read_answer(&query, &query.reply(Rcode::NxDomain)).unwrap();
        assert_eq!(
            (read.rcode.as_str(), read.records.len()),
            ("NXDOMAIN", 0),
            "{case}"
        );
    }
}

#[test]
fn answers_to_other_queries_are_refused() {
    let (a_query, _) = dns_pair("a-edns");
    let a_query = parse_query(&a_query).unwrap();
    for case in ["aaaa-noedns", "cname-chain", "txt"] {
        let (_, answer) = dns_pair(case);
        assert!(
            matches!(read_answer(&a_query, &answer), Err(WireError::Mismatch(_))),
            "{case}"
        );
    }
    let (query, _) = dns_pair("txt");
    assert!(matches!(
        read_answer(&parse_query(&query).unwrap(), &query),
        Err(WireError::Mismatch("qr bit clear"))
    ));
}

#[test]
fn tcp_stream_unframes_prefix_by_prefix() {
    for side in ["query", "answer"] {
        let stream = dns_capture(TCP_CASE, side);
        let Parse::Done((used, msg)) = tcp_unframe(&stream) else {
            panic!("{side}")
        };
        assert_eq!(used, stream.len());
        assert_eq!(tcp_frame(msg).unwrap(), stream);
        for cut in 0..stream.len() {
            assert_eq!(
                tcp_unframe(&stream[..cut]),
                Parse::NeedMore,
                "{side} cut at {cut}"
            );
        }
        // Pipelined (RFC 7766 §6.2.1): the second message waits in the buffer.
        let twice = [stream.clone(), stream.clone()].concat();
        assert_eq!(tcp_unframe(&twice), Parse::Done((stream.len(), msg)));
    }
}

#[test]
fn answer_records_serialize_with_a_type_key() {
    let record = AnswerRecord {
        name: "www.warden.test".into(),
        rtype: "A".into(),
        data: "192.0.2.10".into(),
        ttl: 60,
    };
    assert_eq!(
        serde_json::to_string(&record).unwrap(),
        r#"{"name":"www.warden.test","type":"A","data":"192.0.2.10","ttl":60}"#
    );
}
