//! The `warden` command line: parses arguments, sets up logging, calls the library.
#![forbid(unsafe_code)]

use std::{ffi::OsString, path::PathBuf, process::ExitCode};

use clap::{Args, Parser, Subcommand};
use proxy::{
    config::{self, PolicyFlags},
    daemon, dns, files,
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
    /// Inspect TLS: read every HTTPS request (full URL) with a CA made for this run and trusted
    /// for the job (docs/inspection.md). Policy key `tls-inspection`.
    #[arg(long, overrides_with = "no_tls_inspection")]
    tls_inspection: bool,
    /// Do not inspect TLS (overrides the policy file).
    #[arg(long, overrides_with = "tls_inspection")]
    no_tls_inspection: bool,
    /// Hosts never inspected (names or `*.` wildcards, separated like allowed endpoints);
    /// repeatable. Policy key `no-inspect`.
    #[arg(long, value_name = "LIST")]
    no_inspect: Vec<String>,
    /// Strict mode: on the hosts these URL rules name, only matching requests are allowed
    /// (`[METHOD ]https://host/path`, `*` within a segment, `**` across; separated by commas or
    /// newlines); those hosts are inspected. Repeatable. Policy key `allowed-urls`.
    #[arg(long, value_name = "LIST")]
    allowed_urls: Vec<String>,
    /// An environment variable holding a secret to keep from hosts it does not belong to
    /// (docs/exfiltration.md); repeatable. Policy key `secret-env`.
    #[arg(long, value_name = "NAME")]
    secret_env: Vec<String>,
    /// A file of secrets: a JSON object of names to values, or NAME=VALUE lines.
    #[arg(long, value_name = "FILE")]
    secret_file: Option<PathBuf>,
    /// Flag destinations that receive more than this (e.g. 50MiB) over the job. Policy key
    /// `upload-budget`.
    #[arg(long, value_name = "SIZE")]
    upload_budget: Option<String>,
}

impl PolicyArgs {
    /// The flags, with the built-in allowances on unless asked otherwise when `builtin_default`.
    fn flags(&self, builtin_default: bool) -> PolicyFlags {
        PolicyFlags {
            file: self.policy.clone(),
            mode: self.egress_policy,
            allowed_endpoints: self.allowed_endpoints.clone(),
            builtin: if builtin_default {
                !self.no_builtin
            } else {
                self.builtin && !self.no_builtin
            },
            tls_inspection: match (self.tls_inspection, self.no_tls_inspection) {
                (true, _) => Some(true),
                (_, true) => Some(false),
                _ => None,
            },
            no_inspect: self.no_inspect.clone(),
            allowed_urls: self.allowed_urls.clone(),
            secret_env: self.secret_env.clone(),
            secret_file: self.secret_file.clone(),
            upload_budget: self.upload_budget.clone(),
        }
    }
}

/// Warden's resolver: on unless `--no-dns`.
#[derive(Debug, Args)]
struct DnsArgs {
    /// Leave DNS alone: lookups are neither seen, recorded nor policed (not recommended; a
    /// warning says so). Without it every port-53 query of the job goes through Warden.
    #[arg(long)]
    no_dns: bool,
    /// Forward the job's lookups to these servers (ADDR, ADDR:PORT or [V6]:PORT; repeatable or
    /// comma-separated) instead of the machine's resolvers.
    #[arg(long, value_name = "ADDR")]
    dns_upstream: Vec<String>,
}

/// Verifying servers under TLS inspection.
#[derive(Debug, Args)]
struct InspectArgs {
    /// Also trust this CA (PEM) when verifying servers under inspection (a private CA);
    /// repeatable. Servers are otherwise verified against the roots as they were before
    /// Warden's CA was added.
    #[arg(long, value_name = "FILE")]
    upstream_ca: Vec<PathBuf>,
}

