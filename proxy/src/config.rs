//! Where a run's policy comes from: the policy file, overridden key by key by command-line
//! flags (DESIGN.md, "Precedence"), and `warden policy check`.

use std::path::{Path, PathBuf};

use crate::{
    exfil::{Detector, secrets},
    policy::{
        Endpoint, Exfil, Host, Inspection, Mode, Policy, PolicyFile,
        file::{self, Overrides},
        parse_endpoint_list,
        url::{UrlRules, parse_url_rule_list},
    },
};

/// The policy flags shared by `run` (and later `start`).
#[derive(Debug, Clone, Default)]
pub struct PolicyFlags {
    /// `--policy FILE`.
    pub file: Option<PathBuf>,
    /// `--egress-policy`.
    pub mode: Option<Mode>,
    /// `--allowed-endpoints`, each value a list (whitespace, commas or newlines); repeatable.
    pub allowed_endpoints: Vec<String>,
    /// Whether the built-in allowances for the runner's own services apply.
    pub builtin: bool,
    /// `--tls-inspection` (`Some(true)`) / `--no-tls-inspection` (`Some(false)`).
    pub tls_inspection: Option<bool>,
    /// `--no-inspect` lists (names and `*.` wildcards); repeatable.
    pub no_inspect: Vec<String>,
    /// `--allowed-urls` lists (URL rules separated by commas or newlines); repeatable.
    pub allowed_urls: Vec<String>,
    /// `--secret-env NAME`; repeatable.
    pub secret_env: Vec<String>,
    /// `--secret-file FILE`.
    pub secret_file: Option<PathBuf>,
    /// `--upload-budget SIZE`.
    pub upload_budget: Option<String>,
}

