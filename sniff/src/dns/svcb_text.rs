//! The presentation form of SVCB and HTTPS record data (RFC 9460 §2.1), as dig prints it.
//!
//! hickory-proto's `Display` for these records ends every list with a comma
//! (`alpn=h2,h3,`), which no other tool writes and RFC 9460 does not allow, and calls
//! unregistered keys `unknownN` instead of `keyN`. Audit records should read like `dig`, so the
//! record is written here from hickory's decoded fields.

use hickory_proto::rr::rdata::svcb::{Mandatory, SVCB, SvcParamKey, SvcParamValue, Unknown};

use super::text::{escaped, name_text};

/// `svcb` as RFC 9460 presentation text: `1 . alpn=h2,h3 ipv4hint=192.0.2.1`.
pub(crate) fn svcb_text(svcb: &SVCB) -> String {
    let target = match name_text(svcb.target_name()) {
        root if root.is_empty() => ".".to_string(),
        name => format!("{name}."),
    };
    let mut text = format!("{} {target}", svcb.svc_priority());
    for (key, value) in svcb.svc_params() {
        text.push(' ');
        text.push_str(&key_text(*key));
        let value = value_text(value);
        if !value.is_empty() {
            text.push('=');
            text.push_str(&value);
        }
    }
    text
}

/// RFC 9460 §2.1: registered names, `keyNNNNN` for the rest.
fn key_text(key: SvcParamKey) -> String {
    match key {
        SvcParamKey::Key(_) | SvcParamKey::Key65535 | SvcParamKey::Unknown(_) => {
            format!("key{}", u16::from(key))
        }
        registered => registered.to_string(),
    }
}

fn value_text(value: &SvcParamValue) -> String {
    let list = |items: Vec<String>| items.join(",");
    match value {
        SvcParamValue::Mandatory(Mandatory(keys)) => {
            list(keys.iter().map(|key| key_text(*key)).collect())
        }
        // RFC 9460 §7.1.1: a comma inside a protocol id is escaped; so is a space, which would
        // end the value.
        SvcParamValue::Alpn(alpn) => list(
            alpn.0
                .iter()
                .map(|id| {
                    escaped(id.as_bytes())
                        .replace(',', "\\,")
                        .replace(' ', "\\032")
                })
                .collect(),
        ),
        SvcParamValue::NoDefaultAlpn => String::new(),
        SvcParamValue::Port(port) => port.to_string(),
        SvcParamValue::Ipv4Hint(hint) => list(hint.0.iter().map(|a| a.0.to_string()).collect()),
        SvcParamValue::Ipv6Hint(hint) => list(hint.0.iter().map(|a| a.0.to_string()).collect()),
        // Quoted base64, as RFC 9460 §10.4's examples write it.
        SvcParamValue::EchConfigList(ech) => ech.to_string(),
        SvcParamValue::Unknown(Unknown(bytes)) => format!("\"{}\"", escaped(bytes)),
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use hickory_proto::rr::Name;
    use hickory_proto::rr::rdata::svcb::{Alpn, IpHint};
    use hickory_proto::rr::rdata::{A, AAAA};

    use super::*;

    #[test]
    fn presentation_like_dig() {
        let params = vec![
            (
                SvcParamKey::Mandatory,
                SvcParamValue::Mandatory(Mandatory(vec![SvcParamKey::Alpn, SvcParamKey::Port])),
            ),
            (
                SvcParamKey::Alpn,
                SvcParamValue::Alpn(Alpn(vec!["h2".into(), "h3".into(), "a,b".into()])),
            ),
            (SvcParamKey::NoDefaultAlpn, SvcParamValue::NoDefaultAlpn),
            (SvcParamKey::Port, SvcParamValue::Port(8443)),
            (
                SvcParamKey::Ipv4Hint,
                SvcParamValue::Ipv4Hint(IpHint(vec![A::new(192, 0, 2, 1), A::new(192, 0, 2, 2)])),
            ),
            (
                SvcParamKey::Ipv6Hint,
                SvcParamValue::Ipv6Hint(IpHint(vec![AAAA::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)])),
            ),
            (
                SvcParamKey::Key(65280),
                SvcParamValue::Unknown(Unknown(b"x \"y\"".to_vec())),
            ),
        ];
        let cases = [
            (
                SVCB::new(1, Name::root(), params),
                "1 . mandatory=alpn,port alpn=h2,h3,a\\,b no-default-alpn port=8443 \
                 ipv4hint=192.0.2.1,192.0.2.2 ipv6hint=2001:db8::1 key65280=\"x \\\"y\\\"\"",
            ),
            (
                SVCB::new(0, Name::from_str("Pool.Example.NET.").unwrap(), vec![]),
                "0 pool.example.net.",
            ),
        ];
        for (svcb, want) in cases {
            assert_eq!(svcb_text(&svcb), want);
        }
    }
}
