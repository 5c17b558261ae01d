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
namespace {

constexpr std::int64_t kRefreshTargetNs = 500'000'000;  // re-resolve processes and threads
constexpr std::int64_t kSystemTickNs = 100'000'000;     // run-queue samples
// SamplerOptions::shared_clock: the host's counters and run queue read by another sampler of this
// process at most this long ago are shared.
constexpr std::int64_t kSharedReadNs = 100'000'000;
constexpr std::int64_t kMaxPollBackoffNs = 1'000'000'000;
// Rolling windows (SamplerOptions::rolling) let a quiet thread go unread for up to half a window,
// at most this long: the agent's 10 s windows read an idle thread every 4 s.
constexpr std::int64_t kMaxRollingBackoffNs = 4'000'000'000;
// A rolling session (top, the agent) dumps the TCP state table at a close at most this often and
// repeats the last dump, with the time it was taken, at the closes in between: a dump walks the
// kernel's whole established hash (262,144 buckets here, 12% of top's cost at a dump a second).
constexpr std::int64_t kRollingTcpTableNs = 5'000'000'000;
// One thread in a task iterator's read costs 0.5-0.7 us here; a due thread read from /proc costs
// a schedstat pread (2-5 us) and, when it ran, as it mostly has (a thread that did not run backs
// off), its stat and syscall too, and the opens of those files if it has none kept: 10-35 us. A
// tick reads the iterator instead when at least one thread in this many is due.
constexpr std::size_t kIterThreadsPerProcRead = 10;
// fds kept free for everything else (sockets, /proc reads, the output).
constexpr std::int64_t kReservedFds = 128;
// A thread that ran gets its stat and syscall kept open only while this many fds stay free for
// the schedstat of threads that appear later.
constexpr std::int64_t kLazyOpenReserveFds = 1024;

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
};

model::GroupDelays group_delays(const netlink::TaskDelays& d) {
  return {d.cpu_delay_ns,       d.blkio_delay_ns,     d.swapin_delay_ns,
          d.freepages_delay_ns, d.thrashing_delay_ns, d.compact_delay_ns};
}

// The first point of a grid of `step` on the monotonic clock at or after t (SamplerOptions::
// shared_clock).
std::int64_t grid_point(std::int64_t t, std::int64_t step) {
  return (t + step - 1) / step * step;
}

std::string target_text(const TargetSpec& t) {
  switch (t.kind) {
    case TargetSpec::Kind::kPid: {
      std::string text = std::to_string(t.pid);
      for (pid_t p : t.more_pids) text += "," + std::to_string(p);
      return text;
    }
    case TargetSpec::Kind::kName:
      return t.name;
    case TargetSpec::Kind::kCgroup:
      return t.cgroup_path;
    case TargetSpec::Kind::kCommand:
      return t.command_text;
    case TargetSpec::Kind::kHost:
      return "all processes";
  }
  return "";
}

}  // namespace

