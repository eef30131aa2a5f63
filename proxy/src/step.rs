//! Which workflow step a process belongs to, on a GitHub Actions runner.
//!
//! The runner's `Runner.Worker` process starts every step as a child of its own: a `run:` step
//! is a shell (`bash -e /home/runner/work/_temp/<uuid>.sh`) running a script file the runner
//! wrote, a JavaScript action is `node …/_actions/OWNER/REPO/REF/dist/index.js`, and every such
//! child has the step's `GITHUB_ACTION` (its `id:`, or `__run_2`, `__actions_checkout`, …) and,
//! for `uses:` steps, `GITHUB_ACTION_REPOSITORY` and `GITHUB_ACTION_REF` in its environment.
//! So the step of any process is found by walking up its ancestry to the child of
//! `Runner.Worker`, whose step is described once, when it execs (while it is alive: a step may
//! last milliseconds), and cached in the process table.
//!
//! The description is one string, `ID (WHAT)`: `checkout (actions/checkout@v4)`,
//! `__run_2 (run: make test)`. `WHAT` is the action's `owner/repo@ref` for `uses:` steps and
//! `run: ` plus the script's first non-empty line (credentials masked, at most
//! [`MAX_LINE`] characters) for `run:` steps; when the environment cannot be read the `ID (`…`)`
//! falls back to what the command line says.
//!
//! A process keeps the step it was forked into: a step that runs a program of its own named
//! `Runner.Worker` cannot relabel its children as another step (only a process without a step,
//! i.e. a child of the real worker, is described).

use std::{fs, path::Path};

use crate::audit::redact;

/// The runner process whose children are steps (its executable's file name, and its `comm`).
pub const WORKER: &str = "Runner.Worker";
/// Longest script line kept in a step's description.
pub const MAX_LINE: usize = 80;
/// At most this much of a script is read to find its first line.
const MAX_SCRIPT_READ: u64 = 64 * 1024;

/// Whether an executable path (or `[comm]`) is the runner's worker.
pub fn is_worker_exe(exe: &str) -> bool {
    let name = exe.rsplit('/').next().unwrap_or(exe);
    name == WORKER || exe == format!("[{WORKER}]")
}

/// Whether live process `pid` is the runner's worker, from `/proc` (for a worker started before
/// Warden, which the process table never saw exec).
pub fn proc_is_worker(pid: u32) -> bool {
    if let Ok(exe) = fs::read_link(format!("/proc/{pid}/exe"))
        && is_worker_exe(&exe.to_string_lossy())
    {
        return true;
    }
    fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim_end() == WORKER)
}

/// The description of the step process `pid`, which just exec'd with `argv`.
pub fn describe(pid: u32, argv: &[String]) -> String {
    let env = fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
    let var = |name: &str| environ_var(&env, name);
    describe_from(
        var("GITHUB_ACTION").as_deref(),
        var("GITHUB_ACTION_REPOSITORY").as_deref(),
        var("GITHUB_ACTION_REF").as_deref(),
        argv,
        first_line,
    )
}

/// [`describe`] with the environment and files given: pure, for tests.
fn describe_from(
    action: Option<&str>,
    repository: Option<&str>,
    reference: Option<&str>,
    argv: &[String],
    script_line: impl Fn(&str) -> Option<String>,
) -> String {
    let what = match (repository.filter(|r| !r.is_empty()), reference) {
        (Some(repo), Some(r)) if !r.is_empty() => format!("{repo}@{r}"),
        (Some(repo), _) => repo.to_string(),
        (None, _) => match action_from_argv(argv) {
            Some(uses) => uses,
            None => match argv.iter().skip(1).rev().find_map(|a| script_line(a)) {
                Some(line) => format!("run: {line}"),
                None => match argv.first() {
                    Some(cmd) => format!("run: {}", cmd.rsplit('/').next().unwrap_or(cmd)),
                    None => "run".to_string(),
                },
            },
        },
    };
    match action.filter(|a| !a.is_empty()) {
        Some(id) => format!("{id} ({what})"),
        None => what,
    }
}

/// `owner/repo@ref` from a JavaScript action's entry point (`…/_actions/OWNER/REPO/REF/…`).
fn action_from_argv(argv: &[String]) -> Option<String> {
    argv.iter().skip(1).find_map(|a| {
        let (_, rest) = a.split_once("/_actions/")?;
        let mut parts = rest.split('/');
        let (owner, repo, r) = (parts.next()?, parts.next()?, parts.next()?);
        (!owner.is_empty() && !repo.is_empty() && !r.is_empty())
            .then(|| format!("{owner}/{repo}@{r}"))
    })
}

