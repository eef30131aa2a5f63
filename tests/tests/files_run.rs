//! Source-tamper detection under `warden run --workspace` (issue #10): one `file` record per
//! change with the process and hashes, and the detections, in a real git repository with real
//! writers (python, sed, mv, git).
//!
//! Needs root (skips loudly otherwise).

use std::{path::Path, time::Duration};

use tests::{
    Netns, WardenRun, assert_run, assert_run_eq, audit, clients, skip_unless_root,
    workspace::{
        self, FILES, TestRepo, anomaly_kinds, changes, file_records, sha256, with_anomaly,
    },
};

const T: Duration = Duration::from_secs(30);

fn original(path: &str) -> &'static str {
    FILES
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, c)| *c)
        .unwrap()
}

fn run(netns: &Netns, repo: &TestRepo, steps: &[String], extra: &[&str]) -> tests::RunOutput {
    let mut script = vec![format!(
        "cd {}",
        clients::quote(&repo.path().display().to_string())
    )];
    script.extend(steps.iter().cloned());
    let ws = repo.path().display().to_string();
    let mut args = vec!["--workspace", ws.as_str()];
    args.extend_from_slice(extra);
    WardenRun::new(netns)
        .timeout(T)
        .args(args)
        .cmd(["sh", "-c", &clients::script(&script)])
        .run()
        .unwrap()
}

#[test]
fn ignored_outputs_are_counted_not_recorded() {
    if skip_unless_root("ignored_outputs_are_counted_not_recorded") {
        return;
    }
    let netns = Netns::new().unwrap();
    let repo = TestRepo::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yml");
    std::fs::write(&policy, "file-monitoring:\n  ignore:\n    - dist/\n").unwrap();
    let steps = [
        "mkdir -p target/debug dist".to_string(),
        "echo obj > target/debug/app.o".into(),
        "echo log > build.log".into(),
        "python3 -c \"open('dist/bundle.js','w').write('x')\"".into(),
        "rm build.log".into(),
    ];
    let out = run(
        &netns,
        &repo,
        &steps,
        &["--policy", policy.to_str().unwrap()],
    );
    out.assert_success();
    assert_run!(
        out,
        file_records(&out.records).is_empty(),
        "no file records"
    );
    let files = workspace::stop_files(&out.records);
    assert_run!(out, files.is_some(), "the stop record has files");
    let files = files.unwrap();
    assert_run_eq!(out, files["recorded"], 0, "recorded");
    assert_run_eq!(out, files["anomalies"], 0, "anomalies");
    assert_run!(
        out,
        files["ignored"].as_u64() >= Some(3),
        "ignored changes counted (a lower bound: ignored directories get ignore marks): {files}"
    );
    out.assert_bracketed();
}

