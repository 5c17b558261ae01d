#include "collect/bpf/state_accounting.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <map>
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
  skel->rodata->window_switch_budget = options.budget_per_cpu_s == 0
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

struct StateAccounting::Impl {
  Skeleton skel;
  FileCallHook file_hook = FileCallHook::kNone;
  std::string file_hook_problem;
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
  // Each entry with its futex word split from how it was waited on (one sum per word here).
  const auto add = [&out](int pid, int tid, std::uint64_t start, int kind, long nr,
                          std::uint64_t object, std::uint64_t ns, std::uint64_t count) {
    std::uint8_t how = 0;
    const std::uint64_t word = split_object(nr, object, how);
    out.push_back({pid, tid, start, kind, nr, word, ns, count, how});
  };
  for (const auto& [k, v] : s.sums) {
    if (s.targets.count(static_cast<int>(k.tgid)) == 0) continue;
    add(static_cast<int>(k.tgid), static_cast<int>(k.tid), start_ticks(k.start_ns),
        static_cast<int>(k.kind), static_cast<long>(k.syscall_nr), k.object, v.ns, v.count);
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
      add(pid, tid, start, static_cast<int>(t.acc_kind), static_cast<long>(t.acc_nr), t.acc_object,
          t.acc_ns, t.acc_count);
    }
    if (t.rq_acc_count != 0) {
      add(pid, tid, start, STATEACCT_RUNQ_WAKEUP, static_cast<long>(t.acc_nr), t.acc_object,
          t.rq_acc_ns, t.rq_acc_count);
    }
    if (t.file_acc_ns != 0 || t.file_acc_count != 0) {
      out.push_back({pid, tid, start, STATEACCT_ONCPU_FILE, -1, t.file_acc_fd, t.file_acc_ns,
                     t.file_acc_count});
    }
    // Only blocks are added up to now; a run-queue wait or a file call in progress is counted
    // when it ends (microseconds).
    if (t.phase != STATEACCT_PHASE_BLOCKED) continue;
    const std::uint64_t open_ns = now > t.since_ns ? now - t.since_ns : 0;
    add(pid, tid, start, static_cast<int>(t.kind), static_cast<long>(t.blocked_nr),
        t.blocked_object, open_ns * t.weight, 0);
  }
  const auto key = [](const StateSum& a) {
    return std::tie(a.pid, a.tid, a.start_time_ticks, a.kind, a.syscall_nr, a.object);
  };
  std::sort(out.begin(), out.end(),
            [&](const StateSum& a, const StateSum& b) { return key(a) < key(b); });
  // Merge an open phase into its key's closed sum, and a futex word's sums under each way it was
  // waited on into one (how: the last, in the kernel's order of how; a word is waited on one way).
  std::vector<StateSum> merged;
  merged.reserve(out.size());
  for (const auto& e : out) {
    if (!merged.empty() && key(merged.back()) == key(e)) {
      merged.back().ns += e.ns;
      merged.back().count += e.count;
      merged.back().futex_how = std::max(merged.back().futex_how, e.futex_how);
    } else {
      merged.push_back(e);
    }
  }
  return merged;
}

std::vector<WakeEdgeSum> StateAccounting::read_edges() {
  Impl& s = *impl_;
  read_map(bpf_map__fd(s.skel->maps.edges), STATEACCT_MAX_EDGES, s.batch_works, s.edges);
  // Keyed by the futex word alone, as the sums: edges of one word waited on two ways merge.
  std::map<std::tuple<int, int, int, int, long, int, std::uint64_t>, std::size_t> index;
  std::vector<WakeEdgeSum> out;
  out.reserve(s.edges.size());
  for (const auto& [k, v] : s.edges) {
    if (s.targets.count(static_cast<int>(k.wakee_tgid)) == 0) continue;
    std::uint8_t how = 0;
    const std::uint64_t object = split_object(static_cast<long>(k.syscall_nr), k.object, how);
    WakeEdgeSum e{static_cast<int>(k.waker_tgid),
                  static_cast<int>(k.waker_tid),
                  static_cast<int>(k.wakee_tgid),
                  static_cast<int>(k.wakee_tid),
                  static_cast<long>(k.syscall_nr),
                  static_cast<int>(k.waker_kind),
                  object,
                  v.ns,
                  v.count};
    auto [it, added] =
        index.try_emplace(std::make_tuple(e.waker_pid, e.waker_tid, e.wakee_pid, e.wakee_tid,
                                          e.syscall_nr, e.waker_kind, e.object),
                          out.size());
    if (added) {
      out.push_back(e);
    } else {
      out[it->second].ns += e.ns;
      out[it->second].count += e.count;
    }
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

FileCallHook StateAccounting::file_hook() const {
  return impl_->file_hook;
}

const std::string& StateAccounting::file_hook_problem() const {
  return impl_->file_hook_problem;
}

#endif

}  // namespace chokepoint::collect::bpf
