#!/usr/bin/env bash
# Benchmark of file monitoring (issue #10): what `--workspace` costs at start on a repository of
# 50 000 tracked files, and how much it slows a build-like workload (many ignored outputs, some
# unignored generated files, a few source edits). Prints medians; docs/file-monitoring.md keeps
# the numbers. Needs root. Usage: scripts/bench-files.sh [WARDEN] [FILES] [RUNS]
set -euo pipefail
WARDEN=${1:-target/release/warden}
FILES=${2:-50000}
RUNS=${3:-5}
WARDEN=$(realpath "$WARDEN")
WORK=$(mktemp -d /tmp/warden-bench-files.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
WS="$WORK/ws"
mkdir -p "$WS"
cd "$WS"
git init -q -b main
printf 'target/\n' > .gitignore
python3 - "$FILES" <<'EOF'
import os, sys
n = int(sys.argv[1])
for i in range(n):
    d = f"src/m{i // 100:04d}"
    os.makedirs(d, exist_ok=True)
    with open(f"{d}/f{i % 100:03d}.rs", "w") as f:
        f.write(f"pub fn f{i}() -> u32 {{ {i} }}\n")
EOF
git add -A
git -c user.name=b -c user.email=b@example.com commit -qm bench
cd "$WORK"
echo "workspace: $FILES tracked files in $WS" >&2

# A build: 20 000 ignored outputs, 1 000 unignored generated files written twice by one
# process, 10 source edits.
cat > "$WORK/build.sh" <<EOF
set -e
cd "$WS"
python3 - <<'PY'
import os
for i in range(20000):
    d = f"target/o{i // 500}"
    os.makedirs(d, exist_ok=True)
    with open(f"{d}/x{i}.o", "wb") as f:
        f.write(b"\\0" * 4096)
os.makedirs("gen", exist_ok=True)
for _ in range(2):
    for i in range(1000):
        with open(f"gen/g{i}.rs", "w") as f:
            f.write("// generated\\n" * 20)
for i in range(10):
    with open(f"src/m0000/f{i:03d}.rs", "a") as f:
        f.write("// edit\\n")
PY
EOF

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ms() { local s e; s=$(date +%s%N); "$@" >/dev/null 2>&1; e=$(date +%s%N); echo $(((e - s) / 1000000)); }
reset_ws() { git -C "$WS" checkout -q -- . && git -C "$WS" clean -qfdx; }

# Interleaved (off, on, off, on, …) so the load of a shared machine falls on both alike.
args() {
  local a=(run --no-dns --audit-log "$WORK/audit-$1.jsonl")
  [ "$1" = on ] && a+=(--workspace "$WS")
  printf '%s\n' "${a[@]}"
}
for label in off on; do : > "$WORK/start-$label"; : > "$WORK/build-$label"; done
for _ in $(seq "$RUNS"); do
  for label in off on; do
    mapfile -t a < <(args "$label")
    ms "$WARDEN" "${a[@]}" -- true >> "$WORK/start-$label"
    reset_ws
    ms "$WARDEN" "${a[@]}" -- sh "$WORK/build.sh" >> "$WORK/build-$label"
  done
done
for label in off on; do
  echo "file monitoring $label: warden run -- true $(median < "$WORK/start-$label") ms;" \
    "build $(median < "$WORK/build-$label") ms (median of $RUNS)"
done
grep -c '"kind":"file"' "$WORK/audit-on.jsonl" | sed 's/^/file records in the last runs: /'
