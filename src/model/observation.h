#pragma once
// Everything one diagnosis window observed: per-thread accounts, per-process and system evidence,
// and where each number came from. The sampler fills it; analysis/ and render/ only read it.

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "model/account.h"
#include "model/rlimits.h"
#include "model/shm.h"
#include "model/tcp_table.h"
#include "model/wait_graph.h"

namespace chokepoint::model {

struct TargetInfo {
  std::string kind;       // "pid", "name", "cgroup", "command", "host"
  std::string spec;       // what the user named: "1234", "nginx", "/sys/fs/cgroup/x", "sleep 5"
  std::vector<int> pids;  // processes seen during the window
};

// Where a kind of number came from, or why it is missing and how to get it.
struct Source {
  std::string name;  // "schedstat", "delay accounting", "tcp_info", "psi", ...
  bool available = false;
  std::string detail;  // what it gave, e.g. "exact on-CPU and run-queue time per thread"
  std::string hint;    // when unavailable: what to do
};

struct ProcessSummary {
  int pid = 0;
  std::string name;
  int threads = 0;  // distinct threads seen
  std::uint64_t rss_start_bytes = 0;
  std::uint64_t rss_end_bytes = 0;
  std::uint64_t rss_max_bytes = 0;
  // RssAnon (heap, stacks): where leaks grow. 0 when the kernel does not report it (before 4.5).
  std::uint64_t anon_start_bytes = 0;
  std::uint64_t anon_end_bytes = 0;
  std::uint64_t anon_max_bytes = 0;
  std::uint64_t read_bytes = 0;  // /proc/PID/io deltas over the window
  std::uint64_t write_bytes = 0;
  std::uint64_t syscw = 0;
  std::uint64_t majflt = 0;
  std::uint64_t open_fds = 0;
  std::uint64_t fd_soft_limit = 0;  // RLIMIT_NOFILE, 0 when unknown
  // Sockets of the process at the end of the window.
  int server_connections = 0;  // accepted from our listeners
  int client_connections = 0;  // opened by us to other ports (upstreams)
  int listeners = 0;
  std::uint64_t notsent_bytes = 0;      // queued to peers, not yet sent
  std::uint64_t sndbuf_limited_us = 0;  // over the window, from tcp_info, summed
  std::uint64_t rwnd_limited_us = 0;
  std::uint64_t upstream_rtt_us_max = 0;
  std::vector<std::string> listen_sockets;  // "127.0.0.1:8080 backlog 1, queue 1"
  std::uint64_t bytes_sent_per_s = 0;       // tcp_info bytes_acked delta over the window
  // Its established connections by peer (tcp_info at the window's ends), the most bytes sent
  // first: upstreams by address and port, clients (accepted) by address (their ports are
  // ephemeral).
  struct Peer {
    std::string address;   // "127.0.0.1:9001" for an upstream, "127.0.0.1" for clients
    bool clients = false;  // accepted from our listeners
    int connections = 0;
    std::uint64_t bytes_sent_per_s = 0;  // bytes_acked delta over the window
    std::uint64_t retransmits = 0;       // total_retrans delta over the window
    std::uint32_t rtt_us_max = 0;        // the largest smoothed RTT at the end
    std::uint64_t notsent_bytes = 0;     // at the end
    std::uint64_t unacked_segments = 0;  // at the end: sent, not yet acknowledged
  };
  std::vector<Peer> peers;
  // The upstreams' addresses ("127.0.0.1:9001"), in address order: peers that are not clients.
  std::vector<std::string> upstream_peers() const {
    std::vector<std::string> out;
    for (const auto& p : peers) {
      if (!p.clients) out.push_back(p.address);
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  // Delay accounting over taskstats (root; only tasks started while kernel.task_delayacct was on
  // carry it): the thread group's delays over the window, summed over its threads.
  bool has_delays = false;
  std::uint64_t delay_cpu_ns = 0;        // runnable, waiting for a CPU
  std::uint64_t delay_blkio_ns = 0;      // block IO
  std::uint64_t delay_swapin_ns = 0;     // swap-in faults
  std::uint64_t delay_reclaim_ns = 0;    // direct reclaim (freepages)
  std::uint64_t delay_thrashing_ns = 0;  // refaults of pages evicted recently (thrashing)
  std::uint64_t delay_compact_ns = 0;    // memory compaction
  std::uint64_t delay_memory_ns() const {
    return delay_swapin_ns + delay_reclaim_ns + delay_thrashing_ns + delay_compact_ns;
  }
};

struct DiskSummary {
  std::string name;
  double utilization = 0;  // busy fraction of the window (io_ticks)
  double await_ms = 0;     // mean time per completed IO
  double queue_depth = 0;  // mean in-flight (weighted io time / wall)
  double reads_per_s = 0;
  double writes_per_s = 0;
  double flushes_per_s = 0;
  double write_bytes_per_s = 0;
  double read_bytes_per_s = 0;
};

struct PsiSummary {
  bool available = false;
  double some_share = 0;  // fraction of the window with some task stalled
  double full_share = 0;
};

struct SystemSummary {
  int cpus_online = 0;
  double cpus_allowed = 0;     // for the target: cpuset/quota; else online
  double cpu_utilization = 0;  // busy fraction of all online CPUs
  double iowait_share = 0;
  double run_queue_avg = 0;  // procs_running averaged over samples (includes running)
  PsiSummary psi_cpu, psi_memory, psi_io;
  std::uint64_t mem_total_bytes = 0;
  std::uint64_t mem_available_bytes = 0;
  std::uint64_t swap_used_bytes = 0;
  double majflt_per_s = 0;
  double refaults_per_s = 0;
  std::uint64_t oom_kills = 0;  // during the window
  std::vector<DiskSummary> disks;
  double tcp_retrans_per_s = 0;
  std::uint64_t listen_overflows = 0;  // during the window, in the target's network namespace
  std::uint64_t listen_drops = 0;
  std::uint64_t passive_opens = 0;  // connections accepted by the kernel (Tcp PassiveOpens)
  std::uint64_t time_wait = 0;
  std::uint64_t files_open = 0;  // fs.file-nr
  std::uint64_t files_max = 0;
  // The target's cgroup, when it has one with limits.
  std::string cgroup_path;
  std::optional<std::uint64_t> cgroup_memory_limit_bytes;
  std::uint64_t cgroup_memory_usage_bytes = 0;
  std::uint64_t cgroup_nr_throttled = 0;
  double cgroup_throttled_share = 0;  // fraction of the window the cgroup was throttled
  // TCP sockets of the target's namespace by state (sock_diag), when it could be dumped.
  std::optional<TcpTable> tcp;
  // Shared memory and its limits at the window's end, when it was read.
  std::optional<ShmSample> shm;
  // The target's processes' rlimits against their use at the window's end, when read.
  std::optional<RlimitSample> rlimits;
};

struct Overhead {
  double cpu_s = 0;  // the sampler's CPU over the window
  // The whole run (start-up, window, stacks, symbolizing), when the caller measured it: wall time
  // and the CPU of the thread that did the work. 0 when not measured.
  double run_wall_s = 0;
  double run_cpu_s = 0;
  std::uint64_t rss_bytes = 0;
  std::uint64_t thread_samples = 0;  // thread state reads
  std::uint64_t deep_samples = 0;    // threads that ran and needed their state read
};

struct Observation {
  TargetInfo target;
  std::int64_t duration_ns = 0;
  std::int64_t interval_ns = 0;
  std::vector<ThreadAccount> threads;
  std::vector<ProcessSummary> processes;
  SystemSummary system;
  std::vector<Source> sources;
  // Of the time threads waited on a mutex, the part during which another thread of the same
  // process was inside a disk sync syscall: the lock is held across disk IO.
  std::int64_t lock_wait_behind_disk_ns = 0;
  // The exact mode's wait-for graph of the window: who woke whom (model/wait_graph.h); nullopt
  // without it (the sampled split, or no eBPF).
  std::optional<WaitGraph> wait_graph;
  Overhead overhead;
  bool target_exited = false;  // every target process exited before the window ended
};

}  // namespace chokepoint::model
