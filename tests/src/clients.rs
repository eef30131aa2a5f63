//! Shell snippets that drive real clients against the test origins.
//!
//! Tests, the harness self-test and the demo all run the same clients (curl, openssl, python)
//! in the same way, usually as one `sh -c` script under `warden run`, so the snippets live here
//! once. Each returns a single shell command that exits non-zero when the exchange did not go as
//! expected and prints one short line per success. Every TLS client is given the test CA
//! explicitly: this machine points `SSL_CERT_FILE` and friends at the system bundle. The
//! exception is the TLS-inspection clients (curl, python `urllib` and `requests`, node `fetch`
//! and `http2`, git, pip, a WebSocket client), which take `ca: Option<&Path>`: with `None` they
//! pass no CA option at all and trust what their environment says, as a CI step under Warden
//! would.

use std::path::Path;

/// Bounds every client so a broken relay fails the test instead of hanging it until the
/// harness deadline.
const CLIENT_TIMEOUT_S: u32 = 20;

/// Quotes `s` for a POSIX shell.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// One `sh -c` script running `steps` in order, stopping at (and exiting with) the first that
/// fails.
pub fn script<S: AsRef<str>>(steps: &[S]) -> String {
    let mut script = String::from("set -e\n");
    for step in steps {
        script.push_str(step.as_ref());
        script.push('\n');
    }
    script
}

/// `curl` fetching `url` (http or https, names or bracketed IPv6) trusting only `ca`; prints the
/// body, fails on HTTP errors.
pub fn curl(url: &str, ca: &Path) -> String {
    format!(
        "curl -sS --fail -g --max-time {CLIENT_TIMEOUT_S} --cacert {} {}",
        quote(&ca.to_string_lossy()),
        quote(url)
    )
}

/// [`curl`] with extra options before the URL (`--resolve host:port:addr`, `-H 'Host: x'`):
/// prints the body, fails on HTTP errors.
pub fn curl_with(opts: &[&str], url: &str, ca: &Path) -> String {
    let opts: Vec<String> = opts.iter().map(|o| quote(o)).collect();
    format!(
        "curl -sS --fail -g --max-time {CLIENT_TIMEOUT_S} --cacert {} {} {}",
        quote(&ca.to_string_lossy()),
        opts.join(" "),
        quote(url)
    )
}

/// `curl` that takes any HTTP answer (a 403 is what block mode answers plain HTTP with): prints
/// the body, then a line `http status NNN`; fails only when no answer came (reset, timeout).
pub fn curl_status(opts: &[&str], url: &str, ca: &Path) -> String {
    let opts: Vec<String> = opts.iter().map(|o| quote(o)).collect();
    format!(
        "curl -sS -g --max-time {CLIENT_TIMEOUT_S} --cacert {} -w '\\nhttp status %{{http_code}}\\n' \
         {} {}",
        quote(&ca.to_string_lossy()),
        opts.join(" "),
        quote(url)
    )
}

/// Runs `step` in a subshell and then prints `LABEL: exit N` with its exit status, whatever it
/// was: one script can run clients that are meant to fail, and [`exit_of`] tells the test how
/// each one ended.
pub fn outcome(label: &str, step: &str) -> String {
    format!(
        "( {step} ); printf '%s: exit %s\\n' {} \"$?\"",
        quote(label)
    )
}

/// The exit status an [`outcome`] step labelled `label` printed in `stdout`, if it did.
pub fn exit_of(stdout: &str, label: &str) -> Option<i32> {
    let prefix = format!("{label}: exit ");
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|code| code.trim().parse().ok())
}

/// What the [`outcome`] step labelled `label` printed to stdout: the lines after the previous
/// step's `…: exit N` line (or the start) and before its own; `None` if it never ended. Lets one
/// script run several clients whose outputs are checked one by one.
pub fn output_of(stdout: &str, label: &str) -> Option<String> {
    let mut lines = Vec::new();
    for line in stdout.lines() {
        match line.rsplit_once(": exit ") {
            Some((step, code)) if code.trim().parse::<i32>().is_ok() => {
                if step == label {
                    return Some(lines.join("\n"));
                }
                lines.clear();
            }
            _ => lines.push(line),
        }
    }
    None
}

/// `openssl s_client` handshaking with `host:port` for `servername` with ALPN `http/1.1`,
/// failing (with openssl's whole output on stderr) unless the chain verifies against `ca`.
/// Prints the `ALPN protocol:` and `Verify return code:` lines.
pub fn openssl_handshake(host: &str, port: u16, servername: &str, ca: &Path) -> String {
    format!(
        "(out=$(openssl s_client -connect {} -servername {} -CAfile {} -verify_return_error \
         -alpn http/1.1 </dev/null 2>&1) || {{ printf '%s\\n' \"$out\" >&2; exit 1; }}; \
         printf '%s\\n' \"$out\" | grep -E '^(ALPN protocol|Verify return code):')",
        quote(&format!("{host}:{port}")),
        quote(servername),
        quote(&ca.to_string_lossy())
    )
}

/// Python sending `len` bytes to an echo service, half-closing, and checking that exactly those
/// bytes come back before EOF. Prints `echo ok <len>`.
pub fn python_echo(host: &str, port: u16, len: usize) -> String {
    python(ECHO_PY, &[host, &port.to_string(), &len.to_string()])
}

