// Over 600 lines: the three ways of opening sampling events (per thread, per CPU with a cgroup
// filter, whole host), following threads that start, and draining the rings share one owner of the
// fds and mmaps; the record decoding is already apart (records.cpp).
#include "collect/perf/perf_sampler.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/magic.h>
#include <linux/perf_event.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>
#include <unordered_map>

#include "collect/perf/ring_arena.h"
#include "collect/procfs/proc_fs.h"
#include "util/plural.h"
#include "util/scoped_fd.h"

namespace chokepoint::collect::perf {

std::uint32_t ring_pages_for(double frequency_hz, std::int64_t drain_interval_ns,
                             std::size_t page_bytes, std::uint32_t user_stack_bytes) {
  // A sample with a 64-frame chain is about 600 bytes; hold four drain intervals of them, so a
  // drain that runs late (a busy machine) does not lose samples. DWARF mode adds the registers
  // (abi + 17 values), the stack copy and its two size fields.
  const double sample_bytes =
      600.0 + (user_stack_bytes > 0 ? 8.0 * 18 + 16 + user_stack_bytes : 0.0);
  const double bytes =
      std::max(frequency_hz, 1.0) * static_cast<double>(drain_interval_ns) / 1e9 * sample_bytes * 4;
  std::uint32_t pages = 16;
  while (pages < 4096 && static_cast<double>(pages) * static_cast<double>(page_bytes) < bytes) {
    pages *= 2;
  }
  return pages;
}

util::Result<void> check_user_stack_bytes(std::uint64_t bytes) {
  if (kUserRegsMask == 0) {
    return util::Error{
        "--call-graph dwarf is only supported on x86-64 in this build",
        "use --call-graph fp, and build the profiled code with -fno-omit-frame-pointer", ENOTSUP};
  }
  if (bytes < 8 || bytes > kMaxUserStackBytes || bytes % 8 != 0) {
    return util::Error{
        fmt::format("a user stack copy of {} bytes is not possible", bytes),
        fmt::format("pass a multiple of 8 from 8 to {} (default {}), e.g. --call-graph dwarf,16384",
                    kMaxUserStackBytes, kDefaultUserStackBytes),
        EINVAL};
  }
  return {};
}

bool caps_allow_perf(std::string_view status) {
  auto pos = status.find("CapEff:");
  if (pos == std::string_view::npos) return false;
  std::string hex(status.substr(pos + 7, status.find('\n', pos) - pos - 7));
  std::uint64_t caps = 0;
  try {
    caps = std::stoull(hex, nullptr, 16);
  } catch (...) {
    return false;
  }
  constexpr int kCapSysAdmin = 21;
  constexpr int kCapPerfmon = 38;
  return (caps >> kCapSysAdmin & 1) || (caps >> kCapPerfmon & 1);
}

namespace {

constexpr std::uint64_t kSampleType = PERF_SAMPLE_IP | PERF_SAMPLE_TID | PERF_SAMPLE_TIME |
                                      PERF_SAMPLE_PERIOD | PERF_SAMPLE_CALLCHAIN;
// DWARF mode adds the user registers and the top of the user stack.
constexpr std::uint64_t kDwarfSampleType =
    kSampleType | PERF_SAMPLE_REGS_USER | PERF_SAMPLE_STACK_USER;

std::string read_small(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A sysctl integer, or `fallback` when the file is missing (an old or stripped kernel).
long read_sysctl(const std::string& proc_root, const char* name, long fallback) {
  std::ifstream in(proc_root + "/sys/kernel/" + name);
  long v = fallback;
  if (!(in >> v)) return fallback;
  return v;
}

int perf_event_open(perf_event_attr* attr, pid_t pid, int cpu, int group_fd, unsigned long flags) {
  return static_cast<int>(syscall(SYS_perf_event_open, attr, pid, cpu, group_fd, flags));
}

// "0-3,5" (/sys/devices/system/cpu/online) -> {0,1,2,3,5}.
std::vector<int> online_cpus() {
  std::string text = read_small("/sys/devices/system/cpu/online");
  std::vector<int> cpus;
  std::stringstream ss(text);
  std::string part;
  while (std::getline(ss, part, ',')) {
    int a = 0, b = 0;
    if (std::sscanf(part.c_str(), "%d-%d", &a, &b) == 2) {
      for (int c = a; c <= b; ++c) cpus.push_back(c);
    } else if (std::sscanf(part.c_str(), "%d", &a) == 1) {
      cpus.push_back(a);
    }
  }
  if (cpus.empty()) {
    for (long c = 0; c < sysconf(_SC_NPROCESSORS_ONLN); ++c) cpus.push_back(static_cast<int>(c));
  }
  return cpus;
}

bool is_cgroup2(const std::string& path) {
  struct statfs fs {};
  return statfs(path.c_str(), &fs) == 0 &&
         static_cast<unsigned long>(fs.f_type) == CGROUP2_SUPER_MAGIC;
}

// One event and its ring buffer. Owns the fd; the mapping is the arena's (ring_arena.h), which
// unmaps the rings together.
class Ring {
 public:
  Ring(util::ScopedFd fd, void* base, std::size_t map_bytes, std::size_t page_bytes, int pid,
       int tid)
      : fd_(std::move(fd)),
        base_(base),
        map_bytes_(map_bytes),
        page_bytes_(page_bytes),
        pid_(pid),
        tid_(tid) {}
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;
  ~Ring() = default;
  void* base() const { return base_; }
  int pid() const { return pid_; }
  int tid() const { return tid_; }

  // Decodes everything the kernel wrote since the last drain and hands it back.
  void drain(std::uint64_t sample_type, std::uint64_t regs_user_mask, std::uint32_t max_stack,
             std::vector<std::uint8_t>& scratch, const RecordSink& sink, RecordStats& stats) {
    auto* meta = static_cast<perf_event_mmap_page*>(base_);
    // perf_event_open(2): read data_head with acquire semantics (smp_rmb after the load), and
    // publish data_tail with release semantics once the records are consumed.
    std::uint64_t head = __atomic_load_n(&meta->data_head, __ATOMIC_ACQUIRE);
    std::uint64_t tail = meta->data_tail;
    // data_offset/data_size exist since Linux 4.1; before that the data starts one page in.
    std::uint64_t offset = meta->data_offset ? meta->data_offset : page_bytes_;
    std::uint64_t size = meta->data_size ? meta->data_size : map_bytes_ - page_bytes_;
    RingView view{static_cast<const std::uint8_t*>(base_) + offset, size};
    std::uint64_t new_tail = read_records(view, tail, head, sample_type, max_stack, scratch, sink,
                                          stats, regs_user_mask);
    __atomic_store_n(&meta->data_tail, new_tail, __ATOMIC_RELEASE);
  }

 private:
  util::ScopedFd fd_;
  void* base_ = nullptr;
  std::size_t map_bytes_ = 0;
  std::size_t page_bytes_ = 0;
  int pid_ = 0;
  int tid_ = 0;
};

// `per_cpu`: the refused event was one per CPU (the whole host or a cgroup), which
// perf_event_paranoid 1 and above forbid to unprivileged users whoever owns the processes.
util::Error paranoid_error(int errno_value, int paranoid, bool privileged, bool per_cpu) {
  std::string hint;
  if (!privileged && per_cpu && paranoid >= 1 && paranoid <= 2) {
    hint = fmt::format(
        "kernel.perf_event_paranoid is {}: watching the whole host or a cgroup takes one event "
        "per CPU, which unprivileged users may open only at 0 or below; run as root, grant "
        "CAP_PERFMON, profile one of your own processes with --pid, or set "
        "kernel.perf_event_paranoid=0",
        paranoid);
  } else if (!privileged && paranoid > 2) {
    hint = fmt::format(
        "kernel.perf_event_paranoid is {}, which forbids perf events to unprivileged users; run as "
        "root, grant CAP_PERFMON (setcap cap_perfmon,cap_sys_ptrace+ep chokepoint), or lower it: "
        "sysctl kernel.perf_event_paranoid=1 (2 allows user-space stacks only)",
        paranoid);
  } else if (!privileged) {
    hint = fmt::format(
        "kernel.perf_event_paranoid is {}: without privileges you may profile only your own "
        "processes, and the target belongs to another user (or is not dumpable); run as root or "
        "as its owner, or grant CAP_PERFMON and CAP_SYS_PTRACE",
        paranoid);
  } else {
    hint =
        "the target may run under a security module (SELinux, AppArmor, a seccomp filter in a "
        "container) that forbids perf_event_open";
  }
  return util::errno_error("perf_event_open", errno_value, hint);
}

}  // namespace

struct PerfSampler::Impl {
  PerfOptions options;
  PerfInfo info;
  procfs::ProcFs proc;
  perf_event_attr attr{};
  std::size_t page_bytes = 4096;
  bool privileged = false;
  std::string hardware_error;
  std::string cgroup_fallback_note;
  bool emfile = false;
  std::uint64_t emfile_threads = 0;
  // Threads seen by the last rescan but not opened (out of time), and whether open() left any:
  // then the threads opened by later rescans count as opened late.
  std::uint64_t pending = 0;
  bool late = false;
  // Above this many threads to open under a deadline, they are ranked busiest first (one
  // /proc/PID/task/TID/schedstat read each, a few microseconds against an open's hundreds).
  static constexpr std::size_t kRankAbove = 64;
  std::uint64_t denied_threads = 0;
  // Before the rings: their fds close first, then the arena unmaps them all in a few calls.
  std::unique_ptr<RingArena> arena;
  std::map<int, std::unique_ptr<Ring>> threads;  // per-thread mode, by tid
  std::vector<std::unique_ptr<Ring>> cpus;       // cgroup mode
  std::set<int> dead_tids;                       // drained and closed, never reopened
  std::unordered_map<int, std::string> process_names;
  std::unordered_map<int, std::string> thread_names;
  std::vector<std::uint8_t> scratch;
  PerfRunStats stats;

