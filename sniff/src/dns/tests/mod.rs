//! Unit tests on messages built with hickory-proto, and the builders they share. The real
//! wire captures are tested in `sniff/tests/dns_captures.rs`, random mutations in
//! `sniff/tests/dns_no_panic.rs`.

mod answer;
mod query;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query as Question, ResponseCode};
use hickory_proto::rr::rdata::svcb::{
    Alpn, EchConfigList, Mandatory, SVCB, SvcParamKey, SvcParamValue,
};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, HTTPS, TXT};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use super::*;

pub(super) fn name(text: &str) -> Name {
    Name::from_str(text).unwrap()
}

/// A stub resolver's query: RD set, optionally with EDNS.
pub(super) fn query_message(id: u16, qname: &str, qtype: RecordType, edns: bool) -> Message {
    let mut message = Message::new();
    message
        .set_id(id)
        .set_recursion_desired(true)
        .add_query(Question::query(name(qname), qtype));
    if edns {
        let mut opt = Edns::new();
        opt.set_max_payload(1232).set_dnssec_ok(true);
        message.set_edns(opt);
    }
    message
}

pub(super) fn query(qname: &str, qtype: RecordType) -> Query {
    parse_query(&query_message(0x1234, qname, qtype, true).to_vec().unwrap()).unwrap()
}

/// An upstream response to `query` with these answer records.
pub(super) fn response(query: &Query, answers: Vec<Record>) -> Message {
    let mut message = Message::new();
    message
        .set_id(query.id)
        .set_message_type(MessageType::Response)
        .set_recursion_desired(true)
        .set_recursion_available(true)
        .add_query(Question::query(
            name(&query.name),
            RecordType::from(query.qtype),
        ))
        .add_answers(answers);
    message
}

pub(super) fn record(owner: &str, ttl: u32, data: RData) -> Record {
    Record::from_rdata(name(owner), ttl, data)
}

pub(super) fn https_with_ech(mandatory: bool) -> RData {
    let mut params = Vec::new();
    if mandatory {
        let keys = vec![SvcParamKey::Alpn, SvcParamKey::EchConfigList];
        params.push((
            SvcParamKey::Mandatory,
            SvcParamValue::Mandatory(Mandatory(keys)),
        ));
    }
    let alpn = Alpn(vec!["h2".to_string(), "h3".to_string()]);
    params.push((SvcParamKey::Alpn, SvcParamValue::Alpn(alpn)));
    let ech = EchConfigList(vec![0xfe, 0x0d, 0x00, 0x04, 1, 2, 3, 4]);
    params.push((
        SvcParamKey::EchConfigList,
        SvcParamValue::EchConfigList(ech),
    ));
    RData::HTTPS(HTTPS(SVCB::new(1, Name::root(), params)))
}

pub(super) fn params(data: &RData) -> Vec<SvcParamKey> {
    let svcb = match data {
        RData::HTTPS(HTTPS(svcb)) | RData::SVCB(svcb) => svcb,
        other => panic!("not SVCB: {other:?}"),
    };
    svcb.svc_params().iter().map(|(key, _)| *key).collect()
}
