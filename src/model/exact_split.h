#pragma once
// The exact mode's off-CPU split of one thread over one window. The kernel summed the thread's
// blocked time per (state, system call, wait object) (model::ExactSample); this decides what each
// of those waits *is* exactly as the sampled split does, from the sampler's own observations of
// the same thread: the classes it gave the same (system call, object) (by how often it saw each,
// so an event loop's epoll_wait that was sometimes idle and sometimes waiting on an upstream keeps
// that mix), else those it gave the same object in another thread of the process, else the fd's
// role and the futex's caller it saw in the process, else the system call's own class (for a
// futex, with the op and value the kernel read at the switch-out: a mutex wait is lock even when
// the sampler never caught a thread on the word).
// So the exact and sampled splits agree on what a wait is and differ only in how much of it there
// was. On-CPU and run-queue time stay schedstat's; the evidence (details) stays the sampler's.
// Pure; used by model::Builder.

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "model/account.h"
#include "model/samples.h"
#include "model/wait.h"

namespace chokepoint::model {

// How a thread waited on a futex word (model::FutexOp::how, src/bpf/stateacct.h's
// STATEACCT_FUTEX_*), decoded.
struct FutexHow {
  bool recorded = false;  // the kernel read op and val; the fields below are meaningful
  int op = 0;             // op & FUTEX_CMD_MASK (FUTEX_WAIT, FUTEX_LOCK_PI, FUTEX_WAIT_BITSET...)
  bool val2 = false;      // val was 2: glibc's "locked, with waiters" mutex wait
  bool is_private = false;
};
FutexHow futex_how(std::uint8_t how);

class ExactSplit {
 public:
  // What the sampler saw of a process's waits, shared by its threads: an fd or a futex word names
  // the same object in every thread of the process.
  struct Process {
    std::map<std::pair<long, std::uint64_t>,
             std::map<std::tuple<Resource, std::string, Hold>, double>>
        seen;
    std::map<std::uint64_t, std::pair<FdRole, std::string>> fds;
    std::map<std::uint64_t, std::string> futex_callers;
    // How the kernel saw threads wait on each futex word (FutexOp::how), the latest.
    std::map<std::uint64_t, std::uint8_t> futex_ops;
  };
  // `process` (may be null) outlives this; observations are added to it too.
  explicit ExactSplit(Process* process = nullptr) : process_(process) {}
  // Moved, never copied: it keeps pointers into its own maps (whose nodes stay put on a move).
  ExactSplit(const ExactSplit&) = delete;
  ExactSplit& operator=(const ExactSplit&) = delete;
  ExactSplit(ExactSplit&&) = default;
  ExactSplit& operator=(ExactSplit&&) = default;
  ~ExactSplit() = default;

  // A sampled observation of the thread (first or later), with the class the sampler gave it,
  // counted `weight` times among the classes of its wait. The builder gives a thread's first read
  // kFirstReadWeight: in the sampled split it closes no interval, and it is the read least sure of
  // its class (the socket-order tracer starts at it, so an event loop's first read judges its
  // upstreams at tcp_info's jiffy resolution); it decides a wait only where no later read saw it.
  void observe(const WaitObservation& obs, const WaitClass& cls, double weight = 1.0);
  static constexpr double kFirstReadWeight = 1e-3;
  // The off-CPU remainder of an interval the sampled split counted in the window.
  void sampled(const Interval& interval);
  // A cumulative kernel sum of this thread. before_window: read at or before the window's start
  // (the baseline); otherwise inside it.
  void sum(const ExactWait& wait, bool before_window);
  // True once a sum inside the window was seen.
  bool has_window_sums() const { return in_window_; }

  // The thread's off-CPU time by resource from the kernel's sums in the window, classified as
  // above; run-queue kinds are left out (schedstat has them).
  // details: when given, the same ns by resource and wait detail. lock_objects: when given, the
  // lock ns by (system call, object); idle_objects likewise for idle.
  TimeSplit exact_off_cpu(
      std::array<std::map<std::string, double>, kResourceCount>* details = nullptr,
      std::map<std::pair<long, std::uint64_t>, double>* lock_objects = nullptr,
      std::map<std::pair<long, std::uint64_t>, double>* idle_objects = nullptr) const;
  // Replaces the sampled off-CPU part of account.split by the exact one, scaled to the same total
  // (schedstat and the clock bound the window; the sums say how it divides). Time the kernel did
  // not see (a block in progress when the accounting started) keeps the sampled division. The
  // details of each off-CPU resource are rescaled to its new time (or, for a resource only the
  // kernel saw, named by the classes of its waits), so evidence shares stay within 100%. Sets
  // account.lock_objects_ns and idle_objects_ns (the kernel's lock and idle ns by object, scaled
  // as the split, for the wait-for graph).
  // Then, where the kernel summed them: the run-queue time after wakeups from lock queues (a
  // mutex or an rwlock: is_lock_queue) (kRunQueueWakeup) moves from cpu_wait to lock, replacing the
  // sampled rule (a mutex at both ends of an interval), and the on-CPU time in file system calls on
  // regular files (kOnCpuFile) moves from on_cpu to disk (and kernel_work_ns), replacing the
  // sampled estimate of disk work's kernel time. Without those sums the sampled rules stay (older
  // recordings). Returns false, changing nothing, without sums in the window.
  bool apply(ThreadAccount& account) const;
  // Starts the next window: the sums read so far are its baseline.
  void next_window();

 private:
  using ObjectKey = std::pair<long, std::uint64_t>;           // system call, object
  using ClassKey = std::tuple<Resource, std::string, Hold>;   // a WaitClass
  using SumKey = std::tuple<ExactKind, long, std::uint64_t>;  // kind, system call, object
  std::vector<std::pair<WaitClass, double>> classes_of(const SumKey& key) const;
  bool apply_off_cpu(ThreadAccount& account) const;
  bool apply_on_cpu(ThreadAccount& account) const;

  std::map<ObjectKey, std::map<ClassKey, double>> seen_;  // observations by class
  // The counts the last observation added to (seen_'s and the process's): a thread seen in the
  // same wait again, as most threads are at most reads, adds to them without two lookups each.
  struct LastSeen {
    ObjectKey object;
    WaitClass cls;
    double* own = nullptr;
    double* process = nullptr;
  };
  LastSeen last_;
  Process* process_ = nullptr;
  Process own_;            // without a process: fds and futexes as this thread saw them
  bool net_wait_ = false;  // the last observation's process_waits_on_network
  TimeSplit sampled_off_;
  std::int64_t sampled_rq_lock_ = 0;      // run-queue ns the sampled rule counted as lock
  std::int64_t sampled_kernel_disk_ = 0;  // on-CPU ns the sampled rule counted as disk
  std::map<SumKey, std::uint64_t> base_ns_, last_ns_;
  bool in_window_ = false;
};

}  // namespace chokepoint::model
