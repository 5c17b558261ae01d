#!/usr/bin/env bash
# Regenerates the example reports in docs/probes.md on real servers (root: the PostgreSQL
# cluster runs as the postgres user, peer authentication). Loopback and Unix sockets only.
#   bench/probes/examples.sh [BUILD_DIR] [OUT_DIR]
set -euo pipefail
build=${1:-build}
out=${2:-/tmp/chokepoint-probe-examples}
cp=$(realpath "$build")/bin/chokepoint
mkdir -p "$out"
work=$(mktemp -d /tmp/chokepoint-probes.XXXXXX)
chmod 755 "$work"  # the postgres user walks into it
cleanup() {
  [ -f "$work/pg/data/postmaster.pid" ] && kill -INT "$(head -1 "$work/pg/data/postmaster.pid")" 2>/dev/null || true
  pkill -f "redis-server 127.0.0.1:16399" 2>/dev/null || true
  [ -n "${hp:-}" ] && kill "$hp" 2>/dev/null || true
  [ -n "${ng:-}" ] && kill -QUIT "$ng" 2>/dev/null || true
  sleep 1
  rm -rf "$work"
}
trap cleanup EXIT
as_pg() { setpriv --reuid=postgres --regid=postgres --clear-groups "$@"; }

# 1. PostgreSQL: eight clients update one row and hold it 20 ms each.
mkdir -p "$work/pg" && chown postgres "$work/pg"
as_pg /usr/lib/postgresql/15/bin/initdb -D "$work/pg/data" -A peer -U postgres --no-sync >/dev/null
as_pg /usr/lib/postgresql/15/bin/postgres -D "$work/pg/data" -k "$work/pg" -c listen_addresses= \
  -p 5433 >"$work/pg/log" 2>&1 &
for _ in $(seq 100); do as_pg pg_isready -q -h "$work/pg" -p 5433 && break; sleep 0.1; done
as_pg psql -q -h "$work/pg" -p 5433 -c "CREATE TABLE counters (id int PRIMARY KEY, n bigint);
  INSERT INTO counters VALUES (1, 0);"
printf 'BEGIN;\nUPDATE counters SET n = n + 1 WHERE id = 1;\nSELECT pg_sleep(0.02);\nCOMMIT;\n' \
  >"$work/pg/hot.sql"
chmod 644 "$work/pg/hot.sql"
as_pg pgbench -n -h "$work/pg" -p 5433 -c 8 -T 8 -f "$work/pg/hot.sql" postgres >/dev/null 2>&1 &
bench=$!
sleep 1
pm=$(head -1 "$work/pg/data/postmaster.pid")
"$cp" diagnose --pid "$pm" --children -d 3s --no-stacks 2>/dev/null |
  sed "s|$work/pg|/var/run/postgresql|g" >"$out/postgres_row_lock.txt"
wait "$bench"

# 2. Redis at its maxmemory, evicting.
redis-server --port 16399 --bind 127.0.0.1 --save '' --maxmemory 8mb \
  --maxmemory-policy allkeys-lru >/dev/null 2>&1 &
sleep 0.5
redis-benchmark -p 16399 -n 300000 -r 1000000 -d 1024 -t set -c 8 -q >/dev/null 2>&1 &
bench=$!
sleep 0.5
"$cp" diagnose --pid "$(pgrep -f 'redis-server 127.0.0.1:16399')" -d 3s --no-stacks 2>/dev/null \
  >"$out/redis_evicting.txt"
wait "$bench" || true

# 3. HAProxy in front of one nginx server held to one connection: the backend queues.
mkdir -p "$work/px"
cat >"$work/px/nginx.conf" <<NGX
daemon off; worker_processes 1; pid $work/px/nginx.pid; error_log $work/px/error.log;
events { worker_connections 1024; }
http { access_log off; client_body_temp_path $work/px/b; proxy_temp_path $work/px/p;
  fastcgi_temp_path $work/px/f; uwsgi_temp_path $work/px/u; scgi_temp_path $work/px/s;
  server { listen 127.0.0.1:18090; location / { return 200 "hello\n"; } } }
NGX
/usr/sbin/nginx -p "$work/px" -c "$work/px/nginx.conf" &
ng=$!
cat >"$work/px/haproxy.cfg" <<HAP
global
  stats socket $work/px/haproxy.sock mode 600 level user
defaults
  mode http
  timeout connect 2s
  timeout client 10s
  timeout server 10s
  timeout queue 10s
frontend web
  bind 127.0.0.1:18091
  default_backend app
backend app
  server web1 127.0.0.1:18090 maxconn 1
HAP
haproxy -db -f "$work/px/haproxy.cfg" >/dev/null 2>&1 &
hp=$!
sleep 1
wrk -t2 -c64 -d6s http://127.0.0.1:18091/ >/dev/null 2>&1 &
bench=$!
sleep 1
"$cp" diagnose --pid "$hp" -d 3s --no-stacks --haproxy-stats "$work/px/haproxy.sock" \
  2>/dev/null | sed "s|$work/px|/run/haproxy|g" >"$out/haproxy_queue.txt"
wait "$bench" || true
echo "examples in $out"
