// The sampler's reads of a process (sampler_impl.h): taskstats, io, status and freezer, its fd
// table, and the TCP, shm and rlimit snapshots of a window's close.
#include "collect/sampler/sampler_impl.h"

namespace chokepoint::collect::sampler {

namespace {

model::GroupDelays group_delays(const netlink::TaskDelays& d) {
  return {d.cpu_delay_ns,       d.blkio_delay_ns,     d.swapin_delay_ns,
          d.freepages_delay_ns, d.thrashing_delay_ns, d.compact_delay_ns};
}

}  // namespace

void Sampler::Impl::read_process(ProcessState& p, std::int64_t now_ns, bool first, bool quiet_ok) {
  p.frozen = check_frozen(p, now_ns);
  model::ProcessSample s;
  s.pid = p.pid;
  s.at_ns = now_ns;
  const bool quiet = quiet_ok && !first && !p.ran_since_read && p.last_read_ns >= 0;
  if (quiet) {
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
  if (quiet && p.status_read_ns >= 0 && now_ns - p.status_read_ns < kQuietStatusNs) {
    s.has_status = true;
    s.rss_bytes = p.rss_bytes;
    s.anon_bytes = p.anon_bytes;
  } else if (auto status = read_process_file<procfs::TaskStatus>(p.status_file, p.pid, "status",
                                                                 procfs::parse_task_status)) {
    if (first) {
      p.name = status->name;
      s.name = status->name;
      s.ppid = status->ppid;
    }
    s.has_status = true;
    s.rss_bytes = status->vm_rss_bytes.value_or(0);
    s.anon_bytes = status->rss_anon_bytes.value_or(0);
    p.status_read_ns = now_ns;
    p.rss_bytes = s.rss_bytes;
    p.anon_bytes = s.anon_bytes;
  }
  tick.processes.push_back(std::move(s));
}

bool Sampler::Impl::check_frozen(ProcessState& p, std::int64_t now_ns) {
  if (p.kernel_thread) return false;
  const bool ran = p.ran_since_freezer;
  const bool skip = p.freezer_read && !p.frozen && ran;
  p.ran_since_freezer = false;
  if (skip || !freezer.available()) return false;
  p.freezer_read = true;
  // Which cgroup it is in is kept for kCgroupRecheckNs (reading /proc/PID/cgroup at every look
  // was half of the freezer's cost), and read again when a frozen process ran: it was thawed, or
  // moved out.
  if (p.cgroup_read_ns < 0 || now_ns - p.cgroup_read_ns >= kCgroupRecheckNs || (p.frozen && ran)) {
    auto text = proc.read_text(std::to_string(p.pid) + "/cgroup", true);
    if (!text) return false;  // gone: the listing finishes it
    p.cgroup_text = std::move(*text);
    p.cgroup_read_ns = now_ns;
  }
  return freezer.frozen_in(p.cgroup_text, now_ns);
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
    // A table of a process none of whose threads ran since it was read is the same (see
    // ran_since_fd_table): not even its size is looked at.
    const bool quiet = opt.rolling && !p.ran_since_fd_table && p.fd_table_size.has_value();
    p.ran_since_fd_table = false;
    const bool sized =
        quiet || (::stat(fd_dir.c_str(), &st) == 0 && (st.st_size > 0 || fd_sizes_known));
    const auto size = quiet ? *p.fd_table_size : static_cast<std::uint64_t>(st.st_size);
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

std::vector<int> Sampler::Impl::watched_pids() const {
  std::vector<int> pids;
  for (const auto& [pid, p] : processes) {
    if (p.threads_watched > 0) pids.push_back(pid);
  }
  return pids;
}

void Sampler::Impl::add_tcp_table(std::int64_t now_ns) {
  // sock_diag sees the real kernel only: a fixture /proc has no sockets behind it.
  if (!tick.system || opt.proc_root != "/proc") return;
  const std::vector<int> pids = watched_pids();
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
    pids = watched_pids();
    if (pids.empty()) return;
  }
  tick.system->shm = take_shm_snapshot(proc, pids, cached_fd_targets());
}

void Sampler::Impl::add_rlimit_snapshot() {
  if (!tick.system || opt.target.kind == TargetSpec::Kind::kHost) return;
  const std::vector<int> pids = watched_pids();
  tick.system->rlimits = take_rlimit_snapshot(proc, pids);
}

}  // namespace chokepoint::collect::sampler