#[test]
fn appending_to_a_tracked_source_is_reported_with_process_and_hashes() {
    if skip_unless_root("appending_to_a_tracked_source_is_reported_with_process_and_hashes") {
        return;
    }
    let netns = Netns::new().unwrap();
    let repo = TestRepo::new().unwrap();
    let steps = ["python3 -c \"open('src/lib.rs','a').write('// backdoor\\n')\"".to_string()];
    let out = run(&netns, &repo, &steps, &[]);
    out.assert_success();
    let before = sha256(original("src/lib.rs").as_bytes());
    let after = sha256(&std::fs::read(repo.join("src/lib.rs")).unwrap());
    let writes = changes(&out.records, "src/lib.rs", "write");
    assert_run_eq!(out, writes.len(), 1, "one write record");
    let w = writes[0];
    assert_run_eq!(out, audit::exe_name(w), "python3", "the writer: {w}");
    assert_run!(
        out,
        audit::strings(&w["process"]["argv"]).contains(&"-c"),
        "argv: {w}"
    );
    assert_run!(
        out,
        audit::strings(&w["process"]["ancestry"])
            .iter()
            .any(|e| e.ends_with("/sh")),
        "ancestry: {w}"
    );
    assert_run!(
        out,
        w["process"]["step"].is_null(),
        "no step outside the action: {w}"
    );
    assert_run_eq!(
        out,
        w["file"]["sha256_before"],
        before.as_str(),
        "before: {w}"
    );
    assert_run_eq!(out, w["file"]["sha256_after"], after.as_str(), "after: {w}");
    let differs = changes(&out.records, "src/lib.rs", "differs");
    assert_run_eq!(out, differs.len(), 1, "end-of-job finding");
    let d = differs[0];
    assert_run_eq!(out, anomaly_kinds(d), ["source-modified"], "{d}");
    assert_run_eq!(
        out,
        d["process"]["pid"],
        w["process"]["pid"],
        "attributed to the writer"
    );
    assert_run_eq!(out, d["file"]["sha256_before"], before.as_str(), "{d}");
    assert_run_eq!(out, d["file"]["sha256_after"], after.as_str(), "{d}");
    // Only that file differs: flagged when written (the write record) and at the end.
    assert_run_eq!(
        out,
        with_anomaly(&out.records, "source-modified").len(),
        2,
        "the write and the end-of-job record"
    );
    assert_run_eq!(
        out,
        anomaly_kinds(w),
        ["source-modified"],
        "flagged when written: {w}"
    );
    assert_run!(
        out,
        with_anomaly(&out.records, "overwritten-by-other-process").is_empty(),
        "no overwrite: python is the first writer seen"
    );
    // The differs record comes before the stop record.
    let stop_at = out
        .records
        .iter()
        .rposition(|r| r["kind"] == "enforcement")
        .unwrap();
    let d_at = out.records.iter().position(|r| r == d).unwrap();
    assert_run!(out, d_at < stop_at, "before stop");
}

#[test]
fn sed_in_place_and_rename_over_a_tracked_file_are_attributed() {
    if skip_unless_root("sed_in_place_and_rename_over_a_tracked_file_are_attributed") {
        return;
    }
    let netns = Netns::new().unwrap();
    let repo = TestRepo::new().unwrap();
    let steps = [
        "sed -i s/hello/pwned/ src/main.rs".to_string(),
        // Built in an ignored directory (whose events the kernel no longer reports once Warden
        // knows it is ignored), then moved over a source: the rename is still seen.
        "mkdir -p target && echo warm > target/first.o".into(),
        "printf 'pub fn answer() -> u32 { 0 }\\n' > target/staged.rs".into(),
        "mv target/staged.rs src/lib.rs".into(),
    ];
    let out = run(&netns, &repo, &steps, &[]);
    out.assert_success();
    let sed = changes(&out.records, "src/main.rs", "rename");
    assert_run_eq!(out, sed.len(), 1, "sed's rename over src/main.rs");
    assert_run_eq!(out, audit::exe_name(sed[0]), "sed", "{}", sed[0]);
    let main_now = sha256(&std::fs::read(repo.join("src/main.rs")).unwrap());
    assert_run_eq!(
        out,
        sed[0]["file"]["sha256_before"],
        sha256(original("src/main.rs").as_bytes()).as_str(),
        "{}",
        sed[0]
    );
    assert_run_eq!(
        out,
        sed[0]["file"]["sha256_after"],
        main_now.as_str(),
        "{}",
        sed[0]
    );
    let d = changes(&out.records, "src/main.rs", "differs");
    assert_run_eq!(out, d.len(), 1, "differs");
    assert_run_eq!(
        out,
        audit::exe_name(d[0]),
        "sed",
        "the short-lived sed is named: {}",
        d[0]
    );
    assert_run_eq!(
        out,
        d[0]["process"]["pid"],
        sed[0]["process"]["pid"],
        "same pid"
    );

    let mv = changes(&out.records, "src/lib.rs", "rename");
    assert_run_eq!(out, mv.len(), 1, "mv over src/lib.rs");
    assert_run_eq!(out, mv[0]["file"]["from"], "target/staged.rs", "{}", mv[0]);
    let lib_now = sha256(&std::fs::read(repo.join("src/lib.rs")).unwrap());
    assert_run_eq!(
        out,
        mv[0]["file"]["sha256_after"],
        lib_now.as_str(),
        "{}",
        mv[0]
    );
    assert_run_eq!(out, audit::exe_name(mv[0]), "mv", "{}", mv[0]);
    // staged.rs was written by the shell, then moved by mv over the tracked file.
    let d = changes(&out.records, "src/lib.rs", "differs");
    assert_run_eq!(out, anomaly_kinds(d[0]), ["source-modified"], "{}", d[0]);
    assert_run_eq!(out, audit::exe_name(d[0]), "mv", "{}", d[0]);
}

