//! The records the test DNS server answers with, and how they become dnsmasq options.
//!
//! [`Zone::default`] is the standard `test.example` zone every DNS test can rely on; a test that
//! needs other records builds its own with [`Zone::empty`] and [`Zone::with`]. Records are not
//! limited to `test.example`: any name given a record is answered, every other name is NXDOMAIN.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The test zone.
pub const ZONE: &str = "test.example";
/// A and AAAA: the TLS origin's addresses ([`A_V4`], [`A_V6`]); also has an HTTPS record.
pub const A_NAME: &str = "a.test.example";
/// A only: the plain HTTP origin ([`HTTP_V4`]).
pub const HTTP_NAME: &str = "http.test.example";
/// A only: the echo origin ([`RAW_V4`]).
pub const RAW_NAME: &str = "raw.test.example";
/// CNAME to [`A_NAME`].
pub const ALIAS_NAME: &str = "alias.test.example";
/// AAAA only ([`A_V6`]): an A query gets NOERROR with no answer.
pub const V6ONLY_NAME: &str = "v6only.test.example";
/// TXT only, with [`TXT_STRINGS`].
pub const TXT_NAME: &str = "txt.test.example";
/// The character-strings of [`TXT_NAME`]'s TXT record.
pub const TXT_STRINGS: [&str; 2] = ["warden test zone", "v=1, with a comma"];
/// This name and every name under it (`<anything>.burst.test.example`) answer A [`A_V4`] and
/// AAAA [`A_V6`]: for bursts of unique names, as DNS tunnels make.
pub const BURST_DOMAIN: &str = "burst.test.example";
/// ALPN protocol ids in [`A_NAME`]'s HTTPS record.
pub const HTTPS_ALPN: [&str; 1] = ["h2"];
/// The ECH public name inside the ECHConfig of [`A_NAME`]'s HTTPS record.
pub const ECH_PUBLIC_NAME: &str = "public.test.example";

/// [`A_NAME`]'s IPv4 address: the TLS origin's.
pub const A_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
/// [`A_NAME`]'s IPv6 address: the TLS and HTTP origins'.
pub const A_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10);
/// [`HTTP_NAME`]'s address: the plain HTTP origin's.
pub const HTTP_V4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
/// [`RAW_NAME`]'s address: the echo origin's.
pub const RAW_V4: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);

/// The DNS resource record type of HTTPS (RFC 9460 §14.1).
pub const TYPE_HTTPS: u16 = 65;

/// One record of a [`Zone`]. Names are written without the trailing dot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    /// An A record.
    A(String, Ipv4Addr),
    /// An AAAA record.
    Aaaa(String, Ipv6Addr),
    /// `alias` CNAME `target`. dnsmasq answers a CNAME only when the target is a name it has
    /// records for, and then adds the target's records to the answer.
    Cname {
        /// The owner name.
        alias: String,
        /// The canonical name.
        target: String,
    },
    /// A TXT record with these character-strings (each at most 255 bytes).
    Txt(String, Vec<String>),
    /// A record of any type, given as its wire-format RDATA (dnsmasq's `--dns-rr`).
    Raw {
        /// The owner name.
        name: String,
        /// The type code, e.g. [`TYPE_HTTPS`].
        rtype: u16,
        /// The RDATA, exactly as it goes on the wire.
        rdata: Vec<u8>,
    },
    /// `domain` and every name under it answer A and AAAA with these addresses (dnsmasq's
    /// `--address=/domain/addr`); a type with no address given gets NOERROR and no answer.
    Subtree {
        /// The domain whose whole subtree answers.
        domain: String,
        /// The addresses every name in it has.
        addrs: Vec<IpAddr>,
    },
}

/// What a [`DnsServer`](super::DnsServer) answers: its records and their TTL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Zone {
    records: Vec<Record>,
    ttl: u32,
}

impl Zone {
    /// No records: every name is NXDOMAIN until [`Zone::with`] adds some.
    pub fn empty() -> Zone {
        Zone {
            records: Vec::new(),
            ttl: 300,
        }
    }

    /// This zone with `record` added.
    pub fn with(mut self, record: Record) -> Zone {
        self.records.push(record);
        self
    }

    /// This zone with every answer's TTL set to `ttl` seconds (default 300, a common real value:
    /// 0 would make every cache in between, Warden's included, forget the answer at once).
    pub fn ttl(mut self, ttl: u32) -> Zone {
        self.ttl = ttl;
        self
    }

