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

#include "collect/netlink/sock_diag.h"
#include "collect/netlink/taskstats.h"
#include "collect/procfs/freezer.h"
#include "collect/procfs/proc_fs.h"
#include "collect/procfs/task_files.h"
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
constexpr std::int64_t kMaxPollBackoffNs = 1'000'000'000;
// Rolling windows (SamplerOptions::rolling) let a quiet thread go unread for up to half a window,
// at most this long: the agent's 10 s windows read an idle thread every 4 s.
constexpr std::int64_t kMaxRollingBackoffNs = 4'000'000'000;
// fds kept free for everything else (sockets, /proc reads, the output).
constexpr std::int64_t kReservedFds = 128;
// A thread that ran gets its stat and syscall kept open only while this many fds stay free for
// the schedstat of threads that appear later.
constexpr std::int64_t kLazyOpenReserveFds = 1024;

struct ProcessState {
  int pid = 0;
  // root/PID/task, for openat("TID/<file>"): a fifth cheaper than opening by the full path.
  util::ScopedFd task_dir;
  std::string name;
  bool frozen = false;  // its cgroup is frozen (at the last read_process)
  // The last read of its fd table (read_fd_tables): a table whose size is unchanged and that
  // held no socket is not read again; what it held is repeated.
  std::optional<std::uint64_t> fd_table_size;  // st_size of /proc/PID/fd: the open fds (6.2+)
  std::optional<std::uint64_t> open_fds, fd_soft_limit;
  bool has_sockets = false;
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

std::string target_text(const TargetSpec& t) {
  switch (t.kind) {
    case TargetSpec::Kind::kPid:
      return std::to_string(t.pid);
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
  std::int64_t generation = 0;
  std::uint64_t thread_samples = 0;
  std::uint64_t deep_samples = 0;
  rusage ru0{};
  model::Tick tick;  // the tick being read
  // The last window's closing tick (0: no window yet): the next window starts there.
  std::int64_t last_close_ns = 0;
  std::int64_t next_refresh_ns = 0;  // the next listing of the target's processes and threads

  // The longest a thread that does not run goes unread.
  std::int64_t max_backoff_ns = kMaxPollBackoffNs;

  explicit Impl(SamplerOptions o) : opt(std::move(o)), proc(opt.proc_root) {
    if (opt.rolling) {
      max_backoff_ns = std::clamp(opt.duration_ns / 2, kMaxPollBackoffNs, kMaxRollingBackoffNs);
    }
    samples_per_tick =
        std::max<std::int64_t>(1, opt.max_thread_samples_per_s * opt.interval_ns / util::kNsPerSec);
    // Kept-open files need fds: take the hard limit, and leave a reserve for everything else.
    if (const std::uint64_t soft = util::raise_fd_limit_to_hard(); soft > 0) {
      const std::uint64_t limit = std::min<std::uint64_t>(soft, 1u << 20);
      fd_budget = std::max<std::int64_t>(0, static_cast<std::int64_t>(limit) - kReservedFds);
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
  }

  util::Result<void> refresh(std::int64_t now_ns);
  // The first tick of a session: sink.begin, the system counters, every thread read.
  util::Result<std::int64_t> begin(model::SampleSink& sink);
  std::int64_t fd_budget = 0;  // fds still available for kept-open thread files

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
  // Reads the thread if its poll is due; returns whether it did.
  bool sample_thread(ThreadState& t, std::int64_t now_ns);
  std::int64_t samples_per_tick = 1;
  std::pair<int, int> cursor{0, 0};
  void read_process(ProcessState& p, std::int64_t now_ns, bool first);
  // The fd tables, fd limits and sockets of every process watched.
  void read_fd_tables(std::int64_t now_ns);
  model::CollectorSample collector_sample() const;
  void emit(model::SampleSink& sink, std::int64_t at_ns);
  // Adds the TCP state table to the tick's system read (window start and end only).
  void add_tcp_table(std::int64_t now_ns);
  // Adds shared memory and its limits to the tick's system read (window end only).
  void add_shm_snapshot();
  std::string tcp_table_problem;
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

void Sampler::Impl::read_process(ProcessState& p, std::int64_t now_ns, bool first) {
  p.frozen = freezer.frozen(p.pid, now_ns);
  model::ProcessSample s;
  s.pid = p.pid;
  s.at_ns = now_ns;
  if (taskstats) {
    if (auto d = taskstats->thread_group(p.pid)) s.delays = group_delays(*d);
  }
  if (auto io = proc.read_process_io(p.pid)) {
    s.io = model::ProcessIo{io->read_bytes, io->write_bytes, io->syscw};
  }
  if (auto status = proc.read_process_status(p.pid)) {
    if (first) {
      p.name = status->name;
      s.name = status->name;
    }
    s.has_status = true;
    s.rss_bytes = status->vm_rss_bytes.value_or(0);
    s.anon_bytes = status->rss_anon_bytes.value_or(0);
  }
  tick.processes.push_back(std::move(s));
}

ProcessState& Sampler::Impl::process_state(int pid, std::int64_t now_ns) {
  auto& p = processes[pid];
  if (p.pid == 0) {
    p.pid = pid;
    const std::string dir = proc.root() + "/" + std::to_string(pid) + "/task";
    p.task_dir.reset(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
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
  if (!t.files || t.files->is_open(procfs::TaskFile::kStat)) return;
  if (fd_budget < 2 + kLazyOpenReserveFds) return;
  const int before = t.files->open_count();
  (void)t.files->open_more(procfs::TaskFile::kStat | procfs::TaskFile::kSyscall,
                           task_dir_fd(t.key.pid));
  const int added = t.files->open_count() - before;
  t.fds += added;
  fd_budget -= added;
}

namespace {
void fill_stat(model::ThreadSample& s, const procfs::TaskStat& st) {
  s.has_stat = true;
  s.utime_ns = st.utime_ns;
  s.stime_ns = st.stime_ns;
  s.majflt = st.majflt;
  s.blkio_delay_ns = st.delayacct_blkio_ns.value_or(0);
}
}  // namespace

void Sampler::Impl::add_thread(int pid, int tid, std::int64_t now_ns, std::size_t pending) {
  ThreadState t;
  t.key = {pid, tid, 0};
  t.last_sample_ns = now_ns;
  t.next_poll_ns = now_ns;
  t.refresh_generation = generation;
  auto& p = process_state(pid, now_ns);
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
  auto sched = read_schedstat(t);
  auto st = once ? once->stat(buf) : read_stat(t);
  if (!sched || !st) {
    fd_budget += t.fds;
    return;
  }
  t.last_sched = *sched;
  t.key.start_time_ticks = st->start_time_ticks;
  model::ThreadSample s;
  s.key = t.key;
  s.at_ns = now_ns;
  s.prev_poll_ns = now_ns;
  s.first = true;
  s.comm = st->comm;
  s.process_name = p.name;
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
  threads.emplace(std::make_pair(pid, tid), std::move(t));
}

util::Result<void> Sampler::Impl::refresh(std::int64_t now_ns) {
  ++generation;
  auto pids = resolve_pids(opt.target, proc);
  if (!pids) return pids.error();
  for (int pid : *pids) {
    if (all_pids_seen.insert(pid).second) tick.new_pids.push_back(pid);
    auto tids = proc.list_tids(pid);
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
      tick.ended.push_back({t.key.pid, t.key.tid, t.last_sample_ns});
      it = threads.erase(it);
    } else {
      ++it;
    }
  }
  // Processes that left the target with their last thread are forgotten (a session on a host
  // sees thousands come and go); the others are read.
  std::set<int> with_threads;
  for (const auto& [key, t] : threads) with_threads.insert(key.first);
  for (auto it = processes.begin(); it != processes.end();) {
    const bool listed = std::binary_search(pids->begin(), pids->end(), it->first);
    if (!listed && with_threads.count(it->first) == 0) {
      all_pids_seen.erase(it->first);  // a reused pid is a new process
      it = processes.erase(it);
      continue;
    }
    if (listed) read_process(it->second, now_ns, false);
    ++it;
  }
  return {};
}

bool Sampler::Impl::sample_thread(ThreadState& t, std::int64_t now_ns) {
  if (now_ns < t.next_poll_ns) return false;  // backing off: it has not run for a while
  ++thread_samples;
  auto sched = read_schedstat(t);
  if (!sched) return true;  // vanished: refresh() finishes it
  const bool ran =
      sched->run_ns != t.last_sched.run_ns || sched->run_delay_ns != t.last_sched.run_delay_ns;
  const std::int64_t prev_poll_ns = t.last_sample_ns;
  t.last_sched = *sched;
  t.last_sample_ns = now_ns;
  t.poll_backoff_ns =
      ran ? 0 : std::min(max_backoff_ns, std::max(2 * t.poll_backoff_ns, opt.interval_ns));
  t.next_poll_ns = now_ns + t.poll_backoff_ns;
  // A thread that did not run is still in the wait it was last seen in: nothing to record,
  // unless its cgroup was frozen (or thawed) since its last record: a frozen thread never runs,
  // and its wait is the freezer's from now on.
  const bool frozen = processes[t.key.pid].frozen;
  if (!ran && frozen == t.recorded_frozen) return true;
  t.recorded_frozen = frozen;

  // It ran: read where it is now, and what it waited on since.
  ++deep_samples;
  keep_open_after_run(t);
  model::ThreadSample s;
  s.key = t.key;
  s.at_ns = now_ns;
  s.prev_poll_ns = prev_poll_ns;
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
    const bool sized = ::stat(fd_dir.c_str(), &st) == 0 && st.st_size > 0;
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
    if (auto fds = proc.read_fd_targets(pid)) {
      s.open_fds = fds->size();
      p.has_sockets = std::any_of(fds->begin(), fds->end(), [](const procfs::FdEntry& e) {
        return e.target.kind == procfs::FdTarget::Kind::kSocket;
      });
      if (sized) p.fd_table_size = size;
      // A last look at the sockets, so every process has them even if no thread waited on one.
      if (p.has_sockets) waits.read_sockets(pid, now_ns);
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

void Sampler::Impl::add_tcp_table(std::int64_t now_ns) {
  // sock_diag sees the real kernel only: a fixture /proc has no sockets behind it.
  if (!tick.system || opt.proc_root != "/proc") return;
  std::vector<int> pids;
  for (const auto& [key, t] : threads) {
    if (pids.empty() || pids.back() != key.first) pids.push_back(key.first);
  }
  tick.system->tcp_table = take_tcp_table(proc, pids, opt.target.kind == TargetSpec::Kind::kHost,
                                          now_ns, &tcp_table_problem);
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
  tick.system->shm = take_shm_snapshot(proc, pids);
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
  tick.system = take_system_snapshot(proc, opt.target);
  const std::int64_t start_ns = util::monotonic_ns();
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
  const std::int64_t deadline =
      s.opt.duration_ns >= kForever - start_ns ? kForever : start_ns + s.opt.duration_ns;
  // A later window's first tick is one interval after the last window's close, or now when the
  // caller took longer than that between windows (the quiet time in between is accounted as any
  // other: the windows stay back to back).
  std::int64_t next_tick = std::max(start_ns + s.opt.interval_ns, util::monotonic_ns());
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
    if (now >= next_refresh) {
      auto r = s.refresh(now);
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
    std::int64_t budget = s.samples_per_tick;
    auto it = s.threads.lower_bound(s.cursor);
    for (std::size_t visited = 0; visited < s.threads.size() && budget > 0; ++visited) {
      if (it == s.threads.end()) it = s.threads.begin();
      if (s.sample_thread(it->second, now)) --budget;
      ++it;
    }
    s.cursor = it == s.threads.end() ? std::pair<int, int>{0, 0} : it->first;
    // Lock waits that coincide with a disk sync in the same process are credited per tick.
    s.tick.lock_credit_ns = s.opt.interval_ns;
    if (now >= next_system) {
      if (auto la = s.proc.read_loadavg()) s.tick.runnable = la->runnable;
      next_system = now + kSystemTickNs;
    }
    if (s.opt.fd_table_every_ns > 0 && now >= next_fd_tables) {
      s.read_fd_tables(now);
      next_fd_tables = now + s.opt.fd_table_every_ns;
    }
    if (s.opt.system_every_ns > 0 && now >= next_counters) {
      s.tick.system = take_system_snapshot(s.proc, s.opt.target);
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
  // Threads that were backing off get their last read too, so every account covers the window
  // up to its end. In a rolling session, threads quiet for the longest backoff do not: what they
  // did since their last poll is counted in the next window (the one that reads it), nothing is
  // lost, and an idle host thread costs one read a backoff instead of one more a window.
  for (auto& [key, t] : s.threads) {
    if (s.opt.rolling && t.poll_backoff_ns >= s.max_backoff_ns) continue;
    if (t.last_sample_ns < end_ns) {
      t.next_poll_ns = 0;
      s.sample_thread(t, end_ns);
    }
  }
  // The processes' counters at the close too: the next window of the session starts from them.
  std::set<int> with_threads;
  for (const auto& [key, t] : s.threads) with_threads.insert(key.first);
  for (auto& [pid, p] : s.processes) {
    if (with_threads.count(pid) != 0) s.read_process(p, end_ns, false);
  }
  s.read_fd_tables(end_ns);
  s.tick.system = take_system_snapshot(s.proc, s.opt.target);
  s.add_tcp_table(end_ns);
  s.add_shm_snapshot();
  s.tick.closing = true;
  s.tick.target_exited = exited;
  s.tick.collector = s.collector_sample();
  s.emit(sink, end_ns);
  s.last_close_ns = end_ns;
  return {};
}

}  // namespace chokepoint::collect::sampler
