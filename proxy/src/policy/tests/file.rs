//! The policy file: what it sets, and every problem with its own position.

use crate::policy::{Endpoint, Mode, Overrides, PolicyFile, Problem, file};

fn endpoints(list: &[&str]) -> Vec<Endpoint> {
    list.iter().map(|s| s.parse().unwrap()).collect()
}

fn problems(text: &str) -> Vec<Problem> {
    file::parse(text, "p.yml").expect_err("the file has problems")
}

/// (line, column, key, value) of each problem, to compare in one assertion.
fn places(problems: &[Problem]) -> Vec<(usize, usize, &str, &str)> {
    problems
        .iter()
        .map(|p| (p.line, p.column, p.key.as_str(), p.value.as_str()))
        .collect()
}

#[test]
fn valid_file_with_a_list() {
    let text = "# CI policy\nmode: block\nallowed-endpoints:\n  - github.com:443\n  - \"*.githubusercontent.com\"\n  - '[2001:db8::/32]:443'\n  - 10.0.0.0/8\n";
    let policy = file::parse(text, "p.yml").unwrap();
    assert_eq!(policy.mode, Some(Mode::Block));
    let want = endpoints(&[
        "github.com",
        "*.githubusercontent.com",
        "[2001:db8::/32]:443",
        "10.0.0.0/8",
    ]);
    assert_eq!(policy.allowed_endpoints, Some(want));
    let marked = format!("---\n{text}...\n");
    assert_eq!(
        file::parse(&marked, "p.yml").unwrap(),
        policy,
        "document markers"
    );
}

#[test]
fn allowed_endpoints_as_one_string() {
    let text = "allowed-endpoints: >\n  github.com:443\n  *.github.com:443,api.nuget.org:443\n";
    let policy = file::parse(text, "p.yml").unwrap();
    assert_eq!(policy.mode, None);
    let want = endpoints(&["github.com", "*.github.com", "api.nuget.org"]);
    assert_eq!(policy.allowed_endpoints, Some(want));
    let inline = file::parse("allowed-endpoints: github.com 10.0.0.1:22", "p.yml").unwrap();
    assert_eq!(
        inline.allowed_endpoints,
        Some(endpoints(&["github.com", "10.0.0.1:22"]))
    );
}

#[test]
fn empty_values_and_files() {
    assert_eq!(file::parse("", "p.yml").unwrap(), PolicyFile::default());
    assert_eq!(
        file::parse("# nothing\n", "p.yml").unwrap(),
        PolicyFile::default()
    );
    let empty = file::parse("allowed-endpoints:\nmode: audit\n", "p.yml").unwrap();
    assert_eq!(empty.allowed_endpoints, Some(vec![]));
    assert_eq!(empty.mode, Some(Mode::Audit));
    assert_eq!(
        file::parse("allowed-endpoints: []", "p.yml")
            .unwrap()
            .allowed_endpoints,
        Some(vec![])
    );
}

#[test]
fn unknown_key_is_reported_at_its_line() {
    let got = problems("mode: block\nallowed-endpoint:\n  - github.com\n");
    assert_eq!(places(&got), [(2, 1, "allowed-endpoint", "")]);
    assert!(got[0].message.contains("unknown key"), "{}", got[0]);
    assert!(got[0].message.contains("allowed-endpoints"), "{}", got[0]);
}

#[test]
fn bad_mode() {
    let got = problems("mode: Block\n");
    assert_eq!(places(&got), [(1, 7, "mode", "Block")]);
    assert!(got[0].message.contains("audit or block"));
    let got = problems("mode: [block]\n");
    assert_eq!(got[0].key, "mode");
}

