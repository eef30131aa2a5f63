//! The `warden` command line: parses arguments, sets up logging, calls the library.
#![forbid(unsafe_code)]

use std::{ffi::OsString, path::PathBuf, process::ExitCode};

use clap::{Args, Parser, Subcommand};
use proxy::{
    config::{self, PolicyFlags},
    policy::Mode,
    run::{self, RunOptions},
};

/// Network and runtime security for CI runners.
#[derive(Debug, Parser)]
#[command(name = "warden", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the policy comes from. Flags override the file key by key.
#[derive(Debug, Args)]
struct PolicyArgs {
    /// YAML policy file (keys `mode`, `allowed-endpoints`; see docs/policy.md).
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// `audit` records what no rule allows; `block` refuses it. Default: audit.
    #[arg(long, value_name = "MODE")]
    egress_policy: Option<Mode>,
    /// Allowed endpoints, separated by whitespace, commas or newlines; repeatable.
    #[arg(long, value_name = "LIST")]
    allowed_endpoints: Vec<String>,
    /// Also allow what the CI runner itself needs (GitHub's Actions service and results storage,
    /// cloud metadata); records they allow are flagged `builtin`. Off for `run`.
    #[arg(long, overrides_with = "no_builtin")]
    builtin: bool,
    /// Do not apply the built-in allowances (the default for `run`).
    #[arg(long, overrides_with = "builtin")]
    no_builtin: bool,
}

impl From<PolicyArgs> for PolicyFlags {
    fn from(a: PolicyArgs) -> Self {
        PolicyFlags {
            file: a.policy,
            mode: a.egress_policy,
            allowed_endpoints: a.allowed_endpoints,
            builtin: a.builtin && !a.no_builtin,
        }
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a command with every outbound connection it makes recorded, and in block mode
    /// refused unless the policy allows it.
    Run {
        /// Where to write the audit log (JSON lines, appended). Default: a new
        /// `warden-<time>-<pid>.audit.jsonl` in the working directory.
        #[arg(long, value_name = "FILE")]
        audit_log: Option<PathBuf>,
        #[command(flatten)]
        policy: PolicyArgs,
        /// Exit 3 when the command succeeded but a connection was blocked.
        #[arg(long)]
        fail_on_blocked: bool,
        /// The command to run and its arguments.
        #[arg(required = true, trailing_var_arg = true, value_name = "CMD")]
        cmd: Vec<OsString>,
    },
    /// Policy files.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Internal: join a cgroup, then exec the command (the child side of `run`).
    #[command(name = run::ENTER_CGROUP, hide = true)]
    EnterCgroup {
        procs: PathBuf,
        #[arg(long)]
        nofile: Option<u64>,
        #[arg(last = true, required = true)]
        cmd: Vec<OsString>,
    },
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Check a policy file: lists every problem with file, line and value (exit 2 if any).
    Check {
        /// The YAML policy file.
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // Help and version are successes; a bad command line is Warden's failure for `run`.
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    ExitCode::SUCCESS
                }
                _ if std::env::args().nth(1).as_deref() == Some("run") => {
                    exit(run::EXIT_WARDEN_FAILURE)
                }
                _ => ExitCode::from(2),
            };
        }
    };
    let code = match cli.command {
        Command::EnterCgroup { procs, nofile, cmd } => {
            run::enter_cgroup_and_exec(&procs, nofile, &cmd)
        }
        Command::Policy(PolicyCommand::Check { file }) => config::check(&file),
        Command::Run {
            audit_log,
            policy,
            fail_on_blocked,
            cmd,
        } => {
            init_tracing();
            match config::policy(&policy.into()) {
                Ok(policy) => run::run(RunOptions {
                    audit_log,
                    policy: policy.into(),
                    fail_on_blocked,
                    cmd,
                }),
                Err(problems) => {
                    for p in problems {
                        eprintln!("warden: {p}");
                    }
                    run::EXIT_WARDEN_FAILURE
                }
            }
        }
    };
    exit(code)
}

fn exit(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// Logs go to stderr; `WARDEN_LOG` takes tracing's filter syntax (default `warn`).
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WARDEN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
