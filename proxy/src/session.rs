//! An enforcement session: the hooks attached to one cgroup, the proxy serving it, the process
//! table and the audit log, from the `start` record to the `stop` record.
//!
//! `warden run` opens one around a command in a cgroup it creates; the daemon (`warden start`)
//! opens one on a cgroup it is given. Closing a session is ordered so that nothing escapes the
//! log: open connections get a grace period, then are cancelled (each writes its record, and the
//! accept backlog is taken too), UDP flows are written, and only then are the hooks detached and
//! the `stop` record written.

use std::{sync::Arc, time::Duration};

use tokio::task::JoinHandle;

use crate::{
    audit::{AuditLog, DnsLayer, Enforcement, Kind, Record},
    cgroup::JobCgroup,
    dns,
    ebpf::{self, Settings},
    policy::{Mode, Policy},
    process::ProcessTracker,
    proxy::{Context, Listeners},
};

/// Errors opening a session: all Warden's own (exit 125 for `run`).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// eBPF setup failed.
    #[error(transparent)]
    Ebpf(#[from] ebpf::Error),
    /// The machine's resolvers could not be found.
    #[error(transparent)]
    Dns(#[from] dns::upstream::Error),
    /// TLS inspection could not be set up.
    #[error("TLS inspection: {0}")]
    Inspection(#[from] crate::inspection::Error),
    /// File monitoring could not be set up.
    #[error(transparent)]
    Files(#[from] crate::files::Error),
    /// Something else failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Names the trust-store state of a session: per cgroup for daemons, which enforce on a cgroup
/// they were given (so `stop` and the cleanup after a crash find it); per process for
/// `warden run`, which made its own cgroup.
pub fn trust_id(cgroup: &JobCgroup) -> String {
    if cgroup.owned() {
        format!("run-{}-{}", std::process::id(), cgroup.id())
    } else {
        format!("cg-{}", cgroup.id())
    }
}

fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::Io { what, source }
}

/// What [`Session::verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Integrity {
    /// Every hook attached.
    Intact,
    /// Some were detached (by someone else) and are attached again.
    Recovered(String),
    /// Some are detached and could not be attached again.
    Lost(String),
}

/// Enforcement on one cgroup, live.
pub struct Session {
    /// The proxy's shared state (log, policy, process table).
    pub ctx: Arc<Context>,
    /// The process table.
    pub processes: Arc<ProcessTracker>,
    serving: JoinHandle<()>,
    /// Stops the resolver (after the connections: DNS over TCP goes through the proxy).
    dns_stop: tokio::sync::watch::Sender<bool>,
    dns_serving: Option<JoinHandle<()>>,
    /// Variables the job's processes must see (TLS inspection's CA bundles).
    job_env: Vec<(String, String)>,
    /// File monitoring (`--workspace`), drained at close.
    files: Option<crate::files::Monitor>,
    handle: EnforcementHandle,
}

/// File monitoring for a session: the workspace, the policy's rules, and Warden's own files
/// beyond the audit log and trust store (the daemon's state directory).
#[derive(Debug, Clone, Default)]
pub struct FilesSetup {
    /// Workspace and rules.
    pub options: crate::files::Options,
    /// More of Warden's own paths to guard.
    pub warden_files: Vec<std::path::PathBuf>,
}

impl Session {
    /// Binds the proxy, attaches the hooks to `cgroup` (their links pinned in `pin`, if given, so
    /// they outlive this process), starts serving and writes the `start` record. On error nothing
    /// stays attached (and an owned cgroup is removed).
    pub async fn start(
        cgroup: JobCgroup,
        policy: Arc<Policy>,
        log: Arc<AuditLog>,
        pin: Option<&std::path::Path>,
        dns: Option<dns::Options>,
        upstream_ca: &[std::path::PathBuf],
        files: Option<FilesSetup>,
    ) -> Result<Session, Error> {
        log.protect(policy.exfil());
        // The CA and its trust first: nothing is attached yet if they cannot be set up.
        let inspection = if policy.inspection().needed() {
            Some(crate::inspection::setup(
                &policy,
                upstream_ca,
                &trust_id(&cgroup),
            )?)
        } else {
            None
        };
        let listeners = Listeners::bind(0).await.map_err(io("bind proxy"))?;
        let port = listeners.port();
        // The machine's resolvers are read once, before the job runs and can change them.
        let dns = match dns {
            Some(opts) => {
                let upstreams = match opts.upstreams {
                    Some(u) => u,
                    None => dns::Upstreams::from_system()?,
                };
                let sockets = dns::server::Listeners::bind()
                    .await
                    .map_err(io("bind the DNS resolver"))?;
                Some((upstreams, sockets))
            }
            None => None,
        };
        let settings = Settings {
            proxy_port: port,
            netns_cookie: listeners
                .netns_cookie()
                .map_err(io("read the network namespace cookie"))?,
            dns_port: dns.as_ref().map(|(_, sockets)| sockets.port()),
        };
        // Without the DNS layer, DNS to the machine's resolvers stays open in block mode
        // (loopback stubs such as 127.0.0.53 are then never hooked).
        let resolvers = match dns {
            Some(_) => Vec::new(),
            None => crate::udp::resolvers(
                &std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
            ),
        };
        let udp = ebpf::UdpSettings {
            block: policy.mode() == Mode::Block,
            allow: crate::udp::allow_entries(&policy, &resolvers),
        };
        let (redirect, tables) = ebpf::attach(&cgroup, settings, &udp, pin)?;
        let processes = ProcessTracker::new(tables.events).map_err(io("process events"))?;
        tokio::spawn(processes.clone().run());
        let (dns_stop, _) = tokio::sync::watch::channel(false);
        let (resolver, dns_info, dns_serving) = match dns {
            Some((upstreams, sockets)) => {
                let info = DnsLayer {
                    resolver: format!("127.0.0.1:{}", sockets.port()),
                    upstreams: upstreams
                        .servers()
                        .iter()
                        .map(ToString::to_string)
                        .collect(),
                };
                let resolver = Arc::new(dns::Dns::new(
                    policy.clone(),
                    log.clone(),
                    Some(processes.clone()),
                    Some(tables.dns_peers),
                    upstreams,
                ));
                let serving = tokio::spawn(sockets.serve(resolver.clone(), dns_stop.subscribe()));
                (Some(resolver), Some(info), Some(serving))
            }
            None => (None, None, None),
        };
        let ctx = Context::new(
            log.clone(),
            Some(processes.clone()),
            Some(tables.orig_dst),
            policy.clone(),
            resolver,
            inspection.as_ref().map(|i| i.inspector.clone()),
        );
        let serving = tokio::spawn(listeners.serve(ctx.clone()));
        let job_env = inspection
            .as_ref()
            .map(crate::inspection::Setup::job_env)
            .unwrap_or_default();
        // Before the job's first command, so the checkout is seen too.
        let files = match files {
            Some(setup) => {
                let mut guarded = setup.warden_files;
                guarded.push(log.path().to_path_buf());
                if let Some(i) = &inspection {
                    guarded.push(i.installed.state_dir().to_path_buf());
                    guarded.extend(i.installed.modified().into_iter().map(Into::into));
                }
                Some(crate::files::Monitor::start(
                    &setup.options,
                    guarded,
                    log.clone(),
                    Some(processes.clone()),
                    Some(cgroup.path()),
                )?)
            }
            None => None,
        };
        let info = Enforcement {
            event: "start",
            mode: match policy.mode() {
                Mode::Audit => "audit",
                Mode::Block => "block",
            },
            cgroup: cgroup.path().display().to_string(),
            programs: redirect.program_ids().to_vec(),
            proxy: Some(format!("127.0.0.1:{port}")),
            dns: dns_info,
            inspection: inspection.as_ref().map(|i| i.ca_name.clone()),
            lost_process_events: None,
            files: files.as_ref().map(|f| f.info().clone()),
            job: crate::audit::Job::from_env(|k| std::env::var(k).ok()),
        };
        let mut start = Record::new(Kind::Enforcement);
        start.enforcement = Some(info.clone());
        log.write(&start);
        // UDP flow records from now on go straight to the log (after the start record).
        processes.write_udp_to(log.clone(), policy.clone());
        Ok(Session {
            ctx,
            processes,
            serving,
            dns_stop,
            dns_serving,
            job_env,
            files,
            handle: EnforcementHandle {
                trust: inspection.map(|i| i.installed),
                redirect: Some(redirect),
                cgroup: Some(cgroup),
                info,
                log,
            },
        })
    }

    /// The cgroup enforced on.
    pub fn cgroup(&self) -> &JobCgroup {
        self.handle.cgroup()
    }

    /// Variables the job's processes must see (`NAME`, `VALUE`): the CA bundles of TLS
    /// inspection. Empty without inspection.
    pub fn job_env(&self) -> &[(String, String)] {
        &self.job_env
    }

    /// Checks that every hook is still attached to the cgroup; re-attaches what is not.
    pub fn verify(&mut self) -> Integrity {
        let Some(redirect) = self.handle.redirect.as_mut() else {
            return Integrity::Intact;
        };
        let detached = redirect.detached();
        if detached.is_empty() {
            return Integrity::Intact;
        }
        let what = format!("hooks {detached:?} were detached from the cgroup");
        match redirect.reattach(&detached) {
            Ok(()) => Integrity::Recovered(what),
            Err(e) => Integrity::Lost(format!("{what}; re-attaching failed: {e}")),
        }
    }

    /// What the `start` record said.
    pub fn info(&self) -> &Enforcement {
        &self.handle.info
    }

    /// Ends the session's traffic: connections get `grace` to finish, then are cancelled; every
    /// connection and UDP flow record is written. Returns the handle whose drop detaches the
    /// hooks and writes the `stop` record (after the runtime has dropped any straggler).
    pub async fn close(self, grace: Duration) -> EnforcementHandle {
        let ctx = &self.ctx;
        let open = ctx.wait_idle(grace).await;
        if open > 0 {
            tracing::warn!(open, "connections still open at stop; closing them");
        }
        ctx.cancel();
        let _ = self.serving.await;
        let left = ctx.wait_idle(Duration::from_secs(2)).await;
        if left > 0 {
            tracing::error!(left, "connection handlers did not finish");
        }
        // Queries in flight get a moment to be answered and recorded.
        self.dns_stop.send_replace(true);
        if let Some(serving) = self.dns_serving {
            let _ = serving.await;
        }
        for flow in self.processes.take_udp_flows() {
            ctx.log.write(&flow.record(&ctx.policy));
        }
        let mut handle = self.handle;
        // Every change the kernel queued before now gets its record, then the end-of-job
        // comparison, all before the `stop` record.
        if let Some(monitor) = self.files {
            let info = tokio::task::spawn_blocking(move || monitor.finish()).await;
            handle.info.files = info.ok();
        }
        handle
    }
}

/// Keeps the hooks attached and the cgroup alive. Dropping it — on success or on any error after
/// enforcement started — detaches the programs, removes the cgroup and writes the `stop` record.
pub struct EnforcementHandle {
    /// TLS inspection's trust-store changes, undone at stop.
    trust: Option<certs::trust::Installed>,
    redirect: Option<ebpf::Redirect>,
    cgroup: Option<JobCgroup>,
    info: Enforcement,
    log: Arc<AuditLog>,
}

impl EnforcementHandle {
    /// The cgroup enforced on.
    pub fn cgroup(&self) -> &JobCgroup {
        self.cgroup
            .as_ref()
            .expect("the cgroup lives until the handle drops")
    }
}

impl Drop for EnforcementHandle {
    fn drop(&mut self) {
        let lost = self
            .redirect
            .as_ref()
            .map_or(0, ebpf::Redirect::lost_events);
        drop(self.redirect.take());
        let mut errors = Vec::new();
        if let Some(Err(e)) = self.trust.take().map(certs::trust::Installed::restore) {
            eprintln!("warden: restoring the trust store: {e}");
            errors.push(format!("restoring the trust store: {e}"));
        }
        if let Some(Err(e)) = self.cgroup.take().map(JobCgroup::remove) {
            eprintln!("warden: {e}");
            errors.push(e.to_string());
        }
        if lost > 0 {
            eprintln!(
                "warden: {lost} process event(s) were lost; some records may lack the executable or ancestry"
            );
        }
        let mut stop = Record::new(Kind::Enforcement);
        stop.enforcement = Some(Enforcement {
            event: "stop",
            proxy: None,
            dns: None,
            inspection: None,
            lost_process_events: (lost > 0).then_some(lost),
            job: None,
            ..self.info.clone()
        });
        if !errors.is_empty() {
            stop.reason = Some(errors.join("; "));
        }
        self.log.write(&stop);
    }
}
