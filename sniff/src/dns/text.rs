//! The text forms of names, types, response codes and record data that policy and audit
//! records use.
//!
//! Policy matches names as lowercase strings without a trailing dot, so that is the form every
//! name takes here. A label can hold any byte on the wire (RFC 2181 §11), including `.`; such
//! bytes are written as RFC 1035 §5.1 `\DDD` escapes, so a one-label name `github.com` can never
//! be mistaken for the two-label name policy knows.

use std::fmt::Write as _;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RData, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};

use super::svcb_text::svcb_text;

/// `name` lowercased, labels joined by `.`, without the root's trailing dot ("" for the root).
pub(crate) fn name_text(name: &Name) -> String {
    let mut text = String::with_capacity(name.len());
    for (i, label) in name.iter().enumerate() {
        if i > 0 {
            text.push('.');
        }
        for &byte in label {
            let byte = byte.to_ascii_lowercase();
            if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'*') {
                text.push(char::from(byte));
            } else {
                // Writing to a String cannot fail.
                let _ = write!(text, "\\{byte:03}");
            }
        }
    }
    text
}

/// The mnemonic of an RR type ("A", "HTTPS"), or RFC 3597 §5's `TYPE<n>` for types without one.
pub fn type_name(rtype: u16) -> String {
    match RecordType::from(rtype) {
        // hickory gives ANAME, which was never assigned, the private-use code 65305
        // (hickory-dns issue #723), and calls type 0 "ZERO".
        RecordType::Unknown(_) | RecordType::ANAME | RecordType::ZERO => format!("TYPE{rtype}"),
        known => <&'static str>::from(known).to_string(),
    }
}

/// The IANA mnemonic of a response code ("NOERROR", "NXDOMAIN"), or `RCODE<n>`.
pub(crate) fn rcode_name(code: ResponseCode) -> String {
    let code = u16::from(code);
    // IANA "DNS RCODEs" registry; 16 is BADVERS in an OPT record, BADSIG in TSIG.
    let name = match code {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        11 => "DSOTYPENI",
        16 => "BADVERS",
        17 => "BADKEY",
        18 => "BADTIME",
        19 => "BADMODE",
        20 => "BADNAME",
        21 => "BADALG",
        22 => "BADTRUNC",
        23 => "BADCOOKIE",
        _ => return format!("RCODE{code}"),
    };
    name.to_string()
}

/// The presentation text of record data, as dig prints it: the address for A and AAAA, the
/// lowercase target for CNAME, RFC 9460's form for HTTPS and SVCB, quoted strings for TXT,
/// RFC 3597's generic form for NULL and unknown types, hickory's presentation format otherwise.
pub(crate) fn rdata_text(data: &RData) -> String {
    match data {
        RData::A(a) => a.0.to_string(),
        RData::AAAA(aaaa) => aaaa.0.to_string(),
        RData::CNAME(cname) => name_text(&cname.0),
        RData::HTTPS(https) => svcb_text(&https.0),
        RData::SVCB(svcb) => svcb_text(svcb),
        // hickory runs the strings together ("ab" for "a" "b"); dig quotes each.
        RData::TXT(txt) => {
            let strings: Vec<String> = txt
                .iter()
                .map(|string| format!("\"{}\"", escaped(string)))
                .collect();
            strings.join(" ")
        }
        // hickory writes these as base64; dig and RFC 3597 §5 use the generic form.
        RData::NULL(_) | RData::Unknown { .. } | RData::OPT(_) => generic_rdata(data),
        other => {
            let mut text = String::new();
            // Some hickory Display impls return an error (OPT has no presentation format);
            // `to_string` would panic on that, so fall back to the RFC 3597 §5 generic form.
            match write!(text, "{other}") {
                Ok(()) => text,
                Err(_) => generic_rdata(other),
            }
        }
    }
}

/// RFC 3597 §5: `\# <length> <hex>`.
fn generic_rdata(data: &RData) -> String {
    let mut bytes = Vec::new();
    let mut encoder = BinEncoder::new(&mut bytes);
    if data.emit(&mut encoder).is_err() {
        return "\\# ?".to_string();
    }
    let mut text = format!("\\# {}", bytes.len());
    if !bytes.is_empty() {
        text.push(' ');
    }
    for byte in bytes {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

/// RFC 1035 §5.1 character-string escapes: `\"` and `\\`, `\DDD` outside printable ASCII.
pub(crate) fn escaped(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len());
    for &byte in bytes {
        match byte {
            b'"' | b'\\' => {
                text.push('\\');
                text.push(char::from(byte));
            }
            0x20..=0x7e => text.push(char::from(byte)),
            _ => {
                let _ = write!(text, "\\{byte:03}");
            }
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::OPT;

    #[test]
    fn names_are_lowercase_without_the_root_dot() {
        let cases = [
            ("WWW.Example.COM.", "www.example.com"),
            (".", ""),
            (
                "_acme-challenge.example.com.",
                "_acme-challenge.example.com",
            ),
            ("*.example.com.", "*.example.com"),
        ];
        for (input, want) in cases {
            let name = Name::from_ascii(input).unwrap();
            assert_eq!(name_text(&name), want, "{input}");
        }
    }

    #[test]
    fn odd_label_bytes_are_escaped() {
        let one_label = Name::from_labels([&b"github.com"[..]]).unwrap();
        assert_eq!(name_text(&one_label), "github\\046com");
        let odd = Name::from_labels([&b"a b\xff"[..], &b"x"[..]]).unwrap();
        assert_eq!(name_text(&odd), "a\\032b\\255.x");
    }

    #[test]
    fn type_names() {
        let cases = [
            (1, "A"),
            (28, "AAAA"),
            (65, "HTTPS"),
            (64, "SVCB"),
            (16, "TXT"),
            (255, "ANY"),
            (0, "TYPE0"),
            (65280, "TYPE65280"),
            (65305, "TYPE65305"),
        ];
        for (code, want) in cases {
            assert_eq!(type_name(code), want, "{code}");
        }
    }

    #[test]
    fn rcode_names() {
        let cases = [
            (0, "NOERROR"),
            (3, "NXDOMAIN"),
            (5, "REFUSED"),
            (16, "BADVERS"),
            (12, "RCODE12"),
            (4095, "RCODE4095"),
        ];
        for (code, want) in cases {
            assert_eq!(
                rcode_name(<ResponseCode as From<u16>>::from(code)),
                want,
                "{code}"
            );
        }
    }

    #[test]
    fn rdata_without_presentation_form_does_not_panic() {
        let text = rdata_text(&RData::OPT(OPT::default()));
        assert_eq!(text, "\\# 0");
    }
}
