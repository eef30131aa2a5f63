//! Tracefs: where tracepoints are attached and their record layouts are described.
//!
//! aya attaches tracepoints through tracefs, which minimal hosts do not always mount; Warden
//! mounts it when it is missing. The `sched_process_fork` record changed layout in Linux 6.x
//! (`parent_comm` became a 4-byte `__data_loc`), so the offset of `child_pid` is read from the
//! tracepoint's `format` file rather than assumed.

use std::{fs, io, path::Path};

const TRACEFS: &str = "/sys/kernel/tracing";

/// Errors reading tracefs. Internal: the host lacks something.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Tracefs is not mounted and mounting it failed.
    #[error("tracefs is not mounted at {TRACEFS} and mounting it failed: {0}")]
    Mount(nix::Error),
    /// A format file could not be read.
    #[error("read {path}: {source}")]
    Read {
        /// The format file.
        path: String,
        /// The OS error.
        source: io::Error,
    },
    /// A field was missing from a format file.
    #[error("tracepoint {tracepoint} has no field {field}")]
    NoField {
        /// The tracepoint.
        tracepoint: &'static str,
        /// The field looked for.
        field: &'static str,
    },
}

/// Mounts tracefs at `/sys/kernel/tracing` unless it (or the debugfs path) is there already.
pub fn ensure_mounted() -> Result<(), Error> {
    if Path::new(TRACEFS).join("events").is_dir()
        || Path::new("/sys/kernel/debug/tracing/events").is_dir()
    {
        return Ok(());
    }
    nix::mount::mount(
        Some("tracefs"),
        TRACEFS,
        Some("tracefs"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .map_err(Error::Mount)
}

/// Offset of `child_pid` in the `sched_process_fork` record on this kernel.
pub fn fork_child_pid_offset() -> Result<u32, Error> {
    let path = [TRACEFS, "/sys/kernel/debug/tracing"]
        .iter()
        .map(|base| format!("{base}/events/sched/sched_process_fork/format"))
        .find(|p| Path::new(p).exists())
        .unwrap_or_else(|| format!("{TRACEFS}/events/sched/sched_process_fork/format"));
    let text = fs::read_to_string(&path).map_err(|source| Error::Read { path, source })?;
    field_offset(&text, "child_pid").ok_or(Error::NoField {
        tracepoint: "sched/sched_process_fork",
        field: "child_pid",
    })
}

/// Finds `offset:N` on the `field:` line whose name is `name`.
fn field_offset(format: &str, name: &str) -> Option<u32> {
    format.lines().find_map(|line| {
        let decl = line.trim().strip_prefix("field:")?;
        let (decl, rest) = decl.split_once(';')?;
        let field = decl.split_ascii_whitespace().last()?;
        let field = field.split('[').next()?;
        if field != name {
            return None;
        }
        let offset = rest.trim().strip_prefix("offset:")?;
        offset.split(';').next()?.trim().parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::field_offset;

    const FORK_6X: &str = "\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\
        \tfield:__data_loc char[] parent_comm;\toffset:8;\tsize:4;\tsigned:0;\n\
        \tfield:pid_t parent_pid;\toffset:12;\tsize:4;\tsigned:1;\n\
        \tfield:__data_loc char[] child_comm;\toffset:16;\tsize:4;\tsigned:0;\n\
        \tfield:pid_t child_pid;\toffset:20;\tsize:4;\tsigned:1;\n";
    const FORK_5X: &str = "\tfield:char parent_comm[16];\toffset:8;\tsize:16;\tsigned:1;\n\
        \tfield:pid_t parent_pid;\toffset:24;\tsize:4;\tsigned:1;\n\
        \tfield:char child_comm[16];\toffset:28;\tsize:16;\tsigned:1;\n\
        \tfield:pid_t child_pid;\toffset:44;\tsize:4;\tsigned:1;\n";

    #[test]
    fn reads_child_pid_offset_on_both_layouts() {
        assert_eq!(field_offset(FORK_6X, "child_pid"), Some(20));
        assert_eq!(field_offset(FORK_5X, "child_pid"), Some(44));
        assert_eq!(field_offset(FORK_5X, "child_comm"), Some(28));
        assert_eq!(field_offset(FORK_5X, "nope"), None);
        assert_eq!(field_offset("field:garbage", "child_pid"), None);
    }
}
