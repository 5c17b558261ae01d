#pragma once
// The diagnosis sampler's insides (sampler.h is the contract), shared by its four files:
// sampler.cpp (the session: create, the tick loop, a window's close), sampler_listing.cpp (the
// target's processes and threads: who is watched), sampler_threads.cpp (a thread's reads: the
// task iterator, its /proc files, the poll backoff) and sampler_processes.cpp (a process's reads:
// taskstats, io, status, freezer, fd tables, and the close's TCP, shm and rlimit snapshots).
// Private to collect/sampler.

#include "collect/sampler/sampler.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <tuple>
#include <utility>

#include "collect/bpf/task_iterator.h"
#include "collect/netlink/proc_connector.h"
#include "collect/netlink/sock_diag.h"
#include "collect/netlink/taskstats.h"
#include "collect/procfs/freezer.h"
#include "collect/procfs/proc_fs.h"
#include "collect/procfs/task_files.h"
#include "collect/sampler/fd_targets.h"
#include "collect/sampler/rlimit_snapshot.h"
#include "collect/sampler/shm_snapshot.h"
#include "collect/sampler/system_snapshot.h"
#include "collect/sampler/tcp_table.h"
#include "collect/sampler/wait_observer.h"
#include "util/clock.h"
#include "util/counters.h"
#include "util/fd_limit.h"
#include "util/scoped_fd.h"