/// Python reading a server-first banner line, then checking the service echoes after it.
/// Prints the banner.
pub fn python_banner(host: &str, port: u16) -> String {
    python(BANNER_PY, &[host, &port.to_string()])
}

/// Python's `ssl` module (with `ca` as its only trust anchor) sending `GET path` to `host:443`.
/// Prints the response body.
pub fn python_https(host: &str, path: &str, ca: &Path) -> String {
    python(HTTPS_PY, &[host, path, &ca.to_string_lossy()])
}

/// `clients` Python processes (forked, each its own pid, released together), each making
/// `per_client` HTTPS requests for `path` with a new connection each, cycling through `hosts`
/// (port 443, `ca` the only trust anchor). Prints one line per request:
/// `req <pid> <host> ok` or `req <pid> <host> error <ExceptionName>`, then `load done`.
pub fn python_https_load(
    hosts: &[&str],
    path: &str,
    ca: &Path,
    clients: usize,
    per_client: usize,
) -> String {
    python(
        HTTPS_LOAD_PY,
        &[
            hosts.join(","),
            path.to_string(),
            ca.to_string_lossy().into_owned(),
            clients.to_string(),
            per_client.to_string(),
        ],
    )
}

/// Python echo like [`python_echo`], but on an `AF_INET6` socket connecting to `addr` (an IPv6
/// literal, e.g. the v4-mapped `::ffff:203.0.113.10`). Prints `echo ok <len>`.
pub fn python_echo_inet6(addr: &str, port: u16, len: usize) -> String {
    python(ECHO_INET6_PY, &[addr, &port.to_string(), &len.to_string()])
}

/// Python connecting to `host:port`, sending `len` bytes and leaving at once with `os._exit`:
/// no close, no waiting for an answer, so the process is gone before the connection ends.
/// Prints `pid <pid> ppid <ppid>` first.
pub fn python_send_and_exit(host: &str, port: u16, len: usize) -> String {
    python(
        SEND_AND_EXIT_PY,
        &[host, &port.to_string(), &len.to_string()],
    )
}

/// Python's `ssl` (with `ca` as its only trust anchor) fetching `path` from `host:443`, but
/// sending its ClientHello one byte per `send()` (`TCP_NODELAY`, `delay_ms` apart) before
/// finishing the handshake through memory BIOs. Prints the ClientHello's length, then the body.
pub fn python_https_bytewise(host: &str, path: &str, ca: &Path, delay_ms: u32) -> String {
    let delay = format!("{}", f64::from(delay_ms) / 1000.0);
    python(
        HTTPS_BYTEWISE_PY,
        &[host, path, &ca.to_string_lossy(), &delay],
    )
}

/// Python sending `bytes` to `host:port` and expecting the connection to be closed rather than
/// answered: prints `closed: reset` or `closed: eof`, fails on an answer or after 10 s.
pub fn python_send_expect_close(host: &str, port: u16, bytes: &[u8]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    python(SEND_EXPECT_CLOSE_PY, &[host, &port.to_string(), &hex])
}

/// Python sending a real ClientHello for `sni` (from its `ssl` module) to `addr:port` with a
/// GREASE `encrypted_client_hello` extension (draft-ietf-tls-esni, "GREASE ECH") added, as a
/// browser does when it has no ECH config: `sni` is then only an outer, public name. It does not
/// finish the handshake (the extension changes the transcript); it prints `answered` when the
/// server answered, `closed: reset` or `closed: eof` when the connection was closed instead.
pub fn python_ech_hello(addr: &str, port: u16, sni: &str) -> String {
    python(ECH_HELLO_PY, &[addr, &port.to_string(), sni])
}

/// Waits (polling, at most `timeout_s`) until `path` exists, failing otherwise: lets a test
/// hold a command at a point of its choosing without a fixed sleep.
pub fn wait_for_file(path: &Path, timeout_s: u32) -> String {
    format!(
        "(n=0; until [ -e {path} ]; do n=$((n+1)); if [ $n -gt {tries} ]; then \
         echo 'gave up waiting for '{path} >&2; exit 1; fi; sleep 0.05; done)",
        path = quote(&path.to_string_lossy()),
        tries = timeout_s * 20
    )
}

/// `dig` asking `server` (with `None`, the nameserver of the namespace's resolv.conf) for the
/// `rtype` records of `name`, with `opts` (`+tcp`, `-6`, …) after the defaults: one try of at
/// most 5 s, so each lookup sends exactly one query; no `~/.digrc`. Prints the header comments
/// and the answer section, which [`DigOutput::parse`](crate::dns::DigOutput::parse) reads.
/// Fails (exit 9) only when no server answered: NXDOMAIN and REFUSED are answers.
pub fn dig(server: Option<&str>, name: &str, rtype: &str, opts: &[&str]) -> String {
    dig_with(
        &["+noall", "+comments", "+answer"],
        server,
        name,
        rtype,
        opts,
    )
}

