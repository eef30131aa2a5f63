//! The GitHub Action under test, run as the runner runs it.
//!
//! [`ActionJob`] is one job: a directory standing in for the runner's (`RUNNER_TEMP`,
//! `GITHUB_WORKSPACE`, and the files the runner reads back: `GITHUB_ENV`, `GITHUB_OUTPUT`,
//! `GITHUB_STATE`, `GITHUB_STEP_SUMMARY`), the action's inputs as `INPUT_*` variables, and
//! three phases: [`ActionJob::main`] runs `node action/main.js`, [`ActionJob::steps`] runs the
//! job's steps as children of a stand-in `Runner.Worker` (a copy of `sh` by that name, so the
//! kernel's exe and comm match the real worker's) inside the test cgroup, each with the
//! `GITHUB_ACTION` (and for `uses:` steps `GITHUB_ACTION_REPOSITORY`/`_REF`) the runner gives
//! it and with `$GITHUB_ENV` applied as the runner applies it, and [`ActionJob::post`] runs
//! `node action/post.js` with main's saved state as `STATE_*`. Everything runs in the test's
//! [`Netns`]. The `cgroup` input is always the test's own cgroup: the action's default (the
//! whole machine) must never be used here. Dropping the job stops a daemon a failed test left.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde_json::Value;

use crate::clients::quote;
use crate::process::{self, Captured, Running};
use crate::warden::{read_records, try_warden_bin};
use crate::{Netns, TestCgroup};

/// Deadline for main or post (post takes stop's 5 s grace at most with connections open).
pub const PHASE_TIMEOUT: Duration = Duration::from_secs(60);

/// The repository's `action/` directory.
pub fn action_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../action")
        .canonicalize()
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../action"))
}

/// One step of the job.
#[derive(Debug, Clone)]
pub enum Step {
    /// A `run:` step: its `GITHUB_ACTION` (`id:` or `__run_N`) and its script.
    Run {
        /// `GITHUB_ACTION`.
        id: String,
        /// The script the runner writes to a file in `_temp` and runs with `sh -e FILE`.
        script: String,
    },
    /// A `uses:` step: its `GITHUB_ACTION`, `owner/repo`, ref, and the script its entry point
    /// (under `_actions/owner/repo/ref/`) runs.
    Uses {
        /// `GITHUB_ACTION`.
        id: String,
        /// `owner/repo`.
        repository: String,
        /// The ref (`v4`).
        reference: String,
        /// What it does.
        script: String,
    },
}

/// One job of the action. See the module documentation.
pub struct ActionJob<'a> {
    netns: &'a Netns,
    cgroup: &'a TestCgroup,
    dir: tempfile::TempDir,
    inputs: BTreeMap<String, String>,
    env: BTreeMap<String, String>,
}

