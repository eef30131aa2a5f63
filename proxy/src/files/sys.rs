//! The thin syscall layer of file monitoring: `fanotify_init`, `fanotify_mark`, reading the
//! event queue, and turning a directory's file handle back into a path.
//!
//! The only `unsafe` of [`super`] lives here, each call with the invariant it relies on. `nix`
//! wraps `fanotify_init`/`fanotify_mark`, but its reader hands back the metadata only, without
//! the file-handle and name records that `FAN_REPORT_DFID_NAME` events carry, so the queue is
//! read here and parsed by the safe [`super::event`] parser.
#![allow(unsafe_code)]

use std::{
    ffi::CString,
    io,
    os::{
        fd::{AsRawFd, FromRawFd, OwnedFd},
        unix::ffi::OsStrExt,
    },
    path::{Path, PathBuf},
    time::Duration,
};

/// The events Warden asks for: creations, deletions, renames (one event naming both ends,
/// Linux 5.17), content changes (`MODIFY` names the writer; `CLOSE_WRITE` says when to hash)
/// and metadata changes (mode), for directories too (so renamed directories are followed).
pub const MASK: u64 = libc::FAN_CREATE
    | libc::FAN_DELETE
    | libc::FAN_RENAME
    | libc::FAN_MODIFY
    | libc::FAN_CLOSE_WRITE
    | libc::FAN_ATTRIB
    | libc::FAN_ONDIR;

/// A notification group reporting directory file handles and names (Linux 5.17 for
/// `FAN_RENAME`), non-blocking, with an unlimited queue (root). The object's own handle
/// (`FAN_REPORT_FID`) is not asked for: paths are all Warden needs, and every handle the kernel
/// encodes costs the writing process time.
pub fn init() -> io::Result<OwnedFd> {
    let flags = libc::FAN_CLASS_NOTIF
        | libc::FAN_CLOEXEC
        | libc::FAN_NONBLOCK
        | libc::FAN_UNLIMITED_QUEUE
        | libc::FAN_REPORT_DFID_NAME;
    // SAFETY: plain syscall with integer arguments.
    let fd = unsafe {
        libc::fanotify_init(
            flags,
            (libc::O_RDONLY | libc::O_LARGEFILE | libc::O_CLOEXEC) as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by the kernel and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Marks the whole filesystem holding `path` (every process's changes on it are reported).
pub fn mark_filesystem(group: &OwnedFd, path: &Path) -> io::Result<()> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))?;
    // SAFETY: `c` is a valid NUL-terminated string for the whole call; the fd is live.
    let rc = unsafe {
        libc::fanotify_mark(
            group.as_raw_fd(),
            libc::FAN_MARK_ADD | libc::FAN_MARK_FILESYSTEM,
            MASK,
            libc::AT_FDCWD,
            c.as_ptr(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Stops events about the entries of directory `dir` (and the directory itself) at the source,
/// with an ignore mark (Linux 6.0 `FAN_MARK_IGNORE`): a build's output tree then costs neither
/// the writers nor Warden anything. Covers the direct entries only; subdirectories get their own.
/// Renames stay reported: an ignore mark on the source directory would hide a file built in an
/// ignored directory and moved over a source file.
pub fn ignore_dir(group: &OwnedFd, dir: &Path, add: bool) -> io::Result<()> {
    let c = CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))?;
    let op = if add {
        libc::FAN_MARK_ADD
    } else {
        libc::FAN_MARK_REMOVE
    };
    // SAFETY: as in `mark_filesystem`.
    let rc = unsafe {
        libc::fanotify_mark(
            group.as_raw_fd(),
            op | libc::FAN_MARK_IGNORE_SURV | libc::FAN_MARK_ONLYDIR | libc::FAN_MARK_DONT_FOLLOW,
            (MASK & !libc::FAN_RENAME) | libc::FAN_EVENT_ON_CHILD,
            libc::AT_FDCWD,
            c.as_ptr(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Waits up to `timeout` for events or for `wake` to become readable (someone asked the
/// watcher to stop), then reads what is queued into `buf`. Returns the number of bytes read; 0
/// when nothing came.
pub fn read(
    group: &OwnedFd,
    wake: &OwnedFd,
    buf: &mut [u8],
    timeout: Duration,
) -> io::Result<usize> {
    let mut pfds = [group.as_raw_fd(), wake.as_raw_fd()].map(|fd| libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    });
    let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: two valid pollfds for the duration of the call.
    let rc = unsafe { libc::poll(pfds.as_mut_ptr(), 2, ms) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted {
            Ok(0)
        } else {
            Err(e)
        };
    }
    read_now(group, buf)
}

/// Reads what is queued without waiting; 0 when the queue is empty.
pub fn read_now(group: &OwnedFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the whole call.
    let n = unsafe { libc::read(group.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        let e = io::Error::last_os_error();
        return match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
            _ => Err(e),
        };
    }
    Ok(n as usize)
}

/// The filesystem id of the filesystem holding `path`, as fanotify reports it in events.
pub fn fsid(path: &Path) -> io::Result<[i32; 2]> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))?;
    let mut st = std::mem::MaybeUninit::<libc::statfs>::zeroed();
    // SAFETY: `c` is NUL-terminated and `st` valid for writes of one `statfs`.
    let rc = unsafe { libc::statfs(c.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: statfs succeeded, so `st` is initialised; `fsid_t` is `#[repr(C)]` two c_ints,
    // whose fields libc keeps private.
    let fsid: [i32; 2] = unsafe { std::mem::transmute(st.assume_init().f_fsid) };
    Ok(fsid)
}

/// The path of the object `handle` (a `struct file_handle` as the event carried it: bytes,
/// type, then the opaque handle) names on the filesystem `mount` is open on, as seen from this
/// process; `None` when it is gone (deleted) or cannot be opened.
pub fn path_of(mount: &OwnedFd, handle: &[u8]) -> Option<PathBuf> {
    if handle.len() < 8 {
        return None;
    }
    // `struct file_handle` needs 4-byte alignment: copy into u32 words.
    let mut words = vec![0u32; handle.len().div_ceil(4)];
    for (i, chunk) in handle.chunks(4).enumerate() {
        let mut w = [0u8; 4];
        w[..chunk.len()].copy_from_slice(chunk);
        words[i] = u32::from_ne_bytes(w);
    }
    let declared = words[0] as usize;
    if declared + 8 > handle.len() {
        return None;
    }
    // SAFETY: `words` holds a complete `file_handle` (checked: its declared length fits) and
    // lives for the call; the kernel validates the handle itself.
    let fd = unsafe {
        libc::open_by_handle_at(
            mount.as_raw_fd(),
            words.as_mut_ptr().cast(),
            libc::O_PATH | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return None;
    }
    // SAFETY: the kernel just returned `fd`; nobody else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let path = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).ok()?;
    // A directory unlinked since the event reads back as "PATH (deleted)".
    (path.is_absolute() && !path.as_os_str().as_bytes().ends_with(b" (deleted)")).then_some(path)
}

/// Opens `dir` to serve as the mount fd for [`path_of`]. Not `O_PATH`: `open_by_handle_at`
/// refuses such a descriptor (`EBADF`).
pub fn open_mount(dir: &Path) -> io::Result<OwnedFd> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(dir)?;
    Ok(f.into())
}
