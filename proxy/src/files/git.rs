//! What git says about the workspace: which files are tracked (the index, read once rather than
//! hashing the tree), which commit was checked out, the content a tracked file had in it, what
//! differs at the end, and which paths `.gitignore` excludes.
//!
//! Everything goes through the `git` program, with optional locks off so Warden never writes
//! the repository's index. The index is read with `git ls-files -s -z` (one process, ≈ 50 ms
//! for 50 000 files); blob contents are read only for files that changed.
//!
//! The repository is the job's: its `.git/config` can name programs git runs (`core.fsmonitor`,
//! clean filters, hooks) and the job can rewrite it at any time. Warden runs as root, so git
//! runs **as the workspace's owner** (never gaining what the job does not have), with a clean
//! environment, no system or global configuration, replace refs ignored, and fsmonitor and
//! hooks off. What would make git's comparison lie (assume-unchanged or skip-worktree bits,
//! replace refs, clean filters, a `HEAD` git cannot read) is itself reported ([`evasions`]).

use std::{
    collections::{HashMap, HashSet},
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Child, ChildStdin, ChildStdout, Command, Stdio},
};

/// Where git is looked for (not the job's `PATH`).
const SAFE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// `git -C WS`, as the owner of `WS`, in a clean environment (see the module documentation),
/// with optional locks off (no index refresh writes) and no pager or prompts.
fn git(ws: &Path) -> Command {
    use std::os::unix::{fs::MetadataExt, process::CommandExt};
    let mut c = Command::new("git");
    c.env_clear()
        .env("PATH", SAFE_PATH)
        .env("HOME", "/nonexistent")
        .env("LC_ALL", "C")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_NO_REPLACE_OBJECTS", "1")
        .env("GIT_OPTIONAL_LOCKS", "0")
        .env("GIT_TERMINAL_PROMPT", "0")
        .args([
            "-c",
            "core.fsmonitor=false",
            "-c",
            "core.hooksPath=/dev/null",
        ])
        .args(["-c", "core.untrackedCache=false", "-c", "safe.directory=*"])
        .arg("-C")
        .arg(ws)
        .stdin(Stdio::null())
        .stderr(Stdio::null());
    // `/proc/self` belongs to the process's effective user.
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    if root
        && let Ok(meta) = std::fs::metadata(ws)
        && meta.uid() != 0
    {
        // std drops root's supplementary groups before setuid.
        c.uid(meta.uid()).gid(meta.gid());
    }
    c
}

/// Is `ws` the top of a git work tree (has `.git`)?
pub fn is_repo(ws: &Path) -> bool {
    ws.join(".git").exists()
}

/// One tracked file in the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracked {
    /// `100644`, `100755`, `120000` (symlink), `160000` (submodule).
    pub mode: u32,
    /// The blob id.
    pub blob: String,
}

/// The index at one moment, and the commit checked out then.
#[derive(Debug, Clone, Default)]
pub struct Baseline {
    /// `HEAD`, when it resolves.
    pub commit: Option<String>,
    /// Path (relative, `/`-separated) → tracked entry.
    pub files: HashMap<String, Tracked>,
    /// Every directory holding a tracked file, at any depth (never ignored wholesale).
    pub dirs: HashSet<String>,
}

