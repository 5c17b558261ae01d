#!/usr/bin/env bash
# Two chokepoint builds recording the same chokepoint-bench-threads process side by side, at the
# same time (so both see the same machine load): file size, the recorder's CPU (/usr/bin/time,
# user + system, the whole process: sampler and SQLite), and the time to replay the recording.
# cpu_%core is the whole run's, start-up included (loading the BPF programs, the first reads:
# about 0.5 s of CPU in the exact mode, half of a 60 s run's); steady_% is the CPU between WARM_S
# seconds in and 2 s before the end (/proc/PID/stat utime + stime over the wall time between),
# what an hour's recording costs once started.
# Usage: [RECORD_ARGS="--mode sample"] [INTERVAL=100ms] [PERIOD_MS=1000] [WARM_S=10]
#        bench/diagnose/record_ab.sh OLD NEW [N] [MODE] [DURATION]
#   INTERVAL: record's --interval (default 1s); PERIOD_MS: how often a wake thread runs (20);
#   THREADS_BIN: another chokepoint-bench-threads; DURATION in s or m (60s)
#   e.g. bench/diagnose/record_ab.sh /tmp/main-chokepoint build/bin/chokepoint 1000 wake 60s
set -euo pipefail
cd "$(dirname "$0")/../.."
old=$1; new=$2; n=${3:-1000}; mode=${4:-wake}; duration=${5:-60s}
source bench/diagnose/bench_threads.sh
dir=$(mktemp -d)
pid=""
trap 'set +e; kill $pid 2>/dev/null; rm -rf "$dir"' EXIT
start_bench_threads "$dir" "$n" "$mode"
recorders=()
for side in old new; do
  bin=${!side}
  /usr/bin/time -f "%U %S %e" -o "$dir/$side.time" \
    "$bin" record --pid "$pid" -o "$dir/$side.chokepoint" --interval "${INTERVAL:-1s}" --duration "$duration" ${RECORD_ARGS:-} \
    >"$dir/$side.log" 2>&1 &
  recorders+=($!)
done
case $duration in *m) run_s=$((${duration%m} * 60)) ;; *) run_s=${duration%s} ;; esac
warm_s=${WARM_S:-10}
# The recorders' CPU seconds so far (utime + stime, /proc/PID/stat fields 14 and 15, after the
# comm's last ')'), nan for one that has ended; each recorder is the child of its /usr/bin/time.
cpu_s() {
  for t in "${recorders[@]}"; do
    r=$(pgrep -P "$t" || true)
    if [ -n "$r" ] && [ -r "/proc/$r/stat" ]; then
      awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); print ($12 + $13) / hz }' "/proc/$r/stat"
    else
      echo nan
    fi
  done | paste -sd' '
}
steady=(nan nan)
if [ "$run_s" -gt $((warm_s + 4)) ]; then
  sleep "$warm_s"
  read -r c0_old c0_new <<<"$(cpu_s)"
  t0=$(date +%s.%N)
  sleep $((run_s - warm_s - 2))
  read -r c1_old c1_new <<<"$(cpu_s)"
  t1=$(date +%s.%N)
  steady=($(python3 -c "nan = float('nan'); w = $t1 - $t0
print(f'{($c1_old - $c0_old) / w * 100:.2f}% {($c1_new - $c0_new) / w * 100:.2f}%')"))
fi
wait "${recorders[@]}" || true
secs=$(sqlite3 "$dir/new.chokepoint" "SELECT (max(at_ns) - min(at_ns)) / 1e9 FROM tick")
printf '%-4s %7s %12s %10s %12s %10s %10s %10s %12s\n' side schema thread_rows bytes bytes/row MB/hour \
  cpu_%core steady_% replay_s
i=0
for side in old new; do
  bin=${!side}
  f="$dir/$side.chokepoint"
  schema=$(sqlite3 "$f" "PRAGMA user_version")
  if [ "$schema" = 1 ]; then
    rows=$(sqlite3 "$f" "SELECT count(*) FROM thread_sample")
  else
    rows=$(sqlite3 "$f" "SELECT coalesce(sum(threads), 0) FROM thread_pack")
  fi
  rows=$((rows + $(sqlite3 "$f" "SELECT count(*) FROM thread_base")))
  bytes=$(stat -c %s "$f")
  read -r user sys wall <"$dir/$side.time"
  # The replay: the best of three, each reading the whole file and diagnosing it.
  best=""
  for _ in 1 2 3; do
    /usr/bin/time -f "%e" -o "$dir/replay.time" "$bin" replay "$f" >/dev/null 2>&1 || true
    t=$(cat "$dir/replay.time")
    best=$(python3 -c "print(min(float('$t'), float('${best:-1e9}')))")
  done
  python3 - "$side" "$schema" "$rows" "$bytes" "$user" "$sys" "$wall" "$secs" "$best" \
    "${steady[$i]}" <<'PY'
import sys
side, schema, rows, size, user, sys_, wall, secs, replay, steady = sys.argv[1:]
rows, size, secs = int(rows), int(size), float(secs)
cpu = (float(user) + float(sys_)) / float(wall) * 100
print(f"{side:<4} {schema:>7} {rows:12d} {size:10d} {size / max(rows, 1):12.1f} "
      f"{size / secs * 3600 / 1e6:10.1f} {cpu:9.2f}% {steady:>10} {float(replay):12.2f}")
PY
  i=$((i + 1))
done
