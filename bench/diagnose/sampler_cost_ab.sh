#!/usr/bin/env bash
# Side by side: the diagnose sampler's own cost with two builds (before/after a change), in
# alternating runs against one chokepoint-bench-threads process, so both see the same machine.
# Prints every run and the median CPU seconds of each build.
# Usage: bench/diagnose/sampler_cost_ab.sh BEFORE_BIN AFTER_BIN THREADS MODE [DURATION] [PAIRS]
#   BEFORE_BIN/AFTER_BIN: directories holding a `chokepoint`; MODE: idle|parked|wake
set -euo pipefail
cd "$(dirname "$0")/../.."
before=$1; after=$2; n=$3; mode=$4; duration=${5:-5s}; pairs=${6:-3}
threads_bin=${THREADS_BIN:-build/bin/chokepoint-bench-threads}
period=20; [ "$n" -ge 10000 ] && period=1000
out=$(mktemp); json=$(mktemp)
"$threads_bin" "$n" "$mode" "$period" >"$out" &
pid=$!
trap 'set +e; kill $pid 2>/dev/null; rm -f "$out" "$json"' EXIT
for _ in $(seq 400); do grep -q ready "$out" 2>/dev/null && break; sleep 0.05; done
printf '%-7s %6s %-6s %8s %9s %8s %8s\n' build threads mode cpu_s samples rss_MiB wall_s
declare -A all
for i in $(seq "$pairs"); do
  for which in before after; do
    dir=$before; [ "$which" = after ] && dir=$after
    t0=$(date +%s.%N)
    "$dir/chokepoint" diagnose --pid "$pid" --duration "$duration" --json --no-stacks >"$json"
    t1=$(date +%s.%N)
    line=$(python3 - "$json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); o = d['overhead']
print(f"{o['cpu_s']:.3f} {o['thread_samples']} {o['rss_bytes']/2**20:.1f}")
PY
)
    read -r cpu samples rss <<<"$line"
    printf '%-7s %6s %-6s %8s %9s %8s %8.2f\n' "$which" "$n" "$mode" "$cpu" "$samples" "$rss" \
      "$(echo "$t1 - $t0" | bc)"
    all[$which]="${all[$which]:-} $cpu"
  done
done
for which in before after; do
  printf 'median %-6s %s\n' "$which" \
    "$(echo ${all[$which]} | tr ' ' '\n' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')"
done
