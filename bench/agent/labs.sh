# shellcheck shell=bash
# Sourced by bench/agent's scripts: `pids` (what stop_all kills), `targets` (the agent's
# --target flags, the host first) and `logs` (a directory stop_all removes) for the caller.
# start_labs BIN_DIR SERVICES WORKERS starts SERVICES idle lab instances (chokepoint-lab, WORKERS
# pool threads each), waits for each to listen, and adds each one's pid to `pids` and a
# `--target pid:PID` to `targets`.
pids=()
targets=(--target host)
logs=$(mktemp -d "${TMPDIR:-/tmp}/cp-agent-bench.XXXXXX")
start_labs() {
  local bin=$1 services=$2 workers=$3 i log
  for i in $(seq "$services"); do
    log=$logs/lab$i.log
    "$bin/chokepoint-lab" --port 0 --scenario none --workers "$workers" >"$log" &
    pids+=("$!")
    for _ in $(seq 100); do grep -qs listening "$log" && break; sleep 0.05; done
    targets+=(--target "pid:$(sed -n 's/.*pid=\([0-9]*\).*/\1/p' "$log")")
  done
}
# Kills every process in `pids`, waits for them, and removes `logs`.
stop_all() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$logs"
}
