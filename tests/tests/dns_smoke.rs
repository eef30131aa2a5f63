//! Smoke: dig through Warden's resolver inside a test namespace.
use std::time::Duration;
use tests::{DnsServer, Netns, WardenRun, audit, dns, skip_unless_root};

#[test]
fn dig_goes_through_warden() {
    if skip_unless_root("dig_goes_through_warden") {
        return;
    }
    let netns = Netns::new().unwrap();
    let _server = DnsServer::start(&netns).unwrap();
    let script = format!(
        "dig +short {a}; dig +short +tcp {a} AAAA; dig +short @127.0.0.53 {a}; getent hosts {alias}; python3 -c 'import socket; print(socket.getaddrinfo(\"{a}\", 443)[0][4][0])'; curl -s -o /dev/null -w '%{{remote_ip}}\\n' --connect-timeout 2 http://{h}/ || true",
        a = dns::A_NAME,
        alias = dns::ALIAS_NAME,
        h = dns::HTTP_NAME,
    );
    let out = WardenRun::new(&netns)
        .timeout(Duration::from_secs(60))
        .cmd(["sh", "-c", &script])
        .run()
        .unwrap();
    println!("stdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
    for r in audit::of_kind(&out.records, "dns") {
        println!("{r}");
    }
    for r in audit::connections(&out.records) {
        println!("{r}");
    }
    out.assert_success();
}
