//! The variables' bundles: what the variable named before (or the system bundle), then the CA.

use super::*;

fn bundle_of(installed: &Installed, name: &str) -> Vec<Vec<u8>> {
    let (_, path) = installed
        .env()
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("{name} is not set"));
    ders(&fs::read(path).unwrap())
}

#[test]
fn variables_extend_what_they_named_before_in_order() {
    let m = Machine::new();
    let a = m.pem_file("a.pem", "Runner Bundle A");
    let b = m.pem_file("b.pem", "Runner Bundle B");
    let ca = pem("Warden test CA");
    let installed = m.install(
        &ca,
        &env(&[("SSL_CERT_FILE", &a), ("PIP_CERT", &b)]),
        "t-env",
    );

    let a_der = der(&fs::read_to_string(&a).unwrap());
    let b_der = der(&fs::read_to_string(&b).unwrap());
    assert_eq!(
        bundle_of(&installed, "SSL_CERT_FILE"),
        vec![a_der, der(&ca)]
    );
    assert_eq!(bundle_of(&installed, "PIP_CERT"), vec![b_der, der(&ca)]);
    assert_eq!(
        fs::read_to_string(&a).unwrap().matches("BEGIN").count(),
        1,
        "the runner's file is untouched"
    );
    installed.restore().unwrap();
}

#[test]
fn unset_variables_extend_the_system_bundle_as_it_was_before() {
    let m = Machine::new();
    let system = ders(&fs::read(m.bundle()).unwrap());
    let ca = pem("Warden test CA");
    // As on this kind of runner: a variable naming the system bundle itself.
    let bundle = m.bundle().to_str().unwrap().to_owned();
    let installed = m.install(&ca, &env(&[("REQUESTS_CA_BUNDLE", &bundle)]), "t-unset");

    let mut expected = system.clone();
    expected.push(der(&ca));
    for name in VARIABLES.iter().filter(|&&n| n != "NODE_EXTRA_CA_CERTS") {
        assert_eq!(
            bundle_of(&installed, name),
            expected,
            "{name}: the CA once, after the system's"
        );
    }
    let names: Vec<&str> = installed.env().iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names, VARIABLES,
        "every variable, none of the set-only ones"
    );
    installed.restore().unwrap();
}

#[test]
fn node_extra_ca_certs_holds_only_extra_certificates() {
    let m = Machine::new();
    let ca = pem("Warden test CA");
    let installed = m.install(&ca, &env(&[]), "t-node-unset");
    assert_eq!(
        bundle_of(&installed, "NODE_EXTRA_CA_CERTS"),
        vec![der(&ca)],
        "Node keeps its own roots"
    );
    installed.restore().unwrap();

    let extra = m.pem_file("extra.pem", "Runner Extra CA");
    let installed = m.install(&ca, &env(&[("NODE_EXTRA_CA_CERTS", &extra)]), "t-node-set");
    let extra_der = der(&fs::read_to_string(&extra).unwrap());
    assert_eq!(
        bundle_of(&installed, "NODE_EXTRA_CA_CERTS"),
        vec![extra_der, der(&ca)]
    );
    installed.restore().unwrap();
}

#[test]
fn an_unreadable_variable_starts_from_the_system_bundle() {
    let m = Machine::new();
    let system = ders(&fs::read(m.bundle()).unwrap());
    let ca = pem("Warden test CA");
    let dir = m.path("etc");
    let env = env(&[
        ("CURL_CA_BUNDLE", "/nonexistent/bundle.pem"),
        ("GIT_SSL_CAINFO", dir.to_str().unwrap()),
        ("NODE_EXTRA_CA_CERTS", "/nonexistent/extra.pem"),
    ]);
    let installed = m.install(&ca, &env, "t-unreadable");
    let mut expected = system;
    expected.push(der(&ca));
    assert_eq!(bundle_of(&installed, "CURL_CA_BUNDLE"), expected);
    assert_eq!(
        bundle_of(&installed, "GIT_SSL_CAINFO"),
        expected,
        "a directory is not a bundle"
    );
    assert_eq!(bundle_of(&installed, "NODE_EXTRA_CA_CERTS"), vec![der(&ca)]);
    installed.restore().unwrap();
}

#[test]
fn set_only_variables_are_extended_only_when_set() {
    let m = Machine::new();
    let grpc = m.pem_file("grpc.pem", "Runner gRPC Roots");
    let ca = pem("Warden test CA");
    let installed = m.install(
        &ca,
        &env(&[("GRPC_DEFAULT_SSL_ROOTS_FILE_PATH", &grpc)]),
        "t-ifset",
    );
    let grpc_der = der(&fs::read_to_string(&grpc).unwrap());
    assert_eq!(
        bundle_of(&installed, "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"),
        vec![grpc_der, der(&ca)]
    );
    for name in EXTEND_IF_SET
        .iter()
        .filter(|&&n| n != "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH")
    {
        assert!(
            installed.env().iter().all(|(n, _)| n != name),
            "{name} was unset and stays unset"
        );
    }
    installed.restore().unwrap();
}

#[test]
fn print_env_has_one_line_per_variable() {
    let m = Machine::new();
    let installed = m.install(&pem("Warden test CA"), &env(&[]), "t-print");
    let text = installed.print_env();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), VARIABLES.len());
    let bundles = installed.state_dir().join("bundles");
    for (line, name) in lines.iter().zip(VARIABLES) {
        assert_eq!(
            *line,
            format!("{name}={}", bundles.join(format!("{name}.pem")).display())
        );
    }
    assert!(text.ends_with('\n'));
    installed.restore().unwrap();
}

#[test]
fn only_certificates_are_copied_from_what_a_variable_named() {
    let m = Machine::new();
    let system = ders(&fs::read(m.bundle()).unwrap());
    let ca = pem("Warden test CA");
    let client = Authority::generate("Client Identity").unwrap();
    let leaf = client.issue_leaf(&["client.example"]).unwrap();
    // A key-and-certificate file, as some tools take, with a comment between the blocks.
    let combined = m.path("combined.pem");
    fs::write(
        &combined,
        format!("{}# a comment\n{}", leaf.key_pem, leaf.cert_pem),
    )
    .unwrap();
    let secret = m.path("secret");
    fs::write(&secret, "password=hunter2\n").unwrap();
    let env = env(&[
        ("SSL_CERT_FILE", combined.to_str().unwrap()),
        ("AWS_CA_BUNDLE", secret.to_str().unwrap()),
    ]);
    let installed = m.install(&ca, &env, "t-secrets");

    let (_, path) = installed
        .env()
        .iter()
        .find(|(n, _)| n == "SSL_CERT_FILE")
        .unwrap();
    let text = fs::read_to_string(path).unwrap();
    assert!(
        !text.contains("PRIVATE KEY") && !text.contains("a comment"),
        "{text}"
    );
    assert_eq!(ders(text.as_bytes()), vec![leaf.cert_der.clone(), der(&ca)]);
    assert!(
        text.starts_with(leaf.cert_pem.trim_end()),
        "blocks are copied verbatim"
    );

    let mut expected = system;
    expected.push(der(&ca));
    assert_eq!(
        bundle_of(&installed, "AWS_CA_BUNDLE"),
        expected,
        "no certificate: the system's"
    );
    for (_, path) in installed.env() {
        assert!(!fs::read_to_string(path).unwrap().contains("hunter2"));
    }
    installed.restore().unwrap();
}
