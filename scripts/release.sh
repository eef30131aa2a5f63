#!/usr/bin/env bash
# Builds the release binaries: static (musl) `warden` for x86_64 and aarch64, checked static, with
# SHA-256 sums, into dist/; and pins them in action/binaries.json, the file the GitHub Action
# downloads and verifies against.
#
#   scripts/release.sh [--version vX.Y.Z] [--target x86_64|aarch64]... [--out DIR] [--no-pin]
#
# Static builds because a glibc build made on Debian 12 (glibc 2.36) does not start on Ubuntu
# 22.04 (glibc 2.35); a static one starts on 22.04 and 24.04 alike (shared/PLATFORM-NOTES.md).
# Installs what it needs and is missing (rustup targets; musl-tools; for aarch64 a cross C
# compiler for ring's C and assembly), as root for apt. The eBPF object is built for the BPF
# target by proxy/build.rs whatever the host target, and embedded.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\033[1m[release]\033[0m %s\n' "$*" >&2; }

version="v$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)"
out=dist
pin=1
targets=()
while (($#)); do
  case "$1" in
    --version) version=$2; shift 2 ;;
    --target) targets+=("$2"); shift 2 ;;
    --out) out=$2; shift 2 ;;
    --no-pin) pin=0; shift ;;
    *) echo "usage: $0 [--version vX.Y.Z] [--target x86_64|aarch64]... [--out DIR] [--no-pin]" >&2; exit 2 ;;
  esac
done
((${#targets[@]})) || targets=(x86_64 aarch64)

have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
apt_install() {
  local need=()
  for p in "$@"; do have_pkg "$p" || need+=("$p"); done
  ((${#need[@]})) || return 0
  log "apt-get install ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
}

mkdir -p "$out"
for arch in "${targets[@]}"; do
  triple="$arch-unknown-linux-musl"
  env_triple=${triple//-/_}
  rustup target list --installed | grep -qx "$triple" || { log "rustup target add $triple"; rustup target add "$triple"; }
  case "$arch" in
    x86_64)
      apt_install musl-tools
      export "CC_${env_triple}=musl-gcc"
      ;;
    aarch64)
      # ring's C and assembly need an aarch64 C compiler; the link uses Rust's own musl CRT
      # and libc (musl targets are self-contained) through rust-lld.
      apt_install gcc-aarch64-linux-gnu libc6-dev-arm64-cross
      export "CC_${env_triple}=aarch64-linux-gnu-gcc"
      export "AR_${env_triple}=aarch64-linux-gnu-ar"
      export "CARGO_TARGET_${env_triple^^}_LINKER=rust-lld"
      ;;
    *) echo "unknown target $arch (x86_64 or aarch64)" >&2; exit 2 ;;
  esac
  log "cargo build --release --target $triple"
  cargo build --release --locked -p proxy --bin warden --target "$triple"
  bin="$out/warden-$triple"
  cp "target/$triple/release/warden" "$bin"
  scripts/check-static.sh "$bin"
  # It starts: natively, or under qemu-user when installed (qemu-user-static).
  if [[ "$arch" == "$(uname -m)" ]]; then
    "$bin" --version
  elif command -v "qemu-$arch-static" >/dev/null; then
    "qemu-$arch-static" "$bin" --version
  else
    log "not started: no qemu-$arch-static here to run an $arch binary"
  fi
done

(cd "$out" && sha256sum warden-*-unknown-linux-musl > SHA256SUMS)
log "$out/SHA256SUMS:"
cat "$out/SHA256SUMS" >&2

if ((pin)); then
  python3 - "$version" "$out/SHA256SUMS" action/binaries.json <<'EOF'
import json, sys
version, sums, path = sys.argv[1:]
pinned = json.load(open(path))
pinned["version"] = version
for line in open(sums):
    digest, name = line.split()
    pinned["sha256"][name.removeprefix("warden-")] = digest
json.dump(pinned, open(path, "w"), indent=2)
open(path, "a").write("\n")
EOF
  log "pinned $version in action/binaries.json: commit it with the release tag, and upload $out/warden-* to the release"
fi
