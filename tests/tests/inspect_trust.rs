//! How a job comes to trust Warden's CA, and how the machine gets its trust store back: while
//! `warden run --tls-inspection` lasts, the system bundle (inside the test namespace, a private
//! copy of `/etc/ssl/certs`) ends with Warden's CA, and the variables runtimes read instead
//! (`SSL_CERT_FILE`, `REQUESTS_CA_BUNDLE`, `NODE_EXTRA_CA_CERTS`, …) name bundles under
//! `/run/warden` that hold what each variable named before *and* the CA. Afterwards every file
//! of the store is byte-identical to before and the run's `/run/warden/trust-*` is gone. The
//! start record names the CA. The daemon's side (`warden start --print-env`) is in
//! `inspect_daemon.rs`.
//!
//! Needs root (skips loudly otherwise). Each test builds its own namespace.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tests::clients::quote;
use tests::{Netns, Origins, WardenRun, assert_run, assert_run_eq, audit, skip_unless_root};

/// Deadline for one `warden run`; passing runs take a few seconds.
const T: Duration = Duration::from_secs(60);
/// The system bundle, as commands in the namespace see it.
const SYSTEM: &str = "/etc/ssl/certs/ca-certificates.crt";
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
/// Variables given a bundle of their own here (a runner's private roots), which Warden's
/// bundles for them must extend; the rest name the system bundle.
const OWN_BUNDLE: [&str; 2] = ["REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS"];

/// What a directory holds, recursively: each file's bytes (`Ok`), each link's target (`Err`).
type Snapshot = BTreeMap<PathBuf, Result<Vec<u8>, PathBuf>>;

fn snapshot(dir: &Path) -> Snapshot {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        if meta.is_symlink() {
            out.insert(path.clone(), Err(std::fs::read_link(&path).unwrap()));
        } else if meta.is_dir() {
            out.extend(snapshot(&path));
        } else {
            out.insert(path.clone(), Ok(std::fs::read(&path).unwrap()));
        }
    }
    out
}

/// The paths whose content or link target differs between two snapshots, or that only one has.
fn changes(before: &Snapshot, after: &Snapshot) -> BTreeSet<PathBuf> {
    let paths = before.keys().chain(after.keys());
    paths
        .filter(|p| before.get(*p) != after.get(*p))
        .cloned()
        .collect()
}

/// The PEM certificate blocks of `text`, each normalised to its lines without trailing space.
fn certificates(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut block: Option<Vec<&str>> = None;
    for line in text.lines().map(str::trim_end) {
        if line == "-----BEGIN CERTIFICATE-----" {
            block = Some(Vec::new());
        }
        if let Some(b) = block.as_mut() {
            b.push(line);
        }
        if line == "-----END CERTIFICATE-----"
            && let Some(b) = block.take()
        {
            blocks.push(b.join("\n"));
        }
    }
    blocks
}

/// The job: greps the system bundle for Warden's CA, copies it and every variable's bundle into
/// `dir` (`system.pem`, `<VARIABLE>.pem`, Java's `cacerts` if there is one), and prints each
/// variable as `NAME=VALUE`.
fn job(dir: &Path) -> String {
    let dir = quote(&dir.to_string_lossy());
    format!(
        "set -e\n\
         openssl crl2pkcs7 -nocrl -certfile {SYSTEM} | openssl pkcs7 -print_certs -noout \
         | grep 'Warden ephemeral CA'\n\
         cp {SYSTEM} {dir}/system.pem\n\
         if [ -e /etc/ssl/certs/java/cacerts ]; then cp /etc/ssl/certs/java/cacerts {dir}/; fi\n\
         for v in {vars}; do eval \"p=\\${{$v:-}}\"; echo \"$v=$p\"; \
         if [ -n \"$p\" ]; then cp \"$p\" {dir}/$v.pem; fi; done",
        vars = VARIABLES.join(" "),
    )
}