  explicit Impl(const PerfOptions& o) : options(o), proc(o.proc_root) {}

  // Opens one event; pid is a thread id (cpu -1) or a cgroup fd (with PERF_FLAG_PID_CGROUP).
  // Returns the fd or -errno. Until one open succeeds, each attempt tries hardware cycles first
  // and falls back to cpu-clock; the first success settles the event for all later opens.
  int open_event(int pid, int cpu, unsigned long flags) {
    flags |= PERF_FLAG_FD_CLOEXEC;
    if (info.event_name.empty()) {
      perf_event_attr hw = attr;
      hw.type = PERF_TYPE_HARDWARE;
      hw.config = PERF_COUNT_HW_CPU_CYCLES;
      hw.exclude_idle = 0;  // a halted CPU does not count cycles; some PMUs refuse the bit
      int fd = perf_event_open(&hw, pid, cpu, -1, flags);
      if (fd >= 0) {
        attr = hw;
        info.event_name = "cycles";
        info.hardware = true;
        return fd;
      }
      int e = errno;
      if (e == ESRCH) return -e;  // the thread is gone: decide on the next one
      // ENOENT/EOPNOTSUPP/ENODEV: no PMU (VMs); EINVAL on some virtual PMUs; EACCES when the
      // event is refused. cpu-clock below reports its own error if it fails too.
      hardware_error = std::strerror(e);
      fd = perf_event_open(&attr, pid, cpu, -1, flags);
      if (fd < 0) return -errno;
      info.event_name = "cpu-clock";
      return fd;
    }
    int fd = perf_event_open(&attr, pid, cpu, -1, flags);
    return fd >= 0 ? fd : -errno;
  }

