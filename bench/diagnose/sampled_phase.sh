#!/usr/bin/env bash
# The sampled split of a thread on a 10 ms cycle of the monotonic clock (tests/integration/
# diagnose/cycle_waiter.c: 3 ms of each cycle in clock_nanosleep, 7 ms in select), beside the
# exact mode's, window after window: reads that fall at the same phase of the cycle every time
# (aliasing) read sleep 0.00 or 0.99; reads spread over their intervals read about 0.32.
# Usage: bench/diagnose/sampled_phase.sh [BUILD_DIR] [WINDOWS] [DURATION]
#   e.g. bench/diagnose/sampled_phase.sh build 6 3s   (WINDOWS 6, DURATION 3s by default)
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}; windows=${2:-6}; duration=${3:-3s}
"$build/tests/cycle_waiter" &
waiter=$!
trap 'kill $waiter 2>/dev/null || true' EXIT
sleep 0.3
printf '%-7s %-7s %s\n' window mode sleep
for i in $(seq 1 "$windows"); do
  for mode in sample exact; do
    share=$("$build/bin/chokepoint" diagnose --pid "$waiter" -d "$duration" --mode "$mode" \
      --no-stacks --no-probes --json 2>/dev/null |
      python3 -c 'import json, sys; print("%.3f" % json.load(sys.stdin)["time_split"]["sleep"])')
    printf '%-7s %-7s %s\n' "$i" "$mode" "$share"
  done
  sleep "0.$((RANDOM % 10))"  # a window's start at another phase of the cycle
done
