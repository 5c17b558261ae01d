#include "collect/bpf/state_accounting.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <set>
#include <string>
#include <tuple>

#include "collect/bpf/bpf_support.h"
#include "util/owned.h"

#ifdef CHOKEPOINT_HAVE_BPF
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpf/stateacct.h"
#include "stateacct.skel.h"
#endif

namespace chokepoint::collect::bpf {

#ifndef CHOKEPOINT_HAVE_BPF

struct StateAccounting::Impl {};
StateAccounting::StateAccounting(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
StateAccounting::~StateAccounting() = default;
util::Result<std::unique_ptr<StateAccounting>> StateAccounting::create(
    const StateAccountingOptions&) {
  return util::Error{"state accounting: chokepoint was built without BPF support", kNoBpfHint, 0};
}
util::Result<void> StateAccounting::set_targets(const std::vector<int>&) {
  return util::Error{"state accounting: chokepoint was built without BPF support", kNoBpfHint, 0};
}
std::vector<StateSum> StateAccounting::read() {
  return {};
}
std::vector<WakeEdgeSum> StateAccounting::read_edges() {
  return {};
}
void StateAccounting::forget(const std::vector<ThreadId>&) {}
StateAccountingStats StateAccounting::stats() const {
  return {};
}
std::uint32_t StateAccounting::budget_per_cpu_s() const {
  return 0;
}

#else

namespace {

using Skeleton = util::Owned<stateacct_bpf, stateacct_bpf__destroy>;

std::uint64_t ktime_ns() {
  // bpf_ktime_get_ns() is CLOCK_MONOTONIC.
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

// Every entry of a hash map: one batch lookup per `chunk` entries (kernel 5.6+), or a key walk
// where batch operations are refused.
template <typename Key, typename Value>
void read_map(int fd, std::size_t max_entries, bool& batch_works,
              std::vector<std::pair<Key, Value>>& out) {
  out.clear();
  if (batch_works) {
    std::vector<Key> keys(max_entries);
    std::vector<Value> values(max_entries);
    Key out_batch{};
    void* in = nullptr;
    for (;;) {
      auto count = static_cast<__u32>(max_entries - out.size());
      if (count == 0) break;
      bpf_map_batch_opts opts{};
      opts.sz = sizeof(opts);
      const int err =
          bpf_map_lookup_batch(fd, in, &out_batch, keys.data(), values.data(), &count, &opts);
      for (__u32 i = 0; i < count; ++i) out.emplace_back(keys[i], values[i]);
      if (err != 0) {
        if (errno == ENOENT) return;  // the walk reached the end
        if (out.empty() && (errno == EINVAL || errno == ENOTSUP || errno == EOPNOTSUPP)) {
          batch_works = false;
          break;
        }
        return;  // a partial read: what was read is kept
      }
      in = &out_batch;
    }
    if (batch_works) return;
  }
  Key key{}, next{};
  Key* prev = nullptr;
  while (out.size() < max_entries && bpf_map_get_next_key(fd, prev, &next) == 0) {
    Value v{};
    if (bpf_map_lookup_elem(fd, &next, &v) == 0) out.emplace_back(next, v);
    key = next;
    prev = &key;
  }
}

// /proc/PID/stat field 22 (starttime) of a task_struct start_boottime: clock ticks of USER_HZ
// (100 on every Linux ABI), as fs/proc/array.c's nsec_to_clock_t computes it.
std::uint64_t start_ticks(std::uint64_t start_ns) {
  return start_ns / (1'000'000'000ULL / 100);
}

}  // namespace

struct StateAccounting::Impl {
  Skeleton skel;
  std::uint32_t budget = 0;
  std::set<int> targets;
  bool batch_works = true;
  std::vector<std::pair<stateacct_key, stateacct_value>> sums;
  std::vector<std::pair<__u32, stateacct_thread>> threads;
  __u32 targets_gen = 0;
  std::vector<std::pair<stateacct_edge_key, stateacct_edge_value>> edges;
};

StateAccounting::StateAccounting(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
StateAccounting::~StateAccounting() = default;

util::Result<std::unique_ptr<StateAccounting>> StateAccounting::create(
    const StateAccountingOptions& options) {
  if (auto ok = check_btf_tracing("state accounting"); !ok) return ok.error();
  // Task-local storage (Linux 5.11+ in tracing programs) keeps each task's phase and whether it
  // is a target, so a switch costs no hash lookup; every kernel with the sched_switch prev_state
  // this program needs (5.18+) has it, so a kernel without it is refused with the others.
  if (libbpf_probe_bpf_map_type(BPF_MAP_TYPE_TASK_STORAGE, nullptr) != 1) {
    return util::Error{"state accounting: this kernel has no BPF task-local storage",
                       "the exact mode needs Linux 5.18+ with BPF task storage; use --mode sample",
                       0};
  }
  LogCapture log;
  Skeleton skel(stateacct_bpf__open());
  if (!skel)
    return util::errno_error("cannot open the state-accounting BPF object", errno, kNoBpfHint);
  // The budget is per CPU per window of STATEACCT_WINDOW_NS.
  constexpr std::uint64_t kWindowsPerSecond = 1'000'000'000ULL / STATEACCT_WINDOW_NS;
  skel->rodata->window_switch_budget = options.budget_per_cpu_s == 0
                                           ? 0
                                           : static_cast<__u32>(std::max<std::uint64_t>(
                                                 1, options.budget_per_cpu_s / kWindowsPerSecond));
  skel->rodata->count_edges = options.wake_edges ? 1 : 0;
  if (!options.file_cpu) {
    // The sys_enter/sys_exit programs are not loaded, so not attached: an attached raw_syscalls
    // program slows every system call of the host.
    bpf_program__set_autoload(skel->progs.stateacct_sys_enter, false);
    bpf_program__set_autoload(skel->progs.stateacct_sys_exit, false);
  }
  if (int err = stateacct_bpf__load(skel.get()); err != 0) {
    err = -err;
    if (err == EPERM) return permission_error("cannot load the state-accounting BPF programs", err);
    return util::errno_error(
        "cannot load the state-accounting BPF programs (tp_btf/sched_switch, sched_waking)" +
            log.tail(4),
        err,
        "the exact mode needs BTF-typed tracepoints (Linux 5.5+) with sched_switch's prev_state "
        "(5.18+); use --mode sample");
  }
  if (int err = stateacct_bpf__attach(skel.get()); err != 0) {
    return util::errno_error("cannot attach the state-accounting programs" + log.tail(4), -err,
                             "the sched and raw_syscalls tracepoints must be available; use "
                             "--mode sample");
  }
  auto impl = std::make_unique<Impl>();
  impl->skel = std::move(skel);
  impl->budget = options.budget_per_cpu_s;
  return std::unique_ptr<StateAccounting>(new StateAccounting(std::move(impl)));
}

util::Result<void> StateAccounting::set_targets(const std::vector<int>& tgids) {
  const std::set<int> want(tgids.begin(), tgids.end());
  if (want == impl_->targets && impl_->targets_gen != 0) return {};
  bpf_map* map = impl_->skel->maps.targets;
  // Every task decides again whether it is a target (its cached answer is of an older gen), after
  // the map is current: a store to the skeleton's .bss, which the programs read.
  struct GenBump {
    Impl& impl;
    ~GenBump() {
      __atomic_store_n(&impl.skel->bss->targets_gen, ++impl.targets_gen, __ATOMIC_RELEASE);
    }
  } bump{*impl_};
  for (int pid : impl_->targets) {
    if (want.count(pid) != 0) continue;
    const __u32 key = static_cast<__u32>(pid);
    bpf_map__delete_elem(map, &key, sizeof(key), 0);
  }
  impl_->targets.clear();
  for (int pid : want) {
    const __u32 key = static_cast<__u32>(pid);
    const __u8 one = 1;
    if (bpf_map__update_elem(map, &key, sizeof(key), &one, sizeof(one), BPF_ANY) != 0) {
      return util::errno_error("cannot account the threads of pid " + std::to_string(pid),
                               "too many target processes (4,096 at most)");
    }
    impl_->targets.insert(pid);
  }
  return {};
}

std::vector<StateSum> StateAccounting::read() {
  Impl& s = *impl_;
  read_map(bpf_map__fd(s.skel->maps.sums), STATEACCT_MAX_SUMS, s.batch_works, s.sums);
  // The slots handed out so far (the array's first next_slot entries).
  const std::size_t slots = std::min<std::size_t>(
      __atomic_load_n(&s.skel->bss->next_slot, __ATOMIC_ACQUIRE), STATEACCT_MAX_THREADS);
  read_map(bpf_map__fd(s.skel->maps.threads), slots, s.batch_works, s.threads);
  const std::uint64_t now = ktime_ns();
  std::vector<StateSum> out;
  out.reserve(s.sums.size() + s.threads.size());
  for (const auto& [k, v] : s.sums) {
    if (s.targets.count(static_cast<int>(k.tgid)) == 0) continue;
    out.push_back({static_cast<int>(k.tgid), static_cast<int>(k.tid), start_ticks(k.start_ns),
                   static_cast<int>(k.kind), static_cast<long>(k.syscall_nr), k.object, v.ns,
                   v.count});
  }
  // The open phases, up to now: a block that has not ended yet is part of the time so far. And
  // each thread's blocks not yet added to `sums` (acc_*: the latest key's, kept in its slot).
  // `sums` is read before the slots: a flush between the two reads leaves its time out of this
  // read (the next one has it), never counts it twice.
  for (const auto& [slot, t] : s.threads) {
    if (t.tid == 0 || s.targets.count(static_cast<int>(t.tgid)) == 0) continue;
    const int pid = static_cast<int>(t.tgid), tid = static_cast<int>(t.tid);
    const std::uint64_t start = start_ticks(t.start_ns);
    if (t.acc_count != 0) {
      out.push_back({pid, tid, start, static_cast<int>(t.acc_kind), static_cast<long>(t.acc_nr),
                     t.acc_object, t.acc_ns, t.acc_count});
    }
    if (t.rq_acc_count != 0) {
      out.push_back({pid, tid, start, STATEACCT_RUNQ_WAKEUP, static_cast<long>(t.acc_nr),
                     t.acc_object, t.rq_acc_ns, t.rq_acc_count});
    }
    if (t.file_acc_ns != 0 || t.file_acc_count != 0) {
      out.push_back({pid, tid, start, STATEACCT_ONCPU_FILE, -1, t.file_acc_fd, t.file_acc_ns,
                     t.file_acc_count});
    }
    // Only blocks are added up to now; a run-queue wait or a file call in progress is counted
    // when it ends (microseconds).
    if (t.phase != STATEACCT_PHASE_BLOCKED) continue;
    const std::uint64_t open_ns = now > t.since_ns ? now - t.since_ns : 0;
    out.push_back({static_cast<int>(t.tgid), static_cast<int>(t.tid), start_ticks(t.start_ns),
                   static_cast<int>(t.kind), static_cast<long>(t.blocked_nr), t.blocked_object,
                   open_ns * t.weight, 0});
  }
  const auto key = [](const StateSum& a) {
    return std::tie(a.pid, a.tid, a.start_time_ticks, a.kind, a.syscall_nr, a.object);
  };
  std::sort(out.begin(), out.end(),
            [&](const StateSum& a, const StateSum& b) { return key(a) < key(b); });
  // Merge an open phase into its key's closed sum.
  std::vector<StateSum> merged;
  merged.reserve(out.size());
  for (const auto& e : out) {
    if (!merged.empty() && key(merged.back()) == key(e)) {
      merged.back().ns += e.ns;
      merged.back().count += e.count;
    } else {
      merged.push_back(e);
    }
  }
  return merged;
}

std::vector<WakeEdgeSum> StateAccounting::read_edges() {
  Impl& s = *impl_;
  read_map(bpf_map__fd(s.skel->maps.edges), STATEACCT_MAX_EDGES, s.batch_works, s.edges);
  std::vector<WakeEdgeSum> out;
  out.reserve(s.edges.size());
  for (const auto& [k, v] : s.edges) {
    if (s.targets.count(static_cast<int>(k.wakee_tgid)) == 0) continue;
    out.push_back({static_cast<int>(k.waker_tgid), static_cast<int>(k.waker_tid),
                   static_cast<int>(k.wakee_tgid), static_cast<int>(k.wakee_tid),
                   static_cast<long>(k.syscall_nr), static_cast<int>(k.waker_kind), k.object, v.ns,
                   v.count});
  }
  return out;
}

void StateAccounting::forget(const std::vector<ThreadId>& threads) {
  if (threads.empty()) return;
  // The kernel took back the threads' slots at their exit; their sums stay until this.
  const std::set<ThreadId> gone(threads.begin(), threads.end());
  for (const auto& [k, v] : impl_->sums) {
    if (gone.count({static_cast<int>(k.tid), start_ticks(k.start_ns)}) != 0) {
      bpf_map__delete_elem(impl_->skel->maps.sums, &k, sizeof(k), 0);
    }
  }
  // Edges into a thread that ended (its wakers may live on; edges out of an ended thread go
  // with its wakees). The edges' key has no start time: every edge into the ended id goes.
  std::set<int> gone_tids;
  for (const auto& [tid, start] : gone) gone_tids.insert(tid);
  for (const auto& [k, v] : impl_->edges) {
    if (gone_tids.count(static_cast<int>(k.wakee_tid)) != 0) {
      bpf_map__delete_elem(impl_->skel->maps.edges, &k, sizeof(k), 0);
    }
  }
}

StateAccountingStats StateAccounting::stats() const {
  StateAccountingStats out;
  const int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) return out;
  std::vector<__u64> values(static_cast<std::size_t>(ncpu));
  for (__u32 which = 0; which < STATEACCT_STAT_NR; ++which) {
    if (bpf_map__lookup_elem(impl_->skel->maps.stats, &which, sizeof(which), values.data(),
                             values.size() * sizeof(__u64), 0) != 0) {
      continue;
    }
    std::uint64_t sum = 0, max = 0;
    for (__u64 v : values) {
      sum += v;
      max = std::max<std::uint64_t>(max, v);
    }
    switch (which) {
      case STATEACCT_STAT_SWITCHES:
        out.switches = sum;
        break;
      case STATEACCT_STAT_THINNED_OUT:
        out.thinned_out = sum;
        break;
      case STATEACCT_STAT_SUMS_FULL:
      case STATEACCT_STAT_THREADS_FULL:
      case STATEACCT_STAT_EDGES_FULL:
        out.lost += sum;
        break;
      case STATEACCT_STAT_MAX_EVERY:
        out.max_every = static_cast<std::uint32_t>(std::max<std::uint64_t>(1, max));
        break;
      default:
        break;
    }
  }
  return out;
}

std::uint32_t StateAccounting::budget_per_cpu_s() const {
  return impl_->budget;
}

#endif

}  // namespace chokepoint::collect::bpf
