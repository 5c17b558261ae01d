#!/usr/bin/env bash
# Checks the USL capacity projection with real parts: N chokepoint-lab instances (the `cpu`
# scenario, WORK_US of CPU per request), each held to QUOTA of a core by its own cgroup CPU quota,
# behind Debian's nginx as the load balancer, for N = 1 to 4. Loopback only; needs root (cgroups).
#
#  1. Fit the USL to ONE instance, direct (no nginx): chokepoint knee --usl over 1..16 connections.
#  2. For N = 1..4: start N instances behind nginx (round robin, keep-alive upstreams), drive nginx
#     closed loop with CLIENTS connections, measure the throughput.
#  3. Predict from the one-instance fit, two ways:
#       share-nothing: N x X_max (what `knee --target-rate` plans with, at 100% utilization);
#       USL at the per-instance concurrency: N x X(CLIENTS / N).
#     Print measured / predicted.
#  4. Fit the USL across N (instances as the unit): sigma and kappa of the whole cluster.
# Usage: bench/usl/validate.sh [BUILD_DIR] [QUOTA] [WORK_US] [CLIENTS] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=$(realpath "${1:-build}/bin")
quota=${2:-0.2}
work_us=${3:-1000}
clients=${4:-16}
seconds=${5:-5}
cg_root=/sys/fs/cgroup/cpu
[ "$(id -u)" = 0 ] || { echo "error: needs root to create CPU cgroups" >&2; exit 1; }
if [ -f /sys/fs/cgroup/unified/cgroup.controllers ] && grep -qw cpu /sys/fs/cgroup/unified/cgroup.controllers; then
  cg_root=/sys/fs/cgroup/unified; v2=1
elif [ -f /sys/fs/cgroup/cgroup.controllers ] && grep -qw cpu /sys/fs/cgroup/cgroup.controllers; then
  cg_root=/sys/fs/cgroup; v2=1
else
  v2=0
  [ -f "$cg_root/cpu.cfs_quota_us" ] || { echo "error: no cgroup CPU controller (v1 $cg_root or v2)" >&2; exit 1; }
fi
work=$(mktemp -d /tmp/chokepoint-usl.XXXXXX)
pids=()
nginx_pid=""
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  [ -n "$nginx_pid" ] && kill -QUIT "$nginx_pid" 2>/dev/null || true
  sleep 0.3
  for i in 1 2 3 4; do rmdir "$cg_root/chokepoint-usl-$i" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

period_us=100000
quota_us=$(awk -v q="$quota" -v p=$period_us 'BEGIN { printf "%d", q * p }')
for i in 1 2 3 4; do
  mkdir -p "$cg_root/chokepoint-usl-$i"
  if [ "$v2" = 1 ]; then
    echo "$quota_us $period_us" >"$cg_root/chokepoint-usl-$i/cpu.max"
  else
    echo $period_us >"$cg_root/chokepoint-usl-$i/cpu.cfs_period_us"
    echo "$quota_us" >"$cg_root/chokepoint-usl-$i/cpu.cfs_quota_us"
  fi
done

# start_lab I: starts instance I inside its cgroup, sets port_I.
start_lab() {
  local i=$1 out="$work/lab$1.out"
  sh -c "echo \$\$ > $cg_root/chokepoint-usl-$i/cgroup.procs && exec \"$bin/chokepoint-lab\" --port 0 --scenario cpu --work-us $work_us --workers 1" >"$out" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do grep -q listening "$out" && break; sleep 0.05; done
  local port
  port=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$out")
  [ -n "$port" ] || { echo "error: lab $i did not start: $(cat "$out")" >&2; exit 1; }
  eval "port_$i=$port"
}
stop_labs() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}

start_nginx() {
  local n=$1 servers="" nport
  for i in $(seq "$n"); do eval "servers=\"\$servers server 127.0.0.1:\$port_$i;\""; done
  nport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  mkdir -p "$work/nginx/logs"
  cat >"$work/nginx/nginx.conf" <<CONF
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  upstream labs { $servers keepalive 64; }
  server {
    listen 127.0.0.1:$nport;
    location / { proxy_pass http://labs; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
CONF
  /usr/sbin/nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" -g 'daemon off;' &
  nginx_pid=$!
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$nport) 2>/dev/null && break; sleep 0.05; done
  nginx_port=$nport
}
stop_nginx() { kill -QUIT "$nginx_pid" 2>/dev/null || true; wait "$nginx_pid" 2>/dev/null || true; nginx_pid=""; }

echo "== 1. USL fit of one instance (quota $quota core, $work_us us CPU per request), direct"
start_lab 1
"$bin/chokepoint" knee "http://127.0.0.1:$port_1/" --usl --max-concurrency 16 --step "${seconds}s" \
  --warmup 1s --usl-csv "$work/one.csv" --json >"$work/one.json"
stop_labs
python3 - "$work/one.json" <<'PY'
import json, sys
u = json.load(open(sys.argv[1]))["usl"]
for p in u["points"]: print(f"   N={p['concurrency']:>2}  {p['throughput']:8.1f} req/s")
print(f"   lambda {u['lambda']:.2f}  sigma {u['sigma']:.4g}  kappa {u['kappa']:.4g}  R^2 {u['r2']:.4f}  X_max {u['x_max']}")
PY

echo "== 2. N instances behind nginx, closed loop with $clients connections for ${seconds}s"
: >"$work/measured.txt"
for n in 1 2 3 4; do
  for i in $(seq "$n"); do start_lab "$i"; done
  start_nginx "$n"
  "$bin/chokepoint" load "http://127.0.0.1:$nginx_port/" -c "$clients" -d "${seconds}s" --warmup 1s --json >"$work/n$n.json"
  stop_nginx
  stop_labs
  python3 -c "import json; j=json.load(open('$work/n$n.json')); print($n, j['rps'], j['latency_ms']['p99'], j['requests']-j['ok'])" >>"$work/measured.txt"
done

echo "== 3. measured against predicted"
python3 - "$work/one.json" "$work/measured.txt" "$clients" <<'PY'
import json, sys
u = json.load(open(sys.argv[1]))["usl"]
lam, sig, kap = u["lambda"], u["sigma"], u["kappa"]
clients = float(sys.argv[3])
X = lambda n: lam * n / (1 + sig * (n - 1) + kap * n * (n - 1))
xmax = u["x_max"] if u["x_max"] is not None else float("inf")
print(f"   {'N':>2}  {'measured':>10}  {'p99 ms':>7}  {'N x X_max':>10}  {'ratio':>6}  {'N x X(C/N)':>10}  {'ratio':>6}  errors")
for line in open(sys.argv[2]):
    n, rps, p99, errors = line.split()
    n, rps = int(n), float(rps)
    a = n * xmax
    b = n * X(clients / n)
    print(f"   {n:>2}  {rps:>10.1f}  {float(p99):>7.2f}  {a:>10.1f}  {rps / a:>6.3f}  {b:>10.1f}  {rps / b:>6.3f}  {errors}")
PY

echo "== 4. the USL fitted across instances (N as the unit of concurrency): how linear the cluster scales"
{ echo "instances,throughput"; awk '{print $1 "," $2}' "$work/measured.txt"; } >"$work/cluster.csv"
"$bin/chokepoint" usl "$work/cluster.csv" | sed 's/^/   /'
