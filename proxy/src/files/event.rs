//! Parsing the fanotify queue: `struct fanotify_event_metadata` followed by info records (the
//! directory's file handle and the entry's name, `fanotify(7)` "Information records"). Never
//! panics and never guesses: a truncated or inconsistent event ends the buffer.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

/// `sizeof(struct fanotify_event_metadata)`.
const METADATA_LEN: usize = 24;

/// Which end of the event an info record describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InfoKind {
    /// The object itself (`FAN_EVENT_INFO_TYPE_FID`).
    Target,
    /// The directory holding the entry, and its name (`DFID_NAME`, `DFID`).
    Dir,
    /// A rename's source directory and name (`OLD_DFID_NAME`).
    Old,
    /// A rename's destination directory and name (`NEW_DFID_NAME`).
    New,
}

/// One file-handle record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    /// What it describes.
    pub kind: InfoKind,
    /// The filesystem id.
    pub fsid: [i32; 2],
    /// The `struct file_handle` bytes (length, type, opaque handle).
    pub handle: Vec<u8>,
    /// The entry's name in that directory (`DFID_NAME` kinds); `.` for the directory itself.
    pub name: Option<OsString>,
}

/// One event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `FAN_*` bits.
    pub mask: u64,
    /// The process (thread-group id) that caused it.
    pub pid: u32,
    /// Its file-handle records.
    pub infos: Vec<Info>,
}

impl Event {
    /// The record of `kind`, if the event has one.
    pub fn info(&self, kind: InfoKind) -> Option<&Info> {
        self.infos.iter().find(|i| i.kind == kind)
    }

