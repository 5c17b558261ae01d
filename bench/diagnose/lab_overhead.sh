#!/usr/bin/env bash
# The lab's throughput with and without `chokepoint diagnose` attached (default settings), side by
# side: ROUNDS alternating pairs of wrk runs on the same lab, medians and their ratio.
# Usage: bench/diagnose/lab_overhead.sh [BUILD_DIR] [SCENARIO] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-build}/bin
scenario=${2:-cpu}
rounds=${3:-5}
"$bin/chokepoint-lab" --port 0 --scenario "$scenario" >/tmp/cp-overhead-lab.out &
lab=$!
trap 'set +e; kill $lab 2>/dev/null; wait $lab 2>/dev/null' EXIT
for _ in $(seq 100); do grep -q listening /tmp/cp-overhead-lab.out && break; sleep 0.05; done
port=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\).*/\1/p' /tmp/cp-overhead-lab.out)
rps() { wrk -t1 -c16 -d5s "http://127.0.0.1:$port/" | awk '/Requests\/sec/ {print $2}'; }
without=(); with=()
for r in $(seq "$rounds"); do
  without+=("$(rps)")
  "$bin/chokepoint" diagnose --pid "$lab" --duration 7s --json >/tmp/cp-overhead-diag.json &
  diag=$!
  sleep 1
  with+=("$(rps)")
  wait "$diag"
  echo "round $r: without ${without[-1]} req/s, with ${with[-1]} req/s, diagnose cpu $(python3 -c "import json; print(json.load(open('/tmp/cp-overhead-diag.json'))['overhead']['cpu_s'])") s"
done
python3 - "${without[*]}" "${with[*]}" <<'PY'
import statistics, sys
a = [float(x) for x in sys.argv[1].split()]; b = [float(x) for x in sys.argv[2].split()]
ma, mb = statistics.median(a), statistics.median(b)
print(f"median without {ma:.0f} req/s, with {mb:.0f} req/s: ratio {mb/ma:.4f} ({(1-mb/ma)*100:+.2f}% drop)")
PY
