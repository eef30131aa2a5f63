//! `warden run` end to end, as a user meets it: every connection a job makes through real
//! clients becomes exactly one audit record saying what was asked for and who asked, between
//! the enforcement start and stop records, summed up on stderr; and the exit status is the
//! command's.
//!
//! Needs root (skips loudly otherwise). Each test builds its own namespace and origins, so they
//! run in parallel. Protocol edge cases are in `run_protocols.rs`, process attribution in
//! `run_attribution.rs`, cleanup in `run_cleanup.rs`, what is and is not redirected in
//! `run_redirect.rs`.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use serde_json::Value;
use tests::process::run;
use tests::{
    Netns, Origins, RunOutput, WardenRun, assert_run, assert_run_eq, audit, clients,
    skip_unless_root, warden_bin,
};

/// Deadline for one `warden run` or client; passing runs take a few seconds.
const T: Duration = Duration::from_secs(30);
/// Bytes the echo client sends (and expects back).
const ECHO_LEN: usize = 100_000;

#[test]
fn every_destination_recorded() {
    if skip_unless_root("every_destination_recorded") {
        return;
    }
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    let ca = origins.ca_pem_path();
    let script = clients::script(&[
        clients::curl("https://tls.example/curl", &ca),
        clients::curl("http://http.example/plain", &ca),
        clients::python_https("tls.example", "/py", &ca),
        clients::openssl_handshake("tls.example", 443, "tls.example", &ca),
        clients::python_echo("raw.example", 7, ECHO_LEN),
    ]);
    let out = WardenRun::new(&netns)
        .timeout(T)
        .cmd(["sh", "-c", &script])
        .run()
        .unwrap();
    out.assert_success();
    for said in [
        "hello from tls-origin path=/curl",
        "hello from http-origin path=/plain",
        "hello from tls-origin path=/py",
        "ALPN protocol: http/1.1",
        &format!("echo ok {ECHO_LEN}"),
    ] {
        assert_run!(out, out.stdout.contains(said), "clients said {said:?}");
    }

    // Exactly one record per connection that reached each origin.
    let conns = audit::connections(&out.records);
    assert_run_eq!(out, conns.len(), 5, "one record per connection");
    for origin in [origins.tls(), origins.http(), origins.echo()] {
        let addr = origin.addr();
        let recorded = audit::connections_to(&out.records, &addr.ip().to_string(), addr.port());
        assert_run_eq!(
            out,
            recorded.len(),
            origin.connections(),
            "{} connections recorded vs accepted",
            origin.name()
        );
    }
    for record in &out.records {
        assert_run_eq!(out, record["v"], 1, "schema version of {record}");
    }

    // What each client asked for, and who it was.
    let tls_by = |exe: &str| {
        out.one_connection(&format!("{exe} to tls.example:443"), |r| {
            r["dst"]["port"] == 443 && audit::exe_name(r).starts_with(exe)
        })
    };
    for (record, alpn, arg) in [
        (
            tls_by("curl"),
            vec!["h2", "http/1.1"],
            "https://tls.example/curl",
        ),
        (tls_by("python3"), vec!["http/1.1"], "/py"),
        (tls_by("openssl"), vec!["http/1.1"], "tls.example:443"),
    ] {
        assert_run_eq!(out, record["dst"]["ip"], "192.0.2.10", "dst.ip of {record}");
        assert_run_eq!(
            out,
            record["dst"]["name"],
            "tls.example",
            "dst.name of {record}"
        );
        assert_run_eq!(
            out,
            record["tls"]["sni"],
            "tls.example",
            "tls.sni of {record}"
        );
        assert_run_eq!(
            out,
            audit::strings(&record["tls"]["alpn"]),
            alpn,
            "alpn of {record}"
        );
        assert_run!(out, record.get("http").is_none(), "no http in {record}");
        assert_argv_has(&out, record, arg);
    }
    let http = out.one_connection("curl to http.example", |r| r["dst"]["port"] == 80);
    assert_run_eq!(out, audit::exe_name(http), "curl", "exe of {http}");
    assert_run_eq!(out, http["dst"]["ip"], "198.51.100.10", "dst.ip of {http}");
    assert_run_eq!(
        out,
        http["dst"]["name"],
        "http.example",
        "dst.name of {http}"
    );
    assert_run_eq!(
        out,
        http["http"]["host"],
        "http.example",
        "http.host of {http}"
    );
    assert_run_eq!(out, http["http"]["method"], "GET", "http.method of {http}");
    assert_run_eq!(out, http["http"]["url"], "/plain", "http.url of {http}");
    assert_run!(out, http.get("tls").is_none(), "no tls in {http}");
    assert_argv_has(&out, http, "http://http.example/plain");

    let echo = out.one_connection("the echo", |r| r["dst"]["port"] == 7);
    assert_run!(
        out,
        audit::exe_name(echo).starts_with("python3"),
        "exe of {echo}"
    );
    assert_run_eq!(out, echo["dst"]["ip"], "203.0.113.10", "dst.ip of {echo}");
    for absent in ["tls", "http"] {
        assert_run!(out, echo.get(absent).is_none(), "no {absent} in {echo}");
    }
    // Raw TCP names nothing; the record names the address by the name the client resolved.
    assert_run_eq!(
        out,
        echo["dst"]["name"],
        "raw.example",
        "dst.name of {echo}"
    );
    assert_run_eq!(out, echo["bytes"]["up"], ECHO_LEN, "bytes.up of {echo}");
    assert_run_eq!(out, echo["bytes"]["down"], ECHO_LEN, "bytes.down of {echo}");
    assert_argv_has(&out, echo, "raw.example");

    let mut pids = Vec::new();
    for record in &conns {
        assert_run_eq!(out, record["decision"], "audited", "decision of {record}");
        let ancestry = audit::strings(&record["process"]["ancestry"]);
        assert_run!(
            out,
            ancestry.last().is_some_and(|top| audit::is_shell(top)),
            "the job's shell ends the ancestry of {record}"
        );
        let pid = record["process"]["pid"].as_u64();
        assert_run!(out, pid.is_some(), "process.pid in {record}");
        pids.push(pid);
        // The summary lists every process.
        let listed = format!("(pid {})", pid.unwrap_or_default());
        assert_run!(out, out.stderr.contains(&listed), "summary lists {listed}");
    }
    pids.sort_unstable();
    pids.dedup();
    assert_run_eq!(out, pids.len(), 5, "five client processes");

    out.assert_bracketed();
    let summary = [
        "audit mode, 5 connections from 5 processes",
        "tls.example:443",
        "audit log:",
        &out.audit_log.display().to_string(),
    ];
    for said in summary {
        assert_run!(out, out.stderr.contains(said), "stderr says {said:?}");
    }
}

