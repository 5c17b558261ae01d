#!/usr/bin/env bash
# How often a lightly loaded event loop reads as waiting on the network: Debian's HAProxy (one
# thread) in front of chokepoint-lab --role upstream answering at once, under
# `chokepoint load --rate 100 -c 8` (loopback only), diagnosed WINDOWS times for 3 s. Its true
# network share is about 0.001 (a request is out for tens of µs of every 10 ms); prints each
# window's share and verdict, and, where the share is not 0, the loop's waits.
# (EventLoop.AProxyWithAFastUpstreamAndLightLoadStaysIdle bounds one window at 0.1.)
# Usage: bench/diagnose/event_loop_light_load.sh [BIN_DIR] [WINDOWS]   (build/bin, 40)
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-build/bin}; windows=${2:-40}
dir=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"' EXIT
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
up_port=$(free_port)
"$bin/chokepoint-lab" --role upstream --delay-ms 0 --port "$up_port" >/dev/null 2>&1 &
pids+=($!)
proxy_port=$(free_port)
cat >"$dir/haproxy.cfg" <<CFG
global
  nbthread 1
defaults
  mode http
  timeout connect 2s
  timeout client 20s
  timeout server 20s
  timeout queue 20s
frontend fe
  bind 127.0.0.1:$proxy_port
  default_backend be
backend be
  server up 127.0.0.1:$up_port maxconn 4
CFG
haproxy -f "$dir/haproxy.cfg" -db >/dev/null 2>&1 &
haproxy=$!
pids+=($haproxy)
sleep 1
"$bin/chokepoint" load "http://127.0.0.1:$proxy_port/" --rate 100 -c 8 \
  --duration "$((windows * 4 + 10))s" >/dev/null 2>&1 &
pids+=($!)
sleep 1.5
for i in $(seq 1 "$windows"); do
  "$bin/chokepoint" diagnose --pid "$haproxy" -d 3s --no-stacks --no-probes --json 2>/dev/null |
    python3 -c 'import json, sys
j = json.load(sys.stdin)
n = j["time_split"]["network"]
print("%.3f %s %s" % (n, j["verdict"], json.dumps(j["threads"][0].get("waits_s")) if n > 0 else ""))'
  sleep "0.$((RANDOM % 10))"
done
