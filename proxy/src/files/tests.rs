//! The tracker's folding and the detections, with a fake world (no kernel, no git).

use std::collections::{HashMap, HashSet};

use super::{
    detect::{self, Rules},
    git::{Baseline, Tracked},
    track::{Env, Tracker},
};
use crate::audit::{Process, Record};

#[derive(Default)]
struct Fake {
    content: HashMap<String, String>,
    modes: HashMap<String, u32>,
    git_ignored: HashSet<String>,
    outside: HashSet<u32>,
}

impl Env for Fake {
    fn process(&mut self, pid: u32) -> (Process, bool) {
        let exe = match pid {
            1 => "/usr/bin/git",
            2 => "/usr/bin/sed",
            3 => "/usr/bin/rustfmt",
            _ => "/usr/bin/sh",
        };
        let p = Process {
            pid,
            exe: exe.into(),
            ..Process::default()
        };
        (p, !self.outside.contains(&pid))
    }
    fn sha256(&mut self, key: &str) -> Option<String> {
        self.content.get(key).map(|c| format!("sha({c})"))
    }
    fn mode(&mut self, key: &str) -> Option<u32> {
        self.modes.get(key).copied()
    }
    fn blob_sha256(&mut self, id: &str) -> Option<String> {
        Some(format!("sha(blob {id})"))
    }
    fn git_ignored(&mut self, rel: &str) -> bool {
        self.git_ignored.iter().any(|p| rel.starts_with(p.as_str()))
    }
}

fn baseline(commit: Option<&str>, files: &[&str]) -> Baseline {
    Baseline {
        commit: commit.map(String::from),
        files: files
            .iter()
            .map(|f| {
                let t = Tracked {
                    mode: 0o100644,
                    blob: format!("b-{f}"),
                };
                (f.to_string(), t)
            })
            .collect(),
        ..Baseline::default()
    }
}

fn kinds(r: &Record) -> Vec<&str> {
    r.anomalies.iter().map(|a| a.kind.as_str()).collect()
}

fn op(r: &Record) -> (&str, &str) {
    let f = r.file.as_ref().unwrap();
    (f.op, f.path.as_str())
}

#[test]
fn one_record_per_write_with_hashes() {
    let mut env = Fake::default();
    let mut t = Tracker::new(
        Some(baseline(Some("c0"), &["src/lib.rs"])),
        Rules::default(),
    );
    for _ in 0..3 {
        t.modify(&mut env, "src/lib.rs", 9);
    }
    env.content.insert("src/lib.rs".into(), "evil".into());
    t.close_write(&mut env, "src/lib.rs");
    t.close_write(&mut env, "src/lib.rs");
    assert_eq!(t.out.len(), 1);
    let f = t.out[0].file.as_ref().unwrap();
    assert_eq!((f.op, f.path.as_str()), ("write", "src/lib.rs"));
    assert_eq!(f.sha256_before.as_deref(), Some("sha(blob b-src/lib.rs)"));
    assert_eq!(f.sha256_after.as_deref(), Some("sha(evil)"));
    // The first writer seen is not an overwrite; the content is not the commit's: flagged now.
    assert_eq!(kinds(&t.out[0]), [detect::SOURCE_MODIFIED]);
    assert_eq!(t.out[0].process.as_ref().unwrap().pid, 9);
}

#[test]
fn second_writer_is_flagged_unless_expected() {
    let mut env = Fake::default();
    let rules = Rules {
        expected: vec!["rustfmt src/**".parse().unwrap()],
        ..Rules::default()
    };
    let mut t = Tracker::new(None, rules);
    t.create(&mut env, "src/a.rs", 1);
    t.close_write(&mut env, "src/a.rs");
    t.modify(&mut env, "src/a.rs", 3);
    t.close_write(&mut env, "src/a.rs");
    t.modify(&mut env, "src/a.rs", 9);
    t.close_write(&mut env, "src/a.rs");
    t.modify(&mut env, "src/a.rs", 9);
    t.close_write(&mut env, "src/a.rs");
    let found: Vec<Vec<&str>> = t.out.iter().map(kinds).collect();
    assert_eq!(
        found,
        [
            vec![],
            vec![],
            vec![detect::OVERWRITTEN],
            vec![] // the same process again
        ]
    );
    assert!(t.out[2].anomalies[0].detail.contains("rustfmt (pid 3)"));
    assert_eq!(op(&t.out[0]), ("create", "src/a.rs"));
}

