#!/usr/bin/env bash
# Quick start, step 1: install what is missing, build Warden, and run the demo: `warden run`
# around a shell that contacts a few test origins (HTTPS, HTTP, IPv6, raw TCP) inside a network
# namespace the demo creates, then prints the summary and the first audit records.
# Needs root (eBPF, cgroups, network namespaces).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-deps.sh
echo "[quickstart] cargo build (first build takes a few minutes: it also builds the eBPF object)" >&2
cargo build --workspace --bins
WARDEN_BIN="$PWD/target/debug/warden" exec target/debug/warden-demo
