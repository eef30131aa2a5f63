//! The harness checked on its own, without warden: if these fail, every end-to-end test's
//! verdict is meaningless. Real clients run inside a test namespace against the test origins
//! and the test DNS server, and the namespace must be sealed while it lives and gone once
//! dropped.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

use tests::dns::{self, DigOutput, DnsServer};
use tests::origins::{BANNER, ECHO_ADDR};
use tests::process::{Running, run, run_ok};
use tests::{Netns, Origins, Service, clients, skip_unless_root};

const T: Duration = Duration::from_secs(30);

/// Runs `script` with `sh -c` in `netns`, failing the test (with its output) if it fails.
fn sh_ok(netns: &Netns, script: &str) -> String {
    run_ok(netns.sh(script), T).unwrap_or_else(|e| panic!("{e:#}"))
}

#[test]
fn real_clients_reach_the_origins() {
    if skip_unless_root("real_clients_reach_the_origins") {
        return;
    }
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    let ca = origins.ca_pem_path();

    let cases = [
        ("https://tls.example/x", "hello from tls-origin path=/x"),
        ("https://v6.example/six", "hello from tls-origin path=/six"),
        (
            "https://[2001:db8::10]/ip",
            "hello from tls-origin path=/ip",
        ),
        ("http://http.example/", "hello from http-origin path=/"),
        (
            "http://[2001:db8::10]/v6?q=1",
            "hello from http-origin path=/v6?q=1",
        ),
    ];
    for (url, body) in cases {
        assert_eq!(
            sh_ok(&netns, &clients::curl(url, &ca)).trim(),
            body,
            "{url}"
        );
    }
    let body = sh_ok(&netns, &clients::python_https("tls.example", "/py", &ca));
    assert_eq!(body.trim(), "hello from tls-origin path=/py");
    let summary = sh_ok(
        &netns,
        &clients::openssl_handshake("tls.example", 443, "tls.example", &ca),
    );
    assert!(summary.contains("Verify return code: 0 (ok)"), "{summary}");
    assert!(summary.contains("ALPN protocol: http/1.1"), "{summary}");

    let echo = sh_ok(&netns, &clients::python_echo("raw.example", 7, 300_000));
    assert_eq!(echo.trim(), "echo ok 300000");
    let banner = sh_ok(&netns, &clients::python_banner("banner.example", 25));
    assert_eq!(banner.trim(), BANNER.trim());

    assert_eq!(origins.tls().connections(), 5);
    assert_eq!(origins.http().connections(), 2);
    assert_eq!(origins.echo().connections(), 1);
    assert_eq!(origins.banner().connections(), 1);
    let requests = origins.tls().requests();
    let first = &requests[0];
    assert_eq!(
        (first.method.as_str(), first.target.as_str()),
        ("GET", "/x")
    );
    assert_eq!(first.sni.as_deref(), Some("tls.example"));
    assert_eq!(first.alpn.as_deref(), Some("http/1.1"));
    assert_eq!(first.host.as_deref(), Some("tls.example"));
    // A client connecting by address sends no SNI (RFC 6066 §3).
    assert_eq!(requests[2].sni, None);
    let v6_peers = origins
        .http()
        .accepted()
        .iter()
        .filter(|a| a.local.is_ipv6())
        .count();
    assert_eq!(v6_peers, 1);
    for origin in origins.all() {
        assert_eq!(origin.errors(), Vec::<String>::new(), "{}", origin.name());
    }
}

#[test]
fn untrusted_clients_fail_and_origins_record_why() {
    if skip_unless_root("untrusted_clients_fail_and_origins_record_why") {
        return;
    }
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let other_ca = dir.path().join("other-ca.pem");
    let pem = certs::Authority::generate("Warden test CA")
        .unwrap()
        .cert_pem();
    std::fs::write(&other_ca, pem).unwrap();
    let out = run(
        netns.sh(&clients::curl("https://tls.example/", &other_ca)),
        T,
    )
    .unwrap();
    assert_eq!(out.status.code(), Some(60), "curl: {}", out.stderr); // peer certificate untrusted
    assert_eq!(origins.tls().wait_for_connections(1, T), 1);
    assert!(origins.tls().requests().is_empty());
}

