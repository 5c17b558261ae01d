#!/usr/bin/env bash
# The lab's throughput and CPU cost per request with and without `chokepoint profile` sampling it
# on-CPU (default 99 Hz, kernel and user stacks), side by side: ROUNDS alternating pairs of wrk
# runs on the same lab, medians and their ratios.
#
# Two measures, because this 2-core VM is shared and its throughput swings by 2x between runs:
# - req/s (what the issue's goal is stated in), noisy here;
# - the lab's CPU time per request (utime + stime from /proc/PID/stat over the wrk run divided by
#   the requests wrk completed). The cost of taking a sample (the timer interrupt and the
#   frame-pointer walk) is charged to the sampled task, so it shows up here, and this measure
#   does not swing with how much of the CPU other work takes.
# The profile runs 7 s around each 5 s "with" run, so the whole wrk run is sampled; symbolization
# happens after wrk finished (its cost is measured by symbolize_1m.sh).
# Usage: bench/profile/lab_overhead.sh [BUILD_DIR] [SCENARIO] [ROUNDS] [FREQUENCY_HZ]
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-build}/bin
scenario=${2:-cpu}
rounds=${3:-5}
hz=${4:-99}
out=$(mktemp -d /tmp/cp-profile-overhead.XXXXXX)
"$bin/chokepoint-lab" --port 0 --scenario "$scenario" >"$out/lab.out" 2>"$out/lab.err" &
lab=$!
trap 'set +e; kill $lab 2>/dev/null; wait $lab 2>/dev/null; rm -rf "$out"' EXIT
for _ in $(seq 100); do grep -qs listening "$out/lab.out" && break; sleep 0.05; done
port=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$out/lab.out")
tck=$(getconf CLK_TCK)
lab_cpu_ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$lab/stat"; }
# Prints "req/s cpu_us_per_request".
measure() {
  local t0 t1 text
  t0=$(lab_cpu_ticks)
  text=$(wrk -t1 -c16 -d5s "http://127.0.0.1:$port/")
  t1=$(lab_cpu_ticks)
  if ! kill -0 "$lab" 2>/dev/null; then echo "the lab exited:" >&2; cat "$out/lab.err" >&2; exit 1; fi
  awk -v t0="$t0" -v t1="$t1" -v tck="$tck" '
    /requests in/ { n = $1 } /Requests\/sec/ { r = $2 }
    END { printf "%s %.1f\n", r, (t1 - t0) / tck * 1e6 / n }' <<<"$text"
}
wo_rps=(); wo_cpu=(); w_rps=(); w_cpu=()
for r in $(seq "$rounds"); do
  read -r a b <<<"$(measure)"; wo_rps+=("$a"); wo_cpu+=("$b")
  "$bin/chokepoint" profile --pid "$lab" --duration 7s --frequency "$hz" -o "$out/p.folded" \
    2>"$out/profile.err" &
  prof=$!
  sleep 1
  read -r a b <<<"$(measure)"; w_rps+=("$a"); w_cpu+=("$b")
  if ! wait "$prof"; then echo "round $r: chokepoint profile failed:"; cat "$out/profile.err"; exit 1; fi
  echo "round $r: without ${wo_rps[-1]} req/s ${wo_cpu[-1]} cpu-us/req," \
    "with ${w_rps[-1]} req/s ${w_cpu[-1]} cpu-us/req;" \
    "$(grep -o '[0-9]* samples in' "$out/profile.err" | head -1) 7 s," \
    "lost $(sed -n 's/.*lost \([0-9]*\),.*/\1/p' "$out/profile.err")"
done
python3 - "${wo_rps[*]}" "${w_rps[*]}" "${wo_cpu[*]}" "${w_cpu[*]}" <<'PY'
import statistics, sys
a, b, c, d = ([float(x) for x in s.split()] for s in sys.argv[1:5])
ma, mb, mc, md = (statistics.median(x) for x in (a, b, c, d))
print(f"median req/s: without {ma:.0f}, with {mb:.0f}: ratio {mb/ma:.4f} ({(1-mb/ma)*100:+.2f}% drop)")
print(f"median lab CPU per request: without {mc:.1f} us, with {md:.1f} us: ratio {md/mc:.4f} "
      f"({(md/mc-1)*100:+.2f}% more CPU per request)")
PY
