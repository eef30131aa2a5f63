//! Where a run's policy comes from: the policy file, overridden key by key by command-line
//! flags (DESIGN.md, "Precedence"), and `warden policy check`.

use std::path::{Path, PathBuf};

use crate::policy::{
    Host, Inspection, Mode, Policy,
    file::{self, Overrides},
    parse_endpoint_list,
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
}

/// The policy the flags and file describe, or every problem found (each one line, naming the
/// file, line and value, or the flag).
pub fn policy(flags: &PolicyFlags) -> Result<Policy, Vec<String>> {
    let mut problems = Vec::new();
    let from_file = match &flags.file {
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
    if !problems.is_empty() {
        return Err(problems);
    }
    let enabled = flags
        .tls_inspection
        .or(from_file.as_ref().and_then(|f| f.tls_inspection))
        .unwrap_or(false);
    let no_inspect = if flags.no_inspect.is_empty() {
        from_file
            .as_ref()
            .and_then(|f| f.no_inspect.clone())
            .unwrap_or_default()
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
    if !problems.is_empty() {
        return Err(problems);
    }
    let inspection = Inspection {
        enabled,
        no_inspect: hosts,
    };
    let overrides = Overrides {
        mode: flags.mode,
        allowed_endpoints: (!flags.allowed_endpoints.is_empty()).then_some(endpoints),
    };
    let from_file = from_file.unwrap_or_default();
    let files = from_file.file_monitoring.clone().unwrap_or_default();
    let (mode, endpoints) = from_file.merge(overrides);
    let policy = if flags.builtin {
        Policy::with_builtin(mode, endpoints)
    } else {
        Policy::new(mode, endpoints)
    };
    Ok(policy
        .with_inspection(inspection)
        .with_file_monitoring(files))
}

/// `warden policy check FILE`: prints every problem (exit 2) or a one-line summary (exit 0).
pub fn check(path: &Path) -> i32 {
    match file::load(path) {
        Ok(f) => {
            let (mode, endpoints) = f.merge(Overrides::default());
            println!(
                "{}: ok: mode {mode}, {} allowed endpoint{}",
                path.display(),
                endpoints.len(),
                if endpoints.len() == 1 { "" } else { "s" }
            );
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
}