  // mmap's the ring of an open event (taking ownership of fd). nullptr and errno on failure.
  std::unique_ptr<Ring> map_ring(int fd, int pid, int tid) {
    util::ScopedFd owned(fd);
    const std::size_t bytes = page_bytes * (1 + options.ring_data_pages);
    if (!arena) arena = std::make_unique<RingArena>(bytes);
    void* base = arena->map(fd);
    if (base == nullptr) return nullptr;
    return std::make_unique<Ring>(std::move(owned), base, bytes, page_bytes, pid, tid);
  }

  void learn_names(int pid, int tid) {
    if (!process_names.count(pid)) {
      auto st = proc.read_process_stat(pid);
      if (st) process_names[pid] = st->comm;
    }
    if (!thread_names.count(tid)) {
      auto st = proc.read_task_stat(pid, tid);
      if (st) thread_names[tid] = st->comm;
    }
  }

  struct OpenFailure {
    int errno_value = 0;  // 0: opened, or the thread vanished (not a failure)
    bool mmap = false;    // the event opened but its ring could not be mapped
  };

  OpenFailure open_thread(int pid, int tid) {
    int fd = open_event(tid, -1, 0);
    if (fd < 0) return {-fd == ESRCH ? 0 : -fd, false};
    auto ring = map_ring(fd, pid, tid);
    if (!ring) return {errno, true};
    learn_names(pid, tid);
    threads[tid] = std::move(ring);
    ++stats.threads_followed;
    return {};
  }

