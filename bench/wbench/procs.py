"""Processes the benchmark starts: every one is tracked and ended on exit, by its own id.

Long-running servers (origin, proxies) are spawned in their own process group so that a
cleanup can end them and their workers; one-shot tools run to completion with a deadline.
"""

import os
import signal
import subprocess
import time

# Which core does what: the proxy gets one to itself, origin and client share the other.
PROXY_CPU = "0"
CLIENT_CPU = "1"

_servers = []


class Failed(Exception):
    """A command the benchmark needed failed."""


def run(args, timeout=600, check=True, cpu=None, cgroup=None, env=None, user=None):
    """Runs ARGS to completion and returns its stdout (stderr is kept for the error)."""
    p = subprocess.run(
        _wrap(args, cpu, user),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        preexec_fn=_joiner(cgroup),
    )
    if check and p.returncode != 0:
        raise Failed(f"{' '.join(map(str, args))} exited {p.returncode}: {p.stderr.strip()[-800:]}")
    return p.stdout


def spawn(args, log, cpu=None, user=None, env=None, nofile=None, cgroup=None):
    """Starts a long-running server, its output appended to LOG; ended by stop_all()."""
    out = open(log, "ab")

    def pre():
        os.setpgrp()
        if nofile:
            import resource

            # No more than the hard limit: raising it needs CAP_SYS_RESOURCE, which this
            # machine's root lacks (its hard limit is 20 000).
            hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
            n = min(nofile, hard)
            resource.setrlimit(resource.RLIMIT_NOFILE, (n, hard))
        if cgroup:
            _join(cgroup)

    p = subprocess.Popen(
        _wrap(args, cpu, user), stdout=out, stderr=out, stdin=subprocess.DEVNULL,
        preexec_fn=pre, env=env,
    )
    out.close()
    _servers.append(p)
    return p


def stop(p, grace=5.0):
    """Ends a server started by spawn() and its process group: TERM, then KILL."""
    if p not in _servers:
        return
    _servers.remove(p)
    _killpg(p.pid, signal.SIGTERM)
    try:
        p.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        _killpg(p.pid, signal.SIGKILL)
        p.wait(timeout=grace)
    # Workers of a server (nginx, squid) may outlive their parent briefly.
    _killpg(p.pid, signal.SIGKILL)


def _killpg(pgid, sig):
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def stop_all():
    for p in list(reversed(_servers)):
        stop(p, grace=3.0)


def tree(pid):
    """PID and all its descendants."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        try:
            with open(f"/proc/{p}/task/{p}/children") as f:
                todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return found


def cpu_seconds(pids):
    """User + system CPU time of PIDS (each with all its threads), from /proc/PID/stat."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
        except (OSError, IndexError, ValueError):
            pass
    return total / os.sysconf("SC_CLK_TCK")


def rss_bytes(pids, field="VmRSS"):
    """Resident set size of PIDS, summed (VmRSS; RssAnon: private anonymous memory only)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith(field + ":"):
                        total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def wait_port(port, host="127.0.0.1", timeout=20.0):
    """Waits until something listens on HOST:PORT."""
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise Failed(f"nothing listens on {host}:{port} after {timeout}s")


def _wrap(args, cpu, user):
    args = [str(a) for a in args]
    if user:
        import pwd

        pw = pwd.getpwnam(user)
        args = ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--init-groups",
                "--"] + args
    if cpu is not None:
        args = ["taskset", "-c", cpu] + args
    return args


def _join(cgroup):
    with open(os.path.join(cgroup, "cgroup.procs"), "w") as f:
        f.write(str(os.getpid()))


def _joiner(cgroup):
    return (lambda: _join(cgroup)) if cgroup else None
