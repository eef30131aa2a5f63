//! Well-known DNS-over-HTTPS (and DNS-over-TLS) resolvers, by name and by address.
//!
//! Warden sees every lookup a job makes because the eBPF hooks send port-53 traffic to its
//! resolver. A client that speaks DoH (RFC 8484) instead hides each lookup inside an ordinary
//! HTTPS connection to a public resolver: Warden then sees one connection to `dns.google` and
//! none of the names behind it, and a job can resolve, and so reach or tunnel to, anything. So
//! in block mode a connection to one of these resolvers is refused unless the policy names
//! the resolver exactly (a `*.example` wildcard does not count), and in audit mode it is
//! flagged [`FLAG`] so the summary points at it.
//!
//! The list holds the public resolvers that browsers, curl, language runtimes and privacy
//! tools ship as presets. It is a deterrent against the casual case, not a boundary: anyone
//! can run DoH on their own host, and Warden's policy (not this list) is what stops a job
//! from reaching an unknown host at all.
//!
//! [`hosts`] is written in policy endpoint syntax: `name` is that name only, `*.name` any name
//! below it (not `name` itself). Wildcards cover providers whose every subdomain is a resolver:
//! `cloudflare-dns.com` (mozilla., security., family., 1dot1dot1dot1., chrome., ...),
//! `dns.nextdns.io` (per-profile `abc123.dns.nextdns.io`; the apex `nextdns.io` and
//! `my.nextdns.io` are the web site and dashboard, so the rest of nextdns.io is left alone),
//! `dns.mullvad.net` (adblock., base., extended., family., all.), `dns0.eu` (zero., kids.,
//! open.), `dns.google` (dns64.), `doh.pub` (sm2.) and ControlD's two resolver zones.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The flag on records of connections to (and lookups of) a known DoH resolver.
pub const FLAG: &str = "doh";

/// Resolver host names, in policy endpoint syntax (see the module docs).
const HOSTS: &[&str] = &[
    // Google Public DNS
    "dns.google",
    "*.dns.google",
    "dns.google.com",
    "8888.google",
    // Cloudflare 1.1.1.1
    "cloudflare-dns.com",
    "*.cloudflare-dns.com",
    "one.one.one.one",
    // Quad9
    "dns.quad9.net",
    "dns9.quad9.net",
    "dns10.quad9.net",
    "dns11.quad9.net",
    // Cisco OpenDNS
    "doh.opendns.com",
    "dns.opendns.com",
    "doh.familyshield.opendns.com",
    // AdGuard DNS
    "dns.adguard.com",
    "dns.adguard-dns.com",
    "unfiltered.adguard-dns.com",
    "family.adguard-dns.com",
    // CleanBrowsing
    "doh.cleanbrowsing.org",
    // NextDNS
    "dns.nextdns.io",
    "*.dns.nextdns.io",
    // Mullvad
    "doh.mullvad.net",
    "dns.mullvad.net",
    "*.dns.mullvad.net",
    // ControlD
    "dns.controld.com",
    "*.dns.controld.com",
    "freedns.controld.com",
    "*.freedns.controld.com",
    // DNS.SB, AliDNS, DNSPod, TWNIC, Hurricane Electric
    "doh.dns.sb",
    "dns.alidns.com",
    "doh.pub",
    "*.doh.pub",
    "dns.twnic.tw",
    "ordns.he.net",
    // European public resolvers
    "dns0.eu",
    "*.dns0.eu",
    "doh.libredns.gr",
    "dns.switch.ch",
    "doh.applied-privacy.net",
];

const fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

#[allow(clippy::too_many_arguments)]
const fn v6(a: u16, b: u16, c: u16, d: u16, e: u16, f: u16, g: u16, h: u16) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(a, b, c, d, e, f, g, h))
}