/// The first non-empty line of the script at `path` (a regular file), trimmed, masked and cut
/// to [`MAX_LINE`] characters.
fn first_line(path: &str) -> Option<String> {
    let path = Path::new(path);
    if !path.is_absolute() || !fs::metadata(path).ok()?.is_file() {
        return None;
    }
    use std::io::Read;
    let mut text = Vec::new();
    fs::File::open(path)
        .ok()?
        .take(MAX_SCRIPT_READ)
        .read_to_end(&mut text)
        .ok()?;
    let text = String::from_utf8_lossy(&text);
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("#!"))?;
    Some(shorten(&mask_line(line)))
}

/// A script line with credentials masked: the runner writes `${{ secrets.X }}` into the script
/// file as its value, so a first line may hold one.
fn mask_line(line: &str) -> String {
    let words: Vec<String> = line.split_whitespace().map(str::to_string).collect();
    redact::argv(&words).join(" ")
}

fn shorten(line: &str) -> String {
    if line.chars().count() <= MAX_LINE {
        return line.to_string();
    }
    let mut cut: String = line.chars().take(MAX_LINE - 1).collect();
    cut.push('…');
    cut
}

/// `NAME`'s value in a `/proc/PID/environ` text (NUL-separated `NAME=VALUE`).
fn environ_var(environ: &[u8], name: &str) -> Option<String> {
    environ.split(|&b| b == 0).find_map(|kv| {
        let rest = kv.strip_prefix(name.as_bytes())?.strip_prefix(b"=")?;
        Some(String::from_utf8_lossy(rest).into_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn uses_steps_name_the_action() {
        let node = argv(&[
            "/x/node20/bin/node",
            "/w/_actions/actions/checkout/v4/dist/index.js",
        ]);
        let d = describe_from(
            Some("checkout"),
            Some("actions/checkout"),
            Some("v4"),
            &node,
            |_| None,
        );
        assert_eq!(d, "checkout (actions/checkout@v4)");
        // Without the environment, the entry point's path says the same.
        let d = describe_from(None, None, None, &node, |_| None);
        assert_eq!(d, "actions/checkout@v4");
    }

    #[test]
    fn run_steps_show_the_scripts_first_line() {
        let bash = argv(&["bash", "--noprofile", "--norc", "-e", "/w/_temp/abc.sh"]);
        let line = |p: &str| (p == "/w/_temp/abc.sh").then(|| "make test".to_string());
        assert_eq!(
            describe_from(Some("__run_2"), None, None, &bash, line),
            "__run_2 (run: make test)"
        );
        assert_eq!(
            describe_from(Some("__run"), Some(""), None, &bash, |_| None),
            "__run (run: bash)"
        );
        assert_eq!(describe_from(None, None, None, &[], |_| None), "run");
    }

    #[test]
    fn script_lines_are_masked_and_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sh");
        let long = "x".repeat(200);
        std::fs::write(
            &path,
            format!("#!/bin/sh\n\n  curl -H 'x' --token ghp_abcdef {long}\nnext\n"),
        )
        .unwrap();
        let line = first_line(path.to_str().unwrap()).unwrap();
        assert!(line.starts_with("curl -H 'x' --token *** x"), "{line}");
        assert!(!line.contains("ghp_"), "{line}");
        assert_eq!(line.chars().count(), MAX_LINE);
        assert_eq!(first_line("relative.sh"), None);
        assert_eq!(first_line(dir.path().to_str().unwrap()), None);
    }

    #[test]
    fn environ_and_worker_names() {
        let env = b"A=1\0GITHUB_ACTION=build\0GITHUB_ACTION_REF=\0";
        assert_eq!(environ_var(env, "GITHUB_ACTION").as_deref(), Some("build"));
        assert_eq!(environ_var(env, "GITHUB_ACTION_REF").as_deref(), Some(""));
        assert_eq!(environ_var(env, "GITHUB"), None);
        assert!(is_worker_exe(
            "/home/runner/actions-runner/bin/Runner.Worker"
        ));
        assert!(is_worker_exe("[Runner.Worker]"));
        assert!(!is_worker_exe("/usr/bin/Runner.Worker.sh"));
    }
}
