//! `warden run` leaves nothing behind: however the run ends (the command exits, kills itself,
//! leaves a background process, or warden is told to stop), the job's cgroup is removed, the
//! eBPF programs are unloaded, the stop record is written and the exit status says how the
//! command ended.
//!
//! Each test first checks, while warden runs, that the cgroup exists and the programs are
//! loaded, so "gone afterwards" cannot pass because the check looks in the wrong place. Needs
//! root (skips loudly otherwise); each test builds its own namespace.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use tests::audit::Enforcement;
use tests::{
    Netns, Origins, RunOutput, WardenChild, WardenRun, assert_run, assert_run_eq, audit, clients,
    skip_unless_root,
};

/// Deadline for one `warden run`; passing runs take a few seconds.
const T: Duration = Duration::from_secs(30);
/// How long the kernel may take to free a program after its last reference is dropped (it may
/// do so from a workqueue); a leaked program stays forever.
const UNLOAD_GRACE: Duration = Duration::from_secs(5);
/// Audit log polling interval for catching the moment enforcement starts.
const POLL_FAST: Duration = Duration::from_micros(100);

#[test]
fn cleanup_after_normal_run() {
    if skip_unless_root("cleanup_after_normal_run") {
        return;
    }
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let go = dir.path().join("go");
    let script = clients::script(&[
        clients::wait_for_file(&go, 20),
        clients::curl("http://http.example/a", &origins.ca_pem_path()),
    ]);
    let child = spawn(&netns, &script);
    let (_, _leftovers) = assert_in_force(&child);
    std::fs::write(&go, "").unwrap();
    let out = child.wait().unwrap();
    out.assert_success();
    out.one_connection("/a", |r| r["http"]["url"] == "/a");
    assert_cleaned_up(&out);
}

#[test]
fn cleanup_after_cmd_kills_itself() {
    if skip_unless_root("cleanup_after_cmd_kills_itself") {
        return;
    }
    let netns = Netns::new().unwrap();
    let origins = Origins::start(&netns).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let go = dir.path().join("go");
    let script = clients::script(&[
        clients::wait_for_file(&go, 20),
        clients::curl("http://http.example/b", &origins.ca_pem_path()),
        "kill -9 $$".into(),
    ]);
    let child = spawn(&netns, &script);
    let (_, _leftovers) = assert_in_force(&child);
    std::fs::write(&go, "").unwrap();
    let out = child.wait().unwrap();
    out.assert_code(128 + 9);
    out.one_connection("/b", |r| r["http"]["url"] == "/b");
    assert_cleaned_up(&out);
}

#[test]
fn cleanup_after_warden_gets_sigterm() {
    if skip_unless_root("cleanup_after_warden_gets_sigterm") {
        return;
    }
    let netns = Netns::new().unwrap();
    let child = spawn(&netns, "exec sleep 30");
    let (enforcement, _leftovers) = assert_in_force(&child);
    wait_until_running(&enforcement.cgroup, "sleep");
    let signalled = Instant::now();
    child.signal(Signal::SIGTERM).unwrap();
    let out = child.wait().unwrap();
    let took = signalled.elapsed();
    // Warden forwards the signal; `sleep` dies of it; warden exits as a shell would say so.
    out.assert_code(128 + 15);
    assert_run!(
        out,
        took < Duration::from_secs(5),
        "exited promptly: {took:?}"
    );
    assert_cleaned_up(&out);
}

/// The same as [`cleanup_after_warden_gets_sigterm`], with the signal sent as soon as the start
/// record appears rather than once the command runs: a job cancelled just as it starts must
/// not leave its cgroup behind either. A few attempts, since the moment is a race.
#[test]
fn cleanup_after_sigterm_as_enforcement_starts() {
    if skip_unless_root("cleanup_after_sigterm_as_enforcement_starts") {
        return;
    }
    let netns = Netns::new().unwrap();
    for _ in 0..10 {
        let child = spawn(&netns, "exec sleep 30");
        let start = audit::wait_for_record_polling(child.audit_log(), T, POLL_FAST, |r| {
            r["enforcement"]["event"] == "start"
        })
        .unwrap();
        child.signal(Signal::SIGTERM).unwrap();
        let _leftovers = Enforcement::from_record(&start).map(|e| Leftovers(e.cgroup));
        let out = child.wait().unwrap();
        assert_run_eq!(
            out,
            out.code(),
            Some(128 + 15),
            "warden handled the SIGTERM sent right after its start record"
        );
        assert_cleaned_up(&out);
    }
}

