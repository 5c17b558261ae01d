#!/usr/bin/env bash
# Measures every chokepoint-lab scenario before and after its fix with wrk, and prints a
# Markdown table (the numbers in lab/README.md come from this script).
#
# Usage: bench/lab/run_scenarios.sh [BUILD_DIR] [SECONDS]     (defaults: build, 5)
# Needs wrk; paging and bandwidth also need root (memory cgroup, network namespace) and are
# skipped otherwise. Every run starts its own lab on a free port and stops it with SIGTERM.
# The machine this was written on has 2 cores shared by the lab and wrk, so absolute numbers
# are low and noisy: compare rows of one run, as ratios.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build}
secs=${2:-5}
lab_bin=$build/bin/chokepoint-lab
here=$root/bench/lab
[ -x "$lab_bin" ] || { echo "error: $lab_bin not found" >&2; echo "hint: build the chokepoint-lab target first" >&2; exit 1; }
command -v wrk >/dev/null || { echo "error: wrk not found" >&2; echo "hint: run scripts/setup" >&2; exit 1; }

tmp=$(mktemp -d /tmp/lab-bench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "${ns:-}" ]; then ip netns del "$ns" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# start_lab NAME ARGS... : starts a lab, sets LAB_PID and LAB_PORT.
start_lab() {
  local name=$1; shift
  "$lab_bin" --port 0 "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
  LAB_PID=$!
  pids+=("$LAB_PID")
  for _ in $(seq 100); do
    grep -q listening "$tmp/$name.out" 2>/dev/null && break
    sleep 0.1
  done
  LAB_PORT=$(sed -n 's/.*:\([0-9]*\) scenario=.*/\1/p' "$tmp/$name.out")
  [ -n "$LAB_PORT" ] || { echo "error: lab '$name' did not start: $(cat "$tmp/$name.err")" >&2; exit 1; }
}
stop_lab() { kill "$1"; wait "$1" 2>/dev/null || true; }

majflt() { awk '{print $12}' "/proc/$1/stat"; }  # proc(5) field (12)
rss_mib() { awk '/VmRSS/ {printf "%.0f", $2/1024}' "/proc/$1/status"; }
overflows() { awk '/^TcpExt:/ { if (!h) { for (i=1;i<=NF;i++) if ($i=="ListenOverflows") c=i; h=1 } else print $c }' /proc/net/netstat; }

printf '| scenario | variant | req/s | p99 | extra |\n|---|---|---:|---:|---|\n'
row() {  # row SCENARIO VARIANT WRK_OUTPUT EXTRA
  local rps p99
  rps=$(awk '/Requests\/sec/ {printf "%.0f", $2}' <<<"$3")
  p99=$(awk '$1=="99%" {print $2}' <<<"$3")
  printf '| %s | %s | %s | %s | %s |\n' "$1" "$2" "$rps" "$p99" "$4"
}
run_wrk() { wrk --latency "$@" 2>&1; }
wrk_std=(-t1 -c16 -d"${secs}s")

# none: the headroom baseline (wrk -t2 -c50, as in the acceptance check)
for model in epoll threads; do
  start_lab none --scenario none --model "$model"
  out=$(run_wrk -t2 -c50 -d"$((secs * 2))s" "http://127.0.0.1:$LAB_PORT/")
  row none "model=$model (wrk -t2 -c50)" "$out" ""
  stop_lab "$LAB_PID"
done

# cpu vs --cache on (100 hot keys)
for v in "" "--cache on"; do
  start_lab cpu --scenario cpu $v
  out=$(run_wrk "${wrk_std[@]}" -s "$here/keys_hot.lua" "http://127.0.0.1:$LAB_PORT/")
  row cpu "${v:-default}" "$out" ""
  stop_lab "$LAB_PID"
done

# serial vs --serial-workers 2
for v in "" "--serial-workers 2"; do
  start_lab serial --scenario serial $v
  out=$(run_wrk "${wrk_std[@]}" "http://127.0.0.1:$LAB_PORT/?k=1")
  row serial "${v:-default}" "$out" ""
  stop_lab "$LAB_PID"
done

# lock vs --lock sharded (random keys spread the shards)
for v in "" "--lock sharded"; do
  start_lab lock --scenario lock $v
  out=$(run_wrk "${wrk_std[@]}" -s "$here/keys_random.lua" "http://127.0.0.1:$LAB_PORT/")
  row lock "${v:-default}" "$out" "workers=8"
  stop_lab "$LAB_PID"
done

# disk: per-request vs batch vs async (64 connections: group commit needs company)
for v in per-request batch async; do
  start_lab disk --scenario disk --commit "$v" --blocking-workers 64
  out=$(run_wrk -t1 -c64 -d"${secs}s" "http://127.0.0.1:$LAB_PORT/")
  row disk "--commit $v (wrk -c64)" "$out" ""
  stop_lab "$LAB_PID"
done

# fsync: an O_DSYNC write per request vs group commit vs buffered writes (64 connections)
for v in per-request batch async; do
  start_lab fsync --scenario fsync --commit "$v" --blocking-workers 64
  out=$(run_wrk -t1 -c64 -d"${secs}s" "http://127.0.0.1:$LAB_PORT/")
  row fsync "--commit $v (wrk -c64)" "$out" ""
  stop_lab "$LAB_PID"
done

# log: sync vs async vs off
for v in sync async off; do
  start_lab log --scenario log --log "$v"
  out=$(run_wrk "${wrk_std[@]}" "http://127.0.0.1:$LAB_PORT/")
  row log "--log $v" "$out" ""
  stop_lab "$LAB_PID"
