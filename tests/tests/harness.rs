//! The harness checked on its own, without warden: if these fail, every end-to-end test's
//! verdict is meaningless. Real clients run inside a test namespace against the test origins,
//! and the namespace must be sealed while it lives and gone once dropped.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::Command;
use std::time::Duration;

use tests::origins::{BANNER, ECHO_ADDR};
use tests::process::{Running, run, run_ok};
use tests::{Netns, Origins, clients, skip_unless_root};

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
