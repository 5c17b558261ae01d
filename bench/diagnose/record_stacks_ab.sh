#!/usr/bin/env bash
# The cost of record's stacks over time: one build recording the same chokepoint-bench-threads
# process twice side by side, at the same time (both see the same machine load), with
# --stacks off and with --stacks on (on-CPU and off-CPU; record's default is on-cpu): file size,
# the recorder's own CPU (/usr/bin/time, user + system: sampler, perf ring draining, symbolizing,
# SQLite), and the in-kernel cost of the off-CPU programs, which run in the context of the tasks
# that switch and so are not in the recorder's own CPU time (kernel.bpf_stats_enabled:
# run_time_ns of the recorder's programs, read 5 s in and 5 s before the end).
# Usage: [STACKS=on-cpu] bench/diagnose/record_stacks_ab.sh BIN [N] [MODE] [DURATION_S] [STACK_RATE]
#   STACKS: the --stacks value of the second recorder (default on)
#   e.g. bench/diagnose/record_stacks_ab.sh build/bin/chokepoint 1000 wake 60 49
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=$1; n=${2:-1000}; mode=${3:-wake}; duration=${4:-60}; rate=${5:-49}
source bench/diagnose/bench_threads.sh
dir=$(mktemp -d)
pid=""
stats_before=$(sysctl -n kernel.bpf_stats_enabled)
trap 'set +e; kill $pid 2>/dev/null; sysctl -q kernel.bpf_stats_enabled="$stats_before"; rm -rf "$dir"' EXIT
sysctl -q kernel.bpf_stats_enabled=1
start_bench_threads "$dir" "$n" "$mode"
recorders=()
for side in off on; do
  /usr/bin/time -f "%U %S %e" -o "$dir/$side.time" \
    "$bin" record --pid "$pid" -o "$dir/$side.chokepoint" --interval 1s --duration "${duration}s" \
    --stacks "$([ "$side" = on ] && echo "${STACKS:-on}" || echo off)" --stack-rate "$rate" >"$dir/$side.log" 2>&1 &
  recorders+=($!)
done
# /usr/bin/time's children: the recorders themselves.
child() { for _ in $(seq 50); do c=$(pgrep -P "$1" || true); [ -n "$c" ] && break; sleep 0.1; done; echo "$c"; }
off_pid=$(child "${recorders[0]}"); on_pid=$(child "${recorders[1]}")
# The BPF programs' run time, summed over those a recorder holds (each program fd's fdinfo carries
# run_time_ns while kernel.bpf_stats_enabled is 1). Both sides hold the exact mode's programs;
# the difference is the off-CPU tracer's.
bpf_ns() {
  cat /proc/"$1"/fdinfo/* 2>/dev/null | awk '$1 == "run_time_ns:" { s += $2 } END { print s + 0 }'
}
sleep 5
t0=$(date +%s.%N); off0=$(bpf_ns "$off_pid"); on0=$(bpf_ns "$on_pid")
sleep $((duration - 10))
t1=$(date +%s.%N); off1=$(bpf_ns "$off_pid"); on1=$(bpf_ns "$on_pid")
wait "${recorders[@]}" || true
pct() { python3 -c "print(f'{($2 - $1) / 1e9 / ($t1 - $t0) * 100:.2f}')"; }
bpf_off=$(pct "$off0" "$off1"); bpf_on=$(pct "$on0" "$on1")
secs=$(sqlite3 "$dir/on.chokepoint" "SELECT (max(at_ns) - min(at_ns)) / 1e9 FROM tick")
printf '%-7s %10s %10s %12s %10s %12s %10s %10s\n' stacks bytes MB/hour stack_bytes slices \
  samples cpu_%core bpf_%core
for side in off on; do
  f="$dir/$side.chokepoint"
  bytes=$(stat -c %s "$f")
  # The stack tables' share of the file (dbstat: the pages of each table and index).
  stack_bytes=$(sqlite3 "$f" "SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name IN ('stack', 'stack_slice', 'stack_count', 'stack_count_slice')" 2>/dev/null || echo 0)
  slices=$(sqlite3 "$f" "SELECT count(*) FROM stack_slice")
  samples=$(sqlite3 "$f" "SELECT coalesce(sum(value), 0) FROM stack_count JOIN stack_slice ON stack_slice.id = slice WHERE kind = 0")
  read -r user sys wall <"$dir/$side.time"
  python3 - "$side" "$bytes" "$secs" "$stack_bytes" "$slices" "$samples" "$user" "$sys" "$wall" \
    "$([ "$side" = on ] && echo "$bpf_on" || echo "$bpf_off")" <<'PY'
import sys
side, size, secs, stack_bytes, slices, samples, user, sys_, wall, bpf = sys.argv[1:]
size, secs = int(size), float(secs)
cpu = (float(user) + float(sys_)) / float(wall) * 100
print(f"{side:<7} {size:10d} {size / secs * 3600 / 1e6:10.1f} {int(stack_bytes):12d} "
      f"{int(slices):10d} {int(samples):12d} {cpu:9.2f}% {float(bpf):9.2f}%")
PY
done
