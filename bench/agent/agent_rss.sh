#!/usr/bin/env bash
# chokepoint agent's RSS over time on the host and SERVICES lab instances, while the host holds
# TIME_WAIT sockets of servers that have exited (what other programs' load tests leave for a
# minute): a loopback server closes TIME_WAIT_N connections first, each in turn, and exits; this
# repeats for the whole run. Prints each agent's RSS (smaps_rollup) every 10 s, the host's
# TIME_WAIT count, and at the end VmHWM and the CPU (% of one core) over the run. With
# OTHER_BUILD_DIR, that build's agent watches the same targets in the same run (e.g. main's).
# TIME_WAIT_N 0: no sockets made (the RSS of a quiet host).
# Usage: bench/agent/agent_rss.sh [BUILD_DIR] [DURATION_S] [TIME_WAIT_N] [OTHER_BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-build}/bin
duration=${2:-90}
time_wait=${3:-5000}
other=${4:-}
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
targets=(--target host)
for i in $(seq 10); do
  log=/tmp/cp-agent-rss-lab$i.log
  "$bin/chokepoint-lab" --port 0 --scenario none --workers 100 >"$log" &
  pids+=($!)
  for _ in $(seq 100); do grep -q listening "$log" && break; sleep 0.05; done
  targets+=(--target "pid:$(sed -n 's/.*pid=\([0-9]*\).*/\1/p' "$log")")
done
"$bin/chokepoint" agent "${targets[@]}" --window 10s --interval 1s --listen 127.0.0.1:0 2>/dev/null &
agent=$!
pids+=("$agent")
if [ -n "$other" ]; then
  "$other/bin/chokepoint" agent "${targets[@]}" --window 10s --interval 1s --listen 127.0.0.1:0 2>/dev/null &
  other_agent=$!
  pids+=("$other_agent")
fi
if [ "$time_wait" -gt 0 ]; then
  # Servers that close first (their side goes to TIME_WAIT) and exit, one after another.
  python3 - "$time_wait" <<'PY' &
import socket, sys
n = int(sys.argv[1])
while True:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(128)
    for _ in range(n):
        c = socket.create_connection(srv.getsockname())
        a, _ = srv.accept()
        a.close()
        c.recv(1)
        c.close()
    srv.close()
PY
  pids+=($!)
fi
ticks() { awk '{print $14 + $15}' /proc/"$1"/stat; }
rss_kb() { awk '/^Rss:/ {print $2}' /proc/"$1"/smaps_rollup; }
hz=$(getconf CLK_TCK)
a0=$(ticks "$agent"); t0=$(date +%s.%N)
[ -n "$other" ] && o0=$(ticks "$other_agent")
for s in $(seq 10 10 "$duration"); do
  sleep 10
  line="$s s: agent $(rss_kb "$agent") kB"
  [ -n "$other" ] && line+=", $other agent $(rss_kb "$other_agent") kB"
  echo "$line; TIME_WAIT on the host $(ss -tan state time-wait | tail -n +2 | wc -l)"
done
a1=$(ticks "$agent"); t1=$(date +%s.%N)
wall=$(echo "$t1 - $t0" | bc -l)
pct() { echo "scale=3; 100 * ($2 - $1) / $hz / $wall" | bc -l; }
echo "agent: VmHWM $(awk '/VmHWM/ {print $2}' /proc/"$agent"/status) kB, CPU $(pct "$a0" "$a1")% of one core"
if [ -n "$other" ]; then
  o1=$(ticks "$other_agent")
  echo "$other agent: VmHWM $(awk '/VmHWM/ {print $2}' /proc/"$other_agent"/status) kB, CPU $(pct "$o0" "$o1")% of one core"
fi
echo "load average $(cut -d' ' -f1-3 /proc/loadavg)"
