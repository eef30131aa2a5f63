"""The benchmark's world: a network namespace of its own with the origin on a documentation
address, private copies of /etc/hosts, resolv.conf and the trust store, cgroups for the clients,
certificates, the files served, and nginx as the origin.

bench/run already started us in a new network and mount namespace (unshare); this module checks
that before it adds a single address, so no benchmark traffic can reach the real network.
"""

import os
import shutil
import subprocess

from . import procs

ORIGIN_IP = "192.0.2.10"
ORIGIN_NAME = "origin.bench.example"
# Host names for the cold certificate cache measurement; all are the origin.
COLD_NAMES = [f"h{i:04d}.bench.example" for i in range(1000)]
BIG_CACHE = "/var/tmp/warden-bench/www"

NGINX_CONF = """\
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile 200000;
user www-data;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 60000; }}
http {{
    access_log off;
    sendfile on;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    types {{ application/octet-stream bin; }}
    default_type application/octet-stream;
    server {{
        listen {ip}:443 ssl http2 reuseport backlog=65535;
        listen {ip}:80 backlog=65535;
        server_name _;
        ssl_certificate {work}/origin.pem;
        ssl_certificate_key {work}/origin.key;
        ssl_protocols TLSv1.3;
        # Every connection pays a full handshake, for every row alike.
        ssl_session_cache off;
        ssl_session_tickets off;
        root {work}/www;
    }}
}}
"""


class Env:
    """See the module documentation. cleanup() undoes everything setup() did."""

    def __init__(self, work, big_size):
        self.work = work
        self.big_size = big_size
        self.cgroot = None
        self.nginx = None

    # -- setup ---------------------------------------------------------------------------
    def setup(self):
        check_private_netns()
        os.makedirs(self.work, exist_ok=True)
        procs.run(["ip", "link", "set", "lo", "up"])
        procs.run(["ip", "addr", "add", f"{ORIGIN_IP}/32", "dev", "lo"])
        # Tens of thousands of short connections a minute, all to one address and port: without
        # these (this namespace's own settings) TIME_WAIT runs the ephemeral ports out and
        # connects fail, for whichever row comes next.
        procs.run(["sysctl", "-q", "-w", "net.ipv4.ip_local_port_range=1024 65000",
                   "net.ipv4.tcp_tw_reuse=1"])
        # A reused port must not meet a conntrack entry left in TIME_WAIT by an earlier row:
        # that entry keeps its old NAT (none, or another proxy's port), and the connection
        # would bypass the row's REDIRECT. Creating the nat table starts conntrack here.
        procs.run(["iptables", "-t", "nat", "-S"])
        procs.run(["sysctl", "-q", "-w", "net.netfilter.nf_conntrack_tcp_timeout_time_wait=1"])
        self._private_files()
        self._cgroups()
        self._certs()
        self._files()
        self._nginx()

    def _private_files(self):
        hosts = os.path.join(self.work, "hosts")
        with open(hosts, "w") as f:
            f.write("127.0.0.1 localhost\n::1 localhost\n")
            f.write(f"{ORIGIN_IP} {ORIGIN_NAME}\n")
            f.writelines(f"{ORIGIN_IP} {n}\n" for n in COLD_NAMES)
        resolv = os.path.join(self.work, "resolv.conf")
        with open(resolv, "w") as f:
            # Nothing listens there: a lookup that misses the hosts file fails at once.
            f.write("nameserver 192.0.2.53\noptions timeout:1 attempts:1\n")
        certs = os.path.join(self.work, "ssl-certs")
        shutil.rmtree(certs, ignore_errors=True)
        procs.run(["cp", "-a", "/etc/ssl/certs/.", certs + "/"], check=False)
        if not os.path.isdir(certs):
            procs.run(["cp", "-a", "/etc/ssl/certs", certs])
        # Private to this mount namespace: Warden's inspection adds its CA to the copy.
        for src, dst in [(hosts, "/etc/hosts"), (resolv, "/etc/resolv.conf"),
                         (certs, "/etc/ssl/certs")]:
            procs.run(["mount", "--bind", src, dst])

    def _cgroups(self):
        mount = cgroup2_mount()
        self.cgroot = os.path.join(mount, f"warden-bench-{os.getpid()}")
        for sub in ("", "plain", "warden", "idle"):
            os.makedirs(os.path.join(self.cgroot, sub), exist_ok=True)

    def cgroup(self, name):
        """The cgroup for clients of a row: `warden` (Warden's eBPF hooks attach there),
        `plain` (everything else) or `idle` (a Warden that must redirect nothing)."""
        return os.path.join(self.cgroot, name)

    def _certs(self):
        w = self.work
        ca_key, ca, key, csr, pem = (os.path.join(w, n) for n in
                                     ("origin-ca.key", "origin-ca.pem", "origin.key",
                                      "origin.csr", "origin.pem"))
        make_ca(ca_key, ca, "Warden bench origin CA")
        ext = os.path.join(w, "origin.ext")
        with open(ext, "w") as f:
            f.write(f"subjectAltName=DNS:{ORIGIN_NAME},DNS:*.bench.example\n"
                    "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
                    "keyUsage=critical,digitalSignature\n")
        procs.run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                   "-nodes", "-keyout", key, "-out", csr, "-subj", f"/CN={ORIGIN_NAME}"])
        procs.run(["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key,
                   "-CAcreateserial", "-out", pem, "-days", "3", "-extfile", ext])
        self.origin_ca = ca

    def _files(self):
        www = os.path.join(self.work, "www")
        os.makedirs(www, exist_ok=True)
        with open(os.path.join(www, "1k"), "wb") as f:
            f.write(os.urandom(1024))
        # The big file is random bytes (inspection scans bodies), made once and kept.
        os.makedirs(BIG_CACHE, exist_ok=True)
        big = os.path.join(BIG_CACHE, f"big-{self.big_size}")
        if not os.path.exists(big) or os.path.getsize(big) != self.big_size:
            procs.run(["sh", "-c", f"head -c {self.big_size} /dev/urandom > {big}.tmp"
                       f" && mv {big}.tmp {big}"])
        os.chmod(self.work, 0o755)
        link = os.path.join(www, "big")
        if not os.path.exists(link):
            os.link(big, link) if same_fs(big, www) else os.symlink(big, link)

    def _nginx(self):
        conf = os.path.join(self.work, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(work=self.work, ip=ORIGIN_IP))
        self.nginx = procs.spawn(["nginx", "-c", conf], os.path.join(self.work, "nginx.log"),
                                 cpu=procs.CLIENT_CPU, nofile=200000)
        procs.wait_port(443, ORIGIN_IP)

    # -- cleanup -------------------------------------------------------------------------
    def cleanup(self):
        procs.stop_all()
        if self.cgroot and os.path.isdir(self.cgroot):
            for sub in ("plain", "warden", "idle", ""):
                path = os.path.join(self.cgroot, sub)
                kill_cgroup(path)
                try:
                    os.rmdir(path)
                except OSError as e:
                    print(f"bench: warning: cannot remove {path}: {e}")