/// [`dig`] with `+short`: prints the data of each answer record, one per line (a CNAME's target
/// first), nothing for NXDOMAIN or an empty answer.
pub fn dig_short(server: Option<&str>, name: &str, rtype: &str, opts: &[&str]) -> String {
    dig_with(&["+short"], server, name, rtype, opts)
}

fn dig_with(
    style: &[&str],
    server: Option<&str>,
    name: &str,
    rtype: &str,
    opts: &[&str],
) -> String {
    let mut cmd = String::from("dig -r +tries=1 +time=5");
    let server = server.map(|s| format!("@{s}"));
    let words = style.iter().chain(opts).copied();
    for word in words.chain(server.as_deref()).chain([name, rtype]) {
        cmd.push(' ');
        cmd.push_str(&quote(word));
    }
    cmd
}

/// `getent DATABASE KEY` (glibc's NSS: the hosts file, then DNS through resolv.conf). `hosts`
/// prints one line, `ADDR NAME…`, with the IPv6 address when there is one (it asks for AF_INET6
/// first); `ahosts`, `ahostsv4` and `ahostsv6` print each address getaddrinfo returns, as
/// `ADDR STREAM|DGRAM|RAW [CANONICAL-NAME]` lines. Exits 2 when the key is not found.
pub fn getent(database: &str, key: &str) -> String {
    format!("getent {} {}", quote(database), quote(key))
}

/// Python's `socket.getaddrinfo(name, 443, type=SOCK_STREAM, flags=AI_ADDRCONFIG)`, as most
/// clients call it: prints each distinct address, one per line, in the order returned. When the
/// lookup fails it prints `gaierror EAI_…: message` (EAI_NONAME for NXDOMAIN, EAI_AGAIN when no
/// resolver answered) and exits 2.
pub fn python_getaddrinfo(name: &str) -> String {
    python(GETADDRINFO_PY, &[name])
}

/// `curl` fetching `url` whose host is a name curl resolves itself (getaddrinfo, through the
/// namespace's resolv.conf), trusting only `ca`: prints the body, then `remote <ip> <port>`,
/// the address it connected to; fails on HTTP errors. The standard TLS origin's certificate does
/// not name the DNS zone's names: for HTTPS, start an origin whose does
/// ([`Origins::start_origin`](crate::Origins::start_origin)).
pub fn curl_by_name(url: &str, ca: &Path) -> String {
    format!(
        "curl -sS --fail -g --max-time {CLIENT_TIMEOUT_S} --cacert {} \
         -w '\\nremote %{{remote_ip}} %{{remote_port}}\\n' {}",
        quote(&ca.to_string_lossy()),
        quote(url)
    )
}

/// Python sending one DNS query (RFC 1035 §4.1, recursion desired) for `name` and type code
/// `qtype` to port 53 of `server` (an IPv4, IPv6 or v4-mapped `::ffff:a.b.c.d` literal, the
/// latter two on an `AF_INET6` socket) from a UDP socket it `connect`s first when `connect`
/// is true, and with an unconnected `sendto` otherwise. Prints `rcode N from ADDR PORT answers
/// K` for the reply (its source as `recvfrom` reports it), preceded, on a connected socket, by
/// `peer ADDR PORT` as `getpeername` reports it; prints `EPERM` when the send is refused. Fails
/// when no reply with the query's id comes within 5 s.
pub fn python_dns_query(server: &str, name: &str, qtype: u16, connect: bool) -> String {
    let how = if connect { "connect" } else { "sendto" };
    python(DNS_QUERY_PY, &[server, name, &qtype.to_string(), how])
}

/// Python sending `payload` in one datagram from a fresh UDP socket to `host:port` and waiting
/// up to `wait_ms` for one reply. Prints `EPERM` when the send is refused; otherwise `sent`,
/// then `reply HEX from ADDR PORT` or `no reply`. Exits 0 in every case.
pub fn python_udp_exchange(host: &str, port: u16, payload: &[u8], wait_ms: u32) -> String {
    let hex: String = payload.iter().map(|b| format!("{b:02x}")).collect();
    let wait = format!("{}", f64::from(wait_ms) / 1000.0);
    python(UDP_EXCHANGE_PY, &[host, &port.to_string(), &hex, &wait])
}

/// Python connecting to `host:port` over TCP, sending `bytes` and reading until the server
/// answers or closes, reporting how it went in one line, whatever happened: `refused` (at
/// connect), `reset` (a reset at connect or later), `eof`, `answered N bytes` or `timeout`
/// (nothing within 10 s). Exits 0 in every case, so the line is the verdict.
pub fn python_tcp_fate(host: &str, port: u16, bytes: &[u8]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    python(TCP_FATE_PY, &[host, &port.to_string(), &hex])
}

/// The HTTP version curl asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Http {
    /// `--http1.1`: HTTP/1.1 only (ALPN `http/1.1`).
    V1,
    /// `--http2`: h2 when the server offers it in ALPN, HTTP/1.1 otherwise.
    V2,
}

impl Http {
    fn curl_flag(self) -> &'static str {
        match self {
            Http::V1 => "--http1.1",
            Http::V2 => "--http2",
        }
    }
}

