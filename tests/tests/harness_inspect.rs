//! The TLS-inspection origins and clients checked on their own, without warden: every origin
//! answers real clients directly when they trust the test CA (h2 and HTTP/1.1 chosen by ALPN,
//! a streamed 10 MiB echo, trailers, a WebSocket echo, git over smart HTTP, a pip index), the
//! bad-certificate origins fail verification, and the clients' "environment" variants pass no
//! CA option of their own: they work once the environment names the test CA, and not before.

use std::path::Path;
use std::time::Duration;

use tests::clients::{self, Http, exit_of, outcome, output_of};
use tests::inspect::{
    self, GIT_FILE, GIT_URL, InspectOrigins, PYPI_INDEX_URL, PYPI_PACKAGE, WRONG_NAME_CERT_NAME,
};
use tests::process::{run, run_ok};
use tests::{Netns, Origins, skip_unless_root};

const T: Duration = Duration::from_secs(60);
const MIB: usize = 1024 * 1024;

/// The variables Warden sets for clients (issue #6), all naming `ca` here.
const CA_VARIABLES: [&str; 6] = [
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
    "GIT_SSL_CAINFO",
    "PIP_CERT",
];

struct Setup {
    netns: Netns,
    origins: Origins,
    inspect: InspectOrigins,
}

fn setup() -> Setup {
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    let inspect = InspectOrigins::start(&netns, &origins).unwrap();
    Setup {
        netns,
        origins,
        inspect,
    }
}

/// Runs `script` with `sh -c` in `netns`, failing the test (with its output) if it fails.
fn sh_ok(netns: &Netns, script: &str) -> String {
    run_ok(netns.sh(script), T).unwrap_or_else(|e| panic!("{e:#}"))
}

/// Runs `script` and returns its stdout whatever its exit status (steps are [`outcome`]s).
fn sh_steps(netns: &Netns, script: &str, env: &[(&str, &Path)]) -> String {
    let mut cmd = netns.sh(script);
    for (var, value) in env {
        cmd.env(var, value);
    }
    let out = run(cmd, T).unwrap_or_else(|e| panic!("{e:#}"));
    eprintln!(
        "--- stdout ---\n{}--- stderr ---\n{}",
        out.stdout, out.stderr
    );
    out.stdout
}

/// One script running every step, whatever the previous ones did ([`clients::script`] stops
/// at the first failure).
fn steps<S: AsRef<str>>(steps: &[S]) -> String {
    let steps: Vec<&str> = steps.iter().map(AsRef::as_ref).collect();
    steps.join("\n")
}

fn step(stdout: &str, label: &str) -> (i32, String) {
    let code = exit_of(stdout, label).unwrap_or_else(|| panic!("{label} never ended"));
    (code, output_of(stdout, label).unwrap_or_default())
}

#[test]
fn h2_and_http1_are_chosen_by_alpn() {
    if skip_unless_root("h2_and_http1_are_chosen_by_alpn") {
        return;
    }
    let Setup {
        netns,
        origins,
        inspect,
    } = setup();
    let ca = origins.ca_pem_path();
    let cases = [
        (inspect.h2(), Http::V2, "HTTP/2.0", "version 2"),
        (inspect.h2(), Http::V1, "HTTP/1.1", "version 1.1"),
        // The server's choice wins: h1.example offers http/1.1 only.
        (inspect.h1(), Http::V2, "HTTP/1.1", "version 1.1"),
    ];
    for (origin, http, seen, curl_saw) in cases {
        let out = sh_ok(
            &netns,
            &clients::curl_get(&origin.url("/any/path?q=1&r=2"), http, Some(&ca)),
        );
        let want = format!(
            "origin={} version={seen} method=GET target=/any/path?q=1&r=2",
            origin.name()
        );
        assert!(out.contains(&want), "{out}");
        assert!(out.contains(&format!("status 200 {curl_saw}")), "{out}");
    }
    let requests = inspect.h2().requests();
    let (h2, h1) = (&requests[0], &requests[1]);
    assert!(h2.is_h2() && !h1.is_h2(), "{requests:?}");
    assert_eq!(h2.alpn.as_deref(), Some("h2"));
    assert_eq!(h1.alpn.as_deref(), Some("http/1.1"));
    for r in [h2, h1] {
        assert_eq!(r.sni.as_deref(), Some("h2.example"));
        assert_eq!(r.authority.as_deref(), Some("h2.example"));
        assert_eq!(r.target, "/any/path?q=1&r=2");
    }
    assert_eq!(inspect.h1().requests()[0].alpn.as_deref(), Some("http/1.1"));

    // Headers are recorded as they arrived, Authorization included.
    let auth = clients::curl_with(
        &["--http2", "-H", "Authorization: Bearer s3cret"],
        &inspect.h2().url("/auth"),
        &ca,
    );
    sh_ok(&netns, &auth);
    let seen = &inspect.h2().requests_to("/auth")[0];
    assert_eq!(seen.header("authorization"), Some("Bearer s3cret"));

    // Statuses and sizes.
    let script = steps(&[
        outcome(
            "404",
            &clients::curl_get(&inspect.h2().url("/status/404"), Http::V2, Some(&ca)),
        ),
        outcome(
            "bytes",
            &format!(
                "curl -sS --fail --cacert {} -o /dev/null -w 'size %{{size_download}}\\n' {}",
                clients::quote(&ca.to_string_lossy()),
                clients::quote(&inspect.h2().url("/bytes/3000000"))
            ),
        ),
    ]);
    let out = sh_steps(&netns, &script, &[]);
    let (code, text) = step(&out, "404");
    assert_eq!(code, 22, "curl --fail-with-body exits 22 on 404: {text}");
    assert!(text.contains("status 404 version 2"), "{text}");
    assert_eq!(step(&out, "bytes"), (0, "size 3000000".into()));
}

