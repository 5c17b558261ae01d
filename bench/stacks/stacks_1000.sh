#!/usr/bin/env bash
# chokepoint stacks on a 1,000-thread process (tests/integration/stacks/stacks_target.c with 996
# extra sleepers): the whole dump's wall time and the time each thread was held stopped (median
# and max, as the dump reports them), over RUNS runs; and, side by side on the same process,
# eu-stack (elfutils, Debian) when it is installed, which attaches to all threads at once.
# Usage: bench/stacks/stacks_1000.sh [BUILD_DIR] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
runs=${2:-5}
"$build/tests/stacks_target" 996 >/tmp/cp-stacks-bench.out &
target=$!
trap 'set +e; kill $target 2>/dev/null; wait $target 2>/dev/null; rm -f /tmp/cp-stacks-bench.out' EXIT
for _ in $(seq 200); do grep -qs ready /tmp/cp-stacks-bench.out && break; sleep 0.05; done
echo "threads: $(ls /proc/$target/task | wc -l)"
for i in $(seq "$runs"); do
  start=$(date +%s%N)
  line=$("$build/bin/chokepoint" stacks --pid "$target" | sed -n 2p)
  end=$(date +%s%N)
  echo "run $i: wall $(( (end - start) / 1000000 )) ms; $line"
done
if command -v eu-stack >/dev/null; then
  for i in $(seq "$runs"); do
    start=$(date +%s%N)
    eu-stack -p "$target" >/dev/null 2>&1 || true
    end=$(date +%s%N)
    echo "eu-stack run $i: wall $(( (end - start) / 1000000 )) ms (every thread stopped throughout)"
  done
fi