namespace chokepoint::collect::sampler {

inline constexpr std::int64_t kRefreshTargetNs = 500'000'000;  // re-resolve processes and threads
inline constexpr std::int64_t kSystemTickNs = 100'000'000;     // run-queue samples
// SamplerOptions::shared_clock: the host's counters and run queue read by another sampler of this
// process at most this long ago are shared.
inline constexpr std::int64_t kSharedReadNs = 100'000'000;
inline constexpr std::int64_t kMaxPollBackoffNs = 1'000'000'000;
// Rolling windows (SamplerOptions::rolling) let a quiet thread go unread for up to half a window,
// at most this long: the agent's 10 s windows read an idle thread every 4 s.
inline constexpr std::int64_t kMaxRollingBackoffNs = 4'000'000'000;
// A rolling session (top, the agent) dumps the TCP state table at a close at most this often and
// repeats the last dump, with the time it was taken, at the closes in between: a dump walks the
// kernel's whole established hash (262,144 buckets here, 12% of top's cost at a dump a second).
inline constexpr std::int64_t kRollingTcpTableNs = 5'000'000'000;
// One thread in a task iterator's read costs 0.5-0.7 us here; a due thread read from /proc costs
// a schedstat pread (2-5 us) and, when it ran, as it mostly has (a thread that did not run backs
// off), its stat and syscall too, and the opens of those files if it has none kept: 10-35 us. A
// tick reads the iterator instead when at least one thread in this many is due.
inline constexpr std::size_t kIterThreadsPerProcRead = 10;
// fds kept free for everything else (sockets, /proc reads, the output).
inline constexpr std::int64_t kReservedFds = 128;
// A thread that ran gets its stat and syscall kept open only while this many fds stay free for
// the schedstat of threads that appear later.
inline constexpr std::int64_t kLazyOpenReserveFds = 1024;
// A process's /proc/PID/cgroup is read again after this long (check_frozen): a move to another
// cgroup (rare: a service manager moves a process once, at its start) is seen this late at most.
inline constexpr std::int64_t kCgroupRecheckNs = 10'000'000'000;
// At a rolling window's close, a process none of whose threads ran since its last status read
// repeats that read's RSS for up to this long: without running, its RSS moves only by the
// kernel's reclaim or khugepaged (or another process writing into it), seen this late at most.
inline constexpr std::int64_t kQuietStatusNs = 30'000'000'000;

struct ProcessState {
  int pid = 0;
  // root/PID/task, for openat("TID/<file>"): a fifth cheaper than opening by the full path.
  util::ScopedFd task_dir;
  // root/PID/io and root/PID/status, kept open and re-read with pread at 0, as thread files are
  // (invalid when the open was refused or the fd budget was spent: then opened per read).
  util::ScopedFd io_file, status_file;
  std::string name;
  bool frozen = false;  // its cgroup is frozen (at the last read_process)
  // The last read_process (-1: none yet), and whether a thread of it was seen to run (or
  // appeared) since: taskstats' delays and /proc/PID/io move only when a thread runs (the kernel
  // adds a wait's delay and a thread's I/O in that thread's context; an exited thread's go to the
  // group's totals), so a rolling window's close repeats them for a process that did not run.
  std::int64_t last_read_ns = -1;
  bool ran_since_read = true;
  // A thread of it was seen to run since the last look at its freezer state (check_frozen).
  bool ran_since_freezer = false;
  bool freezer_read = false;  // the freezer state was read once at least
  // Its /proc/PID/cgroup as read at cgroup_read_ns (-1: not yet), kept for kCgroupRecheckNs.
  std::string cgroup_text;
  std::int64_t cgroup_read_ns = -1;
  // Its RSS at the last read of /proc/PID/status (-1: none yet), repeated for kQuietStatusNs
  // at the closes where it did not run.
  std::int64_t status_read_ns = -1;
  std::uint64_t rss_bytes = 0, anon_bytes = 0;
  // A thread of it was seen to run since its fd table was last read: a table is changed only by
  // the process's own threads (or another process sharing it by CLONE_FILES, which is rare), so
  // a quiet process's is repeated at the close without a look (read_fd_tables).
  bool ran_since_fd_table = true;
  // Its threads in Impl::threads (kept by add_thread and refresh): which processes have threads
  // is known without a walk of every thread.
  std::size_t threads_watched = 0;
  // A kernel thread (PF_KTHREAD, from the task iterator's record): it has no memory of its own
  // (RSS 0, no /proc/PID/status read after the first) and the cgroup v2 freezer never freezes
  // one (cgroup_freeze_task in kernel/cgroup/freezer.c skips PF_KTHREAD), so its cgroup is not
  // read. Unknown without the iterator: read as any process.
  bool kernel_thread = false;
  std::optional<model::GroupDelays> delays;
  std::optional<model::ProcessIo> io;
  // The last read of its fd table (read_fd_tables): a table whose size is unchanged and that
  // held no socket is not read again; what it held is repeated.
  std::optional<std::uint64_t> fd_table_size;  // st_size of /proc/PID/fd: the open fds (6.2+)
  std::optional<std::uint64_t> open_fds, fd_soft_limit;
  bool has_sockets = false;
  // What that read found (a target's processes only; the host's TCP table and shared memory need
  // no fds): the close's TCP table and shm snapshot use it instead of a readlink per fd.
  std::optional<std::vector<procfs::FdEntry>> fd_targets;
};

// One thread's /proc files: schedstat is kept open (one pread per poll) while the fd budget
// allows. stat and syscall are kept open from the start when the budget has room for three fds
// for every thread of the listing; otherwise they are read once at the start through short-lived
// fds and kept open from the first time the thread is seen to have run (most threads of a large
// pool never run in a window, and an open /proc file that was read holds a 4 KiB kernel buffer).
// Past the budget, files are opened per read.
struct ThreadState {
  std::optional<procfs::TaskFiles> files;
  int fds = 0;  // fds the kept-open files use
  // The last task iterator record had this thread (false: its counters come from /proc).
  bool in_iterator = false;
  model::ThreadKey key;
  procfs::Schedstat last_sched;
  std::int64_t last_sample_ns = 0;  // the last successful read
  bool recorded_frozen = false;     // its last record had wait.frozen set
  std::int64_t refresh_generation = 0;
  // Threads that do not run are read less often: the poll interval doubles after each poll that
  // found the counters unchanged, up to kMaxPollBackoffNs. Cost follows the threads that ran.
  std::int64_t poll_backoff_ns = 0;
  std::int64_t next_poll_ns = 0;
  std::string comm;  // its name in its last record (a rename is recorded once, where it is seen)
};

// The first point of a grid of `step` on the monotonic clock at or after t (SamplerOptions::
// shared_clock).
inline std::int64_t grid_point(std::int64_t t, std::int64_t step) {
  return (t + step - 1) / step * step;
}

// A thread sample's fields from /proc/TID/stat.
void fill_stat(model::ThreadSample& s, const procfs::TaskStat& st);

struct Sampler::Impl {
  SamplerOptions opt;
  procfs::ProcFs proc;
  TargetResolver resolver{opt.target, proc};  // the listing's look at which processes
  std::array<char, procfs::kTaskFileBufferBytes> buf{};
  std::map<std::pair<int, int>, ThreadState> threads;
  std::map<int, ProcessState> processes;
  std::set<int> all_pids_seen;
  WaitObserver waits{proc};
  procfs::FreezerReader freezer{proc};
  // Taskstats (root only): opened once; taskstats_error says why not.
  std::optional<netlink::Taskstats> taskstats;
  std::string taskstats_error;
  // The BPF task iterator (root, BTF, 5.8+): every thread's schedstat counters in one read a
  // tick. iter_problem says why it is off (then schedstat is read per thread from /proc).
  std::unique_ptr<bpf::TaskIterator> iter;
  std::string iter_problem;
  std::vector<bpf::TaskRecord> iter_records;  // this tick's, sorted by tid
  bool iter_fresh = false;                    // iter_records were read at this tick
  std::int64_t generation = 0;
  std::uint64_t thread_samples = 0;
  std::uint64_t deep_samples = 0;
  rusage ru0{};
  model::Tick tick;  // the tick being read
  // The last window's closing tick (0: no window yet): the next window starts there.
  std::int64_t last_close_ns = 0;
  std::int64_t next_refresh_ns = 0;  // the next listing of the target's processes and threads
  // The last listing of every thread (-1: none yet). With the iterator, a listing in between
  // that finds every process with the thread count it had (same_tasks) lists no thread: it does
  // not read the iterator for it.
  std::int64_t last_full_listing_ns = -1;

