#!/bin/bash
# What ending a profile of a many-thread target costs: the perf events' teardown, against a base.
#
#   bench/profile/teardown.sh BUILD_DIR [ROUNDS] [BASE_CHOKEPOINT] [THREADS]
#
# Starts tests/reliability_target with THREADS threads (default 5,000; 2 spinning, the others
# waking every 50 ms), then runs `chokepoint profile --pid P --duration 1s` ROUNDS times (default
# 7), alternating with BASE_CHOKEPOINT when given, and prints each binary's median wall, system and
# user CPU seconds. Then one run of each under `perf record` (cpu-clock, frame pointers) gives the
# share of the run's samples inside PerfSampler's destructor (the rings' munmap and close) and in
# munmap (all of it, the rings' and any other). Runs as root. Everything it starts is ended on exit.
set -euo pipefail
build=${1:?usage: bench/profile/teardown.sh BUILD_DIR [ROUNDS] [BASE_CHOKEPOINT] [THREADS]}
rounds=${2:-7}
base=${3:-}
threads=${4:-5000}
new="$build/bin/chokepoint"
target="$build/tests/reliability_target"
for f in "$new" "$target" ${base:+"$base"}; do
  [ -x "$f" ] || { echo "error: $f is not built" >&2; echo "hint: cmake --build $build --target chokepoint reliability_target" >&2; exit 2; }
done
work=$(mktemp -d /tmp/chokepoint-teardown.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

"$target" threads "$threads" 2 50 >/dev/null & pids+=($!)
tp=${pids[0]}
for _ in $(seq 400); do [ "$(ls /proc/$tp/task | wc -l)" -ge $((threads + 1)) ] && break; sleep 0.1; done

run_one() {  # binary -> "wall sys user" of one profile run
  /usr/bin/time -f '%e %S %U' -o "$work/time" "$1" profile --pid "$tp" --duration 1s \
    -o "$work/out.folded" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
  cat "$work/time"
}
declare -A col
for i in $(seq "$rounds"); do
  for who in new ${base:+base}; do
    bin=$new; [ "$who" = base ] && bin=$base
    read -r w s u < <(run_one "$bin")
    col[$who.wall]+="$w "; col[$who.sys]+="$s "; col[$who.user]+="$u "
  done
done
median() { printf '%s\n' $1 | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
share() {  # binary -> "P% in ~PerfSampler, Q% in munmap"
  perf record -q -e cpu-clock -F 999 -g -o "$work/perf.data" -- "$1" profile --pid "$tp" \
    --duration 1s -o "$work/out.folded" >/dev/null 2>&1
  perf report -q -i "$work/perf.data" --children --sort sym --stdio -g none 2>/dev/null |
    awk '/PerfSampler::~PerfSampler/ && d == "" { d = $1 }
         /\] __munmap$/ && t == "" { t = $1 }
         END { printf "%s of the run'"'"'s samples in ~PerfSampler, %s in munmap (each a TLB flush on every CPU the process ran on)\n", d == "" ? "0%" : d, t == "" ? "0%" : t }'
}
echo "target: $threads threads; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for who in new ${base:+base}; do
  echo "$who: median wall $(median "${col[$who.wall]}") s, system $(median "${col[$who.sys]}") s, user $(median "${col[$who.user]}") s over $rounds runs (system: ${col[$who.sys]})"
done
echo "new:  $(share "$new")"
[ -n "$base" ] && echo "base: $(share "$base")"
exit 0
