#!/bin/bash
# How long chokepoint takes to reach main() beside a CPU-saturated target, against a base build.
#
#   bench/startup/loading.sh BUILD_DIR [ROUNDS] [BASE_CHOKEPOINT]
#
# Starts tests/reliability_target with 5,000 threads (100 spinning, 4,900 waking every 50 ms) and
# a busy-loop shell on each core, then runs `chokepoint --version` at nice 0, ROUNDS times (default
# 9), alternating with BASE_CHOKEPOINT when given, and prints each binary's median wall time,
# its libraries loaded at exec and its system calls and page faults on a quiet start. Runs as root
# (nice -20 for the timing shell). Everything it starts is ended on exit.
set -euo pipefail
build=${1:?usage: bench/startup/loading.sh BUILD_DIR [ROUNDS] [BASE_CHOKEPOINT]}
rounds=${2:-9}
base=${3:-}
new="$build/bin/chokepoint"
target="$build/tests/reliability_target"
for f in "$new" "$target" ${base:+"$base"}; do
  [ -x "$f" ] || { echo "error: $f is not built" >&2; echo "hint: cmake --build $build --target chokepoint reliability_target" >&2; exit 2; }
done
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

describe() {  # binary -> "N libraries, S system calls, F page faults"
  local libs calls faults
  libs=$(ldd "$1" | grep -c '=>\|ld-linux')
  calls=$(strace -f -c -o /dev/stdout "$1" --version 2>/dev/null | awk '/total/ {print $(NF-2) == "" ? $3 : $4}')
  faults=$(/usr/bin/time -f '%R' "$1" --version 2>&1 >/dev/null | tail -1)
  echo "$libs libraries at exec, $calls system calls and $faults page faults for --version"
}
echo "new:  $(describe "$new")"
[ -n "$base" ] && echo "base: $(describe "$base")"

"$target" threads 5000 100 50 & pids+=($!)
tp=${pids[0]}
for _ in $(seq 400); do [ "$(ls /proc/$tp/task | wc -l)" -ge 5001 ] && break; sleep 0.1; done
sh -c 'while :; do :; done' & pids+=($!)
sh -c 'while :; do :; done' & pids+=($!)
sleep 1
renice -n -20 $$ >/dev/null

time_one() {  # binary -> seconds to run `--version` at nice 0
  local s e
  s=$(date +%s.%N)
  nice -n 20 "$1" --version >/dev/null
  e=$(date +%s.%N)
  echo "$e - $s" | bc
}
new_t=(); base_t=()
for i in $(seq "$rounds"); do
  new_t+=("$(time_one "$new")")
  [ -n "$base" ] && base_t+=("$(time_one "$base")")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "new:  median $(median "${new_t[@]}") s over $rounds runs: ${new_t[*]}"
if [ -n "$base" ]; then
  echo "base: median $(median "${base_t[@]}") s over $rounds runs: ${base_t[*]}"
fi
