#!/usr/bin/env bash
# The diagnose sampler's own cost: CPU per thread-sample and per second, and peak RSS, against a
# process with 10, 1,000 and 10,000 threads that never run (idle) or run every 20 ms (wake).
# Usage: bench/diagnose/sampler_cost.sh [BUILD_DIR] [DURATION]
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-build}/bin
duration=${2:-5s}
printf 'interval 100ms (default), budget 2000 thread reads/s (default); wake threads run every 20 ms (10,000: every 1 s)\n'
printf '%-6s %-5s %10s %12s %14s %12s %10s\n' threads mode cpu_s cpu_%core thread_samples us/sample rss_MiB
for n in 10 1000 10000; do
  for mode in idle wake; do
    # 10,000 threads waking every 20 ms would need more than these 2 cores: they wake every second.
    period=20; [ "$n" -ge 10000 ] && period=1000
    "$bin/chokepoint-bench-threads" "$n" "$mode" "$period" >/tmp/cp-bench-threads.out &
    pid=$!
    for _ in $(seq 200); do grep -q ready /tmp/cp-bench-threads.out 2>/dev/null && break; sleep 0.05; done
    "$bin/chokepoint" diagnose --pid "$pid" --duration "$duration" --json >/tmp/cp-bench-diag.json
    kill "$pid"; wait "$pid" 2>/dev/null || true
    python3 - "$n" "$mode" <<'PY'
import json, sys
d = json.load(open('/tmp/cp-bench-diag.json'))
o = d['overhead']; s = d['duration_s']
per = o['cpu_s'] / max(o['thread_samples'], 1) * 1e6
print(f"{sys.argv[1]:<6} {sys.argv[2]:<5} {o['cpu_s']:10.3f} {o['cpu_s']/s*100:11.2f}% {o['thread_samples']:14d} {per:12.2f} {o['rss_bytes']/2**20:10.1f}")
PY
  done
done