/// File monitoring: source-tamper detection in a workspace.
#[derive(Debug, Args)]
struct FilesArgs {
    /// Watch DIR (the job's checkout) for the whole run: every change to a file in it becomes a
    /// `file` record naming the process; source tampering is flagged (docs/file-monitoring.md).
    /// Policy key `file-monitoring` lists paths to ignore and expected writers.
    #[arg(long, value_name = "DIR")]
    workspace: Option<PathBuf>,
    /// Do not watch the workspace (overrides --workspace).
    #[arg(long)]
    no_file_monitoring: bool,
    /// The job's baseline (docs/baseline.md): its `file-writers` are expected writers.
    #[arg(long, value_name = "FILE")]
    baseline: Option<PathBuf>,
}

impl FilesArgs {
    /// File monitoring's options (`None`: off), with the policy's rules.
    fn options(&self, rules: &files::Rules) -> Result<Option<files::Options>, Vec<String>> {
        let Some(ws) = &self.workspace else {
            return Ok(None);
        };
        if self.no_file_monitoring {
            eprintln!("warden: --no-file-monitoring: the workspace is not watched");
            return Ok(None);
        }
        let workspace =
            files::check_workspace(ws).map_err(|e| vec![format!("--workspace: {e}")])?;
        let mut rules = rules.clone();
        if let Some(path) = &self.baseline {
            let baseline = proxy::baseline::Baseline::load(path)
                .map_err(|e| vec![format!("--baseline: {e}")])?;
            for entry in &baseline.file_writers {
                let writer = entry.parse().map_err(|e| {
                    vec![format!(
                        "--baseline {}: file-writers: {entry:?}: {e}",
                        path.display()
                    )]
                })?;
                rules.expected.push(writer);
            }
        }
        Ok(Some(files::Options { workspace, rules }))
    }
}

impl DnsArgs {
    /// The DNS layer's options (`None`: off), or what is wrong with `--dns-upstream`.
    fn options(&self) -> Result<Option<dns::Options>, Vec<String>> {
        if self.no_dns {
            if !self.dns_upstream.is_empty() {
                return Err(vec!["--dns-upstream cannot be used with --no-dns".into()]);
            }
            eprintln!("warden: --no-dns: the job's DNS lookups are not seen, recorded or policed");
            return Ok(None);
        }
        let upstreams = if self.dns_upstream.is_empty() {
            None
        } else {
            Some(dns::Upstreams::parse(&self.dns_upstream).map_err(|e| vec![e.to_string()])?)
        };
        Ok(Some(dns::Options { upstreams }))
    }
}

/// What `start` (and the daemon it spawns) take.
#[derive(Debug, Args)]
struct StartArgs {
    /// The cgroup to enforce on (a directory under the cgroup v2 mount). Default: the cgroup v2
    /// root, i.e. the whole machine.
    #[arg(long, value_name = "PATH")]
    cgroup: Option<PathBuf>,
    /// Where to write the audit log. Default: a new file in the working directory.
    #[arg(long, value_name = "FILE")]
    audit_log: Option<PathBuf>,
    #[command(flatten)]
    policy: PolicyArgs,
    #[command(flatten)]
    dns: DnsArgs,
    #[command(flatten)]
    inspect: InspectArgs,
    #[command(flatten)]
    files: FilesArgs,
    /// After start, print the environment later steps need (`NAME=VALUE` lines, for
    /// `$GITHUB_ENV`): the CA bundles under TLS inspection.
    #[arg(long)]
    print_env: bool,
    /// This (non-root) user may fetch the audit log and status with `warden log`, over a socket
    /// that takes nothing else: how the GitHub Action's post step reads the log once
    /// `disable-sudo` took root away, without being able to stop enforcement.
    #[arg(long, value_name = "UID")]
    reader_uid: Option<u32>,
}

