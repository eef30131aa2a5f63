//! Built-in allowances: `--builtin` lets the runner's own services through in block mode (here
//! the cloud metadata address, served by a test origin inside the namespace), flagged `builtin`;
//! without it (the default for `warden run`) they are refused like anything else.
//!
//! Needs root (skips loudly otherwise).

use std::time::Duration;

use tests::origins::Service;
use tests::{
    Netns, Origins, WardenRun, assert_run, assert_run_eq, audit, clients, skip_unless_root,
};

#[test]
fn builtin_allowances_only_with_the_flag() {
    if skip_unless_root("builtin_allowances_only_with_the_flag") {
        return;
    }
    let netns = Netns::new().unwrap();
    netns.add_addr("169.254.169.254/32").unwrap();
    let origins = Origins::start(&netns).unwrap();
    let metadata = origins
        .start_origin(
            &netns,
            "metadata",
            Service::Http,
            &["169.254.169.254:80".parse().unwrap()],
        )
        .unwrap();
    let script = clients::curl_status(
        &[],
        "http://169.254.169.254/metadata/instance",
        &origins.ca_pem_path(),
    );
    for builtin in [true, false] {
        let mut args = vec![
            "--egress-policy",
            "block",
            "--allowed-endpoints",
            "tls.example",
        ];
        if builtin {
            args.push("--builtin");
        }
        let out = WardenRun::new(&netns)
            .timeout(Duration::from_secs(30))
            .args(args)
            .cmd(["sh", "-c", &script])
            .run()
            .unwrap();
        out.assert_success();
        let record = out.one_connection("metadata", |r| audit::is_to(r, "169.254.169.254", 80));
        if builtin {
            assert_run!(
                out,
                out.stdout.contains("http status 200"),
                "metadata reachable"
            );
            assert_run_eq!(out, record["decision"], "allowed", "{record}");
            assert_run_eq!(out, record["rule"], "169.254.169.254:80", "{record}");
            assert_run!(
                out,
                audit::has_flag(record, "builtin"),
                "flagged builtin: {record}"
            );
        } else {
            assert_run!(
                out,
                out.stdout.contains("http status 403"),
                "metadata refused"
            );
            assert_run_eq!(out, record["decision"], "blocked", "{record}");
            assert_run!(out, !audit::has_flag(record, "builtin"), "{record}");
        }
    }
    assert_eq!(
        metadata.connections(),
        1,
        "only the --builtin run reached the origin"
    );
}
