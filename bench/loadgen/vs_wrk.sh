#!/usr/bin/env bash
# chokepoint load vs Debian's wrk, side by side against the same nginx on loopback.
#
#   bench/loadgen/vs_wrk.sh [BUILD_DIR]        (default: build)
#
# 1. Throughput: `chokepoint load --rate max` and `wrk`, same threads/connections/duration,
#    interleaved, RUNS runs each; medians and the ratio.
# 2. Rate accuracy: `chokepoint load --rate R` for a fixed R; achieved / target.
# 3. Memory: max RSS of `chokepoint load --rate max -n N` for N = 1M and 5M requests.
# Prints a Markdown section for docs/benchmarks.md. Tunables via environment:
#   THREADS=1 CONNS=50 DURATION=5 RUNS=3 RATE=5000 RATE_DURATION=10 RSS_COUNTS="1000000 5000000"
set -euo pipefail

build=${1:-build}
bin="$build/bin/chokepoint"
[ -x "$bin" ] || { echo "error: $bin not found; build first (make build)" >&2; exit 1; }
command -v wrk >/dev/null || { echo "error: wrk missing; run scripts/setup" >&2; exit 1; }
nginx=/usr/sbin/nginx
. "$(dirname "$0")/../lib/nginx.sh"
[ -x "$nginx" ] || { echo "error: nginx missing; run scripts/setup" >&2; exit 1; }

THREADS=${THREADS:-1}
CONNS=${CONNS:-50}
DURATION=${DURATION:-5}
RUNS=${RUNS:-3}
RATE=${RATE:-5000}
RATE_DURATION=${RATE_DURATION:-10}
RSS_COUNTS=${RSS_COUNTS:-"1000000 5000000"}

dir=$(mktemp -d /tmp/chokepoint-vs-wrk-XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
nginx_conf "$dir" "$port" 1 'location / { return 200 "hello\n"; }'
"$nginx" -p "$dir" -c "$dir/nginx.conf" &
nginx_pid=$!
cleanup() { kill -QUIT "$nginx_pid" 2>/dev/null || true; wait "$nginx_pid" 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
for _ in $(seq 50); do
  if (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then break; fi
  sleep 0.1
done
url="http://127.0.0.1:$port/"

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
json_field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

wrk_rps=() cp_rps=()
for i in $(seq "$RUNS"); do
  w=$(wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" "$url" | awk '/Requests\/sec/ {printf "%.0f", $2}')
  c=$("$bin" load "$url" -t "$THREADS" -c "$CONNS" -d "${DURATION}s" --rate max --json | json_field '["rps"]' | xargs printf '%.0f')
  wrk_rps+=("$w") cp_rps+=("$c")
  echo "run $i: wrk $w req/s, chokepoint $c req/s" >&2
done
wrk_med=$(printf '%s\n' "${wrk_rps[@]}" | median)
cp_med=$(printf '%s\n' "${cp_rps[@]}" | median)
ratio=$(python3 -c "print(f'{$cp_med/$wrk_med:.3f}')")

rate_json=$("$bin" load "$url" -t "$THREADS" -c "$CONNS" -d "${RATE_DURATION}s" --rate "$RATE" --json)
rate_got=$(echo "$rate_json" | json_field '["rps"]' | xargs printf '%.1f')
rate_late=$(echo "$rate_json" | json_field '["late_sends"]')
rate_p99=$(echo "$rate_json" | json_field '["latency_ms"]["p99"]')
rate_ratio=$(python3 -c "print(f'{$rate_got/$RATE:.4f}')")

rss_rows=""
for n in $RSS_COUNTS; do
  out=$(python3 - "$bin" "$url" "$THREADS" "$CONNS" "$n" <<'PY'
import json, resource, subprocess, sys, time
b, url, t, c, n = sys.argv[1:]
start = time.time()
p = subprocess.run([b, "load", url, "-t", t, "-c", c, "-n", n, "--rate", "max", "--json"],
                   capture_output=True, text=True, check=True)
j = json.loads(p.stdout)
rss_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(f"{j['requests']} {rss_kb} {time.time() - start:.1f}")
PY
)
  read -r reqs rss secs <<<"$out"
  rss_rows+="| $reqs | $(python3 -c "print(f'{$rss/1024:.1f}')") MiB | ${secs} s |"$'\n'
  echo "rss: $reqs requests -> $rss KiB in $secs s" >&2
done

cat <<MD
## loadgen

What: \`chokepoint load --rate max\` against Debian's \`wrk\` (4.1.0), same nginx (1 worker, \`return
200\`), loopback, ${THREADS} thread(s), ${CONNS} connections, ${DURATION} s, ${RUNS} interleaved runs
each; then the achieved rate at a fixed \`--rate\`, and the peak RSS over long runs.

Command ($(date -u +%Y-%m-%d), $(uname -r), $(nproc) vCPU, load average $(cut -d' ' -f1 /proc/loadavg)):

\`\`\`
bench/loadgen/vs_wrk.sh $build    # THREADS=$THREADS CONNS=$CONNS DURATION=$DURATION RUNS=$RUNS RATE=$RATE
\`\`\`

| tool | runs (req/s) | median req/s | ratio |
|---|---|---|---|
| wrk -t$THREADS -c$CONNS -d${DURATION}s | ${wrk_rps[*]} | $wrk_med | 1 |
| chokepoint load -t $THREADS -c $CONNS -d ${DURATION}s --rate max | ${cp_rps[*]} | $cp_med | **$ratio** |

Rate accuracy: \`--rate $RATE -d ${RATE_DURATION}s -c $CONNS\` achieved $rate_got req/s = **$rate_ratio** of the
target ($rate_late late sends, corrected p99 $rate_p99 ms).

Memory (peak RSS of \`chokepoint load --rate max -n N\`; flat means constant memory per request):

| requests | peak RSS | wall |
|---|---|---|
${rss_rows}
MD