/// The anycast addresses of the same resolvers, as their operators publish them.
const ADDRESSES: &[IpAddr] = &[
    // Cloudflare: 1.1.1.1, malware blocking (.2), malware and adult content blocking (.3).
    v4(1, 1, 1, 1),
    v4(1, 0, 0, 1),
    v4(1, 1, 1, 2),
    v4(1, 0, 0, 2),
    v4(1, 1, 1, 3),
    v4(1, 0, 0, 3),
    v6(0x2606, 0x4700, 0x4700, 0, 0, 0, 0, 0x1111),
    v6(0x2606, 0x4700, 0x4700, 0, 0, 0, 0, 0x1001),
    v6(0x2606, 0x4700, 0x4700, 0, 0, 0, 0, 0x1112),
    v6(0x2606, 0x4700, 0x4700, 0, 0, 0, 0, 0x1002),
    v6(0x2606, 0x4700, 0x4700, 0, 0, 0, 0, 0x1113),
    v6(0x2606, 0x4700, 0x4700, 0, 0, 0, 0, 0x1003),
    // Google, and Google's DNS64 service.
    v4(8, 8, 8, 8),
    v4(8, 8, 4, 4),
    v6(0x2001, 0x4860, 0x4860, 0, 0, 0, 0, 0x8888),
    v6(0x2001, 0x4860, 0x4860, 0, 0, 0, 0, 0x8844),
    v6(0x2001, 0x4860, 0x4860, 0, 0, 0, 0, 0x64),
    v6(0x2001, 0x4860, 0x4860, 0, 0, 0, 0, 0x6464),
    // Quad9: filtered (9.9.9.9), unfiltered (.10), with ECS (.11).
    v4(9, 9, 9, 9),
    v4(149, 112, 112, 112),
    v4(9, 9, 9, 10),
    v4(149, 112, 112, 10),
    v4(9, 9, 9, 11),
    v4(149, 112, 112, 11),
    v6(0x2620, 0xfe, 0, 0, 0, 0, 0, 0xfe),
    v6(0x2620, 0xfe, 0, 0, 0, 0, 0, 0x9),
    v6(0x2620, 0xfe, 0, 0, 0, 0, 0, 0x10),
    v6(0x2620, 0xfe, 0, 0, 0, 0, 0, 0x11),
    // OpenDNS, and its FamilyShield addresses.
    v4(208, 67, 222, 222),
    v4(208, 67, 220, 220),
    v4(208, 67, 222, 123),
    v4(208, 67, 220, 123),
    v6(0x2620, 0x119, 0x35, 0, 0, 0, 0, 0x35),
    v6(0x2620, 0x119, 0x53, 0, 0, 0, 0, 0x53),
    // AdGuard: default, unfiltered (.140, .141) and family (.15, .16).
    v4(94, 140, 14, 14),
    v4(94, 140, 15, 15),
    v4(94, 140, 14, 140),
    v4(94, 140, 14, 141),
    v4(94, 140, 14, 15),
    v4(94, 140, 15, 16),
    v6(0x2a10, 0x50c0, 0, 0, 0, 0, 0xad1, 0xff),
    v6(0x2a10, 0x50c0, 0, 0, 0, 0, 0xad2, 0xff),
];

/// The resolver host names, in policy endpoint syntax (`*.name`: names below `name`).
pub fn hosts() -> &'static [&'static str] {
    HOSTS
}

/// Whether `name` is a well-known DoH resolver: a listed name, or a name below a listed
/// wildcard. Case does not matter and one trailing dot is ignored. An IP literal (a client
/// given `https://1.1.1.1/dns-query` sends no SNI but the HTTP Host) is judged by
/// [`is_doh_address`].
pub fn is_doh_host(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    if let Ok(ip) = name.parse::<IpAddr>() {
        return is_doh_address(ip);
    }
    HOSTS.iter().any(|entry| match entry.strip_prefix("*.") {
        Some(suffix) => name
            .strip_suffix(suffix)
            .is_some_and(|below| below.len() > 1 && below.ends_with('.')),
        None => name == *entry,
    })
}

