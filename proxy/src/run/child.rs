//! The command's process: started through a copy of `warden` that joins the job cgroup and then
//! execs the command, so not one instruction of the command runs outside the cgroup.

use std::{
    ffi::OsString,
    os::unix::process::{CommandExt, ExitStatusExt},
    path::Path,
    process::ExitStatus,
};

use nix::sys::resource::{Resource, getrlimit, setrlimit};

use super::EXIT_WARDEN_FAILURE;

/// The hidden subcommand the child runs: join the cgroup, then exec the command.
pub const ENTER_CGROUP: &str = "__enter-cgroup";

/// Raises this process's open-file limit to its hard limit (the proxy holds two descriptors per
/// connection, and sudo's usual soft limit of 1024 is reached at ~500 connections). Returns the
/// soft limit the command should get back.
pub fn raise_nofile() -> Option<u64> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    if soft < hard
        && let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard)
    {
        tracing::warn!(error = %e, "cannot raise the open-file limit");
    }
    Some(soft)
}

/// The `warden __enter-cgroup` command line for `cmd`.
pub fn command(
    procs: &Path,
    nofile: Option<u64>,
    cmd: &[OsString],
) -> std::io::Result<tokio::process::Command> {
    let exe = std::env::current_exe()?;
    let mut c = tokio::process::Command::new(exe);
    c.arg(ENTER_CGROUP).arg(procs);
    if let Some(n) = nofile {
        c.arg("--nofile").arg(n.to_string());
    }
    c.arg("--").args(cmd).kill_on_drop(false);
    Ok(c)
}

/// Child side of `warden run`: join the cgroup at `procs`, restore the open-file limit, then
/// become `cmd`. Returns only on failure, with the exit status to use (125 cgroup, 126 not
/// executable, 127 not found, as `env` does).
pub fn enter_cgroup_and_exec(procs: &Path, nofile: Option<u64>, cmd: &[OsString]) -> i32 {
    if let Err(e) = std::fs::write(procs, std::process::id().to_string()) {
        eprintln!("warden: cannot join cgroup {}: {e}", procs.display());
        return EXIT_WARDEN_FAILURE;
    }
    if let (Some(soft), Ok((_, hard))) = (nofile, getrlimit(Resource::RLIMIT_NOFILE)) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, soft.min(hard), hard);
    }
    let Some((prog, args)) = cmd.split_first() else {
        eprintln!("warden: no command given");
        return EXIT_WARDEN_FAILURE;
    };
    let e = std::process::Command::new(prog).args(args).exec();
    eprintln!("warden: cannot run {}: {e}", prog.to_string_lossy());
    if e.kind() == std::io::ErrorKind::NotFound {
        127
    } else {
        126
    }
}

/// `warden run`'s exit status for the command's: its code, or 128+N when killed by signal N.
pub fn exit_code(status: ExitStatus) -> i32 {
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(EXIT_WARDEN_FAILURE)
}