// The clients below are what TLS inspection promises to keep working "with no flags of their
// own". Each takes `ca: Option<&Path>`: with `None` it is run exactly as a CI step would run it,
// trusting whatever its environment and the system store say (under warden, Warden's CA); with
// `Some(ca)` it trusts `ca` through its own option, for the harness's self-tests without warden.
// Each prints `status N` (and what it fetched) on success and fails on an HTTP error status;
// a TLS or connection failure makes it print `error KIND: MESSAGE` and exit 2 (python, node) or
// fail as the tool does (curl, git, pip), so a refused certificate is told from an HTTP error.

/// `curl` GET of `url` asking for `http`: prints the body, then a line
/// `status NNN version V` (`V` is curl's `%{http_version}`: `2`, `1.1`); fails (22) on an HTTP
/// error status, after printing both.
pub fn curl_get(url: &str, http: Http, ca: Option<&Path>) -> String {
    format!(
        "curl -sS --fail-with-body -g --max-time {CLIENT_TIMEOUT_S} {}{} \
         -w '\\nstatus %{{http_code}} version %{{http_version}}\\n' {}",
        cacert(ca),
        http.curl_flag(),
        quote(url)
    )
}

/// `curl` POSTing `len` random bytes (`--data-binary`, so `Content-Length`) to `url`, an
/// `/echo` endpoint, and checking byte for byte that they come back: prints
/// `echo ok LEN bytes status NNN version V`.
pub fn curl_post_echo(url: &str, len: usize, http: Http, ca: Option<&Path>) -> String {
    format!(
        "(d=$(mktemp -d) && trap 'rm -rf \"$d\"' EXIT && \
         head -c {len} /dev/urandom >\"$d/sent\" && \
         w=$(curl -sS --fail -g --max-time {timeout} {}{} --data-binary @\"$d/sent\" \
         -H 'Content-Type: application/octet-stream' -o \"$d/got\" \
         -w 'status %{{http_code}} version %{{http_version}}' {}) && \
         cmp \"$d/sent\" \"$d/got\" && echo \"echo ok $(wc -c <\"$d/got\") bytes $w\")",
        cacert(ca),
        http.curl_flag(),
        quote(url),
        timeout = CLIENT_TIMEOUT_S * 3,
    )
}

/// Python's `urllib.request.urlopen(url)` (its default SSL context, or one trusting only `ca`):
/// prints `status N`, then the body.
pub fn python_urllib(url: &str, ca: Option<&Path>) -> String {
    python(URLLIB_PY, &with_ca(&[url], ca))
}

/// Python's `requests.get(url)` (`verify=True`, so `REQUESTS_CA_BUNDLE` or certifi, or
/// `verify=ca`): prints `status N`, then the body.
pub fn python_requests(url: &str, ca: Option<&Path>) -> String {
    python(REQUESTS_PY, &with_ca(&[url], ca))
}

/// Node's global `fetch(url)` (undici, HTTP/1.1): prints `status N`, then the body. `ca` is given
/// the way node takes extra roots, `NODE_EXTRA_CA_CERTS` (it has no command-line option).
pub fn node_fetch(url: &str, ca: Option<&Path>) -> String {
    node(FETCH_JS, &[url], ca)
}

/// Node's `http2` client sending `GET` (with `te: trailers`) to `url`: prints `status N`, a line
/// `trailer NAME: VALUE` for each trailer received, then the body. curl (7.88) drops h2
/// trailers, so this is the trailers client.
pub fn node_h2_trailers(url: &str, ca: Option<&Path>) -> String {
    node(H2_TRAILERS_JS, &[url], ca)
}

/// `git clone` of `url` into a temporary directory, removed after: prints `head SHA`, then the
/// files checked out, one per line. `ca` is given as `GIT_SSL_CAINFO` (the environment wins
/// over `-c http.sslCAInfo`, and this machine sets it).
pub fn git_clone(url: &str, ca: Option<&Path>) -> String {
    format!(
        "(d=$(mktemp -d) && trap 'rm -rf \"$d\"' EXIT && \
         {}timeout {CLIENT_TIMEOUT_S} git clone -q {} \"$d/clone\" && \
         echo \"head $(git -C \"$d/clone\" rev-parse HEAD)\" && git -C \"$d/clone\" ls-files)",
        ca.map_or_else(String::new, |ca| format!(
            "GIT_SSL_CAINFO={} ",
            quote(&ca.to_string_lossy())
        )),
        quote(url)
    )
}

/// `pip download --no-deps PACKAGE` from the simple index at `index_url` into a temporary
/// directory, removed after: prints `downloaded FILE` for each file. `--no-cache-dir` so every
/// request reaches the network; no retries, so a refusal fails at once. With `ca`, `--cert ca`,
/// and `REQUESTS_CA_BUNDLE` and `CURL_CA_BUNDLE` unset: pip's requests lets either of them
/// override `--cert`.
pub fn pip_download(index_url: &str, package: &str, ca: Option<&Path>) -> String {
    let (env, cert) = match ca {
        Some(ca) => (
            "env -u REQUESTS_CA_BUNDLE -u CURL_CA_BUNDLE ",
            format!("--cert {} ", quote(&ca.to_string_lossy())),
        ),
        None => ("", String::new()),
    };
    format!(
        "(d=$(mktemp -d) && trap 'rm -rf \"$d\"' EXIT && \
         {env}python3 -m pip download -q --no-deps --no-cache-dir --disable-pip-version-check \
         --retries 0 --timeout {CLIENT_TIMEOUT_S} --index-url {} {cert}-d \"$d\" {} && \
         for f in \"$d\"/*; do echo \"downloaded ${{f##*/}}\"; done)",
        quote(index_url),
        quote(package)
    )
}

