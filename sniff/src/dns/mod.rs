//! Reads and writes the DNS messages Warden's resolver relays, through hickory-proto.
//!
//! Every lookup a CI job makes passes through Warden's resolver, which has to know what was
//! asked, answer some queries itself (refusals, format errors), and learn from the upstream
//! answer which addresses a name resolved to. This module is that resolver's view of the wire
//! format, kept pure like the rest of the crate: no sockets, no clocks, no state.
//!
//! - [`parse_query`] accepts only what a stub resolver sends (RFC 1035 §4.1): a QUERY with one
//!   question of class IN and nothing but an EDNS OPT record besides. [`Query::reply`] answers
//!   it without an upstream; [`formerr`] answers what `parse_query` rejected, so a client never
//!   waits out a timeout.
//! - [`read_answer`] checks that an upstream response answers this query (RFC 5452 §9.1: same
//!   id and question) and reads its answer section. It also removes Encrypted ClientHello
//!   configurations from HTTPS and SVCB records: a client that got one would encrypt its real
//!   server name, and Warden judges TLS connections by that name.
//! - [`tcp_frame`] and [`tcp_unframe`] add and remove the two-byte length of DNS over TCP.
//!
//! Nothing here decodes DNS by hand: hickory-proto reads and writes the messages. This module
//! adds the checks, the lowercase text forms that policy and audit records use, and the ECH
//! rewrite. Like the other parsers, none of it panics on any input.

mod answer;
mod ech;
mod query;
mod svcb_text;
mod tcp;
mod text;

pub use answer::{Answer, AnswerRecord, read_answer};
pub use query::{Query, Rcode, formerr, parse_query};
pub use tcp::{MAX_TCP_MESSAGE_LEN, tcp_frame, tcp_unframe};
pub use text::type_name;

use hickory_proto::ProtoError;

/// Why a DNS message was not accepted.
///
/// The messages say what was wrong with the message; which peer sent it (the client for
/// [`parse_query`], the upstream resolver for [`read_answer`]) is known to the caller.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// hickory-proto could not decode the message (truncated, bad label, bad record data...).
    #[error("malformed dns message: {0}")]
    Malformed(#[source] ProtoError),
    /// Bytes follow the last record the header counts announce (RFC 1035 §4.1 leaves no room
    /// for them; a tunnel could hide data there).
    #[error("{0} bytes after the end of the dns message")]
    TrailingBytes(usize),
    /// A response where a query was expected.
    #[error("qr bit set: a response, not a query")]
    NotAQuery,
    /// An opcode other than QUERY (0), such as NOTIFY or UPDATE.
    #[error("opcode {0} is not query (0)")]
    Opcode(u8),
    /// Not exactly one question (RFC 9619: QDCOUNT must be 1 for QUERY).
    #[error("{0} questions; a query must have exactly one")]
    QuestionCount(usize),
    /// A question class other than IN (CHAOS, HESIOD, ANY...).
    #[error("question class {0} is not in (1)")]
    Class(u16),
    /// A query carrying answer, authority or non-OPT additional records.
    #[error("query carries {0} records outside the question and edns")]
    ExtraRecords(usize),
    /// The response does not answer the query it was read against.
    #[error("response does not match the query: {0}")]
    Mismatch(&'static str),
    /// The message could not be written back after its ECH configurations were removed.
    #[error("re-encode dns message after removing ech: {0}")]
    Reencode(#[source] ProtoError),
}

#[cfg(test)]
mod tests;
