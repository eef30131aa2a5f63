//! Warden's DNS layer (issue #5): every lookup of the job goes through here.
//!
//! The eBPF hooks send the job's port-53 traffic (UDP and TCP, IPv4 and IPv6, to any resolver
//! address, loopback stubs included) to a resolver inside `warden` ([`server`]). Each query is
//! judged ([`judge`]), forwarded to the machine's real resolver ([`upstream`]) unless block mode
//! refuses it (NXDOMAIN, never forwarded), and recorded as one `dns` record with the process that
//! asked. Its answers are remembered ([`names`]) so that a connection to an address is recorded
//! with the name it was resolved from and the anti-spoofing check uses what the job itself was
//! told. ECH configurations are stripped from HTTPS/SVCB answers (clients would otherwise hide
//! the real server name from the proxy). The wire format is hickory's, in `sniff::dns`.

pub mod doh;
pub mod judge;
pub mod names;
pub mod server;
pub mod tunnel;
pub mod upstream;

use std::{net::SocketAddr, sync::Arc, sync::Mutex, time::Instant};

use sniff::dns::{Query, Rcode};

use crate::{
    audit::{self, AuditLog, Decision as RecordDecision, Dst, Kind, Record},
    ebpf::{OrigDstTable, Original},
    policy::{Decision, Policy, Verdict},
    process::ProcessTracker,
};
pub use names::Names;
pub use upstream::Upstreams;

