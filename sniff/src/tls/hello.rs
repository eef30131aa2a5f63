//! Decodes the ClientHello body and the extensions Warden cares about.
//!
//! Only server_name, ALPN and encrypted_client_hello are read; every other
//! extension is skipped by length. The framing of the whole body is still
//! checked, because a hello whose lengths do not add up may be read differently
//! by the real server, and Warden must not judge a connection by a reading the
//! server would not share.

use super::ClientHello;
use crate::name::check_dns_name;
use crate::reader::Reader;

/// ExtensionType.server_name (RFC 8446 §4.2, RFC 6066 §3).
const EXT_SERVER_NAME: u16 = 0;
/// ExtensionType.application_layer_protocol_negotiation (RFC 7301 §3.1).
const EXT_ALPN: u16 = 16;
/// ExtensionType.encrypted_client_hello (draft-ietf-tls-esni, IANA 0xfe0d).
const EXT_ECH: u16 = 0xfe0d;
/// NameType.host_name (RFC 6066 §3).
const HOST_NAME: u8 = 0;
/// RFC 8446 §4.1.2: legacy_session_id is opaque <0..32>.
const MAX_SESSION_ID_LEN: usize = 32;

const INCONSISTENT: &str = "client hello lengths are inconsistent";

/// Parses a complete ClientHello body (the handshake header already removed).
pub(super) fn parse(body: &[u8], record_version: u16) -> Result<ClientHello, &'static str> {
    // RFC 8446 §4.1.2 (RFC 5246 §7.4.1.2 has the same layout for TLS 1.2):
    //   ProtocolVersion legacy_version; Random random;
    //   opaque legacy_session_id<0..32>; CipherSuite cipher_suites<2..2^16-2>;
    //   opaque legacy_compression_methods<1..2^8-1>; Extension extensions<8..2^16-1>;
    let mut r = Reader::new(body);
    let legacy_version = r.u16().ok_or(INCONSISTENT)?;
    r.take(32).ok_or(INCONSISTENT)?;
    let session_id = r.sub_u8().ok_or(INCONSISTENT)?;
    if session_id.rest().len() > MAX_SESSION_ID_LEN {
        return Err("session id longer than 32 bytes");
    }
    let suites = r.sub_u16().ok_or(INCONSISTENT)?.rest();
    if suites.is_empty() || suites.len() % 2 != 0 {
        return Err("bad cipher suite list");
    }
    if r.sub_u8().ok_or(INCONSISTENT)?.is_empty() {
        return Err("no compression methods");
    }
    let mut hello = ClientHello {
        sni: None,
        alpn: Vec::new(),
        ech: false,
        record_version,
        legacy_version,
    };
    // RFC 5246 §7.4.1.2: a TLS 1.2 (or older) hello may end here, without an
    // extensions block at all.
    if r.is_empty() {
        return Ok(hello);
    }
    let extensions = r.sub_u16().ok_or(INCONSISTENT)?;
    if !r.is_empty() {
        return Err("bytes after the extensions");
    }
    read_extensions(extensions, &mut hello)?;
    Ok(hello)
}

