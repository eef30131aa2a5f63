//! A daemon that runs inside the cgroup it guards — as one guarding a whole machine (the cgroup
//! v2 root) always does — must not redirect its own upstream connections and DNS queries back
//! to itself: its sockets are exempt from the hooks while they connect. Here the daemon runs in
//! a test cgroup (never the machine's root) and the job's TCP and DNS still reach their
//! destinations, once each.
//!
//! Needs root (skips loudly otherwise).

use std::time::Duration;

use tests::{Daemon, DnsServer, Netns, Origins, TestCgroup, audit, clients, dns, skip_unless_root};

const T: Duration = Duration::from_secs(30);

#[test]
fn daemon_inside_its_cgroup_does_not_hook_itself() {
    if skip_unless_root("daemon_inside_its_cgroup_does_not_hook_itself") {
        return;
    }
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    let server = DnsServer::start(&netns).unwrap();
    let cgroup = TestCgroup::new().unwrap();
    let ca = origins.ca_pem_path();
    let daemon = Daemon::start_inside(
        &netns,
        &cgroup,
        [
            "--egress-policy",
            "block",
            "--no-builtin",
            "--allowed-endpoints",
            "tls.example a.test.example",
        ],
    )
    .unwrap();
    daemon.assert_started();
    let pid = daemon.pid().expect("daemon pid");
    assert!(
        cgroup.pids().contains(&pid),
        "the daemon runs inside the cgroup it guards:\n{daemon}"
    );

    let tls = daemon
        .run_in_cgroup(&clients::curl("https://tls.example/inside", &ca), T)
        .unwrap();
    assert!(tls.status.success(), "{tls:?}\n{daemon}");
    let dig = daemon
        .run_in_cgroup(&clients::dig_short(None, dns::A_NAME, "A", &[]), T)
        .unwrap();
    assert!(dig.stdout.contains("192.0.2.10"), "{dig:?}\n{daemon}");

    daemon
        .wait_for_record(T, |r| r["tls"]["sni"] == "tls.example")
        .unwrap();
    daemon
        .wait_for_record(T, |r| r["dns"]["qname"] == dns::A_NAME)
        .unwrap();
    let records = daemon.records().unwrap();
    // Exactly one connection: the daemon's own upstream connection was not caught again.
    let conns = audit::connections(&records);
    assert_eq!(conns.len(), 1, "{conns:#?}");
    assert_eq!(conns[0]["decision"], "allowed", "{}", conns[0]);
    assert!(!audit::has_flag(conns[0], "loop"), "{}", conns[0]);
    // One lookup reached the real server, from Warden, once.
    let lookups: Vec<_> = audit::of_kind(&records, "dns")
        .into_iter()
        .filter(|r| r["dns"]["qname"] == dns::A_NAME)
        .collect();
    assert_eq!(lookups.len(), 1, "{lookups:#?}");
    assert_eq!(
        lookups[0]["dns"]["upstream"], "192.0.2.53:53",
        "{}",
        lookups[0]
    );
    let upstream = server.queries_for(dns::A_NAME);
    assert_eq!(upstream.len(), 1, "{upstream:?}");
    let stop = daemon.stop().unwrap();
    assert!(stop.status.success(), "{stop:?}\n{daemon}");
}
