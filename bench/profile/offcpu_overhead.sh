#!/usr/bin/env bash
# The lab's throughput with and without off-CPU tracing (src/bpf/offcpu.bpf.c on the lab's pid),
# side by side at the highest context-switch rate the lab produces here: the thread-per-connection
# model (`--model threads --scenario none`: every request is a handoff from the connection thread
# to the pool and back, two blocks and two wakeups). ROUNDS alternating pairs of wrk runs on the
# same lab, medians and their ratio; then one extra traced round with kernel.bpf_stats_enabled=1
# for the programs' own run time per event (stats cost a little themselves, so that round is not
# in the ratio). Besides req/s (noisy on a shared machine), it reports the CPU time per request of
# the lab and wrk together (utime + stime over the run, divided by the requests): the programs run
# in the context of the task that switches or wakes, which here is the lab or wrk, so their cost
# shows there, and that measure does not swing with what else the machine runs. Needs root.
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
trap 'set +e; kill $lab 2>/dev/null; wait $lab 2>/dev/null; rm -rf "$out"' EXIT
for _ in $(seq 100); do grep -q listening "$out/lab.out" && break; sleep 0.05; done
port=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$out/lab.out")
ctxt() { awk '/^ctxt/ {print $2}' /proc/stat; }
lab_cpu_ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$lab/stat"; }
tick_us=$((1000000 / $(getconf CLK_TCK)))
# Prints "req/s cs/s cpu_us_per_request" for one wrk run (lab + wrk CPU per request).
run_wrk() {
  local c0 c1 t0 t1 rps reqs wrk_cpu
  c0=$(ctxt); t0=$(lab_cpu_ticks)
  read -r rps reqs wrk_cpu < <(/usr/bin/time -f "cpu %U %S" wrk -t1 -c"$conns" -d"${secs}s" \
      "http://127.0.0.1:$port/" 2>&1 | awk '/Requests\/sec/ {r=$2} /requests in/ {n=$1}
      /^cpu / {c=($2+$3)*1e6} END {print r, n, c}')
  c1=$(ctxt); t1=$(lab_cpu_ticks)
  echo "$rps $(( (c1 - c0) / secs )) $(python3 -c "print(f'{(($t1-$t0)*$tick_us+$wrk_cpu)/max(1,$reqs):.2f}')")"
}
trace() { "$bin/chokepoint-bench-offcpu" "$lab" "$((secs + 2))" >"$out/trace.txt" 2>&1; }
without=(); with=(); cpu_without=(); cpu_with=()
for r in $(seq "$rounds"); do
  read -r a cs_a ca < <(run_wrk)
  trace & tr=$!
  sleep 1
  read -r b cs_b cb < <(run_wrk)
  wait "$tr" || { cat "$out/trace.txt"; exit 1; }
  without+=("$a"); with+=("$b"); cpu_without+=("$ca"); cpu_with+=("$cb")
  echo "round $r: without $a req/s ($cs_a cs/s, $ca us CPU/req), with $b req/s ($cs_b cs/s, $cb us CPU/req)"
  echo "  $(head -1 "$out/trace.txt")"
done
python3 - "${without[*]}" "${with[*]}" "${cpu_without[*]}" "${cpu_with[*]}" <<'PY'
import statistics, sys
a, b, ca, cb = ([float(x) for x in arg.split()] for arg in sys.argv[1:5])
ma, mb = statistics.median(a), statistics.median(b)
print(f"median without {ma:.0f} req/s, with {mb:.0f} req/s: ratio {mb/ma:.4f} ({(1-mb/ma)*100:+.2f}% drop)")
mca, mcb = statistics.median(ca), statistics.median(cb)
print(f"median lab+wrk CPU per request without {mca:.2f} us, with {mcb:.2f} us: "
      f"ratio {mcb/mca:.4f} ({(mcb/mca-1)*100:+.2f}% more CPU per request)")
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
