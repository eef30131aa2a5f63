//! Property tests for `sniff::dns`: on about 20,000 random edits of the real captures and of
//! an answer holding every record type hickory decodes, the functions return (never panic),
//! replies and re-encoded answers are messages hickory reads back, and stripping ECH twice
//! changes nothing the second time.
//!
//! The `dns` fuzz target in `fuzz/` explores the same properties for much longer.

mod common;
mod dns_common;

use std::str::FromStr;

use common::XorShift;
use dns_common::{TCP_CASE, UDP_CASES, dns_capture, dns_pair, mutate_dns};
use hickory_proto::op::{Edns, Message, MessageType, Query as Question};
use hickory_proto::rr::rdata::caa::KeyValue;
use hickory_proto::rr::rdata::svcb::{
    Alpn, EchConfigList, IpHint, Mandatory, SVCB, SvcParamKey, SvcParamValue, Unknown,
};
use hickory_proto::rr::rdata::{
    A, AAAA, CAA, CNAME, HINFO, HTTPS, MX, NS, NULL, PTR, SOA, SRV, TXT,
};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use sniff::Parse;
use sniff::dns::{Query, Rcode, formerr, parse_query, read_answer, tcp_unframe};

fn name(text: &str) -> Name {
    Name::from_str(text).unwrap()
}

/// An HTTPS query and an answer with one record of every kind hickory has a decoder for, in
/// all three sections, so mutations reach each record parser and `Display`.
fn every_record_type() -> (Vec<u8>, Vec<u8>) {
    let owner = name("rich.example.");
    let mut query = Message::new();
    query
        .set_id(0x5eed)
        .set_recursion_desired(true)
        .add_query(Question::query(owner.clone(), RecordType::HTTPS));
    query.set_edns(Edns::new());
    let params = vec![
        (
            SvcParamKey::Mandatory,
            SvcParamValue::Mandatory(Mandatory(vec![SvcParamKey::Alpn])),
        ),
        (
            SvcParamKey::Alpn,
            SvcParamValue::Alpn(Alpn(vec!["h2".into(), "h3".into()])),
        ),
        (SvcParamKey::NoDefaultAlpn, SvcParamValue::NoDefaultAlpn),
        (SvcParamKey::Port, SvcParamValue::Port(443)),
        (
            SvcParamKey::Ipv4Hint,
            SvcParamValue::Ipv4Hint(IpHint(vec![A::new(192, 0, 2, 1)])),
        ),
        (
            SvcParamKey::EchConfigList,
            SvcParamValue::EchConfigList(EchConfigList(vec![0, 4, 0xfe, 0x0d, 0, 0])),
        ),
        (
            SvcParamKey::Ipv6Hint,
            SvcParamValue::Ipv6Hint(IpHint(vec![AAAA::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)])),
        ),
        (
            SvcParamKey::Key(65280),
            SvcParamValue::Unknown(Unknown(b"x".to_vec())),
        ),
    ];
    let svcb = SVCB::new(1, name("svc.rich.example."), params);
    let data = [
        RData::HTTPS(HTTPS(svcb.clone())),
        RData::CNAME(CNAME(name("alias.rich.example."))),
        RData::A(A::new(192, 0, 2, 7)),
        RData::AAAA(AAAA::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7)),
        RData::MX(MX::new(10, name("mx.rich.example."))),
        RData::NS(NS(name("ns.rich.example."))),
        RData::PTR(PTR(name("ptr.rich.example."))),
        RData::SRV(SRV::new(1, 2, 443, name("srv.rich.example."))),
        RData::TXT(TXT::new(vec!["v=spf1 -all".into(), "second".into()])),
        RData::CAA(CAA::new_issue(
            false,
            Some(name("ca.example.")),
            vec![KeyValue::new("a", "b")],
        )),
        RData::HINFO(HINFO::new("cpu".into(), "os".into())),
        RData::NULL(NULL::with(vec![1, 2, 3])),
        RData::Unknown {
            code: RecordType::Unknown(65280),
            rdata: NULL::with(vec![4, 5]),
        },
    ];
    let mut answer = query.clone();
    answer.set_message_type(MessageType::Response);
    for rdata in data {
        answer.add_answer(Record::from_rdata(owner.clone(), 300, rdata));
    }
    let soa = SOA::new(name("ns.example."), name("host.example."), 1, 2, 3, 4, 5);
    answer.add_name_server(Record::from_rdata(name("example."), 60, RData::SOA(soa)));
    answer.add_additional(Record::from_rdata(
        name("_dns.rich.example."),
        60,
        RData::SVCB(svcb),
    ));
    (query.to_vec().unwrap(), answer.to_vec().unwrap())
}

