#include "collect/bpf/offcpu_tracer.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>
#include <tuple>
#include <unordered_map>

#include "collect/bpf/bpf_support.h"
#include "collect/bpf/call_site.h"
#include "symbolize/parsers.h"
#include "symbolize/symbolizer.h"
#include "util/clock.h"
#include "util/owned.h"

#ifdef CHOKEPOINT_HAVE_BPF
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpf/offcpu.h"
#include "offcpu.skel.h"
#endif

namespace chokepoint::collect::bpf {

#ifndef CHOKEPOINT_HAVE_BPF

util::Result<void> check_offcpu_support() {
  return util::Error{"off-CPU tracing: chokepoint was built without BPF support", kNoBpfHint, 0};
}

struct OffCpuTracer::Impl {};
OffCpuTracer::OffCpuTracer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
OffCpuTracer::~OffCpuTracer() = default;
util::Result<std::unique_ptr<OffCpuTracer>> OffCpuTracer::create(const OffCpuOptions&) {
  return check_offcpu_support().error();
}
util::Result<void> OffCpuTracer::add_target(int) {
  return check_offcpu_support();
}
util::Result<void> OffCpuTracer::start() {
  return check_offcpu_support();
}
util::Result<OffCpuResult> OffCpuTracer::stop() {
  return check_offcpu_support().error();
}
util::Result<OffCpuResult> OffCpuTracer::drain() {
  return check_offcpu_support().error();
}
util::Result<OffCpuResult> OffCpuTracer::run(const std::atomic<bool>*) {
  return check_offcpu_support().error();
}

#else  // CHOKEPOINT_HAVE_BPF

namespace {

using Skeleton = util::Owned<offcpu_bpf, offcpu_bpf__destroy>;

// A cgroup v2 directory: its id (the kernfs inode number) and its depth below the mount root,
// for bpf_get_current_ancestor_cgroup_id.
util::Result<std::pair<std::uint64_t, std::uint32_t>> cgroup_id_and_level(const std::string& path) {
  constexpr long kCgroup2Magic = 0x63677270;
  struct statfs fs {};
  struct stat st {};
  if (::statfs(path.c_str(), &fs) != 0 || ::stat(path.c_str(), &st) != 0) {
    return util::errno_error("cannot read cgroup " + path, "give an existing cgroup directory");
  }
  if (fs.f_type != kCgroup2Magic) {
    return util::Error{path + " is not a cgroup v2 directory",
                       "the off-CPU tracer filters by cgroup v2 only (bpf_get_current_ancestor_"
                       "cgroup_id); give a directory under the cgroup2 mount (see `mount -t "
                       "cgroup2`), or trace the processes with --pid",
                       0};
  }
  std::uint32_t level = 0;
  std::string dir = path;
  while (!dir.empty() && dir.back() == '/') dir.pop_back();
  for (;;) {
    auto slash = dir.rfind('/');
    if (slash == std::string::npos || slash == 0) break;
    std::string parent = dir.substr(0, slash);
    struct statfs pfs {};
    struct stat pst {};
    if (::statfs(parent.c_str(), &pfs) != 0 || pfs.f_type != kCgroup2Magic ||
        ::stat(parent.c_str(), &pst) != 0 || pst.st_dev != st.st_dev) {
      break;
    }
    ++level;
    dir = parent;
  }
  return std::make_pair(static_cast<std::uint64_t>(st.st_ino), level);
}

// The executable's own text mappings: where find_leaf_callers looks for the return address above a
// frameless libc leaf.
offcpu_target text_ranges(const std::string& proc_root, int tgid) {
  offcpu_target t{};
  int slot = 0;
  for (const auto& [start, end] : executable_text_ranges(proc_root, tgid, OFFCPU_MAX_TEXT_RANGES)) {
    t.text_start[slot] = start;
    t.text_end[slot] = end;
    ++slot;
  }
  return t;
}

std::string comm_of(const char* c) {
  return std::string(c, strnlen(c, OFFCPU_TASK_COMM_LEN));
}

}  // namespace

util::Result<void> check_offcpu_support() {
  return check_btf_tracing("off-CPU tracing");
}

struct OffCpuTracer::Impl {
  OffCpuOptions options;
  Skeleton skel;
  std::string attach_kind;
  std::string tp_btf_error;  // why tp_btf was refused, when raw_tp is in use
  bool attached = false;
  std::int64_t attached_at_ns = 0;
  double attached_s = 0;
  std::int64_t drained_at_ns = 0;  // the last drain(), or the start
  // Names the functions that proofs of leaf callers compare (call_site.h); made at the first
  // proof and kept across drains. Not made: proofs fall back to code spans.
  std::unique_ptr<symbolize::Symbolizer> symbolizer;
  bool symbolizer_tried = false;
};

namespace {

// Opens, configures and loads the skeleton with either the tp_btf or the raw_tp programs.
// How the switch program is attached, best first.
enum class Attach { kTpBtfState, kTpBtf, kRawTp };

const char* attach_name(Attach a) {
  switch (a) {
    case Attach::kTpBtfState:
      return "tp_btf";
    case Attach::kTpBtf:
      return "tp_btf (no prev_state)";
    case Attach::kRawTp:
      break;
  }
  return "raw_tp";
}

util::Result<Skeleton> open_and_load(const OffCpuOptions& o, Attach attach) {
  const bool use_tp_btf = attach != Attach::kRawTp;
  LogCapture log;
  Skeleton skel(offcpu_bpf__open());
  if (!skel) return util::errno_error("cannot open the off-CPU BPF object", errno, kNoBpfHint);
  auto* r = skel->rodata;
  r->min_block_ns = o.min_block_ns;
  r->record_wakers = o.waker_stacks;
  r->kernel_stacks = o.kernel_stacks;
  r->user_stacks = o.user_stacks;
  r->leaf_callers = o.leaf_callers;
  r->cache_stacks = o.cache_stacks;
  r->cache_block_kernel_stacks = o.cache_block_kernel_stacks;
  r->interrupt_waker_stacks = o.interrupt_waker_stacks;
  r->window_block_budget =
      o.full_blocks_per_cpu_per_s == 0
          ? 0
          : std::max<std::uint32_t>(
                1, static_cast<std::uint32_t>(std::uint64_t{o.full_blocks_per_cpu_per_s} *
                                              OFFCPU_WINDOW_NS / util::kNsPerSec));
  if (!o.cgroup_path.empty()) {
    auto cg = cgroup_id_and_level(o.cgroup_path);
    if (!cg) return cg.error();
    r->filter_mode = OFFCPU_FILTER_CGROUP;
    r->target_cgroup_id = cg->first;
    r->target_cgroup_level = cg->second;
  } else if (!o.tgids.empty()) {
    r->filter_mode = OFFCPU_FILTER_TGIDS;
  } else {
    r->filter_mode = OFFCPU_FILTER_ALL;
  }
  bpf_map__set_max_entries(skel->maps.stacks, o.max_stacks);
  bpf_map__set_max_entries(skel->maps.counts, o.max_distinct_blocks);
  bpf_map__set_max_entries(skel->maps.start, o.max_blocked_threads);
  bpf_map__set_max_entries(skel->maps.sig_cache, o.max_stacks);
  bpf_program__set_autoload(skel->progs.offcpu_switch, attach == Attach::kTpBtfState);
  bpf_program__set_autoload(skel->progs.offcpu_switch_nostate, attach == Attach::kTpBtf);
  // The waking program always runs: the wakeup ends a block (and drops a short one before any
  // stack walk); waker_stacks only says whether it records the waker.
  bpf_program__set_autoload(skel->progs.offcpu_waking, use_tp_btf);
  bpf_program__set_autoload(skel->progs.offcpu_switch_raw, !use_tp_btf);
  bpf_program__set_autoload(skel->progs.offcpu_waking_raw, !use_tp_btf);

  int err = offcpu_bpf__load(skel.get());
  if (err == 0) return skel;
  err = -err;
  const std::string kind = attach_name(attach);
  if (err == EPERM) return permission_error("cannot load the off-CPU BPF programs", err);
  if (log.mentions_verifier()) {
    return util::errno_error(
        "the kernel's BPF verifier rejected the off-CPU program (" + kind +
            "); its last words:" + log.tail(12),
        err,
        "this kernel differs from what the program was built against: rebuild chokepoint on this "
        "machine (vmlinux.h is generated from its BTF) and report the log above if it persists");
  }
  return util::errno_error("cannot load the off-CPU BPF programs (" + kind + ")" + log.tail(6), err,
                           "check `dmesg` and that the kernel has CONFIG_BPF_SYSCALL and BTF; "
                           "run as root");
}

}  // namespace

OffCpuTracer::OffCpuTracer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
OffCpuTracer::~OffCpuTracer() = default;

util::Result<std::unique_ptr<OffCpuTracer>> OffCpuTracer::create(const OffCpuOptions& options) {
  if (!options.tgids.empty() && !options.cgroup_path.empty()) {
    return util::Error{"off-CPU tracing takes processes or a cgroup, not both",
                       "give either the pids or the cgroup", EINVAL};
  }
  if (auto ok = check_offcpu_support(); !ok) return ok.error();
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  // tp_btf (5.5+) passes typed task pointers, and since 5.18 the state __schedule decided on;
  // raw_tp is the fallback for kernels that refuse tp_btf. Probing is loading:
  // libbpf_probe_bpf_prog_type cannot probe tracing programs without a target.
  Attach attach = Attach::kTpBtfState;
  auto skel = open_and_load(options, attach);
  for (Attach next : {Attach::kTpBtf, Attach::kRawTp}) {
    if (skel || skel.error().errno_value == EPERM) break;
    auto fallback = open_and_load(options, next);
    if (fallback) {
      impl->tp_btf_error = skel.error().message;
      skel = std::move(fallback);
      attach = next;
    } else if (next == Attach::kRawTp) {
      break;  // report the first, most capable attempt's error
    }
  }
  if (!skel) return skel.error();
  impl->skel = std::move(*skel);
  impl->attach_kind = attach_name(attach);
  auto tracer = std::unique_ptr<OffCpuTracer>(new OffCpuTracer(std::move(impl)));
  for (int tgid : options.tgids) {
    if (auto ok = tracer->add_target(tgid); !ok) return ok.error();
  }
  return tracer;
}

util::Result<void> OffCpuTracer::add_target(int tgid) {
  if (!impl_->options.cgroup_path.empty() ||
      (impl_->options.tgids.empty() && impl_->skel->rodata->filter_mode != OFFCPU_FILTER_TGIDS)) {
    return util::Error{"add_target needs a tracer created with target processes",
                       "create the tracer with OffCpuOptions::tgids", EINVAL};
  }
  __u32 key = static_cast<__u32>(tgid);
  offcpu_target value = text_ranges(impl_->options.proc_root, tgid);
  if (bpf_map__update_elem(impl_->skel->maps.targets, &key, sizeof(key), &value, sizeof(value),
                           BPF_ANY) != 0) {
    return util::errno_error("cannot add pid " + std::to_string(tgid) + " to the off-CPU targets",
                             "too many target processes (16384 at most)");
  }
  return {};
}

util::Result<void> OffCpuTracer::start() {
  if (impl_->attached) return {};
  LogCapture log;
  int err = offcpu_bpf__attach(impl_->skel.get());
  if (err != 0) {
    return util::errno_error(
        "cannot attach the off-CPU programs to sched_switch" + log.tail(4), -err,
        "the sched tracepoints must be available (tracefs, CONFIG_TRACEPOINTS)");
  }
  impl_->attached = true;
  impl_->attached_at_ns = util::monotonic_ns();
  impl_->drained_at_ns = impl_->attached_at_ns;
  return {};
}

util::Result<OffCpuResult> OffCpuTracer::stop() {
  if (impl_->attached) {
    offcpu_bpf__detach(impl_->skel.get());
    impl_->attached = false;
    impl_->attached_s +=
        static_cast<double>(util::monotonic_ns() - impl_->attached_at_ns) / util::kNsPerSec;
  }
  return read(false);
}

util::Result<OffCpuResult> OffCpuTracer::drain() {
  const std::int64_t now = util::monotonic_ns();
  auto r = read(true);
  if (r) r->duration_s = static_cast<double>(now - impl_->drained_at_ns) / util::kNsPerSec;
  impl_->drained_at_ns = now;
  return r;
}

util::Result<OffCpuResult> OffCpuTracer::read(bool take) {
  offcpu_bpf* skel = impl_->skel.get();
  OffCpuResult result;
  result.duration_s = impl_->attached_s;
  result.attach_kind = impl_->attach_kind;
  result.min_block_ns = impl_->options.min_block_ns;
  result.max_stack_depth = OFFCPU_MAX_STACK_DEPTH;

  // Drops, summed over the possible CPUs.
  int ncpu = libbpf_num_possible_cpus();
  if (ncpu > 0) {
    std::vector<__u64> per_cpu(static_cast<std::size_t>(ncpu));
    std::uint64_t* slots[] = {&result.drops.stack_collisions,  &result.drops.stack_failures,
                              &result.drops.counts_full,       &result.drops.start_full,
                              &result.drops.cache_hits,        &result.drops.cache_misses,
                              &result.drops.interrupt_wakeups, &result.drops.blocks_traced,
                              &result.drops.blocks_sampled_out};
    static_assert(sizeof(slots) / sizeof(slots[0]) == OFFCPU_DROP_NR);
    for (__u32 i = 0; i < OFFCPU_DROP_NR; ++i) {
      if (bpf_map_lookup_elem(bpf_map__fd(skel->maps.drops), &i, per_cpu.data()) != 0) continue;
      for (__u64 v : per_cpu) *slots[i] += v;
    }
  }

  // Stack ids index "stacks", or "irq_stacks" (shallower) for interrupt wakers.
  const int stacks_fd = bpf_map__fd(skel->maps.stacks);
  const int irq_stacks_fd = bpf_map__fd(skel->maps.irq_stacks);
  std::unordered_map<__s64, std::vector<std::uint64_t>> stack_cache;
  auto stack = [&](__s32 id, bool irq = false) -> const std::vector<std::uint64_t>& {
    const __s64 cache_key = irq ? (__s64{1} << 40) + id : id;
    auto it = stack_cache.find(cache_key);
    if (it != stack_cache.end()) return it->second;
    std::vector<std::uint64_t> frames;
    if (id >= 0) {
      __u64 ips[OFFCPU_MAX_STACK_DEPTH] = {};
      if (bpf_map_lookup_elem(irq ? irq_stacks_fd : stacks_fd, &id, ips) == 0) {
        for (__u64 ip : ips) {
          if (ip == 0) break;
          frames.push_back(ip);
        }
      }
    }
    return stack_cache.emplace(cache_key, std::move(frames)).first->second;
  };

  std::map<int, std::string> process_comms;
  auto process_comm = [&](int tgid, const std::string& fallback) {
    auto it = process_comms.find(tgid);
    if (it != process_comms.end()) return it->second;
    std::string c =
        read_first_line(impl_->options.proc_root + "/" + std::to_string(tgid) + "/comm");
    return process_comms.emplace(tgid, c.empty() ? fallback : c).first->second;
  };

  // Inserts the leaf's caller as frame 1: the first of the kernel side's candidates whose call
  // leads to the leaf (stack[0], the user ip), unless the frame pointer walk already has it.
  // Candidates that are no such return address (a stale word in a slot the leaf never wrote) are
  // skipped; a stack with none proven keeps no caller (call_site.h says why). Proofs are cached
  // per (process, candidate, ip): many keys share them.
  std::uint64_t leaf_checked = 0, leaf_rejected = 0;
  std::map<std::tuple<int, std::uint64_t, std::uint64_t>, bool> proven;
  auto add_leaf_caller = [&](int tgid, const __u64(&candidates)[OFFCPU_LEAF_CANDIDATES],
                             std::vector<std::uint64_t>& stack) {
    if (candidates[0] == 0 || stack.empty()) return false;
    const ReadMemory memory = process_memory(tgid);
    if (!impl_->symbolizer_tried) {
      impl_->symbolizer_tried = true;
      symbolize::SymbolizerOptions so;
      so.proc_root = impl_->options.proc_root;
      so.source_lines = false;
      if (auto made = symbolize::Symbolizer::create(so)) impl_->symbolizer = std::move(*made);
    }
    const FunctionAt function_at = impl_->symbolizer
                                       ? symbolized_function_at(*impl_->symbolizer, tgid)
                                       : FunctionAt([](std::uint64_t) { return std::nullopt; });
    bool checked = false;
    for (__u64 caller : candidates) {
      if (caller == 0) break;
      // The walk has it: the leaf kept a frame (or the word repeats a frame the walk found).
      if (std::find(stack.begin() + 1, stack.end(), caller) != stack.end()) return false;
      if (!checked) ++leaf_checked;
      checked = true;
      auto [it, fresh] = proven.try_emplace({tgid, caller, stack[0]}, false);
      if (fresh) it->second = call_leads_to(caller, stack[0], memory, function_at);
      if (!it->second) continue;
      stack.insert(stack.begin() + 1, caller);
      return true;
    }
    ++leaf_rejected;
    return false;
  };
  const int counts_fd = bpf_map__fd(skel->maps.counts);
  // The keys first: deleting while walking would restart the walk (a hash map's next key after
  // a deleted one is its first). A take is one atomic lookup-and-delete per key (kernel 5.14 for
  // hash maps), so a block the kernel adds meanwhile lands in a fresh entry, never lost.
  std::vector<offcpu_key> keys;
  {
    offcpu_key key{}, next{};
    offcpu_key* prev = nullptr;
    while (bpf_map_get_next_key(counts_fd, prev, &next) == 0) {
      key = next;
      prev = &key;
      keys.push_back(key);
    }
  }
  for (offcpu_key& key : keys) {
    offcpu_value value{};
    if (take ? bpf_map_lookup_and_delete_elem(counts_fd, &key, &value) != 0
             : bpf_map_lookup_elem(counts_fd, &key, &value) != 0) {
      continue;
    }
    OffCpuRecord rec;
    rec.tgid = static_cast<int>(key.tgid);
    rec.tid = static_cast<int>(key.pid);
    rec.comm = comm_of(value.comm);
    rec.process_comm = process_comm(rec.tgid, rec.tgid == rec.tid ? rec.comm : std::string());
    if (rec.process_comm.empty()) rec.process_comm = "pid " + std::to_string(rec.tgid);
    rec.total_ns = value.total_ns;
    rec.count = value.count;
    rec.measured = value.measured;
    if (key.user_stack_id < 0) rec.user_stack_error = -key.user_stack_id;
    if (key.kernel_stack_id < 0) rec.kernel_stack_error = -key.kernel_stack_id;
    rec.user_addresses = stack(key.user_stack_id);
    rec.kernel_addresses = stack(key.kernel_stack_id);
    rec.leaf_caller_added = add_leaf_caller(rec.tgid, key.leaf_callers, rec.user_addresses);
    if (key.waker_kernel_stack_id != -ENOENT) {
      rec.woken = true;
      rec.waker_in_interrupt = key.waker_user_stack_id == -EINTR;
      rec.waker_tgid = static_cast<int>(key.waker_tgid);
      rec.waker_tid = static_cast<int>(key.waker_pid);
      rec.waker_comm = comm_of(value.waker_comm);
      rec.waker_kernel_addresses = stack(key.waker_kernel_stack_id, rec.waker_in_interrupt);
      rec.waker_user_addresses = stack(key.waker_user_stack_id);
      add_leaf_caller(rec.waker_tgid, key.waker_leaf_callers, rec.waker_user_addresses);
    }
    result.records.push_back(std::move(rec));
  }

  if (result.attach_kind != "tp_btf") {
    result.notes.push_back(
        "the kernel's sched_switch tracepoint passes no prev_state (before 5.18): a block whose "
        "wakeup races its switch-out is not counted");
  }
  if (result.attach_kind == "raw_tp") {
    result.notes.push_back(
        "the kernel refused BTF-typed tracepoints (tp_btf), so raw tracepoints were used: the "
        "caller of a frameless libc leaf (fdatasync, futex) cannot be recovered and may be "
        "missing from user stacks (tp_btf: " +
        impl_->tp_btf_error + ")");
  }
  if (leaf_rejected > 0) {
    result.notes.push_back(std::to_string(leaf_rejected) + " of " + std::to_string(leaf_checked) +
                           " stacks kept without the leaf's caller: none of the words above the "
                           "stack pointer was proven to be the return address of a call that "
                           "leads to the leaf (a stale word on a reused stack, a call through a "
                           "register, or the process exited)");
  }
  return result;
}

util::Result<OffCpuResult> OffCpuTracer::run(const std::atomic<bool>* cancel) {
  if (auto ok = start(); !ok) return ok.error();
  const std::int64_t deadline =
      util::monotonic_ns() + static_cast<std::int64_t>(impl_->options.duration_ns);
  while (util::monotonic_ns() < deadline && !(cancel != nullptr && cancel->load())) {
    std::int64_t left = deadline - util::monotonic_ns();
    std::this_thread::sleep_for(
        std::chrono::nanoseconds(std::min<std::int64_t>(left, 50 * util::kNsPerMs)));
  }
  return stop();
}

#endif  // CHOKEPOINT_HAVE_BPF

}  // namespace chokepoint::collect::bpf
