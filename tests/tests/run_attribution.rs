//! `warden run` names the process behind each connection: its pid, parent, executable, command
//! line and the chain of executables between it and the job's command, also when shells fork
//! without exec, run jobs in the background, nest, or when the process is gone before its
//! connection ends.
//!
//! Needs root (skips loudly otherwise); each test builds its own namespace and origins.

use std::time::Duration;

use serde_json::Value;
use tests::{
    Netns, Origins, RunOutput, WardenRun, assert_run, assert_run_eq, audit, clients,
    skip_unless_root,
};

/// Deadline for one `warden run`; passing runs take a few seconds.
const T: Duration = Duration::from_secs(30);

#[test]
fn forking_shell_children_attributed() {
    if skip_unless_root("forking_shell_children_attributed") {
        return;
    }
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    let ca = origins.ca_pem_path();
    let url = |path: &str| format!("http://http.example/{path}");
    let mut steps = vec!["echo top $$".to_owned()];
    // `( …; exit $? ) &` forks a subshell that is not exec'd, which then forks curl (a curl
    // last in the subshell might be exec'd in its place).
    for path in ["bg1", "bg2", "bg3"] {
        steps.push(format!("({}; exit $?) &", clients::curl(&url(path), &ca)));
    }
    steps.push("wait".into());
    // Three distinct shells, so the order of the ancestry shows: the job's `sh` runs bash, which
    // runs dash, which runs curl. Each runs another command after its child, so none execs
    // its child in its own place.
    let inner = format!("{}; exit $?", clients::curl(&url("nested"), &ca));
    let middle = format!("dash -c {}; exit $?", clients::quote(&inner));
    steps.push(format!("bash -c {}", clients::quote(&middle)));
    steps.push("echo done".into());
    let out = WardenRun::new(&netns)
        .timeout(T)
        .cmd(["sh", "-c", &clients::script(&steps)])
        .run()
        .unwrap();
    out.assert_success();
    for path in ["bg1", "bg2", "bg3", "nested"] {
        let said = format!("hello from http-origin path=/{path}");
        assert_run!(out, out.stdout.contains(&said), "curl said {said:?}");
    }
    let top = said_number(&out, "top");

    let by_path = |path: &str| {
        let record = out.one_connection(path, |r| r["http"]["url"] == format!("/{path}"));
        assert_run_eq!(out, audit::exe_name(record), "curl", "exe of {record}");
        let argv = audit::strings(&record["process"]["argv"]);
        assert_run!(out, argv.contains(&url(path).as_str()), "argv: {record}");
        record
    };
    let mut pids = Vec::new();
    let mut subshells = Vec::new();
    for path in ["bg1", "bg2", "bg3"] {
        let record = by_path(path);
        let (pid, ppid) = (pid_of(&out, record, "pid"), pid_of(&out, record, "ppid"));
        pids.push(pid);
        subshells.push(ppid);
        assert_run!(
            out,
            ppid != top && ppid != pid,
            "the parent of {path} is its subshell, not the job's shell {top}: {record}"
        );
        // The subshell is a fork of the job's shell: same executable, one level down.
        let ancestry = audit::strings(&record["process"]["ancestry"]);
        assert_run!(
            out,
            ancestry.len() == 2 && ancestry.iter().all(|exe| exe.ends_with("/sh")),
            "ancestry of {path} is [subshell, job's sh]: {record}"
        );
    }
    subshells.sort_unstable();
    subshells.dedup();
    assert_run_eq!(out, subshells.len(), 3, "three distinct subshells");

    let nested = by_path("nested");
    pids.push(pid_of(&out, nested, "pid"));
    let ancestry = audit::strings(&nested["process"]["ancestry"]);
    let shells: Vec<&str> = ancestry
        .iter()
        .map(|exe| exe.rsplit('/').next().unwrap_or(exe))
        .collect();
    assert_run_eq!(
        out,
        shells,
        ["dash", "bash", "sh"],
        "ancestry of the nested curl, parent first: {nested}"
    );
    assert_run!(
        out,
        pid_of(&out, nested, "ppid") != top,
        "the nested curl's parent is dash: {nested}"
    );

    pids.sort_unstable();
    pids.dedup();
    assert_run_eq!(out, pids.len(), 4, "each curl has its own pid");
    assert_run_eq!(out, audit::connections(&out.records).len(), 4, "4 records");
    assert_run_eq!(out, origins.http().connections(), 4, "4 connections");
    out.assert_bracketed();
}

#[test]
fn short_lived_process_attributed() {
    if skip_unless_root("short_lived_process_attributed") {
        return;
    }
    const LEN: usize = 1000;
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    let script = clients::script(&[
        "echo shell $$".to_owned(),
        clients::python_send_and_exit("raw.example", 7, LEN),
        "echo after".to_owned(),
    ]);
    let out = WardenRun::new(&netns)
        .timeout(T)
        .cmd(["sh", "-c", &script])
        .run()
        .unwrap();
    out.assert_success();
    let shell = said_number(&out, "shell");
    let python = said_number(&out, "pid");
    assert_run_eq!(out, said_number(&out, "ppid"), shell, "python's parent");

    let record = out.one_connection("the python that left at once", |r| {
        r["dst"]["ip"] == "203.0.113.10" && r["dst"]["port"] == 7
    });
    assert_run!(
        out,
        audit::exe_name(record).starts_with("python3"),
        "exe of {record}"
    );
    assert_run_eq!(out, pid_of(&out, record, "pid"), python, "pid of {record}");
    assert_run_eq!(out, pid_of(&out, record, "ppid"), shell, "ppid of {record}");
    let argv = audit::strings(&record["process"]["argv"]);
    assert_run!(out, argv.contains(&"raw.example"), "argv of {record}");
    let ancestry = audit::strings(&record["process"]["ancestry"]);
    assert_run!(
        out,
        ancestry.len() == 1 && audit::is_shell(ancestry[0]),
        "ancestry of {record}"
    );
    assert_run_eq!(out, record["bytes"]["up"], LEN, "bytes.up of {record}");
    assert_run_eq!(out, origins.echo().connections(), 1, "the echo was reached");
    out.assert_bracketed();
}

/// The number after `word ` in the job's stdout (`echo top $$` → `top 1234`).
#[track_caller]
fn said_number(out: &RunOutput, word: &str) -> u64 {
    out.stdout
        .split_whitespace()
        .skip_while(|w| *w != word)
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the job did not say `{word} <number>`:\n{out}"))
}

/// `process.pid` or `process.ppid` of a record.
#[track_caller]
fn pid_of(out: &RunOutput, record: &Value, key: &str) -> u64 {
    record["process"][key]
        .as_u64()
        .unwrap_or_else(|| panic!("no process.{key} in {record}\n{out}"))
}
