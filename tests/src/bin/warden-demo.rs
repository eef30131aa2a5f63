//! `cargo run -p tests --bin warden-demo`: watch warden audit a handful of real clients.
//!
//! It builds the same sealed world the end-to-end tests use (a network namespace with TLS, HTTP,
//! echo and banner origins on documentation addresses), runs `warden run` over a shell script of
//! real clients with warden's own output on the terminal, then shows where the audit log went
//! and what its first records say. Nothing it does leaves the machine. Needs root, and the
//! warden binary (`cargo build -p proxy`).

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use tests::warden::{read_records, try_warden_bin};
use tests::{DnsServer, Netns, Origins, WardenRun, clients, dns, netns};

/// How many audit records to print.
const SHOWN: usize = 5;

fn main() -> ExitCode {
    match demo() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("warden-demo: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn demo() -> anyhow::Result<ExitCode> {
    if !nix::unistd::geteuid().is_root() {
        anyhow::bail!("needs root: it creates a network namespace and warden attaches eBPF");
    }
    let warden = try_warden_bin()?;
    let netns = Netns::new()?;
    let origins = Origins::start(&netns)?;
    let _dns = DnsServer::start(&netns)?;
    describe(&netns, &origins, &warden);

    let audit_log = std::env::current_dir()?.join("warden-demo.audit.jsonl");
    // Warden may append; the demo shows this run only.
    let _ = std::fs::remove_file(&audit_log);
    let script = script(&origins.ca_pem_path());
    let mut cmd = WardenRun::new(&netns)
        .audit_log(&audit_log)
        .cmd(["sh", "-c", &script])
        .command()?;
    println!(
        "\n$ warden run --audit-log {} -- sh -c <clients>\n",
        audit_log.display()
    );
    let status = cmd.status().context("cannot start warden")?;

    println!("\nwarden exited with {status}");
    for origin in origins.all() {
        println!(
            "  {:<14} saw {} connection(s)",
            origin.name(),
            origin.connections()
        );
    }
    show_records(&audit_log);
    block_mode(&netns, &origins)?;
    inspection(&netns, &origins)?;
    strict(&netns, &origins)?;
    // Like a shell: a signal N becomes 128 + N.
    let code = status
        .code()
        .or(status.signal().map(|n| 128 + n))
        .unwrap_or(1);
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}

/// The same kind of traffic in block mode with only `tls.example` allowed: the allowed request
/// works, plain HTTP elsewhere gets Warden's 403 page, raw TCP elsewhere a reset.
fn block_mode(netns: &Netns, origins: &Origins) -> anyhow::Result<()> {
    let audit_log = std::env::current_dir()?.join("warden-demo-block.audit.jsonl");
    let _ = std::fs::remove_file(&audit_log);
    let ca = origins.ca_pem_path();
    let steps = [
        (
            "== allowed: curl https://tls.example/",
            clients::curl("https://tls.example/ok", &ca),
        ),
        (
            "== blocked: curl http://http.example/ (plain HTTP gets a 403 page)",
            format!(
                "curl -sS -w 'http status %{{http_code}}\\n' {}",
                clients::quote("http://http.example/nope")
            ),
        ),
        (
            "== blocked: python echo raw.example:7 (raw TCP gets a reset)",
            clients::python_echo("raw.example", 7, 10),
        ),
        (
            "== allowed lookup: dig a.test.example",
            clients::dig(None, dns::A_NAME, "A", &[]),
        ),
        (
            "== blocked lookup: dig http.test.example (NXDOMAIN, never sent upstream)",
            clients::dig(None, dns::HTTP_NAME, "A", &[]),
        ),
    ];
    let mut script = String::new();
    for (label, step) in steps {
        script.push_str(&format!(
            "echo {}\n{step} || echo '   ^ failed (as expected when blocked)'\n",
            clients::quote(label)
        ));
    }
    println!(
        "\n$ warden run --egress-policy block --allowed-endpoints 'tls.example a.test.example' --audit-log {} -- sh -c <clients>\n",
        audit_log.display()
    );
    let status = WardenRun::new(netns)
        .audit_log(&audit_log)
        .args([
            "--egress-policy",
            "block",
            "--allowed-endpoints",
            "tls.example a.test.example",
        ])
        .cmd(["sh", "-c", &script])
        .command()?
        .status()
        .context("cannot start warden")?;
    println!(
        "\nwarden exited with {status}; audit log: {}",
        audit_log.display()
    );
    Ok(())
}

/// TLS inspection: curl with no CA flag of its own trusts the run's CA (Warden put it in the
/// namespace's private copy of the trust store and in CURL_CA_BUNDLE & co.), and each HTTPS
/// request leaves a `request` record with its full URL, credentials redacted.
fn inspection(netns: &Netns, origins: &Origins) -> anyhow::Result<()> {
    let audit_log = std::env::current_dir()?.join("warden-demo-inspect.audit.jsonl");
    let _ = std::fs::remove_file(&audit_log);
    let ca = origins.ca_pem_path();
    let script = "curl -sS 'https://tls.example/releases/v1.tar.gz?X-Amz-Signature=s3cr3t&x=1'; echo; \
                  curl -sS https://tls.example/api/status";
    println!(
        "\n$ warden run --tls-inspection --upstream-ca <test CA> --audit-log {} -- sh -c <curl, no CA flag>\n",
        audit_log.display()
    );
    let status = WardenRun::new(netns)
        .audit_log(&audit_log)
        .args(["--tls-inspection", "--upstream-ca"])
        .args([ca.as_os_str()])
        .cmd(["sh", "-c", script])
        .command()?
        .status()
        .context("cannot start warden")?;
    show_requests(&status, &audit_log, |r| {
        format!("({} bytes down)", r["bytes"]["down"])
    })
}

/// Strict mode and exfiltration in block mode: one URL prefix allowed on `tls.example`, a
/// sibling path refused with the rule to add, and a secret kept from a host it does not belong
/// to (named in the record, never quoted).
fn strict(netns: &Netns, origins: &Origins) -> anyhow::Result<()> {
    let audit_log = std::env::current_dir()?.join("warden-demo-strict.audit.jsonl");
    let _ = std::fs::remove_file(&audit_log);
    let ca = origins.ca_pem_path();
    let script = "echo '== allowed: GET /releases/…'; curl -sS https://tls.example/releases/v2.tar.gz; \
                  echo '== outside allowed-urls: GET /api/status'; curl -sS https://tls.example/api/status; \
                  echo '== a secret in a header'; \
                  curl -sS -H \"X-Token: $DEPLOY_KEY\" https://tls.example/releases/v3.tar.gz";
    println!(
        "\n$ DEPLOY_KEY=… warden run --egress-policy block --allowed-urls 'GET https://tls.example/releases/**' \\\n    \
         --secret-env DEPLOY_KEY --upstream-ca <test CA> --audit-log {} -- sh -c <curl>\n",
        audit_log.display()
    );
    let status = WardenRun::new(netns)
        .audit_log(&audit_log)
        .env("DEPLOY_KEY", "demo-s3cret-value-0123456789")
        .args(["--egress-policy", "block"])
        .args(["--allowed-urls", "GET https://tls.example/releases/**"])
        .args(["--secret-env", "DEPLOY_KEY", "--upstream-ca"])
        .args([ca.as_os_str()])
        .cmd(["sh", "-c", script])
        .command()?
        .status()
        .context("cannot start warden")?;
    show_requests(&status, &audit_log, |r| {
        let why = r["rule"].as_str().or(r["reason"].as_str()).unwrap_or("");
        format!("{}: {why}", r["decision"].as_str().unwrap_or("?"))
    })
}

/// Prints how warden exited and one line per `request` record: method, URL, status, then what
/// `more` says about it.
fn show_requests(
    status: &std::process::ExitStatus,
    audit_log: &Path,
    more: impl Fn(&serde_json::Value) -> String,
) -> anyhow::Result<()> {
    println!("\nwarden exited with {status}; the request records:");
    for record in read_records(audit_log)?
        .iter()
        .filter(|r| r["kind"] == "request")
    {
        println!(
            "  {} {} -> {} {}",
            record["http"]["method"].as_str().unwrap_or("?"),
            record["http"]["url"].as_str().unwrap_or("?"),
            record["http"]["status"],
            more(record)
        );
    }
    Ok(())
}

fn describe(netns: &Netns, origins: &Origins, warden: &Path) {
    println!("warden binary:   {}", warden.display());
    println!(
        "namespace:       {} (lo: {})",
        netns.name(),
        netns::ADDRESSES.join(", ")
    );
    println!("origins:");
    for origin in origins.all() {
        let addrs: Vec<String> = origin.addrs().iter().map(ToString::to_string).collect();
        println!("  {:<14} {}", origin.name(), addrs.join(", "));
    }
    println!("names (/etc/hosts inside the namespace):");
    for line in netns::HOSTS.lines().filter(|l| l.contains(".example")) {
        println!("  {line}");
    }
    println!(
        "DNS:             dnsmasq for {} on {} (the namespace's resolv.conf)",
        dns::ZONE,
        dns::SERVER_V4
    );
    println!("test CA:         {}", origins.ca_pem_path().display());
}

/// Every client runs even if an earlier one fails (warden may block some); the script fails if
/// any did.
fn script(ca: &Path) -> String {
    let steps = [
        (
            "curl https://tls.example/demo",
            clients::curl("https://tls.example/demo", ca),
        ),
        (
            "curl http://http.example/demo",
            clients::curl("http://http.example/demo", ca),
        ),
        (
            "curl https://v6.example (IPv6)",
            clients::curl("https://v6.example/over-ipv6", ca),
        ),
        (
            "curl http://[2001:db8::10]/",
            clients::curl("http://[2001:db8::10]/literal", ca),
        ),
        (
            "python ssl to tls.example",
            clients::python_https("tls.example", "/py", ca),
        ),
        (
            "openssl s_client tls.example:443",
            clients::openssl_handshake("tls.example", 443, "tls.example", ca),
        ),
        (
            "python echo raw.example:7",
            clients::python_echo("raw.example", 7, 100_000),
        ),
        (
            "python banner.example:25",
            clients::python_banner("banner.example", 25),
        ),
        (
            "dig a.test.example (through Warden's resolver)",
            clients::dig_short(None, dns::A_NAME, "A", &[]),
        ),
        (
            "dig @127.0.0.53 http.test.example (any resolver address lands in Warden)",
            clients::dig_short(Some("127.0.0.53"), dns::HTTP_NAME, "A", &[]),
        ),
        (
            "curl http://198.51.100.10/ (raw IP: recorded as http.test.example)",
            clients::curl("http://198.51.100.10/by-ip", ca),
        ),
    ];
    let mut script = String::from("failed=0\n");
    for (label, step) in steps {
        let label = clients::quote(&format!("== {label}"));
        script.push_str(&format!(
            "echo {label}\n{step} || {{ echo '   ^ failed'; failed=1; }}\n"
        ));
    }
    script.push_str("exit $failed\n");
    script
}

fn show_records(audit_log: &Path) {
    println!("\naudit log: {}", audit_log.display());
    match read_records(audit_log) {
        Ok(records) if records.is_empty() => println!("  (no records)"),
        Ok(records) => {
            println!(
                "{} record(s); the first {}:",
                records.len(),
                SHOWN.min(records.len())
            );
            for record in records.iter().take(SHOWN) {
                println!(
                    "{}",
                    serde_json::to_string_pretty(record).unwrap_or_default()
                );
            }
            if let Some(lookup) = records.iter().find(|r| r["kind"] == "dns") {
                println!(
                    "the first dns record:\n{}",
                    serde_json::to_string_pretty(lookup).unwrap_or_default()
                );
            }
        }
        Err(e) => println!("  cannot read it: {e:#}"),
    }
}