#[test]
fn sockets_made_in_enter_thread_belong_to_the_namespace() {
    if skip_unless_root("sockets_made_in_enter_thread_belong_to_the_namespace") {
        return;
    }
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    let mut stream = netns
        .enter_thread(|| TcpStream::connect_timeout(&ECHO_ADDR, T))
        .unwrap()
        .unwrap();
    // Used from this (root-namespace) thread after the fact.
    stream.write_all(b"hello").unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    let mut back = String::new();
    stream.read_to_string(&mut back).unwrap();
    assert_eq!(back, "hello");
    assert_eq!(origins.echo().peers(), vec![stream.local_addr().unwrap()]);
}

#[test]
fn the_namespace_is_sealed() {
    if skip_unless_root("the_namespace_is_sealed") {
        return;
    }
    let netns = Netns::new().unwrap();
    let links = sh_ok(&netns, "ip -o link show");
    assert_eq!(links.lines().count(), 1, "only lo: {links}");
    // No route out: an address not on lo is unreachable at once rather than leaving the box.
    let out = run(netns.sh("curl -sS --max-time 5 http://192.0.2.99/"), T).unwrap();
    assert_eq!(out.status.code(), Some(7), "curl: {}", out.stderr);
    let route = run(netns.sh("ip route get 192.0.2.99"), T).unwrap();
    assert!(
        route.stderr.contains("Network is unreachable"),
        "{}",
        route.stderr
    );
    // Commands see the test hosts file, the machine keeps its own.
    assert!(sh_ok(&netns, "getent hosts v6.example").starts_with("2001:db8::10"));
    assert!(
        !std::fs::read_to_string("/etc/hosts")
            .unwrap()
            .contains("tls.example")
    );
}

#[test]
fn dropping_the_namespace_kills_its_processes_and_deletes_it() {
    if skip_unless_root("dropping_the_namespace_kills_its_processes_and_deletes_it") {
        return;
    }
    let netns = Netns::new().unwrap();
    let name = netns.name().to_owned();
    assert!(netns_list().contains(&name));
    let sleeper = Running::spawn(netns.command("sleep", ["600"])).unwrap();
    let pid = sleeper.pid();
    // The command chain execs all the way down, so the process in there is sleep itself.
    wait_until(|| netns.pids().contains(&pid));

    drop(netns);
    let out = sleeper.wait_timeout(T).unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&out.status),
        Some(9)
    );
    assert!(!netns_list().contains(&name), "{name} still listed");
}

fn netns_list() -> Vec<String> {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "list"]);
    let out = run_ok(cmd, T).unwrap();
    out.lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// Polls for a condition that has no readiness signal (another process's namespace entry).
