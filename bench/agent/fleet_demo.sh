#!/usr/bin/env bash
# The fleet end to end on loopback: two chokepoint-lab instances (disk-bound and CPU-bound under
# wrk) each in a cgroup of its own, one chokepoint agent per instance, a Prometheus server in a
# temp dir scraping both every second, then a PromQL query and `chokepoint fleet`. Needs root
# (cgroups). Usage: bench/agent/fleet_demo.sh [BUILD_DIR]   (about 25 s; stops everything it starts)
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=$(cd "${1:-build}/bin" && pwd)
dir=$(mktemp -d /tmp/chokepoint-fleet.XXXXXX)
base=/sys/fs/cgroup/unified
[ -e $base/cgroup.procs ] || base=/sys/fs/cgroup
[ -e $base/cgroup.procs ] || base=/sys/fs/cgroup/pids
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for cg in "$base"/chokepoint-fleet-*-$$; do
    [ -d "$cg" ] || continue
    while read -r p; do echo "$p" >"$base/cgroup.procs" 2>/dev/null || true; done <"$cg/cgroup.procs"
    rmdir "$cg" 2>/dev/null || true
  done
  rm -rf "$dir"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

targets=""
for scenario in disk cpu; do
  cg=$base/chokepoint-fleet-$scenario-$$
  mkdir "$cg"
  "$bin/chokepoint-lab" --port 0 --scenario "$scenario" >"$dir/$scenario.log" &
  pids+=($!)
  for _ in $(seq 100); do grep -q listening "$dir/$scenario.log" && break; sleep 0.05; done
  port=$(sed -n 's/.*listening on [0-9.]*:\([0-9]*\).*/\1/p' "$dir/$scenario.log")
  echo "$(sed -n 's/.*pid=\([0-9]*\).*/\1/p' "$dir/$scenario.log")" >"$cg/cgroup.procs"
  wrk -t1 -c8 -d60s "http://127.0.0.1:$port/" >/dev/null &
  pids+=($!)
  agent_port=$(free_port)
  "$bin/chokepoint" agent --target "cgroup:$cg" --window 2s --interval 100ms --listen "127.0.0.1:$agent_port" 2>/dev/null &
  pids+=($!)
  targets="$targets'127.0.0.1:$agent_port', "
done
prom_port=$(free_port)
cat >"$dir/prometheus.yml" <<YML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: ['$PWD/deploy/prometheus-rules.yml']
scrape_configs:
  - job_name: shop-backend
    static_configs:
      - targets: [${targets%, }]
YML
prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
  --web.listen-address="127.0.0.1:$prom_port" --log.level=error 2>/dev/null &
pids+=($!)
sleep 12
echo "\$ curl -s 'http://127.0.0.1:$prom_port/api/v1/query?query=chokepoint_verdict'   (instance, target, resource, kind of each series)"
curl -s "http://127.0.0.1:$prom_port/api/v1/query?query=chokepoint_verdict" |
  python3 -c 'import json,sys; [print(r["metric"]["instance"], r["metric"]["target"], r["metric"]["resource"], r["metric"]["kind"]) for r in json.load(sys.stdin)["data"]["result"]]'
echo
echo "\$ chokepoint fleet --prometheus http://127.0.0.1:$prom_port"
"$bin/chokepoint" fleet --prometheus "http://127.0.0.1:$prom_port"