#[test]
fn sed_in_place_is_a_create_then_a_rename_over_the_file() {
    let mut env = Fake::default();
    let mut t = Tracker::new(
        Some(baseline(Some("c0"), &["src/lib.rs"])),
        Rules::default(),
    );
    t.create(&mut env, "src/sedX", 2);
    t.modify(&mut env, "src/sedX", 2);
    env.content.insert("src/sedX".into(), "new".into());
    t.close_write(&mut env, "src/sedX");
    env.content.remove("src/sedX");
    env.content.insert("src/lib.rs".into(), "new".into());
    t.rename(&mut env, "src/sedX", "src/lib.rs", 2);
    assert_eq!(t.out.len(), 2);
    let f = t.out[1].file.as_ref().unwrap();
    assert_eq!((f.op, f.from.as_deref()), ("rename", Some("src/sedX")));
    assert_eq!(f.sha256_before.as_deref(), Some("sha(blob b-src/lib.rs)"));
    assert_eq!(f.sha256_after.as_deref(), Some("sha(new)"));
    assert_eq!(t.last_writer("src/lib.rs").unwrap().pid, 2);
}

#[test]
fn ignored_paths_are_counted_not_recorded() {
    let mut env = Fake::default();
    env.git_ignored.insert("target/".into());
    let rules = Rules {
        ignore: vec!["*.log".parse().unwrap()],
        ..Rules::default()
    };
    let mut t = Tracker::new(Some(baseline(Some("c0"), &["target/keep"])), rules);
    for key in [
        "target/x.o",
        "build.log",
        ".git/objects/ab/cd",
        ".git/hooks/pre-push.sample",
        "target/keep",
    ] {
        t.create(&mut env, key, 9);
        t.close_write(&mut env, key);
    }
    assert_eq!(t.counts.ignored, 4);
    // A tracked file is never ignored by .gitignore.
    assert_eq!(t.out.len(), 1);
    assert_eq!(op(&t.out[0]).1, "target/keep");
    t.create(&mut env, ".git/hooks/pre-commit", 9);
    t.close_write(&mut env, ".git/hooks/pre-commit");
    assert_eq!(t.out.len(), 2, "hooks run code: recorded");
    for pid in [1, 2] {
        t.rename(&mut env, ".git/config.lock", ".git/config", pid);
    }
    assert_eq!(t.out.len(), 4, "git config is recorded");
    assert!(
        t.out[3].anomalies.is_empty(),
        "one git config after another is no overwrite"
    );
}

#[test]
fn workflow_changes_are_flagged_but_not_the_checkout() {
    let mut env = Fake::default();
    let mut t = Tracker::new(None, Rules::default());
    // The checkout (no commit yet): creates are not flagged.
    t.create(&mut env, ".github/workflows/ci.yml", 1);
    t.close_write(&mut env, ".github/workflows/ci.yml");
    assert!(t.out[0].anomalies.is_empty());
    t.baseline = Some(baseline(Some("c0"), &[".github/workflows/ci.yml"]));
    t.create(&mut env, ".github/workflows/evil.yml", 9);
    t.close_write(&mut env, ".github/workflows/evil.yml");
    assert_eq!(kinds(&t.out[1]), [detect::WORKFLOW_MODIFIED]);
    t.delete(&mut env, ".github/workflows/ci.yml", 9);
    assert_eq!(kinds(&t.out[2]), [detect::WORKFLOW_MODIFIED]);
}

#[test]
fn warden_files_and_outside_processes() {
    let mut env = Fake::default();
    env.outside.insert(77);
    let mut t = Tracker::new(None, Rules::default());
    t.modify(&mut env, "/run/warden/cg-1/state.json", 77);
    t.close_write(&mut env, "/run/warden/cg-1/state.json");
    assert_eq!(kinds(&t.out[0]), [detect::WARDEN_TAMPERED]);
    assert!(t.out[0].flags.contains(&"outside-job".to_string()));
    // Another Warden session (the same executable) restoring the trust store is not tampering.
    t.own_exe = Some("/usr/bin/sh".into());
    t.modify(&mut env, "/etc/ssl/certs/ca-certificates.crt", 78);
    t.close_write(&mut env, "/etc/ssl/certs/ca-certificates.crt");
    assert_eq!(t.out.len(), 1);
}

#[test]
fn chmod_only_when_the_mode_changes() {
    let mut env = Fake::default();
    let mut t = Tracker::new(Some(baseline(Some("c0"), &["run.sh"])), Rules::default());
    env.modes.insert("run.sh".into(), 0o644);
    t.attrib(&mut env, "run.sh", 9); // touch: same exec bit as git's
    assert!(t.out.is_empty());
    env.modes.insert("run.sh".into(), 0o755);
    t.attrib(&mut env, "run.sh", 9);
    let f = t.out[0].file.as_ref().unwrap();
    assert_eq!(
        (f.op, f.mode_before.as_deref(), f.mode_after.as_deref()),
        ("chmod", Some("0644"), Some("0755"))
    );
}