impl<'a> ActionJob<'a> {
    /// A job in `netns` whose `cgroup` input is `cgroup` and `binary-path` the warden under
    /// test.
    pub fn new(netns: &'a Netns, cgroup: &'a TestCgroup) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("warden-action-")
            .tempdir()?;
        for sub in ["temp", "workspace", "runner/bin", "files"] {
            fs::create_dir_all(dir.path().join(sub))?;
        }
        for file in ["env", "output", "state", "summary"] {
            fs::write(dir.path().join("files").join(file), "")?;
        }
        // The stand-in worker: `sh` by the worker's name.
        fs::copy("/bin/sh", dir.path().join("runner/bin/Runner.Worker"))?;
        let mut job = ActionJob {
            netns,
            cgroup,
            dir,
            inputs: BTreeMap::new(),
            env: BTreeMap::new(),
        };
        job.input("cgroup", &cgroup.path().to_string_lossy());
        job.input("binary-path", &try_warden_bin()?.to_string_lossy());
        Ok(job)
    }

    /// Sets input `name` (`with:` in the workflow).
    pub fn input(&mut self, name: &str, value: &str) -> &mut Self {
        self.inputs.insert(name.to_string(), value.to_string());
        self
    }

    /// Removes input `name`.
    pub fn remove_input(&mut self, name: &str) -> &mut Self {
        self.inputs.remove(name);
        self
    }

    /// Sets a variable every phase sees (`GITHUB_EVENT_NAME`, …).
    pub fn env(&mut self, name: &str, value: &str) -> &mut Self {
        self.env.insert(name.to_string(), value.to_string());
        self
    }

    /// `RUNNER_TEMP`.
    pub fn runner_temp(&self) -> PathBuf {
        self.dir.path().join("temp")
    }

    /// `GITHUB_WORKSPACE`.
    pub fn workspace(&self) -> PathBuf {
        self.dir.path().join("workspace")
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join("files").join(name)
    }

    /// What the job wrote to `$GITHUB_STEP_SUMMARY`.
    pub fn summary(&self) -> String {
        fs::read_to_string(self.file("summary")).unwrap_or_default()
    }

    /// `$GITHUB_ENV` as written.
    pub fn github_env(&self) -> String {
        fs::read_to_string(self.file("env")).unwrap_or_default()
    }

    /// `$GITHUB_OUTPUT` parsed (`name=value` lines; heredoc values too).
    pub fn outputs(&self) -> BTreeMap<String, String> {
        parse_key_values(&fs::read_to_string(self.file("output")).unwrap_or_default())
    }

    /// `$GITHUB_STATE` parsed.
    pub fn state(&self) -> BTreeMap<String, String> {
        parse_key_values(&fs::read_to_string(self.file("state")).unwrap_or_default())
    }

    /// The variables every phase of the action sees.
    fn runner_env(&self) -> Vec<(OsString, OsString)> {
        let mut env: Vec<(OsString, OsString)> = vec![
            ("RUNNER_TEMP".into(), self.runner_temp().into()),
            ("GITHUB_WORKSPACE".into(), self.workspace().into()),
            ("GITHUB_ENV".into(), self.file("env").into()),
            ("GITHUB_OUTPUT".into(), self.file("output").into()),
            ("GITHUB_STATE".into(), self.file("state").into()),
            ("GITHUB_STEP_SUMMARY".into(), self.file("summary").into()),
            ("GITHUB_RUN_ID".into(), "4242".into()),
            ("GITHUB_ACTIONS".into(), "true".into()),
            ("RUNNER_OS".into(), "Linux".into()),
        ];
        for (k, v) in &self.env {
            env.push((k.into(), v.into()));
        }
        env
    }

    fn node(
        &self,
        script: &str,
        action_id: &str,
        extra: &[(String, String)],
        uid: Option<u32>,
    ) -> std::process::Command {
        // Passed on `env`'s command line: the namespace's entry shell (dash) would drop
        // variables whose names are not shell identifiers, as `INPUT_EGRESS-POLICY` is not;
        // the runner passes them to node as they are.
        let mut args: Vec<OsString> = self
            .inputs
            .iter()
            .map(|(name, value)| {
                format!("INPUT_{}={value}", name.replace(' ', "_").to_uppercase()).into()
            })
            .collect();
        args.push(format!("GITHUB_ACTION={action_id}").into());
        args.extend(
            extra
                .iter()
                .map(|(k, v)| OsString::from(format!("{k}={v}"))),
        );
        args.push("node".into());
        args.push(action_dir().join(script).into());
        let mut cmd = match uid {
            // As a user, after the namespace's bind mounts (which need root) are made.
            Some(uid) => {
                let mut all: Vec<OsString> = vec![
                    format!("--reuid={uid}").into(),
                    format!("--regid={uid}").into(),
                    "--clear-groups".into(),
                    "env".into(),
                ];
                all.extend(args);
                self.netns.command("setpriv", all)
            }
            None => self.netns.command("env", args),
        };
        cmd.current_dir(self.workspace());
        cmd.envs(self.runner_env());
        cmd
    }

    /// Runs the action's main step.
    pub fn main(&self) -> anyhow::Result<Captured> {
        process::run(self.node("main.js", "__warden", &[], None), PHASE_TIMEOUT)
    }

    /// Runs the action's post step, with main's state as the runner passes it.
    pub fn post(&self) -> anyhow::Result<Captured> {
        process::run(self.post_command(None), PHASE_TIMEOUT)
    }

    /// Runs the post step as user `uid` (the job's user after `disable-sudo`), after making the
    /// job's directory and files writable for it.
    pub fn post_as(&self, uid: u32) -> anyhow::Result<Captured> {
        let owner = Some(nix::unistd::Uid::from_raw(uid));
        let group = Some(nix::unistd::Gid::from_raw(uid));
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(self.dir.path(), fs::Permissions::from_mode(0o755))?;
        }
        for path in [self.runner_temp(), self.dir.path().join("files")] {
            nix::unistd::chown(&path, owner, group)?;
            for entry in fs::read_dir(&path)? {
                nix::unistd::chown(&entry?.path(), owner, group)?;
            }
        }
        process::run(self.post_command(Some(uid)), PHASE_TIMEOUT)
    }

    /// The post step's command, as root or as `uid`.
    fn post_command(&self, uid: Option<u32>) -> std::process::Command {
        let state: Vec<(String, String)> = self
            .state()
            .into_iter()
            .map(|(k, v)| (format!("STATE_{k}"), v))
            .collect();
        self.node("post.js", "__warden", &state, uid)
    }

    /// Runs `warden ARGS… --cgroup CGROUP` in the namespace as user `uid`.
    pub fn warden_as(&self, uid: u32, args: &[&str]) -> anyhow::Result<Captured> {
        let mut all: Vec<OsString> = vec![
            format!("--reuid={uid}").into(),
            format!("--regid={uid}").into(),
            "--clear-groups".into(),
            try_warden_bin()?.into(),
        ];
        all.extend(args.iter().map(OsString::from));
        all.push("--cgroup".into());
        all.push(self.cgroup.path().into());
        process::run(self.netns.command("setpriv", all), PHASE_TIMEOUT)
    }

    /// Runs `steps` in order as children of the stand-in `Runner.Worker`, inside the cgroup,
    /// with `$GITHUB_ENV` applied; each step's exit status is printed as `step ID exit N`.
    pub fn steps(&self, steps: &[Step], timeout: Duration) -> anyhow::Result<Captured> {
        process::run(self.worker_command(steps, false)?, timeout)
    }

    /// Starts the stand-in `Runner.Worker` now, as the real one runs before the action's main
    /// step (so Warden never sees it exec), waiting for [`ActionJob::go`] to run `steps`. Wait
    /// for its output with [`Running::wait_timeout`].
    pub fn spawn_worker(&self, steps: &[Step]) -> anyhow::Result<Running> {
        Running::spawn(self.worker_command(steps, true)?)
    }

    /// Lets a worker started by [`ActionJob::spawn_worker`] run its steps.
    pub fn go(&self) -> anyhow::Result<()> {
        Ok(fs::write(self.dir.path().join("go"), "")?)
    }

    fn worker_command(&self, steps: &[Step], wait: bool) -> anyhow::Result<std::process::Command> {
        let mut worker = String::new();
        if wait {
            let go = self.dir.path().join("go");
            let _ = writeln!(
                worker,
                "while [ ! -e {} ]; do sleep 0.05; done",
                quote(&go.to_string_lossy())
            );
        }
        worker.push_str(
            "while IFS= read -r line; do case \"$line\" in *=*) export \"$line\";; esac; done < \"$GITHUB_ENV\"\n",
        );
        for (i, step) in steps.iter().enumerate() {
            let line = match step {
                Step::Run { id, script } => {
                    let file = self.runner_temp().join(format!("step-{i}.sh"));
                    fs::write(&file, script)?;
                    format!(
                        "GITHUB_ACTION={} sh -e {}",
                        quote(id),
                        quote(&file.to_string_lossy())
                    )
                }
                Step::Uses {
                    id,
                    repository,
                    reference,
                    script,
                } => {
                    let dir = self
                        .dir
                        .path()
                        .join("_actions")
                        .join(repository)
                        .join(reference);
                    fs::create_dir_all(&dir)?;
                    let entry = dir.join("run.sh");
                    fs::write(&entry, script)?;
                    format!(
                        "GITHUB_ACTION={} GITHUB_ACTION_REPOSITORY={} GITHUB_ACTION_REF={} sh {}",
                        quote(id),
                        quote(repository),
                        quote(reference),
                        quote(&entry.to_string_lossy())
                    )
                }
            };
            let id = match step {
                Step::Run { id, .. } | Step::Uses { id, .. } => id,
            };
            let _ = writeln!(worker, "{line}\necho \"step {id} exit $?\"");
        }
        // Not ending on a step: a shell may exec its last command instead of forking it.
        worker.push_str("echo worker done\n");
        let bin = self.dir.path().join("runner/bin/Runner.Worker");
        let script = self.cgroup.enter(&format!(
            "exec {} -c {}",
            quote(&bin.to_string_lossy()),
            quote(&worker)
        ));
        let mut cmd = self.netns.sh(&script);
        cmd.current_dir(self.workspace());
        cmd.envs(self.runner_env());
        Ok(cmd)
    }

    /// The audit log post copied to `RUNNER_TEMP`.
    pub fn audit_records(&self) -> anyhow::Result<Vec<Value>> {
        read_records(&self.runner_temp().join("warden-audit.jsonl"))
    }

    /// The JSON report post left in `RUNNER_TEMP`.
    pub fn report(&self) -> anyhow::Result<Value> {
        let path = self.runner_temp().join("warden-report.json");
        let text = fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
        Ok(serde_json::from_str(&text)?)
    }

    /// Everything, for a failing assertion's message.
    pub fn describe(&self) -> String {
        format!(
            "--- GITHUB_ENV ---\n{}\n--- GITHUB_STATE ---\n{:?}\n--- GITHUB_OUTPUT ---\n{:?}\n--- summary ---\n{}\n--- audit log ---\n{}",
            self.github_env(),
            self.state(),
            self.outputs(),
            self.summary(),
            fs::read_to_string(self.runner_temp().join("warden-audit.jsonl")).unwrap_or_default()
        )
    }
}

