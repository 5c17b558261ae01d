#!/usr/bin/env bash
# chokepoint agent's own cost, side by side with prometheus-node-exporter in the same run: both
# serve /metrics on loopback for DURATION while the agent watches the host and SERVICES lab
# instances (each with WORKERS pool threads, idle: cost follows the threads that run). Both are
# scraped every 10 s during the run, as a Prometheus would (node_exporter works only when
# scraped). Reports CPU (% of one core, from /proc/PID/stat utime+stime over the run after the
# first window), RSS at the end, and the median of 20 scrapes' wall time (curl) of each endpoint.
# With OTHER_BUILD_DIR, that build's agent watches the same targets in the same run (before/after
# side by side: e.g. /work/main/build), with the ratio of the two agents' CPU.
# Usage: bench/agent/agent_cost.sh [BUILD_DIR] [DURATION_S] [SERVICES] [WORKERS] [WINDOW] [INTERVAL]
#                                  [OTHER_BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-build}/bin
duration=${2:-120}
services=${3:-10}
workers=${4:-100}
window=${5:-10s}
interval=${6:-1s}
other=${7:-}
command -v prometheus-node-exporter >/dev/null || {
  echo "error: prometheus-node-exporter is missing" >&2
  echo "hint: scripts/setup installs it" >&2
  exit 2
}
# shellcheck source=bench/agent/labs.sh
. bench/agent/labs.sh
cleanup() {
  if [ -n "${agent:-}" ] && ! kill -0 "$agent" 2>/dev/null; then echo "the agent had exited" >&2; fi
  stop_all
}
trap cleanup EXIT
start_labs "$bin" "$services" "$workers"
threads=0
for p in "${pids[@]}"; do threads=$((threads + $(ls /proc/"$p"/task | wc -l))); done

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
agent_port=$(free_port)
"$bin/chokepoint" agent "${targets[@]}" --window "$window" --interval "$interval" --listen "127.0.0.1:$agent_port" 2>/dev/null &
agent=$!
pids+=($agent)
if [ -n "$other" ]; then
  other_port=$(free_port)
  "$other/bin/chokepoint" agent "${targets[@]}" --window "$window" --interval "$interval" --listen "127.0.0.1:$other_port" 2>/dev/null &
  other_agent=$!
  pids+=($other_agent)
fi
ne_port=$(free_port)
prometheus-node-exporter --web.listen-address="127.0.0.1:$ne_port" --log.level=error 2>/dev/null &
ne=$!
pids+=($ne)
# Both have started and the agent has run its first windows.
sleep 12

ticks() { awk '{print $14 + $15}' /proc/"$1"/stat; }
rss_mb() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' /proc/"$1"/status; }
scrape_ms() {  # median wall time of 20 scrapes
  for _ in $(seq 20); do curl -s -o /dev/null -w '%{time_total}\n' "http://127.0.0.1:$1/metrics" || true; done |
    sort -n | awk '{a[NR]=$1} END {printf "%.1f", a[int((NR+1)/2)] * 1000}'
}
hz=$(getconf CLK_TCK)
a0=$(ticks $agent); n0=$(ticks $ne); t0=$(date +%s.%N)
[ -n "$other" ] && o0=$(ticks $other_agent)
for _ in $(seq $((duration / 10))); do
  sleep 10
  curl -s -o /dev/null "http://127.0.0.1:$agent_port/metrics" || echo "agent scrape failed" >&2
  curl -s -o /dev/null "http://127.0.0.1:$ne_port/metrics" || echo "node_exporter scrape failed" >&2
  [ -n "$other" ] && { curl -s -o /dev/null "http://127.0.0.1:$other_port/metrics" || echo "other agent scrape failed" >&2; }
done
a1=$(ticks $agent); n1=$(ticks $ne); t1=$(date +%s.%N)
[ -n "$other" ] && o1=$(ticks $other_agent)
wall=$(echo "$t1 - $t0" | bc -l)
agent_scrape=$(scrape_ms "$agent_port"); ne_scrape=$(scrape_ms "$ne_port")
agent_bytes=$(curl -s "http://127.0.0.1:$agent_port/metrics" | wc -c)
ne_bytes=$(curl -s "http://127.0.0.1:$ne_port/metrics" | wc -c)
pct() { echo "scale=3; 100 * ($2 - $1) / $hz / $wall" | bc -l; }
echo "host ($(ls /proc/*/task 2>/dev/null | grep -c "^[0-9]") threads on the machine) + $services lab services ($threads threads), ${window} windows, ${interval} interval, ${duration} s measured, load average $(cut -d' ' -f1 /proc/loadavg)"
echo "| exporter | CPU (% of one core) | RSS (MB) | scrape median (ms) | scrape size (bytes) |"
echo "|---|---|---|---|---|"
echo "| chokepoint agent | $(pct "$a0" "$a1") | $(rss_mb $agent) | $agent_scrape | $agent_bytes |"
echo "| prometheus-node-exporter | $(pct "$n0" "$n1") | $(rss_mb $ne) | $ne_scrape | $ne_bytes |"
if [ -n "$other" ]; then
  echo "| chokepoint agent of $other | $(pct "$o0" "$o1") | $(rss_mb $other_agent) | $(scrape_ms "$other_port") | $(curl -s "http://127.0.0.1:$other_port/metrics" | wc -c) |"
  echo "agent CPU / $other agent CPU: $(echo "scale=3; ($a1 - $a0) / ($o1 - $o0 + 0.0001)" | bc -l)"
fi
