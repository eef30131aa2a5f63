//! read_answer: reading, matching, and ECH removal.

use super::*;

#[test]
fn reads_addresses_and_the_cname_chain() {
    let query = query("www.example.com.", RecordType::A);
    let answer = response(
        &query,
        vec![
            record(
                "WWW.example.com.",
                300,
                RData::CNAME(CNAME(name("Edge.CDN.example.net."))),
            ),
            record(
                "edge.cdn.example.net.",
                60,
                RData::CNAME(CNAME(name("e1.cdn.example.net."))),
            ),
            record("e1.cdn.example.net.", 20, RData::A(A::new(192, 0, 2, 1))),
            record("e1.cdn.example.net.", 20, RData::A(A::new(192, 0, 2, 2))),
        ],
    );
    let read = read_answer(&query, &answer.to_vec().unwrap()).unwrap();
    assert_eq!(read.rcode, "NOERROR");
    assert!(!read.truncated && !read.ech_stripped);
    assert_eq!(read.bytes, answer.to_vec().unwrap());
    assert_eq!(
        read.records[0],
        AnswerRecord {
            name: "www.example.com".into(),
            rtype: "CNAME".into(),
            data: "edge.cdn.example.net".into(),
            ttl: 300,
        }
    );
    assert_eq!(
        read.names("WWW.example.com."),
        [
            "www.example.com",
            "edge.cdn.example.net",
            "e1.cdn.example.net"
        ]
    );
    let v4 = |d| IpAddr::V4(Ipv4Addr::new(192, 0, 2, d));
    assert_eq!(read.addresses(), [(v4(1), 20), (v4(2), 20)]);
}

