//! The policy file and its flags: `warden policy check` lists every problem with its file, line,
//! column and value (exit 2) or says the file is ok; `warden run` with a bad policy or a bad
//! `--allowed-endpoints` fails as Warden's own failure (125) before CMD runs; and the command
//! line overrides the file key by key (`--egress-policy` the mode, `--allowed-endpoints` the
//! list), as the decisions in the audit records show.
//!
//! `policy check` needs nothing; the rest needs root (skips loudly otherwise).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tests::clients::{self, exit_of, outcome};
use tests::process::{Captured, run};
use tests::{
    Netns, Origins, RunOutput, WardenRun, assert_run, assert_run_eq, audit, skip_unless_root,
    warden_bin,
};

/// Deadline for one `warden` invocation; passing ones take a few seconds.
const T: Duration = Duration::from_secs(30);

/// A policy file with a problem of each kind, each on its own line.
const BAD: &str = "\
mode: blok
allowed-endpoints:
  - tls.example
  - https://http.example/x
  - \"10.0.0.1/8\"
colour: red
";

/// Writes `text` as `name` in `dir` and returns its path.
fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// `warden policy check FILE`, outside any namespace: it only reads the file.
fn check(file: &Path) -> Captured {
    let mut cmd = Command::new(warden_bin());
    cmd.args(["policy", "check"]).arg(file);
    run(cmd, T).unwrap()
}

#[test]
fn policy_check_reports_every_problem() {
    let dir = tempfile::tempdir().unwrap();

    let good = "\
mode: block
allowed-endpoints:
  - tls.example
  - \"*.example\"
  - \"[2001:db8::/32]:443\"
  - 192.0.2.0/24
";
    let harden_runner_style =
        "mode: audit\nallowed-endpoints: >\n  tls.example:443\n  *.example, http.example:80\n";
    for (name, text, said) in [
        ("good.yml", good, "ok: mode block, 4 allowed endpoints"),
        (
            "string.yml",
            harden_runner_style,
            "ok: mode audit, 3 allowed endpoints",
        ),
    ] {
        let path = write(dir.path(), name, text);
        let out = check(&path);
        assert_eq!(out.status.code(), Some(0), "{name}: {out:?}");
        assert_eq!(
            out.stdout,
            format!("{}: {said}\n", path.display()),
            "{out:?}"
        );
    }

    let bad = write(dir.path(), "bad.yml", BAD);
    let out = check(&bad);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let f = bad.display();
    let expected = [
        format!("{f}:1:7: key mode: \"blok\": expected audit or block"),
        format!(
            "{f}:4:5: key allowed-endpoints: \"https://http.example/x\": is a URL; endpoints are \
             host[:port], write \"http.example\""
        ),
        format!(
            "{f}:5:5: key allowed-endpoints: \"10.0.0.1/8\": host bits are set past the prefix; \
             did you mean \"10.0.0.0/8\"?"
        ),
        format!(
            "{f}:6:1: key colour: unknown key; expected one of: mode, allowed-endpoints, tls-inspection, no-inspect, allowed-urls, secret-env, secret-audiences, upload-budget, file-monitoring"
        ),
    ];
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines, expected, "one line per problem, in order: {out:?}");
    assert!(out.stderr.contains("4 problems"), "{out:?}");

    // Entries inside one string are found on their own lines.
    let path = write(
        dir.path(),
        "string-bad.yml",
        "allowed-endpoints: >\n  tls.example\n  bad..example\n",
    );
    let out = check(&path);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let said = format!(
        "{}:3:3: key allowed-endpoints: \"bad..example\":",
        path.display()
    );
    assert!(out.stdout.starts_with(&said), "{said:?} in {out:?}");

    // An unquoted `*.` entry is a YAML alias: a syntax error, reported alone, with the cure.
    let path = write(
        dir.path(),
        "alias.yml",
        "mode: x\nallowed-endpoints:\n  - *.example\n",
    );
    let out = check(&path);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_eq!(out.stdout.lines().count(), 1, "{out:?}");
    assert!(out.stdout.contains(":3:"), "{out:?}");
    assert!(out.stdout.contains("quote entries"), "{out:?}");

    let missing = dir.path().join("missing.yml");
    let out = check(&missing);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        out.stdout.contains(&missing.display().to_string())
            && out.stdout.contains("cannot read the policy file"),
        "{out:?}"
    );
}

