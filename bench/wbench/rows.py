"""The rows of the comparison: how each contender is started, steered and stopped.

Warden is steered by its own eBPF hooks (`warden start --cgroup` on a cgroup the clients join)
or, for row g, by the same iptables REDIRECT as the peers. Peers run as their own users and an
iptables REDIRECT in the benchmark's namespace steers everyone else's connections to the origin
to them; that user is exempt so their own upstream connections are not sent back to them.
Every proxy is pinned to its own core (procs.PROXY_CPU).
"""

import os
import re
import shutil
import time

from . import env as envmod
from . import procs

WARDEN_MARK = "0x5752444e"


class Row:
    """Direct: no proxy at all (the physical limit of this machine)."""

    key = "direct"
    label = "direct"
    inspected = False
    cgroup = "plain"
    h2 = True
    # Every measurement; row g (Warden behind iptables) only needs (a)-(c) to compare steering.
    full = True

    def __init__(self, env, warden_bin=None, venv=None):
        self.env = env
        self.warden_bin = warden_bin
        self.venv = venv
        self.pid = None
        self.bundle = env.origin_ca
        self.rules = []
        self.facts = {}

    def start(self, tag):
        pass

    def stop(self):
        for rule in self.rules:
            procs.run(["iptables", "-t", "nat", "-D", "OUTPUT"] + rule, check=False)
        self.rules = []

    def pids(self):
        return procs.tree(self.pid) if self.pid else []

    def redirect(self, port, exempt):
        rule = ["-p", "tcp", "-d", envmod.ORIGIN_IP, "--dport", "443"] + exempt + [
            "-j", "REDIRECT", "--to-ports", str(port)]
        procs.run(["iptables", "-t", "nat", "-A", "OUTPUT"] + rule)
        self.rules.append(rule)

    def path(self, name):
        return os.path.join(self.env.work, name)


class Warden(Row):
    key = "warden"
    label = "Warden pass-through"
    cgroup = "warden"
    h2 = False
    tls_inspection = False
    steer = "ebpf"

    def start(self, tag):
        self.guarded = self.env.cgroup("idle" if self.steer == "iptables" else "warden")
        self.log = self.path(f"audit-{self.key}-{tag}.jsonl")
        args = [self.warden_bin, "start", "--cgroup", self.guarded, "--audit-log", self.log]
        if self.tls_inspection:
            args += ["--tls-inspection", "--upstream-ca", self.env.origin_ca, "--print-env"]
        t0 = time.monotonic()
        p = procs.subprocess.run(["taskset", "-c", procs.PROXY_CPU] + args,
                                 capture_output=True, text=True, timeout=60)
        self.facts["start_s"] = time.monotonic() - t0
        if p.returncode != 0:
            raise procs.Failed(f"warden start failed: {p.stderr}")
        m = re.search(r"daemon pid (\d+)", p.stdout + p.stderr)
        self.pid = int(m.group(1))
        if self.tls_inspection:
            env = dict(line.split("=", 1) for line in p.stdout.splitlines() if "=" in line)
            # Clients trust just the two CAs, as for the peers: curl loads its CA file for each
            # connection, and the system's 140 roots would cost it ~20 ms a handshake.
            ca = warden_ca(env["SSL_CERT_FILE"], self.path("warden-ca.pem"))
            self.bundle = envmod.bundle(self.path(f"bundle-{self.key}.pem"), ca,
                                        self.env.origin_ca)
        if self.steer == "iptables":
            self.cgroup = "plain"
            self.redirect(listening_port(self.pid), ["-m", "mark", "!", "--mark", WARDEN_MARK])

    def stop(self):
        super().stop()
        if self.pid:
            procs.run([self.warden_bin, "stop", "--cgroup", self.guarded], check=False,
                      timeout=60)
            self.pid = None

    def connections_recorded(self):
        n = 0
        with open(self.log) as f:
            for line in f:
                n += '"kind":"connection"' in line
        return n


class WardenIptables(Warden):
    key = "warden-ipt"
    label = "Warden pass-through, iptables REDIRECT"
    steer = "iptables"
    full = False


class WardenInspect(Warden):
    key = "warden-inspect"
    label = "Warden inspected"
    inspected = True
    tls_inspection = True
    h2 = True


class Haproxy(Row):
    key = "haproxy"
    label = "haproxy (tcp, req.ssl_sni)"
    h2 = False
    port = 10443

    def start(self, tag):
        conf = self.path("haproxy.cfg")
        with open(conf, "w") as f:
            f.write(HAPROXY_CFG.format(port=self.port))
        p = procs.spawn(["haproxy", "-db", "-f", conf], self.path("haproxy.log"),
                        cpu=procs.PROXY_CPU, user="haproxy", nofile=200000)
        self.proc, self.pid = p, p.pid
        procs.wait_port(self.port)
        self.redirect(self.port, ["-m", "owner", "!", "--uid-owner", "haproxy"])

    def stop(self):
        super().stop()
        procs.stop(self.proc)
        self.pid = None


HAPROXY_CFG = """\
global
    nbthread 1
    # Two descriptors a connection, under this machine's hard limit of 20 000.
    maxconn 9900
defaults
    mode tcp
    timeout connect 5s
    timeout client 300s
    timeout server 300s
frontend tls
    bind 127.0.0.1:{port}
    tcp-request inspect-delay 5s
    tcp-request content accept if {{ req.ssl_hello_type 1 }}
    # The same kind of policy as Warden's: decided on the SNI.
    use_backend original_dst if {{ req.ssl_sni -m end .bench.example }}
backend original_dst
    # 0.0.0.0:0 is the connection's original destination (SO_ORIGINAL_DST).
    server orig 0.0.0.0:0
"""