#[test]
fn workflow_changes_and_second_writers_are_flagged() {
    if skip_unless_root("workflow_changes_and_second_writers_are_flagged") {
        return;
    }
    let netns = Netns::new().unwrap();
    let repo = TestRepo::new().unwrap();
    let steps = [
        "sh -c 'echo \"  evil: {}\" >> .github/workflows/ci.yml'".to_string(),
        "sh -c 'echo one > generated.txt'".into(),
        "sh -c 'echo two > generated.txt'".into(),
    ];
    let out = run(&netns, &repo, &steps, &[]);
    out.assert_success();
    let wf = changes(&out.records, ".github/workflows/ci.yml", "write");
    assert_run_eq!(out, wf.len(), 1, "workflow write");
    assert_run_eq!(
        out,
        anomaly_kinds(wf[0]),
        ["workflow-modified", "source-modified"],
        "{}",
        wf[0]
    );
    let d = changes(&out.records, ".github/workflows/ci.yml", "differs");
    assert_run_eq!(
        out,
        anomaly_kinds(d[0]),
        ["source-modified", "workflow-modified"],
        "{}",
        d[0]
    );
    let gen_records: Vec<_> = file_records(&out.records)
        .into_iter()
        .filter(|r| r["file"]["path"] == "generated.txt")
        .collect();
    assert_run_eq!(out, gen_records.len(), 2, "two writes of generated.txt");
    assert_run_eq!(
        out,
        gen_records[0]["file"]["op"],
        "create",
        "{}",
        gen_records[0]
    );
    assert_run!(
        out,
        anomaly_kinds(gen_records[0]).is_empty(),
        "the first writer is fine"
    );
    assert_run_eq!(
        out,
        anomaly_kinds(gen_records[1]),
        ["overwritten-by-other-process"],
        "{}",
        gen_records[1]
    );
    let detail = gen_records[1]["anomalies"][0]["detail"]
        .as_str()
        .unwrap_or("");
    let first = gen_records[0]["process"]["pid"].to_string();
    assert_run!(
        out,
        detail.contains(&format!("pid {first}")),
        "names the first writer: {detail}"
    );
}

#[test]
fn the_checkout_is_seen_and_is_not_an_anomaly() {
    if skip_unless_root("the_checkout_is_seen_and_is_not_an_anomaly") {
        return;
    }
    let netns = Netns::new().unwrap();
    let origin = TestRepo::new().unwrap();
    let ws = TestRepo::empty().unwrap();
    let steps = [
        format!(
            "git clone -q {} .",
            clients::quote(&origin.path().display().to_string())
        ),
        "sh -c 'echo \"// later\" >> src/lib.rs'".to_string(),
    ];
    let out = run(&netns, &ws, &steps, &[]);
    out.assert_success();
    let created = changes(&out.records, "src/lib.rs", "create");
    assert_run_eq!(out, created.len(), 1, "the checkout's create");
    assert_run!(
        out,
        audit::exe(created[0]).contains("git"),
        "written by git: {}",
        created[0]
    );
    for path in [".github/workflows/ci.yml", "README.md"] {
        let c = changes(&out.records, path, "create");
        assert_run_eq!(out, c.len(), 1, "{path} created");
        assert_run!(
            out,
            anomaly_kinds(c[0]).is_empty(),
            "the checkout is normal: {}",
            c[0]
        );
    }
    let later = changes(&out.records, "src/lib.rs", "write");
    assert_run_eq!(
        out,
        anomaly_kinds(later[0]),
        ["overwritten-by-other-process", "source-modified"],
        "{}",
        later[0]
    );
    let d = changes(&out.records, "src/lib.rs", "differs");
    assert_run_eq!(out, d.len(), 1, "differs from the cloned commit");
    assert_run_eq!(
        out,
        d[0]["process"]["pid"],
        later[0]["process"]["pid"],
        "{}",
        d[0]
    );
    let modified: Vec<&str> = with_anomaly(&out.records, "source-modified")
        .iter()
        .filter_map(|r| r["file"]["path"].as_str())
        .collect();
    assert_run_eq!(
        out,
        modified,
        ["src/lib.rs", "src/lib.rs"],
        "only src/lib.rs: when written, and at the end"
    );
}