/// Python opening a WebSocket (RFC 6455) to `wss://host/path` over a raw TLS socket (ALPN
/// `http/1.1`): checks the 101 and `Sec-WebSocket-Accept`, sends a text message and a binary
/// message of `len` random bytes (masked), checks both come back, and closes. Prints
/// `websocket ok LEN bytes`.
pub fn python_websocket(host: &str, path: &str, len: usize, ca: Option<&Path>) -> String {
    python(WEBSOCKET_PY, &with_ca(&[host, path, &len.to_string()], ca))
}

/// `--cacert CA ` or nothing.
fn cacert(ca: Option<&Path>) -> String {
    ca.map_or_else(String::new, |ca| {
        format!("--cacert {} ", quote(&ca.to_string_lossy()))
    })
}

/// `args`, then the CA path if there is one (the scripts read it as their last, optional
/// argument).
fn with_ca<'a>(args: &[&'a str], ca: Option<&'a Path>) -> Vec<std::borrow::Cow<'a, str>> {
    let mut all: Vec<_> = args
        .iter()
        .map(|a| std::borrow::Cow::Borrowed(*a))
        .collect();
    all.extend(ca.map(|ca| ca.to_string_lossy()));
    all
}

fn node<S: AsRef<str>>(script: &str, args: &[S], ca: Option<&Path>) -> String {
    let mut cmd = ca.map_or_else(String::new, |ca| {
        format!("NODE_EXTRA_CA_CERTS={} ", quote(&ca.to_string_lossy()))
    });
    cmd.push_str(&format!("node -e {}", quote(script)));
    for arg in args {
        cmd.push(' ');
        cmd.push_str(&quote(arg.as_ref()));
    }
    cmd
}

fn python<S: AsRef<str>>(script: &str, args: &[S]) -> String {
    let mut cmd = format!("python3 -c {}", quote(script));
    for arg in args {
        cmd.push(' ');
        cmd.push_str(&quote(arg.as_ref()));
    }
    cmd
}

const ECHO_PY: &str = r#"
import socket, sys
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
payload = bytes(i % 251 for i in range(n))
s = socket.create_connection((host, port), timeout=20)
s.sendall(payload)
s.shutdown(socket.SHUT_WR)
got = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    got += chunk
if got != payload:
    sys.exit(f"echo mismatch: sent {len(payload)} bytes, got {len(got)} back")
print("echo ok", len(got))
"#;

const BANNER_PY: &str = r#"
import socket, sys
host, port = sys.argv[1], int(sys.argv[2])
s = socket.create_connection((host, port), timeout=20)
banner = b""
while not banner.endswith(b"\r\n"):
    chunk = s.recv(1)
    if not chunk:
        sys.exit(f"connection closed before the banner ended: {banner!r}")
    banner += chunk
s.sendall(b"QUIT\r\n")
s.shutdown(socket.SHUT_WR)
rest = b""
while True:
    chunk = s.recv(4096)
    if not chunk:
        break
    rest += chunk
if rest != b"QUIT\r\n":
    sys.exit(f"expected the echo of QUIT after the banner, got {rest!r}")
print(banner.decode().strip())
"#;

const HTTPS_LOAD_PY: &str = r#"
import os, socket, ssl, sys
hosts, path, ca = sys.argv[1].split(","), sys.argv[2], sys.argv[3]
clients, per_client = int(sys.argv[4]), int(sys.argv[5])
ctx = ssl.create_default_context(cafile=ca)
ctx.set_alpn_protocols(["http/1.1"])
def get(host):
    with socket.create_connection((host, 443), timeout=30) as raw:
        with ctx.wrap_socket(raw, server_hostname=host) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while chunk := s.recv(65536):
                data += chunk
    if not data.startswith(b"HTTP/1.1 200"):
        raise ValueError(data[:40])
go_r, go_w = os.pipe()
pids = []
for _ in range(clients):
    pid = os.fork()
    if pid == 0:
        os.close(go_w)
        os.read(go_r, 1)
        lines = []
        for i in range(per_client):
            host = hosts[i % len(hosts)]
            try:
                get(host)
                lines.append(f"req {os.getpid()} {host} ok\n")
            except Exception as e:
                lines.append(f"req {os.getpid()} {host} error {type(e).__name__}\n")
        os.write(1, "".join(lines).encode())
        os._exit(0)
    pids.append(pid)
os.close(go_w)
for pid in pids:
    os.waitpid(pid, 0)
print("load done")
"#;

const HTTPS_PY: &str = r#"
import socket, ssl, sys
host, path, ca = sys.argv[1], sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=ca)
ctx.set_alpn_protocols(["http/1.1"])
with socket.create_connection((host, 443), timeout=20) as raw:
    with ctx.wrap_socket(raw, server_hostname=host) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        response = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            response += chunk
