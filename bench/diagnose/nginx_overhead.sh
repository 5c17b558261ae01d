#!/usr/bin/env bash
# Debian's nginx serving a small static file on loopback (2 workers, each an epoll loop with no
# upstream), under wrk -t1 -c16: its throughput with nothing attached and with `chokepoint
# diagnose --no-stacks --no-probes` (the default --mode auto), ROUNDS alternating rounds of 5 s
# each, medians and ratios; each diagnose's sources line for the socket-order tracer. With
# BASE_BIN set to another build's chokepoint, its diagnose runs as a third arm in the same rounds.
# The arms run in turn, in reverse order every other round.
# Usage: [BASE_BIN=other/chokepoint] bench/diagnose/nginx_overhead.sh [BUILD_DIR] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
. bench/lib/nginx.sh
bin=${1:-build}/bin
rounds=${2:-5}
nginx=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$nginx" ] || { echo "error: nginx is missing" >&2; echo "hint: run scripts/setup" >&2; exit 1; }
dir=$(mktemp -d /tmp/cp-nginx-overhead.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$dir/www"
head -c 512 /dev/zero | tr '\0' x >"$dir/www/index.html"
nginx_conf "$dir" "$port" 2 "root $dir/www;"
"$nginx" -c "$dir/nginx.conf" -p "$dir" &
master=$!
trap 'set +e; kill $master 2>/dev/null; wait $master 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/" >/dev/null 2>&1 && break; sleep 0.05; done
rps() { wrk -t1 -c16 -d5s "http://127.0.0.1:$port/" | awk '/Requests\/sec/ {print $2}'; }
arm() {  # arm BINARY: one diagnose of the master and its workers (--children)
  "$1" diagnose --pid "$master" --children --duration 7s --no-stacks --no-probes --json >"$dir/diag.json" 2>/dev/null &
  local diag=$!
  sleep 1
  rps
  wait "$diag"
}
order() {
  python3 -c "import json; s=json.load(open('$dir/diag.json'))['sources']; print('socket order started' if 'socket order' in s else 'socket order not started')"
}
arms="none new"
[ -n "${BASE_BIN:-}" ] && arms="none new base"
declare -A got
for r in $(seq "$rounds"); do
  line="round $r:"
  # The arms' order turns each round (none first, then last, ...): the side-by-side scripts here
  # showed an order effect of 6-14% between identical arms (docs/benchmarks.md).
  order_now=$arms
  (( r % 2 == 0 )) && order_now=$(echo "$arms" | tr ' ' '\n' | tac | tr '\n' ' ')
  for a in $order_now; do
    case $a in
      none) v=$(rps) ;;
      new) v=$(arm "$bin/chokepoint"); v="$v ($(order))" ;;
      base) v=$(arm "$BASE_BIN"); v="$v ($(order))" ;;
    esac
    got[$a]="${got[$a]:-} ${v%% *}"
    line="$line $a $v"
  done
  echo "$line"
done
python3 - "${got[none]}" "${got[new]}" "${got[base]:-}" <<'PY'
import statistics, sys
none = statistics.median(float(x) for x in sys.argv[1].split())
for name, vals in (("this build", sys.argv[2]), ("base", sys.argv[3])):
    if vals.split():
        m = statistics.median(float(x) for x in vals.split())
        print(f"{name}: median {m:.0f} req/s against {none:.0f} with nothing attached: ratio {m/none:.4f}")
PY