#[test]
fn exit_codes() {
    if skip_unless_root("exit_codes") {
        return;
    }
    let netns = Netns::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let not_executable = dir.path().join("not-executable");
    std::fs::write(&not_executable, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&not_executable, std::fs::Permissions::from_mode(0o644)).unwrap();
    let not_executable = not_executable.to_string_lossy().into_owned();
    let cases: [(&[&str], i32, &str); 4] = [
        (&["sh", "-c", "exit 7"], 7, ""),
        (&["sh", "-c", "kill -TERM $$"], 128 + 15, ""),
        (&["/nonexistent"], 127, "/nonexistent"),
        (&[&not_executable], 126, &not_executable),
    ];
    for (cmd, code, stderr_names) in cases {
        let out = WardenRun::new(&netns).timeout(T).cmd(cmd).run().unwrap();
        assert_run_eq!(out, out.code(), Some(code), "exit status of {cmd:?}");
        assert_run!(
            out,
            out.stderr.contains(stderr_names),
            "stderr names {stderr_names:?}"
        );
        out.assert_bracketed();
    }

    // A bad command line for `run` is warden's own failure.
    for args in [&["run"][..], &["run", "--no-such-option", "--", "true"]] {
        let out = run(netns.command(warden_bin(), args), T).unwrap();
        assert_eq!(out.status.code(), Some(125), "warden {args:?}: {out:?}");
        assert!(!out.stderr.is_empty(), "warden {args:?} says why: {out:?}");
    }
}

#[track_caller]
fn assert_argv_has(out: &RunOutput, record: &Value, arg: &str) {
    let argv = audit::strings(&record["process"]["argv"]);
    assert_run!(
        out,
        argv.contains(&arg),
        "process.argv has {arg:?}: {record}"
    );
}