/// Walks the extension list (RFC 8446 §4.2), filling in the fields it knows.
fn read_extensions(mut list: Reader<'_>, hello: &mut ClientHello) -> Result<(), &'static str> {
    let mut seen = Vec::new();
    while !list.is_empty() {
        let ext_type = list.u16().ok_or(INCONSISTENT)?;
        let data = list.sub_u16().ok_or(INCONSISTENT)?;
        seen.push(ext_type);
        match ext_type {
            EXT_SERVER_NAME => hello.sni = server_name(data)?,
            EXT_ALPN => hello.alpn = alpn(data)?,
            EXT_ECH => hello.ech = true,
            _ => {}
        }
    }
    // RFC 8446 §4.2: "There MUST NOT be more than one extension of the same type
    // in a given extension block."
    seen.sort_unstable();
    if seen.iter().zip(seen.iter().skip(1)).any(|(a, b)| a == b) {
        return Err("duplicate extension");
    }
    Ok(())
}

/// Reads the server_name extension (RFC 6066 §3) and returns its host_name.
fn server_name(mut data: Reader<'_>) -> Result<Option<String>, &'static str> {
    // struct { NameType name_type; select (name_type) { case host_name: HostName; } name; } ServerName;
    // struct { ServerName server_name_list<1..2^16-1> } ServerNameList;
    let mut list = data.sub_u16().ok_or(INCONSISTENT)?;
    if !data.is_empty() {
        return Err("bytes after the server name list");
    }
    if list.is_empty() {
        return Err("empty server name list");
    }
    let mut host = None;
    while !list.is_empty() {
        let name_type = list.u8().ok_or(INCONSISTENT)?;
        // Only host_name is defined; like other implementations, read any other
        // type with the same opaque<1..2^16-1> framing and ignore it.
        let name = list.sub_u16().ok_or(INCONSISTENT)?;
        if name_type != HOST_NAME {
            continue;
        }
        // RFC 6066 §3: "The ServerNameList MUST NOT contain more than one name of
        // the same name_type." Servers differ on which one they would use.
        if host.is_some() {
            return Err("more than one host name");
        }
        host = Some(host_name(name.rest())?);
    }
    Ok(host)
}

/// Validates a HostName (RFC 6066 §3: ASCII, "without a trailing dot") and
/// lowercases it.
fn host_name(name: &[u8]) -> Result<String, &'static str> {
    check_dns_name(name)?;
    Ok(name
        .iter()
        .map(|&b| char::from(b.to_ascii_lowercase()))
        .collect())
}

/// Reads the ALPN extension (RFC 7301 §3.1).
fn alpn(mut data: Reader<'_>) -> Result<Vec<String>, &'static str> {
    // opaque ProtocolName<1..2^8-1>; struct { ProtocolName protocol_name_list<2..2^16-1> } ProtocolNameList;
    let mut list = data.sub_u16().ok_or(INCONSISTENT)?;
    if !data.is_empty() {
        return Err("bytes after the alpn list");
    }
    if list.is_empty() {
        return Err("empty alpn list");
    }
    let mut protocols = Vec::new();
    while !list.is_empty() {
        let name = list.sub_u8().ok_or(INCONSISTENT)?;
        if name.is_empty() {
            return Err("empty alpn protocol name");
        }
        protocols.push(String::from_utf8_lossy(name.rest()).into_owned());
    }
    Ok(protocols)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(data: &[u8]) -> Result<Option<String>, &'static str> {
        server_name(Reader::new(data))
    }

    #[test]
    fn host_names_are_validated_and_lowercased() {
        assert_eq!(host_name(b"WWW.Example.com"), Ok("www.example.com".into()));
        assert_eq!(host_name(b"a_b-1.example"), Ok("a_b-1.example".into()));
        assert_eq!(host_name(b"example.com."), Err("bad host name label"));
        assert_eq!(host_name(b"::1"), Err("bad host name character"));
    }

    #[test]
    fn server_name_list_takes_the_only_host_name() {
        assert_eq!(names(b"\x00\x04\x00\x00\x01a"), Ok(Some("a".into())));
        assert_eq!(names(b"\x00\x04\x07\x00\x01a"), Ok(None));
        assert_eq!(
            names(b"\x00\x08\x07\x00\x01z\x00\x00\x01a"),
            Ok(Some("a".into()))
        );
        assert_eq!(
            names(b"\x00\x08\x00\x00\x01a\x00\x00\x01b"),
            Err("more than one host name")
        );
        assert_eq!(names(b"\x00\x00"), Err("empty server name list"));
        assert_eq!(names(b"\x00\x05\x00\x00\x01a"), Err(INCONSISTENT));
        assert_eq!(
            names(b"\x00\x04\x00\x00\x01ax"),
            Err("bytes after the server name list")
        );
    }

    #[test]
    fn alpn_names_are_kept_as_lossy_utf8() {
        let parsed = alpn(Reader::new(b"\x00\x06\x02h2\x02\xffx"));
        assert_eq!(parsed, Ok(vec!["h2".to_string(), "\u{fffd}x".to_string()]));
        assert_eq!(alpn(Reader::new(b"\x00\x00")), Err("empty alpn list"));
        assert_eq!(
            alpn(Reader::new(b"\x00\x01\x00")),
            Err("empty alpn protocol name")
        );
        assert_eq!(alpn(Reader::new(b"\x00\x02\x02h")), Err(INCONSISTENT));
    }

    #[test]
    fn duplicate_extensions_are_malformed() {
        let mut hello = ClientHello {
            sni: None,
            alpn: Vec::new(),
            ech: false,
            record_version: 0x0301,
            legacy_version: 0x0303,
        };
        let list = b"\xfe\x0d\x00\x00\x00\x17\x00\x00\xfe\x0d\x00\x00";
        assert_eq!(
            read_extensions(Reader::new(list), &mut hello),
            Err("duplicate extension")
        );
        assert_eq!(read_extensions(Reader::new(&list[..8]), &mut hello), Ok(()));
        assert!(hello.ech);
    }
}
