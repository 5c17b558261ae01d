#include "model/exact_split.h"

#include <linux/futex.h>
#include <sys/syscall.h>

#include <algorithm>
#include <array>

#include "util/counters.h"

namespace chokepoint::model {
namespace {

// The off-CPU resources: where a blocked thread's time can go.
constexpr std::array<Resource, 6> kOffCpu = {Resource::kDisk,  Resource::kNetwork,
                                             Resource::kLock,  Resource::kMemory,
                                             Resource::kSleep, Resource::kIdle};

// Sums that are not blocked time: run-queue waits and on-CPU time in file system calls.
bool not_blocked(ExactKind k) {
  return k == ExactKind::kRunQueueWakeup || k == ExactKind::kRunQueuePreempted ||
         k == ExactKind::kOnCpuFile;
}

// Moves `ns` (at most what `from` has) from one resource of the account to another.
std::int64_t move_time(ThreadAccount& account, Resource from, Resource to, std::int64_t ns) {
  ns = std::clamp<std::int64_t>(ns, 0, std::max<std::int64_t>(account.split[from], 0));
  account.split[from] -= ns;
  account.split[to] += ns;
  return ns;
}

// Scales the details of resource r by `f` (their resource lost part of its time).
void scale_details(ThreadAccount& account, Resource r, double f) {
  for (auto& [text, ns] : account.details[static_cast<std::size_t>(r)]) {
    ns = static_cast<std::int64_t>(static_cast<double>(ns) * f);
  }
}

constexpr const char* kFileCpuDetail = "file system calls on the CPU";

// The key the kernel gives a wait: the system call and its first argument (stateacct.h).
bool object_key(const WaitObservation& obs, long& nr, std::uint64_t& object) {
  if (obs.where == SyscallWhere::kInSyscall) {
    nr = obs.syscall_nr;
    object = obs.args[0];
    return true;
  }
  if (obs.where == SyscallWhere::kNotInSyscall) {
    nr = -1;
    object = 0;
    return true;
  }
  return false;
}

// As src/bpf/stateacct.h's STATEACCT_FUTEX_*.
constexpr unsigned kFutexRecorded = 0x80, kFutexCmdMask = 0x0f, kFutexVal2 = 0x10,
                   kFutexPrivate = 0x20;

}  // namespace

FutexHow futex_how(std::uint8_t how) {
  FutexHow f;
  f.recorded = (how & kFutexRecorded) != 0;
  f.op = static_cast<int>(how & kFutexCmdMask);
  f.val2 = (how & kFutexVal2) != 0;
  f.is_private = (how & kFutexPrivate) != 0;
  return f;
}

void ExactSplit::observe(const WaitObservation& obs, const WaitClass& cls, double weight) {
  net_wait_ = obs.process_waits_on_network;
  Process& p = process_ ? *process_ : own_;
  if (obs.where == SyscallWhere::kInSyscall) {
    const int idx = fd_argument_index(obs.syscall_nr);
    if (idx >= 0 && obs.fd_role != FdRole::kUnknown) {
      p.fds[obs.args[static_cast<std::size_t>(idx)]] = {obs.fd_role, obs.fd_detail};
    }
    if (obs.syscall_nr == SYS_futex && !obs.futex_caller.empty()) {
      p.futex_callers[obs.args[0]] = obs.futex_caller;
    }
  }
  if (cls.resource == Resource::kOnCpu || cls.resource == Resource::kCpuWait) return;
  long nr = -1;
  std::uint64_t object = 0;
  if (!object_key(obs, nr, object)) return;
  if (last_.own != nullptr && last_.object == ObjectKey{nr, object} &&
      last_.cls.resource == cls.resource && last_.cls.hold == cls.hold &&
      last_.cls.detail == cls.detail) {
    *last_.own += weight;
    if (last_.process != nullptr) *last_.process += weight;
    return;
  }
  double& own = seen_[{nr, object}][{cls.resource, cls.detail, cls.hold}];
  own += weight;
  double* process = nullptr;
  if (process_) {
    process = &process_->seen[{nr, object}][{cls.resource, cls.detail, cls.hold}];
    *process += weight;
  }
  last_ = {{nr, object}, cls, &own, process};
}

void ExactSplit::sampled(const Interval& interval) {
  const std::int64_t off = off_cpu_ns(interval);
  if (off > 0) sampled_off_[off_cpu_resource(interval)] += off;
  // What add_interval moved out of on_cpu and cpu_wait by the sampled heuristics (the same
  // clamps), for apply() to take back where the kernel measured it.
  const std::int64_t wall = std::max<std::int64_t>(interval.wall_ns, 0);
  const std::int64_t on_cpu = std::clamp<std::int64_t>(interval.on_cpu_ns, 0, wall);
  const std::int64_t cpu_wait = std::clamp<std::int64_t>(interval.cpu_wait_ns, 0, wall - on_cpu);
  if (interval.cpu_wait_resource == Resource::kLock) sampled_rq_lock_ += cpu_wait;
  if (interval.kernel_work_resource == Resource::kDisk) {
    sampled_kernel_disk_ += std::clamp<std::int64_t>(interval.kernel_work_ns, 0, on_cpu);
  }
}

void ExactSplit::sum(const ExactWait& w, bool before_window) {
  const SumKey key{w.kind, w.syscall_nr, w.object};
  if (before_window) {
    base_ns_[key] = w.ns;
  } else {
    base_ns_.try_emplace(key, 0);  // first seen inside the window: it began there
    in_window_ = true;
  }
  last_ns_[key] = w.ns;
}

std::vector<std::pair<WaitClass, double>> ExactSplit::classes_of(const SumKey& key) const {
  const auto& [kind, nr, object] = key;
  std::vector<std::pair<WaitClass, double>> out;
  const Process& p = process_ ? *process_ : own_;
  // Outside a system call (-1) the object says nothing: only the thread's own observations.
  for (const auto* seen : {&seen_, nr >= 0 ? &p.seen : nullptr}) {
    if (kind == ExactKind::kOtherBlocked || seen == nullptr) break;
    auto it = seen->find({nr, object});
    if (it == seen->end()) continue;
    for (const auto& [c, n] : it->second) {
      out.push_back({WaitClass{std::get<0>(c), std::get<1>(c), std::get<2>(c)}, n});
    }
    return out;
  }
  // Not seen by the sampler: what the system call on this object is, with what the sampler knows
  // of the object from other calls.
  WaitObservation obs;
  obs.state = kind == ExactKind::kUninterruptible ? 'D'
              : kind == ExactKind::kOtherBlocked  ? 'T'
                                                  : 'S';
  obs.process_waits_on_network = net_wait_;
  if (nr < 0) {
    obs.where = SyscallWhere::kNotInSyscall;
  } else {
    obs.where = SyscallWhere::kInSyscall;
    obs.syscall_nr = nr;
    const int idx = fd_argument_index(nr);
    obs.args[static_cast<std::size_t>(std::max(idx, 0))] = object;
    if (idx >= 0) {
      auto fd = p.fds.find(object);
      if (fd != p.fds.end()) {
        obs.fd_role = fd->second.first;
        obs.fd_detail = fd->second.second;
      }
    }
    if (nr == SYS_futex) {
      auto f = p.futex_callers.find(object);
      if (f != p.futex_callers.end()) obs.futex_caller = f->second;
      // How the thread waited, as the kernel read it at the switch-out: what the sampler would
      // have read in /proc/PID/task/TID/syscall had it caught the thread there.
      if (auto o = p.futex_ops.find(object); o != p.futex_ops.end()) {
        if (const FutexHow how = futex_how(o->second); how.recorded) {
          obs.args[1] =
              static_cast<std::uint64_t>(how.op) | (how.is_private ? FUTEX_PRIVATE_FLAG : 0);
          obs.args[2] = how.val2 ? 2 : 0;
        }
      }
    }
  }
  out.push_back({classify_wait(obs), 1.0});
  return out;
}

TimeSplit ExactSplit::exact_off_cpu(
    std::array<std::map<std::string, double>, kResourceCount>* details,
    std::map<std::pair<long, std::uint64_t>, double>* lock_objects,
    std::map<std::pair<long, std::uint64_t>, double>* idle_objects) const {
  std::array<double, kResourceCount> ns{};
  for (const auto& [key, last] : last_ns_) {
    if (not_blocked(std::get<0>(key))) continue;
    auto b = base_ns_.find(key);
    const auto d =
        static_cast<double>(util::saturating_delta(b == base_ns_.end() ? 0 : b->second, last));
    if (d <= 0) continue;
    const auto classes = classes_of(key);
    double total = 0;
    for (const auto& c : classes) total += c.second;
    for (const auto& [cls, n] : classes) {
      Resource r = cls.resource;
      if (r == Resource::kOnCpu || r == Resource::kCpuWait) r = Resource::kIdle;
      ns[static_cast<std::size_t>(r)] += d * n / total;
      if (details) (*details)[static_cast<std::size_t>(r)][cls.detail] += d * n / total;
      if (lock_objects && r == Resource::kLock) {
        (*lock_objects)[{std::get<1>(key), std::get<2>(key)}] += d * n / total;
      }
      if (idle_objects && r == Resource::kIdle) {
        (*idle_objects)[{std::get<1>(key), std::get<2>(key)}] += d * n / total;
      }
    }
  }
  TimeSplit out;
  for (std::size_t i = 0; i < kResourceCount; ++i) out.ns[i] = static_cast<std::int64_t>(ns[i]);
  return out;
}

bool ExactSplit::apply(ThreadAccount& account) const {
  if (!in_window_) return false;
  const bool off_cpu = apply_off_cpu(account);
  const bool on_cpu = apply_on_cpu(account);
  return off_cpu || on_cpu;
}

bool ExactSplit::apply_on_cpu(ThreadAccount& account) const {
  double file_ns = 0;
  std::map<std::string, double> rq_lock;  // lock detail -> run-queue ns after its wakeups
  bool has_file = false, has_rq = false;
  for (const auto& [key, last] : last_ns_) {
    const auto& [kind, nr, object] = key;
    if (kind != ExactKind::kOnCpuFile && kind != ExactKind::kRunQueueWakeup) continue;
    auto b = base_ns_.find(key);
    const auto d =
        static_cast<double>(util::saturating_delta(b == base_ns_.end() ? 0 : b->second, last));
    if (kind == ExactKind::kOnCpuFile) {
      has_file = true;
      file_ns += d;
      continue;
    }
    has_rq = true;
    if (d <= 0) continue;
    // The wait the wakeup ended, classed as its blocked time is: a lock queue's share of it is
    // the lock's hand-off cost.
    const auto classes = classes_of({ExactKind::kInterruptible, nr, object});
    double total = 0;
    for (const auto& c : classes) total += c.second;
    for (const auto& [cls, n] : classes) {
      // A queue on a mutex or an rwlock (verdicts/lock.md); a semaphore's waiter (a reply
      // hand-off) waited for its poster's work, not for a lock holder: its core wait stays.
      if (is_lock_queue(cls)) rq_lock[cls.detail] += d * n / total;
    }
  }
  if (has_rq) {
    // The kernel measured the run-queue time after each lock wakeup: it replaces the sampled
    // rule (all of an interval's run-queue time when the thread was on a mutex at both ends).
    const std::int64_t lock_before = account.split[Resource::kLock];
    const std::int64_t back =
        move_time(account, Resource::kLock, Resource::kCpuWait, sampled_rq_lock_);
    if (lock_before > 0 && back > 0) {
      scale_details(account, Resource::kLock,
                    static_cast<double>(lock_before - back) / static_cast<double>(lock_before));
    }
    for (const auto& [detail, ns] : rq_lock) {
      const std::int64_t moved =
          move_time(account, Resource::kCpuWait, Resource::kLock, static_cast<std::int64_t>(ns));
      if (moved > 0) account.details[static_cast<std::size_t>(Resource::kLock)][detail] += moved;
    }
  }
  if (has_file) {
    // The kernel timed the file system calls on the CPU: they replace the sampled estimate (the
    // kernel share of an interval spent in disk work at both ends).
    const std::int64_t disk_before = account.split[Resource::kDisk];
    const std::int64_t back =
        move_time(account, Resource::kDisk, Resource::kOnCpu, sampled_kernel_disk_);
    account.kernel_work_ns = std::max<std::int64_t>(account.kernel_work_ns - back, 0);
    if (disk_before > 0 && back > 0) {
      scale_details(account, Resource::kDisk,
                    static_cast<double>(disk_before - back) / static_cast<double>(disk_before));
    }
    const std::int64_t moved =
        move_time(account, Resource::kOnCpu, Resource::kDisk, static_cast<std::int64_t>(file_ns));
    if (moved > 0) {
      account.kernel_work_ns += moved;
      account.details[static_cast<std::size_t>(Resource::kDisk)][kFileCpuDetail] += moved;
    }
  }
  return has_rq || has_file;
}

bool ExactSplit::apply_off_cpu(ThreadAccount& account) const {
  std::array<std::map<std::string, double>, kResourceCount> exact_details;
  std::map<std::pair<long, std::uint64_t>, double> lock_objects, idle_objects;
  const TimeSplit exact = exact_off_cpu(&exact_details, &lock_objects, &idle_objects);
  std::int64_t e = 0, o = 0;
  for (Resource r : kOffCpu) {
    e += exact[r];
    o += sampled_off_[r];
  }
  if (e <= 0 || o <= 0) return false;
  // The sums divide the off-CPU time the clock and schedstat bound: scaled down when they count
  // more (a read's open block is a few µs ahead of the sampler's clock), and what they did not
  // see (a block already in progress when the accounting started) divided as sampled.
  const double scale = e > o ? static_cast<double>(o) / static_cast<double>(e) : 1.0;
  const double rest = e > o ? 0.0 : static_cast<double>(o - e);
  TimeSplit next;
  std::int64_t sum = 0;
  Resource largest = Resource::kIdle;
  for (Resource r : kOffCpu) {
    next[r] = static_cast<std::int64_t>(static_cast<double>(exact[r]) * scale +
                                        rest * static_cast<double>(sampled_off_[r]) /
                                            static_cast<double>(o));
    sum += next[r];
    if (next[r] > next[largest]) largest = r;
  }
  next[largest] += o - sum;  // rounding: the total stays the sampled off-CPU time exactly
  account.lock_objects_ns.clear();
  for (const auto& [key, ns] : lock_objects) {
    account.lock_objects_ns[key] = static_cast<std::int64_t>(ns);
  }
  account.idle_objects_ns.clear();
  for (const auto& [key, ns] : idle_objects) {
    account.idle_objects_ns[key] = static_cast<std::int64_t>(ns * scale);
  }
  for (Resource r : kOffCpu) {
    const std::int64_t before = account.split[r];
    const std::int64_t after = before + next[r] - sampled_off_[r];
    account.split[r] = after;
    auto& d = account.details[static_cast<std::size_t>(r)];
    if (before > 0 && !d.empty()) {
      const double f = static_cast<double>(after) / static_cast<double>(before);
      for (auto& [text, ns] : d) ns = static_cast<std::int64_t>(static_cast<double>(ns) * f);
    } else if (after > 0) {
      const auto& named = exact_details[static_cast<std::size_t>(r)];
      double total = 0;
      for (const auto& [text, ns] : named) total += ns;
      for (const auto& [text, ns] : named) {
        d[text] += static_cast<std::int64_t>(static_cast<double>(after) * ns / total);
      }
    }
  }
  return true;
}

void ExactSplit::next_window() {
  base_ns_ = last_ns_;
  // What the sampler saw stays: a builder fed from the stream's start would know it too.
  sampled_off_ = TimeSplit{};
  sampled_rq_lock_ = 0;
  sampled_kernel_disk_ = 0;
  in_window_ = false;
}

}  // namespace chokepoint::model