head, _, body = response.partition(b"\r\n\r\n")
if not head.startswith(b"HTTP/1.1 200 "):
    sys.exit(f"unexpected response: {head!r}")
print(body.decode().strip())
"#;

const ECHO_INET6_PY: &str = r#"
import socket, sys
addr, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
payload = bytes(i % 251 for i in range(n))
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.settimeout(20)
s.connect((addr, port, 0, 0))
s.sendall(payload)
s.shutdown(socket.SHUT_WR)
got = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    got += chunk
if got != payload:
    sys.exit(f"echo mismatch: sent {len(payload)} bytes, got {len(got)} back")
print("echo ok", len(got))
"#;

const SEND_AND_EXIT_PY: &str = r#"
import os, socket, sys
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.create_connection((host, port), timeout=20)
print("pid", os.getpid(), "ppid", os.getppid(), flush=True)
s.sendall(bytes(i % 251 for i in range(n)))
os._exit(0)
"#;

const HTTPS_BYTEWISE_PY: &str = r#"
import socket, ssl, sys, time
host, path, ca, delay = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
ctx = ssl.create_default_context(cafile=ca)
ctx.set_alpn_protocols(["http/1.1"])
incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
tls = ctx.wrap_bio(incoming, outgoing, server_hostname=host)
sock = socket.create_connection((host, 443), timeout=20)
sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

def flush():
    data = outgoing.read()
    if data:
        sock.sendall(data)

def fill():
    data = sock.recv(65536)
    if data:
        incoming.write(data)
    else:
        incoming.write_eof()

def pump(op):
    while True:
        try:
            return op()
        except ssl.SSLWantReadError:
            flush()
            fill()

try:
    tls.do_handshake()
except ssl.SSLWantReadError:
    pass
hello = outgoing.read()
for i in range(len(hello)):
    sock.send(hello[i:i + 1])
    time.sleep(delay)
pump(tls.do_handshake)
flush()
tls.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
flush()
response = b""
while True:
    try:
        chunk = pump(lambda: tls.read(65536))
    except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
        break
    if not chunk:
        break
    response += chunk
head, _, body = response.partition(b"\r\n\r\n")
if not head.startswith(b"HTTP/1.1 200 "):
    sys.exit(f"unexpected response: {head!r}")
print("client hello", len(hello), "bytes")
print(body.decode().strip())
"#;

const ECH_HELLO_PY: &str = r#"
import os, socket, ssl, struct, sys
addr, port, sni = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ctx = ssl.create_default_context()
incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
tls = ctx.wrap_bio(incoming, outgoing, server_hostname=sni)
try:
    tls.do_handshake()
except ssl.SSLWantReadError:
    pass
record = outgoing.read()
assert record[0] == 0x16 and record[5] == 0x01, "not a ClientHello record"
body = record[9:]
at = 2 + 32
at += 1 + body[at]
at += 2 + struct.unpack("!H", body[at:at + 2])[0]
at += 1 + body[at]
ext_len = struct.unpack("!H", body[at:at + 2])[0]
# ECHClientHello, outer: type 0, HKDF-SHA256 / AES-128-GCM, config id, enc, payload.
ech = bytes([0]) + struct.pack("!HHB", 1, 1, os.urandom(1)[0])
ech += struct.pack("!H", 32) + os.urandom(32) + struct.pack("!H", 144) + os.urandom(144)
ext = struct.pack("!HH", 0xFE0D, len(ech)) + ech
body = body[:at] + struct.pack("!H", ext_len + len(ext)) + body[at + 2:] + ext
handshake = bytes([1]) + len(body).to_bytes(3, "big") + body
hello = record[:3] + struct.pack("!H", len(handshake)) + handshake
s = socket.create_connection((addr, port), timeout=10)
s.sendall(hello)
try:
    got = s.recv(65536)
except ConnectionResetError:
    print("closed: reset")
    sys.exit(0)
except socket.timeout:
    sys.exit("no answer and still open after 10 s")
print("answered" if got else "closed: eof")
"#;

const GETADDRINFO_PY: &str = r#"
import socket, sys
name = sys.argv[1]
try:
    infos = socket.getaddrinfo(name, 443, type=socket.SOCK_STREAM, flags=socket.AI_ADDRCONFIG)
except socket.gaierror as e:
    codes = {getattr(socket, n): n for n in dir(socket) if n.startswith("EAI_")}
    print(f"gaierror {codes.get(e.errno, e.errno)}: {e.strerror}")
    sys.exit(2)
seen = []
for *_, sockaddr in infos:
    if sockaddr[0] not in seen:
        seen.append(sockaddr[0])
        print(sockaddr[0])
"#;

const SEND_EXPECT_CLOSE_PY: &str = r#"
import socket, sys
host, port, data = sys.argv[1], int(sys.argv[2]), bytes.fromhex(sys.argv[3])
s = socket.create_connection((host, port), timeout=10)
s.sendall(data)
try:
    got = s.recv(65536)
except ConnectionResetError:
    print("closed: reset")
    sys.exit(0)
except socket.timeout:
    sys.exit("the connection is still open after 10 s")
