#!/usr/bin/env bash
# Checks that each FILE is a statically linked ELF executable: no program interpreter (PT_INTERP)
# and no shared-library dependency (DT_NEEDED). Such a binary needs no particular glibc, so one
# built here (Debian 12, glibc 2.36) starts on Ubuntu 22.04 (glibc 2.35) and 24.04 alike.
# Exit 0 when every FILE is static, 1 otherwise (saying why), 2 on bad usage.
set -euo pipefail

if (($# == 0)); then
  echo "usage: $0 FILE..." >&2
  exit 2
fi
command -v readelf >/dev/null || { echo "check-static: readelf (binutils) is needed" >&2; exit 2; }

bad=0
for f in "$@"; do
  this=0
  if ! head -c 4 "$f" 2>/dev/null | grep -q $'\x7fELF'; then
    echo "check-static: $f: not an ELF file" >&2
    bad=1
    continue
  fi
  if readelf -lW "$f" | grep -q 'Requesting program interpreter'; then
    echo "check-static: $f: dynamically linked ($(readelf -lW "$f" | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p'))" >&2
    this=1
  fi
  needed=$(readelf -dW "$f" 2>/dev/null | awk '/\(NEEDED\)/ {print $NF}' | tr -d '[]' | paste -sd, -)
  if [[ -n "$needed" ]]; then
    echo "check-static: $f: needs shared libraries: $needed" >&2
    this=1
  fi
  if ((this == 0)); then
    echo "check-static: $f: static ($(readelf -hW "$f" | awk -F: '/Machine/ {gsub(/^ +/, "", $2); print $2}'))"
  else
    bad=1
  fi
done
exit "$bad"