  // Opens events on the target's threads that have none yet. First call: any failure is an
  // error. Later calls: failures are counted, and EMFILE stops following new threads.
  // Orders (pid, tid) pairs busiest first: by the CPU time they have used, from schedstat
  // (nanoseconds; stat's utime and stime are in 10 ms ticks, which cannot tell a thread that
  // started spinning a second ago from one that wakes for microseconds). A thread whose schedstat
  // cannot be read (it exited, or no CONFIG_SCHED_INFO) keeps its place after the ranked ones.
  void rank_busiest_first(std::vector<std::pair<int, int>>& fresh) {
    std::vector<std::pair<std::uint64_t, std::size_t>> keys;  // (rank, index), higher first
    keys.reserve(fresh.size());
    for (std::size_t i = 0; i < fresh.size(); ++i) {
      std::uint64_t rank = 0;
      if (auto st = proc.read_task_schedstat(fresh[i].first, fresh[i].second)) {
        rank = st->run_ns + 1;
      }
      keys.emplace_back(rank, i);
    }
    std::stable_sort(keys.begin(), keys.end(),
                     [](const auto& a, const auto& b) { return a.first > b.first; });
    std::vector<std::pair<int, int>> ranked;
    ranked.reserve(fresh.size());
    for (const auto& k : keys) ranked.push_back(fresh[k.second]);
    fresh.swap(ranked);
  }