  // The longest a thread that does not run goes unread.
  std::int64_t max_backoff_ns = kMaxPollBackoffNs;
  // How old another sampler's read of the host may be for this one to share it (0: not shared).
  std::int64_t shared_read_ns() const { return opt.shared_clock ? kSharedReadNs : 0; }

  // The host target's process events (SamplerOptions::proc_events): between full listings the
  // processes they name (touched_pids) are listed again, and no others. proc_events_problem says
  // why they are not used (then every listing lists /proc).
  std::optional<netlink::ProcConnector> proc_events;
  std::string proc_events_problem;
  std::vector<netlink::ProcEvent> event_scratch;
  std::set<int> host_pids;     // the host's processes: the last full listing's, kept by events
  std::set<int> touched_pids;  // named by a fork, exec or exit (or a thread that vanished) since
  // Threads whose exit was reported, by (tgid, tid): a process whose listing still holds one (a
  // zombie until its parent reaps it, which sends no event) is listed again at each refresh.
  std::set<std::pair<int, int>> exits_pending;
  bool listing_needed = true;          // the next refresh lists every process (start, lost events)
  std::uint64_t full_listings = 0;     // listings of every process of the target since the start
  std::uint64_t proc_events_lost = 0;  // overflows of the event queue, each answered by a listing

  explicit Impl(SamplerOptions o) : opt(std::move(o)), proc(opt.proc_root) {
    if (opt.rolling) {
      max_backoff_ns = std::clamp(opt.duration_ns / 2, kMaxPollBackoffNs, kMaxRollingBackoffNs);
    }
    iter_every_ns = std::max(opt.interval_ns, max_backoff_ns);
    samples_per_tick =
        std::max<std::int64_t>(1, opt.max_thread_samples_per_s * opt.interval_ns / util::kNsPerSec);
    // Kept-open files need fds: take the hard limit, and leave a reserve for everything else.
    if (const std::uint64_t soft = util::raise_fd_limit_to_hard(); soft > 0) {
      const std::uint64_t limit = std::min<std::uint64_t>(soft, 1u << 20);
      fd_budget = std::max<std::int64_t>(0, static_cast<std::int64_t>(limit) - kReservedFds);
    }
    if (struct stat self_fd{};
        opt.proc_root == "/proc" && ::stat("/proc/self/fd", &self_fd) == 0 && self_fd.st_size > 0) {
      fd_sizes_known = true;
    }
    // Taskstats answers for the real /proc's pids only, and needs CAP_NET_ADMIN.
    if (opt.proc_root != "/proc") {
      taskstats_error = "not read for a /proc other than the host's";
    } else if (geteuid() != 0) {
      taskstats_error = "needs root (CAP_NET_ADMIN)";
    } else if (auto t = netlink::Taskstats::open(); t) {
      taskstats = std::move(*t);
    } else {
      taskstats_error = t.error().message;
    }
    open_proc_events();
    if (!opt.task_iterator) {
      iter_problem = "switched off (SamplerOptions::task_iterator)";
    } else if (opt.proc_root != "/proc") {
      iter_problem = "not used for a /proc other than the host's";
    } else if (auto it = bpf::TaskIterator::create(); it) {
      iter = std::move(*it);
      iter->set_all_tasks(opt.target.kind == TargetSpec::Kind::kHost);
    } else {
      iter_problem = it.error().message;
    }
  }

