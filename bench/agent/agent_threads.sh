#!/usr/bin/env bash
# Where chokepoint agent's CPU goes by target: the agent runs one thread per target (created in
# the order of its --target flags, after its main thread and the endpoint's), so each thread's
# utime + stime over DURATION_S seconds, after SETTLE_S, is that target's cost. Watches the host
# and SERVICES lab instances (WORKERS idle pool threads each), as agent_cost.sh does.
# Usage: bench/agent/agent_threads.sh [BUILD_DIR] [DURATION_S] [SERVICES] [WORKERS] [SETTLE_S]
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build} duration=${2:-60} services=${3:-10} workers=${4:-100} settle=${5:-15}
# shellcheck source=bench/agent/labs.sh
. bench/agent/labs.sh
trap stop_all EXIT
start_labs "$build/bin" "$services" "$workers"
"$build/bin/chokepoint" agent "${targets[@]}" --window 10s --interval 1s --listen 127.0.0.1:0 \
  >/dev/null 2>&1 &
agent=$!
pids+=("$agent")
sleep "$settle"
hz=$(getconf CLK_TCK)
# tid and CPU ticks of each of the agent's threads, in tid order.
snapshot() {
  local t
  for t in /proc/"$agent"/task/*; do
    echo "${t##*/} $(awk '{print $14 + $15}' "$t/stat")"
  done | sort -n
}
snapshot >"$logs/before"
sleep "$duration"
snapshot >"$logs/after"
if ! kill -0 "$agent" 2>/dev/null; then
  echo "error: $build/bin/chokepoint agent exited during the run" >&2
  echo "hint: run it by hand with the same targets to see why" >&2
  exit 1
fi
echo "host + $services lab services ($workers workers each), ${duration} s, load average $(cut -d' ' -f1 /proc/loadavg)"
# The last 1 + services threads are the targets' (the host first).
join "$logs/before" "$logs/after" | awk -v hz="$hz" -v d="$duration" -v n="$((services + 1))" '
  { tid[NR] = $1; ms[NR] = ($3 - $2) * 1000 / hz; total += ms[NR] }
  END {
    for (i = 1; i <= NR; ++i) {
      t = i - (NR - n);
      name = "agent (main, endpoint)";
      if (t == 1) name = "host";
      if (t > 1) name = "service " (t - 1);
      share = total > 0 ? 100 * ms[i] / total : 0;
      printf "%-24s tid %-8s %6d ms  %5.1f%% of the agent\n", name, tid[i], ms[i], share;
    }
    printf "total %d ms: %.3f%% of one core\n", total, total / d / 10;
  }'
