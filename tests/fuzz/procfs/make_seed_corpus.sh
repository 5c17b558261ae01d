#!/bin/bash
# Rebuilds the procfs fuzzers' seed corpora from tests/fixtures/proc: each seed is one selector
# byte (which parser, see the *_fuzzer.cpp switch) followed by a fixture file's text.
set -euo pipefail
top=$(cd "$(dirname "$0")/../../.." && pwd)
fx=$top/tests/fixtures/proc
corpus=$top/tests/fuzz/corpus
pid=$(cat "$fx/host/SUBJECT_PID")

seed() {  # seed FUZZER SELECTOR NAME FILE
  mkdir -p "$corpus/$1"
  { printf "\\x$(printf %02x "$2")"; cat "$4"; } > "$corpus/$1/$3"
}
text_seed() {  # text_seed FUZZER SELECTOR NAME TEXT
  mkdir -p "$corpus/$1"
  { printf "\\x$(printf %02x "$2")"; printf '%s' "$4"; } > "$corpus/$1/$3"
}

rm -rf "$corpus"/procfs_task_fuzzer "$corpus"/procfs_system_fuzzer "$corpus"/procfs_net_fuzzer

t=procfs_task_fuzzer
seed $t 0 stat_host "$fx/host/$pid/task/$pid/stat"
seed $t 0 stat_comm_weird "$fx/comm_weird/4242/task/4242/stat"
seed $t 0 stat_old_kernel "$fx/old_kernel/300/task/300/stat"
seed $t 0 stat_counters_max "$fx/counters_max/900/task/900/stat"
seed $t 1 schedstat_host "$fx/host/$pid/task/$pid/schedstat"
seed $t 1 schedstat_counters_max "$fx/counters_max/900/task/900/schedstat"
seed $t 2 status_host "$fx/host/$pid/status"
seed $t 2 status_comm_weird "$fx/comm_weird/4242/status"
seed $t 3 io_host "$fx/host/$pid/io"
seed $t 3 io_counters_max "$fx/counters_max/900/task/900/io"
n=0
for f in "$fx/host/$pid"/task/*/syscall "$fx/comm_weird/4242/task/4242/syscall"; do
  seed $t 4 syscall_$n "$f"; n=$((n + 1))
done
text_seed $t 4 syscall_not_in_syscall "-1 0x7ffe1234 0x401000"
seed $t 5 wchan_host "$fx/host/$pid/task/$pid/wchan"
for fd in "$fx/host/$pid"/fd/*; do text_seed $t 6 fd_$(basename "$fd") "$(readlink "$fd")"; done
text_seed $t 6 fd_timerfd "anon_inode:[timerfd]"
seed $t 7 limits_host "$fx/host/$pid/limits"
seed $t 8 cgroup_host "$fx/host/$pid/cgroup"
text_seed $t 8 cgroup_v2 "0::/system.slice/nginx.service"
text_seed $t 9 fdinfo_dsync "$(printf 'pos:\t4096\nflags:\t0110001\nmnt_id:\t25\nino:\t1234\n')"
text_seed $t 9 fdinfo_plain "$(printf 'pos:\t0\nflags:\t02\nmnt_id:\t25\n')"

s=procfs_system_fuzzer
seed $s 0 stat_host "$fx/host/stat"
seed $s 0 stat_old_kernel "$fx/old_kernel/stat"
seed $s 1 meminfo_host "$fx/host/meminfo"
seed $s 2 vmstat_host "$fx/host/vmstat"
seed $s 2 vmstat_old_kernel "$fx/old_kernel/vmstat"
seed $s 2 vmstat_counters_max "$fx/counters_max/vmstat"
seed $s 3 diskstats_host "$fx/host/diskstats"
seed $s 3 diskstats_14 "$fx/old_kernel/diskstats"
seed $s 3 diskstats_18 "$fx/kernel_4_19/diskstats"
seed $s 3 diskstats_counters_max "$fx/counters_max/diskstats"
seed $s 4 pressure_cpu "$fx/host/pressure/cpu"
seed $s 4 pressure_io "$fx/host/pressure/io"
seed $s 4 pressure_old_kernel "$fx/old_kernel/pressure/cpu"
seed $s 5 loadavg_host "$fx/host/loadavg"
seed $s 6 file_nr_host "$fx/host/sys/fs/file-nr"
seed $s 7 file_max_host "$fx/host/sys/fs/file-max"
text_seed $s 8 sysvipc_shm $'key shmid perms size cpid lpid nattch uid gid cuid cgid atime dtime ctime rss swap\n0 3 600 65536 4242 4242 1 0 0 0 0 1764893000 0 1764893000 65536 0\n'

n=procfs_net_fuzzer
seed $n 0 dev_host "$fx/host/net/dev"
seed $n 0 dev_counters_max "$fx/counters_max/net/dev"
seed $n 1 snmp_host "$fx/host/net/snmp"
seed $n 1 netstat_host "$fx/host/net/netstat"
seed $n 2 sockstat_host "$fx/host/net/sockstat"
text_seed $n 3 port_range_host $'32768\t60999\n'
echo "seeded: $(ls "$corpus"/procfs_task_fuzzer | wc -l) task, $(ls "$corpus"/procfs_system_fuzzer | wc -l) system, $(ls "$corpus"/procfs_net_fuzzer | wc -l) net"
