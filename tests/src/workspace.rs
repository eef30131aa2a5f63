//! A throwaway git repository to serve as a job's workspace, for file-monitoring tests, and
//! helpers to read the `file` records Warden writes about it.
//!
//! [`TestRepo::new`] makes a real repository with a real `git` (a commit holding a Rust source,
//! a workflow and a `.gitignore`), so the tests exercise what Warden sees on a runner after the
//! checkout; [`TestRepo::empty`] is the workspace before it, and [`TestRepo::origin`] a
//! repository to clone into it. Hashes come from the `sha256sum` program, not from the code
//! under test.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use serde_json::Value;

/// The files of the commit [`TestRepo::new`] makes.
pub const FILES: &[(&str, &str)] = &[
    ("src/lib.rs", "pub fn answer() -> u32 {\n    42\n}\n"),
    ("src/main.rs", "fn main() {\n    println!(\"hello\");\n}\n"),
    (".github/workflows/ci.yml", "on: push\njobs: {}\n"),
    (".gitignore", "target/\n*.log\n"),
    ("README.md", "test repository\n"),
];

/// A git repository in a temporary directory, removed on drop.
pub struct TestRepo {
    dir: tempfile::TempDir,
}

fn git(dir: &Path, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=test", "-c", "user.email=test@example.com"])
        .args(args)
        .output()
        .context("run git")?;
    if !out.status.success() {
        bail!("git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

impl TestRepo {
    /// A repository with [`FILES`] committed.
    pub fn new() -> anyhow::Result<TestRepo> {
        let repo = TestRepo::empty()?;
        git(repo.path(), &["init", "-q", "-b", "main"])?;
        for (path, content) in FILES {
            let p = repo.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap_or(repo.path()))?;
            std::fs::write(p, content)?;
        }
        git(repo.path(), &["add", "-A"])?;
        git(repo.path(), &["commit", "-q", "-m", "initial"])?;
        Ok(repo)
    }

    /// An empty directory: the workspace before the checkout.
    pub fn empty() -> anyhow::Result<TestRepo> {
        let dir = tempfile::Builder::new().prefix("warden-ws-").tempdir()?;
        Ok(TestRepo { dir })
    }

    /// Where it is (canonical, as Warden reports paths).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The absolute path of `rel`.
    pub fn join(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
}

/// SHA-256 (hex) of `data`, by `sha256sum`.
pub fn sha256(data: &[u8]) -> String {
    use std::io::Write;
    let mut child = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sha256sum");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(data)
        .expect("write to sha256sum");
    let out = child.wait_with_output().expect("sha256sum output");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// The `file` records.
pub fn file_records(records: &[Value]) -> Vec<&Value> {
    crate::audit::of_kind(records, "file")
}

/// The `file` records about `path` with `op`.
pub fn changes<'a>(records: &'a [Value], path: &str, op: &str) -> Vec<&'a Value> {
    file_records(records)
        .into_iter()
        .filter(|r| r["file"]["path"] == path && r["file"]["op"] == op)
        .collect()
}

/// The anomaly kinds of a record.
pub fn anomaly_kinds(record: &Value) -> Vec<&str> {
    record["anomalies"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x["kind"].as_str()).collect())
        .unwrap_or_default()
}

/// Every record carrying an anomaly of `kind`.
pub fn with_anomaly<'a>(records: &'a [Value], kind: &str) -> Vec<&'a Value> {
    records
        .iter()
        .filter(|r| anomaly_kinds(r).contains(&kind))
        .collect()
}

/// What the `stop` record says about file monitoring.
pub fn stop_files(records: &[Value]) -> Option<&Value> {
    crate::audit::enforcement(records)
        .into_iter()
        .rfind(|r| r["enforcement"]["event"] == "stop")
        .map(|r| &r["enforcement"]["files"])
        .filter(|f| !f.is_null())
}