#[test]
fn aaaa_nxdomain_and_truncated_answers() {
    let query = query("ipv6.example.", RecordType::AAAA);
    let mut answer = response(
        &query,
        vec![record(
            "ipv6.example.",
            5,
            RData::AAAA(AAAA::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
        )],
    );
    answer.set_truncated(true);
    let read = read_answer(&query, &answer.to_vec().unwrap()).unwrap();
    assert!(read.truncated);
    assert_eq!(
        read.addresses(),
        [(IpAddr::V6(Ipv6Addr::from_str("2001:db8::1").unwrap()), 5)]
    );
    let mut nx = response(&query, vec![]);
    nx.set_response_code(ResponseCode::NXDomain);
    let read = read_answer(&query, &nx.to_vec().unwrap()).unwrap();
    assert_eq!((read.rcode.as_str(), read.records.len()), ("NXDOMAIN", 0));
    assert_eq!(read.names("ipv6.example"), ["ipv6.example"]);
}

#[test]
fn cname_loops_and_long_chains_end() {
    let query = query("a.example.", RecordType::A);
    let cname = |from: &str, to: &str| record(from, 1, RData::CNAME(CNAME(name(to))));
    let looped = response(
        &query,
        vec![
            cname("a.example.", "b.example."),
            cname("b.example.", "a.example."),
        ],
    );
    let read = read_answer(&query, &looped.to_vec().unwrap()).unwrap();
    assert_eq!(read.names("a.example"), ["a.example", "b.example"]);
    let long: Vec<Record> = (0..40)
        .map(|i| cname(&format!("c{i}.example."), &format!("c{}.example.", i + 1)))
        .collect();
    let query = self::query("c0.example.", RecordType::A);
    let read = read_answer(&query, &response(&query, long).to_vec().unwrap()).unwrap();
    assert_eq!(read.names("c0.example").len(), 17);
}

#[test]
fn ech_is_removed_and_the_rest_kept() {
    let query = query("crypto.example.", RecordType::HTTPS);
    let mut answer = response(
        &query,
        vec![record("crypto.example.", 300, https_with_ech(true))],
    );
    let svcb = SVCB::new(
        1,
        name("svc.example."),
        match https_with_ech(false) {
            RData::HTTPS(HTTPS(svcb)) => svcb.svc_params().to_vec(),
            _ => unreachable!(),
        },
    );
    answer.add_additional(record("_dns.svc.example.", 300, RData::SVCB(svcb)));
    let read = read_answer(&query, &answer.to_vec().unwrap()).unwrap();
    assert!(read.ech_stripped);
    assert!(
        !read.records[0].data.contains("ech"),
        "{}",
        read.records[0].data
    );
    assert!(
        read.records[0].data.contains("alpn=h2,h3"),
        "{}",
        read.records[0].data
    );
    let sent = Message::from_vec(&read.bytes).unwrap();
    assert_eq!(sent.id(), query.id);
    assert_eq!(
        params(sent.answers()[0].data()),
        [SvcParamKey::Mandatory, SvcParamKey::Alpn]
    );
    match sent.answers()[0].data() {
        RData::HTTPS(HTTPS(svcb)) => assert_eq!(
            svcb.svc_params()[0].1,
            SvcParamValue::Mandatory(Mandatory(vec![SvcParamKey::Alpn]))
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(params(sent.additionals()[0].data()), [SvcParamKey::Alpn]);
    assert!(sent.extensions().is_none());
    // What the client gets reads the same, with nothing left to strip.
    let again = read_answer(&query, &read.bytes).unwrap();
    assert!(!again.ech_stripped);
    assert_eq!(again.records, read.records);
}

#[test]
fn mandatory_naming_only_ech_is_dropped() {
    let query = query("only.example.", RecordType::HTTPS);
    let ech = EchConfigList(vec![1, 2, 3]);
    let params = vec![
        (
            SvcParamKey::Mandatory,
            SvcParamValue::Mandatory(Mandatory(vec![SvcParamKey::EchConfigList])),
        ),
        (
            SvcParamKey::EchConfigList,
            SvcParamValue::EchConfigList(ech),
        ),
    ];
    let https = RData::HTTPS(HTTPS(SVCB::new(1, Name::root(), params)));
    let answer = response(&query, vec![record("only.example.", 1, https)]);
    let read = read_answer(&query, &answer.to_vec().unwrap()).unwrap();
    let sent = Message::from_vec(&read.bytes).unwrap();
    assert!(params_of(&sent).is_empty());
}

fn params_of(message: &Message) -> Vec<SvcParamKey> {
    params(message.answers()[0].data())
}

#[test]
fn responses_to_other_queries_are_mismatches() {
    let query = query("www.example.com.", RecordType::A);
    let good = response(
        &query,
        vec![record(
            "www.example.com.",
            1,
            RData::A(A::new(192, 0, 2, 1)),
        )],
    );
    let edit = |f: &dyn Fn(&mut Message)| {
        let mut message = good.clone();
        f(&mut message);
        message.to_vec().unwrap()
    };
    let cases: Vec<(Vec<u8>, Option<&str>)> = vec![
        (edit(&|_| ()), None),
        (
            edit(&|m| _ = m.queries_mut()[0].set_name(name("WwW.ExAmPlE.cOm."))),
            None,
        ),
        (edit(&|m| _ = m.set_id(0x4321)), Some("id differs")),
        (
            edit(&|m| _ = m.set_message_type(MessageType::Query)),
            Some("qr bit clear"),
        ),
        (
            edit(&|m| _ = m.set_op_code(OpCode::Status)),
            Some("opcode differs"),
        ),
        (
            edit(&|m| _ = m.queries_mut()[0].set_name(name("www.example.org."))),
            Some("question differs"),
        ),
        (
            edit(&|m| _ = m.queries_mut()[0].set_query_type(RecordType::AAAA)),
            Some("question differs"),
        ),
        (
            edit(&|m| _ = m.queries_mut()[0].set_query_class(DNSClass::CH)),
            Some("question differs"),
        ),
        (
            edit(&|m| _ = m.take_queries()),
            Some("not exactly one question"),
        ),
    ];
    for (bytes, want) in cases {
        match (read_answer(&query, &bytes), want) {
            (Ok(_), None) => {}
            (Err(WireError::Mismatch(got)), Some(want)) => assert_eq!(got, want),
            (got, want) => panic!("{got:?}, want {want:?}"),
        }
    }
}

#[test]
fn every_prefix_of_an_answer_is_an_error() {
    let query = query("crypto.example.", RecordType::HTTPS);
    let answer = response(
        &query,
        vec![
            record("crypto.example.", 300, https_with_ech(true)),
            record("crypto.example.", 300, RData::A(A::new(192, 0, 2, 7))),
        ],
    );
    let bytes = answer.to_vec().unwrap();
    assert!(read_answer(&query, &bytes).is_ok());
    for cut in 0..bytes.len() {
        assert!(
            read_answer(&query, &bytes[..cut]).is_err(),
            "prefix of {cut} bytes"
        );
    }
}