#[test]
fn no_file_monitoring_and_bad_workspace() {
    if skip_unless_root("no_file_monitoring_and_bad_workspace") {
        return;
    }
    let netns = Netns::new().unwrap();
    let repo = TestRepo::new().unwrap();
    let steps = ["echo x >> src/lib.rs".to_string()];
    let out = run(&netns, &repo, &steps, &["--no-file-monitoring"]);
    out.assert_success();
    assert_run!(out, file_records(&out.records).is_empty(), "off");
    assert_run!(out, workspace::stop_files(&out.records).is_none(), "off");

    let missing = repo.join("no/such/dir");
    let out = WardenRun::new(&netns)
        .args(["--workspace", missing.to_str().unwrap()])
        .cmd(["true"])
        .run()
        .unwrap();
    out.assert_code(125);
    assert_run!(out, out.stderr.contains("--workspace"), "names the flag");
    assert_run!(out, out.records.is_empty(), "nothing started");
}

#[test]
fn changing_the_trust_bundle_warden_installed_is_tampering() {
    if skip_unless_root("changing_the_trust_bundle_warden_installed_is_tampering") {
        return;
    }
    let netns = Netns::new().unwrap();
    let repo = TestRepo::new().unwrap();
    // Only Warden's own bundle (under /run/warden, removed at stop) is touched; never the
    // machine's store.
    let steps = [
        "case \"$SSL_CERT_FILE\" in /run/warden/*) ;; *) exit 9;; esac".to_string(),
        "echo \"$SSL_CERT_FILE\"".into(),
        "sh -c 'echo \"# planted\" >> \"$SSL_CERT_FILE\"'".into(),
    ];
    let out = run(&netns, &repo, &steps, &["--tls-inspection"]);
    out.assert_success();
    let bundle = out.stdout.lines().find(|l| l.starts_with("/run/warden/"));
    assert_run!(out, bundle.is_some(), "the job printed its bundle");
    let tampered = with_anomaly(&out.records, "warden-tampered");
    assert_run_eq!(out, tampered.len(), 1, "one tampering record");
    assert_run_eq!(
        out,
        tampered[0]["file"]["path"],
        bundle.unwrap(),
        "the bundle"
    );
    assert_run_eq!(out, tampered[0]["file"]["op"], "write", "{}", tampered[0]);
    assert_run!(
        out,
        audit::exe(tampered[0]).ends_with("sh"),
        "{}",
        tampered[0]
    );
    // Warden's own install and restore of the store are not reported.
    assert_run_eq!(out, file_records(&out.records).len(), 1, "nothing else");
}

#[test]
fn a_directory_moved_out_of_an_ignored_tree_is_watched_again() {
    if skip_unless_root("a_directory_moved_out_of_an_ignored_tree_is_watched_again") {
        return;
    }
    let netns = Netns::new().unwrap();
    let repo = TestRepo::new().unwrap();
    let steps = [
        "mkdir -p target/evil && echo o > target/evil/a.o".to_string(),
        // Give Warden time to see target/evil and put its ignore mark on it (the point of the
        // test: the mark must not follow the directory out of target/).
        "sleep 0.5".into(),
        "mv target/evil src/sub".into(),
        "echo 'pub fn x() {}' > src/sub/new.rs".into(),
    ];
    let out = run(&netns, &repo, &steps, &[]);
    out.assert_success();
    // Seen live, or (when the job wrote it before Warden handled the move, while the kernel
    // still dropped the moved directory's events) found right after the move.
    let created = changes(&out.records, "src/sub/new.rs", "create");
    assert_run!(
        out,
        !created.is_empty(),
        "the new source in the moved directory"
    );
    let sha = sha256(b"pub fn x() {}\n");
    assert_run!(
        out,
        created
            .iter()
            .any(|r| r["file"]["sha256_after"] == sha.as_str()),
        "with its content"
    );
}

