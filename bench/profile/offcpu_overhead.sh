#!/usr/bin/env bash
# The lab's throughput with and without off-CPU tracing (src/bpf/offcpu.bpf.c on the lab's pid),
# side by side at the highest context-switch rate the lab produces here: the thread-per-connection
# model (`--model threads --scenario none`: every request is a handoff from the connection thread
# to the pool and back, two blocks and two wakeups). ROUNDS alternating pairs of wrk runs on the
# same lab, medians and their ratio; then one extra traced round with kernel.bpf_stats_enabled=1
# for the programs' own run time per event (stats cost a little themselves, so that round is not
# in the ratio). Needs root.
# Usage: bench/profile/offcpu_overhead.sh [BUILD_DIR] [ROUNDS] [SECONDS] [CONNECTIONS]
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-build}/bin
rounds=${2:-5}
secs=${3:-5}
conns=${4:-16}
out=$(mktemp -d /tmp/cp-offcpu-bench.XXXXXX)
"$bin/chokepoint-lab" --port 0 --model threads --scenario none >"$out/lab.out" &
lab=$!
trap 'kill $lab 2>/dev/null; wait $lab 2>/dev/null; rm -rf "$out"' EXIT
for _ in $(seq 100); do grep -q listening "$out/lab.out" && break; sleep 0.05; done
port=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$out/lab.out")
ctxt() { awk '/^ctxt/ {print $2}' /proc/stat; }
# Prints "req/s cs/s" for one wrk run.
run_wrk() {
  local c0 c1 rps
  c0=$(ctxt)
  rps=$(wrk -t1 -c"$conns" -d"${secs}s" "http://127.0.0.1:$port/" | awk '/Requests\/sec/ {print $2}')
  c1=$(ctxt)
  echo "$rps $(( (c1 - c0) / secs ))"
}
trace() { "$bin/chokepoint-bench-offcpu" "$lab" "$((secs + 2))" >"$out/trace.txt" 2>&1; }
without=(); with=()
for r in $(seq "$rounds"); do
  read -r a cs_a < <(run_wrk)
  trace & tr=$!
  sleep 1
  read -r b cs_b < <(run_wrk)
  wait "$tr" || { cat "$out/trace.txt"; exit 1; }
  without+=("$a"); with+=("$b")
  echo "round $r: without $a req/s ($cs_a cs/s), with $b req/s ($cs_b cs/s)"
  echo "  $(head -1 "$out/trace.txt")"
done
python3 - "${without[*]}" "${with[*]}" <<'PY'
import statistics, sys
a = [float(x) for x in sys.argv[1].split()]; b = [float(x) for x in sys.argv[2].split()]
ma, mb = statistics.median(a), statistics.median(b)
print(f"median without {ma:.0f} req/s, with {mb:.0f} req/s: ratio {mb/ma:.4f} ({(1-mb/ma)*100:+.2f}% drop)")
PY
# The programs' own cost per run, from the kernel's BPF stats (one extra traced round).
old=$(sysctl -n kernel.bpf_stats_enabled)
sysctl -qw kernel.bpf_stats_enabled=1
trace & tr=$!
sleep 1
run_wrk >/dev/null
sleep 0.5
bpftool prog show 2>/dev/null | awk '/name offcpu_(switch|waking)/ {
  name=$4; for (i=1;i<=NF;i++) { if ($i=="run_time_ns") t=$(i+1); if ($i=="run_cnt") c=$(i+1) }
  if (c > 0) printf "%s: %d runs, %.0f ns per run\n", name, c, t/c }'
wait "$tr"
sysctl -qw kernel.bpf_stats_enabled="$old"
