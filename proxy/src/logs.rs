//! Reading audit logs back (`policy suggest`, `baseline update`, reports): JSON lines, each a
//! record of `docs/audit-log.md`. A line that is not JSON is an error naming the file and line
//! (a log cut mid-line by a crash ends with a partial line: that one is skipped with a warning).

use std::path::{Path, PathBuf};

use serde_json::Value;

/// The records of the log at `path`, or what is wrong with it.
pub fn read(path: &Path) -> Result<Vec<Value>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read the audit log: {e}", path.display()))?;
    let lines: Vec<&str> = text.lines().collect();
    let mut records = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(line) {
            Ok(v) if v.is_object() => records.push(v),
            _ if i + 1 == lines.len() && !text.ends_with('\n') => eprintln!(
                "warden: {}:{}: the last line is cut short (Warden was killed?); skipped",
                path.display(),
                i + 1
            ),
            _ => {
                return Err(format!(
                    "{}:{}: not an audit record (one JSON object per line)",
                    path.display(),
                    i + 1
                ));
            }
        }
    }
    Ok(records)
}

/// The logs named by `paths`: files, or directories searched (recursively) for `*.jsonl` files.
/// Each log's records, with the file they came from, in a stable order.
pub fn read_all(paths: &[PathBuf]) -> Result<Vec<(PathBuf, Vec<Value>)>, String> {
    let mut files = Vec::new();
    for p in paths {
        collect(p, &mut files)?;
    }
    files.sort();
    files.dedup();
    if files.is_empty() {
        return Err("no audit logs found (*.jsonl)".into());
    }
    files
        .into_iter()
        .map(|f| read(&f).map(|records| (f, records)))
        .collect()
}

fn collect(path: &Path, files: &mut Vec<PathBuf>) -> Result<(), String> {
    let meta =
        std::fs::metadata(path).map_err(|e| format!("{}: cannot read it: {e}", path.display()))?;
    if !meta.is_dir() {
        files.push(path.to_path_buf());
        return Ok(());
    }
    let entries =
        std::fs::read_dir(path).map_err(|e| format!("{}: cannot list it: {e}", path.display()))?;
    for entry in entries.flatten() {
        let p = entry.path();
        if p.is_dir() {
            collect(&p, files)?;
        } else if p.extension().is_some_and(|e| e == "jsonl") {
            files.push(p);
        }
    }
    Ok(())
}

/// Flags of connections that need no allowlist entry and belong in no baseline: what the
/// built-in allowances allowed, Warden's own DNS traffic, refusals of DNS over TLS/QUIC, loops
/// and connections that never had a destination.
pub const NEEDS_NO_ENTRY: &[&str] = &[
    "builtin",
    "dns",
    "dns-over-tls",
    "dns-over-quic",
    "loop",
    "no-original-dst",
    "upstream-local",
];

/// `record[a][b]…` as a string, if it is one.
pub fn str_at<'a>(record: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(record, |v, k| v.get(k))?.as_str()
}

/// Whether the record has `flag`.
pub fn has_flag(record: &Value, flag: &str) -> bool {
    record["flags"]
        .as_array()
        .is_some_and(|f| f.iter().any(|x| x == flag))
}