#[test]
fn every_bad_entry_at_its_own_line() {
    let text = "mode: block
allowed-endpoints:
  - github.com
  - https://example.com
  - ok.example
  - 10.0.0.1/8
  - ok2.example
  - ok3.example
  - bad..example
unknown: 1
";
    let got = problems(text);
    assert_eq!(
        places(&got),
        [
            (4, 5, "allowed-endpoints", "https://example.com"),
            (6, 5, "allowed-endpoints", "10.0.0.1/8"),
            (9, 5, "allowed-endpoints", "bad..example"),
            (10, 1, "unknown", ""),
        ]
    );
    assert!(got[0].message.contains("URL"), "{}", got[0]);
    assert!(got[1].message.contains("10.0.0.0/8"), "{}", got[1]);
}

#[test]
fn bad_entries_inside_one_string_at_their_lines() {
    let text = "allowed-endpoints: |\n  github.com\n  bad..example, ok.example\n  ok2.example https://x.example\n";
    let got = problems(text);
    assert_eq!(
        places(&got),
        [
            (3, 3, "allowed-endpoints", "bad..example"),
            (4, 15, "allowed-endpoints", "https://x.example")
        ]
    );
}

#[test]
fn entries_yaml_reads_as_something_else() {
    // A number is not an endpoint; a flow list is not a string.
    let got = problems("allowed-endpoints:\n  - 8080\n  - [2001:db8::1]\n  - {a: b}\n");
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!((got[0].line, got[0].value.as_str()), (2, "8080"));
    assert_eq!(got[1].line, 3);
    assert!(got[1].message.contains("quote"), "{}", got[1]);
    assert_eq!(got[2].line, 4);
}

#[test]
fn unquoted_star_explains_itself() {
    let got = problems("allowed-endpoints:\n  - github.com\n  - *.github.com\n");
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].line, 3);
    assert!(got[0].message.contains("quote"), "{}", got[0]);
    let got = problems("allowed-endpoints:\n  - \"[2001:db8::1]:443\"\n  - [2001:db8::1]:443\n");
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].line, 3);
    assert!(got[0].message.contains("quote"), "{}", got[0]);
}

#[test]
fn yaml_syntax_error_has_a_position() {
    let got = problems("mode: block\nallowed-endpoints: [github.com\n");
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].line >= 2, "{}", got[0]);
    assert!(
        got[0].message.starts_with("yaml syntax error"),
        "{}",
        got[0]
    );
    let dup = problems("mode: block\nmode: audit\n");
    assert!(dup[0].message.contains("duplicated key"), "{}", dup[0]);
}

#[test]
fn top_level_must_be_a_mapping_of_one_document() {
    assert!(problems("- github.com\n")[0].message.contains("mapping"));
    let got = problems("mode: block\n---\nmode: audit\n");
    assert_eq!(got[0].line, 3, "at the second document's first node");
    assert!(got[0].message.contains("one yaml document"), "{}", got[0]);
}

#[test]
fn problems_print_on_one_line() {
    let got = problems("mode: block\nallowed-endpoints:\n  - example.com:0\n");
    let line = got[0].to_string();
    assert_eq!(
        line,
        "p.yml:3:5: key allowed-endpoints: \"example.com:0\": port 0 is out of range 1-65535"
    );
    let unknown = problems("colour: red\n")[0].to_string();
    assert!(
        unknown.starts_with("p.yml:1:1: key colour: unknown key"),
        "{unknown}"
    );
}

#[test]
fn load_reads_the_file_or_says_why_not() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.yml");
    std::fs::write(&path, "mode: block\nallowed-endpoints: github.com\n").unwrap();
    let policy = file::load(&path).unwrap();
    assert_eq!(policy.mode, Some(Mode::Block));
    let missing = dir.path().join("missing.yml");
    let got = file::load(&missing).unwrap_err();
    assert_eq!(places(&got), [(0, 0, "", "")]);
    assert_eq!(got[0].file, missing.display().to_string());
    let shown = got[0].to_string();
    assert!(
        shown.starts_with(&format!("{}: cannot read", missing.display())),
        "{shown}"
    );
}