    /// Is `bit` set?
    pub fn has(&self, bit: u64) -> bool {
        self.mask & bit != 0
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn i32_at(b: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Parses every complete event in `buf`. Stops at the first event that is inconsistent (its
/// length shorter than its metadata, longer than what is left); records of an unknown type are
/// skipped, as `fanotify(7)` asks.
pub fn parse(buf: &[u8]) -> Vec<Event> {
    let mut events = Vec::new();
    let mut at = 0;
    while let Some(len) = u32_at(buf, at).map(|l| l as usize) {
        let Some(raw) = buf.get(at..at + len) else {
            break;
        };
        let Some(meta_len) = u16_at(raw, 6).map(usize::from) else {
            break;
        };
        if len < METADATA_LEN || meta_len < METADATA_LEN || meta_len > len {
            break;
        }
        let (Some(mask), Some(pid)) = (
            raw.get(8..16)
                .and_then(|m| m.try_into().ok())
                .map(u64::from_ne_bytes),
            i32_at(raw, 20),
        ) else {
            break;
        };
        events.push(Event {
            mask,
            pid: u32::try_from(pid).unwrap_or(0),
            infos: infos(&raw[meta_len..]),
        });
        at += len;
    }
    events
}

/// The info records after the metadata: header (type, pad, len), fsid, `struct file_handle`,
/// and for the `*DFID_NAME` types a NUL-terminated name.
fn infos(mut b: &[u8]) -> Vec<Info> {
    let mut out = Vec::new();
    while b.len() >= 4 {
        let kind = b[0];
        let Some(len) = u16_at(b, 2).map(usize::from) else {
            break;
        };
        let Some(rec) = b.get(..len).filter(|_| len >= 4) else {
            break;
        };
        b = &b[len..];
        let kind = match kind {
            libc::FAN_EVENT_INFO_TYPE_FID => InfoKind::Target,
            libc::FAN_EVENT_INFO_TYPE_DFID_NAME | libc::FAN_EVENT_INFO_TYPE_DFID => InfoKind::Dir,
            libc::FAN_EVENT_INFO_TYPE_OLD_DFID_NAME => InfoKind::Old,
            libc::FAN_EVENT_INFO_TYPE_NEW_DFID_NAME => InfoKind::New,
            _ => continue,
        };
        let named =
            rec[0] != libc::FAN_EVENT_INFO_TYPE_FID && rec[0] != libc::FAN_EVENT_INFO_TYPE_DFID;
        if let Some(info) = fid_record(kind, rec, named) {
            out.push(info);
        }
    }
    out
}

fn fid_record(kind: InfoKind, rec: &[u8], named: bool) -> Option<Info> {
    let fsid = [i32_at(rec, 4)?, i32_at(rec, 8)?];
    let handle_bytes = u32_at(rec, 12)? as usize;
    let handle_end = 12usize.checked_add(8)?.checked_add(handle_bytes)?;
    let handle = rec.get(12..handle_end)?.to_vec();
    let name = if named {
        let rest = rec.get(handle_end..)?;
        let end = rest.iter().position(|&c| c == 0)?;
        Some(OsString::from_vec(rest[..end].to_vec()))
    } else {
        None
    };
    Some(Info {
        kind,
        fsid,
        handle,
        name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: u8, handle: &[u8], name: Option<&str>) -> Vec<u8> {
        let mut r = vec![kind, 0, 0, 0];
        r.extend_from_slice(&7i32.to_ne_bytes());
        r.extend_from_slice(&9i32.to_ne_bytes());
        r.extend_from_slice(&(handle.len() as u32).to_ne_bytes());
        r.extend_from_slice(&1i32.to_ne_bytes());
        r.extend_from_slice(handle);
        if let Some(n) = name {
            r.extend_from_slice(n.as_bytes());
            r.push(0);
        }
        while r.len() % 4 != 0 {
            r.push(0);
        }
        let len = r.len() as u16;
        r[2..4].copy_from_slice(&len.to_ne_bytes());
        r
    }

    fn event(mask: u64, pid: i32, records: &[Vec<u8>]) -> Vec<u8> {
        let mut e = vec![0u8; METADATA_LEN];
        e[4] = 3;
        e[6..8].copy_from_slice(&(METADATA_LEN as u16).to_ne_bytes());
        e[8..16].copy_from_slice(&mask.to_ne_bytes());
        e[16..20].copy_from_slice(&(-1i32).to_ne_bytes());
        e[20..24].copy_from_slice(&pid.to_ne_bytes());
        for r in records {
            e.extend_from_slice(r);
        }
        let len = e.len() as u32;
        e[0..4].copy_from_slice(&len.to_ne_bytes());
        e
    }

    fn sample() -> Vec<u8> {
        let mut buf = event(
            libc::FAN_RENAME,
            42,
            &[
                record(
                    libc::FAN_EVENT_INFO_TYPE_OLD_DFID_NAME,
                    b"dirA",
                    Some("sedX1"),
                ),
                record(
                    libc::FAN_EVENT_INFO_TYPE_NEW_DFID_NAME,
                    b"dirA",
                    Some("lib.rs"),
                ),
                record(libc::FAN_EVENT_INFO_TYPE_FID, b"file1234", None),
            ],
        );
        buf.extend(event(
            libc::FAN_MODIFY,
            43,
            &[record(
                libc::FAN_EVENT_INFO_TYPE_DFID_NAME,
                b"dirB",
                Some("x"),
            )],
        ));
        buf
    }

    #[test]
    fn parses_renames_and_modifies() {
        let events = parse(&sample());
        assert_eq!(events.len(), 2);
        let r = &events[0];
        assert_eq!((r.pid, r.has(libc::FAN_RENAME)), (42, true));
        let old = r.info(InfoKind::Old).unwrap();
        assert_eq!(old.name.as_deref(), Some("sedX1".as_ref()));
        assert_eq!(old.fsid, [7, 9]);
        assert_eq!(&old.handle[8..], b"dirA");
        assert_eq!(
            r.info(InfoKind::New).unwrap().name.as_deref(),
            Some("lib.rs".as_ref())
        );
        assert_eq!(r.info(InfoKind::Target).unwrap().name, None);
        assert_eq!(
            events[1].info(InfoKind::Dir).unwrap().name.as_deref(),
            Some("x".as_ref())
        );
    }

    #[test]
    fn every_prefix_parses_without_panicking() {
        let buf = sample();
        for cut in 0..buf.len() {
            let events = parse(&buf[..cut]);
            assert!(events.len() <= 1, "cut {cut}");
        }
        // Every byte flipped: still no panic.
        for i in 0..buf.len() {
            let mut b = buf.clone();
            b[i] ^= 0xff;
            let _ = parse(&b);
        }
    }

    #[test]
    fn unknown_records_are_skipped_and_bad_lengths_stop() {
        let buf = event(
            libc::FAN_CREATE,
            5,
            &[
                record(99, b"zz", None),
                record(libc::FAN_EVENT_INFO_TYPE_DFID_NAME, b"d", Some("n")),
            ],
        );
        let e = parse(&buf);
        assert_eq!(e[0].infos.len(), 1);
        let mut short = buf.clone();
        short[0..4].copy_from_slice(&8u32.to_ne_bytes());
        assert!(parse(&short).is_empty());
    }
}