/// The policy the flags and file describe, or every problem found (each one line, naming the
/// file, line and value, or the flag).
pub fn policy(flags: &PolicyFlags) -> Result<Policy, Vec<String>> {
    let mut problems = Vec::new();
    let from_file: Option<PolicyFile> = match &flags.file {
        Some(path) => match file::load(path) {
            Ok(f) => Some(f),
            Err(ps) => {
                problems.extend(ps.iter().map(ToString::to_string));
                None
            }
        },
        None => None,
    };
    let mut endpoints = Vec::new();
    for list in &flags.allowed_endpoints {
        match parse_endpoint_list(list) {
            Ok(mut eps) => endpoints.append(&mut eps),
            Err(errors) => {
                problems.extend(errors.iter().map(|e| format!("--allowed-endpoints: {e}")))
            }
        }
    }
    let mut no_inspect = Vec::new();
    for list in &flags.no_inspect {
        match parse_endpoint_list(list) {
            Ok(mut eps) => no_inspect.append(&mut eps),
            Err(errors) => problems.extend(errors.iter().map(|e| format!("--no-inspect: {e}"))),
        }
    }
    let mut urls = Vec::new();
    for list in &flags.allowed_urls {
        match parse_url_rule_list(list) {
            Ok(mut rules) => urls.append(&mut rules),
            Err(errors) => problems.extend(errors.iter().map(|e| format!("--allowed-urls: {e}"))),
        }
    }
    let upload_budget = match &flags.upload_budget {
        Some(text) => match file::parse_size(text) {
            Ok(n) => Some(n),
            Err(e) => {
                problems.push(format!("--upload-budget {text:?}: {e}"));
                None
            }
        },
        None => None,
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    let from_file = from_file.unwrap_or_default();
    let enabled = flags
        .tls_inspection
        .or(from_file.tls_inspection)
        .unwrap_or(false);
    let no_inspect = if flags.no_inspect.is_empty() {
        from_file.no_inspect.clone().unwrap_or_default()
    } else {
        no_inspect
    };
    let mut hosts = Vec::new();
    for e in no_inspect {
        match e.host() {
            Host::Network { .. } => problems.push(format!(
                "no-inspect: {e}: takes host names (or *.wildcards), not addresses"
            )),
            host => hosts.push(host.clone()),
        }
    }
    let urls = UrlRules::new(if flags.allowed_urls.is_empty() {
        from_file.allowed_urls.clone().unwrap_or_default()
    } else {
        urls
    });
    // A strict host must be inspected: its URL rules could not be applied otherwise.
    for rule in urls.rules() {
        if let Some(h) = hosts.iter().find(|h| overlaps(h, rule.host())) {
            problems.push(format!(
                "allowed-urls: {rule}: its host is also in no-inspect ({}); strict hosts are \
                 always inspected, remove one of the two",
                Endpoint::from_parts(h.clone(), None)
            ));
        }
    }
    let exfil = exfil(flags, &from_file, upload_budget, &mut problems);
    if !problems.is_empty() {
        return Err(problems);
    }
    let overrides = Overrides {
        mode: flags.mode,
        allowed_endpoints: (!flags.allowed_endpoints.is_empty()).then_some(endpoints),
    };
    let files = from_file.file_monitoring.clone().unwrap_or_default();
    let (mode, mut endpoints) = from_file.merge(overrides);
    // Naming a host in allowed-urls allows connections to it (its requests are then judged one
    // by one); an endpoint the user also listed stays theirs.
    for host in urls.hosts() {
        if !endpoints.contains(host) {
            endpoints.push(host.clone());
        }
    }
    let inspection = Inspection {
        enabled,
        no_inspect: hosts,
        urls,
    };
    let policy = if flags.builtin {
        Policy::with_builtin(mode, endpoints)
    } else {
        Policy::new(mode, endpoints)
    };
    Ok(policy
        .with_inspection(inspection)
        .with_exfil(exfil)
        .with_file_monitoring(files))
}

/// Whether two host patterns can name the same host.
fn overlaps(a: &Host, b: &Host) -> bool {
    let name = |h: &Host| match h {
        Host::Exact(n) | Host::Wildcard(n) => n.clone(),
        Host::Network { .. } => String::new(),
    };
    match (a, b) {
        (Host::Exact(x), other) | (other, Host::Exact(x)) => other.matches_name(x),
        (Host::Wildcard(_), Host::Wildcard(_)) => {
            let (x, y) = (name(a), name(b));
            x == y || x.ends_with(&format!(".{y}")) || y.ends_with(&format!(".{x}"))
        }
        _ => false,
    }
}

/// The secrets (flags replace the file's `secret-env`; `--secret-file` adds to them), their
/// audiences and the upload budget.
fn exfil(
    flags: &PolicyFlags,
    from_file: &PolicyFile,
    upload_budget: Option<u64>,
    problems: &mut Vec<String>,
) -> Exfil {
    let names = if flags.secret_env.is_empty() {
        from_file.secret_env.clone().unwrap_or_default()
    } else {
        flags.secret_env.clone()
    };
    for name in &names {
        if !file::is_env_name(name) {
            problems.push(format!(
                "--secret-env {name:?}: not an environment variable name"
            ));
        }
    }
    let mut secrets = secrets::from_env(&names, |n| std::env::var(n).ok());
    if let Some(path) = &flags.secret_file {
        match secrets::from_file(path) {
            Ok(mut more) => secrets.append(&mut more),
            Err(e) => problems.push(e),
        }
    }
    let mut audiences = Vec::new();
    for (name, endpoints) in from_file.secret_audiences.clone().unwrap_or_default() {
        let mut hosts = Vec::new();
        for e in endpoints {
            match e.host() {
                Host::Network { .. } => problems.push(format!(
                    "secret-audiences: {name}: {e}: takes host names (or *.wildcards)"
                )),
                host => hosts.push(host.clone()),
            }
        }
        audiences.push((name, hosts));
    }
    Exfil {
        detector: Detector::new(secrets),
        audiences,
        upload_budget: upload_budget.or(from_file.upload_budget),
    }
}

/// `warden policy check FILE`: prints every problem (exit 2) or a one-line summary (exit 0).
pub fn check(path: &Path) -> i32 {
    match file::load(path) {
        Ok(f) => {
            let urls = f.allowed_urls.as_ref().map_or(0, Vec::len);
            let (mode, endpoints) = f.merge(Overrides::default());
            print!(
                "{}: ok: mode {mode}, {} allowed endpoint{}",
                path.display(),
                endpoints.len(),
                if endpoints.len() == 1 { "" } else { "s" }
            );
            if urls > 0 {
                print!(", {urls} URL rule{}", if urls == 1 { "" } else { "s" });
            }
            println!();
            0
        }
        Err(problems) => {
            for p in &problems {
                println!("{p}");
            }
            eprintln!(
                "{}: {} problem{}",
                path.display(),
                problems.len(),
                if problems.len() == 1 { "" } else { "s" }
            );
            2
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file_key_by_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.yml");
        std::fs::write(&path, "mode: block\nallowed-endpoints:\n  - a.example\n").unwrap();
        let only_file = policy(&PolicyFlags {
            file: Some(path.clone()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            (only_file.mode(), only_file.endpoints().len()),
            (Mode::Block, 1)
        );
        let overridden = policy(&PolicyFlags {
            file: Some(path),
            mode: Some(Mode::Audit),
            allowed_endpoints: vec!["b.example, c.example".into(), "d.example".into()],
            builtin: false,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(overridden.mode(), Mode::Audit);
        let names: Vec<String> = overridden
            .endpoints()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(names, ["b.example", "c.example", "d.example"]);
    }

    #[test]
    fn every_problem_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.yml");
        std::fs::write(
            &path,
            "mode: blok\nallowed-endpoints:\n  - ok.example\n  - bad..example\n",
        )
        .unwrap();
        let problems = policy(&PolicyFlags {
            file: Some(path),
            mode: None,
            allowed_endpoints: vec!["x.example:0".into()],
            builtin: false,
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].contains("bad.yml:1:"), "{problems:?}");
        assert!(problems[1].contains("bad.yml:4:"), "{problems:?}");
        assert!(
            problems[2].starts_with("--allowed-endpoints:"),
            "{problems:?}"
        );
    }

    #[test]
    fn inspection_keys_and_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.yml");
        std::fs::write(
            &path,
            "tls-inspection: true\nno-inspect: '*.pinned.example a.example'\n",
        )
        .unwrap();
        let from_file = policy(&PolicyFlags {
            file: Some(path.clone()),
            ..Default::default()
        })
        .unwrap();
        assert!(from_file.inspection().enabled);
        assert_eq!(
            from_file.inspection().no_inspect,
            [
                Host::Wildcard("pinned.example".into()),
                Host::Exact("a.example".into())
            ]
        );
        let off = policy(&PolicyFlags {
            file: Some(path),
            tls_inspection: Some(false),
            no_inspect: vec!["b.example".into()],
            ..Default::default()
        })
        .unwrap();
        assert!(!off.inspection().enabled);
        assert_eq!(
            off.inspection().no_inspect,
            [Host::Exact("b.example".into())]
        );
        let bad = policy(&PolicyFlags {
            no_inspect: vec!["10.0.0.0/8".into()],
            ..Default::default()
        })
        .unwrap_err();
        assert!(bad[0].contains("not addresses"), "{bad:?}");
        assert!(
            !policy(&PolicyFlags::default())
                .unwrap()
                .inspection()
                .enabled
        );
    }

    #[test]
    fn builtin_allowances_are_opt_in_and_marked() {
        use crate::policy::{Connection, Proto, Verdict};
        let flags = PolicyFlags {
            mode: Some(Mode::Block),
            ..Default::default()
        };
        let imds = Connection {
            ip: "169.254.169.254".parse().unwrap(),
            port: 80,
            proto: Proto::Tcp,
            name: None,
            ech: false,
            name_resolves_to_ip: None,
            ip_names: &[],
        };
        assert_eq!(
            policy(&flags).unwrap().decide(&imds).verdict,
            Verdict::Blocked
        );
        let with = policy(&PolicyFlags {
            builtin: true,
            ..flags
        })
        .unwrap();
        let d = with.decide(&imds);
        assert_eq!(
            (d.verdict, d.flags.as_slice()),
            (Verdict::Allowed, &["builtin"][..])
        );
    }

    #[test]
    fn no_flags_no_file_is_audit_with_no_rules() {
        let p = policy(&PolicyFlags::default()).unwrap();
        assert_eq!((p.mode(), p.endpoints().len()), (Mode::Audit, 0));
    }

    #[test]
    fn url_rules_allow_and_inspect_their_hosts() {
        let p = policy(&PolicyFlags {
            allowed_urls: vec!["GET https://github.com/org/**".into()],
            allowed_endpoints: vec!["example.com".into()],
            ..PolicyFlags::default()
        })
        .unwrap();
        assert!(p.inspection().needed() && !p.inspection().enabled);
        assert!(p.name_rule("github.com", 443).is_some());
        assert!(p.name_rule("github.com", 80).is_none());
        let clash = policy(&PolicyFlags {
            allowed_urls: vec!["https://a.example/x".into()],
            no_inspect: vec!["*.example".into()],
            ..PolicyFlags::default()
        })
        .unwrap_err();
        assert!(clash[0].contains("also in no-inspect"), "{clash:?}");
        let bad = policy(&PolicyFlags {
            allowed_urls: vec!["https://a.example".into()],
            upload_budget: Some("-1".into()),
            secret_file: Some("/nonexistent/secrets".into()),
            ..PolicyFlags::default()
        })
        .unwrap_err();
        assert!(
            bad.iter().any(|e| e.starts_with("--allowed-urls: ")),
            "{bad:?}"
        );
        assert!(
            bad.iter().any(|e| e.starts_with("--upload-budget ")),
            "{bad:?}"
        );
    }
}
