//! The connection's audit record, kept as the connection goes and written exactly once.

use std::{
    sync::{Arc, atomic::Ordering},
    time::Instant,
};

use sniff::Sniffed;

use super::{Context, relay::Counters};
use crate::{
    audit::{Bytes, Decision, Dst, Http, Kind, Record, Tls},
    ebpf::Original,
    policy,
};

/// What the first bytes said that the policy needs.
#[derive(Debug, Clone, Default)]
pub struct Claimed {
    /// SNI or HTTP Host (lowercase, no port), when it is a name.
    pub name: Option<String>,
    /// The ClientHello carried ECH: `name` is only the outer, public name.
    pub ech: bool,
    /// The client speaks plain HTTP/1 (a block is answered with a 403 page).
    pub http: bool,
    /// It began as TLS or HTTP but its name could not be read (why): judged by address only.
    pub unidentified: Option<&'static str>,
    /// ALPN protocols the ClientHello offered (TLS only).
    pub alpn: Vec<String>,
}

/// The connection's record, written exactly once when the guard drops: on success, on every
/// error path, and when the task is cancelled at shutdown.
pub struct RecordGuard {
    ctx: Arc<Context>,
    rec: Record,
    started: Instant,
    pub counters: Counters,
    /// False when the handler was dropped mid-way (warden stopping with the connection open).
    pub completed: bool,
}

impl RecordGuard {
    pub fn new(ctx: Arc<Context>) -> Self {
        let rec = Record::new(Kind::Connection);
        Self {
            ctx,
            rec,
            started: Instant::now(),
            counters: Counters::default(),
            completed: false,
        }
    }

    pub fn flag(&mut self, flag: &str) {
        self.rec.flags.push(flag.to_string());
    }

    /// Sets the reason; once the policy has given its own, this one (how the connection ended) is
    /// added to it rather than replacing why the connection was allowed or audited.
    pub fn reason(&mut self, reason: impl Into<String>) {
        let reason = reason.into();
        self.rec.reason = Some(match self.rec.reason.take() {
            Some(policy) if self.rec.decision.is_some() => format!("{policy}; then {reason}"),
            _ => reason,
        });
    }

    pub fn origin(&mut self, orig: &Original) {
        self.rec.dst = Some(Dst {
            ip: orig.dst.ip().to_string(),
            port: orig.dst.port(),
            proto: "tcp",
            name: None,
        });
        if orig.v4_mapped {
            self.flag("v4-mapped");
        }
        // Resolved now, not at close: by then the pid may belong to another process.
        if let (Some(procs), true) = (&self.ctx.processes, orig.pid != 0) {
            self.rec.process = Some(procs.lookup(orig.pid, &orig.comm));
        }
    }

    /// Names the destination when the connection itself did not (the name the job resolved
    /// its address from).
    pub fn dst_name(&mut self, name: String) {
        if let Some(dst) = self.rec.dst.as_mut()
            && dst.name.is_none()
        {
            dst.name = Some(name);
        }
    }

    /// Records what the first bytes said; returns what the policy needs of it.
    pub fn sniffed(&mut self, s: Sniffed) -> Claimed {
        let mut alpn = Vec::new();
        let (name, ech, http) = match s {
            Sniffed::Tls(hello) => {
                let (sni, ech) = (hello.sni.clone(), hello.ech);
                alpn.clone_from(&hello.alpn);
                self.rec.tls = Some(Tls {
                    sni: hello.sni,
                    alpn: hello.alpn,
                    ech: hello.ech,
                });
                (sni, ech, false)
            }
            Sniffed::Http(head) => {
                // An IP literal in Host is not a name.
                let host = head
                    .host_without_port()
                    .filter(|h| h.parse::<std::net::IpAddr>().is_err())
                    .map(str::to_string);
                self.rec.http = Some(Http {
                    host: head.host.clone(),
                    method: head.method.clone(),
                    url: crate::proxy::inspect::judge::redact_secrets(
                        &self.ctx.policy,
                        strip_query(&head.path),
                    ),
                    version: None,
                    status: None,
                });
                (host, false, true)
            }
        };
        if let Some(dst) = self.rec.dst.as_mut() {
            dst.name = name.clone();
        }
        Claimed {
            name,
            ech,
            http,
            unidentified: None,
            alpn,
        }
    }

    /// The policy refused the connection after it had been allowed (a later request broke it).
    pub fn blocked_midway(&mut self) {
        self.rec.decision = Some(Decision::Blocked);
        self.rec.rule = None;
    }

    /// Records a connection Warden closed before the policy could judge it: `blocked` in block
    /// mode (and counted as such), `audited` in audit mode.
    pub fn refused(&mut self, mode: policy::Mode, reason: String) {
        self.rec.decision = Some(match mode {
            policy::Mode::Block => Decision::Blocked,
            policy::Mode::Audit => Decision::Audited,
        });
        self.rec.reason = Some(reason);
    }

    /// The record so far (inspection copies its process and destination into request records).
    pub fn record(&self) -> &Record {
        &self.rec
    }

    /// Records a connection Warden refused whatever the mode (a server it cannot verify).
    pub fn refused_always(&mut self, reason: String) {
        self.rec.decision = Some(Decision::Blocked);
        self.rec.rule = None;
        // The policy's advice (a rule to add) would not help: replace it.
        self.rec.reason = Some(reason);
    }

    /// Records the policy's decision.
    pub fn decided(&mut self, d: &policy::Decision) {
        self.rec.decision = Some(match d.verdict {
            policy::Verdict::Allowed => Decision::Allowed,
            policy::Verdict::Blocked => Decision::Blocked,
            policy::Verdict::Audited => Decision::Audited,
        });
        self.rec.rule.clone_from(&d.rule);
        self.rec.reason = Some(match &d.suggestion {
            Some(entry) => format!(
                "{}; to allow it, add to allowed-endpoints: {entry}",
                d.reason
            ),
            None => d.reason.clone(),
        });
        for flag in &d.flags {
            if crate::audit::ANOMALY_FLAGS.contains(flag) {
                self.rec.anomaly(flag, d.reason.clone());
            } else if !self.rec.flags.iter().any(|f| f == flag) {
                self.rec.flags.push((*flag).to_string());
            }
        }
    }
}

/// Query strings can carry signed-URL secrets; records never keep them.
fn strip_query(target: &str) -> &str {
    target.split(['?', '#']).next().unwrap_or(target)
}

impl Drop for RecordGuard {
    fn drop(&mut self) {
        let rec = &mut self.rec;
        rec.duration_ms =
            Some(u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX));
        rec.bytes = Some(Bytes {
            up: self.counters.up.load(Ordering::Relaxed),
            down: self.counters.down.load(Ordering::Relaxed),
        });
        if std::thread::panicking() {
            rec.flags.push("internal-error".into());
        } else if !self.completed {
            rec.flags.push("interrupted".into());
            rec.append_reason("closed by warden while still open: enforcement was stopping");
        }
        self.ctx.log.write(rec);
    }
}

#[cfg(test)]
mod tests {
    use super::strip_query;

    #[test]
    fn query_and_fragment_never_reach_records() {
        assert_eq!(strip_query("/a/b?X-Amz-Signature=secret"), "/a/b");
        assert_eq!(strip_query("/a#frag"), "/a");
        assert_eq!(strip_query("http://h/p?q"), "http://h/p");
        assert_eq!(strip_query(""), "");
    }
}
