//! The detections, each an anomaly on a `file` record with its evidence:
//!
//! | kind | when |
//! |---|---|
//! | `source-modified` | at the end, a file tracked by the checked-out commit differs from it (content, mode, or gone) |
//! | `workflow-modified` | a change under `.github/` (the checkout creating them excepted), or a tracked file there differs at the end |
//! | `overwritten-by-other-process` | a file one process wrote is written (or renamed over) by another |
//! | `warden-tampered` | a process other than Warden changed Warden's state, trust store or audit log |
//!
//! Expected writers (policy `file-monitoring.expected-writers`) raise neither
//! `overwritten-by-other-process` nor `source-modified` for the paths they are listed with.

use crate::audit::{FileChange, Kind, Process, Record};

use super::{
    glob::Glob,
    track::{Env, Tracker, Writer},
};

/// Anomaly kinds (stable names).
pub const SOURCE_MODIFIED: &str = "source-modified";
/// See the module table.
pub const WORKFLOW_MODIFIED: &str = "workflow-modified";
/// See the module table.
pub const OVERWRITTEN: &str = "overwritten-by-other-process";
/// See the module table.
pub const WARDEN_TAMPERED: &str = "warden-tampered";
/// The repository hides changes from the end-of-job comparison, or the comparison failed.
pub const COMPARISON_EVADED: &str = "source-comparison-evaded";

/// What the policy says about file monitoring.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    /// Paths never recorded nor flagged, only counted.
    pub ignore: Vec<Glob>,
    /// Processes expected to rewrite files.
    pub expected: Vec<ExpectedWriter>,
}

/// `EXE [GLOB]`: the executable (a full path, or a file name matching any directory) and,
/// optionally, the paths it is expected to write (default: all). `GLOB: EXE`, the baseline
/// file's `file-writers` form, is read too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedWriter {
    exe: String,
    paths: Option<Glob>,
}

impl std::str::FromStr for ExpectedWriter {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        // The baseline file's `file-writers` form (issue #9): `PATH-GLOB: EXE`.
        if let Some((glob, exe)) = s.split_once(": ") {
            let exe = exe.trim();
            if exe.is_empty() || exe.contains(char::is_whitespace) {
                return Err("expected PATH-GLOB: EXE (one executable)".into());
            }
            return Ok(ExpectedWriter {
                exe: exe.to_string(),
                paths: Some(glob.parse::<Glob>().map_err(|e| e.to_string())?),
            });
        }
        let mut words = s.split_whitespace();
        let exe = words
            .next()
            .ok_or("empty entry; expected EXE [PATH-GLOB]")?;
        let paths = match words.next() {
            Some(g) => Some(g.parse::<Glob>().map_err(|e| e.to_string())?),
            None => None,
        };
        if words.next().is_some() {
            return Err("expected EXE [PATH-GLOB] (one executable, at most one glob)".into());
        }
        Ok(ExpectedWriter {
            exe: exe.to_string(),
            paths,
        })
    }
}

impl ExpectedWriter {
    fn covers(&self, process: &Process, path: &str) -> bool {
        let name = process.exe.rsplit('/').next().unwrap_or(&process.exe);
        let exe_ok = if self.exe.contains('/') {
            process.exe == self.exe
        } else {
            name == self.exe
        };
        exe_ok && self.paths.as_ref().is_none_or(|g| g.matches(path))
    }
}

impl Rules {
    /// Is `process` an expected writer of `path`?
    pub fn expected(&self, process: &Process, path: &str) -> bool {
        self.expected.iter().any(|e| e.covers(process, path))
    }
}

fn under_github(path: &str) -> bool {
    path.starts_with(".github/")
}

fn who(p: &Process, pid: u32) -> String {
    format!("{} (pid {pid})", p.exe)
}

