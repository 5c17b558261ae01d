#!/usr/bin/env bash
# Time and peak memory to symbolize a ~1M-sample on-CPU profile and write its outputs, against
# perf record + perf report (and perf script, perf's equivalent of the folded output) on the same
# workload: the lab's cpu scenario under wrk, sampled at a high frequency so that a million
# samples take tens of seconds instead of hours at 99 Hz.
#
# chokepoint symbolizes in the same process that sampled, so its cost is the time from the end of
# sampling to exit (it prints that, "... wrote 3 outputs in X s") and the process's peak RSS
# (/usr/bin/time). perf's cost is perf report / perf script reading perf.data.
# Usage: bench/profile/symbolize_1m.sh [BUILD_DIR] [DURATION_S] [FREQUENCY_HZ]
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-build}/bin
duration=${2:-40}
hz=${3:-50000}
out=$(mktemp -d /tmp/cp-profile-1m.XXXXXX)
"$bin/chokepoint-lab" --port 0 --scenario cpu >"$out/lab.out" 2>"$out/lab.err" &
lab=$!
trap 'set +e; kill $lab 2>/dev/null; wait $lab 2>/dev/null; rm -rf "$out"' EXIT
for _ in $(seq 100); do grep -qs listening "$out/lab.out" && break; sleep 0.05; done
port=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$out/lab.out")
load_s=$((2 * duration + 30))
wrk -t1 -c16 -d"${load_s}s" "http://127.0.0.1:$port/" >/dev/null &
wrk=$!
trap 'set +e; kill $wrk $lab 2>/dev/null; wait $lab 2>/dev/null; rm -rf "$out"' EXIT
sleep 1

echo "== chokepoint profile -F $hz for ${duration}s, three outputs"
/usr/bin/time -f "chokepoint: wall %e s, peak RSS %M KiB" \
  "$bin/chokepoint" profile --pid "$lab" --duration "${duration}s" --frequency "$hz" \
  -o "$out/p.folded" -o "$out/p.svg" -o "$out/p.json" --top 5 >/dev/null 2>"$out/cp.err" || true
grep -E "samples in|wrote 3 outputs|wall" "$out/cp.err"
ls -l "$out"/p.* | awk '{print "  " $5 " bytes " $9}'

lab_alive() {
  kill -0 "$lab" 2>/dev/null && return 0
  wait "$lab" && code=0 || code=$?
  echo "the lab exited (status $code) during the run; its stderr:"; cat "$out/lab.err"; exit 1
}
lab_alive
echo "== perf record -F $hz -g for ${duration}s, then perf report and perf script"
perf record -e cpu-clock -F "$hz" -g -p "$lab" -o "$out/perf.data" -- sleep "$duration" \
  2>"$out/perf-record.err" || true
grep -iE "lost|samples" "$out/perf-record.err" || true
lab_alive
echo "perf.data: $(du -h "$out/perf.data" | cut -f1)"
perf report -i "$out/perf.data" --stdio --no-children --sort symbol -g none 2>/dev/null |
  sed -n 's/^# Samples: \(.*\)/perf samples: \1/p' | head -1
/usr/bin/time -f "perf report --stdio: wall %e s, peak RSS %M KiB" \
  perf report -i "$out/perf.data" --stdio >/dev/null 2>"$out/report.err" || true
tail -1 "$out/report.err"
/usr/bin/time -f "perf report --stdio --no-children -g none: wall %e s, peak RSS %M KiB" \
  perf report -i "$out/perf.data" --stdio --no-children -g none >/dev/null 2>"$out/report2.err" || true
tail -1 "$out/report2.err"
/usr/bin/time -f "perf script: wall %e s, peak RSS %M KiB" \
  perf script -i "$out/perf.data" >/dev/null 2>"$out/script.err" || true
tail -1 "$out/script.err"
