//! An upstream resolver's answer: checked against the query, read, and rid of ECH configs.

use std::net::IpAddr;

use hickory_proto::op::{Message, MessageType, OpCode};
use hickory_proto::rr::{RData, Record};

use super::query::decode;
use super::text::{name_text, rcode_name, rdata_text, type_name};
use super::{Query, WireError, ech};

/// The most CNAME links [`Answer::names`] follows. Real chains have a few links (a CDN adds
/// two or three) and recursive resolvers stop following them after a dozen or so, so a longer
/// chain is treated like a loop: cut short rather than followed.
const MAX_CNAME_CHAIN: usize = 16;

/// An upstream response, read against the query it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The response code's mnemonic ("NOERROR", "NXDOMAIN", "SERVFAIL"), including the EDNS
    /// extended bits (RFC 6891 §6.1.3), or `RCODE<n>` for unassigned codes.
    pub rcode: String,
    /// The answer section, in the upstream's order.
    pub records: Vec<AnswerRecord>,
    /// The TC bit: the upstream cut the answer short and the client should retry over TCP.
    pub truncated: bool,
    /// Whether ECH configurations were removed, so `bytes` is a re-encoded message.
    pub ech_stripped: bool,
    /// What to send the client: the upstream's bytes unchanged, unless ECH was stripped.
    pub bytes: Vec<u8>,
}

/// One record of the answer section, in the form audit records carry it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AnswerRecord {
    /// The owner name, lowercase, without the trailing dot.
    pub name: String,
    /// The type's mnemonic ("A", "CNAME"), or `TYPE<n>`.
    #[serde(rename = "type")]
    pub rtype: String,
    /// The address for A and AAAA, the lowercase target without the trailing dot for CNAME,
    /// and hickory's presentation text for other types.
    pub data: String,
    /// The time to live, in seconds.
    pub ttl: u32,
}

impl Answer {
    /// The addresses of the A and AAAA records in the answer section, with their TTLs.
    ///
    /// Every address record counts, whatever its owner name; a caller that trusts only the
    /// query's chain can filter `records` by [`Answer::names`].
    pub fn addresses(&self) -> Vec<(IpAddr, u32)> {
        self.records
            .iter()
            .filter(|record| record.rtype == "A" || record.rtype == "AAAA")
            .filter_map(|record| Some((record.data.parse().ok()?, record.ttl)))
            .collect()
    }

    /// `qname` followed by the targets of its CNAME chain in the answer section.
    ///
    /// The chain is followed from `qname` (any case, trailing dot optional) record by record,
    /// for at most 16 links, and stops at a name already seen, so a loop ends it.
    pub fn names(&self, qname: &str) -> Vec<String> {
        let qname = qname.strip_suffix('.').unwrap_or(qname);
        let mut names = vec![qname.to_ascii_lowercase()];
        while names.len() <= MAX_CNAME_CHAIN {
            let Some(current) = names.last() else { break };
            let next = self
                .records
                .iter()
                .find(|record| record.rtype == "CNAME" && record.name == *current);
            match next {
                Some(record) if !names.contains(&record.data) => names.push(record.data.clone()),
                _ => break,
            }
        }
        names
    }
}

/// Checks that `bytes` is the upstream's response to `query`, and reads it.
///
/// The response must have QR set, the query's id and opcode, and the same single question
/// (name compared without regard to case, type and class), as RFC 5452 §9.1 asks of a resolver
/// accepting an answer; otherwise it is [`WireError::Mismatch`].
///
/// HTTPS and SVCB records in any section lose their `ech` SvcParam (and its mention in
/// `mandatory`, which RFC 9460 §8 says may only list keys present), and the message is then
/// re-encoded: a client given an ECH config would encrypt the server name Warden's policy
/// reads from the ClientHello.
pub fn read_answer(query: &Query, bytes: &[u8]) -> Result<Answer, WireError> {
    let mut message = decode(bytes)?;
    check_matches(query, &message)?;
    let ech_stripped = ech::strip(&mut message);
    let bytes = if ech_stripped {
        message.to_vec().map_err(WireError::Reencode)?
    } else {
        bytes.to_vec()
    };
    Ok(Answer {
        rcode: rcode_name(message.response_code()),
        records: message.answers().iter().map(answer_record).collect(),
        truncated: message.truncated(),
        ech_stripped,
        bytes,
    })
}

fn check_matches(query: &Query, response: &Message) -> Result<(), WireError> {
    if response.message_type() != MessageType::Response {
        return Err(WireError::Mismatch("qr bit clear"));
    }
    if response.id() != query.id {
        return Err(WireError::Mismatch("id differs"));
    }
    if response.op_code() != OpCode::Query {
        return Err(WireError::Mismatch("opcode differs"));
    }
    let [question] = response.queries() else {
        return Err(WireError::Mismatch("not exactly one question"));
    };
    let same = name_text(question.name()) == query.name
        && u16::from(question.query_type()) == query.qtype
        && u16::from(question.query_class()) == u16::from(hickory_proto::rr::DNSClass::IN);
    if !same {
        return Err(WireError::Mismatch("question differs"));
    }
    Ok(())
}

fn answer_record(record: &Record) -> AnswerRecord {
    // A zero-length RDATA decodes as hickory's `Update0`, whatever the type (RFC 2136 uses it).
    let data = match record.data() {
        RData::Update0(_) => String::new(),
        data => rdata_text(data),
    };
    AnswerRecord {
        name: name_text(record.name()),
        rtype: type_name(record.record_type().into()),
        data,
        ttl: record.ttl(),
    }
}
