//! TLS inspection under a daemon: `warden start --tls-inspection --print-env` prints, for
//! `$GITHUB_ENV`, only `NAME=VALUE` lines naming the CA bundles it wrote under
//! `/run/warden/trust-cg-<cgroup id>/`; a later step that exports them runs curl with no CA
//! option of its own, through inspection, and is recorded as a `request`; `warden stop` puts
//! the system bundle (the test namespace's private copy) back byte for byte and leaves no state.
//!
//! The daemon runs in the test namespace's mount namespace, so it sees, and changes, the same
//! private trust store as the steps in the cgroup.
//!
//! Needs root (skips loudly otherwise). Each test builds its own namespace, origins and cgroup.

use std::ffi::OsStr;
use std::path::Path;
use std::time::Duration;

use nix::unistd::Pid;
use tests::clients::quote;
use tests::daemon::wait_gone;
use tests::inspect::InspectOrigins;
use tests::{Daemon, Netns, Origins, TestCgroup, skip_unless_root};

/// Deadline for one client or one wait; passing ones take well under a second.
const T: Duration = Duration::from_secs(30);
/// The variables Warden sets for the job (issue #6), each naming a bundle it wrote.
const VARIABLES: [&str; 9] = [
    "NODE_EXTRA_CA_CERTS",
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "PIP_CERT",
    "GIT_SSL_CAINFO",
    "CARGO_HTTP_CAINFO",
    "AWS_CA_BUNDLE",
    "DENO_CERT",
];

/// `NAME=VALUE`, as `$GITHUB_ENV` takes it: a variable name, `=`, a value without spaces.
fn is_env_line(line: &str) -> bool {
    line.split_once('=').is_some_and(|(name, value)| {
        !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
            && !value.is_empty()
            && !value.contains(char::is_whitespace)
    })
}

/// The value `start --print-env` gave `name`, or `""`.
fn printed<'a>(stdout: &'a str, name: &str) -> &'a str {
    let prefix = format!("{name}=");
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_default()
}

#[test]
fn start_print_env_gives_later_steps_the_bundles_and_stop_restores_the_store() {
    if skip_unless_root("start_print_env_gives_later_steps_the_bundles_and_stop_restores_the_store")
    {
        return;
    }
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    let inspect = InspectOrigins::start(&netns, &origins).unwrap();
    let cgroup = TestCgroup::new().unwrap();
    let bundle = netns.trust_store_path().join("ca-certificates.crt");
    let before = std::fs::read(&bundle).unwrap();
    let ca = origins.ca_pem_path();
    let args = ["--tls-inspection", "--print-env", "--upstream-ca"];
    let args = args.iter().map(OsStr::new).chain([ca.as_os_str()]);
    let daemon = Daemon::start(&netns, &cgroup, args).unwrap();
    daemon.assert_started();

    // stdout is for `>> $GITHUB_ENV`: NAME=VALUE lines and nothing else.
    let env = &daemon.started.stdout;
    let bad: Vec<&str> = env.lines().filter(|l| !is_env_line(l)).collect();
    assert!(bad.is_empty(), "not NAME=VALUE: {bad:?}\n{daemon}");
    let state = format!("/run/warden/trust-cg-{}/", cgroup.id());
    let ssl_cert_file = printed(env, "SSL_CERT_FILE");
    assert!(
        ssl_cert_file.starts_with(&state),
        "{ssl_cert_file}\n{daemon}"
    );
    // The system bundle (the namespace's) now ends with Warden's CA; every bundle holds it.
    let during = std::fs::read(&bundle).unwrap();
    assert!(
        during.starts_with(&before),
        "the bundle was not appended to\n{daemon}"
    );
    let added = String::from_utf8_lossy(&during[before.len()..]).into_owned();
    let begin = added.find("-----BEGIN CERTIFICATE-----");
    let ca_pem = begin.map(|b| added[b..].trim_end()).unwrap_or_default();
    assert!(
        ca_pem.ends_with("-----END CERTIFICATE-----"),
        "{added:?}\n{daemon}"
    );
    for var in VARIABLES {
        let path = printed(env, var);
        let content = std::fs::read_to_string(path).unwrap_or_default();
        assert!(content.contains(ca_pem), "{var}={path}: no CA\n{daemon}");
    }

    // A later step exports them and runs curl with no CA option: curl reads CURL_CA_BUNDLE.
    let exports: String = env
        .lines()
        .map(|l| format!("export {}\n", quote(l)))
        .collect();
    let url = inspect.h2().url("/later-step?x=1");
    let curl = format!(
        "{exports}curl -sS -v --fail --max-time 20 --http2 {} 2>&1 | grep -E 'CAfile:|^origin='",
        quote(&url)
    );
    let step = daemon.run_in_cgroup(&curl, T).unwrap();
    assert!(step.status.success(), "{step:?}\n{daemon}");
    let cafile = format!("CAfile: {}", printed(env, "CURL_CA_BUNDLE"));
    assert!(step.stdout.contains(&cafile), "{step:?}");
    let answer = "origin=h2.example version=HTTP/2.0";
    assert!(step.stdout.contains(answer), "{step:?}");
    let record = daemon
        .wait_for_record(T, |r| {
            r["kind"] == "request" && r["http"]["url"] == url.as_str()
        })
        .unwrap_or_else(|e| panic!("{e:#}\n{daemon}"));
    assert_eq!(record["http"]["status"], 200, "{record}");

    let stop = daemon.stop().unwrap();
    assert!(stop.status.success(), "{stop:?}\n{daemon}");
    daemon.assert_gone();
    // With --print-env, `start` names the daemon's pid on stderr (stdout is the environment).
    let pid = daemon
        .started
        .stderr
        .lines()
        .find_map(|l| l.split("daemon pid ").nth(1));
    let pid = pid.and_then(|p| p.trim().parse().ok()).map(Pid::from_raw);
    let pid = pid.unwrap_or_else(|| panic!("no daemon pid\n{daemon}"));
    assert!(wait_gone(pid, T), "daemon {pid} still runs\n{daemon}");
    let after = std::fs::read(&bundle).unwrap();
    assert!(after == before, "{bundle:?} differs after stop\n{daemon}");
    assert!(
        !Path::new(&state).exists(),
        "{state} is left behind\n{daemon}"
    );
}