/// How the DNS layer is configured (`None` in the session: `--no-dns`).
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--dns-upstream`; `None`: the machine's resolvers.
    pub upstreams: Option<Upstreams>,
}

/// How a query reached the resolver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// A datagram.
    Udp,
    /// A DNS-over-TCP stream.
    Tcp,
}

/// Who sent a query.
#[derive(Debug, Clone)]
pub struct Asker {
    /// The query's source address as the resolver received it.
    pub source: SocketAddr,
    /// UDP or TCP.
    pub transport: Transport,
    /// What the hook recorded (TCP: from the proxy; UDP: looked up by `source`).
    pub orig: Option<Original>,
}

/// The resolver: policy, upstreams, the job's answers, and where records go.
pub struct Dns {
    policy: Arc<Policy>,
    log: Arc<AuditLog>,
    processes: Option<Arc<ProcessTracker>>,
    peers: Option<OrigDstTable>,
    upstreams: Upstreams,
    /// What the job resolved.
    pub names: Names,
    tunnel: Mutex<tunnel::TunnelDetector>,
}

impl Dns {
    /// A resolver forwarding to `upstreams`; `peers` is the table the eBPF egress hook fills
    /// with who sent each query. The machine's hosts file is read now as the first answers.
    pub fn new(
        policy: Arc<Policy>,
        log: Arc<AuditLog>,
        processes: Option<Arc<ProcessTracker>>,
        peers: Option<OrigDstTable>,
        upstreams: Upstreams,
    ) -> Self {
        let names = Names::default();
        names.load_hosts(&std::fs::read_to_string("/etc/hosts").unwrap_or_default());
        Self {
            policy,
            log,
            processes,
            peers,
            upstreams,
            names,
            tunnel: Mutex::default(),
        }
    }

    /// The upstream servers.
    pub fn upstreams(&self) -> &Upstreams {
        &self.upstreams
    }

    /// Answers one query and writes its record. `None` when nothing at all can be said (not
    /// even a DNS header, or a response sent as a query).
    ///
    /// The record is written when the answer is given, or, if the future is dropped first
    /// (Warden stopping), flagged `interrupted`.
    pub async fn answer(&self, bytes: &[u8], asker: Asker) -> Option<Vec<u8>> {
        let orig = asker.orig.clone().or_else(|| match asker.transport {
            Transport::Udp => self.peers.as_ref()?.get(asker.source),
            Transport::Tcp => None,
        });
        let mut guard = QueryRecord {
            rec: self.record_for(&asker, orig.as_ref()),
            log: &self.log,
            started: Instant::now(),
            completed: false,
        };
        let rec = &mut guard.rec;
        if orig.is_none() {
            // Not redirected by the hooks: not the job's lookup (another process of the host,
            // or one of the job's sent straight to this port). Refused, not forwarded.
            rec.decision = Some(RecordDecision::Blocked);
            rec.reason = Some(
                "sent straight to Warden's resolver, not redirected by its hooks: refused".into(),
            );
            let reply = match sniff::dns::parse_query(bytes) {
                Ok(query) => {
                    rec.dns = Some(audit::Dns {
                        qname: query.name.clone(),
                        qtype: query.qtype_name(),
                        rcode: Some("REFUSED".into()),
                        answers: Vec::new(),
                        upstream: None,
                    });
                    Some(query.reply(Rcode::Refused))
                }
                Err(_) => sniff::dns::formerr(bytes),
            };
            guard.completed = true;
            return reply;
        }
        let reply = match sniff::dns::parse_query(bytes) {
            Ok(query) => {
                self.resolve(&query, bytes, &asker, orig.as_ref(), rec)
                    .await
            }
            Err(e) => {
                rec.decision = Some(RecordDecision::Blocked);
                rec.flags.push("malformed-query".into());
                let reply = sniff::dns::formerr(bytes);
                let answered = if reply.is_some() {
                    "answered FORMERR"
                } else {
                    "not answered"
                };
                rec.reason = Some(format!("malformed query, {answered}: {e}"));
                reply
            }
        };
        guard.completed = true;
        reply
    }

    /// A `dns` record naming who asked and which resolver they asked.
    fn record_for(&self, asker: &Asker, orig: Option<&Original>) -> Record {
        let mut rec = Record::new(Kind::Dns);
        let proto = match asker.transport {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        };
        match orig {
            Some(o) => {
                rec.dst = Some(Dst {
                    ip: o.dst.ip().to_string(),
                    port: o.dst.port(),
                    proto,
                    name: None,
                });
                if let (Some(procs), true) = (&self.processes, o.pid != 0) {
                    rec.process = Some(procs.lookup(o.pid, &o.comm));
                }
                if o.v4_mapped {
                    rec.flags.push("v4-mapped".into());
                }
            }
            // Sent straight to Warden's own port, or the hook's table had no room.
            None => rec.flags.push("unattributed".into()),
        }
        rec
    }

    async fn resolve(
        &self,
        query: &Query,
        bytes: &[u8],
        asker: &Asker,
        orig: Option<&Original>,
        rec: &mut Record,
    ) -> Option<Vec<u8>> {
        let decision = {
            let mut tunnel = self.tunnel.lock().unwrap_or_else(|e| e.into_inner());
            judge::judge(&self.policy, &mut tunnel, &query.name, query.qtype, |ip| {
                self.names.knows(ip)
            })
        };
        decided(rec, &decision);
        let mut info = audit::Dns {
            qname: query.name.clone(),
            qtype: query.qtype_name(),
            rcode: None,
            answers: Vec::new(),
            upstream: None,
        };
        tracing::debug!(dns.qname = %query.name, process.pid = orig.map_or(0, |o| o.pid), verdict = %decision.verdict, "query");
        if decision.verdict == Verdict::Blocked {
            info.rcode = Some("NXDOMAIN".into());
            rec.dns = Some(info);
            return Some(query.reply(Rcode::NxDomain));
        }
        // Written now too, so a record cut short (Warden stopping) still names the query.
        rec.dns = Some(info.clone());
        let id = query.id.to_be_bytes();
        let matches = |r: &[u8]| r.len() >= 12 && r[..2] == id;
        let forward = async {
            match asker.transport {
                Transport::Udp => self.upstreams.udp(bytes, matches).await,
                Transport::Tcp => self.upstreams.tcp(bytes, matches).await,
            }
        };
        // Clients give up after a few seconds; an answer later than this helps nobody.
        let forwarded = match tokio::time::timeout(QUERY_TIMEOUT, forward).await {
            Ok(result) => result,
            Err(_) => Err(upstream::Error::Failed {
                servers: self.upstreams.list(),
                last: format!("no answer within {} s", QUERY_TIMEOUT.as_secs()),
            }),
        };
        let reply = match forwarded {
            Ok((reply, server)) => {
                info.upstream = Some(server.to_string());
                match sniff::dns::read_answer(query, &reply) {
                    Ok(answer) => {
                        let ips: Vec<_> =
                            answer.addresses().into_iter().map(|(ip, _)| ip).collect();
                        self.names.remember(&answer.names(&query.name), &ips);
                        if answer.ech_stripped {
                            rec.flags.push("ech-stripped".into());
                        }
                        info.rcode = Some(answer.rcode.clone());
                        info.answers = answer.records;
                        answer.bytes
                    }
                    Err(e) => {
                        rec.flags.push("malformed-answer".into());
                        rec.append_reason(&format!(
                            "upstream answer unusable, answered SERVFAIL: {e}"
                        ));
                        info.rcode = Some("SERVFAIL".into());
                        query.reply(Rcode::ServFail)
                    }
                }
            }
            Err(e) => {
                rec.flags.push("upstream-error".into());
                rec.append_reason(&format!("answered SERVFAIL: {e}"));
                info.rcode = Some("SERVFAIL".into());
                query.reply(Rcode::ServFail)
            }
        };
        rec.dns = Some(info);
        Some(reply)
    }
}

/// The longest a query may wait for the upstream servers.
const QUERY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// A query's record, written exactly once: when the query is answered, or when its future is
/// dropped (flagged `interrupted`).
struct QueryRecord<'a> {
    rec: Record,
    log: &'a AuditLog,
    started: Instant,
    completed: bool,
}

impl Drop for QueryRecord<'_> {
    fn drop(&mut self) {
        let rec = &mut self.rec;
        rec.duration_ms =
            Some(u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX));
        if !self.completed {
            rec.flags.push("interrupted".into());
            rec.append_reason("Warden stopped before the query was answered");
        }
        self.log.write(rec);
    }
}

/// Copies a decision into a record (as the proxy's record guard does for connections).
fn decided(rec: &mut Record, d: &Decision) {
    rec.decision = Some(match d.verdict {
        Verdict::Allowed => RecordDecision::Allowed,
        Verdict::Blocked => RecordDecision::Blocked,
        Verdict::Audited => RecordDecision::Audited,
    });
    rec.rule.clone_from(&d.rule);
    rec.reason = Some(match &d.suggestion {
        Some(entry) => format!(
            "{}; to allow it, add to allowed-endpoints: {entry}",
            d.reason
        ),
        None => d.reason.clone(),
    });
    for flag in &d.flags {
        if crate::audit::ANOMALY_FLAGS.contains(flag) {
            rec.anomaly(flag, d.reason.clone());
        } else {
            rec.flags.push((*flag).to_string());
        }
    }
}
