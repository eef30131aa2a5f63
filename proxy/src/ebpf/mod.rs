//! Loads Warden's eBPF object and attaches it to the job's cgroup.
//!
//! The object (built from `redirect-ebpf/` by `build.rs`) carries the connect4/connect6 redirect
//! (which also refuses QUIC, as do sendmsg4/sendmsg6 for unconnected UDP), the sockops program
//! that re-keys original destinations by client address, the DNS redirect (UDP 53 to Warden's
//! resolver, recvmsg/getpeername restoring the server asked, a cgroup_skb egress program naming
//! each query's sender), and the `sched` tracepoints for the process table. Everything is attached
//! through links owned by [`Redirect`]: dropping it detaches the hooks and unloads the programs,
//! which is how `warden run` cleans up. It also means a `warden run` killed with SIGKILL fails
//! open (audit mode): the links go with the process while the job keeps running; block-mode
//! daemons pin their links instead (fail-closed). The maps userspace reads are in [`tables`].

use std::{
    fs::File,
    path::{Path, PathBuf},
};

use aya::{
    Ebpf, EbpfLoader,
    maps::{
        HashMap, MapData, PerCpuArray, RingBuf,
        lpm_trie::{Key, LpmTrie},
    },
    programs::{
        CgroupAttachMode, CgroupSkbAttachType, TracePoint, links::FdLink, links::PinnedLink,
    },
};
use redirect_ebpf::{
    GLOBAL_BLOCK_UDP, GLOBAL_CGROUP_ID, GLOBAL_DNS_PORT, GLOBAL_FORK_CHILD_PID_OFFSET,
    GLOBAL_NETNS_COOKIE, GLOBAL_PROXY_PORT, MAP_DNS_PEER, MAP_EXEMPT, MAP_LOST_EVENTS,
    MAP_ORIG_DST, MAP_PROC_EVENTS, MAP_UDP_ALLOW, OrigDst, SockKey, UdpAllow,
};

use crate::{cgroup::JobCgroup, tracefs};

mod tables;

pub use tables::{Exempt, OrigDstTable, Original, c_str, exempt};

static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/redirect-ebpf"));

const CGROUP_PROGRAMS: [&str; 11] = [
    "warden_sock_create",
    "warden_connect4",
    "warden_connect6",
    "warden_sendmsg4",
    "warden_sendmsg6",
    "warden_recvmsg4",
    "warden_recvmsg6",
    "warden_getpeername4",
    "warden_getpeername6",
    "warden_egress",
    "warden_sock_ops",
];
const TRACEPOINTS: [(&str, &str, &str); 5] = [
    ("warden_sys_enter_execve", "syscalls", "sys_enter_execve"),
    (
        "warden_sys_enter_execveat",
        "syscalls",
        "sys_enter_execveat",
    ),
    ("warden_sched_fork", "sched", "sched_process_fork"),
    ("warden_sched_exec", "sched", "sched_process_exec"),
    ("warden_sched_exit", "sched", "sched_process_exit"),
];

