//! Fuzzes `sniff::dns`: no input may panic; a reply to a parsed query, and an answer
//! re-encoded after its ECH configs were stripped, must read back; stripping twice must find
//! nothing the second time.
//!
//! The input is read three ways: as a client query (and, when rejected, for `formerr`); as
//! an upstream answer to a fixed HTTPS query (the `https-ech` capture, so answers to it in
//! the corpus reach the ECH rewrite); and as a query and answer pair, the query framed like
//! DNS over TCP (two-byte length) and the answer filling the rest.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sniff::Parse;
use sniff::dns::{Query, Rcode, formerr, parse_query, read_answer, tcp_unframe};

const FIXED_QUERY: &[u8] = include_bytes!("../../tests/data/dns/https-ech.query.bin");

fn check_query(data: &[u8]) -> Option<Query> {
    match parse_query(data) {
        Ok(query) => {
            let _ = query.qtype_name();
            let reply = query.reply(Rcode::Refused);
            let read = read_answer(&query, &reply).expect("our reply answers the query");
            assert_eq!(read.rcode, "REFUSED");
            Some(query)
        }
        Err(_) => {
            if let Some(reply) = formerr(data) {
                assert_eq!(reply.len(), 12, "header only");
                assert_eq!(reply[..2], data[..2], "id echoed");
            }
            None
        }
    }
}

fn check_answer(query: &Query, data: &[u8]) {
    let Ok(answer) = read_answer(query, data) else {
        return;
    };
    assert!(answer.names(&query.name).len() <= 17);
    let _ = answer.addresses();
    if answer.ech_stripped {
        let again = read_answer(query, &answer.bytes).expect("re-encoded answer reads back");
        assert!(!again.ech_stripped);
    } else {
        assert_eq!(answer.bytes, data);
    }
}

fuzz_target!(|data: &[u8]| {
    check_query(data);
    if let Ok(fixed) = parse_query(FIXED_QUERY) {
        check_answer(&fixed, data);
    }
    if let Parse::Done((used, query)) = tcp_unframe(data) {
        if let Some(query) = check_query(query) {
            check_answer(&query, data.get(used..).unwrap_or_default());
        }
    }
});