/// `sed` rewrites two tracked files; `extra` makes it an expected writer of `src/main.rs` only:
/// both are recorded, only `src/lib.rs` is an anomaly.
fn expected_writer_of_main_rs(name: &str, extra: &dyn Fn(&Path) -> Vec<String>) {
    if skip_unless_root(name) {
        return;
    }
    let netns = Netns::new().unwrap();
    let repo = TestRepo::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let steps = [
        "sed -i s/hello/hi/ src/main.rs".to_string(),
        "sed -i s/42/43/ src/lib.rs".into(),
    ];
    let extra = extra(dir.path());
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let out = run(&netns, &repo, &steps, &extra);
    out.assert_success();
    let main = changes(&out.records, "src/main.rs", "differs");
    assert_run_eq!(out, main.len(), 1, "still recorded");
    assert_run!(
        out,
        anomaly_kinds(main[0]).is_empty(),
        "expected: {}",
        main[0]
    );
    assert_run!(
        out,
        main[0]["reason"]
            .as_str()
            .unwrap_or("")
            .contains("expected writer"),
        "{}",
        main[0]
    );
    // The entry names src/main.rs only.
    let lib = changes(&out.records, "src/lib.rs", "differs");
    assert_run_eq!(
        out,
        anomaly_kinds(lib[0]),
        ["source-modified"],
        "{}",
        lib[0]
    );
}

#[test]
fn expected_writers_are_recorded_without_anomalies() {
    expected_writer_of_main_rs("expected_writers_are_recorded_without_anomalies", &|dir| {
        let policy = dir.join("policy.yml");
        std::fs::write(
            &policy,
            "file-monitoring:\n  expected-writers:\n    - sed src/main.rs\n",
        )
        .unwrap();
        vec!["--policy".into(), policy.display().to_string()]
    });
}

#[test]
fn the_baselines_file_writers_are_expected_writers() {
    expected_writer_of_main_rs("the_baselines_file_writers_are_expected_writers", &|dir| {
        let baseline = dir.join("baseline.yml");
        std::fs::write(
            &baseline,
            "version: 1\ndestinations: []\nfile-writers: [\"src/main.rs: sed\"]\n",
        )
        .unwrap();
        vec!["--baseline".into(), baseline.display().to_string()]
    });
}

#[test]
fn a_repository_that_hides_changes_from_git_is_flagged_and_runs_nothing_as_root() {
    if skip_unless_root(
        "a_repository_that_hides_changes_from_git_is_flagged_and_runs_nothing_as_root",
    ) {
        return;
    }
    let netns = Netns::new().unwrap();
    let repo = TestRepo::new().unwrap();
    let marker = tempfile::tempdir().unwrap();
    let pwned = marker.path().join("pwned");
    let steps = [
        // Hide an edit from `git diff`.
        "git update-index --assume-unchanged src/lib.rs".to_string(),
        "echo 'pub fn backdoor() {}' >> src/lib.rs".into(),
        // A program the repository names for git to run (last: the job's own git would run
        // it): Warden's git must not.
        format!(
            "git config core.fsmonitor 'touch {}; false'",
            pwned.display()
        ),
    ];
    let out = run(&netns, &repo, &steps, &[]);
    out.assert_success();
    assert_run!(
        out,
        !pwned.exists(),
        "Warden's git ran the repository's fsmonitor"
    );
    let evaded = with_anomaly(&out.records, "source-comparison-evaded");
    assert_run_eq!(out, evaded.len(), 1, "the evasion is flagged");
    let detail = evaded[0]["anomalies"][0]["detail"].as_str().unwrap_or("");
    assert_run!(
        out,
        detail.contains("assume-unchanged") && detail.contains("src/lib.rs"),
        "{detail}"
    );
}