if got:
    sys.exit(f"expected a close, got {len(got)} bytes: {got[:64]!r}")
print("closed: eof")
"#;

const DNS_QUERY_PY: &str = r#"
import random, socket, struct, sys
server, name, qtype, how = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
qid = random.randrange(65536)
query = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
for label in name.rstrip(".").split("."):
    query += bytes([len(label)]) + label.encode()
query += b"\0" + struct.pack("!HH", qtype, 1)
family = socket.AF_INET6 if ":" in server else socket.AF_INET
s = socket.socket(family, socket.SOCK_DGRAM)
s.settimeout(5)
try:
    if how == "connect":
        s.connect((server, 53))
        print("peer", *s.getpeername()[:2])
        s.send(query)
    else:
        s.sendto(query, (server, 53))
except PermissionError:
    print("EPERM")
    sys.exit(0)
try:
    reply, source = s.recvfrom(65536)
except socket.timeout:
    sys.exit("no reply within 5 s")
rid, flags, _, answers = struct.unpack("!HHHH", reply[:8])
if rid != qid:
    sys.exit(f"reply id {rid} is not the query id {qid}")
print("rcode", flags & 0xF, "from", source[0], source[1], "answers", answers)
"#;

const TCP_FATE_PY: &str = r#"
import socket, sys
host, port, data = sys.argv[1], int(sys.argv[2]), bytes.fromhex(sys.argv[3])
try:
    s = socket.create_connection((host, port), timeout=10)
    s.sendall(data)
    got = s.recv(65536)
    print(f"answered {len(got)} bytes" if got else "eof")
except ConnectionRefusedError:
    print("refused")
except ConnectionResetError:
    print("reset")
except socket.timeout:
    print("timeout")
"#;

const UDP_EXCHANGE_PY: &str = r#"
import socket, sys
host, port, data, wait = sys.argv[1], int(sys.argv[2]), bytes.fromhex(sys.argv[3]), float(sys.argv[4])
family = socket.AF_INET6 if ":" in host else socket.AF_INET
s = socket.socket(family, socket.SOCK_DGRAM)
s.settimeout(wait)
try:
    s.sendto(data, (host, port))
except PermissionError:
    print("EPERM")
    sys.exit(0)
print("sent")
try:
    reply, source = s.recvfrom(65536)
    print("reply", reply.hex(), "from", source[0], source[1])
except socket.timeout:
    print("no reply")
"#;

const URLLIB_PY: &str = r#"
import ssl, sys, urllib.error, urllib.request
url = sys.argv[1]
ctx = ssl.create_default_context(cafile=sys.argv[2]) if len(sys.argv) > 2 else None
try:
    with urllib.request.urlopen(url, timeout=20, context=ctx) as r:
        status, body = r.status, r.read()
except urllib.error.HTTPError as e:
    status, body = e.code, e.read()
except Exception as e:
    reason = getattr(e, "reason", e)
    print(f"error {type(reason).__name__}: {reason}")
    sys.exit(2)
print("status", status)
sys.stdout.write(body.decode(errors="replace"))
sys.exit(0 if status < 400 else 1)
"#;

const REQUESTS_PY: &str = r#"
import sys, requests
url = sys.argv[1]
verify = sys.argv[2] if len(sys.argv) > 2 else True
try:
    r = requests.get(url, timeout=20, verify=verify)
except requests.exceptions.RequestException as e:
    print(f"error {type(e).__name__}: {e}")
    sys.exit(2)
print("status", r.status_code)
sys.stdout.write(r.text)
sys.exit(0 if r.ok else 1)
"#;

const FETCH_JS: &str = r#"
const url = process.argv[1];
fetch(url, { signal: AbortSignal.timeout(20000) }).then(async (r) => {
  console.log("status", r.status);
  process.stdout.write(await r.text());
  process.exitCode = r.ok ? 0 : 1;
}).catch((e) => {
  const cause = e.cause || e;
  console.log(`error ${cause.code || cause.name}: ${cause.message}`);
  process.exitCode = 2;
});
"#;

const H2_TRAILERS_JS: &str = r#"
const http2 = require("http2");
const url = new URL(process.argv[1]);
const fail = (e) => { console.log(`error ${e.code || e.name}: ${e.message}`); process.exit(2); };
const session = http2.connect(url.origin);
session.on("error", fail);
session.setTimeout(20000, () => fail(new Error("timed out")));
const req = session.request({ ":path": url.pathname + url.search, te: "trailers" });
req.on("error", fail);
let status = 0;
req.on("response", (h) => { status = h[":status"]; console.log("status", status); });
req.on("trailers", (t) => {
  for (const [k, v] of Object.entries(t)) console.log(`trailer ${k}: ${v}`);
});
let body = "";
req.setEncoding("utf8");
req.on("data", (d) => { body += d; });
req.on("end", () => {
  process.stdout.write(body);
  session.close();
  process.exitCode = status && status < 400 ? 0 : 1;
});
req.end();
"#;

const WEBSOCKET_PY: &str = r#"
import base64, hashlib, os, socket, ssl, struct, sys
host, path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
ctx = ssl.create_default_context(cafile=sys.argv[4] if len(sys.argv) > 4 else None)
ctx.set_alpn_protocols(["http/1.1"])
try:
    s = ctx.wrap_socket(socket.create_connection((host, 443), timeout=20), server_hostname=host)
