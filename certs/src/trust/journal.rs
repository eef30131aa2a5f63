//! The journal: every change install makes, written and synced *before* the change, so that a
//! restore from another process or after a crash knows everything that may have been touched.
//!
//! One entry a line, fields separated by spaces, each field percent-encoded (any byte outside
//! `!`..=`~`, and `%` itself, becomes `%XX`), so any Unix path round-trips. Files inside the state
//! directory are named relative to it.
//!
//! ```text
//! warden-trust 1 <id>
//! bundle <mode> <target> <backup> <added>
//! java <mode> <cacerts> <backup> <after> <keytool> <alias>
//! env <NAME> <bundle>
//! ```

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::Error;
use super::files::{self, io};

const MAGIC: &str = "warden-trust";
const VERSION: &str = "1";
pub(super) const NAME: &str = "journal";

/// One change. Paths of files inside the state directory are relative to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Entry {
    /// `added` was appended to the system bundle `target`, whose bytes before are in `backup`.
    Bundle {
        /// The target's permission bits before.
        mode: u32,
        target: PathBuf,
        backup: PathBuf,
        added: PathBuf,
    },
    /// The CA was imported into `cacerts` as `alias`; `after` holds the keystore as keytool left
    /// it, and is absent when the import failed (and was undone at once).
    Java {
        mode: u32,
        cacerts: PathBuf,
        backup: PathBuf,
        after: PathBuf,
        keytool: PathBuf,
        alias: String,
    },
    /// The job's variable `name` names `bundle`.
    Env { name: String, bundle: PathBuf },
}

/// The journal being written by install.
pub(super) struct Journal {
    file: File,
    path: PathBuf,
}

impl Journal {
    /// Starts the journal of session `id` in `state_dir`.
    pub(super) fn create(state_dir: &Path, id: &str) -> Result<Journal, Error> {
        let path = state_dir.join(NAME);
        let file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(io("create", &path))?;
        file.set_permissions(PermissionsExt::from_mode(0o600))
            .map_err(io("set the mode of", &path))?;
        let mut journal = Journal { file, path };
        journal.write_line(&[MAGIC.into(), VERSION.into(), id.into()])?;
        Ok(journal)
    }

    pub(super) fn append(&mut self, entry: &Entry) -> Result<(), Error> {
        self.write_line(&fields(entry))
    }

    fn write_line(&mut self, fields: &[OsString]) -> Result<(), Error> {
        let mut line: Vec<u8> = Vec::new();
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                line.push(b' ');
            }
            encode(f.as_bytes(), &mut line);
        }
        line.push(b'\n');
        self.file
            .write_all(&line)
            .and_then(|()| self.file.sync_data())
            .map_err(io("write", &self.path))
    }
}

fn fields(entry: &Entry) -> Vec<OsString> {
    let os = |p: &Path| p.as_os_str().to_owned();
    match entry {
        Entry::Bundle {
            mode,
            target,
            backup,
            added,
        } => vec![
            "bundle".into(),
            format!("{mode:o}").into(),
            os(target),
            os(backup),
            os(added),
        ],
        Entry::Java {
            mode,
            cacerts,
            backup,
            after,
            keytool,
            alias,
        } => vec![
            "java".into(),
            format!("{mode:o}").into(),
            os(cacerts),
            os(backup),
            os(after),
            os(keytool),
            alias.into(),
        ],
        Entry::Env { name, bundle } => vec!["env".into(), name.into(), os(bundle)],
    }
}

/// Reads the journal in `state_dir`: the session id and its entries, in the order made.
pub(super) fn load(state_dir: &Path) -> Result<(String, Vec<Entry>), Error> {
    let path = state_dir.join(NAME);
    let bytes = files::read(&path)?;
    let bad = |line: usize, reason: &str| Error::BadJournal {
        path: path.clone(),
        line,
        reason: reason.to_owned(),
    };
    // A crash can leave the last line unfinished: what it described was not yet done.
    let complete = match bytes.iter().rposition(|&b| b == b'\n') {
        Some(end) => &bytes[..end],
        None => return Err(bad(1, "no complete header")),
    };
    let mut lines = complete.split(|&b| b == b'\n').enumerate();
    let header = match lines.next() {
        Some((_, l)) => split(l).map_err(|r| bad(1, r))?,
        None => return Err(bad(1, "empty")),
    };
    let id = match header.as_slice() {
        [m, v, id] if m == MAGIC && v == VERSION => text(id).map_err(|r| bad(1, r))?,
        _ => return Err(bad(1, "not a warden-trust version 1 journal")),
    };
    let mut entries = Vec::new();
    for (i, line) in lines {
        let f = split(line).map_err(|r| bad(i + 1, r))?;
        entries.push(entry(&f).map_err(|r| bad(i + 1, r))?);
    }
    Ok((id, entries))
}

fn entry(f: &[OsString]) -> Result<Entry, &'static str> {
    let path = |i: usize| PathBuf::from(&f[i]);
    let mode =
        |i: usize| text(&f[i]).and_then(|t| u32::from_str_radix(&t, 8).map_err(|_| "bad mode"));
    match f.first().map(|k| k.as_bytes()) {
        Some(b"bundle") if f.len() == 5 => Ok(Entry::Bundle {
            mode: mode(1)?,
            target: path(2),
            backup: path(3),
            added: path(4),
        }),
        Some(b"java") if f.len() == 7 => Ok(Entry::Java {
            mode: mode(1)?,
            cacerts: path(2),
            backup: path(3),
            after: path(4),
            keytool: path(5),
            alias: text(&f[6])?,
        }),
        Some(b"env") if f.len() == 3 => Ok(Entry::Env {
            name: text(&f[1])?,
            bundle: path(2),
        }),
        _ => Err("unknown entry"),
    }
}

fn text(f: &OsString) -> Result<String, &'static str> {
    f.to_str().map(str::to_owned).ok_or("not UTF-8")
}

fn split(line: &[u8]) -> Result<Vec<OsString>, &'static str> {
    line.split(|&b| b == b' ').map(decode).collect()
}

fn encode(bytes: &[u8], out: &mut Vec<u8>) {
    for &b in bytes {
        if (b'!'..=b'~').contains(&b) && b != b'%' {
            out.push(b);
        } else {
            out.extend_from_slice(format!("%{b:02X}").as_bytes());
        }
    }
}

fn decode(field: &[u8]) -> Result<OsString, &'static str> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        if field[i] == b'%' {
            let hex = field.get(i + 1..i + 3).ok_or("truncated escape")?;
            let hex = std::str::from_utf8(hex).map_err(|_| "bad escape")?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| "bad escape")?);
            i += 3;
        } else {
            out.push(field[i]);
            i += 1;
        }
    }
    Ok(OsString::from_vec(out))
}
