"""bench/run's orchestrator: runs every row through every measurement, REPS times interleaved
(row after row within each repetition, so drift hits all rows alike), and writes the results.
Started by bench/run inside a fresh network and mount namespace; see README.md."""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from wbench import env as envmod  # noqa: E402
from wbench import completeness, measure, procs, results, rows  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
# (c) runs 10 s, not the 20 s, and (f) holds 4000 connections: with nine rows and
# three repetitions that keeps the full run near 20 minutes (bench/README.md).
FULL = dict(reps=3, big=1024**3, ttfb_n=2000, ka_secs=10, conn_secs=5, idle_n=4000,
            cold_n=1000, load_clients=1000, load_requests=10000)
QUICK = dict(reps=1, big=256 * 1024**2, ttfb_n=200, ka_secs=3, conn_secs=3, idle_n=500,
             cold_n=200, load_clients=100, load_requests=1000)


def parse():
    p = argparse.ArgumentParser(prog="bench/run")
    p.add_argument("--quick", action="store_true", help="a short subset, for development")
    p.add_argument("--reps", type=int, help="repetitions (default 3; --quick: 1)")
    p.add_argument("--only", help="comma-separated rows: " + ",".join(r.key for r in rows.ALL))
    p.add_argument("--out", help="results file (default bench/RESULTS.md; --quick: "
                                 "bench/out/RESULTS-quick.md)")
    p.add_argument("--no-micro", action="store_true", help="skip the criterion benches")
    p.add_argument("--keep", action="store_true",
                   help="keep the work directory (logs, configs, audit logs) after the run")
    p.add_argument("--completeness", action="store_true",
                   help="only the completeness-under-load check")
    p.add_argument("--shell", metavar="CMD",
                   help="set up the namespace and origin, run CMD (sh -c) there, clean up")
    return p.parse_args()


def measure_row(row, prm, rep, data, errors):
    tag = f"{rep}"
    got = data.setdefault(row.key, {})

    def put(values):
        for k, v in values.items():
            got.setdefault(k, []).append(v)
        print(f"  {row.key} rep {rep}: " + ", ".join(f"{k}={v:.3f}" for k, v in values.items()),
              flush=True)

    proxied = row.key != "direct"
    steps = [("start", lambda: row.start(tag))]
    if proxied:
        steps.append(("idle RSS", lambda: measure.idle_rss(row)))
    if row.inspected:
        names = envmod.COLD_NAMES[:prm["cold_n"]]
        steps.append(("cold names", lambda: measure.cold_names(row, names)))
    steps += [("download", lambda: measure.download(row, prm["big"])),
              ("ttfb", lambda: measure.ttfb(row, prm["ttfb_n"])),
              ("keep-alive", lambda: measure.keepalive(row, prm["ka_secs"], rss=proxied))]
    if row.h2:
        steps.append(("keep-alive h2", lambda: measure.keepalive_h2(row, prm["ka_secs"])))
    if row.full:
        steps.append(("new connections", lambda: measure.new_conns(row, prm["conn_secs"])))
    if rep == 0 and proxied and row.full:
        steps.append(("idle connections", lambda: measure.idle_conns(row, prm["idle_n"])))
    try:
        for name, step in steps:
            try:
                values = step()
            except (procs.Failed, subprocess.TimeoutExpired, OSError, ValueError) as e:
                errors.append(f"{row.label}, rep {rep}, {name}: {e}")
                print(f"  {row.key} rep {rep}: {name} FAILED: {e}", flush=True)
                if name == "start":
                    return
                continue
            if isinstance(values, dict) and values:
                put(values)
        if row.facts:
            put(dict(row.facts))
    finally:
        row.stop()
    if isinstance(row, rows.Warden):
        print(f"  {row.key} rep {rep}: {row.connections_recorded()} connection records",
              flush=True)


def micro_benches(repo, quick):
    """(h): the criterion micro-benchmarks (decide() with 10 000 rules, the sniffers)."""
    timing = ["--warm-up-time", "1", "--measurement-time", "1" if quick else "3"]
    report = []
    for crate, bench in (("proxy", "policy"), ("sniff", "sniff")):
        try:
            p = subprocess.run(["cargo", "bench", "-q", "-p", crate, "--bench", bench, "--",
                                "--noplot"] + timing,
                               cwd=repo, capture_output=True, text=True, timeout=900)
        except (OSError, subprocess.TimeoutExpired) as e:
            report.append(f"{crate}/{bench} failed: {e}")
            continue
        if p.returncode != 0:
            report.append(f"{crate}/{bench} failed:\n{p.stderr[-1500:]}")
            continue
        for line in p.stdout.splitlines():
            skip = line.startswith(("Benchmarking", "Found", "Warning", "  ")) or not line.strip()
            # Lines with % compare with an earlier run on this machine: not this run's numbers.
            if (not skip or "time:" in line or "thrpt:" in line) and "%" not in line:
                report.append(line.rstrip())
    return "\n".join(report)


