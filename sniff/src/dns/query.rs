//! A client's query: what it asks, and the replies Warden sends without asking upstream.

use hickory_proto::op::{Edns, Header, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::DNSClass;
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

use super::WireError;
use super::text::{name_text, type_name};

/// The UDP payload size Warden's own replies advertise in their OPT record: the value the 2020
/// DNS flag day settled on, small enough to avoid IP fragmentation on common paths.
const REPLY_UDP_PAYLOAD: u16 = 1232;

/// One parsed client query: a QUERY with exactly one question of class IN.
#[derive(Debug, Clone)]
pub struct Query {
    /// The message id the reply must carry.
    pub id: u16,
    /// The question name, lowercase, without the trailing dot ("" for the root). Label bytes
    /// other than letters, digits, `-`, `_` and `*` appear as `\DDD` escapes.
    pub name: String,
    /// The question type as its number (1 for A, 28 for AAAA, 65 for HTTPS).
    pub qtype: u16,
    /// The whole message, kept to build replies that echo the question exactly as asked.
    message: Message,
}

impl Query {
    /// The mnemonic of the question type ("A", "HTTPS"), or `TYPE<n>` (RFC 3597 §5).
    pub fn qtype_name(&self) -> String {
        type_name(self.qtype)
    }

    /// A reply with `rcode` and no records, to send instead of asking upstream.
    ///
    /// It carries the query's id and question (RFC 1035 §4.1.1-4.1.2), copies RD and sets RA, and
    /// has an OPT record when the query had one (RFC 6891 §7), copying the DO bit (RFC 3225
    /// §3). Returns an empty vector only if hickory cannot encode the reply, which a question
    /// it decoded should never cause; the caller then sends nothing.
    pub fn reply(&self, rcode: Rcode) -> Vec<u8> {
        let mut reply = Message::new();
        reply
            .set_id(self.id)
            .set_message_type(MessageType::Response)
            .set_op_code(OpCode::Query)
            .set_recursion_desired(self.message.recursion_desired())
            .set_recursion_available(true)
            .set_checking_disabled(self.message.checking_disabled())
            .set_response_code(rcode.into())
            .add_queries(self.message.queries().iter().cloned());
        if let Some(edns) = self.message.extensions() {
            let mut ours = Edns::new();
            ours.set_max_payload(REPLY_UDP_PAYLOAD)
                .set_dnssec_ok(edns.flags().dnssec_ok);
            reply.set_edns(ours);
        }
        reply.to_vec().unwrap_or_default()
    }
}

/// The response codes Warden answers with itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rcode {
    /// The name exists but has no records of this type (a NODATA answer, RFC 2308 §2.2).
    NoError,
    /// The query could not be understood (RFC 1035 §4.1.1).
    FormErr,
    /// Warden could not get an answer (the upstream failed or timed out).
    ServFail,
    /// The name does not exist.
    NxDomain,
    /// This kind of query is not supported.
    NotImp,
    /// Policy refuses the lookup.
    Refused,
}

impl From<Rcode> for ResponseCode {
    fn from(rcode: Rcode) -> Self {
        match rcode {
            Rcode::NoError => ResponseCode::NoError,
            Rcode::FormErr => ResponseCode::FormErr,
            Rcode::ServFail => ResponseCode::ServFail,
            Rcode::NxDomain => ResponseCode::NXDomain,
            Rcode::NotImp => ResponseCode::NotImp,
            Rcode::Refused => ResponseCode::Refused,
        }
    }
}

/// Reads a client's query.
///
/// Accepts what stub resolvers send (RFC 1035 §4.1, RFC 9619): QR clear, opcode QUERY, exactly
/// one question of class IN, no answer or authority records, and no additional records but an
/// EDNS OPT. Anything else is an error saying what was wrong; [`formerr`] builds the reply.
/// Records outside the question are refused rather than ignored because the resolver relays
/// the client's bytes upstream, and they would be a place to hide data.
pub fn parse_query(bytes: &[u8]) -> Result<Query, WireError> {
    let message = decode(bytes)?;
    if message.message_type() != MessageType::Query {
        return Err(WireError::NotAQuery);
    }
    if message.op_code() != OpCode::Query {
        return Err(WireError::Opcode(message.op_code().into()));
    }
    let question = match message.queries() {
        [question] => question,
        other => return Err(WireError::QuestionCount(other.len())),
    };
    if question.query_class() != DNSClass::IN {
        return Err(WireError::Class(question.query_class().into()));
    }
    let extra =
        message.answers().len() + message.name_servers().len() + message.additionals().len();
    let extra = extra + message.signature().len();
    if extra > 0 {
        return Err(WireError::ExtraRecords(extra));
    }
    Ok(Query {
        id: message.id(),
        name: name_text(question.name()),
        qtype: question.query_type().into(),
        message,
    })
}

/// A reply to a message [`parse_query`] rejected, so the client does not wait for a timeout.
///
/// Only the 12-byte header (RFC 1035 §4.1.1) is read: the reply echoes its id, opcode and RD
/// bit, has no question, and says NOTIMP for opcodes other than QUERY and FORMERR otherwise.
/// Returns `None` for fewer than 12 bytes (there is no id to answer) and for responses (QR
/// set): answering a response could start a loop between two resolvers.
pub fn formerr(bytes: &[u8]) -> Option<Vec<u8>> {
    let header = Header::read(&mut BinDecoder::new(bytes.get(..12)?)).ok()?;
    if header.message_type() != MessageType::Query {
        return None;
    }
    let rcode = match header.op_code() {
        OpCode::Query => ResponseCode::FormErr,
        _ => ResponseCode::NotImp,
    };
    let mut reply = Message::error_msg(header.id(), header.op_code(), rcode);
    reply.set_recursion_desired(header.recursion_desired());
    reply.to_vec().ok()
}

/// Decodes a whole message, refusing bytes after its last record.
pub(super) fn decode(bytes: &[u8]) -> Result<Message, WireError> {
    let mut decoder = BinDecoder::new(bytes);
    let message = Message::read(&mut decoder).map_err(WireError::Malformed)?;
    match decoder.len() {
        0 => Ok(message),
        trailing => Err(WireError::TrailingBytes(trailing)),
    }
}