/// The detections on a change as it happens; `previous` is the path's last writer.
pub fn live(
    t: &Tracker,
    record: &mut Record,
    change: &FileChange,
    pid: u32,
    process: &Process,
    previous: Option<&Writer>,
) {
    let path = change.path.as_str();
    if path.starts_with('/') {
        let detail = format!(
            "{} {} Warden's own file {path}",
            who(process, pid),
            change.op
        );
        record.anomaly(WARDEN_TAMPERED, detail);
        return;
    }
    let from = change.from.as_deref().unwrap_or("");
    if under_github(path) || under_github(from) {
        // Before the workspace has a commit, the first writer of a file is the checkout.
        let checkout = t
            .baseline
            .as_ref()
            .and_then(|b| b.commit.as_ref())
            .is_none()
            && previous.is_none();
        if !checkout {
            let detail = format!("{} {} {path}", who(process, pid), change.op);
            record.anomaly(WORKFLOW_MODIFIED, detail);
        }
    }
    // Git's config is rewritten by one `git config` process after another (the checkout
    // action runs several): recorded, but not an overwrite. Sources are what the rule is for.
    let writes = matches!(change.op, "create" | "write" | "rename") && !path.starts_with(".git/");
    if let Some(prev) = previous.filter(|w| writes && w.pid != pid)
        && !t.rules.expected(process, path)
    {
        let detail = format!(
            "{path} was written by {}, then by {}",
            who(&prev.process, prev.pid),
            who(process, pid)
        );
        record.anomaly(OVERWRITTEN, detail);
    }
}

/// The repository was set up so that the end-of-job comparison can miss changes (see
/// `git::evasions`), or the comparison failed: one `file` record for `.git` with a
/// `source-comparison-evaded` anomaly listing the evidence.
pub fn evaded(t: &mut Tracker, commit: &str, problems: Vec<String>) {
    if problems.is_empty() {
        return;
    }
    let short: String = commit.chars().take(12).collect();
    let mut record = Record::new(Kind::File);
    record.anomaly(
        COMPARISON_EVADED,
        format!(
            "the comparison with commit {short} cannot be trusted: {}",
            problems.join("; ")
        ),
    );
    record.file = Some(FileChange {
        path: ".git".into(),
        op: "differs",
        ..FileChange::default()
    });
    t.push(record);
}

/// The end-of-job comparison: one `differs` record per tracked file `git diff` found
/// (`(status, path)`), attributed to its last writer seen.
pub fn end(t: &mut Tracker, env: &mut dyn Env, commit: &str, differing: Vec<(char, String)>) {
    let short: String = commit.chars().take(12).collect();
    for (status, path) in differing {
        if super::glob::any_match(&t.rules.ignore, &path) {
            t.counts.ignored += 1;
            continue;
        }
        let before = t
            .tracked(&path)
            .map(|tr| tr.blob.clone())
            .and_then(|b| env.blob_sha256(&b));
        let after = if status == 'D' {
            None
        } else {
            env.sha256(&path)
        };
        let what = match status {
            'D' => "is gone",
            'T' => "changed type",
            _ => "differs",
        };
        let mut record = Record::new(Kind::File);
        let writer = t.last_writer(&path).cloned();
        let by = match &writer {
            Some(w) => format!("last written by {}", who(&w.process, w.pid)),
            None => {
                "unknown writer (before Warden started, or through a hard link or another mount)"
                    .into()
            }
        };
        let expected = writer
            .as_ref()
            .is_some_and(|w| t.rules.expected(&w.process, &path));
        if expected {
            record.reason = Some(format!("{by}, an expected writer"));
        } else {
            let detail = format!("{path} {what} from commit {short} at the end of the job; {by}");
            record.anomaly(SOURCE_MODIFIED, detail);
        }
        if under_github(&path) {
            let detail = format!("{path} {what} from commit {short}; {by}");
            record.anomaly(WORKFLOW_MODIFIED, detail);
        }
        if writer.is_none() {
            record.reason = Some(by);
        }
        record.process = writer.map(|w| w.process);
        record.file = Some(FileChange {
            path,
            op: "differs",
            sha256_before: before,
            sha256_after: after,
            ..FileChange::default()
        });
        t.push(record);
    }
}
