#!/usr/bin/env bash
# chokepoint top at a 1 s interval on the whole host with 1,000 extra threads (a process of the
# bench's, chokepoint-bench-threads, whose threads wake every 20 ms: the sampler's deep path),
# side by side with htop refreshing every 1 s (htop -d 10, in a pseudo-terminal from script(1)),
# both running at once for DURATION seconds. Reported: each one's CPU (utime + stime over the run,
# as % of one core) and peak RSS (VmHWM). With OTHER_BUILD_DIR, that build's chokepoint top runs
# in the same run too (before/after side by side: e.g. /work/main/build), with the ratio.
# Usage: bench/top/top_vs_htop.sh [BUILD_DIR] [DURATION_S] [MODE: wake|idle] [OTHER_BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
duration=${2:-30}
mode=${3:-wake}
other=${4:-}
command -v htop >/dev/null || { echo "error: htop is missing" >&2; echo "hint: scripts/setup installs it" >&2; exit 2; }
"$build/bin/chokepoint-bench-threads" 1000 "$mode" 20 >/tmp/cp-top-bench.threads &
threads=$!
trap 'set +e; kill $threads ${top:-} ${other_top:-} ${htop_pid:-} 2>/dev/null; wait 2>/dev/null; rm -f /tmp/cp-top-bench.*' EXIT
for _ in $(seq 200); do grep -qs ready /tmp/cp-top-bench.threads && break; sleep 0.05; done
echo "host: $(nproc) cpus, $(ls -d /proc/[0-9]*/task/[0-9]* 2>/dev/null | wc -l) threads, load $(cut -d' ' -f1-3 /proc/loadavg)"
"$build/bin/chokepoint" top --batch --interval 1s >/tmp/cp-top-bench.top 2>&1 &
top=$!
if [ -n "$other" ]; then
  "$other/bin/chokepoint" top --batch --interval 1s >/tmp/cp-top-bench.other 2>&1 &
  other_top=$!
fi
# script(1) gets a stdin that stays open and silent (from /dev/zero it buffered gigabytes until
# the OOM killer took it) and ends when htop is killed.
sleep $((duration + 30)) | TERM=xterm-256color script -qfc "htop -d 10" /dev/null >/dev/null 2>&1 &
sleep 1
htop_pid=$(pgrep -n -x htop)
ticks=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
t0=$(cpu_ticks $top); h0=$(cpu_ticks $htop_pid); s0=$(date +%s%N)
[ -n "$other" ] && o0=$(cpu_ticks $other_top)
sleep "$duration"
t1=$(cpu_ticks $top); h1=$(cpu_ticks $htop_pid); s1=$(date +%s%N)
[ -n "$other" ] && o1=$(cpu_ticks $other_top)
wall=$(echo "($s1 - $s0) / 1000000000" | bc -l)
hwm() { awk '/VmHWM/ {printf "%.1f MiB", $2 / 1024}' "/proc/$1/status"; }
printf '%-22s %12s %10s\n' program "cpu_%core" peak_rss
printf '%-22s %11.2f%% %10s\n' "chokepoint top (1 s)" "$(echo "($t1 - $t0) / $ticks / $wall * 100" | bc -l)" "$(hwm $top)"
if [ -n "$other" ]; then
  printf '%-22s %11.2f%% %10s\n' "$other top" "$(echo "($o1 - $o0) / $ticks / $wall * 100" | bc -l)" "$(hwm $other_top)"
  echo "chokepoint top / $other top: $(echo "scale=3; ($t1 - $t0) / ($o1 - $o0 + 0.0001)" | bc -l)"
fi
printf '%-22s %11.2f%% %10s\n' "htop -d 10 (1 s)" "$(echo "($h1 - $h0) / $ticks / $wall * 100" | bc -l)" "$(hwm $htop_pid)"
echo "frames written by chokepoint top: $(grep -c '^chokepoint top - frame' /tmp/cp-top-bench.top)"