/// Whether `ip` is a well-known DoH resolver's address; IPv4-mapped IPv6 addresses count as
/// the IPv4 address they carry.
pub fn is_doh_address(ip: IpAddr) -> bool {
    ADDRESSES.contains(&ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_names_and_their_wildcards() {
        let cases = [
            ("dns.google", true),
            ("DNS.Google.", true),
            ("dns64.dns.google", true),
            ("dns.google.com", true),
            ("8888.google", true),
            ("google.com", false),
            ("www.google.com", false),
            ("cloudflare-dns.com", true),
            ("mozilla.cloudflare-dns.com", true),
            ("security.cloudflare-dns.com", true),
            ("family.cloudflare-dns.com", true),
            ("1dot1dot1dot1.cloudflare-dns.com", true),
            ("one.one.one.one", true),
            ("dns.quad9.net", true),
            ("dns9.quad9.net", true),
            ("dns10.quad9.net", true),
            ("dns11.quad9.net", true),
            ("quad9.net", false),
            ("www.quad9.net", false),
            ("doh.opendns.com", true),
            ("dns.opendns.com", true),
            ("doh.familyshield.opendns.com", true),
            ("opendns.com", false),
            ("dns.adguard.com", true),
            ("dns.adguard-dns.com", true),
            ("unfiltered.adguard-dns.com", true),
            ("family.adguard-dns.com", true),
            ("doh.cleanbrowsing.org", true),
            ("dns.nextdns.io", true),
            ("abc123.dns.nextdns.io", true),
            ("nextdns.io", false),
            ("my.nextdns.io", false),
            ("doh.mullvad.net", true),
            ("dns.mullvad.net", true),
            ("adblock.dns.mullvad.net", true),
            ("mullvad.net", false),
            ("dns.controld.com", true),
            ("freedns.controld.com", true),
            ("p2.freedns.controld.com", true),
            ("controld.com", false),
            ("doh.dns.sb", true),
            ("dns.alidns.com", true),
            ("doh.pub", true),
            ("sm2.doh.pub", true),
            ("dns.twnic.tw", true),
            ("ordns.he.net", true),
            ("dns0.eu", true),
            ("zero.dns0.eu", true),
            ("doh.libredns.gr", true),
            ("dns.switch.ch", true),
            ("doh.applied-privacy.net", true),
            // Near misses: a listed name inside a longer label, or as a prefix.
            ("xcloudflare-dns.com", false),
            ("cloudflare-dns.com.evil.example", false),
            ("notdns.google", false),
            ("dns.google.evil.example", false),
            (".cloudflare-dns.com", false),
            ("", false),
            ("github.com", false),
            ("objects.githubusercontent.com", false),
            // IP literals are judged by address.
            ("1.1.1.1", true),
            ("8.8.8.8.", true),
            ("2606:4700:4700::1111", true),
            ("140.82.112.3", false),
        ];
        for (name, want) in cases {
            assert_eq!(is_doh_host(name), want, "{name:?}");
        }
    }

    #[test]
    fn every_listed_name_matches_and_is_canonical() {
        for entry in hosts() {
            let name = entry.strip_prefix("*.").unwrap_or(entry);
            assert_eq!(name, name.to_ascii_lowercase(), "{entry}");
            assert!(!name.ends_with('.'), "{entry}");
            let probe = if entry.starts_with("*.") {
                format!("x.{name}")
            } else {
                name.to_string()
            };
            assert!(is_doh_host(&probe), "{entry}");
        }
    }

    #[test]
    fn resolver_addresses() {
        let cases = [
            ("1.1.1.1", true),
            ("1.0.0.1", true),
            ("1.1.1.2", true),
            ("1.0.0.3", true),
            ("2606:4700:4700::1111", true),
            ("2606:4700:4700::1003", true),
            ("8.8.8.8", true),
            ("8.8.4.4", true),
            ("2001:4860:4860::8888", true),
            ("2001:4860:4860::8844", true),
            ("9.9.9.9", true),
            ("149.112.112.112", true),
            ("9.9.9.11", true),
            ("2620:fe::fe", true),
            ("2620:fe::11", true),
            ("208.67.222.222", true),
            ("208.67.220.220", true),
            ("2620:119:35::35", true),
            ("2620:119:53::53", true),
            ("94.140.14.14", true),
            ("94.140.15.15", true),
            ("2a10:50c0::ad1:ff", true),
            ("2a10:50c0::ad2:ff", true),
            ("::ffff:1.1.1.1", true),
            ("::ffff:8.8.8.8", true),
            // Neighbours and everyday CI destinations.
            ("1.1.1.4", false),
            ("8.8.8.9", false),
            ("9.9.9.8", false),
            ("2606:4700:4700::1114", false),
            ("140.82.112.3", false),
            ("185.199.108.133", false),
            ("127.0.0.53", false),
            ("::1", false),
            ("::ffff:140.82.112.3", false),
        ];
        for (ip, want) in cases {
            assert_eq!(is_doh_address(ip.parse().unwrap()), want, "{ip}");
        }
    }
}
