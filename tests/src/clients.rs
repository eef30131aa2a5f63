//! Shell snippets that drive real clients against the test origins.
//!
//! Tests, the harness self-test and the demo all run the same clients (curl, openssl, python)
//! in the same way, usually as one `sh -c` script under `warden run`, so the snippets live here
//! once. Each returns a single shell command that exits non-zero when the exchange did not go as
//! expected and prints one short line per success. Every TLS client is given the test CA
//! explicitly: this machine points `SSL_CERT_FILE` and friends at the system bundle.

use std::path::Path;

/// Bounds every client so a broken relay fails the test instead of hanging it until the
/// harness deadline.
const CLIENT_TIMEOUT_S: u32 = 20;

/// Quotes `s` for a POSIX shell.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
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

fn python(script: &str, args: &[&str]) -> String {
    let mut cmd = format!("python3 -c {}", quote(script));
    for arg in args {
        cmd.push(' ');
        cmd.push_str(&quote(arg));
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
    fn curl_trusts_only_the_given_ca() {
        let cmd = curl("https://[2001:db8::10]/x", Path::new("/tmp/ca dir/ca.pem"));
        assert!(cmd.contains("--cacert '/tmp/ca dir/ca.pem'"));
        assert!(
            cmd.contains(" -g "),
            "IPv6 brackets must not be globbed: {cmd}"
        );
    }
}
