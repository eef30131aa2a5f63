"""The measurements (issue #11, 2a-2g). Each runs the client pinned to procs.CLIENT_CPU in the
row's cgroup, checks that every response was right, and returns numbers; none is a test."""

import os
import re
import statistics
import sys
import time

from . import env as envmod
from . import procs

URL = f"https://{envmod.ORIGIN_NAME}"
GIB = 1024**3
MIB = 1024**2

def client(row, args, timeout=600):
    return procs.run(args, timeout=timeout, cpu=procs.CLIENT_CPU,
                     cgroup=row.env.cgroup(row.cgroup))

def download(row, size):
    """(a) + (e): one big HTTPS download; MiB/s and the proxy's CPU-seconds per GiB."""
    cpu0 = procs.cpu_seconds(row.pids())
    out = client(row, ["curl", "-sS", "--connect-timeout", "10", "--http1.1", "--cacert", row.bundle, "-o", "/dev/null",
                       "-w", "%{http_code} %{size_download} %{speed_download}", f"{URL}/big"])
    cpu = procs.cpu_seconds(row.pids()) - cpu0
    code, got, speed = out.split()
    if code != "200" or int(got) != size:
        raise procs.Failed(f"download: status {code}, {got} of {size} bytes")
    res = {"dl_mibs": float(speed) / MIB}
    if row.pid:
        # Relaying 256 MiB costs any proxy well over this: less means it was not steered there.
        if cpu < 0.02:
            raise procs.Failed(f"download: the proxy used {cpu:.2f} CPU-s: not steered through it")
        res["cpu_s_per_gib"] = cpu / (size / GIB)
    return res

def ttfb(row, n):
    """(b): time to first byte of N sequential 1 KiB requests, a new connection (full TLS
    handshake, no resumption) each; p50 and p99 in ms."""
    out = client(row, ["curl", "-sS", "--connect-timeout", "10", "--http1.1", "--no-sessionid", "-H", "Connection: close",
                       "--cacert", row.bundle, "-o", "/dev/null",
                       "-w", "%{http_code} %{num_connects} %{time_starttransfer}\n",
                       f"{URL}/1k?n=[1-{n}]"])
    times = []
    for line in out.splitlines():
        code, conns, t = line.split()
        if code != "200" or conns != "1":
            raise procs.Failed(f"ttfb: status {code}, {conns} connections")
        times.append(float(t) * 1000)
    if len(times) != n:
        raise procs.Failed(f"ttfb: {len(times)} of {n} requests")
    times.sort()
    return {"ttfb_p50_ms": statistics.median(times),
            "ttfb_p99_ms": times[min(n - 1, int(n * 0.99))]}

def keepalive(row, secs, rss):
    """(c): keep-alive HTTP/1.1 requests/s, 16 connections (wrk); with RSS, (f) the proxy's
    RSS right after."""
    out = client(row, ["wrk", "-t1", "-c16", f"-d{secs}s", f"{URL}/1k"], timeout=secs + 60)
    res = {"ka_rps": _wrk_rps(out, "keep-alive")}
    if rss:
        res["rss_after_ka_mib"] = rss_mib(row)
    return res

def keepalive_h2(row, secs):
    """(c), h2: 16 connections, 10 concurrent streams each (h2load)."""
    out = client(row, ["h2load", "-c16", "-m10", "-D", str(secs), f"{URL}/1k"],
                 timeout=secs + 60)
    m = re.search(r"finished in [\d.]+s, ([\d.]+) req/s", out)
    bad = re.search(r"requests: \d+ total, \d+ started, \d+ done, \d+ succeeded, (\d+) failed, "
                    r"(\d+) errored", out)
    if not m or not bad or bad.group(1) != "0" or bad.group(2) != "0":
        raise procs.Failed(f"h2load: {out[-600:]}")
    return {"ka_h2_rps": float(m.group(1))}

def new_conns(row, secs):
    """(d) + (e): new connections/s with a full handshake each, 16 concurrent (wrk with
    `Connection: close`); the proxy's CPU-seconds per 1000 handshakes."""
    cpu0 = procs.cpu_seconds(row.pids())
    out = client(row, ["wrk", "-t1", "-c16", f"-d{secs}s", "-H", "Connection: close",
                       f"{URL}/1k"], timeout=secs + 60)
    cpu = procs.cpu_seconds(row.pids()) - cpu0
    rps = _wrk_rps(out, "new connections")
    total = int(re.search(r"(\d+) requests in", out).group(1))
    res = {"conn_rps": rps}
    if row.pid:
        res["cpu_s_per_1k_conn"] = cpu / (total / 1000)
    return res

def cold_names(row, names):
    """(d), inspected: new connections/s over NAMES never seen before (a cold certificate
    cache), 16 concurrent (curl --parallel), a full handshake each."""
    cfg = os.path.join(row.env.work, "cold.curl")
    with open(cfg, "w") as f:
        for n in names:
            f.write(f'url = "https://{n}/1k"\noutput = "/dev/null"\n')
    t0 = time.monotonic()
    out = client(row, ["curl", "-sS", "--connect-timeout", "10", "--http1.1", "--no-sessionid", "--parallel",
                       "--parallel-max", "16", "-H", "Connection: close", "--cacert",
                       row.bundle, "-w", "%{http_code}\n", "-K", cfg])
    dt = time.monotonic() - t0
    codes = out.split()
    if len(codes) != len(names) or set(codes) != {"200"}:
        raise procs.Failed(f"cold names: {len(codes)} responses, statuses {set(codes)}")
    return {"cold_conn_rps": len(names) / dt}

def idle_conns(row, n):
    """(f): the proxy's resident memory per idle connection, with N TLS connections open
    (each made one request and stays open)."""
    before = procs.rss_bytes(row.pids())
    script = os.path.join(os.path.dirname(__file__), "idle_client.py")
    p = procs.spawn([sys.executable, script, envmod.ORIGIN_NAME, "443", row.bundle, str(n)],
                    os.path.join(row.env.work, "idle-client.log"), cpu=procs.CLIENT_CPU,
                    nofile=n + 1000, cgroup=row.env.cgroup(row.cgroup))
    ready = os.path.join(row.env.work, "idle-client.log")
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:
            with open(ready) as f:
                text = f.read()
            if f"ready {n}" in text:
                break
            if "failed" in text or p.poll() is not None:
                raise procs.Failed(f"idle client: {text[-400:]}")
            time.sleep(0.2)
        else:
            raise procs.Failed("idle client: not ready in 300 s")
        time.sleep(1.0)
        after = procs.rss_bytes(row.pids())
    finally:
        procs.stop(p)
        open(ready, "w").close()
    return {"rss_per_conn_kib": (after - before) / n / 1024}

def idle_rss(row):
    """(f): the proxy's RSS, and its private anonymous part, once it has settled after start."""
    time.sleep(0.5)
    return {"rss_idle_mib": rss_mib(row), "rss_anon_idle_mib": rss_mib(row, "RssAnon")}


def rss_mib(row, field="VmRSS"):
    return procs.rss_bytes(row.pids(), field) / MIB

def _wrk_rps(out, what):
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not m:
        raise procs.Failed(f"wrk ({what}): {out[-600:]}")
    for bad in ("Non-2xx or 3xx responses", "Socket errors"):
        if bad in out:
            # wrk counts the server closing a `Connection: close` socket as no error; anything
            # it does count is shown in the results.
            print(f"bench: wrk ({what}) reported: "
                  + " ".join(l.strip() for l in out.splitlines() if bad in l), file=sys.stderr)
    return float(m.group(1))