def main():
    a = parse()
    prm = dict(QUICK if a.quick else FULL)
    if a.reps:
        prm["reps"] = a.reps
    repo = os.environ.get("WARDEN_BENCH_REPO", os.path.dirname(HERE))
    warden = os.environ["WARDEN_BIN"]
    venv = os.environ.get("WARDEN_BENCH_VENV", "/var/tmp/warden-bench/venv")
    out = a.out or (os.path.join(HERE, "out", "RESULTS-quick.md") if a.quick
                    else os.path.join(HERE, "RESULTS.md"))
    selected = [r for r in rows.ALL if not a.only or r.key in a.only.split(",")]
    meta = {**results.machine_meta(repo), "mode": "quick" if a.quick else "full",
            "reps": prm["reps"], "params": ", ".join(f"{k}={v}" for k, v in prm.items())}

    def stop(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, stop)
    work = f"/var/tmp/warden-bench/run-{os.getpid()}"
    env = envmod.Env(work, prm["big"])
    data, errors = {}, []
    t0 = time.monotonic()
    try:
        env.setup()
        envmod.ensure_user("nobody")
        if a.shell:
            return subprocess.run(["sh", "-c", a.shell], cwd=work).returncode
        meta["tools"] = tool_versions(venv)
        for rep in range(prm["reps"]) if not a.completeness else ():
            for cls in selected:
                print(f"bench: rep {rep + 1}/{prm['reps']}: {cls.label}", flush=True)
                measure_row(cls(env, warden, venv), prm, rep, data, errors)
        if not a.only or a.completeness:
            print(f"bench: completeness under load ({prm['load_clients']} clients, "
                  f"{prm['load_requests']} requests)", flush=True)
            try:
                meta["load_desc"] = f"{prm['load_clients']} clients, {prm['load_requests']} requests"
                ok, meta["completeness"] = completeness.run(
                    env, warden, prm["load_clients"], prm["load_requests"])
            except (procs.Failed, subprocess.TimeoutExpired, OSError) as e:
                ok, meta["completeness"] = False, [f"failed: {e}"]
            print("\n".join("  " + l for l in meta["completeness"]), flush=True)
            if not ok:
                errors.append("completeness under load: see its section")
    finally:
        try:
            # A daemon whose start was interrupted is not known to its row: stop whatever
            # guards the run's cgroups, then everything else, whatever happens here.
            for cg in ("warden", "idle"):
                if env.cgroot and os.path.exists(warden):
                    procs.run([warden, "stop", "--cgroup", env.cgroup(cg)], check=False,
                              timeout=60)
        finally:
            env.cleanup()
            if not a.keep:
                shutil.rmtree(work, ignore_errors=True)
    micro = None if a.no_micro or a.shell else micro_benches(repo, a.quick)
    meta["errors"] = errors
    meta["decide_us"] = results.decide_us(micro or "")
    meta["runtime_s"] = round(time.monotonic() - t0)
    meta["params"] += f"; runtime {meta['runtime_s']} s"
    meta["noisy"] = noise_note(meta["load"])
    os.makedirs(os.path.dirname(out), exist_ok=True)
    labels = {r.key: r.label for r in selected}
    results.write(out, data, labels, meta, micro)
    print(f"bench: wrote {out} in {meta['runtime_s']} s", flush=True)
    return 1 if errors else 0


def noise_note(load):
    one = float(load.split()[0])
    if one > 0.5:
        return (f"the load average was {load} when the run started: other work shared the two "
                "cores, so these numbers are not a measurement of Warden or its peers.")
    return None


def tool_versions(venv):
    def first(*args):
        try:
            p = subprocess.run(args, capture_output=True, text=True, timeout=20)
            return (p.stdout + p.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "?"

    return "; ".join([
        first("nginx", "-v"), first("haproxy", "-v"), first("squid", "-v"),
        "mitmproxy " + first(os.path.join(venv, "bin", "mitmdump"), "--version").split()[-1],
        first("curl", "--version").split(" (")[0], first("wrk", "-v"),
        first("h2load", "--version"),
    ])


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt as e:
        print(f"bench: interrupted ({e}); cleaned up", file=sys.stderr)
        sys.exit(130)
    except Exception:  # noqa: BLE001 - the namespace goes away with us; say what happened
        traceback.print_exc()
        sys.exit(1)
