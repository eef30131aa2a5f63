//! Smoke: an HTTPS request through inspection (client trust comes later; -k for now).
use std::time::Duration;
use tests::{Netns, Origins, WardenRun, audit, skip_unless_root};

#[test]
fn inspected_request_is_recorded() {
    if skip_unless_root("inspected_request_is_recorded") {
        return;
    }
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    let ca = origins.ca_pem_path();
    let out = WardenRun::new(&netns)
        .timeout(Duration::from_secs(60))
        .args(["--tls-inspection", "--upstream-ca"])
        .args([ca.to_str().unwrap()])
        .cmd([
            "sh",
            "-c",
            "curl -sS 'https://tls.example/path/x?token=abc&x=1'; echo; curl -sS --http1.1 https://tls.example/second",
        ])
        .run()
        .unwrap();
    println!("stdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
    for r in &out.records {
        println!("{r}");
    }
    out.assert_success();
    assert!(!audit::of_kind(&out.records, "request").is_empty());
}