  // Reads the task iterator for this tick (iter_fresh says whether it worked). A failed read
  // turns the iterator off for the session: /proc from then on, and the collector says why.
  void read_iterator();
  // The record of thread `tid` in this tick's iterator read, or nullptr.
  const bpf::TaskRecord* iter_record(int tid) const;
  // A thread's sample from its iterator record: counters, state and wait (no /proc read).
  void fill_record(model::ThreadSample& s, const bpf::TaskRecord& r, bool frozen,
                   std::int64_t now_ns);
  // The thread's name as read now: a sample of a thread that renamed itself (prctl
  // PR_SET_NAME, pthread_setname_np) or exec'd since its last record carries its new name, and a
  // main thread's new name is its process's from then on (the next threads' first samples).
  // A kernel thread keeps its first name: /proc shows a kworker's current work queue in its name
  // ("kworker/0:1-events"), the task iterator its comm ("kworker/0:1"), and neither is a rename.
  void note_comm(ThreadState& t, model::ThreadSample& s, const std::string& comm,
                 bool kernel_thread);
  // Counters of a thread: from this tick's iterator read when it has the thread, else /proc.
  util::Result<procfs::Schedstat> read_counters(ThreadState& t);
  // Reads /proc/PID/<file> of a process through its kept fd (opened on first use while the fd
  // budget allows), or opens it for this read.
  template <typename T, typename Parse>
  util::Result<T> read_process_file(util::ScopedFd& kept, int pid, const char* file, Parse parse);

  // Opens the host target's process events (before the first listing: nothing falls between).
  void open_proc_events();
  // Reads the queued process events (every tick): the processes they name are listed at the next
  // refresh. Returns whether a full listing is due now (events were lost, or the socket failed:
  // then the events are off for the session and every listing lists /proc).
  bool drain_proc_events();
  // The listing between full ones, from the process events: each touched process is listed (its
  // threads added and finished), a gone one forgotten, and every process of host_pids read.
  util::Result<void> refresh_touched(std::int64_t now_ns);
  // Finishes a watched thread (it exited or left the target); returns the next one.
  std::map<std::pair<int, int>, ThreadState>::iterator finish_thread(
      std::map<std::pair<int, int>, ThreadState>::iterator it);
  // Lists the target's processes and threads: new ones are added, gone ones finished, the
  // processes read. allow_quick: when the processes are the ones listed last time, each with as
  // many threads as it had (same_tasks), the threads are not listed again (no iterator read). A
  // thread that exited while another started in its process goes unseen until the next full
  // listing, at the next iterator read (the caller bounds that).
  util::Result<void> refresh(std::int64_t now_ns, bool allow_quick = false);
  // Whether `pids` (sorted) are the processes of the threads watched, each with as many threads
  // as watched: /proc/PID/task's link count is 2 plus its threads (proc_task_getattr), one
  // fstat of the kept task directory a process.
  bool same_tasks(const std::vector<int>& pids) const;
  // The processes' part of a listing: those gone with their threads are forgotten, the listed
  // ones read (pids sorted).
  void read_processes(const std::vector<int>& pids, std::int64_t now_ns);
  // The first tick of a session: sink.begin, the system counters, every thread read.
  util::Result<std::int64_t> begin(model::SampleSink& sink);
  std::int64_t fd_budget = 0;  // fds still available for kept-open thread files
  // stat(2) of /proc/PID/fd gives the number of open fds (Linux 6.2+): our own table, never
  // empty, has a size above 0. Checked once, on the real /proc only.
  bool fd_sizes_known = false;

