#pragma once
// Raw, timestamped samples: what the sampler read from the kernel, and nothing derived from it.
// collect/ produces them, store/ keeps them, and model::build_observation (model/builder.h) turns
// a window of them into an Observation. A live diagnosis and a replayed recording run the same
// derivation, so a recording made today can be judged by tomorrow's rules.
//
// Counters are cumulative, as the kernel keeps them; times are CLOCK_MONOTONIC ns. Units are
// converted at the collector (no clock ticks or pages here).
//
// What the stream leaves out, by design (it keeps recordings small and the sampler cheap):
// - a poll that found a thread's schedstat unchanged has no record: the thread is still in the
//   wait it was last seen in. The next record of that thread carries prev_poll_ns, the time of the
//   last poll that found it unchanged, so the quiet time and the interval in which it ran are told
//   apart exactly as the sampler saw them;
// - a process's fd table, limits and sockets are read only now and then (see ProcessSample).

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "model/account.h"
#include "model/observation.h"
#include "model/wait.h"
#include "model/wait_graph.h"

namespace chokepoint::model {

// One read of one thread. The sampler emits one when it first sees a thread (first), and at every
// poll that found its schedstat changed (it ran, or waited for a core).
struct ThreadSample {
  ThreadKey key;
  std::int64_t at_ns = 0;
  // The sampler's previous read of this thread, which found the counters as in its previous record
  // (== the previous record's at_ns when it was read at every poll). Unused for first samples.
  std::int64_t prev_poll_ns = 0;
  bool first = false;
  // The thread's name: in first samples, and in a later one whose read found it renamed since
  // its last record (prctl PR_SET_NAME, or exec: a main thread's new name is its process's too);
  // empty otherwise.
  std::string comm;
  std::string process_name;  // first samples only
  // /proc/PID/task/TID/schedstat (1) and (2).
  std::uint64_t run_ns = 0;
  std::uint64_t run_delay_ns = 0;
  // /proc/PID/task/TID/stat, when it could be read (it was not for a thread that vanished between
  // the two reads): a record without it carries no interval.
  bool has_stat = false;
  std::uint64_t utime_ns = 0;
  std::uint64_t stime_ns = 0;
  std::uint64_t majflt = 0;
  std::uint64_t blkio_delay_ns = 0;  // (42) delayacct_blkio_ticks; 0 without delay accounting
  // Where the thread was: state, syscall and arguments, the fd role and detail, the process's
  // network wait, the futex caller. wait.where is kUnknown when /proc/.../syscall was refused.
  // wait.majflt_delta is not stored: the builder derives it from majflt.
  WaitObservation wait;
};

// A thread the sampler stopped watching (it exited, or left the target). last_poll_ns is its last
// successful read: its account ends there.
struct ThreadEnd {
  int pid = 0;
  int tid = 0;
  std::int64_t last_poll_ns = 0;
  std::uint64_t start_time_ticks = 0;  // the thread's ThreadKey::start_time_ticks
};

// Delay accounting of a thread group over taskstats (cumulative).
struct GroupDelays {
  std::uint64_t cpu_ns = 0;
  std::uint64_t blkio_ns = 0;
  std::uint64_t swapin_ns = 0;
  std::uint64_t reclaim_ns = 0;  // freepages
  std::uint64_t thrashing_ns = 0;
  std::uint64_t compact_ns = 0;
};

struct ProcessIo {
  std::uint64_t read_bytes = 0;
  std::uint64_t write_bytes = 0;
  std::uint64_t syscw = 0;
};

// One read of one process: at the first sight of it, at every re-listing of the target, and at
// the window's close.
struct ProcessSample {
  int pid = 0;
  std::int64_t at_ns = 0;
  std::optional<std::string> name;  // the first read only (the process's comm)
  // The first read only: the parent's pid (/proc/PID/status PPid; 0 for a process whose parent
  // is in another pid namespace). It groups a service's processes into its tier
  // (model/tiers.h). nullopt: not known (recordings before schema 3).
  std::optional<int> ppid;
  std::optional<ProcessIo> io;  // /proc/PID/io
  bool has_status = false;      // /proc/PID/status
  std::uint64_t rss_bytes = 0;
  std::uint64_t anon_bytes = 0;  // 0 when the kernel does not report RssAnon
  std::optional<GroupDelays> delays;
  // Read at the window's close (and now and then while recording): the fd table and its limit.
  std::optional<std::uint64_t> open_fds;
  std::optional<std::uint64_t> fd_soft_limit;
};

enum class SocketState : std::uint8_t { kOther = 0, kEstablished, kListen };

// One TCP socket of a process, as tcp_info and sock_diag gave it when the sampler looked.
struct SocketSample {
  int pid = 0;
  std::int64_t at_ns = 0;
  std::uint64_t inode = 0;
  SocketState state = SocketState::kOther;
  bool server_side = false;  // accepted from a listener of the namespace: the peer is our client
  std::string local_addr;
  std::uint16_t local_port = 0;
  std::string remote_addr;
  std::uint16_t remote_port = 0;
  std::uint32_t recv_queue_bytes = 0;  // listeners: the accept queue
  std::uint32_t send_queue_bytes = 0;  // listeners: the backlog
  std::uint32_t notsent_bytes = 0;
  std::uint32_t rtt_us = 0;     // tcp_info's smoothed RTT (srtt)
  std::uint32_t rttvar_us = 0;  // its variance (mean deviation); 0 in recordings before schema 6
  std::uint32_t total_retrans = 0;  // segments retransmitted over the connection's life (schema 6)
  std::uint32_t unacked_segments = 0;  // sent, not yet acknowledged, at the read (schema 7)
  std::uint64_t bytes_acked = 0;
  std::uint64_t sndbuf_limited_us = 0;
  std::uint64_t rwnd_limited_us = 0;
};

struct PressureSample {
  bool present = false;    // the file exists
  bool supported = false;  // and reads (PSI can be compiled in but off)
  std::string unsupported_reason;
  std::optional<std::uint64_t> some_total_ns;
  std::optional<std::uint64_t> full_total_ns;
};

// A whole disk: partitions, loop and ram devices are not kept (they would double count).
struct DiskSample {
  std::string name;
  std::uint64_t reads = 0, writes = 0;
  std::uint64_t read_bytes = 0, write_bytes = 0;
  std::uint64_t read_time_ns = 0, write_time_ns = 0;
  std::uint64_t io_time_ns = 0, weighted_io_time_ns = 0;
  std::optional<std::uint64_t> flushes;
};

// System-wide and cgroup counters (cumulative), each optional when its file was missing.
struct SystemSample {
  std::int64_t at_ns = 0;
  int cpus_online = 0;
  bool has_cpu = false;  // /proc/stat
  std::uint64_t cpu_total_ns = 0, cpu_busy_ns = 0, cpu_iowait_ns = 0;
  bool has_meminfo = false;
  std::uint64_t mem_total_bytes = 0, mem_available_bytes = 0;
  std::uint64_t swap_total_bytes = 0, swap_free_bytes = 0;
  bool has_vmstat = false;
  std::uint64_t pgmajfault = 0, refault_file = 0, refault_anon = 0, oom_kill = 0;
  std::optional<std::vector<DiskSample>> disks;
  bool has_net = false;  // snmp + netstat of the target's namespace; a missing key reads nullopt
  std::optional<std::uint64_t> tcp_retrans_segs, listen_overflows, listen_drops, passive_opens;
  std::optional<std::uint64_t> tcp_time_wait;  // sockstat
  std::optional<std::uint64_t> files_open, files_max;
  PressureSample psi_cpu, psi_memory, psi_io;
  std::string cgroup_memory_dir;  // "" when none found
  std::string cgroup_cpu_dir;
  std::optional<std::uint64_t> cgroup_memory_limit_bytes;
  std::uint64_t cgroup_memory_usage_bytes = 0;
  std::uint64_t cgroup_nr_throttled = 0;
  std::uint64_t cgroup_throttled_ns = 0;
  // Taken at the window's start and end only (model/tcp_table.h); nullopt elsewhere, or when
  // sock_diag was refused. A rolling session (top) repeats its last dump at a close for up to
  // 5 s: the table's at_ns is when it was dumped.
  std::optional<TcpTableSample> tcp_table;
  // Taken at the window's end only (model/shm.h).
  std::optional<ShmSample> shm;
  // Taken at the window's end only, for a target with processes (model/rlimits.h).
  std::optional<RlimitSample> rlimits;
};

// What the collector knows about its own sources and cost (cumulative since it started).
struct CollectorSample {
  bool delayacct_readable = false;  // /proc/sys/kernel/task_delayacct exists
  bool delayacct_on = false;
  bool taskstats_open = false;
  std::string taskstats_problem;
  std::uint64_t stack_scans = 0, stack_named = 0, stack_cache_hits = 0;
  std::string stack_problem;
  std::string socket_problem;
  // The socket-order tracer (eBPF): tried once an event loop was seen waiting; on when it runs.
  bool socket_order_tried = false;
  bool socket_order_on = false;
  std::string socket_order_problem;
  // The BPF task iterator (collect/bpf/task_iterator.h): on when every thread's schedstat
  // counters came from one read a tick; the problem says why /proc was read per thread instead.
  bool task_iterator_on = false;
  std::string task_iterator_problem;
  // The host target's process events (collect/netlink/proc_connector.h): on when processes and
  // threads that appeared or ended between full listings came from the kernel's forks, execs and
  // exits; the problem says why /proc was listed every 0.5-2 s instead (empty for other targets
  // and recordings from before). full_listings: listings of every process of the target;
  // proc_events_lost: overflows of the event queue (each cost one full listing).
  bool proc_events_on = false;
  std::string proc_events_problem;
  std::uint64_t full_listings = 0;
  std::uint64_t proc_events_lost = 0;
  std::optional<double> cpus_allowed;  // for a target other than the host
  std::int64_t cpu_ns = 0;             // the sampler thread's CPU time
  std::uint64_t rss_bytes = 0;         // the sampler process's peak RSS
  std::uint64_t thread_samples = 0;    // thread reads
  std::uint64_t deep_samples = 0;      // threads that ran and had their state read
};

// The exact mode's time split (collect/sampler/exact_accounting.h): what an eBPF program on
// sched_switch and sched_waking summed in the kernel for each target thread.
enum class ExactKind : std::uint8_t {
  kInterruptible = 0,  // blocked in state S
  kUninterruptible,    // blocked in state D
  kOtherBlocked,       // blocked in another state (stopped, traced, ...)
  kRunQueueWakeup,     // runnable, from its wakeup to its switch-in (after futex blocks only,
                       // keyed by the block's call and word, since this kind came back)
  kRunQueuePreempted,  // runnable, from its preemption to its switch-in (older recordings)
  kOnCpuFile,          // on the CPU inside a file system call on a regular file; syscall_nr -1,
                       // object the fd
};
inline constexpr std::size_t kExactKindCount = 6;

// One thread's cumulative time in one (kind, system call, wait object) since the accounting
// started: syscall_nr -1 is outside a system call (a page fault); object is the call's first
// argument (the fd of fd syscalls, the futex word of futex). ns and count are weighted by the
// thinning (ExactState::thin_below_ns_max, or thin_every_max in older recordings, says whether
// any was). A block still in progress at the read is included up to the read.
struct ExactWait {
  int pid = 0;
  int tid = 0;
  // The thread's start (ThreadKey::start_time_ticks): a thread id handed out again within a
  // window names another thread. 0: not known (recordings made before it was kept).
  std::uint64_t start_time_ticks = 0;
  ExactKind kind = ExactKind::kInterruptible;
  long syscall_nr = -1;
  std::uint64_t object = 0;
  std::uint64_t ns = 0;
  std::uint64_t count = 0;
};

// The exact mode's state at one tick, without its sums and edges: what a reader needs of every
// tick (the builder keeps this whole; it keeps what it needs of the sums and edges itself).
struct ExactState {
  // The accounting ran. When it did not, why ("--mode sample", or what refused it) and the hint;
  // the time split is then the sampled one.
  bool on = false;
  std::string mode;  // the mode asked for: "exact", "sample", "auto"
  std::string problem;
  std::string hint;
  // Cumulative since the accounting started: target switch-outs seen, blocks not accounted
  // (thinned out above the budget), intervals or threads that did not fit the kernel's maps.
  std::uint64_t switches = 0;
  std::uint64_t thinned_out = 0;
  std::uint64_t lost = 0;
  // How blocks were thinned: by length, blocks shorter than a threshold kept with probability
  // length / threshold (the largest threshold used; 0: none was); or, in recordings made before
  // (thin_every_max > 1), 1 block in up to that many kept whatever its length.
  std::uint64_t thin_below_ns_max = 0;
  std::uint32_t thin_every_max = 1;
  std::uint32_t budget_per_cpu_s = 0;  // blocks per CPU per second accounted in full; 0: all
  // The hook that timed the file system calls on the CPU (kOnCpuFile sums): "fentry",
  // "raw_syscalls", "none" (not timed); empty in recordings made before it was kept. And why the
  // cheaper hooks were not used (fentry refused), at the accounting's first and closing ticks.
  std::string file_hook;
  std::string file_hook_problem;
};

// How the threads of process `pid` waited on futex word `word`, as the kernel read the call's op
// and value at the switch-out (src/bpf/stateacct.h's STATEACCT_FUTEX_*: 0x80 read, bits 0-3 op &
// FUTEX_CMD_MASK, 0x10 the value was 2, 0x20 FUTEX_PRIVATE_FLAG): what the sampler would have read
// in /proc/PID/task/TID/syscall had it caught a thread there.
struct FutexOp {
  int pid = 0;
  std::uint64_t word = 0;
  std::uint8_t how = 0;
};

// What fd `fd` of process `pid` is, resolved by the collector when the kernel's sums first timed a
// wait in a call on it (ExactWait::object of a call with an fd argument): the role and detail the
// sampler gives a thread it catches in that call ("/data/wal" for a file, "upstream
// 10.0.0.5:5432" for a connection it opened). A wait the sampler never caught is classed and
// named with it.
struct FdName {
  int pid = 0;
  std::uint64_t fd = 0;
  FdRole role = FdRole::kUnknown;
  std::string detail;
};

struct ExactSample {
  ExactState state;
  // The entries that changed since the previous tick's sample (every entry of the live threads at
  // a recording's keyframes); a reader keeps the last value of each.
  std::vector<ExactWait> waits;
  // The wait-for edges (model/wait_graph.h) into the target's threads that changed since the
  // previous tick's sample (all of them at a recording's keyframes), cumulative; a reader keeps
  // the last value of each.
  std::vector<WakeEdge> edges;
  // The futex words whose FutexOp is new or changed since the previous tick's sample; a reader
  // keeps the last of each. Recordings made before it have none.
  std::vector<FutexOp> futex_ops;
  // The fds the sums named for the first time since the previous tick's sample (or again, long
  // after: fd numbers are reused), resolved; a reader keeps the latest of each fd, from these and
  // from the sampler's reads, to class the waits on fds no sampled read classed. Recordings made
  // before it have none.
  std::vector<FdName> fd_names;
};

// Everything one poll of the sampler read, in the order it read it.
struct Tick {
  std::int64_t at_ns = 0;
  // Lock-behind-disk accounting for this tick: every thread queued on a lock while another thread
  // of its process is in a disk sync is credited this much. 0 for the window's closing reads.
  std::int64_t lock_credit_ns = 0;
  std::vector<int> new_pids;  // target processes seen for the first time
  std::vector<ThreadEnd> ended;
  std::vector<ThreadSample> threads;
  std::vector<ProcessSample> processes;
  std::vector<SocketSample> sockets;
  std::optional<SystemSample> system;
  std::optional<std::uint32_t> runnable;  // /proc/loadavg: runnable tasks now
  std::optional<CollectorSample> collector;
  // The exact mode's kernel sums: on every tick while it runs; at the first and the closing tick
  // (only the why) when it was asked for and did not run.
  std::optional<ExactSample> exact;
  bool closing = false;        // the window's (or the recording's) last tick
  bool target_exited = false;  // closing because every target process exited
};

// What a recording is of.
struct RecordingInfo {
  TargetInfo target;  // pids left empty: the ticks say which were seen
  std::int64_t interval_ns = 0;
};

// Receives ticks as the sampler produces them. Thread-safety: called on the sampler's thread.
class SampleSink {
 public:
  virtual ~SampleSink() = default;
  virtual void begin(const RecordingInfo& info) = 0;
  virtual void add(Tick tick) = 0;
};

// The in-memory store: the samples of a live window.
struct Samples : SampleSink {
  RecordingInfo info;
  std::vector<Tick> ticks;
  void begin(const RecordingInfo& i) override { info = i; }
  void add(Tick tick) override { ticks.push_back(std::move(tick)); }
};

}  // namespace chokepoint::model
