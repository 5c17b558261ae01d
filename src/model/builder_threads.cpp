// The thread deltas of model::ObservationBuilder (builder_state.h): each thread sample's interval
// and its time split, quiet time in the last wait, threads that ended, and the lookup of a tick's
// threads.
#include <algorithm>
#include <utility>

#include "model/builder_state.h"
#include "util/counters.h"

namespace chokepoint::model::builder_internal {
namespace {

// CPU a major fault costs in the kernel, reclaim included: about 80 µs measured on the lab's
// paging scenario on this VM (stime / majflt); 50 µs is the conservative bound we attribute.
constexpr double kMajorFaultCpuNs = 50'000;

std::int64_t delta_ns(std::uint64_t before, std::uint64_t after) {
  return static_cast<std::int64_t>(util::saturating_delta(before, after));
}

}  // namespace

void Builder::add_quiet(ThreadTrack& t, std::int64_t from, std::int64_t to) {
  from = std::max(from, start_);
  to = std::min(to, end_);
  if (to <= from) return;
  Interval iv;
  iv.wall_ns = to - from;
  iv.wait = t.last_wait;
  add_interval(t.account, iv);
  t.exact.sampled(iv);
  // After a read that found it running, it stopped in a wait no read saw.
  if (t.last_read_running) pool_off_cpu(t.ratio, iv);
}

void Builder::renamed(ThreadTrack& t, const std::string& comm) {
  t.account.comm = comm;
  const int pid = t.account.key.pid;
  if (t.account.key.tid != pid) return;
  // The main thread's name is the process's (an exec, or prctl on the main thread): its
  // threads' and its summary's from now on.
  ProcessTrack& p = processes_[pid];
  p.name = comm;
  for (const int tid : p.tids) {
    if (auto it = threads_.find({pid, tid}); it != threads_.end())
      it->second.account.process_name = comm;
  }
}

void Builder::thread_sample(const ThreadSample& s) {
  const auto id = std::make_pair(s.key.pid, s.key.tid);
  auto it = find_thread(id, thread_cursor_);
  if (s.first) {
    // A first read without stat, or of a thread already watched, says nothing usable.
    if (!s.has_stat || it != threads_.end()) return;
    ThreadTrack t;
    t.exact = ExactSplit(processes_[s.key.pid].waits.get());
    t.account.key = s.key;
    t.account.comm = s.comm;
    t.account.process_name = s.process_name;
    t.account.first_seen_ns = s.at_ns;
    t.account.last_seen_ns = s.at_ns;
    t.run_ns = s.run_ns;
    t.run_delay_ns = s.run_delay_ns;
    t.majflt = s.majflt;
    t.blkio_ns = s.blkio_delay_ns;
    t.utime_ns = s.utime_ns;
    t.stime_ns = s.stime_ns;
    t.last_ns = s.at_ns;
    WaitObservation obs = s.wait;
    obs.majflt_delta = 0;
    t.last_wait = classify_wait(obs);
    t.last_read_running = t.last_wait.resource == Resource::kOnCpu;
    t.exact.observe(obs, t.last_wait, ExactSplit::kFirstReadWeight);
    if (in_window(s.at_ns) && obs.where == SyscallWhere::kUnknown) ++syscall_denied_;
    processes_[s.key.pid].tids.insert(s.key.tid);
    thread_cursor_ = threads_.emplace_hint(thread_cursor_, id, std::move(t));
    new_thread_in_tick_ = true;
    return;
  }
  if (it == threads_.end()) return;
  ThreadTrack& t = it->second;
  if (s.at_ns < t.last_ns) return;  // out of order: a broken recording
  if (!s.comm.empty() && s.comm != t.account.comm) renamed(t, s.comm);
  // The polls that found it unchanged: still in the wait it was last seen in.
  const std::int64_t prev = std::clamp(s.prev_poll_ns, t.last_ns, s.at_ns);
  add_quiet(t, t.last_ns, prev);
  const bool count = s.at_ns > start_ && s.at_ns <= end_;
  Interval iv;
  iv.wall_ns = s.at_ns - std::max(prev, start_);
  iv.on_cpu_ns = delta_ns(t.run_ns, s.run_ns);
  iv.cpu_wait_ns = delta_ns(t.run_delay_ns, s.run_delay_ns);
  // Only between intervals of the window: one the window's start cuts has its counters from
  // before the window, and a window carries nothing in, so that it is what a builder over the
  // same ticks alone gives.
  if (count && prev >= start_) {
    carry_over(iv, t.carry);
  } else {
    t.carry = {};
  }
  t.run_ns = s.run_ns;
  t.run_delay_ns = s.run_delay_ns;
  t.last_ns = s.at_ns;
  t.account.last_seen_ns = s.at_ns;
  if (!s.has_stat) return;  // it ran, but vanished before its state was read

  const std::uint64_t majflt_delta = util::saturating_delta(t.majflt, s.majflt);
  const std::uint64_t du = util::saturating_delta(t.utime_ns, s.utime_ns);
  const std::uint64_t ds = util::saturating_delta(t.stime_ns, s.stime_ns);
  t.majflt = s.majflt;
  if (count) t.account.blkio_delay_ns += delta_ns(t.blkio_ns, s.blkio_delay_ns);
  t.blkio_ns = s.blkio_delay_ns;
  t.utime_ns = s.utime_ns;
  t.stime_ns = s.stime_ns;
  WaitObservation obs = s.wait;
  obs.majflt_delta = majflt_delta;
  if (count && obs.where == SyscallWhere::kUnknown) ++syscall_denied_;
  const WaitClass wait = classify_wait(obs);
  t.exact.observe(obs, wait);
  // fsync & co, or an O_DSYNC write or uncached read of a file it was caught blocked in.
  const bool in_disk_sync = is_disk_work(obs);
  // Kernel time of a thread that was inside disk work at both ends of the interval is disk work.
  // Kernel time of a thread that took major faults is fault and reclaim work, up to
  // kMajorFaultCpuNs per fault (the faults are on its critical path; the cap keeps a network
  // server with a rare fault from turning its syscall time into memory).
  const double kernel_ns =
      static_cast<double>(iv.on_cpu_ns) *
      (du + ds > 0 ? static_cast<double>(ds) / static_cast<double>(du + ds) : 0.0);
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
  const bool mutex_now = is_lock_queue(wait);
  if (mutex_now && t.last_mutex_wait) iv.cpu_wait_resource = Resource::kLock;
  iv.majflt_delta = majflt_delta;
  if (wait.resource != Resource::kOnCpu) {
    t.last_wait = wait;
    in_disk_sync_ += (in_disk_sync ? 1 : 0) - (t.last_in_disk_sync ? 1 : 0);
    t.last_in_disk_sync = in_disk_sync;
    t.last_mutex_wait = mutex_now;
  }
  t.last_read_running = wait.resource == Resource::kOnCpu;
  if (count) {
    processes_[s.key.pid].majflt += majflt_delta;
    add_interval(t.account, iv);
    t.exact.sampled(iv);
    pool_off_cpu(t.ratio, iv);
    if (!t.last_read_running) count_read(t.ratio, wait);
  }
}

void Builder::end_thread(const ThreadEnd& e) {
  auto it = threads_.find({e.pid, e.tid});
  if (it == threads_.end()) return;
  ThreadTrack& t = it->second;
  add_quiet(t, t.last_ns, std::max(t.last_ns, e.last_poll_ns));
  if (t.last_in_disk_sync) --in_disk_sync_;
  // A thread that ended before the window is not part of it (nor one of its process's threads).
  if (e.last_poll_ns >= start_) {
    close_account(t);
    finished_.push_back(std::move(t.account));
    ended_in_window_.emplace_back(e.pid, e.tid);  // one of the process's threads until the cut
  } else {
    processes_[e.pid].tids.erase(e.tid);
  }
  threads_.erase(it);
}

Builder::ThreadMap::iterator Builder::find_thread(const std::pair<int, int>& key,
                                                  ThreadMap::iterator& cursor) {
  for (int step = 0; step < 4 && cursor != threads_.end() && cursor->first < key; ++step) {
    ++cursor;
  }
  if (cursor == threads_.end() || cursor->first != key) {
    // Behind the cursor, or further on: where it is, or would be.
    cursor = threads_.lower_bound(key);
  }
  return cursor != threads_.end() && cursor->first == key ? cursor : threads_.end();
}

void Builder::close_account(ThreadTrack& t) {
  if (t.exact.apply(t.account)) {
    ++exact_threads_;
  } else {
    divide_by_reads(t.account, t.ratio);
  }
  t.ratio = {};
}
}  // namespace chokepoint::model::builder_internal