/// Runs every function on a query and an answer, checking the properties in the module docs.
fn check(query_bytes: &[u8], answer_bytes: &[u8], fallback: &Query) {
    let query = match parse_query(query_bytes) {
        Ok(query) => {
            for rcode in [Rcode::Refused, Rcode::NoError] {
                let reply = Message::from_vec(&query.reply(rcode)).expect("reply decodes");
                assert_eq!(reply.id(), query.id);
            }
            let _ = query.qtype_name();
            query
        }
        Err(_) => {
            if let Some(reply) = formerr(query_bytes) {
                let reply = Message::from_vec(&reply).expect("formerr decodes");
                assert_eq!(reply.message_type(), MessageType::Response);
            }
            fallback.clone()
        }
    };
    let Ok(answer) = read_answer(&query, answer_bytes) else {
        return;
    };
    let names = answer.names(&query.name);
    assert!(!names.is_empty() && names.len() <= 17, "{names:?}");
    let _ = answer.addresses();
    if answer.ech_stripped {
        let again = read_answer(&query, &answer.bytes).expect("re-encoded answer reads back");
        assert!(!again.ech_stripped, "ech left after stripping");
        // hickory writes some names in record data (SRV targets) in lowercase, its canonical
        // form; nothing else may change.
        let lower = |records: &[sniff::dns::AnswerRecord]| format!("{records:?}").to_lowercase();
        assert_eq!(lower(&again.records), lower(&answer.records));
    } else {
        assert_eq!(answer.bytes, answer_bytes);
    }
}

#[test]
fn mutated_messages_never_panic() {
    let mut rng = XorShift::new(0x5eed_d500);
    let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = UDP_CASES
        .into_iter()
        .chain([TCP_CASE])
        .map(dns_pair)
        .collect();
    pairs.push(every_record_type());
    for (query_bytes, answer_bytes) in &pairs {
        let query = parse_query(query_bytes).unwrap();
        check(query_bytes, answer_bytes, &query);
        for _ in 0..1400 {
            check(&mutate_dns(query_bytes, &mut rng), answer_bytes, &query);
            check(query_bytes, &mutate_dns(answer_bytes, &mut rng), &query);
        }
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = XorShift::new(0x5eed_d501);
    let (query_bytes, _) = dns_pair("a-edns");
    let query = parse_query(&query_bytes).unwrap();
    for _ in 0..2000 {
        // Half start with the query's header so the answer check gets past the id.
        let mut buf = if rng.below(2) == 0 {
            query_bytes[..12].to_vec()
        } else {
            Vec::new()
        };
        let len = rng.below(200);
        buf.extend(rng.bytes(len));
        check(&buf, &buf, &query);
    }
}

#[test]
fn mutated_tcp_streams_never_panic() {
    let mut rng = XorShift::new(0x5eed_d502);
    for side in ["query", "answer"] {
        let stream = dns_capture(TCP_CASE, side);
        for _ in 0..1000 {
            let buf = mutate_dns(&stream, &mut rng);
            if let Parse::Done((used, msg)) = tcp_unframe(&buf) {
                assert!(used <= buf.len() && msg.len() + 2 == used);
            }
        }
    }
}

/// Writes `every_record_type()` to the `dns` fuzz target's corpus as a query and answer pair
/// (the query with its TCP length prefix, then the answer). Run by hand after changing it:
/// `cargo test -p sniff --test dns_no_panic -- --ignored`.
#[test]
#[ignore = "writes a file in fuzz/corpus/dns"]
fn write_fuzz_seed() {
    let (query, answer) = every_record_type();
    let pair = [sniff::dns::tcp_frame(&query).unwrap(), answer].concat();
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fuzz/corpus/dns/every-record-type.pair"
    );
    std::fs::write(path, pair).unwrap();
}