def check_private_netns():
    """Refuses to run in the machine's own network namespace."""
    outer = os.environ.get("WARDEN_BENCH_OUTER_NETNS")
    if not outer or os.readlink("/proc/self/ns/net") == outer:
        raise procs.Failed("not in a private network namespace: start through bench/run")
    links = procs.run(["ip", "-o", "link", "show"]).strip().splitlines()
    if len(links) != 1 or ": lo:" not in links[0]:
        raise procs.Failed(f"the namespace is not fresh: {links}")


def cgroup2_mount():
    with open("/proc/mounts") as f:
        for line in f:
            parts = line.split()
            if parts[2] == "cgroup2":
                return parts[1]
    raise procs.Failed("no cgroup v2 mount in /proc/mounts")


def kill_cgroup(path):
    if not os.path.isdir(path):
        return
    try:
        with open(os.path.join(path, "cgroup.kill"), "w") as f:
            f.write("1")
    except OSError:
        pass


def make_ca(key, pem, cn):
    procs.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
               "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", pem, "-days", "3",
               "-subj", f"/CN={cn}", "-addext", "basicConstraints=critical,CA:TRUE",
               "-addext", "keyUsage=critical,keyCertSign,cRLSign"])


def same_fs(a, b):
    return os.stat(a).st_dev == os.stat(os.path.dirname(b) if not os.path.isdir(b) else b).st_dev


def bundle(path, *sources):
    """Writes the concatenation of SOURCES (PEM files) to PATH."""
    with open(path, "w") as out:
        for s in sources:
            with open(s) as f:
                out.write(f.read().rstrip("\n") + "\n")
    return path


def ensure_user(name):
    if subprocess.run(["id", name], capture_output=True).returncode != 0:
        procs.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                   name])