  // Opening stops at the open deadline (first call) or after kRescanSliceNs (later calls); the
  // threads left are counted in `pending` and tried again by the next call. When time is short
  // and the threads many, the busiest are opened first (running now, then by CPU time used):
  // a deadline then cuts the idle ones, which an on-CPU profile would not have sampled anyway.
  util::Result<void> rescan(bool first) {
    auto pids = sampler::resolve_pids(options.target, proc);
    if (!pids) return pids.error();
    std::set<int> live;
    std::vector<std::pair<int, int>> fresh;  // (pid, tid) with no event yet
    for (int pid : *pids) {
      auto tids = proc.list_tids(pid);
      if (!tids) continue;  // exited between the two reads
      for (int tid : *tids) {
        live.insert(tid);
        if (threads.count(tid) || dead_tids.count(tid)) continue;
        if (emfile) {
          ++emfile_threads;
          dead_tids.insert(tid);
          continue;
        }
        fresh.emplace_back(pid, tid);
      }
    }
    const bool timed = !first || options.open_deadline_ns > 0;
    if (timed && fresh.size() > kRankAbove) rank_busiest_first(fresh);
    // A later call's slice starts at its first open: listing thousands of threads is not opening.
    const std::int64_t stop_opening_ns =
        first ? options.open_deadline_ns : util::monotonic_ns() + kRescanSliceNs;
    pending = 0;
    std::uint64_t opened_in_pass = 0;
    for (const auto& [pid, tid] : fresh) {
      // The clock is read every 16 opens; the first thread is always opened.
      if (stop_opening_ns > 0 && opened_in_pass > 0 && opened_in_pass % 16 == 0 &&
          util::monotonic_ns() >= stop_opening_ns) {
        pending = fresh.size() - opened_in_pass;
        break;
      }
      ++opened_in_pass;
      const std::uint64_t followed_before = stats.threads_followed;
      auto f = open_thread(pid, tid);
      const int e = f.errno_value;
      if (!first && late && stats.threads_followed > followed_before) ++stats.threads_opened_late;
      if (e == 0) continue;
      if (first && threads.empty()) return f.mmap ? mmap_error(e) : thread_error(e);
      ++stats.threads_failed;
      dead_tids.insert(tid);
      if (e == EMFILE || e == ENFILE) {
        emfile = true;
        ++emfile_threads;
        pending = 0;
        break;
      }
      if (e == EACCES || e == EPERM) ++denied_threads;
    }
    // Threads that exited: take what their ring still holds, then close it.
    for (auto it = threads.begin(); it != threads.end();) {
      if (live.count(it->first)) {
        ++it;
        continue;
      }
      drain_one(*it->second);
      dead_tids.insert(it->first);
      arena->release(it->second->base());
      it = threads.erase(it);
    }
    if (first && threads.empty()) {
      return util::Error{"the target has no thread to sample",
                         "check that the process is running ('ps -e')", ESRCH};
    }
    if (first && pending > 0) late = true;
    return {};
  }

  util::Error thread_error(int e) {
    if (e == EACCES || e == EPERM) {
      return paranoid_error(e, info.paranoid, privileged, info.per_cpu);
    }
    if (e == EINVAL && info.user_stack_bytes > 0) {
      // The kernel checks sample_regs_user and sample_stack_user and refuses the event with EINVAL
      // when it lacks CONFIG_HAVE_PERF_USER_STACK_DUMP / _REGS (or predates Linux 3.7).
      util::Error err = util::errno_error(
          "perf_event_open refused DWARF-mode sampling (user registers and a " +
              std::to_string(info.user_stack_bytes) + "-byte user stack copy per sample)",
          e,
          "this kernel cannot copy user stacks (PERF_SAMPLE_REGS_USER/STACK_USER); use "
          "--call-graph fp, with the profiled code built with -fno-omit-frame-pointer, or a "
          "smaller copy (--call-graph dwarf,4096)");
      // Not a usage error: the same command works on another kernel.
      err.errno_value = EOPNOTSUPP;
      return err;
    }
    if (e == EMFILE || e == ENFILE) {
      return util::errno_error("perf_event_open", e,
                               "each sampled thread needs one file descriptor: raise the limit "
                               "(ulimit -n 65536) or profile fewer threads");
    }
    if (e == ENOENT || e == EOPNOTSUPP || e == ENODEV) {
      return util::errno_error(
          "perf_event_open: neither hardware cycles nor the software cpu-clock event is available",
          e,
          "this kernel may be built without CONFIG_PERF_EVENTS or run in a sandbox that hides "
          "perf events; check 'perf stat -e cpu-clock true'");
    }
    return util::errno_error("perf_event_open", e,
                             "check that the kernel supports perf events (perf stat true)");
  }

