#!/usr/bin/env bash
# The throughput cost of `chokepoint profile --memory` (src/bpf/memory.bpf.c: uprobes on the
# target's allocator, byte sampling) at the default sampling rate, side by side with no profiler,
# on two targets:
#   lab    chokepoint-lab --scenario leak (64 KiB retained per request, through operator new and
#          glibc malloc) under wrk -t1 -c8;
#   redis  Debian's redis-server (jemalloc) under redis-benchmark (SET, 50 clients);
#   loop   malloc_loop.c: malloc+free pairs in a loop, for the probes' cost per allocator call.
# ROUNDS alternating pairs of runs on the same server (without, then with the profiler attached
# for the whole run), medians and their ratio. bcc's memleak is not compared: it compiles its BPF
# programs at run time against the kernel's headers, and this kernel ships none
# (/lib/modules/$(uname -r)/build and /sys/kernel/kheaders.tar.xz are missing). Needs root.
# Usage: bench/memory/memory_overhead.sh [BUILD_DIR] [ROUNDS] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-build}/bin
rounds=${2:-5}
secs=${3:-5}
out=$(mktemp -d /tmp/cp-memory-bench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$out"
}
trap cleanup EXIT

# profile PID [ARGS]: the profiler over the whole of one run (started 1 s before it: attaching).
profile() {
  local pid=$1
  shift
  "$bin/chokepoint" profile --memory --pid "$pid" --duration "$((secs + 2))s" --top 3 "$@" \
    >"$out/profile.out" 2>"$out/profile.err"
}

median_ratio() {  # name, "without..." , "with..."
  python3 - "$1" "$2" "$3" <<'PY'
import statistics, sys
name, a, b = sys.argv[1], [float(x) for x in sys.argv[2].split()], [float(x) for x in sys.argv[3].split()]
ma, mb = statistics.median(a), statistics.median(b)
print(f"{name}: median without {ma:.0f}, with --memory {mb:.0f}: ratio {mb/ma:.4f} "
      f"({(1-mb/ma)*100:+.2f}% throughput lost)")
PY
}

# --- lab leak ---
"$bin/chokepoint-lab" --port 0 --scenario leak >"$out/lab.out" 2>&1 &
lab=$!; pids+=("$lab")
for _ in $(seq 100); do grep -q listening "$out/lab.out" && break; sleep 0.05; done
port=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$out/lab.out")
run_wrk() { wrk -t1 -c8 -d"${secs}s" "http://127.0.0.1:$port/" | awk '/Requests\/sec/ {print $2}'; }
# Three runs a round: no profiler, the default sampling rate, and probes that (almost) never
# sample (--sample-bytes 1 GiB: the uprobe traps alone, no stack walks or map updates).
without=(); with=(); traps=()
for r in $(seq "$rounds"); do
  a=$(run_wrk)
  profile "$lab" & pr=$!
  sleep 1
  b=$(run_wrk)
  wait "$pr" || { cat "$out/profile.err"; exit 1; }
  calls=$(grep -o '[0-9]* allocator calls in [0-9.]* s, [0-9]* sampled' "$out/profile.err")
  cp "$out/profile.out" "$out/profile_default.out"
  profile "$lab" --sample-bytes 1073741824 & pr=$!
  sleep 1
  c=$(run_wrk)
  wait "$pr" || { cat "$out/profile.err"; exit 1; }
  without+=("$a"); with+=("$b"); traps+=("$c")
  echo "lab round $r: without $a req/s, with $b req/s ($calls), probes only $c req/s"
done
median_ratio "lab leak req/s" "${without[*]}" "${with[*]}"
median_ratio "lab leak req/s, probes only (no sampling)" "${without[*]}" "${traps[*]}"
sed -n '1,6p' "$out/profile_default.out"
kill "$lab"; wait "$lab" 2>/dev/null || true

# --- redis (jemalloc) ---
rport=$((20000 + RANDOM % 20000))
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
  >"$out/redis.out" 2>&1 &
redis=$!; pids+=("$redis")
for _ in $(seq 100); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.05; done
# SET requests/s over SECONDS (redis-benchmark -q prints a running "overall" rate).
run_bench_timed() {
  set +o pipefail  # timeout ends redis-benchmark (status 124): the rate printed so far is the result
  timeout -s INT "$secs" redis-benchmark -p "$rport" -c 50 -n 100000000 -t set -d 256 \
    -r 100000 -q 2>&1 | tr '\r' '\n' | awk '/SET: rps=/ {split($0, a, "overall: "); v = a[2]} END {print v + 0}'
}
without=(); with=()
for r in $(seq "$rounds"); do
  a=$(run_bench_timed)
  profile "$redis" & pr=$!
  sleep 1
  b=$(run_bench_timed)
  wait "$pr" || { cat "$out/profile.err"; exit 1; }
  without+=("$a"); with+=("$b")
  echo "redis round $r: without $a SET/s, with $b SET/s; $(grep -o '[0-9]* allocator calls in [0-9.]* s, [0-9]* sampled' "$out/profile.err")"
done
median_ratio "redis SET/s (jemalloc)" "${without[*]}" "${with[*]}"
grep -o 'probes in [^)]*)' "$out/profile.err" | head -1
sed -n '1,6p' "$out/profile.out"

# --- the cost of one probed malloc+free pair ---
cc -O2 -o "$out/malloc_loop" bench/memory/malloc_loop.c
plain=$("$out/malloc_loop" 200000 | sed 's/.*=//')
"$out/malloc_loop" 20000 2 >"$out/loop.out" &
loop=$!; pids+=("$loop")
sleep 0.2
"$bin/chokepoint" profile --memory --pid "$loop" --duration 10s >/dev/null 2>&1 || true
wait "$loop" || true
probed=$(sed 's/.*=//' "$out/loop.out")
awk -v a="$plain" -v b="$probed" 'BEGIN { printf "malloc+free pair: %.1f ns without, %.1f us with the probes (malloc entry and return, free entry)\n", a, b / 1000 }'
