//! The short human summary `warden run` prints at the end: destinations per process.

use std::{collections::BTreeMap, fmt};

use crate::audit::{Decision, Kind, Record};

/// Connections aggregated by process, then by destination.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    processes: BTreeMap<(u32, String), BTreeMap<String, DstTotals>>,
    connections: u64,
    blocked: u64,
    lookups: u64,
    blocked_lookups: u64,
    requests: u64,
    blocked_requests: u64,
    /// `file` records (file monitoring); their anomalies are listed with the others.
    file_changes: u64,
    /// Anomalies (kind, evidence), in the order written; the first [`SHOWN_ANOMALIES`] are kept.
    anomalies: Vec<(String, String)>,
    anomaly_count: u64,
}

/// How many anomalies the summary lists (the audit log has them all).
const SHOWN_ANOMALIES: usize = 20;

#[derive(Debug, Clone, Copy, Default)]
struct DstTotals {
    count: u64,
    blocked: u64,
    up: u64,
    down: u64,
}

impl Summary {
    /// Counts a connection, UDP flow or DNS record; other kinds are ignored. Lookups are only
    /// counted, and listed under their process when refused.
    pub fn add(&mut self, r: &Record) {
        for a in &r.anomalies {
            self.anomaly_count += 1;
            if self.anomalies.len() < SHOWN_ANOMALIES {
                self.anomalies.push((a.kind.clone(), a.detail.clone()));
            }
        }
        if r.kind == Kind::Dns {
            self.add_lookup(r);
            return;
        }
        if r.kind == Kind::Request {
            self.requests += 1;
            self.blocked_requests += u64::from(r.decision == Some(Decision::Blocked));
            return;
        }
        if r.kind == Kind::File {
            self.add_file(r);
            return;
        }
        if !matches!(r.kind, Kind::Connection | Kind::Udp) {
            return;
        }
        self.connections += 1;
        let blocked = r.decision == Some(Decision::Blocked);
        self.blocked += u64::from(blocked);
        let (pid, exe) = r
            .process
            .as_ref()
            .map_or((0, "unknown process".to_string()), |p| {
                (p.pid, p.exe.clone())
            });
        let dst = r.dst.as_ref().map_or_else(
            || "unknown destination".to_string(),
            |d| {
                let ip = if d.ip.contains(':') {
                    format!("[{}]", d.ip)
                } else {
                    d.ip.clone()
                };
                let proto = if d.proto == "tcp" { "" } else { "/udp" };
                match &d.name {
                    Some(name) => format!("{name}:{}{proto} ({ip})", d.port),
                    None => format!("{ip}:{}{proto}", d.port),
                }
            },
        );
        let t = self
            .processes
            .entry((pid, exe))
            .or_default()
            .entry(dst)
            .or_default();
        t.count += 1;
        t.blocked += u64::from(blocked);
        if let Some(b) = r.bytes {
            t.up += b.up;
            t.down += b.down;
        }
    }

    fn add_file(&mut self, _r: &Record) {
        self.file_changes += 1;
    }

    fn add_lookup(&mut self, r: &Record) {
        self.lookups += 1;
        if r.decision != Some(Decision::Blocked) {
            return;
        }
        self.blocked_lookups += 1;
        let (pid, exe) = r
            .process
            .as_ref()
            .map_or((0, "unknown process".to_string()), |p| {
                (p.pid, p.exe.clone())
            });
        let name = r.dns.as_ref().map_or("?", |d| d.qname.as_str());
        let t = self
            .processes
            .entry((pid, exe))
            .or_default()
            .entry(format!("lookup {name}"))
            .or_default();
        t.count += 1;
        t.blocked += 1;
    }

    /// Number of DNS lookups, and how many block mode refused.
    pub fn lookups(&self) -> (u64, u64) {
        (self.lookups, self.blocked_lookups)
    }

    /// Number of connection records.
    pub fn connections(&self) -> u64 {
        self.connections
    }

    /// Number of connections and lookups Warden refused.
    pub fn blocked(&self) -> u64 {
        self.blocked + self.blocked_lookups
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} connection{} from {} process{}",
            self.connections,
            if self.connections == 1 { "" } else { "s" },
            self.processes.len(),
            if self.processes.len() == 1 { "" } else { "es" },
        )?;
        if self.blocked > 0 {
            write!(f, ", {} BLOCKED", self.blocked)?;
        }
        if self.lookups > 0 {
            write!(
                f,
                "; {} DNS lookup{}",
                self.lookups,
                if self.lookups == 1 { "" } else { "s" }
            )?;
            if self.blocked_lookups > 0 {
                write!(f, ", {} BLOCKED", self.blocked_lookups)?;
            }
        }
        if self.requests > 0 {
            write!(
                f,
                "; {} HTTP request{} inspected",
                self.requests,
                if self.requests == 1 { "" } else { "s" }
            )?;
            if self.blocked_requests > 0 {
                write!(f, ", {} BLOCKED", self.blocked_requests)?;
            }
        }
        if self.anomaly_count > 0 {
            write!(
                f,
                "; {} ANOMAL{}",
                self.anomaly_count,
                if self.anomaly_count == 1 { "Y" } else { "IES" }
            )?;
        }
        if self.file_changes > 0 {
            write!(
                f,
                "; {} file record{}",
                self.file_changes,
                if self.file_changes == 1 { "" } else { "s" },
            )?;
        }
        writeln!(f)?;
        for (kind, detail) in &self.anomalies {
            writeln!(f, "  ANOMALY {}: {}", printable(kind), printable(detail))?;
        }
        for ((pid, exe), dsts) in &self.processes {
            writeln!(f, "  {} (pid {pid})", printable(exe))?;
            for (dst, t) in dsts {
                let dst = printable(dst);
                if dst.starts_with("lookup ") {
                    writeln!(f, "    {dst:<44} {:>4} DNS   BLOCKED (NXDOMAIN)", t.count)?;
                    continue;
                }
                write!(
                    f,
                    "    {dst:<44} {:>4} conn  up {:>9}  down {:>9}",
                    t.count,
                    human_bytes(t.up),
                    human_bytes(t.down)
                )?;
                match t.blocked {
                    0 => writeln!(f)?,
                    n if n == t.count => writeln!(f, "  BLOCKED")?,
                    n => writeln!(f, "  {n} BLOCKED")?,
                }
            }
        }
        Ok(())
    }
}

