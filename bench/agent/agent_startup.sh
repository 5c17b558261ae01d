#!/usr/bin/env bash
# chokepoint agent's start-up cost: the CPU time (utime + stime, ms) an agent watching the host and
# SERVICES lab instances (each with WORKERS idle pool threads) has used SETTLE_S seconds after it
# started, once every target's sampler is open (each loads its BPF objects, and each load parses the
# kernel's BTF) and before its first window closes (10 s windows). With OTHER_BUILD_DIR, that
# build's agent is started the same way right after, on the same targets, RUNS times each in turn
# (before/after side by side: e.g. main's build), with the medians and their ratio.
# Usage: bench/agent/agent_startup.sh [BUILD_DIR] [SERVICES] [WORKERS] [OTHER_BUILD_DIR] [RUNS]
#                                    [SETTLE_S]
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
services=${2:-10}
workers=${3:-100}
other=${4:-}
runs=${5:-3}
settle=${6:-5}
# shellcheck source=bench/agent/labs.sh
. bench/agent/labs.sh
trap stop_all EXIT
start_labs "$build/bin" "$services" "$workers"
hz=$(getconf CLK_TCK)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# CPU ms of one agent of build $1 after $settle s.
startup_ms() {
  local port
  port=$(free_port)
  "$1/bin/chokepoint" agent "${targets[@]}" --window 10s --interval 1s \
    --listen "127.0.0.1:$port" >/dev/null 2>&1 &
  local agent=$!
  pids+=("$agent")
  sleep "$settle"
  local ticks state
  ticks=$(awk '{print $14 + $15}' "/proc/$agent/stat")
  state=$(awk '{print $3}' "/proc/$agent/stat")
  kill "$agent"
  wait "$agent" 2>/dev/null || true
  if [ "$state" = Z ]; then
    echo "error: $1/bin/chokepoint agent exited within ${settle} s" >&2
    echo "hint: run it by hand with the same targets to see why" >&2
    exit 1
  fi
  echo $((ticks * 1000 / hz))
}
median() { tr ' ' '\n' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
this=()
that=()
for _ in $(seq "$runs"); do
  this+=("$(startup_ms "$build")")
  [ -n "$other" ] && that+=("$(startup_ms "$other")")
done
echo "host + $services lab services ($workers workers each), CPU ms in the first ${settle} s of each agent, load average $(cut -d' ' -f1 /proc/loadavg)"
m=$(echo "${this[*]}" | median)
echo "$build: median $m ms (${this[*]})"
if [ -n "$other" ]; then
  o=$(echo "${that[*]}" | median)
  echo "$other: median $o ms (${that[*]})"
  echo "ratio: $(echo "scale=3; $m / ($o + 0.0001)" | bc -l)"
fi
