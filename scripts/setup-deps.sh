#!/usr/bin/env bash
# Installs what building and testing Warden needs on a fresh Debian 12 machine of the project's
# kind, skipping whatever is already there. Used by README's quick start and by .ci/run.
#
# Needs root for apt-get. Everything it installs is a system package, a rustup component, or a
# cargo-installed tool; nothing is cached outside the repo.
set -euo pipefail

log() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }

need_apt=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
# llvm-22-dev: bpf-linker links against LLVM 22 (the nightly's LLVM). The rest are the tools the
# end-to-end tests and the demo drive: real clients and real origins. dnsmasq-base is the test
# zone's authoritative server: the bare binary, without the `dnsmasq` package's system service
# that would take port 53 on the host; bind9-dnsutils is dig.
# musl-tools: musl-gcc, for the static release build the tests check (scripts/release.sh).
for pkg in llvm-22-dev curl openssl iproute2 util-linux python3 ca-certificates iptables \
  dnsmasq-base bind9-dnsutils musl-tools binutils; do
  have_pkg "$pkg" || need_apt+=("$pkg")
done
# The TLS-inspection tests' clients and origins: git (git http-backend serves the test
# repository), node (fetch, http2) and pip. Checked by command rather than by package, since they
# may come from elsewhere (pyenv, nodesource) and apt's older copies would only shadow them.
command -v git >/dev/null 2>&1 || need_apt+=(git)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
# The HTML report's test opens it in headless Chromium.
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
python3 -m pip --version >/dev/null 2>&1 || need_apt+=(python3-pip)
if ((${#need_apt[@]})); then
  log "apt-get install ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
else
  log "system packages present"
fi

# python's requests, one of the clients TLS inspection must keep working. pip refuses to install
# into Debian's own python3 (PEP 668); apt's package is the one for that interpreter.
if ! python3 -c 'import requests' 2>/dev/null; then
  log "python3 -m pip install requests"
  if ! python3 -m pip install -q requests; then
    log "apt-get install python3-requests"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-requests
  fi
else
  log "python requests present"
fi

# The static release build (tests/tests/release_static.rs checks it).
if ! rustup target list --installed | grep -qx x86_64-unknown-linux-musl; then
  log "rustup target add x86_64-unknown-linux-musl"
  rustup target add x86_64-unknown-linux-musl
fi

# The eBPF crate is built with -Z build-std=core, which needs the nightly's rust-src.
nightly=$(rustup toolchain list | awk '/^nightly/ {print $1; exit}')
if [[ -z "$nightly" ]]; then
  echo "no nightly toolchain installed (the eBPF build needs one)" >&2
  exit 1
fi
if ! rustup component list --toolchain "$nightly" --installed | grep -q '^rust-src'; then
  log "rustup component add rust-src --toolchain $nightly"
  rustup component add rust-src --toolchain "$nightly"
fi

if ! command -v bpf-linker >/dev/null 2>&1 && [[ ! -x "$HOME/.cargo/bin/bpf-linker" ]]; then
  # bpf-linker 0.13 defaults to LLVM 23, which is not packaged here; build it against LLVM 22.
  log "cargo install bpf-linker (about 2 minutes)"
  LLVM_PREFIX=/usr/lib/llvm-22 cargo +stable install bpf-linker@0.13.0 --locked \
    --no-default-features --features llvm-22
else
  log "bpf-linker present"
fi
log "dependencies ready"