done

# leak vs --bounded: RSS after the run (random keys; unbounded retention capped at 2 GiB)
for v in "" "--bounded"; do
  start_lab leak --scenario leak --leak-cap-bytes 2147483648 $v
  before=$(rss_mib "$LAB_PID")
  out=$(run_wrk -t1 -c4 -d2s -s "$here/keys_random.lua" "http://127.0.0.1:$LAB_PORT/")
  after=$(rss_mib "$LAB_PID")
  row leak "${v:-default} (wrk -c4 -d2s)" "$out" "RSS ${before} -> ${after} MiB"
  stop_lab "$LAB_PID"
done

# paging vs --bounded: major faults per second (needs root for the memory cgroup)
if [ "$(id -u)" -eq 0 ]; then
  for v in "" "--bounded"; do
    start_lab paging --scenario paging $v
    run_wrk -t1 -c16 -d1s "http://127.0.0.1:$LAB_PORT/" >/dev/null  # warm-up
    f0=$(majflt "$LAB_PID")
    out=$(run_wrk "${wrk_std[@]}" "http://127.0.0.1:$LAB_PORT/")
    f1=$(majflt "$LAB_PID")
    row paging "${v:-default} (64 MiB limit, 256 MiB file)" "$out" "majflt/s $(((f1 - f0) / secs))"
    stop_lab "$LAB_PID"
  done
else
  echo "| paging | skipped | | | needs root |"
fi

# upstream (10 ms upstream, 3 calls) vs batch, concurrent, cache
start_lab upstream-server --role upstream --delay-ms 10
up_pid=$LAB_PID
up_port=$LAB_PORT
for v in "" "--upstream-batch" "--upstream-concurrent" "--cache on"; do
  start_lab upstream --scenario upstream --upstream "127.0.0.1:$up_port" $v
  if [ "$v" = "--cache on" ]; then
    out=$(run_wrk "${wrk_std[@]}" -s "$here/keys_hot.lua" "http://127.0.0.1:$LAB_PORT/")
  else
    out=$(run_wrk "${wrk_std[@]}" "http://127.0.0.1:$LAB_PORT/?k=1")
  fi
  row upstream "${v:-sequential}" "$out" "delay 10 ms x 3 calls"
  stop_lab "$LAB_PID"
done
# proxy: one event loop, 4 kept-alive connections to a 10 ms upstream; a larger pool; the cache
for v in "" "--upstream-pool 16" "--cache on"; do
  start_lab proxy --scenario proxy --upstream "127.0.0.1:$up_port" $v
  if [ "$v" = "--cache on" ]; then
    out=$(run_wrk "${wrk_std[@]}" -s "$here/keys_hot.lua" "http://127.0.0.1:$LAB_PORT/")
  else
    out=$(run_wrk "${wrk_std[@]}" "http://127.0.0.1:$LAB_PORT/?k=1")
  fi
  row proxy "${v:-pool 4}" "$out" "delay 10 ms"
  stop_lab "$LAB_PID"
done
stop_lab "$up_pid"

# backlog: new connection per request (Connection: close) against a 20 ms acceptor
for v in "" "--backlog 4096" "--backlog 4096 --accept-delay-ms 0"; do
  start_lab backlog --scenario backlog --model threads $v
  o0=$(overflows)
  out=$(run_wrk -t1 -c16 -d"${secs}s" -H "Connection: close" "http://127.0.0.1:$LAB_PORT/")
  o1=$(overflows)
  row backlog "${v:-default (backlog 1)}" "$out" "ListenOverflows +$((o1 - o0))"
  stop_lab "$LAB_PID"
done

# bandwidth: 1 MiB responses through a veth pair shaped to 20 mbit/s (needs root)
if [ "$(id -u)" -eq 0 ] && ip netns add "labbench$$" 2>/dev/null; then
  ns=labbench$$
  n=$(($$ % 250 + 1))
  ip link add "lbb$$h" type veth peer name "lbb$$l"
  ip link set "lbb$$l" netns "$ns"
  ip addr add "10.201.$n.1/30" dev "lbb$$h"
  ip link set "lbb$$h" up
  ip -n "$ns" addr add "10.201.$n.2/30" dev "lbb$$l"
  ip -n "$ns" link set "lbb$$l" up
  ip -n "$ns" link set lo up
  for shaped in no yes; do
    if [ "$shaped" = yes ]; then
      tc -n "$ns" qdisc add dev "lbb$$l" root tbf rate 20mbit burst 32kbit latency 50ms
    fi
    ip netns exec "$ns" "$lab_bin" --scenario bandwidth --bind 0.0.0.0 --port 0 >"$tmp/bw.out" 2>&1 &
    LAB_PID=$!
    pids+=("$LAB_PID")
    for _ in $(seq 50); do grep -q listening "$tmp/bw.out" && break; sleep 0.1; done
    port=$(sed -n 's/.*:\([0-9]*\) scenario=.*/\1/p' "$tmp/bw.out")
    out=$(run_wrk -t1 -c4 -d"${secs}s" "http://10.201.$n.2:$port/")
    xfer=$(awk '/Transfer\/sec/ {print $2}' <<<"$out")
    row bandwidth "tbf 20mbit: $shaped" "$out" "transfer $xfer/s"
    stop_lab "$LAB_PID"
  done
else
  echo "| bandwidth | skipped | | | needs root and ip netns |"
fi