#[test]
fn end_of_job_names_the_last_writer_or_says_unknown() {
    let mut env = Fake::default();
    let rules = Rules {
        ignore: vec!["vendor/".parse().unwrap()],
        ..Rules::default()
    };
    let files = [
        "src/a.rs",
        "src/b.rs",
        "vendor/x.rs",
        ".github/workflows/ci.yml",
    ];
    let mut t = Tracker::new(Some(baseline(Some("0123456789abcdef"), &files)), rules);
    t.modify(&mut env, "src/a.rs", 9);
    env.content.insert("src/a.rs".into(), "changed".into());
    t.close_write(&mut env, "src/a.rs");
    t.out.clear();
    let differing = files
        .iter()
        .map(|f| ('M', f.to_string()))
        .chain([('D', "src/c.rs".into())]);
    detect::end(&mut t, &mut env, "0123456789abcdef", differing.collect());
    let by: Vec<(&str, Vec<&str>)> = t.out.iter().map(|r| (op(r).1, kinds(r))).collect();
    assert_eq!(
        by,
        [
            ("src/a.rs", vec![detect::SOURCE_MODIFIED]),
            ("src/b.rs", vec![detect::SOURCE_MODIFIED]),
            (
                ".github/workflows/ci.yml",
                vec![detect::SOURCE_MODIFIED, detect::WORKFLOW_MODIFIED]
            ),
            ("src/c.rs", vec![detect::SOURCE_MODIFIED]),
        ]
    );
    assert_eq!(t.out[0].process.as_ref().unwrap().pid, 9);
    assert!(
        t.out[0].anomalies[0]
            .detail
            .contains("0123456789ab at the end")
    );
    assert_eq!(t.out[1].process, None);
    assert_eq!(
        t.out[1].reason.as_deref(),
        Some("unknown writer (before Warden started, or through a hard link or another mount)")
    );
    assert_eq!(op(&t.out[0]).0, "differs");
    assert_eq!(
        t.out[0].file.as_ref().unwrap().sha256_after.as_deref(),
        Some("sha(changed)")
    );
    assert_eq!(t.out[3].file.as_ref().unwrap().sha256_after, None);
    assert_eq!(t.counts.ignored, 1);
}

#[test]
fn expected_writer_entries_are_checked() {
    assert!("rustfmt".parse::<detect::ExpectedWriter>().is_ok());
    assert!(
        "/usr/bin/prettier src/**"
            .parse::<detect::ExpectedWriter>()
            .is_ok()
    );
    assert!("a b c".parse::<detect::ExpectedWriter>().is_err());
    assert!("x !y".parse::<detect::ExpectedWriter>().is_err());
    assert!("".parse::<detect::ExpectedWriter>().is_err());
    // The baseline's `file-writers` form.
    let w: detect::ExpectedWriter = "src/gen/**: protoc".parse().unwrap();
    let rules = Rules {
        expected: vec![w],
        ..Rules::default()
    };
    let protoc = Process {
        exe: "/usr/bin/protoc".into(),
        ..Process::default()
    };
    assert!(rules.expected(&protoc, "src/gen/a.rs"));
    assert!(!rules.expected(&protoc, "src/lib.rs"));
    assert!("src/**: ".parse::<detect::ExpectedWriter>().is_err());
    assert!("src/**: a b".parse::<detect::ExpectedWriter>().is_err());
}

#[test]
fn files_found_after_an_ignored_directory_moved_are_recorded_once() {
    let mut env = Fake::default();
    env.content.insert("src/sub/new.rs".into(), "x".into());
    let mut t = Tracker::new(None, Rules::default());
    t.create(&mut env, "src/sub/seen.rs", 9);
    t.close_write(&mut env, "src/sub/seen.rs");
    t.found(&mut env, "src/sub/seen.rs", 5);
    t.found(&mut env, "src/sub/new.rs", 5);
    t.found(&mut env, "src/sub/new.rs", 5);
    assert_eq!(t.out.len(), 2, "seen.rs was known; new.rs once");
    let f = t.out[1].file.as_ref().unwrap();
    assert_eq!(
        (f.op, f.sha256_after.as_deref()),
        ("create", Some("sha(x)"))
    );
    assert!(
        t.out[1]
            .reason
            .as_deref()
            .unwrap()
            .contains("moved out of an ignored")
    );
}
