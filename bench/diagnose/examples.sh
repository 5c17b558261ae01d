#!/usr/bin/env bash
# Captures real `chokepoint diagnose` reports of the lab's scenarios for docs/verdicts/examples/.
# Usage: bench/diagnose/examples.sh [BUILD_DIR] [OUT_DIR]   (loopback only; about 1 minute)
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-build}/bin
out=${2:-docs/verdicts/examples}
mkdir -p "$out"

lab_pid=""; up_pid=""; load_pid=""
cleanup() {
  for p in $load_pid $lab_pid $up_pid; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

start() {  # start LOGFILE ARGS...: starts a lab, sets port and pid
  local log=$1; shift
  "$bin/chokepoint-lab" --port 0 "$@" >"$log" &
  for _ in $(seq 100); do grep -q listening "$log" && break; sleep 0.05; done
  port=$(sed -n 's/.*listening on [0-9.]*:\([0-9]*\).*/\1/p' "$log")
  pid=$(sed -n 's/.*pid=\([0-9]*\).*/\1/p' "$log")
}

capture() {  # capture NAME "LOAD COMMAND with PORT" LAB ARGS...
  local name=$1 load=$2; shift 2
  start /tmp/cp-example-lab.log "$@"; lab_pid=$pid
  ${load//PORT/$port} >/dev/null 2>&1 &
  load_pid=$!
  sleep 1
  {
    echo "\$ chokepoint-lab $*   # under: ${load//PORT/$port}"
    echo "\$ chokepoint diagnose --pid $lab_pid --duration 3s"
    "$bin/chokepoint" diagnose --pid "$lab_pid" --duration 3s 2>/dev/null
  } >"$out/$name.txt" || true
  kill "$load_pid" 2>/dev/null || true; wait "$load_pid" 2>/dev/null || true; load_pid=""
  kill "$lab_pid"; wait "$lab_pid" 2>/dev/null || true; lab_pid=""
  echo "$name: $(grep -m1 VERDICT "$out/$name.txt")"
}

wrk16="wrk -t1 -c16 -d8s http://127.0.0.1:PORT/"
capture cpu "$wrk16" --scenario cpu
capture serial "$wrk16" --scenario serial
capture lock "wrk -t1 -c16 -d8s -s bench/lab/keys_random.lua http://127.0.0.1:PORT/" --scenario lock
capture rwlock "wrk -t1 -c16 -d8s -s bench/lab/keys_random.lua http://127.0.0.1:PORT/" --scenario lock --lock-type rwlock
capture disk "$wrk16" --scenario disk
capture log "$wrk16" --scenario log
capture fsync "$wrk16" --scenario fsync
capture leak "$bin/chokepoint load --rate 300 -c 4 --duration 8s http://127.0.0.1:PORT/" --scenario leak
if [ "$(id -u)" = 0 ]; then capture paging "$wrk16" --scenario paging; fi
capture backlog "wrk -t1 -c64 -d8s -H Connection:close http://127.0.0.1:PORT/" --scenario backlog
capture none "$bin/chokepoint load --rate 200 -c 4 --duration 8s http://127.0.0.1:PORT/" --scenario none
start /tmp/cp-example-up.log --role upstream --delay-ms 5; up_pid=$pid
capture upstream "$wrk16" --scenario upstream --upstream "127.0.0.1:$port"
kill "$up_pid"; wait "$up_pid" 2>/dev/null || true; up_pid=""