  // `pending`: threads of this listing still to be added after this one (for the fd budget).
  void add_thread(int pid, int tid, std::int64_t now_ns, std::size_t pending);
  ProcessState& process_state(int pid, std::int64_t now_ns);
  int task_dir_fd(int pid);
  util::Result<procfs::Schedstat> read_schedstat(ThreadState& t);
  util::Result<procfs::TaskStat> read_stat(ThreadState& t);
  util::Result<procfs::SyscallState> read_syscall(ThreadState& t);
  util::Result<procfs::TaskFiles> open_once(const ThreadState& t, unsigned which);
  // A thread that ran keeps its stat and syscall open from now on, budget permitting.
  void keep_open_after_run(ThreadState& t);
  // Reads the thread if its poll is due (or `force`); returns whether that cost a read of /proc.
  // Keeps `polled` up to date.
  bool sample_thread(ThreadState& t, std::int64_t now_ns, bool force = false);
  bool sample_thread_files(ThreadState& t, std::int64_t now_ns, bool force);
  // With the iterator, the threads that have a poll of their own (not parked: they ran within
  // the longest backoff), in key order. A tick between iterator reads visits these only: walking
  // the whole thread map every tick to find them was 8% of top's cost on a host of 2,000 threads
  // of which a few dozen run.
  std::set<std::pair<int, int>> polled;
  std::vector<std::pair<int, int>> due_scratch;        // a tick's threads to visit, in turn order
  std::vector<std::pair<int, int>> iter_tids_scratch;  // refresh's (tgid, tid) of the records
  // With the iterator, a thread that stopped running is left to the iterator's reads: no poll of
  // its own until one of them sees it run.
  void park(ThreadState& t) const;
  // The next tick that reads the iterator, and how often: the longest backoff, so a parked
  // thread goes unread no longer than a quiet thread polled from /proc would.
  std::int64_t next_iter_ns = 0;
  // No thread's poll is due before this (0: unknown). Kept by the tick loop and add_thread.
  std::int64_t next_due_ns = 0;
  // Rolling windows read each process's counters (taskstats, io, status) at the window's first
  // listing and at its close: its window's deltas run between the two. Other listings only see
  // whether its cgroup froze. (A diagnosis reads them at every listing.)
  std::int64_t iter_every_ns = kMaxPollBackoffNs;
  std::int64_t samples_per_tick = 1;
  std::pair<int, int> cursor{0, 0};
  // quiet_ok: a process none of whose threads ran since its last read repeats that read's delays
  // and io (taskstats and /proc/PID/io are not read); status and the freezer are read.
  void read_process(ProcessState& p, std::int64_t now_ns, bool first, bool quiet_ok = false);
  // Whether p's cgroup is frozen now. A frozen thread does not run: a process that was not frozen
  // at the last look and was seen to run since is taken as still not frozen (no read of
  // /proc/PID/cgroup, half of the freezer's cost). One that froze after that run is found at the
  // next look, as it runs no more: a freeze is seen one listing later at most, plus the time a run
  // takes to be seen (the iterator's period, 1 to 4 s); a thaw is seen as soon as before.
  bool check_frozen(ProcessState& p, std::int64_t now_ns);
  // The fd tables, fd limits and sockets of every process watched.
  void read_fd_tables(std::int64_t now_ns);
  model::CollectorSample collector_sample() const;
  void emit(model::SampleSink& sink, std::int64_t at_ns);
  // A process's fds as read_fd_tables last found them (read now if it has not yet).
  FdTargetsOf cached_fd_targets();
  std::vector<procfs::FdEntry> scratch_fds;  // cached_fd_targets' answer for an unknown pid
  // The processes with threads watched, in pid order.
  std::vector<int> watched_pids() const;
  // Adds the TCP state table to the tick's system read (window start and end only).
  void add_tcp_table(std::int64_t now_ns);
  // Adds shared memory and its limits to the tick's system read (window end only).
  void add_shm_snapshot();
  // Adds the target's rlimits against their use (window end only).
  void add_rlimit_snapshot();
  std::string tcp_table_problem;
  // A rolling session's last TCP state table (kRollingTcpTableNs).
  std::optional<model::TcpTableSample> last_tcp_table;
  std::unique_ptr<ExactAccounting> exact;  // the exact mode's sums, added to every tick
};

}  // namespace chokepoint::collect::sampler
