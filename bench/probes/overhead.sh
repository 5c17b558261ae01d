#!/usr/bin/env bash
# The probes' own load on the services they read: redis-benchmark against Redis and pgbench
# against PostgreSQL, each run alternately with and without `chokepoint diagnose` probing the
# server at 10 Hz (diagnose's kernel sampling runs in both arms: only the probe differs, through
# --no-probes). Prints each run and the median ratio with/without. Root (the cluster runs as
# postgres). Loopback and Unix sockets only.
# Throughput on a shared machine swings by more than the 1% asked, so each run with the probe
# also measures the probe's load directly, as the server's own CPU time spent serving it:
# - Redis: the usec of the probe's commands (INFO, SLOWLOG, LATENCY, CLIENT: INFO commandstats)
#   against the server's CPU time (INFO cpu) over the run; the script's own INFO calls are counted
#   in the run without the probe, and that baseline is subtracted;
# - PostgreSQL: the on-CPU time of the probe's backend (application_name 'chokepoint probe',
#   /proc/PID/schedstat) against the whole cluster's (the postmaster with its reaped children,
#   /proc/PID/stat utime+stime+cutime+cstime).
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
# The on-CPU ns of the probe's backend (0 when there is none).
probe_backend_ns() {
  local pid
  pid=$(as_pg psql -h "$work/pg" -p 5434 -Atc \
    "select pid from pg_stat_activity where application_name = 'chokepoint probe'" postgres)
  if [ -n "$pid" ] && [ -r "/proc/$pid/schedstat" ]; then
    awk '{print $1}' "/proc/$pid/schedstat"
  else
    echo 0
  fi
}

# Prints "tps probe_backend_cpu_ns cluster_cpu_ns" for the run, both CPU times over pgbench's
# run only (the probe's is 0 without the probe).
pg_tps() {
  local flag=$1 t0 t1 tps p0 p1
  "$cp" diagnose --pid "$pm" --children -d "$((secs + 2))s" --no-stacks $flag >/dev/null 2>&1 &
  local d=$!
  sleep 1
  p0=$(probe_backend_ns); t0=$(pg_cluster_ticks)
  tps=$(as_pg pgbench -n -S -c 8 -j 2 -T "$secs" -h "$work/pg" -p 5434 postgres 2>/dev/null |
    awk '/^tps/ {print $3}')
  # diagnose runs a second past pgbench: its probe's backend is still there. pgbench's backends
  # have exited and been reaped: their time is in the postmaster's cutime and cstime.
  p1=$(probe_backend_ns); t1=$(pg_cluster_ticks)
  wait "$d" 2>/dev/null || true
  [ "$p0" -gt 0 ] && [ "$p1" -ge "$p0" ] || { p0=0; p1=0; }
  echo "$tps $((p1 - p0)) $(((t1 - t0) * 1000000000 / $(getconf CLK_TCK)))"
}

# The usec Redis spent in the commands a probe sends, and its own CPU time in usec.
redis_probe_usec() {
  redis-cli -p 16398 INFO commandstats | tr -d '\r' |
    awk -F'[:,=]' '/^cmdstat_(info|slowlog|latency|client)/ {
      for (i = 1; i <= NF; i++) if ($i == "usec") s += $(i + 1) } END {print s + 0}'
}
redis_cpu_usec() {
  redis-cli -p 16398 INFO cpu | tr -d '\r' |
    awk -F: '/^used_cpu_(sys|user):/ {s += $2} END {printf "%.0f\n", s * 1e6}'
}

# redis-benchmark interrupted prints no summary: count commands from the server instead. Prints
# "ops/s probe_usec server_cpu_usec" for the run.
redis_rate() {
  local before after pu0 pu1 cpu0 cpu1
  pu0=$(redis_probe_usec); cpu0=$(redis_cpu_usec)
  before=$(redis-cli -p 16398 INFO stats | awk -F: '/^total_commands_processed/ {print $2+0}')
  redis_tps "$1" >/dev/null
  after=$(redis-cli -p 16398 INFO stats | awk -F: '/^total_commands_processed/ {print $2+0}')
  pu1=$(redis_probe_usec); cpu1=$(redis_cpu_usec)
  awk -v a="$after" -v b="$before" -v s="$secs" -v p="$((pu1 - pu0))" -v c="$((cpu1 - cpu0))" \
    'BEGIN {printf "%.1f %d %d\n", (a - b) / s, p, c}'
}

# The cluster's CPU time in ticks: the postmaster and every backend it has reaped.
pg_cluster_ticks() { awk '{print $14 + $15 + $16 + $17}' "/proc/$pm/stat"; }

: >"$work/r_with"; : >"$work/r_without"; : >"$work/p_with"; : >"$work/p_without"
: >"$work/r_share"; : >"$work/r_base"; : >"$work/p_share"
for i in $(seq "$rounds"); do
  read -r a a_pu a_cpu <<<"$(redis_rate "--no-probes")"
  read -r b b_pu b_cpu <<<"$(redis_rate "")"
  read -r c _ _ <<<"$(pg_tps "--no-probes")"
  read -r d d_probe d_cluster <<<"$(pg_tps "")"
  echo "round $i: redis ops/s without $a with $b (probe commands ${b_pu} us of ${b_cpu} us server" \
    "CPU; ${a_pu} us without) | pgbench tps without $c with $d (probe backend $((d_probe / 1000))" \
    "us of $((d_cluster / 1000)) us cluster CPU)"
  echo "$a" >>"$work/r_without"; echo "$b" >>"$work/r_with"
  echo "$c" >>"$work/p_without"; echo "$d" >>"$work/p_with"
  awk -v p="$b_pu" -v c="$b_cpu" 'BEGIN {printf "%.6f\n", (c > 0) ? p / c : 0}' >>"$work/r_share"
  awk -v p="$a_pu" -v c="$a_cpu" 'BEGIN {printf "%.6f\n", (c > 0) ? p / c : 0}' >>"$work/r_base"
  awk -v p="$d_probe" -v c="$d_cluster" 'BEGIN {printf "%.6f\n", (c > 0) ? p / c : 0}' >>"$work/p_share"
done
rw=$(median <"$work/r_with"); ro=$(median <"$work/r_without")
pw=$(median <"$work/p_with"); po=$(median <"$work/p_without")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.4f", a / b}'; }
pct() { awk -v x="$1" 'BEGIN {printf "%.3f%%", 100 * x}'; }
echo "redis median: without $ro, with $rw, ratio $(ratio "$rw" "$ro")"
echo "pgbench median: without $po, with $pw, ratio $(ratio "$pw" "$po")"
echo "redis: the probe's commands took $(pct "$(median <"$work/r_share")") of the server's CPU" \
  "(median; the script's own INFO calls: $(pct "$(median <"$work/r_base")"))"
echo "postgres: the probe's backend took $(pct "$(median <"$work/p_share")") of the cluster's CPU" \
  "(median)"
