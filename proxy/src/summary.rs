//! The short human summary `warden run` prints at the end: destinations per process.

use std::{collections::BTreeMap, fmt};

use crate::audit::{Decision, Kind, Record};

/// Connections aggregated by process, then by destination.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    processes: BTreeMap<(u32, String), BTreeMap<String, DstTotals>>,
    connections: u64,
    blocked: u64,
}

#[derive(Debug, Clone, Copy, Default)]
struct DstTotals {
    count: u64,
    blocked: u64,
    up: u64,
    down: u64,
}

impl Summary {
    /// Counts a connection record; other kinds are ignored.
    pub fn add(&mut self, r: &Record) {
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

    /// Number of connection records.
    pub fn connections(&self) -> u64 {
        self.connections
    }

    /// Number of connections block mode refused.
    pub fn blocked(&self) -> u64 {
        self.blocked
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
        writeln!(f)?;
        for ((pid, exe), dsts) in &self.processes {
            writeln!(f, "  {exe} (pid {pid})")?;
            for (dst, t) in dsts {
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

fn human_bytes(n: u64) -> String {
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
    fn human_bytes_units() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
    }
}