class Squid(Row):
    key = "squid-splice"
    label = "squid (peek + splice)"
    h2 = False
    bump = False

    def start(self, tag):
        ca_key, ca = self.path("squid-ca.key"), self.path("squid-ca.pem")
        if not os.path.exists(ca):
            envmod.make_ca(ca_key, ca, "Warden bench squid CA")
            envmod.bundle(self.path("squid-ca-key.pem"), ca, ca_key)
        db = self.path("squid-ssl-db")
        shutil.rmtree(db, ignore_errors=True)
        procs.run(["/usr/lib/squid/security_file_certgen", "-c", "-s", db, "-M", "64MB"])
        procs.run(["chown", "-R", "proxy:proxy", db])
        conf = self.path(f"squid-{self.key}.conf")
        with open(conf, "w") as f:
            f.write(SQUID_CONF.format(work=self.env.work, db=db, origin_ca=self.env.origin_ca,
                                      action="bump" if self.bump else "splice"))
        procs.run(["chown", "proxy:proxy", self.env.work])
        p = procs.spawn(["squid", "-N", "-f", conf], self.path("squid.log"),
                        cpu=procs.PROXY_CPU, nofile=200000)
        self.proc, self.pid = p, p.pid
        # Not a probe of the intercepting port: squid takes a connection that was not
        # redirected there badly (it stops serving it).
        procs.wait_port(3128)
        time.sleep(0.5)
        self.redirect(3130, ["-m", "owner", "!", "--uid-owner", "proxy"])
        if self.bump:
            self.bundle = envmod.bundle(self.path("bundle-squid.pem"), ca, self.env.origin_ca)

    def stop(self):
        super().stop()
        procs.stop(self.proc)
        self.pid = None


class SquidBump(Squid):
    key = "squid-bump"
    label = "squid ssl-bump"
    inspected = True
    bump = True


SQUID_CONF = """\
http_port 127.0.0.1:3128
https_port 127.0.0.1:3130 intercept ssl-bump tls-cert={work}/squid-ca-key.pem generate-host-certificates=on dynamic_cert_mem_cache_size=64MB
sslcrtd_program /usr/lib/squid/security_file_certgen -s {db} -M 64MB
sslcrtd_children 8 startup=1 idle=1
acl step1 at_step SslBump1
ssl_bump peek step1
ssl_bump {action} all
tls_outgoing_options cafile={origin_ca} min-version=1.2
http_access allow all
cache deny all
access_log none
cache_log {work}/squid-cache.log
pid_filename {work}/squid.pid
coredump_dir {work}
cache_effective_user proxy
max_filedescriptors 20000
shutdown_lifetime 0 seconds
"""


class Mitm(Row):
    key = "mitm-pass"
    label = "mitmproxy (ignore-hosts)"
    h2 = False
    port = 8083
    ignore = True

    def start(self, tag):
        confdir = self.path("mitm")
        os.makedirs(confdir, exist_ok=True)
        procs.run(["chown", "-R", "nobody", confdir])
        args = [os.path.join(self.venv, "bin", "mitmdump"), "--mode", "transparent",
                "--listen-host", "127.0.0.1", "-p", str(self.port), "-q",
                "--set", f"confdir={confdir}",
                "--set", f"ssl_verify_upstream_trusted_ca={self.env.origin_ca}",
                "--set", "stream_large_bodies=1m"]
        if self.ignore:
            args += ["--ignore-hosts", ".*"]
        p = procs.spawn(args, self.path("mitm.log"), cpu=procs.PROXY_CPU, user="nobody",
                        nofile=200000, env={**os.environ, "HOME": confdir})
        self.proc, self.pid = p, p.pid
        procs.wait_port(self.port, timeout=60)
        self.redirect(self.port, ["-m", "owner", "!", "--uid-owner", "nobody"])
        if not self.ignore:
            self.bundle = envmod.bundle(self.path("bundle-mitm.pem"),
                                        os.path.join(confdir, "mitmproxy-ca-cert.pem"),
                                        self.env.origin_ca)

    def stop(self):
        super().stop()
        procs.stop(self.proc)
        self.pid = None


class MitmInspect(Mitm):
    key = "mitm-inspect"
    label = "mitmproxy MITM"
    inspected = True
    ignore = False


ALL = [Row, Warden, WardenIptables, Haproxy, Squid, Mitm, WardenInspect, SquidBump, MitmInspect]


def warden_ca(bundle, out):
    """Warden's CA out of a bundle it made (the system's roots plus it), written to OUT."""
    with open(bundle) as f:
        blocks = re.findall(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----",
                            f.read(), re.S)
    for block in reversed(blocks):
        subject = procs.subprocess.run(["openssl", "x509", "-noout", "-subject"], input=block,
                                       capture_output=True, text=True).stdout
        if "Warden ephemeral CA" in subject:
            with open(out, "w") as f:
                f.write(block + "\n")
            return out
    raise procs.Failed(f"no Warden CA in {bundle}")


def listening_port(pid):
    """The TCP port PID listens on at 127.0.0.1 (Warden's proxy)."""
    out = procs.run(["ss", "-Hltnp"])
    for line in out.splitlines():
        if f"pid={pid}," in line and "127.0.0.1:" in line:
            return int(line.split()[3].rsplit(":", 1)[1])
    raise procs.Failed(f"no listening socket of pid {pid}: {out}")
