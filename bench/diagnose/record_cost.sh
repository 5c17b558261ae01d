#!/usr/bin/env bash
# What chokepoint record costs: bytes per thread row and the recorder's CPU, recording one
# chokepoint-bench-threads process of N threads (idle|parked|wake) at --interval 1s.
# Usage: bench/diagnose/record_cost.sh N MODE [DURATION] [PERIOD_MS]
set -euo pipefail
cd "$(dirname "$0")/../.."
n=$1; mode=$2; duration=${3:-60s}; period=${4:-20}
bin=${BIN:-build/bin}
out=$(mktemp); file=$(mktemp -u --suffix=.chokepoint)
"$bin/chokepoint-bench-threads" "$n" "$mode" "$period" >"$out" &
pid=$!
trap 'set +e; kill $pid 2>/dev/null; rm -f "$out" "$file"' EXIT
for _ in $(seq 400); do grep -q ready "$out" 2>/dev/null && break; sleep 0.05; done
"$bin/chokepoint" record --pid "$pid" -o "$file" --interval 1s --duration "$duration" 2>&1 | tail -1
if [ "$(sqlite3 "$file" "PRAGMA user_version")" = 1 ]; then
  sqlite3 "$file" "SELECT 'thread_sample rows', count(*) FROM thread_sample"
else
  sqlite3 "$file" "SELECT 'thread_pack rows (thread rows)', count(*), sum(threads) FROM thread_pack"
fi
sqlite3 "$file" "SELECT 'ticks', count(*) FROM tick;
  SELECT 'thread_base rows', count(*) FROM thread_base;
  SELECT 'recorder cpu_s', json_extract(sample, '\$.cpu_ns') / 1e9 FROM collector_sample
    ORDER BY rowid DESC LIMIT 1;
  SELECT 'file bytes', page_count * page_size FROM pragma_page_count, pragma_page_size;"
