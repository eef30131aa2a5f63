"""RESULTS.md: medians with min-max, ratios taken in the same run, the targets of issue #11
met or not, and what the run was (date, commit, machine, load)."""

import json
import os
import platform
import statistics
import subprocess
import time

COLUMNS = {
    "dl_mibs": ("download MiB/s", "{:.0f}"),
    "ttfb_p50_ms": ("TTFB p50 ms", "{:.2f}"),
    "ttfb_p99_ms": ("TTFB p99 ms", "{:.2f}"),
    "ka_rps": ("keep-alive req/s (h1)", "{:.0f}"),
    "ka_h2_rps": ("keep-alive req/s (h2)", "{:.0f}"),
    "conn_rps": ("new conn/s", "{:.0f}"),
    "cold_conn_rps": ("new conn/s, cold cert cache", "{:.0f}"),
    "cpu_s_per_gib": ("CPU-s/GiB", "{:.2f}"),
    "cpu_s_per_1k_conn": ("CPU-s/1000 conn", "{:.2f}"),
    "rss_idle_mib": ("RSS idle MiB", "{:.1f}"),
    "rss_anon_idle_mib": ("of which private (RssAnon) MiB", "{:.1f}"),
    "rss_after_ka_mib": ("RSS after (c) MiB", "{:.1f}"),
    "rss_per_conn_kib": ("KiB per idle conn", "{:.1f}"),
    "start_s": ("start until enforcing s", "{:.3f}"),
}
TABLES = [
    ("Throughput and latency", ["dl_mibs", "ttfb_p50_ms", "ttfb_p99_ms", "ka_rps", "ka_h2_rps",
                                "conn_rps", "cold_conn_rps"]),
    ("Cost", ["cpu_s_per_gib", "cpu_s_per_1k_conn", "rss_idle_mib", "rss_anon_idle_mib",
              "rss_after_ka_mib",
              "rss_per_conn_kib", "start_s"]),
]


def med(values):
    return statistics.median(values) if values else None


def cell(values, fmt):
    if not values:
        return "–"
    m = fmt.format(med(values))
    if len(values) == 1:
        return m
    return f"{m} ({fmt.format(min(values))}–{fmt.format(max(values))})"


def targets(data):
    """(description, measured, goal, met) for each target of issue #11 that this run measured."""
    def m(row, key):
        return med(data.get(row, {}).get(key, []))

    out = []

    def add(what, value, goal, ok, fmt="{:.2f}"):
        if value is not None:
            out.append((what, fmt.format(value), goal, "met" if ok(value) else "**not met**"))

    def ratio(a, b):
        return a / b if a is not None and b else None

    def diff(a, b):
        return a - b if a is not None and b is not None else None

    add("pass-through bytes/s vs direct", ratio(m("warden", "dl_mibs"), m("direct", "dl_mibs")),
        "≥ 0.97×", lambda v: v >= 0.97)
    add("pass-through added TTFB p50 (ms)",
        diff(m("warden", "ttfb_p50_ms"), m("direct", "ttfb_p50_ms")), "≤ 0.10 ms",
        lambda v: v <= 0.10, "{:+.3f}")
    add("pass-through keep-alive req/s vs direct",
        ratio(m("warden", "ka_rps"), m("direct", "ka_rps")), "≥ 0.80×", lambda v: v >= 0.80)
    add("pass-through CPU-s/GiB vs haproxy",
        ratio(m("warden", "cpu_s_per_gib"), m("haproxy", "cpu_s_per_gib")), "≤ 0.8×",
        lambda v: v <= 0.8)
    add("inspected keep-alive req/s (h1) vs squid bump",
        ratio(m("warden-inspect", "ka_rps"), m("squid-bump", "ka_rps")), "≥ 2×",
        lambda v: v >= 2)
    add("inspected keep-alive req/s, h2 vs h1",
        ratio(m("warden-inspect", "ka_h2_rps"), m("warden-inspect", "ka_rps")), "> 1×",
        lambda v: v > 1)
    add("inspected new conn/s vs squid bump",
        ratio(m("warden-inspect", "conn_rps"), m("squid-bump", "conn_rps")), "≥ 2×",
        lambda v: v >= 2)
    add("inspected bytes/s vs squid bump",
        ratio(m("warden-inspect", "dl_mibs"), m("squid-bump", "dl_mibs")), "≥ 1.5×",
        lambda v: v >= 1.5)
    add("inspected TTFB p50 vs squid bump",
        ratio(m("warden-inspect", "ttfb_p50_ms"), m("squid-bump", "ttfb_p50_ms")), "≤ 0.5×",
        lambda v: v <= 0.5)
    for row in ("warden", "warden-inspect"):
        add(f"{row}: idle RSS (MiB)", m(row, "rss_idle_mib"), "≤ 10 MiB", lambda v: v <= 10,
            "{:.1f}")
        add(f"{row}: per idle connection (KiB)", m(row, "rss_per_conn_kib"), "≤ 16 KiB",
            lambda v: v <= 16, "{:.1f}")
    add("start until enforcing (s)", m("warden", "start_s"), "≤ 1 s", lambda v: v <= 1,
        "{:.3f}")
    return out