/// Errors loading or attaching the eBPF programs. Internal: Warden or the host is at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The object was not built (AYA_BUILD_SKIP) or is corrupt.
    #[error("load eBPF object: {0}")]
    Load(#[from] aya::EbpfError),
    /// A program failed to load (verifier) or attach.
    #[error("eBPF program {name}: {source}")]
    Program {
        /// Program name.
        name: &'static str,
        /// aya's error (includes the verifier log).
        source: aya::programs::ProgramError,
    },
    /// A map was missing or had the wrong type.
    #[error("eBPF map {name}: {detail}")]
    Map {
        /// Map name.
        name: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// The cgroup directory could not be opened.
    #[error("open cgroup {path}: {source}")]
    Cgroup {
        /// Cgroup directory.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Tracefs was not usable.
    #[error(transparent)]
    Tracefs(#[from] tracefs::Error),
    /// A link could not be pinned.
    #[error("pin {path}: {detail}")]
    Pin {
        /// Pin path.
        path: String,
        /// What went wrong.
        detail: String,
    },
}

/// What the programs need to know, set as globals before loading.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Port the proxy listens on, on 127.0.0.1 and [::1].
    pub proxy_port: u16,
    /// Cookie of the network namespace the proxy listens in; connects from others are refused.
    pub netns_cookie: u64,
    /// Port of Warden's resolver on 127.0.0.1 and [::1]; `None` leaves DNS alone (`--no-dns`).
    pub dns_port: Option<u16>,
}

/// Where to pin the cgroup links so they outlive the process (block-mode daemons: a daemon that
/// dies leaves connects redirected to a port nobody listens on, i.e. refused: fail-closed).
pub fn pin_dir(cgroup_id: u64) -> PathBuf {
    Path::new(BPFFS)
        .join("warden")
        .join(format!("cg-{cgroup_id}"))
}

const BPFFS: &str = "/sys/fs/bpf";

/// Removes the pins of a daemon that is gone, which detaches its hooks.
pub fn unpin_dir(dir: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Mounts the BPF filesystem at /sys/fs/bpf unless it is there.
fn ensure_bpffs() -> Result<(), Error> {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    if mounts
        .lines()
        .any(|l| l.split_whitespace().nth(2) == Some("bpf"))
    {
        return Ok(());
    }
    nix::mount::mount(
        Some("bpf"),
        BPFFS,
        Some("bpf"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .map_err(|e| Error::Pin {
        path: BPFFS.into(),
        detail: format!("mount bpffs: {e}"),
    })
}

/// What the kernel enforces for UDP itself.
#[derive(Debug, Clone, Default)]
pub struct UdpSettings {
    /// Refuse UDP no entry allows (block mode).
    pub block: bool,
    /// Address rules allowing UDP: v4-mapped address, prefix bits, ports.
    pub allow: Vec<([u8; 16], u32, UdpAllow)>,
}

/// The loaded, attached programs. Dropping it detaches and unloads them.
pub struct Redirect {
    _ebpf: Ebpf,
    program_ids: Vec<u32>,
    lost_events: PerCpuArray<MapData, u64>,
    /// The cgroup links, by program.
    held: Vec<Held>,
    pin_dir: Option<PathBuf>,
    cgroup_id: u64,
    cgroup_path: PathBuf,
}

/// One cgroup link and how it is kept.
struct Held {
    name: &'static str,
    /// Kernel link id, to find the link in `/proc/self/fdinfo`.
    link_id: u32,
    link: Keep,
}

enum Keep {
    /// Detaches when dropped (`warden run`, audit-mode daemons); held only for that.
    Fd(#[allow(dead_code)] FdLink),
    /// Pinned in bpffs, outliving this process (block-mode daemons).
    Pinned(PinnedLink),
}

impl Drop for Redirect {
    fn drop(&mut self) {
        tables::set_exemptions(None);
        // A clean stop removes the pins, so the links go with this process.
        for held in self.held.drain(..) {
            if let Keep::Pinned(link) = held.link
                && let Err(e) = link.unpin()
            {
                tracing::error!(error = %e, "cannot unpin a link");
            }
        }
        if let Some(dir) = &self.pin_dir {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// What userspace reads from the attached programs.
pub struct Tables {
    /// Original destinations of redirected TCP connects, by client address.
    pub orig_dst: OrigDstTable,
    /// The resolver each DNS query was sent to (and who sent it), by the query's source address.
    pub dns_peers: OrigDstTable,
    /// Process lifecycle events.
    pub events: RingBuf<MapData>,
}

/// Attaches the redirect and process tracepoints to `cgroup`. Returns the attached object and
/// the tables the proxy, the resolver and the process table read.
pub fn attach(
    cgroup: &JobCgroup,
    settings: Settings,
    udp: &UdpSettings,
    pin: Option<&Path>,
) -> Result<(Redirect, Tables), Error> {
    tracefs::ensure_mounted()?;
    let fork_offset = tracefs::fork_child_pid_offset()?;
    let id = cgroup.id();
    let mut ebpf = EbpfLoader::new()
        .override_global(GLOBAL_PROXY_PORT, &settings.proxy_port, true)
        .override_global(GLOBAL_NETNS_COOKIE, &settings.netns_cookie, true)
        .override_global(GLOBAL_DNS_PORT, &settings.dns_port.unwrap_or(0), true)
        .override_global(GLOBAL_CGROUP_ID, &id, true)
        .override_global(GLOBAL_BLOCK_UDP, &u8::from(udp.block), true)
        .override_global(GLOBAL_FORK_CHILD_PID_OFFSET, &fork_offset, true)
        .load(OBJECT)?;

    // The allow-list must be in place before the first program is attached.
    let mut allow: LpmTrie<MapData, [u8; 16], UdpAllow> = take_map(&mut ebpf, MAP_UDP_ALLOW)?;
    for (addr, bits, ports) in &udp.allow {
        allow
            .insert(&Key::new(*bits, *addr), ports, 0)
            .map_err(|e| Error::Map {
                name: MAP_UDP_ALLOW,
                detail: e.to_string(),
            })?;
    }
    let cgroup_dir = File::open(cgroup.path()).map_err(|source| Error::Cgroup {
        path: cgroup.path().display().to_string(),
        source,
    })?;
    let mut program_ids = Vec::new();
    // Tracepoints first: the process table must be complete before the first connect.
    for (name, category, event) in TRACEPOINTS {
        let prog: &mut TracePoint = program(&mut ebpf, name)?;
        prog.load()
            .map_err(|source| Error::Program { name, source })?;
        prog.attach(category, event)
            .map_err(|source| Error::Program { name, source })?;
        program_ids.push(
            prog.info()
                .map_err(|source| Error::Program { name, source })?
                .id(),
        );
    }
    if pin.is_some() {
        ensure_bpffs()?;
    }
    if let Some(dir) = pin {
        std::fs::create_dir_all(dir).map_err(|e| Error::Pin {
            path: dir.display().to_string(),
            detail: e.to_string(),
        })?;
    }
    let mut held = Vec::new();
    for name in CGROUP_PROGRAMS {
        let (id, link) = attach_one(&mut ebpf, name, &cgroup_dir)?;
        program_ids.push(id);
        held.push(hold(name, link, pin)?);
    }

    let exempt: HashMap<MapData, u64, u8> = take_map(&mut ebpf, MAP_EXEMPT)?;
    tables::set_exemptions(Some(exempt));
    let orig_dst: HashMap<MapData, SockKey, OrigDst> = take_map(&mut ebpf, MAP_ORIG_DST)?;
    let dns_peers: HashMap<MapData, SockKey, OrigDst> = take_map(&mut ebpf, MAP_DNS_PEER)?;
    let events: RingBuf<MapData> = take_map(&mut ebpf, MAP_PROC_EVENTS)?;
    let lost_events: PerCpuArray<MapData, u64> = take_map(&mut ebpf, MAP_LOST_EVENTS)?;
    Ok((
        Redirect {
            _ebpf: ebpf,
            program_ids,
            lost_events,
            held,
            pin_dir: pin.map(Path::to_path_buf),
            cgroup_id: cgroup.id(),
            cgroup_path: cgroup.path().to_path_buf(),
        },
        Tables {
            orig_dst: OrigDstTable::new(orig_dst),
            dns_peers: OrigDstTable::new(dns_peers),
            events,
        },
    ))
}

fn program<'a, T>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<&'a mut T, Error>
where
    &'a mut T: TryFrom<&'a mut aya::programs::Program, Error = aya::programs::ProgramError>,
{
    let prog = ebpf.program_mut(name).ok_or(Error::Map {
        name,
        detail: "program missing from object".into(),
    })?;
    prog.try_into()
        .map_err(|source| Error::Program { name, source })
}

/// Takes map `name` out of the object as the typed map `T`.
fn take_map<T>(ebpf: &mut Ebpf, name: &'static str) -> Result<T, Error>
where
    T: TryFrom<aya::maps::Map, Error = aya::maps::MapError>,
{
    let map = ebpf.take_map(name).ok_or(Error::Map {
        name,
        detail: "missing".into(),
    })?;
    T::try_from(map).map_err(|e| Error::Map {
        name,
        detail: e.to_string(),
    })
}

/// Loads (once) and attaches program `name` to the cgroup; returns its id and its link.
fn attach_one(ebpf: &mut Ebpf, name: &'static str, cgroup: &File) -> Result<(u32, FdLink), Error> {
    let err = |source| Error::Program { name, source };
    let fd_link = |e: aya::programs::links::LinkError| Error::Pin {
        path: name.into(),
        detail: e.to_string(),
    };
    let prog = ebpf.program_mut(name).ok_or(Error::Map {
        name,
        detail: "program missing from object".into(),
    })?;
    // With bpf_link (Linux 5.7+) cgroup links always coexist with other programs; the kernel
    // rejects non-zero flags there, so the mode must be Single (0).
    let mode = CgroupAttachMode::Single;
    // The three program types share no trait for load/attach/take_link, hence the macro.
    macro_rules! attach {
        ($p:expr $(, $kind:expr)?) => {{
            if $p.fd().is_err() {
                $p.load().map_err(err)?;
            }
            let id = $p.attach(cgroup, $($kind,)? mode).map_err(err)?;
            let link = $p.take_link(id).map_err(err)?;
            Ok((
                $p.info().map_err(err)?.id(),
                FdLink::try_from(link).map_err(fd_link)?,
            ))
        }};
    }
    match prog {
        aya::programs::Program::CgroupSockAddr(p) => attach!(p),
        aya::programs::Program::CgroupSock(p) => attach!(p),
        aya::programs::Program::SockOps(p) => attach!(p),
        aya::programs::Program::CgroupSkb(p) => attach!(p, CgroupSkbAttachType::Egress),
        _ => Err(Error::Map {
            name,
            detail: "unexpected program type".into(),
        }),
    }
}

/// Keeps `link`, pinned under `pin` if given.
fn hold(name: &'static str, link: FdLink, pin: Option<&Path>) -> Result<Held, Error> {
    let link_id = link.info().map(|i| i.id()).unwrap_or(0);
    let link = match pin {
        Some(dir) => Keep::Pinned(pin_link(link, dir, name)?),
        None => Keep::Fd(link),
    };
    Ok(Held {
        name,
        link_id,
        link,
    })
}

fn pin_link(link: FdLink, dir: &Path, name: &str) -> Result<PinnedLink, Error> {
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    link.pin(&path).map_err(|e| Error::Pin {
        path: path.display().to_string(),
        detail: e.to_string(),
    })
}

impl Redirect {
    /// The programs whose cgroup link is no longer attached to the cgroup (another root process
    /// detached it with `BPF_LINK_DETACH`, or the cgroup is gone). Read from the links' fdinfo,
    /// whose `cgroup_id` turns 0 once a cgroup link is detached.
    pub fn detached(&self) -> Vec<&'static str> {
        let attached = attached_link_cgroups();
        self.held
            .iter()
            .filter(|h| attached.get(&h.link_id) != Some(&self.cgroup_id))
            .map(|h| h.name)
            .collect()
    }

    /// Attaches `names` to the cgroup again (replacing their old links and pins).
    pub fn reattach(&mut self, names: &[&'static str]) -> Result<(), Error> {
        let cgroup_dir = File::open(&self.cgroup_path).map_err(|source| Error::Cgroup {
            path: self.cgroup_path.display().to_string(),
            source,
        })?;
        for name in names {
            let (_, link) = attach_one(&mut self._ebpf, name, &cgroup_dir)?;
            if let Some(old) = self.held.iter().position(|h| h.name == *name)
                && let Keep::Pinned(p) = self.held.remove(old).link
            {
                let _ = p.unpin();
            }
            self.held.push(hold(name, link, self.pin_dir.as_deref())?);
        }
        Ok(())
    }

    /// Kernel ids of the loaded programs (recorded in `enforcement` records; tests check they are
    /// gone after the run).
    pub fn program_ids(&self) -> &[u32] {
        &self.program_ids
    }

    /// Process events the kernel dropped because the ring buffer was full. Records of processes
    /// whose events were lost may lack the executable or ancestry; the stop record says how many.
    pub fn lost_events(&self) -> u64 {
        self.lost_events
            .get(&0, 0)
            .map_or(0, |per_cpu| per_cpu.iter().sum())
    }
}

/// Link id → cgroup id of every cgroup link this process holds, from `/proc/self/fdinfo`.
fn attached_link_cgroups() -> std::collections::HashMap<u32, u64> {
    let mut out = std::collections::HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc/self/fdinfo") else {
        return out;
    };
    for entry in dir.filter_map(Result::ok) {
        let Ok(text) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        let field = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        if let (Some(link), Some(cgroup)) = (field("link_id:"), field("cgroup_id:")) {
            out.insert(link as u32, cgroup);
        }
    }
    out
}