    /// The records, in the order they were added.
    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// The TTL of every answer, in seconds.
    pub fn answer_ttl(&self) -> u32 {
        self.ttl
    }

    /// The dnsmasq configuration lines that serve these records.
    pub(super) fn dnsmasq_lines(&self) -> Vec<String> {
        let mut lines = vec![
            format!("local-ttl={}", self.ttl),
            // Answer test.example from these records only, never from upstream...
            format!("local=/{ZONE}/"),
            // ...and every other name with NXDOMAIN: there is no upstream, and a definite
            // answer makes a missing name fail at once instead of timing out or being retried.
            "address=/#/".to_owned(),
        ];
        lines.extend(self.records.iter().flat_map(record_lines));
        lines
    }
}

/// The standard `test.example` zone; see the constants of this module.
impl Default for Zone {
    fn default() -> Zone {
        let name = str::to_owned;
        Zone::empty()
            .with(Record::A(name(A_NAME), A_V4))
            .with(Record::Aaaa(name(A_NAME), A_V6))
            .with(Record::A(name(HTTP_NAME), HTTP_V4))
            .with(Record::A(name(RAW_NAME), RAW_V4))
            .with(Record::Cname {
                alias: name(ALIAS_NAME),
                target: name(A_NAME),
            })
            .with(Record::Aaaa(name(V6ONLY_NAME), A_V6))
            .with(Record::Txt(
                name(TXT_NAME),
                TXT_STRINGS.map(str::to_owned).to_vec(),
            ))
            .with(Record::Raw {
                name: name(A_NAME),
                rtype: TYPE_HTTPS,
                rdata: https_rdata(1, ".", &HTTPS_ALPN, Some(&ech_config_list())),
            })
            .with(Record::Subtree {
                domain: name(BURST_DOMAIN),
                addrs: vec![IpAddr::V4(A_V4), IpAddr::V6(A_V6)],
            })
    }
}

fn record_lines(record: &Record) -> Vec<String> {
    match record {
        Record::A(name, ip) => vec![format!("host-record={name},{ip}")],
        Record::Aaaa(name, ip) => vec![format!("host-record={name},{ip}")],
        Record::Cname { alias, target } => vec![format!("cname={alias},{target}")],
        Record::Txt(name, strings) => {
            let quoted: Vec<String> = strings.iter().map(|s| conf_quote(s)).collect();
            vec![format!("txt-record={name},{}", quoted.join(","))]
        }
        Record::Raw { name, rtype, rdata } => {
            let hex: String = rdata.iter().map(|b| format!("{b:02x}")).collect();
            vec![format!("dns-rr={name},{rtype},{hex}")]
        }
        Record::Subtree { domain, addrs } => addrs
            .iter()
            .map(|ip| format!("address=/{domain}/{ip}"))
            .collect(),
    }
}

/// A double-quoted string for a dnsmasq configuration file, which takes `\"` and `\\`.
fn conf_quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', r"\\").replace('"', "\\\""))
}

/// The RDATA of an SVCB or HTTPS record (RFC 9460 §2.2): `priority`, `target` (`.` for the
/// owner itself), then the SvcParams in increasing key order: `alpn` (key 1, §7.1.1) when
/// `alpn` is not empty, and `ech` (key 5, RFC 9460 §14.3.2 and draft-ietf-tls-svcb-ech) when
/// given.
pub fn https_rdata(priority: u16, target: &str, alpn: &[&str], ech: Option<&[u8]>) -> Vec<u8> {
    let mut rdata = priority.to_be_bytes().to_vec();
    // TargetName is uncompressed (RFC 9460 §2.2).
    rdata.extend(wire_name(target));
    if !alpn.is_empty() {
        let mut value = Vec::new();
        for id in alpn {
            value.push(u8::try_from(id.len()).expect("an alpn-id is at most 255 bytes"));
            value.extend_from_slice(id.as_bytes());
        }
        push_param(&mut rdata, 1, &value);
    }
    if let Some(ech) = ech {
        push_param(&mut rdata, 5, ech);
    }
    rdata
}

fn push_param(rdata: &mut Vec<u8>, key: u16, value: &[u8]) {
    let len = u16::try_from(value.len()).expect("a SvcParam value is under 64 KiB");
    rdata.extend(key.to_be_bytes());
    rdata.extend(len.to_be_bytes());
    rdata.extend_from_slice(value);
}