#[test]
fn the_job_trusts_wardens_ca_and_the_store_is_restored_byte_for_byte() {
    if skip_unless_root("the_job_trusts_wardens_ca_and_the_store_is_restored_byte_for_byte") {
        return;
    }
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    let store = netns.trust_store_path();
    let before = snapshot(&store);
    let system_before = std::fs::read_to_string(store.join("ca-certificates.crt")).unwrap();
    let copies = tempfile::tempdir().unwrap();
    // A runner's private roots, named by two variables: Warden must extend them.
    let own = copies.path().join("runner-roots.pem");
    std::fs::copy(origins.ca_pem_path(), &own).unwrap();

    let mut run = WardenRun::new(&netns)
        .timeout(T)
        .args(["--tls-inspection"])
        .cmd(["sh", "-c", &job(copies.path())]);
    for var in VARIABLES {
        let value = if OWN_BUNDLE.contains(&var) {
            own.as_path()
        } else {
            Path::new(SYSTEM)
        };
        run = run.env(var, value);
    }
    let out = run.run().unwrap();
    out.assert_success();

    // The start record names the CA, and the job found that CA in the system bundle.
    let start = audit::start_record(&out.records).unwrap();
    let ca_name = start["enforcement"]["inspection"]
        .as_str()
        .unwrap_or_default();
    assert_run!(out, ca_name.starts_with("Warden ephemeral CA "), "{start}");
    let grepped = out.stdout.contains(&format!("CN = {ca_name},"));
    assert_run!(out, grepped, "the job's grep did not show {ca_name}");

    // The system bundle had the CA appended, nothing else changed.
    let system = std::fs::read_to_string(copies.path().join("system.pem")).unwrap();
    let added = system.strip_prefix(&system_before);
    assert_run!(
        out,
        added.is_some(),
        "the system bundle was changed, not appended to"
    );
    let added = certificates(added.unwrap());
    assert_run_eq!(
        out,
        added.len(),
        1,
        "certificates added to the system bundle"
    );
    let ca = &added[0];

    // Each variable: a bundle under /run/warden extending what it named before.
    let system_certs = certificates(&system_before);
    let own_certs = certificates(&std::fs::read_to_string(&own).unwrap());
    let mut trust_dirs = Vec::new();
    for var in VARIABLES {
        let prefix = format!("{var}=");
        let value = out.stdout.lines().find_map(|l| l.strip_prefix(&prefix));
        let value = value.unwrap_or_default();
        assert_run!(
            out,
            value.starts_with("/run/warden/trust-"),
            "{var}={value}"
        );
        let dir = Path::new(value).ancestors().nth(2).unwrap().to_owned();
        trust_dirs.push(dir);
        let bundle = std::fs::read_to_string(copies.path().join(format!("{var}.pem")));
        let certs = certificates(&bundle.unwrap_or_default());
        assert_run!(out, certs.contains(ca), "{var}: no Warden CA in {value}");
        let base = if OWN_BUNDLE.contains(&var) {
            &own_certs
        } else {
            &system_certs
        };
        let missing = base.iter().filter(|c| !certs.contains(c)).count();
        assert_run_eq!(
            out,
            missing,
            0,
            "{var}: certificates it had before, missing"
        );
    }
    trust_dirs.dedup();
    assert_run_eq!(
        out,
        trust_dirs.len(),
        1,
        "state directories: {trust_dirs:?}"
    );

    // Java's cacerts, where there is one, had the CA imported, and is restored too.
    let java = store.join("java/cacerts");
    if java.exists() {
        let during = std::fs::read(copies.path().join("cacerts")).unwrap();
        let imported = during != std::fs::read(&java).unwrap();
        assert_run!(out, imported, "no import into {java:?}");
    }

    // After the run: every file of the store as it was, the state directory gone.
    let changed = changes(&before, &snapshot(&store));
    assert_run!(out, changed.is_empty(), "changed by the run: {changed:?}");
    let left = &trust_dirs[0];
    assert_run!(out, !left.exists(), "{left:?} is left behind");
}
