#!/usr/bin/env bash
# What --call-graph dwarf costs against the default fp, side by side on one workload: ROUNDS
# alternating pairs of `chokepoint profile` runs (fp, then dwarf) on the same running dwarf_target
# (tests/integration/profile/dwarf_target.c: -O2 -fomit-frame-pointer, half its time in a qsort
# comparator inside libc), medians of:
# - the profiler's own CPU (user + sys, /usr/bin/time) per run, as a share of one core over the
#   window: sampling, draining, unwinding (dwarf) and, after the window, symbolizing and writing;
# - the median time one DWARF unwind took on the sampling thread (chokepoint prints it);
# - the share of the target's samples whose leaf is dwarf_leaf or dwarf_compare and that carry
#   main (their callers were found).
# Usage: bench/profile/call_graph_cost.sh [BUILD_DIR] [ROUNDS] [SECONDS] [FREQUENCY_HZ]
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
rounds=${2:-3}
secs=${3:-5}
hz=${4:-99}
out=$(mktemp -d /tmp/cp-call-graph.XXXXXX)
"$build/tests/dwarf_target" 100000 &
target=$!
trap 'set +e; kill $target 2>/dev/null; wait $target 2>/dev/null; rm -rf "$out"' EXIT
run() {  # MODE -> "cpu_s unwind_us with_main_share"
  /usr/bin/time -f '%U %S' -o "$out/time" "$build/bin/chokepoint" profile --pid "$target" \
    --call-graph "$1" --user-only --duration "${secs}s" --frequency "$hz" -o "$out/p.folded" \
    2>"$out/err"
  local us
  us=$(sed -n 's/.*user stacks in \([0-9.]*\) us each.*/\1/p' "$out/err")
  awk -v us="${us:-0}" 'NR == FNR { cpu = $1 + $2; next }
    / [0-9]+$/ { n = $NF; if ($0 ~ /;dwarf_(leaf|compare) [0-9]+$/) { hot += n; if ($0 ~ /;main;/) full += n } }
    END { printf "%.3f %s %.3f\n", cpu, us, hot ? full / hot : 0 }' "$out/time" "$out/p.folded"
}
fp_cpu=(); dw_cpu=(); dw_us=(); fp_full=(); dw_full=()
for r in $(seq "$rounds"); do
  read -r c _ f <<<"$(run fp)"; fp_cpu+=("$c"); fp_full+=("$f")
  read -r c u f <<<"$(run dwarf)"; dw_cpu+=("$c"); dw_us+=("$u"); dw_full+=("$f")
  echo "round $r: fp ${fp_cpu[-1]} s CPU, callers found ${fp_full[-1]};" \
    "dwarf ${dw_cpu[-1]} s CPU, ${dw_us[-1]} us per unwind, callers found ${dw_full[-1]};" \
    "$(grep -o '[0-9]* samples in' "$out/err" | head -1) ${secs} s"
done
python3 - "$secs" "${fp_cpu[*]}" "${dw_cpu[*]}" "${dw_us[*]}" "${fp_full[*]}" "${dw_full[*]}" <<'PY'
import statistics, sys
secs = float(sys.argv[1])
fc, dc, du, ff, df = ([float(x) for x in s.split()] for s in sys.argv[2:7])
m = statistics.median
print(f"median profiler CPU over a {secs:g} s window: fp {m(fc):.3f} s ({m(fc)/secs*100:.2f}% of a core), "
      f"dwarf {m(dc):.3f} s ({m(dc)/secs*100:.2f}% of a core): ratio {m(dc)/m(fc):.2f}")
print(f"median DWARF unwind: {m(du):.1f} us per sample")
print(f"samples of the hot leaves with their callers: fp {m(ff)*100:.1f}%, dwarf {m(df)*100:.1f}%")
PY