/// `name` in uncompressed wire format (RFC 1035 §3.1); `.` and `` are the root.
fn wire_name(name: &str) -> Vec<u8> {
    let mut wire = Vec::new();
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        wire.push(u8::try_from(label.len()).expect("a label is at most 63 bytes"));
        wire.extend_from_slice(label.as_bytes());
    }
    wire.push(0);
    wire
}

/// A well-formed ECHConfigList (draft-ietf-tls-esni §4) holding one version 0xfe0d ECHConfig:
/// config id 0x2a, DHKEM(X25519, HKDF-SHA256) with a fixed public key (nobody holds the private
/// one: tests only need something to see stripped), HKDF-SHA256 with AES-128-GCM, public name
/// [`ECH_PUBLIC_NAME`], no extensions.
pub fn ech_config_list() -> Vec<u8> {
    let public_key: Vec<u8> = (0u8..32)
        .map(|i| i.wrapping_mul(37).wrapping_add(11))
        .collect();
    let mut contents = vec![0x2a]; // config_id
    contents.extend(0x0020u16.to_be_bytes()); // kem_id
    contents.extend((public_key.len() as u16).to_be_bytes());
    contents.extend(&public_key);
    contents.extend(4u16.to_be_bytes()); // cipher_suites: one (kdf_id, aead_id)
    contents.extend(0x0001u16.to_be_bytes());
    contents.extend(0x0001u16.to_be_bytes());
    contents.push(0); // maximum_name_length
    contents.push(ECH_PUBLIC_NAME.len() as u8);
    contents.extend(ECH_PUBLIC_NAME.as_bytes());
    contents.extend(0u16.to_be_bytes()); // extensions
    let mut config = 0xfe0du16.to_be_bytes().to_vec();
    config.extend((contents.len() as u16).to_be_bytes());
    config.extend(contents);
    let mut list = (config.len() as u16).to_be_bytes().to_vec();
    list.extend(config);
    list
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_rdata_follows_rfc_9460() {
        let rdata = https_rdata(1, ".", &["h2", "http/1.1"], Some(&[0xaa, 0xbb]));
        let want = [
            "0001",               // SvcPriority
            "00",                 // TargetName: the root
            "0001000c",           // alpn, 12 bytes
            "026832",             // "h2"
            "08687474702f312e31", // "http/1.1"
            "00050002aabb",       // ech, 2 bytes
        ]
        .concat();
        let got: String = rdata.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(got, want);
        assert_eq!(
            https_rdata(0, "svc.test.example.", &[], None),
            b"\x00\x00\x03svc\x04test\x07example\x00"
        );
    }

    #[test]
    fn ech_config_list_lengths_add_up() {
        let list = ech_config_list();
        let u16_at = |at: usize| usize::from(u16::from_be_bytes([list[at], list[at + 1]]));
        assert_eq!(u16_at(0), list.len() - 2, "ECHConfigList length");
        assert_eq!(u16_at(2), 0xfe0d, "version");
        assert_eq!(u16_at(4), list.len() - 6, "ECHConfig length");
        assert!(list.ends_with(b"\x13public.test.example\x00\x00"));
    }

    #[test]
    fn zone_lines_quote_txt_and_expand_subtrees() {
        let zone = Zone::empty()
            .ttl(60)
            .with(Record::Txt(
                "t.test.example".into(),
                vec![r#"a "q" \ b"#.into()],
            ))
            .with(Record::Subtree {
                domain: "s.test.example".into(),
                addrs: vec!["192.0.2.1".parse().unwrap(), "2001:db8::1".parse().unwrap()],
            });
        let lines = zone.dnsmasq_lines();
        assert_eq!(
            lines[..3],
            ["local-ttl=60", "local=/test.example/", "address=/#/"]
        );
        assert_eq!(
            lines[3..],
            [
                r#"txt-record=t.test.example,"a \"q\" \\ b""#,
                "address=/s.test.example/192.0.2.1",
                "address=/s.test.example/2001:db8::1",
            ]
        );
    }

    #[test]
    fn the_default_zone_has_every_documented_name() {
        let lines = Zone::default().dnsmasq_lines().join("\n");
        for name in [
            A_NAME,
            HTTP_NAME,
            RAW_NAME,
            ALIAS_NAME,
            V6ONLY_NAME,
            TXT_NAME,
        ] {
            assert!(lines.contains(&format!("={name},")), "{name}: {lines}");
        }
        assert!(lines.contains("dns-rr=a.test.example,65,0001000001000302683200050"));
        assert!(lines.contains("address=/burst.test.example/2001:db8::10"));
    }
}
