//! Turning an event's directory handle and name into a path, and a path into a tracker key.
//!
//! fanotify names the directory by file handle; [`super::sys::path_of`] opens it and reads the
//! path back, which costs two syscalls, so directory paths are cached by handle. A renamed
//! directory rewrites the cached paths below it; a deleted one drops them.

use std::{
    collections::HashMap,
    ffi::OsStr,
    os::fd::OwnedFd,
    path::{Path, PathBuf},
};

use super::{
    event::{Event, Info, InfoKind},
    sys,
};

/// Where the watched things are.
#[derive(Debug, Clone)]
pub struct Roots {
    /// The workspace, canonical: its paths become relative keys.
    pub workspace: PathBuf,
    /// Warden's own directories and files (state, trust store, audit log): absolute keys.
    pub warden: Vec<PathBuf>,
}

impl Roots {
    /// The tracker key for `path`: relative for the workspace, absolute for Warden's own files;
    /// `None` for anything else (the mark covers whole filesystems).
    pub fn key(&self, path: &Path) -> Option<String> {
        if self.warden.iter().any(|w| path.starts_with(w)) {
            return Some(path.to_string_lossy().into_owned());
        }
        let rel = path.strip_prefix(&self.workspace).ok()?;
        if rel.as_os_str().is_empty() {
            return None;
        }
        Some(rel.to_string_lossy().into_owned())
    }
}

/// Handle → path, per filesystem.
pub struct Resolver {
    mounts: Vec<([i32; 2], OwnedFd)>,
    dirs: HashMap<Vec<u8>, PathBuf>,
}

fn cache_key(info: &Info) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + info.handle.len());
    k.extend_from_slice(&info.fsid[0].to_ne_bytes());
    k.extend_from_slice(&info.fsid[1].to_ne_bytes());
    k.extend_from_slice(&info.handle);
    k
}

impl Resolver {
    /// A resolver for the filesystems of `dirs` (each must exist).
    pub fn new(dirs: &[&Path]) -> std::io::Result<Resolver> {
        let mut mounts: Vec<([i32; 2], OwnedFd)> = Vec::new();
        for d in dirs {
            let fsid = sys::fsid(d)?;
            if !mounts.iter().any(|(f, _)| *f == fsid) {
                mounts.push((fsid, sys::open_mount(d)?));
            }
        }
        Ok(Resolver {
            mounts,
            dirs: HashMap::new(),
        })
    }

    /// The directory `info` names; cached.
    fn dir(&mut self, info: &Info) -> Option<PathBuf> {
        let key = cache_key(info);
        if let Some(p) = self.dirs.get(&key) {
            return Some(p.clone());
        }
        let Some((_, mount)) = self.mounts.iter().find(|(f, _)| *f == info.fsid) else {
            let known: Vec<[i32; 2]> = self.mounts.iter().map(|(f, _)| *f).collect();
            tracing::trace!(fsid = ?info.fsid, ?known, "event on another filesystem");
            return None;
        };
        let path = sys::path_of(mount, &info.handle)?;
        if self.dirs.len() > 200_000 {
            self.dirs.clear();
        }
        self.dirs.insert(key, path.clone());
        Some(path)
    }

    /// The full path of the entry `info` names (directory + name); `None` for the directory
    /// itself (`.`) or when it cannot be resolved.
    pub fn entry(&mut self, info: &Info) -> Option<PathBuf> {
        let name = info.name.as_deref()?;
        if name == OsStr::new(".") || name.is_empty() {
            return None;
        }
        Some(self.dir(info)?.join(name))
    }

    /// The path of the entry of `kind` in `ev`.
    pub fn path(&mut self, ev: &Event, kind: InfoKind) -> Option<PathBuf> {
        self.entry(ev.info(kind)?)
    }

    /// A directory moved from `old` to `new`: cached paths below follow.
    pub fn dir_renamed(&mut self, old: &Path, new: &Path) {
        for p in self.dirs.values_mut() {
            if let Ok(rest) = p.strip_prefix(old) {
                *p = new.join(rest);
            }
        }
    }

    /// A directory was deleted: forget it and what was below it.
    pub fn dir_deleted(&mut self, dir: &Path) {
        self.dirs.retain(|_, p| !p.starts_with(dir));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        let roots = Roots {
            workspace: "/w/repo".into(),
            warden: vec!["/run/warden/cg-1".into(), "/tmp/audit.jsonl".into()],
        };
        assert_eq!(
            roots.key(Path::new("/w/repo/src/a.rs")).as_deref(),
            Some("src/a.rs")
        );
        assert_eq!(roots.key(Path::new("/w/repo")), None);
        assert_eq!(roots.key(Path::new("/w/repository/x")), None);
        assert_eq!(
            roots
                .key(Path::new("/run/warden/cg-1/state.json"))
                .as_deref(),
            Some("/run/warden/cg-1/state.json")
        );
        assert_eq!(
            roots.key(Path::new("/tmp/audit.jsonl")).as_deref(),
            Some("/tmp/audit.jsonl")
        );
        assert_eq!(roots.key(Path::new("/run/warden/cg-2/x")), None);
    }
}