struct Sampler::Impl {
  SamplerOptions opt;
  procfs::ProcFs proc;
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
  // Counters of a thread: from this tick's iterator read when it has the thread, else /proc.
  util::Result<procfs::Schedstat> read_counters(ThreadState& t);
  // Reads /proc/PID/<file> of a process through its kept fd (opened on first use while the fd
  // budget allows), or opens it for this read.
  template <typename T, typename Parse>
  util::Result<T> read_process_file(util::ScopedFd& kept, int pid, const char* file, Parse parse);

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
  bool sample_thread(ThreadState& t, std::int64_t now_ns, bool force = false);
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

Sampler::Sampler(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Sampler::~Sampler() = default;

util::Result<std::unique_ptr<Sampler>> Sampler::create(SamplerOptions options) {
  if (options.duration_ns <= 0) {
    return util::Error{"the duration must be above 0", "pass e.g. --duration 5s", EINVAL};
  }
  if (options.interval_ns <= 0 || options.interval_ns > options.duration_ns) {
    return util::Error{"the interval must be above 0 and at most the duration",
                       "pass e.g. --interval 50ms", EINVAL};
  }
  auto impl = std::make_unique<Impl>(std::move(options));
  auto ok = validate(impl->opt.target, impl->proc);
  if (!ok) return ok.error();
  if (impl->opt.split_mode) {
    auto exact = ExactAccounting::create(*impl->opt.split_mode, impl->opt.exact_budget_per_cpu_s);
    if (!exact) return exact.error();
    impl->exact = std::move(*exact);
  }
  return std::unique_ptr<Sampler>(new Sampler(std::move(impl)));
}

void Sampler::Impl::read_process(ProcessState& p, std::int64_t now_ns, bool first, bool quiet_ok) {
  p.frozen = check_frozen(p, now_ns);
  model::ProcessSample s;
  s.pid = p.pid;
  s.at_ns = now_ns;
  if (quiet_ok && !first && !p.ran_since_read && p.last_read_ns >= 0) {
    s.delays = p.delays;
    s.io = p.io;
  } else {
    if (taskstats) {
      if (auto d = taskstats->thread_group(p.pid)) s.delays = group_delays(*d);
    }
    if (auto io =
            read_process_file<procfs::TaskIo>(p.io_file, p.pid, "io", procfs::parse_task_io)) {
      s.io = model::ProcessIo{io->read_bytes, io->write_bytes, io->syscw};
    }
    p.delays = s.delays;
    p.io = s.io;
  }
  p.last_read_ns = now_ns;
  p.ran_since_read = false;
  if (p.kernel_thread && !first) {
    s.has_status = true;  // RSS 0: a kernel thread has no mm
    tick.processes.push_back(std::move(s));
    return;
  }
  if (auto status = read_process_file<procfs::TaskStatus>(p.status_file, p.pid, "status",
                                                          procfs::parse_task_status)) {
    if (first) {
      p.name = status->name;
      s.name = status->name;
      s.ppid = status->ppid;
    }
    s.has_status = true;
    s.rss_bytes = status->vm_rss_bytes.value_or(0);
    s.anon_bytes = status->rss_anon_bytes.value_or(0);
  }
  tick.processes.push_back(std::move(s));
}

bool Sampler::Impl::check_frozen(ProcessState& p, std::int64_t now_ns) {
  if (p.kernel_thread) return false;
  const bool skip = p.freezer_read && !p.frozen && p.ran_since_freezer;
  p.ran_since_freezer = false;
  if (skip) return false;
  p.freezer_read = true;
  return freezer.frozen(p.pid, now_ns);
}

template <typename T, typename Parse>
util::Result<T> Sampler::Impl::read_process_file(util::ScopedFd& kept, int pid, const char* file,
                                                 Parse parse) {
  const std::string path = proc.root() + "/" + std::to_string(pid) + "/" + file;
  ssize_t n = kept.valid() ? ::pread(kept.get(), buf.data(), buf.size(), 0) : -1;
  if (n < 0) {
    // Not kept, or the process it was opened for is gone (ESRCH) and the pid may be another's
    // now: open the path (again).
    if (kept.valid()) {
      kept.reset();
      ++fd_budget;
    }
    util::ScopedFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) return util::errno_error("cannot open " + path);
    n = ::pread(fd.get(), buf.data(), buf.size(), 0);
    if (n < 0) return util::errno_error("cannot read " + path);
    // Kept for the next reads while the budget has room (two fds per process at most).
    if (fd_budget >= 1 + kLazyOpenReserveFds) {
      kept = std::move(fd);
      --fd_budget;
    }
  }
  auto parsed = parse(std::string_view(buf.data(), static_cast<std::size_t>(n)));
  if (!parsed) return util::Error{"cannot parse " + path, "", EPROTO};
  return *parsed;
}

void Sampler::Impl::read_iterator() {
  iter_fresh = false;
  if (!iter) return;
  if (auto r = iter->read(iter_records); !r) {
    iter_problem = r.error().message;
    iter.reset();
    // Parked threads go back to polls of their own.
    for (auto& [key, t] : threads) t.next_poll_ns = std::min(t.next_poll_ns, tick.at_ns);
    next_due_ns = 0;
    return;
  }
  // The kernel walks tasks in pid order; sorting is a check that costs nothing when it did.
  if (!std::is_sorted(iter_records.begin(), iter_records.end(),
                      [](const auto& a, const auto& b) { return a.tid < b.tid; })) {
    std::sort(iter_records.begin(), iter_records.end(),
              [](const auto& a, const auto& b) { return a.tid < b.tid; });
  }
  iter_fresh = true;
  // Any read (a listing's, a close's) checks every thread: the periodic one waits a period more.
  next_iter_ns = tick.at_ns + iter_every_ns;
}

const bpf::TaskRecord* Sampler::Impl::iter_record(int tid) const {
  if (!iter_fresh) return nullptr;
  auto it = std::lower_bound(iter_records.begin(), iter_records.end(), tid,
                             [](const bpf::TaskRecord& r, int t) { return r.tid < t; });
  return it != iter_records.end() && it->tid == tid ? &*it : nullptr;
}

util::Result<procfs::Schedstat> Sampler::Impl::read_counters(ThreadState& t) {
  // A record of another task that reused the tid (its start time differs) is not this thread's.
  if (const auto* r = iter_record(t.key.tid);
      r != nullptr && r->tgid == t.key.pid &&
      (t.key.start_time_ticks == 0 || r->start_time_ticks == t.key.start_time_ticks)) {
    t.in_iterator = true;
    return procfs::Schedstat{r->run_ns, r->run_delay_ns, r->timeslices};
  }
  // Not in this read (it appeared since, or its process was added to the watch since): /proc.
  t.in_iterator = false;
  ++thread_samples;
  return read_schedstat(t);
}

ProcessState& Sampler::Impl::process_state(int pid, std::int64_t now_ns) {
  auto& p = processes[pid];
  if (p.pid == 0) {
    p.pid = pid;
    const std::string dir = proc.root() + "/" + std::to_string(pid) + "/task";
    p.task_dir.reset(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (iter && opt.target.kind != TargetSpec::Kind::kHost) {
      if (auto w = iter->watch(pid); !w) {
        iter_problem = w.error().message;  // no pid option: /proc for everyone from now on
        iter.reset();
        iter_fresh = false;
        for (auto& [key, t] : threads) t.next_poll_ns = std::min(t.next_poll_ns, now_ns);
        next_due_ns = 0;
      }
    }
    read_process(p, now_ns, true);
  }
  return p;
}

int Sampler::Impl::task_dir_fd(int pid) {
  auto it = processes.find(pid);
  return it == processes.end() ? -1 : it->second.task_dir.get();
}

// A file that is not kept open is read through a short-lived fd, opened relative to the task
// directory (the whole path when that is not open).
util::Result<procfs::TaskFiles> Sampler::Impl::open_once(const ThreadState& t, unsigned which) {
  return procfs::TaskFiles::open(proc.root(), t.key.pid, t.key.tid, which, procfs::Units::host(),
                                 task_dir_fd(t.key.pid));
}

util::Result<procfs::Schedstat> Sampler::Impl::read_schedstat(ThreadState& t) {
  if (t.files && t.files->is_open(procfs::TaskFile::kSchedstat)) return t.files->schedstat(buf);
  auto once = open_once(t, static_cast<unsigned>(procfs::TaskFile::kSchedstat));
  if (!once) return once.error();
  return once->schedstat(buf);
}

util::Result<procfs::TaskStat> Sampler::Impl::read_stat(ThreadState& t) {
  if (t.files && t.files->is_open(procfs::TaskFile::kStat)) return t.files->stat(buf);
  auto once = open_once(t, static_cast<unsigned>(procfs::TaskFile::kStat));
  if (!once) return once.error();
  auto st = once->stat(buf);
  // Opened by path, a reused tid would be another thread: the start time tells.
  if (st && t.key.start_time_ticks != 0 && st->start_time_ticks != t.key.start_time_ticks) {
    return util::Error{"the thread exited and its tid was reused", "", ESRCH};
  }
  return st;
}

util::Result<procfs::SyscallState> Sampler::Impl::read_syscall(ThreadState& t) {
  if (t.files && t.files->is_open(procfs::TaskFile::kSyscall)) return t.files->syscall(buf);
  auto once = open_once(t, static_cast<unsigned>(procfs::TaskFile::kSyscall));
  if (!once) return once.error();
  return once->syscall(buf);
}

void Sampler::Impl::keep_open_after_run(ThreadState& t) {
  if (t.files && t.files->is_open(procfs::TaskFile::kStat) &&
      t.files->is_open(procfs::TaskFile::kSchedstat)) {
    return;
  }
  if (fd_budget < 3 + kLazyOpenReserveFds) return;
  int added = 0;
  if (!t.files) {
    auto files = procfs::TaskFiles::open(proc.root(), t.key.pid, t.key.tid, procfs::kSamplerFiles,
                                         procfs::Units::host(), task_dir_fd(t.key.pid));
    if (!files) return;
    t.files.emplace(std::move(files).value());
    added = t.files->open_count();
  } else {
    const int before = t.files->open_count();
    (void)t.files->open_more(procfs::kSamplerFiles, task_dir_fd(t.key.pid));
    added = t.files->open_count() - before;
  }
  t.fds += added;
  fd_budget -= added;
}

namespace {

// What /proc/TID/syscall prints for the task, from its registers: "running" for a task on a CPU
// or runnable (task_current_syscall gives up on those), "-1 sp pc" outside a system call.
procfs::SyscallState syscall_of(const bpf::TaskRecord& r) {
  procfs::SyscallState sc;
  if (r.state == 0) return sc;  // kRunning
  sc.sp = r.sp;
  sc.pc = r.pc;
  if (r.syscall_nr < 0) {
    sc.kind = procfs::SyscallState::Kind::kNotInSyscall;
    return sc;
  }
  sc.kind = procfs::SyscallState::Kind::kInSyscall;
  sc.nr = r.syscall_nr;
  sc.args = r.args;
  return sc;
}

// /proc's utime and stime (cputime_adjust in kernel/sched/cputime.c): the tick-sampled split of
// user and system time scaled to the exact runtime. /proc also keeps each value from going
// backwards across reads; here a step back is absorbed by the model's saturating deltas.
std::pair<std::uint64_t, std::uint64_t> adjusted_cputime(const bpf::TaskRecord& r) {
  if (r.stime_ns == 0) return {r.run_ns, 0};
  if (r.utime_ns == 0) return {0, r.run_ns};
  const auto stime = static_cast<std::uint64_t>(static_cast<long double>(r.stime_ns) *
                                                static_cast<long double>(r.run_ns) /
                                                static_cast<long double>(r.stime_ns + r.utime_ns));
  return {r.run_ns - std::min(stime, r.run_ns), std::min(stime, r.run_ns)};
}

// The first sample of a thread (its counters and wait are filled in by the caller).
model::ThreadSample first_sample(const model::ThreadKey& key, const std::string& comm,
                                 const std::string& process_name, std::int64_t now_ns) {
  model::ThreadSample s;
  s.key = key;
  s.at_ns = now_ns;
  s.prev_poll_ns = now_ns;
  s.first = true;
  s.comm = comm;
  s.process_name = process_name;
  return s;
}

void fill_stat(model::ThreadSample& s, const procfs::TaskStat& st) {
  s.has_stat = true;
  s.utime_ns = st.utime_ns;
  s.stime_ns = st.stime_ns;
  s.majflt = st.majflt;
  s.blkio_delay_ns = st.delayacct_blkio_ns.value_or(0);
}
}  // namespace

void Sampler::Impl::fill_record(model::ThreadSample& s, const bpf::TaskRecord& r, bool frozen,
                                std::int64_t now_ns) {
  s.run_ns = r.run_ns;
  s.run_delay_ns = r.run_delay_ns;
  s.has_stat = true;
  std::tie(s.utime_ns, s.stime_ns) = adjusted_cputime(r);
  s.majflt = r.majflt;
  s.blkio_delay_ns = r.blkio_delay_ns;
  s.wait = waits.observe(s.key.pid, syscall_of(r), r.state_letter, now_ns);
  s.wait.frozen = frozen;
}

void Sampler::Impl::add_thread(int pid, int tid, std::int64_t now_ns, std::size_t pending) {
  ThreadState t;
  t.key = {pid, tid, 0};
  t.last_sample_ns = now_ns;
  t.next_poll_ns = now_ns;
  t.refresh_generation = generation;
  auto& p = process_state(pid, now_ns);
  p.ran_since_read = true;  // a new thread: the process did something
  p.ran_since_freezer = true;
  // In this tick's iterator read: everything the first sample needs, without a file of its own
  // (it gets them once it runs between two iterator reads, keep_open_after_run).
  if (const bpf::TaskRecord* r = iter_record(tid); r != nullptr && r->tgid == pid) {
    p.kernel_thread = r->kernel_thread;
    t.key.start_time_ticks = r->start_time_ticks;
    t.last_sched = {r->run_ns, r->run_delay_ns, r->timeslices};
    t.in_iterator = true;
    park(t);
    model::ThreadSample s = first_sample(t.key, r->comm, p.name, now_ns);
    fill_record(s, *r, p.frozen, now_ns);
    t.recorded_frozen = p.frozen;
    tick.threads.push_back(std::move(s));
    next_due_ns = std::min(next_due_ns, t.next_poll_ns);
    threads.emplace(std::make_pair(pid, tid), std::move(t));
    return;
  }
  // Three fds for this thread only when the budget also has three for every thread still to
  // come in this listing; otherwise schedstat first, for all of them.
  const bool keep_all = fd_budget >= 3 * static_cast<std::int64_t>(pending + 1);
  const unsigned which =
      keep_all ? procfs::kSamplerFiles : static_cast<unsigned>(procfs::TaskFile::kSchedstat);
  if (fd_budget >= 1) {
    auto files = procfs::TaskFiles::open(proc.root(), pid, tid, which, procfs::Units::host(),
                                         p.task_dir.get());
    if (!files) {
      if (procfs::is_vanished(files.error())) return;  // gone between listing and opening
    } else {
      t.files.emplace(std::move(files).value());
      t.fds = t.files->open_count();
      fd_budget -= t.fds;
    }
  }
  // stat and syscall not kept: one short-lived TaskFiles reads both.
  std::optional<procfs::TaskFiles> once;
  if (!t.files || !t.files->is_open(procfs::TaskFile::kStat)) {
    auto o = open_once(t, procfs::TaskFile::kStat | procfs::TaskFile::kSyscall);
    if (o) once.emplace(std::move(o).value());
  }
  auto st = once ? once->stat(buf) : read_stat(t);
  if (!st) {
    fd_budget += t.fds;
    return;
  }
  t.key.start_time_ticks = st->start_time_ticks;
  auto sched = read_counters(t);
  if (!sched) {
    fd_budget += t.fds;
    return;
  }
  t.last_sched = *sched;
  if (iter) park(t);
  model::ThreadSample s = first_sample(t.key, st->comm, p.name, now_ns);
  s.run_ns = sched->run_ns;
  s.run_delay_ns = sched->run_delay_ns;
  fill_stat(s, *st);
  auto sc = once ? once->syscall(buf) : read_syscall(t);
  if (sc) {
    s.wait = waits.observe(pid, *sc, st->state, now_ns);
  } else {
    s.wait.state = st->state;
  }
  s.wait.frozen = p.frozen;
  t.recorded_frozen = p.frozen;
  tick.threads.push_back(std::move(s));
  next_due_ns = std::min(next_due_ns, t.next_poll_ns);
  threads.emplace(std::make_pair(pid, tid), std::move(t));
}

bool Sampler::Impl::same_tasks(const std::vector<int>& pids) const {
  auto t = threads.begin();
  for (int pid : pids) {
    std::size_t watched = 0;
    for (; t != threads.end() && t->first.first == pid; ++t) ++watched;
    auto p = processes.find(pid);
    struct stat st {};
    if (watched == 0 || p == processes.end() || !p->second.task_dir.valid() ||
        ::fstat(p->second.task_dir.get(), &st) != 0 || st.st_nlink != 2 + watched) {
      return false;
    }
  }
  return t == threads.end();  // and no watched process left the target
}

util::Result<void> Sampler::Impl::refresh(std::int64_t now_ns, bool allow_quick) {
  auto pids = resolve_pids(opt.target, proc);
  if (!pids) return pids.error();
  if (allow_quick && same_tasks(*pids)) {
    read_processes(*pids, now_ns);
    return {};
  }
  ++generation;
  last_full_listing_ns = now_ns;
  if (iter && !iter_fresh) read_iterator();
  // This tick's iterator read lists the threads of every process it covers: cheaper than a
  // readdir of /proc/PID/task (0.7 against 1.2 us a thread here). Processes it does not cover
  // (new since the read) are listed from /proc.
  std::map<int, std::vector<int>> iter_tids;
  if (iter_fresh) {
    for (const auto& r : iter_records) iter_tids[r.tgid].push_back(r.tid);
  }
  for (int pid : *pids) {
    if (all_pids_seen.insert(pid).second) tick.new_pids.push_back(pid);
    util::Result<std::vector<int>> tids = std::vector<int>{};
    if (auto covered = iter_tids.find(pid); covered != iter_tids.end()) {
      tids = std::move(covered->second);
    } else {
      tids = proc.list_tids(pid);
    }
    if (!tids) continue;
    std::vector<int> added;
    for (int tid : *tids) {
      auto it = threads.find({pid, tid});
      if (it == threads.end()) {
        added.push_back(tid);
      } else {
        it->second.refresh_generation = generation;
      }
    }
    for (std::size_t i = 0; i < added.size(); ++i) {
      add_thread(pid, added[i], now_ns, added.size() - 1 - i);
    }
  }
  // Threads no longer listed (exited, or moved out of the cgroup) are finished.
  for (auto it = threads.begin(); it != threads.end();) {
    ThreadState& t = it->second;
    if (t.refresh_generation != generation) {
      fd_budget += t.fds;
      tick.ended.push_back({t.key.pid, t.key.tid, t.last_sample_ns, t.key.start_time_ticks});
      it = threads.erase(it);
    } else {
      ++it;
    }
  }
  read_processes(*pids, now_ns);
  return {};
}

void Sampler::Impl::read_processes(const std::vector<int>& pids, std::int64_t now_ns) {
  // Processes that left the target with their last thread are forgotten (a session on a host
  // sees thousands come and go); the others are read.
  std::set<int> with_threads;
  for (const auto& [key, t] : threads) with_threads.insert(key.first);
  for (auto it = processes.begin(); it != processes.end();) {
    const bool listed = std::binary_search(pids.begin(), pids.end(), it->first);
    if (!listed && with_threads.count(it->first) == 0) {
      all_pids_seen.erase(it->first);  // a reused pid is a new process
      fd_budget += (it->second.io_file.valid() ? 1 : 0) + (it->second.status_file.valid() ? 1 : 0);
      if (iter && opt.target.kind != TargetSpec::Kind::kHost) iter->unwatch(it->first);
      it = processes.erase(it);
      continue;
    }
    if (listed) {
      // A rolling window's processes are read once at least: the last window's close (which
      // starts this window too, model::ObservationSink) or, for the others, its first listing.
      if (!opt.rolling || it->second.last_read_ns < last_close_ns) {
        read_process(it->second, now_ns, false);
      } else {
        it->second.frozen = check_frozen(it->second, now_ns);
      }
    }
    ++it;
  }
}

void Sampler::Impl::park(ThreadState& t) const {
  t.poll_backoff_ns = max_backoff_ns;
  t.next_poll_ns = std::numeric_limits<std::int64_t>::max();
}

bool Sampler::Impl::sample_thread(ThreadState& t, std::int64_t now_ns, bool force) {
  if (!force && now_ns < t.next_poll_ns) return false;  // backing off: it has not run for a while
  auto sched = read_counters(t);
  if (!sched) return true;  // vanished: refresh() finishes it
  const bool ran =
      sched->run_ns != t.last_sched.run_ns || sched->run_delay_ns != t.last_sched.run_delay_ns;
  const std::int64_t prev_poll_ns = t.last_sample_ns;
  t.last_sched = *sched;
  t.last_sample_ns = now_ns;
  t.poll_backoff_ns =
      ran ? 0 : std::min(max_backoff_ns, std::max(2 * t.poll_backoff_ns, opt.interval_ns));
  t.next_poll_ns = now_ns + t.poll_backoff_ns;
  if (iter && t.poll_backoff_ns >= max_backoff_ns) park(t);
  // A thread that did not run is still in the wait it was last seen in: nothing to record,
  // unless its cgroup was frozen (or thawed) since its last record: a frozen thread never runs,
  // and its wait is the freezer's from now on.
  ProcessState& process = processes[t.key.pid];
  if (ran) {
    process.ran_since_read = true;
    process.ran_since_freezer = true;
  }
  const bool frozen = process.frozen;
  // A look at the iterator's record is not a read: it does not count against the budget.
  if (!ran && frozen == t.recorded_frozen) return !t.in_iterator;
  t.recorded_frozen = frozen;

  // It ran: read where it is now, and what it waited on since.
  ++deep_samples;
  model::ThreadSample s;
  s.key = t.key;
  s.at_ns = now_ns;
  s.prev_poll_ns = prev_poll_ns;
  if (const bpf::TaskRecord* r = t.in_iterator ? iter_record(t.key.tid) : nullptr) {
    fill_record(s, *r, frozen, now_ns);
    tick.threads.push_back(std::move(s));
    return true;
  }
  keep_open_after_run(t);
  s.run_ns = sched->run_ns;
  s.run_delay_ns = sched->run_delay_ns;
  auto st = read_stat(t);
  if (st) {
    fill_stat(s, *st);
    auto sc = read_syscall(t);
    if (sc) {
      s.wait = waits.observe(t.key.pid, *sc, st->state, now_ns);
    } else {
      s.wait.state = st->state;
    }
    s.wait.frozen = frozen;
  }
  tick.threads.push_back(std::move(s));
  return true;
}

void Sampler::Impl::read_fd_tables(std::int64_t now_ns) {
  for (auto& [pid, p] : processes) {
    model::ProcessSample s;
    s.pid = pid;
    s.at_ns = now_ns;
    // stat(2) of /proc/PID/fd gives the number of open fds since Linux 6.2 (0 before): one call
    // instead of a readdir and a readlink per fd for a process whose table did not change size
    // (a swap of one fd for another of the same count goes unseen until the count moves). The
    // limit is read with the table.
    struct stat st {};
    const std::string fd_dir = proc.root() + "/" + std::to_string(pid) + "/fd";
    // A size of 0 is a table with no fd (a kernel thread's) once the kernel is known to give
    // sizes (fd_sizes_known), and "unknown" before 6.2.
    const bool sized = ::stat(fd_dir.c_str(), &st) == 0 && (st.st_size > 0 || fd_sizes_known);
    const auto size = static_cast<std::uint64_t>(st.st_size);
    if (sized && p.fd_table_size == size) {
      s.open_fds = p.open_fds;
      s.fd_soft_limit = p.fd_soft_limit;
      // Its sockets are looked at again (their counters move; sock_diag lists them anew).
      if (p.has_sockets) waits.read_sockets(pid, now_ns);
      tick.processes.push_back(std::move(s));
      continue;
    }
    auto limits = proc.read_limits(pid);
    if (limits && limits->max_open_files()) s.fd_soft_limit = limits->max_open_files()->soft;
    p.fd_table_size.reset();
    p.fd_targets.reset();
    if (auto fds = proc.read_fd_targets(pid)) {
      s.open_fds = fds->size();
      p.has_sockets = std::any_of(fds->begin(), fds->end(), [](const procfs::FdEntry& e) {
        return e.target.kind == procfs::FdTarget::Kind::kSocket;
      });
      if (sized) p.fd_table_size = size;
      // A last look at the sockets, so every process has them even if no thread waited on one.
      if (p.has_sockets) waits.read_sockets(pid, now_ns);
      if (opt.target.kind != TargetSpec::Kind::kHost) p.fd_targets = std::move(*fds);
    }
    p.open_fds = s.open_fds;
    p.fd_soft_limit = s.fd_soft_limit;
    tick.processes.push_back(std::move(s));
  }
}

model::CollectorSample Sampler::Impl::collector_sample() const {
  model::CollectorSample c;
  {
    std::ifstream in(opt.proc_root + "/sys/kernel/task_delayacct");
    int on = 0;
    c.delayacct_readable = static_cast<bool>(in >> on);
    c.delayacct_on = c.delayacct_readable && on == 1;
  }
  c.taskstats_open = taskstats.has_value();
  c.taskstats_problem = taskstats_error;
  const auto& fs = waits.stack_stats();
  c.stack_scans = fs.scans;
  c.stack_named = fs.named;
  c.stack_cache_hits = fs.cache_hits;
  c.stack_problem = waits.stack_problem();
  c.socket_problem = waits.socket_problem();
  c.socket_order_tried = waits.socket_order_tried();
  c.socket_order_on = waits.socket_order_on();
  c.socket_order_problem = waits.socket_order_problem();
  c.task_iterator_on = iter != nullptr;
  c.task_iterator_problem = iter_problem;
  if (c.socket_problem.empty() && !tcp_table_problem.empty())
    c.socket_problem = "TCP state table: " + tcp_table_problem;
  if (opt.target.kind != TargetSpec::Kind::kHost && !all_pids_seen.empty()) {
    c.cpus_allowed = cpus_allowed_for(*all_pids_seen.begin(), proc);
  }
  rusage ru1{};
  getrusage(RUSAGE_THREAD, &ru1);
  auto tv_ns = [](const timeval& tv) {
    return static_cast<std::int64_t>(tv.tv_sec) * util::kNsPerSec +
           static_cast<std::int64_t>(tv.tv_usec) * 1000;
  };
  c.cpu_ns = tv_ns(ru1.ru_utime) - tv_ns(ru0.ru_utime) + tv_ns(ru1.ru_stime) - tv_ns(ru0.ru_stime);
  c.rss_bytes = static_cast<std::uint64_t>(ru1.ru_maxrss) * 1024;
  c.thread_samples = thread_samples;
  c.deep_samples = deep_samples;
  return c;
}

FdTargetsOf Sampler::Impl::cached_fd_targets() {
  return [this](int pid) -> const std::vector<procfs::FdEntry>* {
    auto it = processes.find(pid);
    if (it != processes.end() && it->second.fd_targets) return &*it->second.fd_targets;
    auto fds = proc.read_fd_targets(pid);
    if (!fds) return nullptr;
    if (it == processes.end()) {
      scratch_fds = std::move(*fds);
      return &scratch_fds;
    }
    // Not counted as a read of the table (fd_table_size stays unset): read_fd_tables reads it.
    it->second.fd_targets = std::move(*fds);
    return &*it->second.fd_targets;
  };
}

void Sampler::Impl::add_tcp_table(std::int64_t now_ns) {
  // sock_diag sees the real kernel only: a fixture /proc has no sockets behind it.
  if (!tick.system || opt.proc_root != "/proc") return;
  std::vector<int> pids;
  for (const auto& [key, t] : threads) {
    if (pids.empty() || pids.back() != key.first) pids.push_back(key.first);
  }
  if (opt.rolling && last_tcp_table && now_ns - last_tcp_table->at_ns < kRollingTcpTableNs) {
    tick.system->tcp_table = last_tcp_table;  // its at_ns says how old it is
    return;
  }
  tick.system->tcp_table =
      take_tcp_table(proc, pids, opt.target.kind == TargetSpec::Kind::kHost, now_ns,
                     cached_fd_targets(), &tcp_table_problem, opt.rolling ? opt.interval_ns : 0);
  if (opt.rolling) last_tcp_table = tick.system->tcp_table;
}

void Sampler::Impl::add_shm_snapshot() {
  if (!tick.system || opt.proc_root != "/proc") return;
  std::vector<int> pids;
  if (opt.target.kind != TargetSpec::Kind::kHost) {
    for (const auto& [key, t] : threads) {
      if (pids.empty() || pids.back() != key.first) pids.push_back(key.first);
    }
    if (pids.empty()) return;
  }
  tick.system->shm = take_shm_snapshot(proc, pids, cached_fd_targets());
}

void Sampler::Impl::add_rlimit_snapshot() {
  if (!tick.system || opt.target.kind == TargetSpec::Kind::kHost) return;
  std::vector<int> pids;
  for (const auto& [key, t] : threads) {
    if (pids.empty() || pids.back() != key.first) pids.push_back(key.first);
  }
  tick.system->rlimits = take_rlimit_snapshot(proc, pids);
}

void Sampler::Impl::emit(model::SampleSink& sink, std::int64_t at_ns) {
  tick.at_ns = at_ns;
  tick.sockets = waits.take_socket_samples();
  if (exact) {
    std::vector<int> pids;
    for (const auto& [pid, p] : processes) pids.push_back(pid);
    exact->fill(tick, pids);
  }
  sink.add(std::move(tick));
  tick = model::Tick{};
  iter_fresh = false;
}

util::Result<std::int64_t> Sampler::Impl::begin(model::SampleSink& sink) {
  // The sampler runs on the calling thread only: its cost is that thread's, not that of a load
  // generator sharing the process (diagnose --load, knee).
  getrusage(RUSAGE_THREAD, &ru0);
  model::RecordingInfo info;
  info.target.kind = kind_name(opt.target.kind);
  info.target.spec = target_text(opt.target);
  info.interval_ns = opt.interval_ns;
  sink.begin(info);
  tick.system = take_system_snapshot(proc, opt.target, shared_read_ns());
  const std::int64_t start_ns = util::monotonic_ns();
  tick.at_ns = start_ns;
  // The target's processes are watched before the first read, so that read has every thread.
  if (iter && opt.target.kind != TargetSpec::Kind::kHost) {
    if (auto pids = resolve_pids(opt.target, proc)) {
      for (int pid : *pids) (void)iter->watch(pid);
    }
  }
  read_iterator();
  next_iter_ns = start_ns + iter_every_ns;
  auto first = refresh(start_ns);
  if (!first) return first.error();
  add_tcp_table(start_ns);
  emit(sink, start_ns);
  return start_ns;
}

util::Result<void> Sampler::run(model::SampleSink& sink) {
  Impl& s = *impl_;
  std::int64_t start_ns = s.last_close_ns;
  if (start_ns == 0) {
    auto began = s.begin(sink);
    if (!began) return began.error();
    start_ns = *began;
  }
  // The listing's schedule carries over from window to window (one session, one schedule).
  if (s.next_refresh_ns == 0) s.next_refresh_ns = start_ns + kRefreshTargetNs;
  std::int64_t& next_refresh = s.next_refresh_ns;
  std::int64_t next_system = start_ns;
  std::int64_t next_counters = start_ns + s.opt.system_every_ns;
  std::int64_t next_fd_tables = start_ns + s.opt.fd_table_every_ns;
  constexpr std::int64_t kForever = std::numeric_limits<std::int64_t>::max();
  std::int64_t deadline =
      s.opt.duration_ns >= kForever - start_ns ? kForever : start_ns + s.opt.duration_ns;
  // A later window's first tick is one interval after the last window's close, or now when the
  // caller took longer than that between windows (the quiet time in between is accounted as any
  // other: the windows stay back to back).
  std::int64_t next_tick = std::max(start_ns + s.opt.interval_ns, util::monotonic_ns());
  if (s.opt.shared_clock && deadline != kForever) {
    deadline = grid_point(start_ns + s.opt.duration_ns / 2, s.opt.duration_ns);
    next_tick = std::min(
        grid_point(std::max(start_ns + 1, util::monotonic_ns()), s.opt.interval_ns), deadline);
  }
  bool exited = false;

  for (;;) {
    std::int64_t now = util::monotonic_ns();
    if (now < next_tick) {
      timespec ts{static_cast<time_t>((next_tick - now) / util::kNsPerSec),
                  static_cast<long>((next_tick - now) % util::kNsPerSec)};
      nanosleep(&ts, nullptr);
      continue;
    }
    now = util::monotonic_ns();
    s.tick.at_ns = now;
    // Every iter_every_ns, one read of the iterator checks every thread, parked ones included;
    // also whenever enough threads are due that their own reads would cost more. Not at the
    // window's last tick: the close reads it right after. A listing that lists the threads reads
    // it too (refresh): the listing takes the threads from it.
    bool iter_tick = s.iter && now >= s.next_iter_ns && now < deadline;
    if (s.iter && !iter_tick && now < deadline && now >= s.next_due_ns) {
      std::size_t due = 0;
      for (const auto& [key, t] : s.threads) due += t.next_poll_ns <= now ? 1 : 0;
      iter_tick = due * kIterThreadsPerProcRead >= s.threads.size();
    }
    if (iter_tick) s.read_iterator();
    if (now >= next_refresh) {
      // Threads are listed at least once an iterator period (a listing with a fresh read costs
      // no more than the read), and in between only when a process's thread count moved.
      const bool quick_ok = s.iter && !s.iter_fresh && s.last_full_listing_ns >= 0 &&
                            now - s.last_full_listing_ns < s.iter_every_ns;
      auto r = s.refresh(now, quick_ok);
      if (!r) return r.error();
      // Listing a large target's threads costs milliseconds: re-list it less often.
      next_refresh = now + (s.threads.size() > 1000 ? 4 : 1) * kRefreshTargetNs;
      if (s.threads.empty()) {
        exited = true;
        break;
      }
    }
    // At most budget thread reads per tick, in round-robin order from where the last tick
    // stopped, so a target with thousands of threads costs a bounded amount and every thread
    // gets its turn. A thread sampled less often still gets exact counters (they are cumulative);
    // only its state is observed less often.
    // With the iterator most threads are parked: a tick before the earliest poll visits none.
    if (s.iter_fresh || now >= s.next_due_ns) {
      std::int64_t budget = s.samples_per_tick;
      std::int64_t next_due = std::numeric_limits<std::int64_t>::max();
      auto it = s.threads.lower_bound(s.cursor);
      std::size_t visited = 0;
      for (; visited < s.threads.size() && budget > 0; ++visited) {
        if (it == s.threads.end()) it = s.threads.begin();
        if (s.sample_thread(it->second, now, s.iter_fresh)) --budget;
        next_due = std::min(next_due, it->second.next_poll_ns);
        ++it;
      }
      s.cursor = it == s.threads.end() ? std::pair<int, int>{0, 0} : it->first;
      // Known only when every thread was visited.
      s.next_due_ns = visited == s.threads.size() ? next_due : 0;
    }
    // Lock waits that coincide with a disk sync in the same process are credited per tick.
    s.tick.lock_credit_ns = s.opt.interval_ns;
    if (now >= next_system) {
      s.tick.runnable = take_runnable(s.proc, s.shared_read_ns());
      next_system = now + kSystemTickNs;
    }
    if (s.opt.fd_table_every_ns > 0 && now >= next_fd_tables) {
      s.read_fd_tables(now);
      next_fd_tables = now + s.opt.fd_table_every_ns;
    }
    if (s.opt.system_every_ns > 0 && now >= next_counters) {
      s.tick.system = take_system_snapshot(s.proc, s.opt.target, s.shared_read_ns());
      s.tick.collector = s.collector_sample();
      next_counters = now + s.opt.system_every_ns;
    }
    s.emit(sink, now);
    if (s.opt.stop && s.opt.stop->load()) break;
    if (now >= deadline) break;
    next_tick += s.opt.interval_ns;
    if (next_tick > deadline) next_tick = deadline;
  }
  const std::int64_t end_ns = util::monotonic_ns();
  s.tick.at_ns = end_ns;
  s.read_iterator();
  // Threads that were backing off get their last read too, so every account covers the window
  // up to its end. In a rolling session, threads quiet for the longest backoff do not: what they
  // did since their last poll is counted in the next window (the one that reads it), nothing is
  // lost, and an idle host thread costs one read a backoff instead of one more a window.
  // With the iterator's read every thread's close costs nothing more: all of them are read.
  for (auto& [key, t] : s.threads) {
    if (s.opt.rolling && !s.iter_fresh && t.poll_backoff_ns >= s.max_backoff_ns) continue;
    if (t.last_sample_ns < end_ns) {
      t.next_poll_ns = 0;
      s.sample_thread(t, end_ns);
    }
  }
  s.next_due_ns = 0;  // the close moved polls: the next tick visits every thread again
  // The processes' counters at the close too: the next window of the session starts from them.
  std::set<int> with_threads;
  for (const auto& [key, t] : s.threads) with_threads.insert(key.first);
  for (auto& [pid, p] : s.processes) {
    if (with_threads.count(pid) != 0)
      s.read_process(p, end_ns, false, s.opt.rolling && s.iter_fresh);
  }
  s.read_fd_tables(end_ns);
  s.tick.system = take_system_snapshot(s.proc, s.opt.target, s.shared_read_ns());
  s.add_tcp_table(end_ns);
  s.add_shm_snapshot();
  s.add_rlimit_snapshot();
  s.tick.closing = true;
  s.tick.target_exited = exited;
  s.tick.collector = s.collector_sample();
  s.emit(sink, end_ns);
  s.last_close_ns = end_ns;
  return {};
}

}  // namespace chokepoint::collect::sampler