#[test]
fn run_with_a_bad_policy_is_warden_failure_before_cmd() {
    if skip_unless_root("run_with_a_bad_policy_is_warden_failure_before_cmd") {
        return;
    }
    let netns = Netns::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let bad = write(dir.path(), "bad.yml", BAD);
    let bad = bad.to_string_lossy().into_owned();
    let marker = dir.path().join("cmd-ran");
    let touch = format!("touch {}", clients::quote(&marker.to_string_lossy()));
    let cases: [(&[&str], &[&str]); 3] = [
        (
            &["--policy", &bad],
            &[
                ":1:7: key mode: \"blok\"",
                ":4:5:",
                ":5:5:",
                ":6:1: key colour",
            ],
        ),
        (
            &[
                "--egress-policy",
                "block",
                "--allowed-endpoints",
                "tls.example,bad..example",
            ],
            &["--allowed-endpoints", "bad..example"],
        ),
        (&["--egress-policy", "blok"], &["blok"]),
    ];
    for (args, says) in cases {
        let out = WardenRun::new(&netns)
            .timeout(T)
            .args(args)
            .cmd(["sh", "-c", &touch])
            .run()
            .unwrap();
        assert_run_eq!(out, out.code(), Some(125), "warden {args:?}");
        for said in says {
            assert_run!(
                out,
                out.stderr.contains(said),
                "{args:?}: stderr says {said:?}"
            );
        }
        assert_run!(out, !marker.exists(), "{args:?}: CMD must not run");
        assert_run!(
            out,
            out.records.is_empty(),
            "{args:?}: enforcement never started"
        );
    }
}

#[test]
fn command_line_overrides_the_policy_file_key_by_key() {
    if skip_unless_root("command_line_overrides_the_policy_file_key_by_key") {
        return;
    }
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    let ca = origins.ca_pem_path();
    let dir = tempfile::tempdir().unwrap();
    let policy = write(
        dir.path(),
        "policy.yml",
        "mode: block\nallowed-endpoints:\n  - tls.example\n  - \"[2001:db8::/32]:443\"\n",
    );
    let policy = policy.to_string_lossy().into_owned();
    let steps = [
        outcome("tls", &clients::curl("https://tls.example/p", &ca)),
        outcome(
            "http",
            &clients::curl_status(&[], "http://http.example/p", &ca),
        ),
    ]
    .join("\n");
    let warden = |args: &[&str]| -> RunOutput {
        let out = WardenRun::new(&netns)
            .timeout(T)
            .args(["--policy", &policy])
            .args(args)
            .cmd(["sh", "-c", &steps])
            .run()
            .unwrap();
        out.assert_success();
        out.assert_bracketed();
        out
    };
    let tls = |out: &RunOutput| -> serde_json::Value {
        out.one_connection("tls", |r| r["dst"]["port"] == 443)
            .clone()
    };
    let http = |out: &RunOutput| -> serde_json::Value {
        out.one_connection("http", |r| r["dst"]["port"] == 80)
            .clone()
    };
    let mode = |out: &RunOutput| audit::enforcement(&out.records)[0]["enforcement"]["mode"].clone();

    // The file alone: block mode, its list.
    let out = warden(&[]);
    assert_run_eq!(out, mode(&out), "block", "mode from the file");
    out.assert_allowed(&tls(&out), "tls.example");
    out.assert_not_allowed(&http(&out), "blocked");
    assert_run!(
        out,
        out.stdout.contains("http status 403"),
        "http got a 403"
    );

    // --egress-policy replaces the mode, the list stays.
    let out = warden(&["--egress-policy", "audit"]);
    assert_run_eq!(out, mode(&out), "audit", "mode from the flag");
    out.assert_allowed(&tls(&out), "tls.example");
    out.assert_not_allowed(&http(&out), "audited");
    assert_run!(
        out,
        out.stdout.contains("http status 200"),
        "http went through"
    );

    // --allowed-endpoints replaces the list (not added to it), the mode stays.
    let out = warden(&["--allowed-endpoints", "http.example:80"]);
    assert_run_eq!(out, mode(&out), "block", "mode from the file");
    out.assert_not_allowed(&tls(&out), "blocked");
    out.assert_allowed(&http(&out), "http.example:80");
    let code = exit_of(&out.stdout, "tls");
    assert_run!(
        out,
        matches!(code, Some(35 | 56)),
        "tls was reset: {code:?}"
    );
    assert_run!(
        out,
        out.stdout.contains("hello from http-origin path=/p"),
        "http"
    );

    assert_eq!(origins.tls().connections(), 2, "{:?}", origins.tls());
    assert_eq!(origins.http().connections(), 2, "{:?}", origins.http());
}
