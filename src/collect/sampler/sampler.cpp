#include "collect/sampler/sampler.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/futex.h>
#include <poll.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <unordered_map>

#include "collect/netlink/sock_diag.h"
#include "collect/netlink/taskstats.h"
#include "collect/procfs/freezer.h"
#include "collect/procfs/proc_fs.h"
#include "collect/procfs/task_files.h"
#include "collect/sampler/futex_stack.h"
#include "collect/sampler/sockets.h"
#include "collect/sampler/system_snapshot.h"
#include "model/wait.h"
#include "util/clock.h"
#include "util/counters.h"
#include "util/fd_limit.h"
#include "util/scoped_fd.h"

namespace chokepoint::collect::sampler {
namespace {

using model::Resource;

constexpr std::int64_t kRefreshTargetNs = 500'000'000;   // re-resolve processes and threads
constexpr std::int64_t kNetWaitRefreshNs = 200'000'000;  // re-read a process's sockets
constexpr std::int64_t kSystemTickNs = 100'000'000;      // run-queue samples
constexpr std::int64_t kMaxPollBackoffNs = 1'000'000'000;
// fds kept free for everything else (sockets, /proc reads, the output).
constexpr std::int64_t kReservedFds = 128;
// A thread that ran gets its stat and syscall kept open only while this many fds stay free for
// the schedstat of threads that appear later.
constexpr std::int64_t kLazyOpenReserveFds = 1024;
// CPU a major fault costs in the kernel, reclaim included: about 80 µs measured on the lab's
// paging scenario on this VM (stime / majflt); 50 µs is the conservative bound we attribute.
constexpr double kMajorFaultCpuNs = 50'000;

struct ProcessState {
  int pid = 0;
  // root/PID/task, for openat("TID/<file>"): a fifth cheaper than opening by the full path.
  util::ScopedFd task_dir;
  std::string name;
  std::optional<procfs::TaskIo> io_start, io_last;
  std::uint64_t rss_start = 0, rss_last = 0, rss_max = 0;
  std::uint64_t anon_start = 0, anon_last = 0, anon_max = 0;
  std::uint64_t majflt = 0;
  bool frozen = false;  // its cgroup is frozen (at the last read_process)
  std::set<int> tids_seen;
  // Per tick: does this process wait on the network (outstanding upstream requests, or data
  // queued to slow clients)? Computed lazily, at most once per socket refresh.
  std::int64_t net_wait_at_ns = -1;
  bool net_wait = false;
  std::string net_wait_detail;
  std::size_t socket_count = 0;  // TCP sockets at the last look
  // tcp_info of the process's sockets at first and last look, keyed by inode.
  std::map<std::uint64_t, netlink::TcpSocket> sockets_first, sockets_last;
  // Delay accounting (taskstats) of the thread group at first and last look.
  std::optional<netlink::TaskDelays> delays_first, delays_last;
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
  model::ThreadAccount account;
  procfs::Schedstat last_sched;
  std::uint64_t last_majflt = 0;
  std::uint64_t last_blkio_ns = 0;
  std::uint64_t last_utime_ns = 0;
  std::uint64_t last_stime_ns = 0;
  std::int64_t last_sample_ns = 0;
  model::WaitClass last_wait;
  bool last_in_disk_sync = false;
  bool last_mutex_wait = false;
  std::int64_t refresh_generation = 0;
  // Threads that do not run are read less often: the poll interval doubles after each poll that
  // found the counters unchanged, up to kMaxPollBackoffNs. Cost follows the threads that ran.
  std::int64_t poll_backoff_ns = 0;
  std::int64_t next_poll_ns = 0;
};

}  // namespace

struct Sampler::Impl {
  SamplerOptions opt;
  procfs::ProcFs proc;
  std::array<char, procfs::kTaskFileBufferBytes> buf{};
  std::map<std::pair<int, int>, ThreadState> threads;
  std::vector<model::ThreadAccount> finished;
  std::map<int, ProcessState> processes;
  std::set<int> all_pids_seen;
  SocketTracker sockets{proc};
  // Tells rwlock and semaphore waits from parked threads for FUTEX_WAIT_BITSET sleepers.
  FutexStackScanner futex_stacks{opt.proc_root};
  procfs::FreezerReader freezer{proc};
  // Taskstats (root only): opened once; taskstats_error says why not.
  std::optional<netlink::Taskstats> taskstats;
  std::string taskstats_error;
  std::int64_t generation = 0;
  std::uint64_t thread_samples = 0;
  std::uint64_t deep_samples = 0;
  std::uint64_t syscall_denied = 0;
  std::int64_t lock_behind_disk_ns = 0;
  double run_queue_sum = 0;
  int run_queue_samples = 0;