def write(path, data, labels, meta, micro):
    lines = [f"# Warden against its peers ({meta['mode']} run)", ""]
    lines += [f"- date: {meta['date']}", f"- commit: {meta['commit']}",
              f"- machine: {meta['machine']}", f"- load average at start: {meta['load']}",
              f"- repetitions: {meta['reps']}; cells are median (min–max)",
              f"- parameters: {meta['params']}", f"- tools: {meta['tools']}", ""]
    if meta.get("noisy"):
        lines += [f"> **Noisy**: {meta['noisy']}", ""]
    for title, keys in TABLES:
        keys = [k for k in keys if any(k in data.get(r, {}) for r in labels)]
        if not keys:
            continue
        lines += [f"## {title}", "", "| row | " + " | ".join(COLUMNS[k][0] for k in keys) + " |",
                  "|---|" + "---|" * len(keys)]
        for row, label in labels.items():
            if row in data:
                cells = [cell(data[row].get(k, []), COLUMNS[k][1]) for k in keys]
                lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["## Ratios (same run)", "", "| | " + " | ".join(
        COLUMNS[k][0] for k in ("dl_mibs", "ttfb_p50_ms", "ka_rps", "conn_rps")) + " |",
              "|---|---|---|---|---|"]
    for row, ref in [("warden", "direct"), ("warden", "haproxy"), ("warden-ipt", "warden"),
                     ("warden-inspect", "squid-bump"), ("warden-inspect", "mitm-inspect")]:
        if row in data and ref in data:
            cells = []
            for k in ("dl_mibs", "ttfb_p50_ms", "ka_rps", "conn_rps"):
                a, b = med(data[row].get(k, [])), med(data[ref].get(k, []))
                cells.append(f"{a / b:.2f}×" if a is not None and b else "–")
            lines.append(f"| {labels[row]} / {labels[ref]} | " + " | ".join(cells) + " |")
    lines += ["", "## Targets (issue #11)", "", "| target | measured | goal | |",
              "|---|---|---|---|"]
    found = targets(data)
    if meta.get("decide_us") is not None:
        us = meta["decide_us"]
        found.append(("decide() with 10 000 rules (µs per decision)", f"{us:.2f}", "≤ 1 µs",
                      "met" if us <= 1 else "**not met**"))
    lines += [f"| {w} | {v} | {g} | {ok} |" for w, v, g, ok in found]
    if meta.get("completeness"):
        lines += ["", f"## Completeness under load ({meta.get('load_desc', '')})", ""]
        lines += [f"- {l}" for l in meta["completeness"]]
    if meta.get("errors"):
        lines += ["", "## Failures", ""] + [f"- {e}" for e in meta["errors"]]
    notes = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "NOTES.md")
    if os.path.exists(notes):
        with open(notes) as f:
            # One heading level down: its sections sit under RESULTS' own.
            lines += [""] + [("#" + l if l.startswith("#") else l)
                             for l in f.read().strip().splitlines()]
    if micro:
        lines += ["", "## Micro-benchmarks (criterion, median)", "", "```", micro.rstrip(), "```"]
    lines.append("")
    with open(path, "w") as f:
        f.write("\n".join(lines))
    with open(os.path.splitext(path)[0] + ".json", "w") as f:
        json.dump({"meta": meta, "data": data}, f, indent=1)


def decide_us(micro):
    """µs per decision from criterion's `decide/10000 rules` line (its time is for 1000)."""
    import re

    m = re.search(r"decide/10000 rules\s+time:\s+\[\S+ \S+ ([\d.]+) (ns|µs|us|ms)", micro)
    if not m:
        return None
    scale = {"ns": 1e-3, "µs": 1, "us": 1, "ms": 1e3}[m.group(2)]
    return float(m.group(1)) * scale / 1000


def machine_meta(repo):
    def sh(*a):
        try:
            return subprocess.run(a, capture_output=True, text=True, cwd=repo).stdout.strip()
        except OSError:
            return "?"

    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    dirty = " (uncommitted changes)" if sh("git", "status", "--porcelain") else ""
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "commit": sh("git", "rev-parse", "--short", "HEAD") + dirty,
        "machine": f"{cpu}, {os.cpu_count()} cores, {platform.release()}",
        "load": " ".join(open("/proc/loadavg").read().split()[:3]),
    }
