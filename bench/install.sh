#!/usr/bin/env bash
# Installs what bench/run needs, skipping what is present: peers and load tools from Debian,
# mitmproxy from PyPI in a venv (WARDEN_BENCH_VENV, default /var/tmp/warden-bench/venv).
# Services the packages ship are not started (policy-rc.d); the benchmark starts its own copies.
set -euo pipefail
venv="${WARDEN_BENCH_VENV:-/var/tmp/warden-bench/venv}"
declare -A bin_of=([haproxy]=haproxy [squid-openssl]=squid [nginx-light]=nginx [wrk]=wrk
                   [nghttp2-client]=h2load [iptables]=iptables [util-linux]=taskset
                   [iproute2]=ss [curl]=curl [openssl]=openssl)
missing=()
for pkg in "${!bin_of[@]}"; do
  command -v "${bin_of[$pkg]}" >/dev/null || [[ -x /usr/sbin/${bin_of[$pkg]} ]] || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "bench/install.sh: apt-get install ${missing[*]}" >&2
  apt-get update -qq
  # No package's own service may start in the root namespace.
  guard=""
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    guard=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  [[ -n "$guard" ]] && rm -f /usr/sbin/policy-rc.d
fi
if [[ ! -x "$venv/bin/mitmdump" ]]; then
  echo "bench/install.sh: mitmproxy into $venv" >&2
  mkdir -p "$(dirname "$venv")"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q mitmproxy
fi
