//! The variables runtimes read instead of the system store, and what each one's bundle extends.

use std::collections::HashMap;
use std::fs;

use super::files::find;

/// Variables Warden always sets for the job, each to a bundle that extends what it named before
/// (or the system bundle, if unset) with the CA: Node (`NODE_EXTRA_CA_CERTS`), OpenSSL and what
/// builds on it (`SSL_CERT_FILE`: Python's `ssl`, Ruby, Go, rustls-native-certs), Python
/// `requests`, curl, pip, git, cargo, the AWS SDKs and CLI, Deno.
pub const VARIABLES: [&str; 9] = [
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

/// Variables Warden extends only when the runner already set them. Unset, these tools use roots
/// of their own choosing (httplib2's, gRPC's and gcloud's bundled ones; Nix the system bundle),
/// and setting them would change more than adding one CA; set, they name the bundle the tool
/// trusts *instead of* the system store, so without Warden's CA in it the tool would fail.
pub const EXTEND_IF_SET: [&str; 4] = [
    "NIX_SSL_CERT_FILE",
    "HTTPLIB2_CA_CERTS",
    "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH",
    "CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE",
];

/// Node trusts these certificates *in addition to* its own roots: its bundle holds the previous
/// extra certificates and the CA, never the whole system store.
const EXTRA_ONLY: &str = "NODE_EXTRA_CA_CERTS";

/// Files larger than this are not bundles; reading one would only stall the install.
const MAX_BUNDLE: u64 = 32 << 20;

/// The certificates of the file `name` names, or `None` (with a warning) if it is unset,
/// unreadable, or holds none.
///
/// Only the certificate blocks are copied, verbatim: Warden reads the file as root and writes a
/// world-readable bundle, so a variable naming a key, a combined key-and-certificate file or any
/// other secret must not copy the secret out. Comments between blocks are dropped.
fn previous(name: &str, env: &HashMap<String, String>) -> Option<Vec<u8>> {
    let value = env.get(name).filter(|v| !v.is_empty())?;
    let read = fs::canonicalize(value).and_then(|path| {
        let meta = fs::metadata(&path)?;
        if !meta.is_file() || meta.len() > MAX_BUNDLE {
            return Err(std::io::Error::other(
                "not a regular file of at most 32 MiB",
            ));
        }
        let certs = certificates(&fs::read(&path)?);
        if certs.is_empty() {
            return Err(std::io::Error::other("no PEM certificate in it"));
        }
        Ok(certs)
    });
    match read {
        Ok(certs) => Some(certs),
        Err(e) => {
            tracing::warn!(
                variable = name,
                path = value,
                error = %e,
                "the variable names a file Warden cannot use: its bundle starts from the system's"
            );
            None
        }
    }
}

/// The `CERTIFICATE` PEM blocks of `bytes`, verbatim, each followed by a line break.
pub(super) fn certificates(bytes: &[u8]) -> Vec<u8> {
    const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";
    const END: &[u8] = b"-----END CERTIFICATE-----";
    let mut out = Vec::new();
    let mut rest = bytes;
    while let Some(end) = find(rest, END) {
        // The last BEGIN before this END: an earlier one without its own END is damage.
        if let Some(begin) = rfind(&rest[..end], BEGIN) {
            out.extend_from_slice(&rest[begin..end + END.len()]);
            out.push(b'\n');
        }
        rest = &rest[end + END.len()..];
    }
    out
}

fn rfind(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).rposition(|w| w == needle)
}

/// For each variable to set, what its bundle holds before the CA is added: the certificates the
/// variable named, or else `system_before` (the system bundle before Warden's append; empty if there is
/// none). `NODE_EXTRA_CA_CERTS` falls back to nothing, as Node keeps its own roots.
pub(super) fn bases(
    env: &HashMap<String, String>,
    system_before: Option<&[u8]>,
) -> Vec<(&'static str, Vec<u8>)> {
    let always = VARIABLES.iter().map(|&n| (n, true));
    let if_set = EXTEND_IF_SET.iter().map(|&n| (n, false));
    let mut out = Vec::new();
    for (name, always) in always.chain(if_set) {
        let set = env.get(name).is_some_and(|v| !v.is_empty());
        if !always && !set {
            continue;
        }
        let base = match previous(name, env) {
            Some(bytes) => bytes,
            None if name == EXTRA_ONLY => Vec::new(),
            None => system_before.unwrap_or_default().to_vec(),
        };
        out.push((name, base));
    }
    out
}