#[test]
fn cleanup_kills_leftover_background_process() {
    if skip_unless_root("cleanup_kills_leftover_background_process") {
        return;
    }
    let netns = Netns::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let go = dir.path().join("go");
    let script = clients::script(&[
        "sleep 100 >/dev/null 2>&1 &".to_owned(),
        "echo background $!".into(),
        clients::wait_for_file(&go, 20),
        "exit 0".into(),
    ]);
    let child = spawn(&netns, &script);
    let (enforcement, _leftovers) = assert_in_force(&child);
    let background = wait_for_said_pid(&child, "background");
    assert!(
        cgroup_pids(&enforcement.cgroup).contains(&background),
        "the background sleep {background} runs in the job's cgroup"
    );
    std::fs::write(&go, "").unwrap();
    let out = child.wait().unwrap();
    out.assert_success();
    assert_cleaned_up(&out);
    // Dead by now (a zombie at most, whose command line is empty), or the cgroup could not
    // have been removed.
    let cmdline = std::fs::read(format!("/proc/{background}/cmdline")).unwrap_or_default();
    assert_run!(
        out,
        cmdline != b"sleep\x00100\x00",
        "the background sleep {background} was killed"
    );
}

fn spawn(netns: &Netns, script: &str) -> WardenChild {
    WardenRun::new(netns)
        .timeout(T)
        .cmd(["sh", "-c", script])
        .spawn()
        .unwrap()
}

/// Waits for the enforcement start record, then checks that its cgroup exists and its programs
/// are loaded; returns what it says, and a guard that removes the cgroup should warden leave it.
#[track_caller]
fn assert_in_force(child: &WardenChild) -> (Enforcement, Leftovers) {
    let start = child
        .wait_for_record(T, |r| r["enforcement"]["event"] == "start")
        .unwrap();
    let enforcement = Enforcement::from_record(&start)
        .unwrap_or_else(|| panic!("malformed start record: {start}"));
    let leftovers = Leftovers(enforcement.cgroup.clone());
    assert!(enforcement.cgroup.is_dir(), "cgroup exists: {start}");
    let loaded = loaded_programs();
    let missing: Vec<&u32> = enforcement
        .programs
        .iter()
        .filter(|id| !loaded.contains(id))
        .collect();
    assert!(
        missing.is_empty() && !enforcement.programs.is_empty(),
        "programs {missing:?} of {start} are not loaded"
    );
    (enforcement, leftovers)
}

/// Removes a job cgroup that warden failed to remove (after a test has already failed on it),
/// so a failing test does not litter the machine's cgroup tree.
struct Leftovers(PathBuf);

impl Drop for Leftovers {
    fn drop(&mut self) {
        if !self.0.exists() {
            return;
        }
        let _ = std::fs::write(self.0.join("cgroup.kill"), "1");
        for _ in 0..250 {
            if std::fs::remove_dir(&self.0).is_ok() {
                eprintln!(
                    "removed the cgroup warden left behind: {}",
                    self.0.display()
                );
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!(
            "warning: cannot remove leftover cgroup {}",
            self.0.display()
        );
    }
}

/// Waits until a process whose `comm` is `comm` runs in `cgroup`.
fn wait_until_running(cgroup: &Path, comm: &str) {
    let deadline = Instant::now() + T;
    while !cgroup_pids(cgroup).iter().any(|pid| {
        std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == comm)
    }) {
        assert!(
            Instant::now() < deadline,
            "no {comm} in {} within {T:?}",
            cgroup.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The cgroup named in the enforcement records is gone and none of the programs is loaded.
#[track_caller]
fn assert_cleaned_up(out: &RunOutput) {
    let enforcement = out.assert_bracketed();
    assert_run!(
        out,
        !enforcement.cgroup.exists(),
        "the job's cgroup {} was removed",
        enforcement.cgroup.display()
    );
    let deadline = Instant::now() + UNLOAD_GRACE;
    loop {
        let loaded = loaded_programs();
        let still: Vec<&u32> = enforcement
            .programs
            .iter()
            .filter(|id| loaded.contains(id))
            .collect();
        if still.is_empty() {
            return;
        }
        assert_run!(
            out,
            Instant::now() < deadline,
            "programs {still:?} still loaded {UNLOAD_GRACE:?} after warden exited"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Ids of the eBPF programs loaded now. One unloaded while the list is read (another test's
/// warden exiting) cannot be opened and is skipped: it is not loaded any more.
fn loaded_programs() -> HashSet<u32> {
    aya::programs::loaded_programs()
        .filter_map(Result::ok)
        .map(|program| program.id())
        .collect()
}

fn cgroup_pids(cgroup: &Path) -> Vec<u32> {
    std::fs::read_to_string(cgroup.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|pid| pid.parse().ok())
        .collect()
}

/// Waits until the job printed `word <pid>` and returns the pid.
fn wait_for_said_pid(child: &WardenChild, word: &str) -> u32 {
    let deadline = Instant::now() + T;
    loop {
        let (stdout, stderr) = child.output_so_far();
        let said = stdout
            .split_whitespace()
            .skip_while(|w| *w != word)
            .nth(1)
            .and_then(|pid| pid.parse().ok());
        if let Some(pid) = said {
            return pid;
        }
        assert!(
            Instant::now() < deadline,
            "the job never said `{word} <pid>`:\n{stdout}\n{stderr}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
