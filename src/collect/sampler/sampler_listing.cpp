// The sampler's listing of its target (sampler_impl.h): processes and threads that appear are
// added (read for the first time), those gone are finished.
#include "collect/sampler/sampler_impl.h"

namespace chokepoint::collect::sampler {

namespace {

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

}  // namespace

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

void Sampler::Impl::add_thread(int pid, int tid, std::int64_t now_ns, std::size_t pending) {
  ThreadState t;
  t.key = {pid, tid, 0};
  t.last_sample_ns = now_ns;
  t.next_poll_ns = now_ns;
  t.refresh_generation = generation;
  auto& p = process_state(pid, now_ns);
  p.ran_since_read = true;  // a new thread: the process did something
  p.ran_since_freezer = true;
  p.ran_since_fd_table = true;
  // In this tick's iterator read: everything the first sample needs, without a file of its own
  // (it gets them once it runs between two iterator reads, keep_open_after_run).
  if (const bpf::TaskRecord* r = iter_record(tid); r != nullptr && r->tgid == pid) {
    p.kernel_thread = r->kernel_thread;
    t.key.start_time_ticks = r->start_time_ticks;
    t.last_sched = {r->run_ns, r->run_delay_ns, r->timeslices};
    t.in_iterator = true;
    park(t);
    model::ThreadSample s = first_sample(t.key, r->comm, p.name, now_ns);
    t.comm = r->comm;
    fill_record(s, *r, p.frozen, now_ns);
    t.recorded_frozen = p.frozen;
    tick.threads.push_back(std::move(s));
    next_due_ns = std::min(next_due_ns, t.next_poll_ns);
    threads.emplace(std::make_pair(pid, tid), std::move(t));
    ++p.threads_watched;
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
  t.comm = st->comm;
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
  ++p.threads_watched;
}

bool Sampler::Impl::same_tasks(const std::vector<int>& pids) const {
  std::size_t with_threads = 0;
  for (const auto& [pid, p] : processes) with_threads += p.threads_watched > 0 ? 1 : 0;
  if (with_threads != pids.size()) return false;  // a watched process left the target, or one came
  for (int pid : pids) {
    auto p = processes.find(pid);
    struct stat st {};
    if (p == processes.end() || p->second.threads_watched == 0 || !p->second.task_dir.valid() ||
        ::fstat(p->second.task_dir.get(), &st) != 0 ||
        st.st_nlink != 2 + p->second.threads_watched) {
      return false;
    }
  }
  return true;
}

void Sampler::Impl::open_proc_events() {
  if (opt.target.kind != TargetSpec::Kind::kHost) return;  // no line: the host's listing only
  if (!opt.proc_events) {
    proc_events_problem = "switched off (SamplerOptions::proc_events)";
  } else if (opt.proc_root != "/proc") {
    proc_events_problem = "not used for a /proc other than the host's";
  } else if (auto c = netlink::ProcConnector::open(
                 opt.proc_events_receive_bytes > 0 ? opt.proc_events_receive_bytes
                                                   : netlink::ProcConnector::kDefaultReceiveBytes);
             c) {
    proc_events.emplace(std::move(*c));
  } else {
    proc_events_problem = c.error().message;
  }
}

bool Sampler::Impl::drain_proc_events() {
  if (!proc_events) return false;
  event_scratch.clear();
  auto drained = proc_events->drain(event_scratch);
  if (!drained) {
    proc_events_problem = drained.error().message;
    proc_events.reset();
    return true;  // every listing lists /proc from now on, starting now
  }
  const int self = getpid();
  for (const netlink::ProcEvent& e : event_scratch) {
    if (e.tgid == self) continue;  // the sampler's own threads are not watched
    switch (e.kind) {
      case netlink::ProcEvent::Kind::kFork:  // a new process or a new thread of one
      case netlink::ProcEvent::Kind::kExec:
        // An exec: the other threads exit (their exits come), and a non-leader that exec'd takes
        // the leader's tid with no exit of its own (de_thread in fs/exec.c): listed again.
        touched_pids.insert(e.tgid);
        break;
      case netlink::ProcEvent::Kind::kExit:
        touched_pids.insert(e.tgid);
        exits_pending.emplace(e.tgid, e.pid);
        break;
      case netlink::ProcEvent::Kind::kComm:
        // A thread's name is its first sample's (model/samples.h); a thread not added yet has
        // its new name read when it is.
        break;
    }
  }
  // A storm's events are not kept in the scratch's capacity once read.
  if (event_scratch.capacity() > 4096) std::vector<netlink::ProcEvent>().swap(event_scratch);
  if (drained->overflowed) {
    ++proc_events_lost;
    listing_needed = true;
    return true;
  }
  return false;
}

std::map<std::pair<int, int>, ThreadState>::iterator Sampler::Impl::finish_thread(
    std::map<std::pair<int, int>, ThreadState>::iterator it) {
  ThreadState& t = it->second;
  fd_budget += t.fds;
  tick.ended.push_back({t.key.pid, t.key.tid, t.last_sample_ns, t.key.start_time_ticks});
  polled.erase(it->first);
  if (auto p = processes.find(it->first.first); p != processes.end()) --p->second.threads_watched;
  return threads.erase(it);
}

util::Result<void> Sampler::Impl::refresh_touched(std::int64_t now_ns) {
  // Taken whole: a process with an exit still listed is touched again below.
  std::vector<int> touched(touched_pids.begin(), touched_pids.end());
  touched_pids.clear();
  std::vector<int> added;
  for (int pid : touched) {
    auto tids = proc.list_tids(pid);
    if (!tids) {
      // Gone, or came and went since the last refresh (never listed: nothing to forget).
      host_pids.erase(pid);
      exits_pending.erase(exits_pending.lower_bound({pid, std::numeric_limits<int>::min()}),
                          exits_pending.upper_bound({pid, std::numeric_limits<int>::max()}));
      for (auto it = threads.lower_bound({pid, std::numeric_limits<int>::min()});
           it != threads.end() && it->first.first == pid;) {
        it = finish_thread(it);
      }
      continue;
    }
    std::sort(tids->begin(), tids->end());
    host_pids.insert(pid);
    if (all_pids_seen.insert(pid).second) tick.new_pids.push_back(pid);
    // Both in tid order: watched threads no longer listed are finished, listed ones not watched
    // are added.
    added.clear();
    auto watched = threads.lower_bound({pid, std::numeric_limits<int>::min()});
    for (int tid : *tids) {
      while (watched != threads.end() && watched->first.first == pid &&
             watched->first.second < tid) {
        watched = finish_thread(watched);
      }
      if (watched != threads.end() && watched->first == std::pair{pid, tid}) {
        ++watched;
      } else {
        added.push_back(tid);
      }
    }
    while (watched != threads.end() && watched->first.first == pid)
      watched = finish_thread(watched);
    for (std::size_t i = 0; i < added.size(); ++i) {
      add_thread(pid, added[i], now_ns, added.size() - 1 - i);
    }
    // An exit whose task is still listed (a zombie): looked at again until it is gone.
    for (auto e = exits_pending.lower_bound({pid, std::numeric_limits<int>::min()});
         e != exits_pending.end() && e->first == pid;) {
      if (std::binary_search(tids->begin(), tids->end(), e->second)) {
        touched_pids.insert(pid);
        ++e;
      } else {
        e = exits_pending.erase(e);
      }
    }
  }
  const std::vector<int> pids(host_pids.begin(), host_pids.end());
  read_processes(pids, now_ns);
  return {};
}

util::Result<void> Sampler::Impl::refresh(std::int64_t now_ns, bool allow_quick) {
  if (proc_events && !listing_needed) return refresh_touched(now_ns);
  auto pids = resolver.pids();
  if (!pids) return pids.error();
  ++full_listings;
  if (proc_events) {
    // Every process is listed now: the events drained so far are accounted for, but for exits
    // still listed (zombies), whose reaping sends no event.
    host_pids = std::set<int>(pids->begin(), pids->end());
    touched_pids.clear();
    for (const auto& [pid, tid] : exits_pending) touched_pids.insert(pid);
    listing_needed = false;
    allow_quick = false;
  }
  if (allow_quick && same_tasks(*pids)) {
    read_processes(*pids, now_ns);
    return {};
  }
  ++generation;
  last_full_listing_ns = now_ns;
  if (iter && !iter_fresh) read_iterator();
  // This tick's iterator read lists the threads of every process it covers: cheaper than a
  // readdir of /proc/PID/task (0.7 against 1.2 us a thread here). Processes it does not cover
  // (new since the read) are listed from /proc. The records' (tgid, tid), sorted: a process's
  // threads are one range of it.
  std::vector<std::pair<int, int>>& iter_tids = iter_tids_scratch;
  iter_tids.clear();
  if (iter_fresh) {
    for (const auto& r : iter_records) iter_tids.emplace_back(r.tgid, r.tid);
    std::sort(iter_tids.begin(), iter_tids.end());
  }
  std::vector<int> tids;
  std::vector<int> added;
  for (int pid : *pids) {
    if (all_pids_seen.insert(pid).second) tick.new_pids.push_back(pid);
    tids.clear();
    const auto first = std::lower_bound(iter_tids.begin(), iter_tids.end(),
                                        std::pair{pid, std::numeric_limits<int>::min()});
    const auto last =
        std::upper_bound(first, iter_tids.end(), std::pair{pid, std::numeric_limits<int>::max()});
    if (first != last) {
      for (auto r = first; r != last; ++r) tids.push_back(r->second);
    } else if (auto listed = proc.list_tids(pid)) {
      tids = std::move(*listed);
      std::sort(tids.begin(), tids.end());
    } else {
      continue;
    }
    // Both in (pid, tid) order: one pass over the process's watched threads.
    added.clear();
    auto watched = threads.lower_bound({pid, 0});
    for (int tid : tids) {
      const std::pair<int, int> key{pid, tid};
      while (watched != threads.end() && watched->first < key) ++watched;
      if (watched != threads.end() && watched->first == key) {
        watched->second.refresh_generation = generation;
        ++watched;
      } else {
        added.push_back(tid);
      }
    }
    for (std::size_t i = 0; i < added.size(); ++i) {
      add_thread(pid, added[i], now_ns, added.size() - 1 - i);
    }
  }
  // Threads no longer listed (exited, or moved out of the cgroup) are finished.
  for (auto it = threads.begin(); it != threads.end();) {
    it = it->second.refresh_generation != generation ? finish_thread(it) : std::next(it);
  }
  read_processes(*pids, now_ns);
  return {};
}

void Sampler::Impl::read_processes(const std::vector<int>& pids, std::int64_t now_ns) {
  // Processes that left the target with their last thread are forgotten (a session on a host
  // sees thousands come and go); the others are read.
  for (auto it = processes.begin(); it != processes.end();) {
    const bool listed = std::binary_search(pids.begin(), pids.end(), it->first);
    if (!listed && it->second.threads_watched == 0) {
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

}  // namespace chokepoint::collect::sampler