except (OSError, ssl.SSLError) as e:
    print(f"error {type(e).__name__}: {e}")
    sys.exit(2)
key = base64.b64encode(os.urandom(16)).decode()
s.sendall((f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
           "Sec-WebSocket-Version: 13\r\n\r\n").encode())
buf = b""
while b"\r\n\r\n" not in buf:
    chunk = s.recv(65536)
    if not chunk:
        sys.exit(f"connection closed inside the handshake answer: {buf!r}")
    buf += chunk
head, _, buf = buf.partition(b"\r\n\r\n")
lines = head.decode().split("\r\n")
if lines[0].split(" ")[1] != "101":
    sys.exit(f"no upgrade: {lines[0]}")
headers = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
want = base64.b64encode(hashlib.sha1((key + guid).encode()).digest()).decode()
if headers.get("sec-websocket-accept") != want:
    sys.exit(f"bad Sec-WebSocket-Accept: {headers}")

def recv_exact(k):
    global buf
    while len(buf) < k:
        chunk = s.recv(1 << 20)
        if not chunk:
            sys.exit("connection closed inside a frame")
        buf += chunk
    out, buf = buf[:k], buf[k:]
    return out

def send(opcode, payload):
    mask = os.urandom(4)
    size = len(payload)
    if size < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | size)
    elif size < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, size)
    keystream = (mask * (size // 4 + 1))[:size]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(keystream, "big")).to_bytes(size, "big")
    s.sendall(head + mask + masked)

def recv():
    first, second = recv_exact(2)
    size = second & 0x7F
    if size == 126:
        size = struct.unpack("!H", recv_exact(2))[0]
    elif size == 127:
        size = struct.unpack("!Q", recv_exact(8))[0]
    if second & 0x80:
        sys.exit("the server masked its frame")
    return first & 0x0F, recv_exact(size)

text = b"hello over websocket"
data = os.urandom(n)
send(0x1, text)
send(0x2, data)
if recv() != (0x1, text):
    sys.exit("the text message did not come back")
if recv() != (0x2, data):
    sys.exit("the binary message did not come back intact")
send(0x8, struct.pack("!H", 1000))
if recv()[0] != 0x8:
    sys.exit("no close frame back")
print("websocket ok", n, "bytes")
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_for_the_shell() {
        assert_eq!(quote("plain"), "'plain'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
    }

    #[test]
    fn outcome_reports_every_exit_status() {
        let step = outcome("it's", "exit 3");
        assert!(step.starts_with("( exit 3 ); printf"), "{step}");
        let out = std::process::Command::new("sh")
            .args(["-c", &format!("{step}\n{}", outcome("ok", "true"))])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(exit_of(&stdout, "it's"), Some(3), "{stdout}");
        assert_eq!(exit_of(&stdout, "ok"), Some(0), "{stdout}");
        assert_eq!(exit_of(&stdout, "missing"), None);
    }

    #[test]
    fn output_of_splits_a_script_by_step() {
        let stdout = "one\nfirst: exit 0\ntwo\nthree\nsecond: exit 9\nfourth: exit 1\n";
        assert_eq!(output_of(stdout, "first").as_deref(), Some("one"));
        assert_eq!(output_of(stdout, "second").as_deref(), Some("two\nthree"));
        assert_eq!(output_of(stdout, "fourth").as_deref(), Some(""));
        assert_eq!(output_of(stdout, "fifth"), None);
    }

    #[test]
    fn curl_variants_quote_their_options() {
        let ca = Path::new("/ca.pem");
        let cmd = curl_with(&["-H", "Host: a.example"], "http://192.0.2.1/", ca);
        assert!(cmd.contains(" --fail "), "{cmd}");
        assert!(
            cmd.ends_with("'-H' 'Host: a.example' 'http://192.0.2.1/'"),
            "{cmd}"
        );
        let cmd = curl_status(&[], "http://a.example/", ca);
        assert!(!cmd.contains("--fail"), "{cmd}");
        assert!(cmd.contains("http status %{http_code}"), "{cmd}");
    }

    #[test]
    fn dig_puts_options_after_its_defaults() {
        let cmd = dig(Some("192.0.2.53"), "a.test.example", "AAAA", &["+tcp"]);
        assert_eq!(
            cmd,
            "dig -r +tries=1 +time=5 '+noall' '+comments' '+answer' '+tcp' '@192.0.2.53' \
             'a.test.example' 'AAAA'"
        );
        let cmd = dig_short(None, "x.test.example", "A", &[]);
        assert_eq!(cmd, "dig -r +tries=1 +time=5 '+short' 'x.test.example' 'A'");
    }

    #[test]
    fn curl_trusts_only_the_given_ca() {
        let cmd = curl("https://[2001:db8::10]/x", Path::new("/tmp/ca dir/ca.pem"));
        assert!(cmd.contains("--cacert '/tmp/ca dir/ca.pem'"));
        assert!(
            cmd.contains(" -g "),
            "IPv6 brackets must not be globbed: {cmd}"
        );
    }
}
