#!/usr/bin/env bash
# The probes' own load on the services they read: redis-benchmark against Redis and pgbench
# against PostgreSQL, each run alternately with and without `chokepoint diagnose` probing the
# server at 10 Hz (diagnose's kernel sampling runs in both arms: only the probe differs, through
# --no-probes). Prints each run and the median ratio with/without. Root (the cluster runs as
# postgres). Loopback and Unix sockets only.
#   bench/probes/overhead.sh [BUILD_DIR] [ROUNDS] [SECONDS]
set -euo pipefail
build=${1:-build}
rounds=${2:-5}
secs=${3:-5}
cp=$(realpath "$build")/bin/chokepoint
work=$(mktemp -d /tmp/chokepoint-probe-cost.XXXXXX)
chmod 755 "$work"
cleanup() {
  [ -f "$work/pg/data/postmaster.pid" ] && kill -INT "$(head -1 "$work/pg/data/postmaster.pid")" 2>/dev/null || true
  [ -n "${redis:-}" ] && kill "$redis" 2>/dev/null || true
  sleep 1
  rm -rf "$work"
}
trap cleanup EXIT
as_pg() { setpriv --reuid=postgres --regid=postgres --clear-groups "$@"; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

redis-server --port 16398 --bind 127.0.0.1 --save '' >/dev/null 2>&1 &
redis=$!
mkdir -p "$work/pg" && chown postgres "$work/pg"
as_pg /usr/lib/postgresql/15/bin/initdb -D "$work/pg/data" -A peer -U postgres --no-sync >/dev/null
as_pg /usr/lib/postgresql/15/bin/postgres -D "$work/pg/data" -k "$work/pg" -c listen_addresses= \
  -p 5434 >"$work/pg/log" 2>&1 &
for _ in $(seq 100); do as_pg pg_isready -q -h "$work/pg" -p 5434 && break; sleep 0.1; done
as_pg pgbench -q -i -s 5 -h "$work/pg" -p 5434 postgres >/dev/null 2>&1
pm=$(head -1 "$work/pg/data/postmaster.pid")
sleep 0.5

# One measurement: the service's throughput over `secs`, with or without the probe.
redis_tps() {
  local flag=$1
  "$cp" diagnose --pid "$redis" -d "$((secs + 2))s" --no-stacks $flag >/dev/null 2>&1 &
  local d=$!
  sleep 1
  redis-benchmark -p 16398 -t get,set -n 100000000 -c 16 -q >/dev/null 2>&1 &
  local b=$!
  sleep "$secs"
  kill -KILL "$b" 2>/dev/null || true
  wait "$b" 2>/dev/null || true
  wait "$d" 2>/dev/null || true
}
pg_tps() {
  local flag=$1
  "$cp" diagnose --pid "$pm" --children -d "$((secs + 2))s" --no-stacks $flag >/dev/null 2>&1 &
  local d=$!
  sleep 1
  as_pg pgbench -n -S -c 8 -j 2 -T "$secs" -h "$work/pg" -p 5434 postgres 2>/dev/null |
    awk '/^tps/ {print $3}'
  wait "$d" 2>/dev/null || true
}

# redis-benchmark interrupted prints no summary: count commands from the server instead.
redis_rate() {
  local before after
  before=$(redis-cli -p 16398 INFO stats | awk -F: '/^total_commands_processed/ {print $2+0}')
  redis_tps "$1" >/dev/null
  after=$(redis-cli -p 16398 INFO stats | awk -F: '/^total_commands_processed/ {print $2+0}')
  awk -v a="$after" -v b="$before" -v s="$secs" 'BEGIN {printf "%.1f\n", (a - b) / s}'
}

: >"$work/r_with"; : >"$work/r_without"; : >"$work/p_with"; : >"$work/p_without"
for i in $(seq "$rounds"); do
  a=$(redis_rate "--no-probes"); b=$(redis_rate "")
  c=$(pg_tps "--no-probes"); d=$(pg_tps "")
  echo "round $i: redis ops/s without $a with $b | pgbench tps without $c with $d"
  echo "$a" >>"$work/r_without"; echo "$b" >>"$work/r_with"
  echo "$c" >>"$work/p_without"; echo "$d" >>"$work/p_with"
done
rw=$(median <"$work/r_with"); ro=$(median <"$work/r_without")
pw=$(median <"$work/p_with"); po=$(median <"$work/p_without")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.4f", a / b}'; }
echo "redis median: without $ro, with $rw, ratio $(ratio "$rw" "$ro")"
echo "pgbench median: without $po, with $pw, ratio $(ratio "$pw" "$po")"
