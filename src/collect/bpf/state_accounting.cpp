#include "collect/bpf/state_accounting.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>

#include "collect/bpf/bpf_support.h"
#include "util/owned.h"

#ifdef CHOKEPOINT_HAVE_BPF
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpf/stateacct.h"
#include "collect/bpf/mapped_tables.h"
#include "stateacct.skel.h"
#endif

namespace chokepoint::collect::bpf {

std::string_view file_call_hook_name(FileCallHook hook) {
  switch (hook) {
    case FileCallHook::kFentry:
      return "fentry";
    case FileCallHook::kRawSyscalls:
      return "raw_syscalls";
    case FileCallHook::kNone:
      break;
  }
  return "none";
}

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
FileCallHook StateAccounting::file_hook() const {
  return FileCallHook::kNone;
}
const std::string& StateAccounting::file_hook_problem() const {
  static const std::string none;
  return none;
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

// The kernel's object of a wait in call `nr`: a futex word carries how the thread waited in its
// top byte (stateacct.h); returns the word alone and sets `how`. Other objects are returned whole.
std::uint64_t split_object(long nr, std::uint64_t object, std::uint8_t& how) {
  how = 0;
  if (nr != STATEACCT_SYS_FUTEX) return object;
  how = static_cast<std::uint8_t>(object >> STATEACCT_FUTEX_SHIFT);
  return object & STATEACCT_FUTEX_WORD_MASK;
}

// /proc/PID/stat field 22 (starttime) of a task_struct start_boottime: clock ticks of USER_HZ
// (100 on every Linux ABI), as fs/proc/array.c's nsec_to_clock_t computes it.
std::uint64_t start_ticks(std::uint64_t start_ns) {
  return start_ns / (1'000'000'000ULL / 100);
}

// Loads the file-call programs of `hook` only (stateacct.bpf.c has both hooks' programs).
void choose_file_hook(stateacct_bpf* skel, FileCallHook hook) {
  bpf_program* prog = nullptr;
  bpf_object__for_each_program(prog, skel->obj) {
    const std::string_view name = bpf_program__name(prog);
    if (name.starts_with("stateacct_fentry_") || name.starts_with("stateacct_fexit_")) {
      bpf_program__set_autoload(prog, hook == FileCallHook::kFentry);
    } else if (name == "stateacct_sys_enter" || name == "stateacct_sys_exit") {
      bpf_program__set_autoload(prog, hook == FileCallHook::kRawSyscalls);
    }
  }
}

// Whether the kernel loads a BPF trampoline program (fentry on __x64_sys_read): a two-instruction
// program, a millisecond, where a refused load of the whole object would cost its verification.
// Some kernels refuse them (the 6.18 VM kernel measured here: EPERM, before verification).
util::Result<void> probe_fentry() {
  const int btf_id = libbpf_find_vmlinux_btf_id("__x64_sys_read", BPF_TRACE_FENTRY);
  if (btf_id < 0) {
    return util::errno_error("fentry: the kernel's BTF has no __x64_sys_read", -btf_id, "");
  }
  bpf_insn insns[2] = {};
  insns[0].code = BPF_ALU64 | BPF_MOV | BPF_K;  // r0 = 0
  insns[1].code = BPF_JMP | BPF_EXIT;
  bpf_prog_load_opts opts{};
  opts.sz = sizeof(opts);
  opts.expected_attach_type = BPF_TRACE_FENTRY;
  opts.attach_btf_id = static_cast<__u32>(btf_id);
  const int fd = bpf_prog_load(BPF_PROG_TYPE_TRACING, "cp_fentry_probe", "GPL", insns, 2, &opts);
  if (fd < 0) {
    return util::errno_error("the kernel refuses BPF trampolines, fentry on __x64_sys_read", errno,
                             "");
  }
  close(fd);
  return {};
}

// Opens, loads and attaches the object with the file-call programs of `hook` (kNone: neither).
util::Result<Skeleton> load_attached(const StateAccountingOptions& options, FileCallHook hook) {
  LogCapture log;
  Skeleton skel(stateacct_bpf__open());
  if (!skel)
    return util::errno_error("cannot open the state-accounting BPF object", errno, kNoBpfHint);
  // The budget is per CPU per window of STATEACCT_WINDOW_NS.
  constexpr std::uint64_t kWindowsPerSecond = 1'000'000'000ULL / STATEACCT_WINDOW_NS;
  skel->rodata->window_block_budget = options.budget_per_cpu_s == 0
                                          ? 0
                                          : static_cast<__u32>(std::max<std::uint64_t>(
                                                1, options.budget_per_cpu_s / kWindowsPerSecond));
  skel->rodata->count_edges = options.wake_edges ? 1 : 0;
  choose_file_hook(skel.get(), hook);
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
  return skel;
}

}  // namespace

// pid, tid, start time, kind, syscall, futex word (or object)
using SumKey = std::tuple<int, int, std::uint64_t, int, long, std::uint64_t>;
// waker pid, waker tid, wakee pid, wakee tid, syscall, waker kind, futex word (or object)
using EdgeKey = std::tuple<int, int, int, int, long, int, std::uint64_t>;

// The sums a thread slot's parts went to at the last read, with the keys they had: a part whose
// key did not change reuses its sum without hashing (most do: a thread blocks in the same call on
// the same object again and again).
struct SlotSums {
  static constexpr std::uint32_t kNone = UINT32_MAX;
  struct Part {
    int kind = -1;
    long nr = -1;
    std::uint64_t object = 0;
    std::uint32_t sum = kNone;
  };
  __u32 tid = 0;
  __u64 start_ns = 0;
  std::array<Part, 2 * STATEACCT_ACC_SLOTS + 2> parts{};
};

struct StateAccounting::Impl {
  Skeleton skel;
  FileCallHook file_hook = FileCallHook::kNone;
  std::string file_hook_problem;
  std::uint32_t budget = 0;
  std::set<int> targets;
  __u32 targets_gen = 0;
  MappedArray threads;
  KernelTable<stateacct_sum_rec> sum_recs;
  KernelTable<stateacct_edge_rec> edge_recs;
  SumTable<StateSum, SumKey> sums;
  SumTable<WakeEdgeSum, EdgeKey> edges;
  std::vector<SlotSums> slot_sums;  // by slot of `threads`; cleared when sums are dropped

  // The sum of a (thread, kind, call, kernel object) key: a futex word's how goes to futex_how.
  std::uint32_t sum_of(int pid, int tid, std::uint64_t start, int kind, long nr,
                       std::uint64_t object) {
    std::uint8_t how = 0;
    const std::uint64_t word = split_object(nr, object, how);
    const std::uint32_t id = sums.find_or_add(SumKey{pid, tid, start, kind, nr, word},
                                              StateSum{pid, tid, start, kind, nr, word, 0, 0, how});
    StateSum& sum = sums.at(id);
    sum.futex_how = std::max(sum.futex_how, how);
    return id;
  }
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
  // The file calls' hooks, cheapest first: fentry costs only the 15 calls it patches; the
  // raw_syscalls pair costs every system call of the host, so only kAny may fall back to it.
  std::vector<FileCallHook> hooks;
  std::string fentry_problem;
  if (options.file_calls != FileCallTiming::kOff) {
    if (auto ok = probe_fentry(); ok) {
      hooks.push_back(FileCallHook::kFentry);
    } else {
      fentry_problem = ok.error().message;
    }
  }
  hooks.push_back(options.file_calls == FileCallTiming::kAny ? FileCallHook::kRawSyscalls
                                                             : FileCallHook::kNone);
  util::Result<Skeleton> skel = util::Error{"", "", 0};
  FileCallHook hook = FileCallHook::kNone;
  for (FileCallHook h : hooks) {
    hook = h;
    skel = load_attached(options, h);
    if (skel || h != FileCallHook::kFentry) break;
    // Loaded by the probe, refused in the object (or at attach): the next hook, and why.
    fentry_problem = skel.error().message;
  }
  if (!skel) return skel.error();
  auto impl = std::make_unique<Impl>();
  impl->skel = std::move(*skel);
  for (auto [array, m] : {std::pair{&impl->threads, impl->skel->maps.threads},
                          std::pair{&impl->sum_recs.recs, impl->skel->maps.sum_recs},
                          std::pair{&impl->edge_recs.recs, impl->skel->maps.edge_recs}}) {
    if (auto ok = array->map(m); !ok) return ok.error();
  }
  impl->sum_recs.index = impl->skel->maps.sums;
  impl->sum_recs.free_list = impl->skel->maps.sum_free;
  impl->edge_recs.index = impl->skel->maps.edges;
  impl->edge_recs.free_list = impl->skel->maps.edge_free;
  impl->file_hook = hook;
  impl->file_hook_problem = hook == FileCallHook::kFentry ? "" : fentry_problem;
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

namespace {

// How many entries of a table the kernel handed out (a .bss counter), at most `max`.
// Above half full, the kernel's entries unchanged for this many reads are given back
// (KernelTable::forget_idle): their sums live on here.
constexpr std::uint16_t kIdleReadsToForget = 2;

std::size_t handed_out(const __u32& next, std::size_t max) {
  return std::min<std::size_t>(__atomic_load_n(&next, __ATOMIC_ACQUIRE), max);
}

// The sums of `table` that changed since the last call, of the target processes only (pid_of:
// the process a sum belongs to); the others' changes wait until their process is a target.
template <typename Sum, typename Key, typename PidOf>
std::vector<Sum> changed_of(SumTable<Sum, Key>& table, const std::set<int>& targets, PidOf pid_of) {
  std::vector<Sum> out;
  table.changed([&](const Sum& sum) {
    if (targets.count(pid_of(sum)) == 0) return false;
    out.push_back(sum);
    return true;
  });
  return out;
}

}  // namespace

std::vector<StateSum> StateAccounting::read() {
  Impl& s = *impl_;
  s.sum_recs.release_pending();
  s.sums.begin_extras();
  // The kernel's entries that grew since the last read, in place.
  s.sum_recs.scan(
      handed_out(s.skel->bss->next_sum, STATEACCT_MAX_SUMS),
      [&s](const stateacct_key& k, std::uint64_t ns, std::uint64_t count, RecordState& st) {
        if (st.sum == RecordState::kNone) {
          st.sum =
              s.sum_of(static_cast<int>(k.tgid), static_cast<int>(k.tid), start_ticks(k.start_ns),
                       static_cast<int>(k.kind), static_cast<long>(k.syscall_nr), k.object);
        }
        s.sums.add(st.sum, ns, count);
      });
  // The open phases, up to now: a block that has not ended yet is part of the time so far. And
  // each thread's blocks not yet added to `sums` (acc: the latest keys', kept in its slot).
  // The entries are read before the slots: a flush between the two reads leaves its time out of
  // this read (the next one has it), never counts it twice.
  std::size_t slots = handed_out(s.skel->bss->next_slot, STATEACCT_MAX_THREADS);
  slots = std::min(slots, s.threads.reach(slots));
  const std::uint64_t now = ktime_ns();
  for (std::size_t slot = 0; slot < slots; ++slot) {
    stateacct_thread t{};
    std::memcpy(&t, s.threads.at<stateacct_thread>(slot), sizeof(t));
    if (t.tid == 0 || s.targets.count(static_cast<int>(t.tgid)) == 0) continue;
    const int pid = static_cast<int>(t.tgid), tid = static_cast<int>(t.tid);
    const std::uint64_t start = start_ticks(t.start_ns);
    if (s.slot_sums.size() <= slot) s.slot_sums.resize(slot + 1);
    SlotSums& cache = s.slot_sums[slot];
    if (cache.tid != t.tid || cache.start_ns != t.start_ns) cache = SlotSums{t.tid, t.start_ns, {}};
    // Part `which` of the slot (the file calls, the block in progress, then each accumulator's
    // blocks and their run-queue time): its sum is the last read's when its key is (no hashing).
    const auto extra = [&](std::size_t which, int kind, long nr, std::uint64_t object,
                           std::uint64_t ns, std::uint64_t count) {
      SlotSums::Part& part = cache.parts[which];
      if (part.sum == SlotSums::kNone || part.kind != kind || part.nr != nr ||
          part.object != object) {
        part = {kind, nr, object, s.sum_of(pid, tid, start, kind, nr, object)};
      }
      s.sums.add_extra(part.sum, ns, count);
    };
    for (std::size_t i = 0; i < STATEACCT_ACC_SLOTS; ++i) {
      const stateacct_acc& a = t.acc[i];
      if (a.count != 0) {
        extra(2 + 2 * i, static_cast<int>(a.kind), static_cast<long>(a.nr), a.object, a.ns,
              a.count);
      }
      if (a.rq_count != 0) {
        extra(3 + 2 * i, STATEACCT_RUNQ_WAKEUP, static_cast<long>(a.nr), a.object, a.rq_ns,
              a.rq_count);
      }
    }
    if (t.file_acc_ns != 0 || t.file_acc_count != 0) {
      extra(0, STATEACCT_ONCPU_FILE, -1, t.file_acc_fd, t.file_acc_ns, t.file_acc_count);
    }
    // Only blocks are added up to now; a run-queue wait or a file call in progress is counted
    // when it ends (microseconds). A block in progress counts as it is: whether it is thinned
    // out is decided where it ends, and a block longer than the threshold never is.
    if (t.phase != STATEACCT_PHASE_BLOCKED) continue;
    const std::uint64_t open_ns = now > t.since_ns ? now - t.since_ns : 0;
    extra(1, static_cast<int>(t.kind), static_cast<long>(t.blocked_nr), t.blocked_object, open_ns,
          0);
  }
  s.sum_recs.forget_idle(kIdleReadsToForget, STATEACCT_MAX_SUMS / 2);
  return changed_of(s.sums, s.targets, [](const StateSum& sum) { return sum.pid; });
}

std::vector<WakeEdgeSum> StateAccounting::read_edges() {
  Impl& s = *impl_;
  s.edge_recs.release_pending();
  s.edge_recs.scan(
      handed_out(s.skel->bss->next_edge, STATEACCT_MAX_EDGES),
      [&s](const stateacct_edge_key& k, std::uint64_t ns, std::uint64_t count, RecordState& st) {
        if (st.sum == RecordState::kNone) {
          // Keyed by the futex word alone, as the sums: edges of one word waited on two ways
          // merge.
          std::uint8_t how = 0;
          const long nr = static_cast<long>(k.syscall_nr);
          const WakeEdgeSum e{static_cast<int>(k.waker_tgid),
                              static_cast<int>(k.waker_tid),
                              static_cast<int>(k.wakee_tgid),
                              static_cast<int>(k.wakee_tid),
                              nr,
                              static_cast<int>(k.waker_kind),
                              split_object(nr, k.object, how),
                              0,
                              0};
          st.sum = s.edges.find_or_add(EdgeKey{e.waker_pid, e.waker_tid, e.wakee_pid, e.wakee_tid,
                                               e.syscall_nr, e.waker_kind, e.object},
                                       e);
        }
        s.edges.add(st.sum, ns, count);
      });
  s.edge_recs.forget_idle(kIdleReadsToForget, STATEACCT_MAX_EDGES / 2);
  return changed_of(s.edges, s.targets, [](const WakeEdgeSum& e) { return e.wakee_pid; });
}

void StateAccounting::forget(const std::vector<ThreadId>& threads) {
  if (threads.empty()) return;
  Impl& s = *impl_;
  // The kernel took back the threads' slots at their exit; their sums stay until this.
  const std::set<ThreadId> gone(threads.begin(), threads.end());
  const auto thread_gone = [&gone](int tid, std::uint64_t start) {
    return gone.count({tid, start}) != 0;
  };
  s.sum_recs.forget([&](const stateacct_key& k) {
    return thread_gone(static_cast<int>(k.tid), start_ticks(k.start_ns));
  });
  s.sums.erase_if([&](const StateSum& sum) { return thread_gone(sum.tid, sum.start_time_ticks); });
  s.slot_sums.clear();  // the dropped sums' ids are handed out again
  // Edges into a thread that ended (its wakers may live on; edges out of an ended thread go
  // with its wakees). The edges' key has no start time: every edge into the ended id goes.
  std::set<int> gone_tids;
  for (const auto& [tid, start] : gone) gone_tids.insert(tid);
  s.edge_recs.forget(
      [&](const stateacct_edge_key& k) { return gone_tids.count(static_cast<int>(k.wakee_tid)); });
  s.edges.erase_if([&](const WakeEdgeSum& e) { return gone_tids.count(e.wakee_tid) != 0; });
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
      case STATEACCT_STAT_MAX_THIN_NS:
        out.thin_below_ns_max = max;
        break;
      case STATEACCT_STAT_SUMS_HASHED:
        out.sums_hashed = sum;
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

FileCallHook StateAccounting::file_hook() const {
  return impl_->file_hook;
}

const std::string& StateAccounting::file_hook_problem() const {
  return impl_->file_hook_problem;
}

#endif

}  // namespace chokepoint::collect::bpf