#[test]
fn command_line_overrides_the_file_key_by_key() {
    let file = PolicyFile {
        mode: Some(Mode::Block),
        allowed_endpoints: Some(endpoints(&["github.com"])),
        ..Default::default()
    };
    assert_eq!(
        file.clone().merge(Overrides::default()),
        (Mode::Block, endpoints(&["github.com"]))
    );
    let cli = Overrides {
        mode: Some(Mode::Audit),
        allowed_endpoints: None,
    };
    assert_eq!(
        file.clone().merge(cli),
        (Mode::Audit, endpoints(&["github.com"]))
    );
    let cli = Overrides {
        mode: None,
        allowed_endpoints: Some(endpoints(&["example.com"])),
    };
    assert_eq!(file.merge(cli), (Mode::Block, endpoints(&["example.com"])));
    assert_eq!(
        PolicyFile::default().merge(Overrides::default()),
        (Mode::Audit, vec![])
    );
}

#[test]
fn file_monitoring_key() {
    let text = "file-monitoring:\n  ignore:\n    - dist/\n    - '*.log'\n  expected-writers:\n    - rustfmt src/**\n";
    let rules = file::parse(text, "p.yml").unwrap().file_monitoring.unwrap();
    assert_eq!(rules.ignore.len(), 2);
    assert!(rules.ignore[1].matches("a/b.log"));
    assert_eq!(rules.expected.len(), 1);
    let empty = file::parse("file-monitoring:\n", "p.yml").unwrap();
    assert_eq!(empty.file_monitoring, Some(Default::default()));
}

#[test]
fn file_monitoring_problems_name_line_and_key() {
    let text = "file-monitoring:\n  ignore:\n    - ok/\n    - '!keep'\n  expected-writers: rustfmt\n  watch: x\n";
    let found = problems(text);
    assert_eq!(
        places(&found),
        [
            (4, 7, "file-monitoring.ignore", "!keep"),
            (5, 21, "file-monitoring.expected-writers", ""),
            (6, 3, "file-monitoring.watch", ""),
        ]
    );
    assert!(found[0].message.contains("negated"), "{found:?}");
    assert_eq!(
        places(&problems("file-monitoring: yes\n")),
        [(1, 18, "file-monitoring", "")]
    );
}

#[test]
fn url_secret_and_budget_keys() {
    let text = "allowed-urls:\n  - GET https://github.com/my-org/**\nsecret-env: [A_KEY, B]\n\
                secret-audiences:\n  A_KEY: [deploy.example, \"*.cdn.example\"]\nupload-budget: 5MiB\n";
    let f = file::parse(text, "p.yml").unwrap();
    assert_eq!(
        f.allowed_urls.unwrap()[0].to_string(),
        "GET https://github.com/my-org/**"
    );
    assert_eq!(f.secret_env.unwrap(), ["A_KEY", "B"]);
    let audiences = f.secret_audiences.unwrap();
    assert_eq!(audiences[0].0, "A_KEY");
    assert_eq!(audiences[0].1.len(), 2);
    assert_eq!(f.upload_budget, Some(5 << 20));
}

#[test]
fn url_secret_and_budget_problems_name_line_and_value() {
    let text = "allowed-urls:\n  - GET https://github.com\n  - ftp://x.example/\n\
                secret-env: [1BAD]\nsecret-audiences: [x]\nupload-budget: lots\n";
    let problems = file::parse(text, "p.yml").unwrap_err();
    let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
    let has = |needle: &str| shown.iter().any(|p| p.contains(needle));
    assert!(
        has("p.yml:2:5: key allowed-urls: \"GET https://github.com\": has no path"),
        "{shown:#?}"
    );
    assert!(
        has("p.yml:3:5: key allowed-urls: \"ftp://x.example/\""),
        "{shown:#?}"
    );
    assert!(has("key secret-env: \"1BAD\""), "{shown:#?}");
    assert!(has("key secret-audiences"), "{shown:#?}");
    assert!(has("p.yml:6:16: key upload-budget: \"lots\""), "{shown:#?}");
}