impl Drop for ActionJob<'_> {
    fn drop(&mut self) {
        // A daemon the test left running (a failed assertion before post, or disable-sudo's
        // post, which leaves it on by design) is stopped here, as root.
        if self.cgroup.state_dir().exists()
            && let Ok(bin) = try_warden_bin()
        {
            let mut stop = self.netns.command(&bin, ["stop", "--cgroup"]);
            stop.arg(self.cgroup.path());
            let _ = process::run(stop, PHASE_TIMEOUT);
        }
        if let Some(dir) = self.state().get("dir") {
            let _ = fs::remove_dir_all(dir);
            let _ = fs::remove_dir_all(format!("{dir}-bin"));
        }
    }
}

/// `name=value` and `name<<DELIM … DELIM` entries, as the runner parses its files.
pub fn parse_key_values(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some((name, delim)) = line.split_once("<<") {
            let mut value = Vec::new();
            for l in lines.by_ref() {
                if l == delim {
                    break;
                }
                value.push(l);
            }
            out.insert(name.to_string(), value.join("\n"));
        } else if let Some((name, value)) = line.split_once('=') {
            out.insert(name.to_string(), value.to_string());
        }
    }
    out
}

/// The workflow commands (`::error title=…::message`) in `stdout`, as (command, message).
pub fn annotations(stdout: &str) -> Vec<(String, String)> {
    stdout
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("::")?;
            let (head, message) = rest.split_once("::")?;
            let command = head.split(' ').next()?.to_string();
            let message = message
                .replace("%0A", "\n")
                .replace("%0D", "\r")
                .replace("%25", "%");
            Some((command, message))
        })
        .collect()
}

/// A `run:` step.
pub fn run_step(id: &str, script: String) -> Step {
    Step::Run {
        id: id.into(),
        script,
    }
}

/// The `process.step` of each connection record to `ip:port` in `records`.
pub fn steps_to(records: &[Value], ip: &str, port: u16) -> Vec<String> {
    crate::audit::connections_to(records, ip, port)
        .iter()
        .map(|r| {
            r["process"]["step"]
                .as_str()
                .unwrap_or("(none)")
                .to_string()
        })
        .collect()
}

/// Makes the runner's roots trust the test origins: their CA is appended to the namespace's
/// private copy of the system bundle (the machine's own store is never touched), which is what
/// Warden verifies servers against under TLS inspection and what the job's bundles extend.
pub fn trust_origins_ca(netns: &Netns, origins: &crate::Origins) -> anyhow::Result<()> {
    let system = netns.trust_store_path().join("ca-certificates.crt");
    let mut bundle = fs::read_to_string(&system)?;
    bundle.push_str(&fs::read_to_string(origins.ca_pem_path())?);
    fs::write(&system, bundle)?;
    Ok(())
}
