# Sourced by the record benchmarks: starts `chokepoint-bench-threads N MODE PERIOD_MS` (THREADS_BIN,
# or the build's; PERIOD_MS 20 unless set) with its output in DIR/bench.out, waits until it is
# ready, and sets $pid.
# Usage: start_bench_threads DIR N MODE
start_bench_threads() {
  "${THREADS_BIN:-build/bin/chokepoint-bench-threads}" "$2" "$3" "${PERIOD_MS:-20}" >"$1/bench.out" &
  pid=$!
  for _ in $(seq 400); do grep -q ready "$1/bench.out" 2>/dev/null && break; sleep 0.05; done
}
