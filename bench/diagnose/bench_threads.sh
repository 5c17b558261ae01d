# Sourced by the record benchmarks: starts `chokepoint-bench-threads N MODE 20` (THREADS_BIN, or
# the build's) with its output in DIR/bench.out, waits until it is ready, and sets $pid.
# Usage: start_bench_threads DIR N MODE
start_bench_threads() {
  "${THREADS_BIN:-build/bin/chokepoint-bench-threads}" "$2" "$3" 20 >"$1/bench.out" &
  pid=$!
  for _ in $(seq 400); do grep -q ready "$1/bench.out" 2>/dev/null && break; sleep 0.05; done
}