  util::Error mmap_error(int e) {
    return util::errno_error("mmap of the perf ring buffer", e,
                             "the locked-memory budget for perf is used up: raise "
                             "kernel.perf_event_mlock_kb or ulimit -l, or run as root");
  }

  // One event per online CPU: for a cgroup v2 group (PERF_FLAG_PID_CGROUP, pid = the group's
  // directory fd) or, without a group, for everything that runs (pid = -1).
  util::Result<void> open_per_cpu(bool cgroup) {
    util::ScopedFd cg;
    if (cgroup) {
      const std::string& path = options.target.cgroup_path;
      cg.reset(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (!cg.valid()) {
        return util::errno_error("open " + path,
                                 "pass a cgroup v2 directory, e.g. "
                                 "/sys/fs/cgroup/system.slice/x.service");
      }
    }
    for (int cpu : online_cpus()) {
      int fd = cgroup ? open_event(cg.get(), cpu, PERF_FLAG_PID_CGROUP) : open_event(-1, cpu, 0);
      if (fd < 0) {
        if (-fd == ENODEV) continue;  // went offline
        return thread_error(-fd);
      }
      auto ring = map_ring(fd, -1, cpu);
      if (!ring) return mmap_error(errno);
      cpus.push_back(std::move(ring));
      ++stats.threads_followed;
    }
    if (cpus.empty()) return util::Error{"no online CPU to sample on", "", ENODEV};
    return {};
  }

  RecordSink sink_for(const SampleSink& out) {
    RecordSink s;
    s.sample = [this, &out](const Sample& sample) {
      int pid = static_cast<int>(sample.pid), tid = static_cast<int>(sample.tid);
      if (pid == self_pid) return;  // per-CPU mode sees the profiler itself: not the target
      auto p = process_names.find(pid);
      auto t = thread_names.find(tid);
      if (p == process_names.end() || t == thread_names.end()) {
        // cgroup mode sees tasks it never opened: name them once, while they are alive.
        learn_names(pid, tid);
        p = process_names.find(pid);
        t = thread_names.find(tid);
      }
      if (out) {
        out(sample, p == process_names.end() ? std::string_view{} : std::string_view(p->second),
            t == thread_names.end() ? std::string_view{} : std::string_view(t->second));
      }
    };
    s.comm = [this](const Comm& c) {
      thread_names[static_cast<int>(c.tid)] = c.comm;
      if (c.pid == c.tid) process_names[static_cast<int>(c.pid)] = c.comm;
    };
    return s;
  }

  RecordSink record_sink;
  const int self_pid = static_cast<int>(getpid());

  void drain_one(Ring& ring) {
    ring.drain(attr.sample_type, attr.sample_regs_user, info.max_stack, scratch, record_sink,
               stats.records);
  }
  void drain_all() {
    for (auto& [tid, ring] : threads) drain_one(*ring);
    for (auto& ring : cpus) drain_one(*ring);
  }
};

PerfSampler::PerfSampler(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PerfSampler::PerfSampler(PerfSampler&&) noexcept = default;
PerfSampler& PerfSampler::operator=(PerfSampler&&) noexcept = default;
PerfSampler::~PerfSampler() = default;

const PerfInfo& PerfSampler::info() const {
  return impl_->info;
}

util::Result<PerfSampler> PerfSampler::open(const PerfOptions& options) {
  using Kind = sampler::TargetSpec::Kind;
  auto impl = std::make_unique<Impl>(options);
  Impl& s = *impl;
  s.page_bytes = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  if (options.user_stack_bytes > 0) {
    if (auto ok = check_user_stack_bytes(options.user_stack_bytes); !ok) return ok.error();
    s.info.user_stack_bytes = options.user_stack_bytes;
    s.info.regs_user_mask = kUserRegsMask;
  }
  if (options.ring_data_pages == 0) {
    s.options.ring_data_pages = ring_pages_for(options.frequency_hz, options.drain_interval_ns,
                                               s.page_bytes, options.user_stack_bytes);
  }
  const std::uint32_t pages = s.options.ring_data_pages;
  if ((pages & (pages - 1)) != 0) {
    return util::Error{fmt::format("ring buffer of {} pages is not a power of two", pages),
                       "pass 1, 2, 4, 8, ... pages, or 0 to size it by the frequency", EINVAL};
  }
  const long max_rate = read_sysctl(options.proc_root, "perf_event_max_sample_rate", 100000);
  if (!(options.frequency_hz >= 1) || !std::isfinite(options.frequency_hz) ||
      options.frequency_hz > static_cast<double>(max_rate)) {
    return util::Error{
        fmt::format("sampling frequency {} Hz is out of range (1 to {} Hz here)",
                    options.frequency_hz, max_rate),
        fmt::format(
            "pass e.g. --frequency 99; the kernel caps it at kernel.perf_event_max_sample_rate "
            "({})",
            max_rate),
        EINVAL};
  }
  s.info.paranoid = static_cast<int>(read_sysctl(options.proc_root, "perf_event_paranoid", 2));
  s.info.max_stack =
      static_cast<std::uint32_t>(read_sysctl(options.proc_root, "perf_event_max_stack", 127));
  s.privileged = caps_allow_perf(read_small(options.proc_root + "/self/status"));
  // perf_event_open(2): paranoid >= 2 forbids kernel profiling to the unprivileged, > 2 (Debian's
  // default 3) forbids everything; -1 allows all. Kernel frames are dropped, not fatal.
  s.info.kernel_stacks = options.kernel_stacks && (s.privileged || s.info.paranoid < 2);

  if (auto v = sampler::validate(options.target, s.proc); !v) return v.error();

  perf_event_attr& a = s.attr;
  a.size = sizeof a;
  a.type = PERF_TYPE_SOFTWARE;
  a.config = PERF_COUNT_SW_CPU_CLOCK;
  a.freq = 1;
  a.sample_freq = static_cast<std::uint64_t>(std::llround(options.frequency_hz));
  a.sample_type = kSampleType;
  a.exclude_kernel = s.info.kernel_stacks ? 0 : 1;
  a.exclude_callchain_kernel = s.info.kernel_stacks ? 0 : 1;
  a.exclude_hv = 1;
  a.exclude_idle = 1;  // per-CPU cpu-clock would otherwise sample the idle task
  a.comm = 1;          // PERF_RECORD_COMM: thread names as they change (exec, prctl)
  a.sample_max_stack =
      static_cast<std::uint16_t>(std::min<std::uint32_t>(s.info.max_stack, 0xffff));
  a.disabled = 0;
  if (s.info.user_stack_bytes > 0) {
    // The user half of the stack comes from the unwinder; the kernel's frame-pointer walk of it
    // would only cost time and ring space (perf record --call-graph dwarf does the same).
    a.sample_type = kDwarfSampleType;
    a.sample_regs_user = s.info.regs_user_mask;
    a.sample_stack_user = s.info.user_stack_bytes;
    a.exclude_callchain_user = 1;
  }

  if (options.target.kind == Kind::kCgroup) {
    if (is_cgroup2(options.target.cgroup_path)) {
      s.info.per_cpu = true;
      if (auto r = s.open_per_cpu(true); !r) return r.error();
    } else {
      // cgroup v1 needs the perf_event controller's own hierarchy; following the group's tasks
      // thread by thread works for every controller.
      s.cgroup_fallback_note =
          options.target.cgroup_path +
          " is a cgroup v1 directory: sampling its tasks thread by thread (re-read every " +
          fmt::format("{} ms", options.rescan_interval_ns / util::kNsPerMs) +
          ") instead of one event per CPU for the whole group";
    }
  }
  if (options.target.kind == Kind::kHost) {
    s.info.per_cpu = true;
    if (auto r = s.open_per_cpu(false); !r) return r.error();
  }
  if (!s.info.per_cpu) {
    if (auto r = s.rescan(true); !r) return r.error();
  }
  return PerfSampler(std::move(impl));
}

util::Result<PerfRunStats> PerfSampler::run(std::int64_t duration_ns, const std::atomic<bool>* stop,
                                            const SampleSink& sink) {
  Impl& s = *impl_;
  s.record_sink = s.sink_for(sink);
  const std::int64_t start = util::monotonic_ns();
  const std::int64_t end = start + duration_ns;
  std::int64_t next_rescan = start + s.options.rescan_interval_ns;
  while (true) {
    std::int64_t now = util::monotonic_ns();
    if (now >= end || (stop && stop->load())) break;
    std::int64_t wake = std::min(end, now + s.options.drain_interval_ns);
    std::this_thread::sleep_for(std::chrono::nanoseconds(wake - now));
    s.drain_all();
    if (!s.info.per_cpu && util::monotonic_ns() >= next_rescan) {
      next_rescan = util::monotonic_ns() + s.options.rescan_interval_ns;
      auto r = s.rescan(false);
      if (!r) return r.error();
      if (s.threads.empty()) {
        s.stats.target_exited = true;
        break;
      }
    }
  }
  s.drain_all();
  s.stats.threads_never_opened = s.pending;
  s.stats.duration_s = static_cast<double>(util::monotonic_ns() - start) / 1e9;
  PerfRunStats out = s.stats;
  s.record_sink = {};
  return out;
}

std::vector<std::string> PerfSampler::notes() const {
  const Impl& s = *impl_;
  std::vector<std::string> notes;
  if (!s.info.hardware) {
    notes.push_back(
        "sampled with the software cpu-clock event: hardware cycles are not available here (" +
        (s.hardware_error.empty() ? std::string("not tried") : s.hardware_error) + ")");
  }
  if (s.options.kernel_stacks && !s.info.kernel_stacks) {
    notes.push_back(fmt::format(
        "kernel frames are left out: kernel.perf_event_paranoid is {} and this process lacks "
        "CAP_PERFMON; run as root or set it to 1 to see them",
        s.info.paranoid));
  }
  if (!s.cgroup_fallback_note.empty()) notes.push_back(s.cgroup_fallback_note);
  if (!s.info.per_cpu) {
    notes.push_back(fmt::format(
        "threads are found by re-reading the target every {} ms: a thread's first moments before "
        "it is found are not sampled",
        s.options.rescan_interval_ns / util::kNsPerMs));
  }
  if (s.late) {
    notes.push_back(fmt::format(
        "opening one perf event per thread outlasted the start-up budget: {} opened during the "
        "capture (they miss its start){}",
        util::count_of(s.stats.threads_opened_late, "thread was", "threads were"),
        s.stats.threads_never_opened > 0
            ? fmt::format(", {} never sampled", util::count_of(s.stats.threads_never_opened,
                                                               "thread was", "threads were"))
            : std::string()));
  }
  if (s.emfile_threads > 0) {
    notes.push_back(
        fmt::format("{} threads were not sampled: out of file descriptors (EMFILE); "
                    "raise ulimit -n",
                    s.emfile_threads));
  }
  if (s.denied_threads > 0) {
    notes.push_back(
        fmt::format("{} threads were not sampled: perf_event_open was refused "
                    "(EACCES/EPERM)",
                    s.denied_threads));
  }
  if (s.stats.records.throttled > 0) {
    notes.push_back(
        fmt::format("the kernel throttled sampling {} times "
                    "(kernel.perf_cpu_time_max_percent): fewer samples than asked",
                    s.stats.records.throttled));
  }
  if (s.stats.records.malformed > 0) {
    notes.push_back(fmt::format("{} ring-buffer records were malformed and skipped",
                                s.stats.records.malformed));
  }
  return notes;
}

}  // namespace chokepoint::collect::perf