impl StartArgs {
    /// The daemon's options, or the policy's problems. Built-in allowances are on by default: a
    /// daemon usually guards a whole runner.
    fn options(&self) -> Result<daemon::StartOptions, Vec<String>> {
        let policy = config::policy(&self.policy.flags(true))?;
        let files = self.files.options(policy.file_monitoring())?;
        Ok(daemon::StartOptions {
            cgroup: self.cgroup.clone(),
            audit_log: self
                .audit_log
                .as_ref()
                .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone())),
            policy: policy.into(),
            dns: self.dns.options()?,
            upstream_ca: self.inspect.upstream_ca.clone(),
            print_env: self.print_env,
            reader_uid: self.reader_uid,
            files,
        })
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
        #[command(flatten)]
        dns: DnsArgs,
        #[command(flatten)]
        inspect: InspectArgs,
        #[command(flatten)]
        files: FilesArgs,
        /// Exit 3 when the command succeeded but a connection was blocked.
        #[arg(long)]
        fail_on_blocked: bool,
        /// The command to run and its arguments.
        #[arg(required = true, trailing_var_arg = true, value_name = "CMD")]
        cmd: Vec<OsString>,
    },
    /// Start a background daemon enforcing on a cgroup (default: the whole machine); returns once
    /// enforcement is on.
    Start(StartArgs),
    /// Stop a daemon: every record flushed, hooks detached, state cleaned up.
    Stop {
        /// Which daemon (needed only when several run).
        #[arg(long, value_name = "PATH")]
        cgroup: Option<PathBuf>,
    },
    /// Copy a daemon's audit log so far (root, or its `--reader-uid`); enforcement goes on.
    Log {
        /// Which daemon (required for the reader: `/run/warden` is not listable).
        #[arg(long, value_name = "PATH")]
        cgroup: Option<PathBuf>,
        /// Write the log here (created 0600) instead of stdout.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Is enforcement on? Since when, mode, counts, last error.
    Status {
        /// Which daemon (needed only when several run).
        #[arg(long, value_name = "PATH")]
        cgroup: Option<PathBuf>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Policy files.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// The job's egress lockfile: what it is expected to contact.
    #[command(subcommand)]
    Baseline(BaselineCommand),
    /// Render an audit log as a report: the job summary (markdown), JSON or one HTML page
    /// (docs/report.md). Several logs (or a directory of them) give the view across jobs.
    Report {
        /// The audit log (JSON lines); repeat it, or give directories, for the view across jobs.
        #[arg(long = "log", value_name = "FILE", required = true)]
        logs: Vec<PathBuf>,
        /// `markdown` (default), `json` or `html`.
        #[arg(long, value_name = "FORMAT", default_value = "markdown")]
        format: proxy::report::Format,
        /// Mark destinations this baseline does not list as `new-destination` anomalies.
        #[arg(long, value_name = "FILE")]
        baseline: Option<PathBuf>,
        /// Write the report here instead of stdout.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// The log was read from a daemon that still enforces: a missing stop record is
        /// expected.
        #[arg(long)]
        live: bool,
    },
    /// Internal: the daemon process `start` spawns.
    #[command(name = daemon::DAEMON, hide = true)]
    Daemon(StartArgs),
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
enum BaselineCommand {
    /// Add what the runs in the logs contacted to the baseline file (created if missing).
    Update {
        /// Audit logs (files, or directories of `*.jsonl`); repeatable.
        #[arg(long = "log", value_name = "AUDIT", required = true)]
        logs: Vec<PathBuf>,
        /// The baseline file (YAML).
        #[arg(long, value_name = "FILE")]
        baseline: PathBuf,
    },
    /// List the destinations in the logs the baseline does not have (exit 1 if any).
    Diff {
        /// Audit logs (files, or directories of `*.jsonl`); repeatable.
        #[arg(long = "log", value_name = "AUDIT", required = true)]
        logs: Vec<PathBuf>,
        /// The baseline file (YAML).
        #[arg(long, value_name = "FILE")]
        baseline: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Check a policy file: lists every problem with file, line and value (exit 2 if any).
    Check {
        /// The YAML policy file.
        file: PathBuf,
    },
    /// Print the block-mode policy that would have allowed exactly what a run did.
    Suggest {
        /// Audit logs (files, or directories of `*.jsonl`); repeatable.
        #[arg(long = "log", value_name = "AUDIT", required = true)]
        logs: Vec<PathBuf>,
        /// `policy` (a YAML policy file) or `action` (the action's `allowed-endpoints:` input).
        #[arg(long, value_name = "FORMAT", default_value = "policy", value_parser = ["policy", "action"])]
        format: String,
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
        Command::Baseline(command) => baseline_command(command),
        Command::Policy(PolicyCommand::Suggest { logs, format }) => {
            match proxy::logs::read_all(&logs) {
                Ok(logs) => {
                    let sources: Vec<String> =
                        logs.iter().map(|(p, _)| p.display().to_string()).collect();
                    let suggestion =
                        proxy::suggest::suggest(logs.iter().flat_map(|(_, records)| records));
                    let format = match format.as_str() {
                        "action" => proxy::suggest::Format::Action,
                        _ => proxy::suggest::Format::Policy,
                    };
                    print!("{}", suggestion.render(format, &sources));
                    0
                }
                Err(e) => {
                    eprintln!("warden: {e}");
                    2
                }
            }
        }
        Command::Report {
            logs,
            format,
            baseline,
            output,
            live,
        } => proxy::report::run(&proxy::report::Options {
            logs: &logs,
            format,
            output: output.as_deref(),
            live,
            baseline: baseline.as_deref(),
        }),
        Command::Start(args) => match args.options() {
            Ok(opts) => {
                let rest: Vec<OsString> = std::env::args_os().skip(2).collect();
                daemon::start(&opts, &rest)
            }
            Err(problems) => {
                for p in problems {
                    eprintln!("warden: {p}");
                }
                2
            }
        },
        Command::Daemon(args) => {
            init_tracing();
            match args.options() {
                Ok(opts) => daemon::daemon(&opts),
                Err(problems) => {
                    for p in problems {
                        eprintln!("warden: {p}");
                    }
                    2
                }
            }
        }
        Command::Stop { cgroup } => daemon::stop(cgroup.as_deref()),
        Command::Log { cgroup, output } => daemon::log(cgroup.as_deref(), output.as_deref()),
        Command::Status { cgroup, json } => daemon::status(cgroup.as_deref(), json),
        Command::Run {
            audit_log,
            policy,
            dns,
            inspect,
            files,
            fail_on_blocked,
            cmd,
        } => {
            init_tracing();
            let options = config::policy(&policy.flags(false)).and_then(|policy| {
                let watch = files.options(policy.file_monitoring())?;
                Ok((policy, dns.options()?, watch))
            });
            match options {
                Ok((policy, dns, files)) => run::run(RunOptions {
                    audit_log,
                    policy: policy.into(),
                    dns,
                    upstream_ca: inspect.upstream_ca,
                    fail_on_blocked,
                    files,
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

/// `warden baseline update|diff`.
fn baseline_command(command: BaselineCommand) -> i32 {
    use proxy::baseline::Baseline;
    let (logs, path, update) = match command {
        BaselineCommand::Update { logs, baseline } => (logs, baseline, true),
        BaselineCommand::Diff { logs, baseline } => (logs, baseline, false),
    };
    let result = (|| {
        let logs = proxy::logs::read_all(&logs)?;
        let records = || logs.iter().flat_map(|(_, r)| r);
        let mut baseline = match (path.exists(), update) {
            (false, true) => Baseline::default(),
            _ => Baseline::load(&path)?,
        };
        let new = baseline.new_destinations(records());
        for n in &new {
            let processes: Vec<&str> = n.processes.iter().map(String::as_str).collect();
            let steps: Vec<&str> = n.steps.iter().map(String::as_str).collect();
            println!(
                "new-destination {} ({} connection{}; {}{})",
                n.endpoint,
                n.count,
                if n.count == 1 { "" } else { "s" },
                processes.join(", "),
                if steps.is_empty() {
                    String::new()
                } else {
                    format!("; steps: {}", steps.join(", "))
                }
            );
        }
        if update {
            baseline.merge(Baseline::from_records(records()));
            std::fs::write(&path, baseline.render())
                .map_err(|e| format!("{}: cannot write it: {e}", path.display()))?;
            eprintln!(
                "warden: {}: {} destination{} ({} new)",
                path.display(),
                baseline.destinations.len(),
                if baseline.destinations.len() == 1 {
                    ""
                } else {
                    "s"
                },
                new.len()
            );
            Ok(0)
        } else {
            Ok(i32::from(!new.is_empty()))
        }
    })();
    result.unwrap_or_else(|e: String| {
        eprintln!("warden: {e}");
        2
    })
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