#[test]
fn a_10_mib_post_is_echoed_over_h2_and_http1() {
    if skip_unless_root("a_10_mib_post_is_echoed_over_h2_and_http1") {
        return;
    }
    let Setup {
        netns,
        origins,
        inspect,
    } = setup();
    let ca = origins.ca_pem_path();
    let url = inspect.h2().url("/echo");
    for (http, version) in [(Http::V2, "2"), (Http::V1, "1.1")] {
        let out = sh_ok(
            &netns,
            &clients::curl_post_echo(&url, 10 * MIB, http, Some(&ca)),
        );
        let want = format!("echo ok {} bytes status 200 version {version}", 10 * MIB);
        assert_eq!(out.trim(), want);
    }
    let requests = inspect.h2().requests_to("/echo");
    assert_eq!(requests.len(), 2, "{requests:?}");
    for r in requests {
        assert_eq!(r.method, "POST");
        assert_eq!(r.body_len(), 10 * MIB as u64, "{r:?}");
        assert_eq!(r.header("content-length"), Some("10485760"));
    }
}

#[test]
fn h2_trailers_reach_the_client() {
    if skip_unless_root("h2_trailers_reach_the_client") {
        return;
    }
    let Setup {
        netns,
        origins,
        inspect,
    } = setup();
    let ca = origins.ca_pem_path();
    let out = sh_ok(
        &netns,
        &clients::node_h2_trailers(&inspect.h2().url("/trailers"), Some(&ca)),
    );
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "status 200",
            "trailer grpc-status: 0",
            "trailer grpc-message: ok",
            "trailers follow"
        ],
        "{out}"
    );
    let seen = &inspect.h2().requests_to("/trailers")[0];
    assert!(seen.is_h2());
    assert_eq!(seen.header("te"), Some("trailers"));
}

#[test]
fn websocket_upgrade_echoes() {
    if skip_unless_root("websocket_upgrade_echoes") {
        return;
    }
    let Setup {
        netns,
        origins,
        inspect,
    } = setup();
    let ca = origins.ca_pem_path();
    for origin in [inspect.h2(), inspect.h1()] {
        let out = sh_ok(
            &netns,
            &clients::python_websocket(origin.name(), "/ws", MIB, Some(&ca)),
        );
        assert_eq!(out.trim(), format!("websocket ok {MIB} bytes"));
        let seen = &origin.requests_to("/ws")[0];
        assert_eq!(seen.header("upgrade"), Some("websocket"));
        assert!(origin.errors().is_empty(), "{:?}", origin.errors());
    }
    // Not a WebSocket handshake: no upgrade.
    let out = sh_steps(
        &netns,
        &outcome(
            "plain",
            &clients::curl_get(&inspect.h2().url("/ws"), Http::V1, Some(&ca)),
        ),
        &[],
    );
    assert!(step(&out, "plain").1.contains("status 426"), "{out}");
}