impl Baseline {
    /// Reads the index and `HEAD` of `ws`; `None` when it is not a repository (yet).
    pub fn read(ws: &Path) -> Option<Baseline> {
        if !is_repo(ws) {
            return None;
        }
        let out = git(ws).args(["ls-files", "-s", "-z"]).output().ok()?;
        if !out.status.success() {
            return None;
        }
        let files = parse_ls_files(&out.stdout);
        let commit = git(ws)
            .args(["rev-parse", "--verify", "-q", "HEAD"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .filter(|c| !c.is_empty());
        let dirs = dirs_of(files.keys());
        Some(Baseline {
            commit,
            files,
            dirs,
        })
    }
}

/// Every ancestor directory of `paths`.
pub fn dirs_of<'a>(paths: impl Iterator<Item = &'a String>) -> HashSet<String> {
    let mut dirs = HashSet::new();
    for p in paths {
        let mut at = p.len();
        while let Some(i) = p[..at].rfind('/') {
            if !dirs.insert(p[..i].to_string()) {
                break;
            }
            at = i;
        }
    }
    dirs
}

/// `MODE SP BLOB SP STAGE TAB PATH NUL`, repeated. Malformed entries are skipped.
pub fn parse_ls_files(out: &[u8]) -> HashMap<String, Tracked> {
    let mut files = HashMap::new();
    for entry in out.split(|&b| b == 0).filter(|e| !e.is_empty()) {
        let entry = String::from_utf8_lossy(entry);
        let Some((meta, path)) = entry.split_once('\t') else {
            continue;
        };
        let mut it = meta.split(' ');
        let (Some(mode), Some(blob)) = (it.next(), it.next()) else {
            continue;
        };
        let Ok(mode) = u32::from_str_radix(mode, 8) else {
            continue;
        };
        files.insert(
            path.to_string(),
            Tracked {
                mode,
                blob: blob.to_string(),
            },
        );
    }
    files
}

/// The content of blob `id`, if git has it.
pub fn blob(ws: &Path, id: &str) -> Option<Vec<u8>> {
    let out = git(ws).args(["cat-file", "blob", id]).output().ok()?;
    out.status.success().then_some(out.stdout)
}

/// Tracked paths whose content, mode or existence in the work tree differs from `commit`:
/// `(status letter, path)`, `M`, `T` or `D` (files the job added to the index are not tracked
/// by the commit and are left out). An error when git could not compare (the comparison then
/// says nothing, which must not read as "nothing differs").
pub fn differs(ws: &Path, commit: &str) -> Result<Vec<(char, String)>, String> {
    let out = git(ws)
        .args([
            "diff",
            "--no-ext-diff",
            "--no-textconv",
            "--no-renames",
            "--name-status",
            "-z",
            commit,
            "--",
        ])
        .output()
        .map_err(|e| format!("git diff could not run: {e}"))?;
    if !out.status.success() {
        return Err(format!("git diff against {commit} failed ({})", out.status));
    }
    Ok(parse_name_status(&out.stdout))
}

/// What in the repository would make the end-of-job comparison miss a change: index bits that
/// tell git not to look at a file, replace refs, clean filters other than Git LFS's. Each as
/// evidence in words.
pub fn evasions(ws: &Path) -> Vec<String> {
    let mut found = Vec::new();
    if let Ok(out) = git(ws).args(["ls-files", "-v", "-z"]).output() {
        let hidden: Vec<String> = out
            .stdout
            .split(|&b| b == 0)
            .filter(|e| e.len() > 2)
            .filter(|e| e[0].is_ascii_lowercase() || e[0] == b'S')
            .map(|e| String::from_utf8_lossy(&e[2..]).into_owned())
            .collect();
        if let Some(first) = hidden.first() {
            found.push(format!(
                "{} tracked file(s) are marked assume-unchanged or skip-worktree in the index \
                 (git then does not compare them), e.g. {first}",
                hidden.len()
            ));
        }
    }
    if let Ok(out) = git(ws)
        .args(["for-each-ref", "--format=%(refname)", "refs/replace/"])
        .output()
        && !out.stdout.is_empty()
    {
        found.push(format!(
            "replace refs make git show other commits than the ones checked out: {}",
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .replace('\n', ", ")
        ));
    }
    if let Ok(out) = git(ws)
        .args([
            "config",
            "--local",
            "--get-regexp",
            r"^filter\..*\.(clean|process)$",
        ])
        .output()
    {
        let text = String::from_utf8_lossy(&out.stdout);
        let odd: Vec<&str> = text
            .lines()
            .filter(|l| !(l.starts_with("filter.lfs.") && l.contains("git-lfs")))
            .collect();
        if !odd.is_empty() {
            found.push(format!(
                "clean filters in .git/config change what git compares: {}",
                odd.join("; ")
            ));
        }
    }
    found
}

/// `STATUS NUL PATH NUL`, repeated; only `M`, `T`, `D` kept.
pub fn parse_name_status(out: &[u8]) -> Vec<(char, String)> {
    let mut fields = out.split(|&b| b == 0);
    let mut found = Vec::new();
    while let (Some(status), Some(path)) = (fields.next(), fields.next()) {
        let Some(&letter) = status.first() else {
            break;
        };
        let letter = letter as char;
        if matches!(letter, 'M' | 'T' | 'D') {
            found.push((letter, String::from_utf8_lossy(path).into_owned()));
        }
    }
    found
}

/// `git check-ignore --stdin` kept running: one round trip per path asked. Patterns are applied
/// whether or not a path is tracked (`--no-index`); the caller knows what is tracked.
pub struct CheckIgnore {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl CheckIgnore {
    /// Starts it in `ws`; `None` if git is missing or `ws` is not a repository.
    pub fn start(ws: &Path) -> Option<CheckIgnore> {
        if !is_repo(ws) {
            return None;
        }
        let mut child = git(ws)
            .args(["check-ignore", "--stdin", "-z", "-v", "-n", "--no-index"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .ok()?;
        let stdin = child.stdin.take()?;
        let stdout = BufReader::new(child.stdout.take()?);
        Some(CheckIgnore {
            child,
            stdin,
            stdout,
        })
    }

    /// Is `path` (relative; directories end in `/`) excluded by a gitignore pattern? `None`
    /// when git stopped answering.
    pub fn ignored(&mut self, path: &str) -> Option<bool> {
        if path.contains(['\0', '\n']) {
            return Some(false);
        }
        self.stdin.write_all(path.as_bytes()).ok()?;
        self.stdin.write_all(b"\0").ok()?;
        self.stdin.flush().ok()?;
        // source NUL line NUL pattern NUL path NUL; source is empty when nothing matched.
        let mut fields = Vec::with_capacity(4);
        for _ in 0..4 {
            let mut f = Vec::new();
            self.stdout.read_until(0, &mut f).ok()?;
            if f.last() != Some(&0) {
                return None;
            }
            fields.push(f);
        }
        let pattern = &fields[2];
        // A matching negated pattern (`!keep.log`) means "not ignored".
        Some(fields[0].len() > 1 && !pattern.starts_with(b"!"))
    }
}

impl Drop for CheckIgnore {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `ws` made absolute and canonical (symlinks resolved), as fanotify paths will read.
pub fn canonical(ws: &Path) -> std::io::Result<PathBuf> {
    std::fs::canonicalize(ws)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ls_files_and_skips_garbage() {
        let out = b"100644 e69de29bb2d1d6434b8b29ae775ad8c2e48c5391 0\tsrc/a b.rs\0\
                    100755 aaaa 0\trun.sh\0garbage\0zz9 x 0\tbad\0";
        let files = parse_ls_files(out);
        assert_eq!(files.len(), 2);
        assert_eq!(files["src/a b.rs"].mode, 0o100644);
        assert_eq!(files["run.sh"].blob, "aaaa");
        let dirs = dirs_of(["a/b/c.rs".to_string(), "a/d.rs".into(), "e.rs".into()].iter());
        let mut dirs: Vec<_> = dirs.into_iter().collect();
        dirs.sort();
        assert_eq!(dirs, ["a", "a/b"]);
    }

    #[test]
    fn parses_name_status() {
        let out = b"M\0src/lib.rs\0A\0new.rs\0D\0gone.rs\0T\0link\0";
        assert_eq!(
            parse_name_status(out),
            [
                ('M', "src/lib.rs".to_string()),
                ('D', "gone.rs".into()),
                ('T', "link".into())
            ]
        );
        assert!(parse_name_status(b"M").is_empty());
    }
}
