#!/usr/bin/env bash
# chokepoint report at scale (issue 11): an hour of a 1,000-thread recording.
#  1. records chokepoint-bench-threads 1000 wake (every thread runs between every two samples:
#     the recorder's worst case) for SOURCE_S seconds at --interval 1s;
#  2. stretches it to an hour through the real store writer (chokepoint-bench-report-synth:
#     the source's ticks repeated, each counter advanced by what it grew over the source);
#  3. times `chokepoint report` on it and, side by side, `chokepoint replay` (the floor: reading
#     the recording and diagnosing it once), RUNS runs each, and reads the page's size;
#  4. measures the page's time to interactive in headless Chromium (bench/report/tti.py).
# Usage: bench/report/report_scale.sh [SOURCE_S] [HOUR_S] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/../.."
source_s=${1:-30}; hour_s=${2:-3600}; runs=${3:-3}
bin=${BIN:-build/bin}
work=$(mktemp -d)
out=$work/threads.out
"$bin/chokepoint-bench-threads" 1000 wake 20 >"$out" &
pid=$!
trap 'set +e; kill $pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 400); do grep -q ready "$out" 2>/dev/null && break; sleep 0.05; done
"$bin/chokepoint" record --pid "$pid" -o "$work/source.chokepoint" --interval 1s \
  --duration "${source_s}s" 2>&1 | tail -1
kill $pid
/usr/bin/time -f "synthesised in %e s" \
  "$bin/chokepoint-bench-report-synth" "$work/source.chokepoint" "$work/hour.chokepoint" "$hour_s"
echo "recording: $(stat -c %s "$work/hour.chokepoint") bytes"
for r in $(seq "$runs"); do
  /usr/bin/time -f "report run $r: %e s wall, %U s user, %S s sys, %M KB max RSS" \
    "$bin/chokepoint" report "$work/hour.chokepoint" -o "$work/hour.html" 2>&1 | grep -v wrote
  /usr/bin/time -f "replay run $r: %e s wall, %U s user, %S s sys, %M KB max RSS" \
    "$bin/chokepoint" replay "$work/hour.chokepoint" 2>&1 >/dev/null | grep -v "replaying\|over-time"
done
echo "page: $(stat -c %s "$work/hour.html") bytes"
/usr/bin/python3 bench/report/tti.py "$work/hour.html" 5
if [ -n "${KEEP_PAGE:-}" ]; then cp "$work/hour.html" "$KEEP_PAGE"; fi
if [ -n "${KEEP_RECORDING:-}" ]; then cp "$work/hour.chokepoint" "$KEEP_RECORDING"; fi