fn wait_until(mut ready: impl FnMut() -> bool) {
    for _ in 0..200 {
        if ready() {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("condition not met within 5 s");
}

/// Runs a full [`clients::dig`] in `netns` and parses what it printed.
fn dig(netns: &Netns, server: Option<&str>, name: &str, rtype: &str, opts: &[&str]) -> DigOutput {
    DigOutput::parse(&sh_ok(netns, &clients::dig(server, name, rtype, opts)))
}

#[test]
fn the_dns_server_answers_the_zone_over_udp_and_tcp() {
    if skip_unless_root("the_dns_server_answers_the_zone_over_udp_and_tcp") {
        return;
    }
    let netns = Netns::new().unwrap();
    let server = DnsServer::start(&netns).unwrap();
    let https = dns::https_rdata(1, ".", &dns::HTTPS_ALPN, Some(&dns::ech_config_list()));
    let https_hex: String = https.iter().map(|b| format!("{b:02X}")).collect();
    let burst = format!("x7f3k9q.{}", dns::BURST_DOMAIN);
    // (name, type, status, answers as "TYPE data")
    let cases: [(&str, &str, &str, &[&str]); 11] = [
        (dns::A_NAME, "A", "NOERROR", &["A 192.0.2.10"]),
        (dns::A_NAME, "AAAA", "NOERROR", &["AAAA 2001:db8::10"]),
        (dns::HTTP_NAME, "A", "NOERROR", &["A 198.51.100.10"]),
        (dns::RAW_NAME, "A", "NOERROR", &["A 203.0.113.10"]),
        (
            dns::ALIAS_NAME,
            "A",
            "NOERROR",
            &["CNAME a.test.example.", "A 192.0.2.10"],
        ),
        (dns::V6ONLY_NAME, "A", "NOERROR", &[]),
        (dns::V6ONLY_NAME, "AAAA", "NOERROR", &["AAAA 2001:db8::10"]),
        (
            dns::TXT_NAME,
            "TXT",
            "NOERROR",
            &[r#"TXT "warden test zone" "v=1, with a comma""#],
        ),
        (&burst, "AAAA", "NOERROR", &["AAAA 2001:db8::10"]),
        ("nope.test.example", "A", "NXDOMAIN", &[]),
        ("example.com", "A", "NXDOMAIN", &[]),
    ];
    for server_ip in ["192.0.2.53", "2001:db8::53"] {
        for transport in [&[][..], &["+tcp"][..]] {
            let why = format!("@{server_ip} {transport:?}");
            for (name, rtype, status, answers) in &cases {
                let out = dig(&netns, Some(server_ip), name, rtype, transport);
                assert_eq!(out.status.as_deref(), Some(*status), "{name} {rtype} {why}");
                let got: Vec<String> = out
                    .answers
                    .iter()
                    .map(|a| format!("{} {}", a.rtype, a.data))
                    .collect();
                assert_eq!(got, *answers, "{name} {rtype} {why}");
                assert!(out.answers.iter().all(|a| a.ttl == 300), "{out:?}");
                // dnsmasq sets AA on answers from its own records, not on empty ones.
                assert_eq!(
                    out.has_flag("aa"),
                    !answers.is_empty(),
                    "{name} {rtype} {why}"
                );
            }
            // The HTTPS record, as dig decodes it and byte for byte (RFC 3597 generic form).
            let out = dig(&netns, Some(server_ip), dns::A_NAME, "HTTPS", transport);
            let data = out.data_of("HTTPS");
            assert!(
                data.len() == 1 && data[0].starts_with(r#"1 . alpn="h2" ech="#),
                "{why}: {out:?}"
            );
            let generic = dig(
                &netns,
                Some(server_ip),
                dns::A_NAME,
                "HTTPS",
                &[transport, &["+unknownformat"]].concat(),
            );
            // `\# LENGTH HEX…` (RFC 3597 §5); dig splits long hex into words.
            let got: Vec<String> = generic
                .data_of("TYPE65")
                .iter()
                .map(|d| d.replace(' ', ""))
                .collect();
            assert_eq!(got, [format!("\\#{}{https_hex}", https.len())], "{why}");
        }
    }
    // One query per dig (one try), each logged with its transport.
    let queries = server.queries();
    assert_eq!(queries.len(), 4 * (cases.len() + 2), "{}", server.log());
    assert_eq!(queries.iter().filter(|q| q.tcp).count(), queries.len() / 2);
    let first = &queries[0];
    assert!(first.is(dns::A_NAME, "A") && !first.tcp, "{first:?}");
    assert_eq!(
        first.client.ip(),
        dns::SERVER_V4,
        "dig on lo sends from the address it asks"
    );
    assert!(
        queries
            .iter()
            .any(|q| q.is(&burst, "AAAA") && q.client.is_ipv6() && q.tcp)
    );
}

#[test]
fn zone_names_resolve_through_the_namespace_resolv_conf() {
    if skip_unless_root("zone_names_resolve_through_the_namespace_resolv_conf") {
        return;
    }
    // getent and getaddrinfo ask DNS through resolv.conf only if NSS says so. systemd-resolved's
    // `resolve` module would ask the host's resolver over a Unix socket instead, outside the
    // namespace. This machine says `hosts: files dns`.
    let nsswitch = std::fs::read_to_string("/etc/nsswitch.conf").unwrap();
    let hosts = nsswitch.lines().find(|l| l.starts_with("hosts:")).unwrap();
    let services: Vec<&str> = hosts
        .split_whitespace()
        .skip(1)
        .filter(|w| !w.starts_with('['))
        .collect();
    assert!(
        services.contains(&"dns") && !services.contains(&"resolve"),
        "/etc/nsswitch.conf must send host lookups to DNS through resolv.conf: {hosts}"
    );
    let netns = Netns::new().unwrap();
    let server = DnsServer::start(&netns).unwrap();
    let origins = Origins::start(&netns).unwrap();
    let ca = origins.ca_pem_path();

    let v4 = sh_ok(&netns, &clients::dig_short(None, dns::ALIAS_NAME, "A", &[]));
    assert_eq!(v4, "a.test.example.\n192.0.2.10\n");
    let line = sh_ok(&netns, &clients::getent("hosts", dns::HTTP_NAME));
    assert_eq!(
        line.split_whitespace().collect::<Vec<_>>(),
        ["198.51.100.10", dns::HTTP_NAME]
    );
    let ahosts = sh_ok(&netns, &clients::getent("ahosts", dns::ALIAS_NAME));
    let addrs: BTreeSet<&str> = ahosts
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(
        addrs,
        BTreeSet::from(["192.0.2.10", "2001:db8::10"]),
        "{ahosts}"
    );
    let py = sh_ok(&netns, &clients::python_getaddrinfo(dns::A_NAME));
    assert_eq!(
        py.lines().collect::<BTreeSet<_>>(),
        BTreeSet::from(["192.0.2.10", "2001:db8::10"])
    );
    let py = sh_ok(&netns, &clients::python_getaddrinfo(dns::V6ONLY_NAME));
    assert_eq!(py, "2001:db8::10\n");
    // The hosts file still comes first: getaddrinfo asks DNS nothing about a name it lists.
    // `getent hosts` does ask for AAAA, as it looks up AF_INET6 first and the file has only
    // an IPv4 address for tls.example.
    let py = sh_ok(&netns, &clients::python_getaddrinfo("tls.example"));
    assert_eq!(py, "192.0.2.10\n");
    let line = sh_ok(&netns, &clients::getent("hosts", "tls.example"));
    assert!(line.starts_with("192.0.2.10 "), "{line}");

    let body = sh_ok(
        &netns,
        &clients::curl_by_name("http://http.test.example/n", &ca),
    );
    let lines: Vec<&str> = body.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(
        lines,
        ["hello from http-origin path=/n", "remote 198.51.100.10 80"]
    );
    // HTTPS by a zone name needs a certificate for it: the standard TLS origin's has none.
    let addrs = [
        SocketAddr::new(dns::A_V4.into(), 8443),
        SocketAddr::new(dns::A_V6.into(), 8443),
    ];
    let names = Service::Tls(vec![dns::A_NAME.into()]);
    let zone_tls = origins
        .start_origin(&netns, "zone-tls", names, &addrs)
        .unwrap();
    let body = sh_ok(
        &netns,
        &clients::curl_by_name("https://a.test.example:8443/z", &ca),
    );
    assert!(body.starts_with("hello from zone-tls path=/z\n"), "{body}");
    assert!(body.contains("\nremote "), "{body}");
    assert_eq!(zone_tls.requests()[0].sni.as_deref(), Some(dns::A_NAME));

    // Outside the zone, and inside it without a record, nothing resolves: NXDOMAIN.
    let nxdomain = "gaierror EAI_NONAME: Name or service not known\n";
    for name in ["nope.test.example", "example.com"] {
        let out = run(netns.sh(&clients::getent("hosts", name)), T).unwrap();
        assert_eq!(out.status.code(), Some(2), "getent hosts {name}: {out:?}");
        let out = run(netns.sh(&clients::python_getaddrinfo(name)), T).unwrap();
        assert_eq!(
            (out.status.code(), out.stdout.as_str()),
            (Some(2), nxdomain),
            "{name}"
        );
    }

    // Every lookup reached the server, A and AAAA alike.
    for (name, qtype) in [
        (dns::HTTP_NAME, "A"),
        (dns::ALIAS_NAME, "AAAA"),
        (dns::A_NAME, "AAAA"),
        (dns::V6ONLY_NAME, "AAAA"),
        ("nope.test.example", "A"),
        ("example.com", "AAAA"),
    ] {
        let found = server.queries().into_iter().any(|q| q.is(name, qtype));
        assert!(found, "no {qtype} query for {name}:\n{}", server.log());
    }
    let tls: Vec<String> = server
        .queries_for("tls.example")
        .into_iter()
        .map(|q| q.qtype)
        .collect();
    assert_eq!(tls, ["AAAA"], "{}", server.log());
}

#[test]
fn the_resolv_conf_can_name_any_resolver() {
    if skip_unless_root("the_resolv_conf_can_name_any_resolver") {
        return;
    }
    let netns = Netns::new().unwrap();
    let server = DnsServer::start(&netns).unwrap();
    // Nothing listens on 127.0.0.53 (nor does dnsmasq on 127.0.0.1): refused at once.
    netns
        .set_nameservers(&["127.0.0.53".parse::<IpAddr>().unwrap()])
        .unwrap();
    let started = std::time::Instant::now();
    let out = run(netns.sh(&clients::python_getaddrinfo(dns::A_NAME)), T).unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        out.stdout.starts_with("gaierror EAI_AGAIN"),
        "{}",
        out.stdout
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let out = run(
        netns.sh(&clients::dig_short(
            Some("127.0.0.1"),
            dns::A_NAME,
            "A",
            &[],
        )),
        T,
    );
    assert_eq!(out.unwrap().status.code(), Some(9), "no server answered");
    assert!(server.queries().is_empty(), "{}", server.log());

    // Over IPv6 now, and a command already running sees the change.
    let flags = tempfile::tempdir().unwrap();
    let (asked, go) = (flags.path().join("asked"), flags.path().join("go"));
    // Not clients::script: its `set -e` would stop at the failure meant to happen first.
    let script = [
        clients::outcome("before", &clients::python_getaddrinfo(dns::HTTP_NAME)),
        format!("touch {}", clients::quote(&asked.to_string_lossy())),
        clients::wait_for_file(&go, 20),
        clients::python_getaddrinfo(dns::HTTP_NAME),
    ]
    .join("\n");
    let running = Running::spawn(netns.sh(&script)).unwrap();
    wait_until(|| asked.exists());
    netns.set_nameservers(&[dns::SERVER_V6]).unwrap();
    std::fs::write(&go, "").unwrap();
    let out = running.wait_timeout(T).unwrap();
    assert_eq!(
        out.stdout,
        "gaierror EAI_AGAIN: Temporary failure in name resolution\nbefore: exit 2\n198.51.100.10\n"
    );
    let queries = server.queries_for(dns::HTTP_NAME);
    assert!(
        queries.iter().all(|q| q.client.is_ipv6()) && !queries.is_empty(),
        "{queries:?}"
    );
}

#[test]
fn dropping_the_dns_server_kills_dnsmasq_and_its_children() {
    if skip_unless_root("dropping_the_dns_server_kills_dnsmasq_and_its_children") {
        return;
    }
    let netns = Netns::new().unwrap();
    let server = DnsServer::start(&netns).unwrap();
    let pid = server.pid();
    let dnsmasqs = || -> Vec<_> {
        let comm = |p: &nix::unistd::Pid| std::fs::read_to_string(format!("/proc/{p}/comm"));
        netns
            .pids()
            .into_iter()
            .filter(|p| comm(p).is_ok_and(|c| c.trim() == "dnsmasq"))
            .collect()
    };
    assert_eq!(dnsmasqs(), vec![pid]);
    // An open TCP connection is served by a forked child until it closes.
    let tcp = netns
        .enter_thread(|| TcpStream::connect_timeout(&dns::SERVER_ADDRS[0], T))
        .unwrap()
        .unwrap();
    wait_until(|| dnsmasqs().len() == 2);

    drop(server);
    wait_until(|| dnsmasqs().is_empty());
    assert!(tests::daemon::is_gone(pid));
    drop(tcp);
}

#[test]
fn a_dns_server_that_cannot_start_says_why() {
    if skip_unless_root("a_dns_server_that_cannot_start_says_why") {
        return;
    }
    let netns = Netns::new().unwrap();
    let _first = DnsServer::start(&netns).unwrap();
    let err = DnsServer::start(&netns).unwrap_err();
    let err = format!("{err:#}");
    assert!(err.contains("Address already in use"), "{err}");
    assert!(err.contains("listen-address=192.0.2.53"), "{err}");
}