#[test]
fn bad_certificates_fail_verification() {
    if skip_unless_root("bad_certificates_fail_verification") {
        return;
    }
    let Setup {
        netns,
        origins,
        inspect,
    } = setup();
    let ca = origins.ca_pem_path();
    let untrusted = inspect.untrusted().url("/x");
    let wrong_name = inspect.wrong_name().url("/x");
    let script = steps(&[
        outcome(
            "untrusted curl",
            &clients::curl_get(&untrusted, Http::V2, Some(&ca)),
        ),
        outcome(
            "untrusted python",
            &clients::python_urllib(&untrusted, Some(&ca)),
        ),
        outcome(
            "wrong name curl",
            &clients::curl_get(&wrong_name, Http::V2, Some(&ca)),
        ),
        outcome(
            "wrong name python",
            &clients::python_urllib(&wrong_name, Some(&ca)),
        ),
        // The same certificates are fine in every other way.
        outcome(
            "untrusted with its own CA",
            &clients::curl_get(&untrusted, Http::V2, Some(&inspect.untrusted_ca_pem_path())),
        ),
        outcome(
            "wrong name as its name",
            &clients::curl_with(
                &[
                    "--connect-to",
                    &format!("{WRONG_NAME_CERT_NAME}:443:{}", inspect::WRONG_NAME_NAME),
                ],
                &format!("https://{WRONG_NAME_CERT_NAME}/x"),
                &ca,
            ),
        ),
    ]);
    let out = sh_steps(&netns, &script, &[]);
    // curl: 60, "SSL certificate problem" / "no alternative certificate subject name matches".
    assert_eq!(step(&out, "untrusted curl").0, 60, "{out}");
    assert_eq!(step(&out, "wrong name curl").0, 60, "{out}");
    for label in ["untrusted python", "wrong name python"] {
        let (code, text) = step(&out, label);
        assert_eq!(code, 2, "{label}: {text}");
        assert!(
            text.starts_with("error SSLCertVerificationError:"),
            "{label}: {text}"
        );
    }
    let (code, text) = step(&out, "untrusted with its own CA");
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("origin=untrusted.example"), "{text}");
    let (code, text) = step(&out, "wrong name as its name");
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("origin=wrong-name.example"), "{text}");
    // Two refused connections each, then one that was served. curl checks the host name only
    // after the handshake, so the origin may count that one as a completed handshake.
    for origin in [inspect.untrusted(), inspect.wrong_name()] {
        assert_eq!(origin.connections(), 3, "{}", origin.name());
        assert_eq!(origin.requests().len(), 1, "{}", origin.name());
    }
    assert_eq!(inspect.untrusted().handshakes(), 1);
}

#[test]
fn git_clones_over_smart_http() {
    if skip_unless_root("git_clones_over_smart_http") {
        return;
    }
    let Setup {
        netns,
        origins,
        inspect,
    } = setup();
    let out = sh_ok(
        &netns,
        &clients::git_clone(GIT_URL, Some(&origins.ca_pem_path())),
    );
    let lines: Vec<&str> = out.lines().collect();
    let head = format!("head {}", inspect.repo().head());
    assert_eq!(lines, [head.as_str(), "README.md", GIT_FILE.0], "{out}");
    assert_eq!(inspect.repo().commits().len(), 2);
    let requests = inspect.git().requests();
    let targets: Vec<&str> = requests.iter().map(|r| r.target.as_str()).collect();
    assert_eq!(
        targets.first(),
        Some(&"/repo.git/info/refs?service=git-upload-pack"),
        "{targets:?}"
    );
    assert!(
        targets.contains(&"/repo.git/git-upload-pack"),
        "{targets:?}"
    );
    // git's libcurl takes h2 when offered.
    assert!(requests.iter().all(|r| r.is_h2()), "{requests:?}");
    assert!(
        inspect.git().errors().is_empty(),
        "{:?}",
        inspect.git().errors()
    );

    // Pushes are served too (a request body streamed into the CGI).
    let push = format!(
        "d=$(mktemp -d) && trap 'rm -rf \"$d\"' EXIT && export GIT_SSL_CAINFO={ca} && \
         git clone -q {GIT_URL} \"$d/c\" && cd \"$d/c\" && head -c 300000 /dev/urandom >blob && \
         git add blob && git -c user.name=t -c user.email=t@t.example commit -q -m pushed && \
         git push -q origin HEAD && git rev-parse HEAD",
        ca = clients::quote(&origins.ca_pem_path().to_string_lossy())
    );
    let pushed = sh_ok(&netns, &push);
    let mut log = std::process::Command::new("git");
    log.arg("-C")
        .arg(inspect.repo().path())
        .args(["rev-parse", inspect::GIT_BRANCH]);
    assert_eq!(run_ok(log, T).unwrap().trim(), pushed.trim());
    let receive = inspect.git().requests_to("/repo.git/git-receive-pack");
    assert!(receive[0].body_len() > 300_000, "{receive:?}");
}

