#!/usr/bin/env bash
# chokepoint record (exact and sampled split) beside atop's raw file (atop -w), for the same
# chokepoint-bench-threads process over the same minute at 1 s: bytes per thread-sample.
# atop writes every task of the host (it has no per-process filter), so its bytes per
# thread-sample divide by the host's threads, counted at the start and the end.
# below (Meta's) is not packaged in Debian 12, so it is not compared.
# Usage: bench/diagnose/record_vs_atop.sh [CHOKEPOINT] [N] [MODE] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-build/bin/chokepoint}; n=${2:-1000}; mode=${3:-wake}; secs=${4:-60}
source bench/diagnose/bench_threads.sh
dir=$(mktemp -d)
pid=""
trap 'set +e; kill $pid 2>/dev/null; rm -rf "$dir"' EXIT
start_bench_threads "$dir" "$n" "$mode"
host_threads() { find /proc/[0-9]*/task -maxdepth 1 -mindepth 1 2>/dev/null | wc -l; }
before=$(host_threads)
atop -w "$dir/atop.raw" 1 "$secs" >/dev/null 2>&1 &
atop_pid=$!
"$bin" record --pid "$pid" -o "$dir/exact.chokepoint" -i 1s -d "${secs}s" >/dev/null 2>&1 &
exact_pid=$!
"$bin" record --pid "$pid" -o "$dir/sample.chokepoint" -i 1s -d "${secs}s" --mode sample \
  >/dev/null 2>&1 &
sample_pid=$!
wait "$atop_pid" "$exact_pid" "$sample_pid" || true
after=$(host_threads)
printf '%-22s %10s %16s %16s\n' file bytes thread_samples bytes/thread_sample
for f in exact sample; do
  file="$dir/$f.chokepoint"
  rows=$(sqlite3 "$file" "SELECT (SELECT count(*) FROM tick) * $n")
  bytes=$(stat -c %s "$file")
  printf '%-22s %10d %16d %16.1f\n' "chokepoint ($f)" "$bytes" "$rows" "$(echo "$bytes / $rows" | bc -l)"
done
bytes=$(stat -c %s "$dir/atop.raw")
rows=$(( secs * (before + after) / 2 ))
printf '%-22s %10d %16d %16.1f\n' "atop -w (whole host)" "$bytes" "$rows" "$(echo "$bytes / $rows" | bc -l)"
echo "host threads: $before at the start, $after at the end"
