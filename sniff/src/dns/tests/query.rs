//! parse_query, Query::reply and formerr.

use super::*;

#[test]
fn parses_a_stub_query() {
    let bytes = query_message(7, "WWW.GitHub.com.", RecordType::AAAA, false)
        .to_vec()
        .unwrap();
    let parsed = parse_query(&bytes).unwrap();
    assert_eq!(
        (parsed.id, parsed.name.as_str(), parsed.qtype),
        (7, "www.github.com", 28)
    );
    assert_eq!(parsed.qtype_name(), "AAAA");
    let root = parse_query(
        &query_message(8, ".", RecordType::NS, true)
            .to_vec()
            .unwrap(),
    );
    assert_eq!(root.unwrap().name, "");
    let private = query("x.example.", RecordType::Unknown(65280));
    assert_eq!(private.qtype_name(), "TYPE65280");
}

#[test]
fn rejects_what_a_stub_does_not_send() {
    let ok = query_message(1, "example.com.", RecordType::A, true);
    let edit = |f: &dyn Fn(&mut Message)| {
        let mut message = ok.clone();
        f(&mut message);
        message.to_vec().unwrap()
    };
    let mut trailing = ok.to_vec().unwrap();
    trailing.push(0);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            edit(&|m| _ = m.set_message_type(MessageType::Response)),
            "qr bit set: a response, not a query",
        ),
        (
            edit(&|m| _ = m.set_op_code(OpCode::Notify)),
            "opcode 4 is not query (0)",
        ),
        (
            edit(&|m| _ = m.take_queries()),
            "0 questions; a query must have exactly one",
        ),
        (
            edit(&|m| _ = m.add_query(Question::query(name("b."), RecordType::A))),
            "2 questions; a query must have exactly one",
        ),
        (
            edit(&|m| _ = m.queries_mut()[0].set_query_class(DNSClass::CH)),
            "question class 3 is not in (1)",
        ),
        (
            edit(&|m| _ = m.add_answer(record("a.", 1, RData::A(A::new(1, 2, 3, 4))))),
            "query carries 1 records outside the question and edns",
        ),
        (
            edit(&|m| {
                _ = m.add_additional(record("a.", 1, RData::TXT(TXT::new(vec!["x".into()]))))
            }),
            "query carries 1 records outside the question and edns",
        ),
        (trailing, "1 bytes after the end of the dns message"),
        (
            b"\x00\x01\x00\x00\x00\x01".to_vec(),
            "malformed dns message",
        ),
    ];
    for (bytes, want) in cases {
        let err = parse_query(&bytes).unwrap_err().to_string();
        assert!(err.starts_with(want), "{err} / {want}");
    }
}

#[test]
fn every_prefix_of_a_query_is_an_error() {
    let bytes = query_message(9, "objects.githubusercontent.com.", RecordType::HTTPS, true)
        .to_vec()
        .unwrap();
    assert!(parse_query(&bytes).is_ok());
    for cut in 0..bytes.len() {
        assert!(parse_query(&bytes[..cut]).is_err(), "prefix of {cut} bytes");
    }
}

#[test]
fn reply_echoes_the_question() {
    for (edns, rcode, want) in [
        (true, Rcode::Refused, ResponseCode::Refused),
        (false, Rcode::NxDomain, ResponseCode::NXDomain),
        (true, Rcode::NoError, ResponseCode::NoError),
        (false, Rcode::ServFail, ResponseCode::ServFail),
        (true, Rcode::FormErr, ResponseCode::FormErr),
        (false, Rcode::NotImp, ResponseCode::NotImp),
    ] {
        let asked = query_message(0xbeef, "Api.GitHub.com.", RecordType::A, edns);
        let reply = Message::from_vec(&parse_query(&asked.to_vec().unwrap()).unwrap().reply(rcode))
            .unwrap();
        assert_eq!(reply.id(), 0xbeef);
        assert_eq!(reply.message_type(), MessageType::Response);
        assert_eq!(reply.response_code(), want);
        assert!(reply.recursion_desired() && reply.recursion_available());
        assert_eq!(reply.queries(), asked.queries(), "question echoed as asked");
        assert!(reply.queries()[0].name().eq_case(&name("Api.GitHub.com.")));
        assert!(reply.answers().is_empty() && reply.name_servers().is_empty());
        assert_eq!(reply.extensions().is_some(), edns);
        if let Some(opt) = reply.extensions() {
            assert!(opt.flags().dnssec_ok, "DO copied");
        }
    }
}

#[test]
fn formerr_answers_only_queries_with_a_header() {
    let update = {
        let mut m = query_message(5, "example.com.", RecordType::SOA, false);
        m.set_op_code(OpCode::Update);
        m.to_vec().unwrap()
    };
    /// The reply's id, opcode and response code.
    type Reply = Option<(u16, OpCode, ResponseCode)>;
    let cases: [(&[u8], Reply); 6] = [
        (b"", None),
        (b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00", None),
        (b"\x12\x34\x81\x00\x00\x01\x00\x00\x00\x00\x00\x00", None),
        (
            b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00garbage",
            Some((0x1234, OpCode::Query, ResponseCode::FormErr)),
        ),
        (
            b"\xab\xcd\x10\x00\xff\xff\xff\xff\xff\xff\xff\xff",
            Some((0xabcd, OpCode::Status, ResponseCode::NotImp)),
        ),
        (&update, Some((5, OpCode::Update, ResponseCode::NotImp))),
    ];
    for (bytes, want) in cases {
        let got = formerr(bytes).map(|reply| {
            let m = Message::from_vec(&reply).unwrap();
            assert_eq!(m.message_type(), MessageType::Response);
            assert!(m.queries().is_empty());
            (m.id(), m.op_code(), m.response_code())
        });
        assert_eq!(got, want, "{}", bytes.escape_ascii());
    }
}