#[test]
fn pip_downloads_from_the_index() {
    if skip_unless_root("pip_downloads_from_the_index") {
        return;
    }
    let Setup {
        netns,
        origins,
        inspect,
    } = setup();
    let out = sh_ok(
        &netns,
        &clients::pip_download(PYPI_INDEX_URL, PYPI_PACKAGE, Some(&origins.ca_pem_path())),
    );
    assert_eq!(
        out.trim(),
        format!("downloaded {}", inspect.index().wheel_name())
    );
    let targets: Vec<String> = inspect
        .pypi()
        .requests()
        .into_iter()
        .map(|r| r.target)
        .collect();
    assert_eq!(
        targets,
        [
            format!("/simple/{PYPI_PACKAGE}/"),
            format!("/packages/{}", inspect.index().wheel_name())
        ]
    );
}

#[test]
fn python_and_node_clients_fetch() {
    if skip_unless_root("python_and_node_clients_fetch") {
        return;
    }
    let Setup {
        netns,
        origins,
        inspect,
    } = setup();
    let ca = origins.ca_pem_path();
    let url = inspect.h2().url("/client?x=1");
    let script = steps(&[
        outcome("urllib", &clients::python_urllib(&url, Some(&ca))),
        outcome("requests", &clients::python_requests(&url, Some(&ca))),
        outcome("fetch", &clients::node_fetch(&url, Some(&ca))),
        outcome(
            "fetch 404",
            &clients::node_fetch(&inspect.h2().url("/status/404"), Some(&ca)),
        ),
    ]);
    let out = sh_steps(&netns, &script, &[]);
    for label in ["urllib", "requests", "fetch"] {
        let (code, text) = step(&out, label);
        assert_eq!(code, 0, "{label}: {text}");
        // None of them speaks h2.
        let want = "status 200\norigin=h2.example version=HTTP/1.1 method=GET target=/client?x=1";
        assert_eq!(text, want, "{label}");
    }
    assert_eq!(
        step(&out, "fetch 404"),
        (1, "status 404\nstatus 404".into())
    );
    let agents: Vec<String> = inspect
        .h2()
        .requests()
        .iter()
        .filter_map(|r| r.header("user-agent").map(str::to_owned))
        .collect();
    assert!(agents[0].starts_with("Python-urllib/"), "{agents:?}");
    assert!(agents[1].starts_with("python-requests/"), "{agents:?}");
    assert_eq!(agents[2], "node", "{agents:?}");
}

/// The `None` variants carry no CA option: they fail against the test origins with this
/// machine's environment (the system bundle) and succeed once the variables Warden sets name
/// the test CA.
#[test]
fn environment_variants_trust_only_the_environment() {
    if skip_unless_root("environment_variants_trust_only_the_environment") {
        return;
    }
    let Setup {
        netns,
        origins,
        inspect,
    } = setup();
    let ca = origins.ca_pem_path();
    let url = inspect.h2().url("/env");
    let steps = [
        ("curl", clients::curl_get(&url, Http::V2, None)),
        (
            "curl post",
            clients::curl_post_echo(&inspect.h2().url("/echo"), MIB, Http::V2, None),
        ),
        ("urllib", clients::python_urllib(&url, None)),
        ("requests", clients::python_requests(&url, None)),
        ("fetch", clients::node_fetch(&url, None)),
        (
            "trailers",
            clients::node_h2_trailers(&inspect.h2().url("/trailers"), None),
        ),
        ("git", clients::git_clone(GIT_URL, None)),
        (
            "pip",
            clients::pip_download(PYPI_INDEX_URL, PYPI_PACKAGE, None),
        ),
        (
            "websocket",
            clients::python_websocket(inspect::H2_NAME, "/ws", 1000, None),
        ),
    ];
    for (label, step) in &steps {
        assert!(!step.contains(&*ca.to_string_lossy()), "{label}: {step}");
    }
    let script = self::steps(
        &steps
            .iter()
            .map(|(label, step)| outcome(label, step))
            .collect::<Vec<_>>(),
    );
    let untrusting = sh_steps(&netns, &script, &[]);
    let env: Vec<(&str, &Path)> = CA_VARIABLES.iter().map(|v| (*v, ca.as_path())).collect();
    let trusting = sh_steps(&netns, &script, &env);
    for (label, _) in &steps {
        let (code, text) = step(&untrusting, label);
        assert_ne!(code, 0, "{label} trusted the test CA on its own: {text}");
        let (code, text) = step(&trusting, label);
        assert_eq!(code, 0, "{label} with the CA in its environment: {text}");
    }
}
