#!/usr/bin/env bash
# What the probes' series (recording schema 5, probe_sample) adds to a recording per hour:
# `chokepoint record` of a Redis under redis-benchmark (INFO, commandstats, SLOWLOG, LATENCY once a
# second) and of a PostgreSQL under pgbench (pg_stat_activity at 10 Hz, the statistics once a
# second), each for SECONDS, then the probe_sample rows' bytes as kept (zstd where smaller) and
# as JSON before the envelope, per poll and per hour, beside the whole file. Root (the cluster
# runs as postgres). Loopback and Unix sockets only.
#   bench/probes/series_size.sh [BUILD_DIR] [SECONDS]
set -euo pipefail
build=${1:-build}
secs=${2:-30}
cp=$(realpath "$build")/bin/chokepoint
work=$(mktemp -d /tmp/chokepoint-probe-series.XXXXXX)
chmod 755 "$work"
cleanup() {
  [ -n "${bench:-}" ] && kill "$bench" 2>/dev/null || true
  [ -f "$work/pg/data/postmaster.pid" ] && kill -INT "$(head -1 "$work/pg/data/postmaster.pid")" 2>/dev/null || true
  [ -n "${redis:-}" ] && kill "$redis" 2>/dev/null || true
  sleep 1
  rm -rf "$work"
}
trap cleanup EXIT
as_pg() { setpriv --reuid=postgres --regid=postgres --clear-groups "$@"; }

# One recording of pid $1 to $2 while the load runs; prints the sizes.
measure() {
  local name=$1 pid=$2 file=$work/$1.chokepoint
  "$cp" record --pid "$pid" -o "$file" -i 1s -d "${secs}s" --stacks off 2>"$work/$name.log"
  grep "service probe" "$work/$name.log" || true
  sqlite3 "$file" "SELECT '$name', count(*) AS polls,
      round(sum(length(data)) * 1.0 / count(*)) AS bytes_per_poll,
      round((max(at_ns) - min(at_ns)) / 1e9, 1) AS seconds,
      round(sum(length(data)) * 3600e9 / (max(at_ns) - min(at_ns)) / 1e6, 2) AS mb_per_hour,
      (SELECT count(*) FROM probe_sample WHERE hex(substr(data, 1, 1)) = '01') AS zstd_rows
    FROM probe_sample;"
  echo "$name: whole file $(stat -c %s "$file") bytes"
}

echo "probe, polls, bytes per poll (kept), seconds, MB per hour (kept), rows compressed"
redis-server --port 16397 --bind 127.0.0.1 --save '' --maxmemory 64mb \
  --maxmemory-policy allkeys-lru >/dev/null 2>&1 &
redis=$!
sleep 0.5
redis-benchmark -p 16397 -t get,set,incr,lpush,hset -n 100000000 -r 100000 -c 8 -q >/dev/null 2>&1 &
bench=$!
measure redis "$redis"
kill "$bench"; wait "$bench" 2>/dev/null || true; bench=

mkdir -p "$work/pg" && chown postgres "$work/pg"
as_pg /usr/lib/postgresql/15/bin/initdb -D "$work/pg/data" -A peer -U postgres --no-sync >/dev/null
as_pg /usr/lib/postgresql/15/bin/postgres -D "$work/pg/data" -k "$work/pg" -c listen_addresses= \
  -p 5435 -c fsync=off >"$work/pg/log" 2>&1 &
for _ in $(seq 100); do as_pg pg_isready -q -h "$work/pg" -p 5435 && break; sleep 0.1; done
as_pg pgbench -q -i -s 2 -h "$work/pg" -p 5435 postgres >/dev/null 2>&1
as_pg pgbench -h "$work/pg" -p 5435 -c 8 -T $((secs + 10)) postgres >/dev/null 2>&1 &
bench=$!
sleep 1
measure postgres "$(head -1 "$work/pg/data/postmaster.pid")"