  explicit Impl(SamplerOptions o) : opt(std::move(o)), proc(opt.proc_root) {
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
  std::int64_t fd_budget = 0;  // fds still available for kept-open thread files

  // `pending`: threads of this listing still to be added after this one (for the fd budget).
  void add_thread(int pid, int tid, std::int64_t now_ns, std::size_t pending);
  ProcessState& process_state(int pid);
  int task_dir_fd(int pid);
  std::int64_t threads_in_disk_sync = 0;  // threads whose last wait is a disk sync
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
  model::WaitObservation observe(ThreadState& t, const procfs::SyscallState& sc, char state,
                                 std::uint64_t majflt_delta, std::int64_t now_ns);
  void compute_net_wait(ProcessState& p, std::int64_t now_ns);
  // What an fd of `pid` is, for the wait classifier: its role and a stable detail text.
  std::pair<model::FdRole, std::string> classify_fd(int pid, int fd, std::int64_t now_ns);
  // poll(2)/ppoll(2) on a few fds: reads the pollfd array from the thread's memory and says
  // whether it waits on a peer (a connection the process opened, or a full send buffer), with the
  // detail. std::nullopt when the array cannot be read (no ptrace access, too many fds).
  std::optional<std::pair<bool, std::string>> poll_waits_on_network(
      int pid, const model::WaitObservation& obs, std::int64_t now_ns);
  bool poll_read_denied = false;  // process_vm_readv failed with EPERM once: do not retry
  void finish_thread(ThreadState& t);
  void read_process(ProcessState& p, bool first);
  model::Observation build(std::int64_t start_ns, std::int64_t end_ns, const SystemSnapshot& sys0,
                           const SystemSnapshot& sys1, const rusage& ru0, bool exited);
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
  return std::unique_ptr<Sampler>(new Sampler(std::move(impl)));
}

void Sampler::Impl::read_process(ProcessState& p, bool first) {
  p.frozen = freezer.frozen(p.pid, util::monotonic_ns());
  if (taskstats) {
    auto d = taskstats->thread_group(p.pid);
    if (d) {
      if (!p.delays_first) p.delays_first = *d;
      p.delays_last = *d;
    }
  }
  auto io = proc.read_process_io(p.pid);
  if (io) {
    if (first) p.io_start = *io;
    p.io_last = *io;
  }
  auto status = proc.read_process_status(p.pid);
  if (status) {
    if (first) p.name = status->name;
    std::uint64_t rss = status->vm_rss_bytes.value_or(0);
    if (first) p.rss_start = rss;
    p.rss_last = rss;
    p.rss_max = std::max(p.rss_max, rss);
    std::uint64_t anon = status->rss_anon_bytes.value_or(0);
    if (first) p.anon_start = anon;
    p.anon_last = anon;
    p.anon_max = std::max(p.anon_max, anon);
  }
}

ProcessState& Sampler::Impl::process_state(int pid) {
  auto& p = processes[pid];
  if (p.pid == 0) {
    p.pid = pid;
    const std::string dir = proc.root() + "/" + std::to_string(pid) + "/task";
    p.task_dir.reset(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    read_process(p, true);
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
  return procfs::TaskFiles::open(proc.root(), t.account.key.pid, t.account.key.tid, which,
                                 procfs::Units::host(), task_dir_fd(t.account.key.pid));
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
  if (st && t.account.key.start_time_ticks != 0 &&
      st->start_time_ticks != t.account.key.start_time_ticks) {
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
                           task_dir_fd(t.account.key.pid));
  const int added = t.files->open_count() - before;
  t.fds += added;
  fd_budget -= added;
}

void Sampler::Impl::add_thread(int pid, int tid, std::int64_t now_ns, std::size_t pending) {
  ThreadState t;
  t.account.key = {pid, tid, 0};
  t.last_sample_ns = now_ns;
  t.next_poll_ns = now_ns;
  t.refresh_generation = generation;
  auto& p = process_state(pid);
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
  t.last_majflt = st->majflt;
  t.last_blkio_ns = st->delayacct_blkio_ns.value_or(0);
  t.last_utime_ns = st->utime_ns;
  t.last_stime_ns = st->stime_ns;
  t.account.key.start_time_ticks = st->start_time_ticks;
  t.account.comm = st->comm;
  t.account.first_seen_ns = now_ns;
  t.account.last_seen_ns = now_ns;
  auto sc = once ? once->syscall(buf) : read_syscall(t);
  if (sc) {
    t.last_wait = model::classify_wait(observe(t, *sc, st->state, 0, now_ns));
  } else {
    ++syscall_denied;
    model::WaitObservation obs;
    obs.state = st->state;
    t.last_wait = model::classify_wait(obs);
  }
  t.account.process_name = p.name;
  p.tids_seen.insert(tid);
  threads.emplace(std::make_pair(pid, tid), std::move(t));
}

util::Result<void> Sampler::Impl::refresh(std::int64_t now_ns) {
  ++generation;
  auto pids = resolve_pids(opt.target, proc);
  if (!pids) return pids.error();
  for (int pid : *pids) {
    all_pids_seen.insert(pid);
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
    if (it->second.refresh_generation != generation) {
      finish_thread(it->second);
      it = threads.erase(it);
    } else {
      ++it;
    }
  }
  for (auto& [pid, p] : processes) {
    if (std::binary_search(pids->begin(), pids->end(), pid)) read_process(p, false);
  }
  return {};
}

void Sampler::Impl::finish_thread(ThreadState& t) {
  if (t.last_in_disk_sync) --threads_in_disk_sync;
  fd_budget += t.fds;
  t.fds = 0;
  t.files.reset();
  finished.push_back(std::move(t.account));
}

// An event loop in epoll_wait waits on the network when its process has a request out on a
// connection it opened (it sent more recently than it received), or data queued to a slow peer.
void Sampler::Impl::compute_net_wait(ProcessState& p, std::int64_t now_ns) {
  // A socket costs a readlink and a pidfd_getfd + TCP_INFO (a few µs): a process with many
  // connections is re-read less often, 200 ms per 256 sockets.
  const std::int64_t refresh_ns =
      kNetWaitRefreshNs *
      std::max<std::int64_t>(1, static_cast<std::int64_t>(p.socket_count / 256));
  if (p.net_wait_at_ns >= 0 && now_ns - p.net_wait_at_ns < refresh_ns) return;
  p.net_wait_at_ns = now_ns;
  p.net_wait = false;
  p.net_wait_detail.clear();
  int outstanding = 0, queued = 0;
  std::string peer;
  const auto all = sockets.sockets_of(p.pid, now_ns);
  p.socket_count = all.size();
  for (const auto& s : all) {
    if (p.sockets_first.find(s.inode) == p.sockets_first.end()) p.sockets_first[s.inode] = s;
    p.sockets_last[s.inode] = s;
    if (s.state != netlink::TcpState::kEstablished) continue;
    bool server_side = sockets.is_server_side(p.pid, s, now_ns);
    if (!server_side && s.last_data_sent_ms < s.last_data_recv_ms) {
      ++outstanding;
      peer = fmt::format("{}:{}", s.remote_addr, s.remote_port);
    }
    if (s.notsent_bytes > 0 || (server_side && s.send_queue_bytes > 64 * 1024)) ++queued;
  }
  if (outstanding > 0) {
    p.net_wait = true;
    // Stable text (no counts), so evidence sums over samples: "upstream 10.0.0.5:5432".
    p.net_wait_detail = "upstream " + peer;
  } else if (queued > 0) {
    p.net_wait = true;
    p.net_wait_detail = "send buffer full";
  }
}

std::pair<model::FdRole, std::string> Sampler::Impl::classify_fd(int pid, int fd,
                                                                 std::int64_t now_ns) {
  model::FdRole role = model::FdRole::kUnknown;
  std::string detail;
  auto target = proc.read_fd_target(pid, fd);  // fails quietly when the fd closed meanwhile
  if (target) {
    using K = procfs::FdTarget::Kind;
    switch (target->kind) {
      case K::kRegularFile:
        role = model::FdRole::kRegularFile;
        detail = target->path;
        break;
      case K::kPipe:
        role = model::FdRole::kPipe;
        detail = "pipe";
        break;
      case K::kEventfd:
        role = model::FdRole::kEventfd;
        detail = "eventfd";
        break;
      case K::kEpoll:
        role = model::FdRole::kEpoll;
        break;
      case K::kTimerfd:
        role = model::FdRole::kTimerfd;
        detail = "timerfd";
        break;
      case K::kSignalfd:
        role = model::FdRole::kSignalfd;
        detail = "signalfd";
        break;
      case K::kDevice:
        role = model::FdRole::kCharDevice;
        detail = target->path;
        break;
      case K::kSocket: {
        role = model::FdRole::kSocketOther;
        auto sock = sockets.socket_for_fd(pid, fd, target->inode, now_ns);
        if (sock) {
          std::string peer = fmt::format("{}:{}", sock->remote_addr, sock->remote_port);
          if (sock->state == netlink::TcpState::kListen) {
            role = model::FdRole::kSocketListen;
          } else if (sockets.is_server_side(pid, *sock, now_ns)) {
            role = model::FdRole::kSocketServer;
            // The client's address without its (ephemeral) port, so evidence sums over
            // connections.
            detail = "client " + sock->remote_addr + " (send buffer full)";
          } else {
            role = model::FdRole::kSocketClient;
            detail = "upstream " + peer;
          }
        }
        break;
      }
      default:
        role = model::FdRole::kOther;
        break;
    }
  }
  return {role, detail};
}

std::optional<std::pair<bool, std::string>> Sampler::Impl::poll_waits_on_network(
    int pid, const model::WaitObservation& obs, std::int64_t now_ns) {
  // A thread polling a handful of fds names them; past this it is an event loop in disguise and
  // the process-wide view (compute_net_wait) is the better guess.
  constexpr std::uint64_t kMaxPollFds = 16;
  const std::uint64_t nfds = obs.args[1];
  if (poll_read_denied || nfds == 0 || nfds > kMaxPollFds) return std::nullopt;
  std::array<pollfd, kMaxPollFds> fds{};
  iovec local{fds.data(), nfds * sizeof(pollfd)};
  iovec remote{reinterpret_cast<void*>(obs.args[0]), nfds * sizeof(pollfd)};
  // process_vm_readv(2) needs ptrace read access (PTRACE_MODE_ATTACH_REALCREDS): root, or the
  // same user where yama's ptrace_scope allows it.
  const ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
  if (n != static_cast<ssize_t>(nfds * sizeof(pollfd))) {
    if (n < 0 && errno == EPERM) poll_read_denied = true;
    return std::nullopt;
  }
  for (std::uint64_t i = 0; i < nfds; ++i) {
    if (fds[i].fd < 0) continue;
    auto [role, detail] = classify_fd(pid, fds[i].fd, now_ns);
    // Waiting to read a connection it opened: an upstream's reply. Waiting to write anywhere: a
    // full send buffer (a slow peer or a full link).
    if (role == model::FdRole::kSocketClient && (fds[i].events & (POLLIN | POLLOUT))) {
      return std::make_pair(true, detail);
    }
    if (role == model::FdRole::kSocketServer && (fds[i].events & POLLOUT)) {
      return std::make_pair(true, detail);
    }
  }
  return std::make_pair(false, std::string());
}

model::WaitObservation Sampler::Impl::observe(ThreadState& t, const procfs::SyscallState& sc,
                                              char state, std::uint64_t majflt_delta,
                                              std::int64_t now_ns) {
  model::WaitObservation obs;
  obs.state = state;
  obs.majflt_delta = majflt_delta;
  obs.frozen = processes[t.account.key.pid].frozen;
  switch (sc.kind) {
    case procfs::SyscallState::Kind::kRunning:
      obs.where = model::SyscallWhere::kRunning;
      return obs;
    case procfs::SyscallState::Kind::kNotInSyscall:
      obs.where = model::SyscallWhere::kNotInSyscall;
      return obs;
    case procfs::SyscallState::Kind::kInSyscall:
      break;
  }
  obs.where = model::SyscallWhere::kInSyscall;
  obs.syscall_nr = static_cast<long>(sc.nr);
  obs.args = sc.args;
  const int pid = t.account.key.pid;
  int fd_arg = model::fd_argument_index(obs.syscall_nr);
  if (fd_arg >= 0) {
    auto fd = static_cast<int>(obs.args[static_cast<std::size_t>(fd_arg)]);
    std::tie(obs.fd_role, obs.fd_detail) = classify_fd(pid, fd, now_ns);
  }
  const long nr = obs.syscall_nr;
  bool event_wait =
      nr == SYS_epoll_pwait || nr == SYS_epoll_pwait2 || nr == SYS_ppoll || nr == SYS_pselect6;
#ifdef SYS_epoll_wait
  event_wait = event_wait || nr == SYS_epoll_wait;
#endif
#ifdef SYS_poll
  event_wait = event_wait || nr == SYS_poll;
#endif
#ifdef SYS_select
  event_wait = event_wait || nr == SYS_select;
#endif
  bool poll_call = nr == SYS_ppoll;
#ifdef SYS_poll
  poll_call = poll_call || nr == SYS_poll;
#endif
  std::optional<std::pair<bool, std::string>> polled;
  if (poll_call) polled = poll_waits_on_network(pid, obs, now_ns);
  if (polled) {
    // The exact fd set beats the process-wide guess: a thread polling an upstream connection
    // waits on the network even when, at jiffy resolution, its socket's last send and receive
    // look simultaneous.
    obs.process_waits_on_network = polled->first;
    obs.fd_detail = polled->second;
  } else if (event_wait) {
    auto& p = processes[pid];
    compute_net_wait(p, now_ns);
    obs.process_waits_on_network = p.net_wait;
    obs.fd_detail = p.net_wait_detail;
  }
  if (nr == SYS_futex && (obs.args[1] & FUTEX_CMD_MASK) == FUTEX_WAIT_BITSET) {
    obs.futex_caller = futex_stacks.caller(pid, obs.args[0], sc.sp, sc.pc, now_ns);
  }
  return obs;
}

bool Sampler::Impl::sample_thread(ThreadState& t, std::int64_t now_ns) {
  if (now_ns < t.next_poll_ns) return false;  // backing off: it has not run for a while
  ++thread_samples;
  auto sched = read_schedstat(t);
  if (!sched) return true;  // vanished: refresh() finishes it
  model::Interval iv;
  iv.wall_ns = now_ns - t.last_sample_ns;
  iv.on_cpu_ns =
      static_cast<std::int64_t>(util::saturating_delta(t.last_sched.run_ns, sched->run_ns));
  iv.cpu_wait_ns = static_cast<std::int64_t>(
      util::saturating_delta(t.last_sched.run_delay_ns, sched->run_delay_ns));
  const bool ran =
      sched->run_ns != t.last_sched.run_ns || sched->run_delay_ns != t.last_sched.run_delay_ns;
  t.last_sched = *sched;
  t.last_sample_ns = now_ns;
  t.account.last_seen_ns = now_ns;
  t.poll_backoff_ns =
      ran ? 0 : std::min(kMaxPollBackoffNs, std::max(2 * t.poll_backoff_ns, opt.interval_ns));
  t.next_poll_ns = now_ns + t.poll_backoff_ns;

  if (ran) {
    // It ran: read where it is now, and what it waited on since.
    ++deep_samples;
    keep_open_after_run(t);
    auto st = read_stat(t);
    if (!st) return true;
    std::uint64_t majflt_delta = util::saturating_delta(t.last_majflt, st->majflt);
    std::uint64_t du = util::saturating_delta(t.last_utime_ns, st->utime_ns);
    std::uint64_t ds = util::saturating_delta(t.last_stime_ns, st->stime_ns);
    t.last_majflt = st->majflt;
    const std::uint64_t blkio = st->delayacct_blkio_ns.value_or(0);
    t.account.blkio_delay_ns +=
        static_cast<std::int64_t>(util::saturating_delta(t.last_blkio_ns, blkio));
    t.last_blkio_ns = blkio;
    t.last_utime_ns = st->utime_ns;
    t.last_stime_ns = st->stime_ns;
    auto sc = read_syscall(t);
    model::WaitObservation obs;
    if (sc) {
      obs = observe(t, *sc, st->state, majflt_delta, now_ns);
    } else {
      ++syscall_denied;
      obs.state = st->state;
      obs.majflt_delta = majflt_delta;
    }
    model::WaitClass wait = model::classify_wait(obs);
    const bool in_disk_sync =
        obs.where == model::SyscallWhere::kInSyscall && model::is_disk_sync_syscall(obs.syscall_nr);
    // Kernel time of a thread that was inside fsync at both ends of the interval is disk work.
    // Kernel time of a thread that took major faults is fault and reclaim work, up to
    // kMajorFaultCpuNs per fault (the faults are on its critical path; the cap keeps a network
    // server with a rare fault from turning its syscall time into memory).
    const double kernel_ns =
        iv.on_cpu_ns * (du + ds > 0 ? static_cast<double>(ds) / static_cast<double>(du + ds) : 0.0);
    if (in_disk_sync && t.last_in_disk_sync) {
      iv.kernel_work_ns = static_cast<std::int64_t>(kernel_ns);
      iv.kernel_work_resource = Resource::kDisk;
    } else if (majflt_delta > 0) {
      iv.kernel_work_ns = static_cast<std::int64_t>(
          std::min(kernel_ns, static_cast<double>(majflt_delta) * kMajorFaultCpuNs));
      iv.kernel_work_resource = Resource::kMemory;
    }
    // The off-CPU time of the interval: if it is seen running now, the last wait it was in.
    iv.wait = (wait.resource == Resource::kOnCpu) ? t.last_wait : wait;
    const bool mutex_now = model::is_lock_queue(wait);
    if (mutex_now && t.last_mutex_wait) iv.cpu_wait_resource = Resource::kLock;
    iv.majflt_delta = majflt_delta;
    if (wait.resource != Resource::kOnCpu) {
      t.last_wait = wait;
      threads_in_disk_sync += (in_disk_sync ? 1 : 0) - (t.last_in_disk_sync ? 1 : 0);
      t.last_in_disk_sync = in_disk_sync;
      t.last_mutex_wait = mutex_now;
    }
    processes[t.account.key.pid].majflt += majflt_delta;
  } else {
    // A thread frozen while it slept does not run: only its process says it is frozen now.
    iv.wait = processes[t.account.key.pid].frozen ? model::frozen_wait() : t.last_wait;
  }
  model::add_interval(t.account, iv);
  return true;
}

util::Result<model::Observation> Sampler::run() {
  Impl& s = *impl_;
  rusage ru0{};
  // The sampler runs on the calling thread only: its cost is that thread's, not that of a load
  // generator sharing the process (diagnose --load, knee).
  getrusage(RUSAGE_THREAD, &ru0);
  SystemSnapshot sys0 = take_system_snapshot(s.proc, s.opt.target);
  const std::int64_t start_ns = util::monotonic_ns();
  auto first = s.refresh(start_ns);
  if (!first) return first.error();
  std::int64_t next_refresh = start_ns + kRefreshTargetNs;
  std::int64_t next_system = start_ns;
  std::int64_t deadline = start_ns + s.opt.duration_ns;
  std::int64_t next_tick = start_ns + s.opt.interval_ns;
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
    // Lock waits that coincide with a disk sync in the same process: the lock is held across IO.
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
    // Two passes over every thread: only when some thread is in a disk sync at all (at 10,000
    // threads the passes cost more than the sampling itself).
    if (s.threads_in_disk_sync > 0) {
      std::map<int, int> disk_sync_threads;
      for (auto& [key, t] : s.threads) {
        if (t.last_in_disk_sync) ++disk_sync_threads[key.first];
      }
      for (auto& [key, t] : s.threads) {
        if (t.last_mutex_wait && disk_sync_threads[key.first] > 0) {
          s.lock_behind_disk_ns += s.opt.interval_ns;
        }
      }
    }
    if (now >= next_system) {
      auto la = s.proc.read_loadavg();
      if (la) {
        s.run_queue_sum += static_cast<double>(la->runnable);
        ++s.run_queue_samples;
      }
      next_system = now + kSystemTickNs;
    }
    if (s.opt.stop && s.opt.stop->load()) break;
    if (now >= deadline) break;
    next_tick += s.opt.interval_ns;
    if (next_tick > deadline) next_tick = deadline;
  }
  const std::int64_t end_ns = util::monotonic_ns();
  // Threads that were backing off get their last interval too, so every account covers the
  // window up to its end.
  for (auto& [key, t] : s.threads) {
    if (t.last_sample_ns < end_ns) {
      t.next_poll_ns = 0;
      s.sample_thread(t, end_ns);
    }
  }
  SystemSnapshot sys1 = take_system_snapshot(s.proc, s.opt.target);
  return s.build(start_ns, end_ns, sys0, sys1, ru0, exited);
}

model::Observation Sampler::Impl::build(std::int64_t start_ns, std::int64_t end_ns,
                                        const SystemSnapshot& sys0, const SystemSnapshot& sys1,
                                        const rusage& ru0, bool exited) {
  model::Observation obs;
  obs.target.kind = kind_name(opt.target.kind);
  switch (opt.target.kind) {
    case TargetSpec::Kind::kPid:
      obs.target.spec = std::to_string(opt.target.pid);
      break;
    case TargetSpec::Kind::kName:
      obs.target.spec = opt.target.name;
      break;
    case TargetSpec::Kind::kCgroup:
      obs.target.spec = opt.target.cgroup_path;
      break;
    case TargetSpec::Kind::kCommand:
      obs.target.spec = opt.target.command_text;
      break;
    case TargetSpec::Kind::kHost:
      obs.target.spec = "all processes";
      break;
  }
  obs.target.pids.assign(all_pids_seen.begin(), all_pids_seen.end());
  obs.duration_ns = end_ns - start_ns;
  obs.interval_ns = opt.interval_ns;
  obs.target_exited = exited;
  finished.reserve(finished.size() + threads.size());
  for (auto& [key, t] : threads) finished.push_back(std::move(t.account));
  obs.threads = std::move(finished);
  obs.lock_wait_behind_disk_ns = lock_behind_disk_ns;

  const double secs = static_cast<double>(obs.duration_ns) / 1e9;
  for (auto& [pid, p] : processes) {
    model::ProcessSummary ps;
    ps.pid = pid;
    ps.name = p.name;
    ps.threads = static_cast<int>(p.tids_seen.size());
    ps.rss_start_bytes = p.rss_start;
    ps.rss_end_bytes = p.rss_last;
    ps.rss_max_bytes = p.rss_max;
    ps.anon_start_bytes = p.anon_start;
    ps.anon_end_bytes = p.anon_last;
    ps.anon_max_bytes = p.anon_max;
    ps.majflt = p.majflt;
    if (p.delays_first && p.delays_last) {
      const auto& a = *p.delays_first;
      const auto& b = *p.delays_last;
      ps.has_delays = true;
      ps.delay_cpu_ns = util::saturating_delta(a.cpu_delay_ns, b.cpu_delay_ns);
      ps.delay_blkio_ns = util::saturating_delta(a.blkio_delay_ns, b.blkio_delay_ns);
      ps.delay_swapin_ns = util::saturating_delta(a.swapin_delay_ns, b.swapin_delay_ns);
      ps.delay_reclaim_ns = util::saturating_delta(a.freepages_delay_ns, b.freepages_delay_ns);
      ps.delay_thrashing_ns = util::saturating_delta(a.thrashing_delay_ns, b.thrashing_delay_ns);
      ps.delay_compact_ns = util::saturating_delta(a.compact_delay_ns, b.compact_delay_ns);
    }
    if (p.io_start && p.io_last) {
      ps.read_bytes = util::saturating_delta(p.io_start->read_bytes, p.io_last->read_bytes);
      ps.write_bytes = util::saturating_delta(p.io_start->write_bytes, p.io_last->write_bytes);
      ps.syscw = util::saturating_delta(p.io_start->syscw, p.io_last->syscw);
    }
    auto limits = proc.read_limits(pid);
    if (limits && limits->max_open_files()) ps.fd_soft_limit = limits->max_open_files()->soft;
    auto fds = proc.read_fd_targets(pid);
    if (fds) {
      ps.open_fds = fds->size();
      // A last look at the sockets, so every process has them even if no thread waited on one.
      p.net_wait_at_ns = -1;
      compute_net_wait(p, end_ns);
      std::set<std::string> peers;
      std::uint64_t acked = 0;
      for (const auto& [inode, s] : p.sockets_last) {
        if (s.state == netlink::TcpState::kListen) {
          ++ps.listeners;
          ps.listen_sockets.push_back(fmt::format("{}:{} backlog {}, accept queue {}", s.local_addr,
                                                  s.local_port, s.send_queue_bytes,
                                                  s.recv_queue_bytes));
          continue;
        }
        if (s.state != netlink::TcpState::kEstablished) continue;
        if (sockets.is_server_side(pid, s, end_ns)) {
          ++ps.server_connections;
        } else {
          ++ps.client_connections;
          peers.insert(fmt::format("{}:{}", s.remote_addr, s.remote_port));
          ps.upstream_rtt_us_max = std::max<std::uint64_t>(ps.upstream_rtt_us_max, s.rtt_us);
        }
        ps.notsent_bytes += s.notsent_bytes;
        auto f = p.sockets_first.find(inode);
        if (f != p.sockets_first.end()) {
          ps.sndbuf_limited_us +=
              util::saturating_delta(f->second.sndbuf_limited_us, s.sndbuf_limited_us);
          ps.rwnd_limited_us +=
              util::saturating_delta(f->second.rwnd_limited_us, s.rwnd_limited_us);
          acked += util::saturating_delta(f->second.bytes_acked, s.bytes_acked);
        }
      }
      ps.upstream_peers.assign(peers.begin(), peers.end());
      ps.bytes_sent_per_s =
          secs > 0 ? static_cast<std::uint64_t>(static_cast<double>(acked) / secs) : 0;
    }
    obs.processes.push_back(std::move(ps));
  }

  obs.system = summarize_system(sys0, sys1, secs);
  if (run_queue_samples > 0) obs.system.run_queue_avg = run_queue_sum / run_queue_samples;
  if (opt.target.kind != TargetSpec::Kind::kHost && !obs.target.pids.empty()) {
    obs.system.cpus_allowed = cpus_allowed_for(obs.target.pids.front(), proc);
  }

  obs.sources = system_sources(sys1);
  {
    std::ifstream in(opt.proc_root + "/sys/kernel/task_delayacct");
    int on = 0;
    bool readable = static_cast<bool>(in >> on);
    std::int64_t blkio = 0;
    for (const auto& t : obs.threads) blkio += t.blkio_delay_ns;
    obs.sources.push_back(
        {"delay accounting", readable && on == 1,
         fmt::format("exact time blocked on block IO ({:.3f} s over the target's threads; only "
                     "tasks started "
                     "after kernel.task_delayacct was switched on carry it)",
                     static_cast<double>(blkio) / 1e9),
         readable
             ? "run as root: diagnose switches kernel.task_delayacct on for the run (tasks started "
               "after that carry data, e.g. with -- COMMAND), or set it before starting the service"
             : "this kernel has no kernel.task_delayacct"});
    std::uint64_t memory_ns = 0, blkio_ns = 0;
    for (const auto& ps : obs.processes) {
      memory_ns += ps.delay_memory_ns();
      blkio_ns += ps.delay_blkio_ns;
    }
    obs.sources.push_back(
        {"taskstats", taskstats.has_value() && readable && on == 1,
         fmt::format("exact swap-in, reclaim, thrashing and compaction delays per process ({:.3f} "
                     "s memory, {:.3f} s block IO over the target)",
                     static_cast<double>(memory_ns) / 1e9, static_cast<double>(blkio_ns) / 1e9),
         taskstats ? (readable && on == 1 ? "" : "kernel.task_delayacct is off")
                   : taskstats_error});
  }
  obs.sources.insert(
      obs.sources.begin(),
      {"schedstat", true, "exact on-CPU and run-queue wait time of every thread", ""});
  obs.sources.push_back(
      {"thread state sampling", syscall_denied == 0,
       fmt::format("thread state, syscall and fd every {} ms for threads that ran",
                   opt.interval_ns / 1'000'000),
       syscall_denied == 0 ? ""
                           : fmt::format("{} reads of /proc/TID/syscall were refused: run as "
                                         "root or as the target's owner to see what threads "
                                         "wait on",
                                         syscall_denied)});
  {
    const auto& fs = futex_stacks.stats();
    obs.sources.push_back(
        {"stack scan", futex_stacks.problem().empty(),
         fmt::format("the libc function under each futex(FUTEX_WAIT_BITSET) sleep tells rwlock and "
                     "semaphore waits (lock) from parked threads (idle): {} stacks read, {} named, "
                     "{} answers from the cache",
                     fs.scans, fs.named, fs.cache_hits),
         futex_stacks.problem().empty()
             ? ""
             : futex_stacks.problem() +
                   ": run as root or as the target's owner (reading a thread's stack needs ptrace "
                   "access); until then rwlock and semaphore waits read as idle"});
  }
  std::string diag_problem = sockets.problem();
  obs.sources.push_back({"tcp_info (sock_diag)", diag_problem.empty(),
                         "per-connection RTT, queues, send-buffer-limited time", diag_problem});

  rusage ru1{};
  getrusage(RUSAGE_THREAD, &ru1);
  auto tv_s = [](const timeval& tv) { return static_cast<double>(tv.tv_sec) + tv.tv_usec / 1e6; };
  obs.overhead.cpu_s =
      tv_s(ru1.ru_utime) - tv_s(ru0.ru_utime) + tv_s(ru1.ru_stime) - tv_s(ru0.ru_stime);
  obs.overhead.rss_bytes = static_cast<std::uint64_t>(ru1.ru_maxrss) * 1024;
  obs.overhead.thread_samples = thread_samples;
  obs.overhead.deep_samples = deep_samples;
  return obs;
}

}  // namespace chokepoint::collect::sampler