/// `text` with control characters (line breaks included) shown as `?`: the summary goes to a
/// terminal or a CI log, where a job-chosen name must not start a line of its own (a workflow
/// command) or move the cursor.
fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if text.chars().any(char::is_control) {
        text.chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .collect::<String>()
            .into()
    } else {
        text.into()
    }
}

/// `n` bytes for people: `512 B`, `1.5 KiB`, `3.2 GiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{Bytes, Dst, Process};

    fn conn(pid: u32, exe: &str, name: Option<&str>, up: u64) -> Record {
        let mut r = Record::new(Kind::Connection);
        r.process = Some(Process {
            pid,
            exe: exe.into(),
            ..Default::default()
        });
        r.dst = Some(Dst {
            ip: "192.0.2.1".into(),
            port: 443,
            proto: "tcp",
            name: name.map(Into::into),
        });
        r.bytes = Some(Bytes { up, down: 2048 });
        r
    }

    #[test]
    fn groups_by_process_then_destination() {
        let mut s = Summary::default();
        s.add(&conn(7, "/usr/bin/curl", Some("a.example"), 10));
        s.add(&conn(7, "/usr/bin/curl", Some("a.example"), 20));
        s.add(&conn(8, "/usr/bin/python3", None, 5));
        s.add(&Record::new(Kind::Enforcement));
        let mut blocked = conn(9, "/usr/bin/wget", Some("evil.example"), 1);
        blocked.decision = Some(Decision::Blocked);
        s.add(&blocked);
        let text = s.to_string();
        assert_eq!((s.connections(), s.blocked()), (4, 1));
        assert!(
            text.starts_with("4 connections from 3 processes, 1 BLOCKED"),
            "{text}"
        );
        assert!(text.contains("evil.example:443 (192.0.2.1)"), "{text}");
        assert!(text.contains("BLOCKED\n"), "{text}");
        assert!(text.contains("/usr/bin/curl (pid 7)"), "{text}");
        assert!(text.contains("a.example:443 (192.0.2.1)"), "{text}");
        assert!(
            text.contains("   2 conn  up      30 B  down   4.0 KiB"),
            "{text}"
        );
        assert!(text.contains("192.0.2.1:443"), "{text}");
    }

    #[test]
    fn lookups_are_counted_and_refused_ones_listed() {
        let mut s = Summary::default();
        let lookup = |name: &str, blocked: bool| {
            let mut r = Record::new(Kind::Dns);
            r.process = Some(Process {
                pid: 7,
                exe: "/usr/bin/dig".into(),
                ..Default::default()
            });
            r.dns = Some(crate::audit::Dns {
                qname: name.into(),
                qtype: "A".into(),
                rcode: None,
                answers: vec![],
                upstream: None,
            });
            r.decision = Some(if blocked {
                Decision::Blocked
            } else {
                Decision::Allowed
            });
            r
        };
        s.add(&lookup("ok.example", false));
        s.add(&lookup("evil.example", true));
        s.add(&lookup("evil.example", true));
        let text = s.to_string();
        assert_eq!((s.connections(), s.blocked(), s.lookups()), (0, 2, (3, 2)));
        assert!(text.contains("3 DNS lookups, 2 BLOCKED"), "{text}");
        assert!(text.contains("lookup evil.example"), "{text}");
        assert!(!text.contains("ok.example"), "{text}");
    }

    #[test]
    fn human_bytes_units() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
    }

    #[test]
    fn file_records_are_counted_and_their_anomalies_listed() {
        let mut s = Summary::default();
        for i in 0..25 {
            let mut r = Record::new(Kind::File);
            r.file = Some(crate::audit::FileChange {
                path: format!("src/f{i}.rs"),
                op: "write",
                ..Default::default()
            });
            if i % 2 == 0 {
                r.anomaly("source-modified", "differs");
            }
            s.add(&r);
        }
        let text = s.to_string();
        assert_eq!(s.connections(), 0);
        assert!(text.contains("; 13 ANOMALIES; 25 file records"), "{text}");
        assert_eq!(
            text.matches("\n  ANOMALY source-modified: ").count(),
            13,
            "{text}"
        );
    }
}
