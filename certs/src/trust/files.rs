//! File operations that name the file and the operation when they fail.
//!
//! Trust stores are changed *in place* (append, truncate, overwrite from offset 0) rather than
//! by writing a new file and renaming it over the old one: the inode keeps its owner, mode,
//! extended attributes and SELinux label, hard links and bind mounts of it stay valid, and the
//! common cases (append, cut back to the old length) are single system calls that a concurrent
//! reader sees either before or after.

use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use super::Error;

/// Maps an `io::Error` to [`Error::Io`] for `op` on `path`.
pub(super) fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> Error + 'a {
    move |source| Error::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

pub(super) fn read(path: &Path) -> Result<Vec<u8>, Error> {
    fs::read(path).map_err(io("read", path))
}

/// The permission bits of `path` (following symlinks).
pub(super) fn mode(path: &Path) -> Result<u32, Error> {
    let meta = fs::metadata(path).map_err(io("inspect", path))?;
    Ok(meta.permissions().mode() & 0o7777)
}

pub(super) fn set_mode(path: &Path, mode: u32) -> Result<(), Error> {
    fs::set_permissions(path, Permissions::from_mode(mode)).map_err(io("set the mode of", path))
}

/// Creates a directory that must not exist yet, with exactly `mode` (whatever the umask).
pub(super) fn create_dir(path: &Path, mode: u32) -> Result<(), Error> {
    DirBuilder::new()
        .mode(mode)
        .create(path)
        .map_err(io("create the directory", path))?;
    set_mode(path, mode)
}

/// Creates a file that must not exist yet, with exactly `mode`, holding `bytes`, synced.
pub(super) fn create(path: &Path, bytes: &[u8], mode: u32) -> Result<(), Error> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(io("create", path))?;
    file.set_permissions(Permissions::from_mode(mode))
        .and_then(|()| file.write_all(bytes))
        .and_then(|()| file.sync_all())
        .map_err(io("write", path))
}

/// Appends `bytes` in one write.
pub(super) fn append(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let op = "append the CA to";
    let mut file = OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(io(op, path))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(io(op, path))
}

/// Cuts `path` back to `len` bytes.
pub(super) fn truncate(path: &Path, len: usize) -> Result<(), Error> {
    let op = "truncate";
    let file = open_rw(path).map_err(io(op, path))?;
    file.set_len(len as u64)
        .and_then(|()| file.sync_all())
        .map_err(io(op, path))
}

/// Replaces the contents of `path` with `bytes`, keeping the inode.
pub(super) fn overwrite(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let op = "rewrite";
    let mut file = open_rw(path).map_err(io(op, path))?;
    file.write_all(bytes)
        .and_then(|()| file.set_len(bytes.len() as u64))
        .and_then(|()| file.sync_all())
        .map_err(io(op, path))
}

fn open_rw(path: &Path) -> io::Result<File> {
    OpenOptions::new().write(true).open(path)
}

/// Where `needle` first occurs in `haystack`.
pub(super) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}
