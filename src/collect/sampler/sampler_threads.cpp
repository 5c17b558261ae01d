// The sampler's reads of a thread (sampler_impl.h): its counters from the task iterator or
// /proc, its stat and syscall when it ran, the poll backoff.
#include "collect/sampler/sampler_impl.h"

namespace chokepoint::collect::sampler {

namespace {

// What /proc/TID/syscall prints for the task, from its registers: "running" for a task on a CPU
// or runnable (task_current_syscall gives up on those), "-1 sp pc" outside a system call. As of
// the reader's arrival (TaskRecord::state_at_arrival): a task woken since has not run, and its
// registers still hold the call it was blocked in.
procfs::SyscallState syscall_of(const bpf::TaskRecord& r) {
  procfs::SyscallState sc;
  if (r.state_at_arrival == 0) return sc;  // kRunning
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

}  // namespace

void fill_stat(model::ThreadSample& s, const procfs::TaskStat& st) {
  s.has_stat = true;
  s.utime_ns = st.utime_ns;
  s.stime_ns = st.stime_ns;
  s.majflt = st.majflt;
  s.blkio_delay_ns = st.delayacct_blkio_ns.value_or(0);
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

void Sampler::Impl::fill_record(model::ThreadSample& s, const bpf::TaskRecord& r, bool frozen,
                                std::int64_t now_ns) {
  s.run_ns = r.run_ns;
  s.run_delay_ns = r.run_delay_ns;
  s.has_stat = true;
  std::tie(s.utime_ns, s.stime_ns) = adjusted_cputime(r);
  s.majflt = r.majflt;
  s.blkio_delay_ns = r.blkio_delay_ns;
  s.wait = waits.observe(s.key.pid, syscall_of(r), r.state_letter_at_arrival, now_ns);
  s.wait.frozen = frozen;
}

void Sampler::Impl::note_comm(ThreadState& t, model::ThreadSample& s, const std::string& comm,
                              bool kernel_thread) {
  if (comm == t.comm || kernel_thread) return;
  t.comm = comm;
  s.comm = comm;
  if (t.key.tid == t.key.pid) {
    if (auto p = processes.find(t.key.pid); p != processes.end()) p->second.name = comm;
  }
}

void Sampler::Impl::park(ThreadState& t) const {
  t.poll_backoff_ns = max_backoff_ns;
  t.next_poll_ns = std::numeric_limits<std::int64_t>::max();
}

bool Sampler::Impl::sample_thread(ThreadState& t, std::int64_t now_ns, bool force) {
  const bool read = sample_thread_files(t, now_ns, force);
  const std::pair<int, int> key{t.key.pid, t.key.tid};
  if (t.next_poll_ns == std::numeric_limits<std::int64_t>::max()) {
    polled.erase(key);
  } else {
    polled.insert(key);
  }
  return read;
}

bool Sampler::Impl::sample_thread_files(ThreadState& t, std::int64_t now_ns, bool force) {
  if (!force && now_ns < t.next_poll_ns) return false;  // backing off: it has not run for a while
  auto sched = read_counters(t);
  if (!sched) {
    // Vanished: refresh() finishes it. Between full listings only the processes named by events
    // are listed: this names it (a zombie's reaping, for one, sends no event).
    if (proc_events) touched_pids.insert(t.key.pid);
    return true;
  }
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
    process.ran_since_fd_table = true;
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
    note_comm(t, s, r->comm, r->kernel_thread);
    tick.threads.push_back(std::move(s));
    return true;
  }
  keep_open_after_run(t);
  s.run_ns = sched->run_ns;
  s.run_delay_ns = sched->run_delay_ns;
  auto st = read_stat(t);
  if (st) {
    fill_stat(s, *st);
    // kthreadd (pid 2) is every kernel thread's parent, in the host's pid namespace.
    note_comm(t, s, st->comm, process.kernel_thread || st->ppid == 2 || t.key.pid == 2);
    // A thread in state R shows no system call: /proc/TID/syscall prints "running" for a task
    // whose state is TASK_RUNNING (task_current_syscall in lib/syscall.c gives up on it), the
    // state stat prints as R. Most threads polled here are busy ones: not read for them.
    auto sc = st->state == 'R' ? util::Result<procfs::SyscallState>(procfs::SyscallState{})
                               : read_syscall(t);
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

}  // namespace chokepoint::collect::sampler
