//! System CA bundles: appending Warden's block, and taking exactly that block out again.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use super::Error;
use super::files::{self, io};

/// A bundle as it was before Warden touched it.
pub(super) struct Original {
    /// The file itself: symlinks are resolved, as the target is what gets changed.
    pub(super) target: PathBuf,
    pub(super) bytes: Vec<u8>,
    pub(super) mode: u32,
}

/// The bundles of `paths` that exist, resolved to their targets, each target once, in order.
pub(super) fn read_bundles(paths: &[PathBuf]) -> Result<Vec<Original>, Error> {
    let mut out: Vec<Original> = Vec::new();
    for path in paths {
        let target = match fs::canonicalize(path) {
            Ok(target) => target,
            // Absent, or a dangling link: no client reads it either.
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(io("resolve", path)(e)),
        };
        if out.iter().any(|o| o.target == target) {
            continue;
        }
        if !target.is_file() {
            tracing::warn!(path = %path.display(), "not a regular file, left alone");
            continue;
        }
        out.push(Original {
            bytes: files::read(&target)?,
            mode: files::mode(&target)?,
            target,
        });
    }
    Ok(out)
}

/// What Warden appends to `before` (a bundle's contents): a line break if `before` lacks a final
/// one, a comment saying whose certificate follows (PEM readers skip text between blocks), and
/// the CA. Restore looks for exactly these bytes.
pub(super) fn block(before: &[u8], ca_pem: &str, id: &str) -> Vec<u8> {
    let mut out = Vec::new();
    if before.last().is_some_and(|&b| b != b'\n') {
        out.push(b'\n');
    }
    out.extend_from_slice(
        format!("# Warden {id}: TLS inspection CA for this job, removed when Warden stops\n")
            .as_bytes(),
    );
    out.extend_from_slice(ca_pem.as_bytes());
    out
}

/// Undoes [`block`]'s append to `target`, whose bytes before were `original`.
pub(super) fn restore(
    target: &Path,
    mode: u32,
    original: &[u8],
    added: &[u8],
) -> Result<(), Error> {
    let current = match fs::read(target) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            tracing::warn!(path = %target.display(), "bundle deleted while Warden ran, left absent");
            return Ok(());
        }
        Err(e) => return Err(io("read", target)(e)),
    };
    // Untouched by others: the original, then all or (after a crash) part of Warden's block.
    if let Some(rest) = current.strip_prefix(original)
        && added.starts_with(rest)
    {
        if !rest.is_empty() {
            files::truncate(target, original.len())?;
        }
        if files::read(target)? != original {
            files::overwrite(target, original)?;
        }
    } else if let Some(at) = files::find(&current, added) {
        let mut kept = current[..at].to_vec();
        kept.extend_from_slice(&current[at + added.len()..]);
        files::overwrite(target, &kept)?;
        tracing::warn!(
            path = %target.display(),
            "bundle changed while Warden ran: removed only Warden's certificate, kept the rest"
        );
    } else {
        tracing::warn!(
            path = %target.display(),
            "bundle rewritten while Warden ran and no longer holds Warden's certificate: left as is"
        );
    }
    if files::mode(target)? != mode {
        files::set_mode(target, mode)?;
    }
    Ok(())
}
