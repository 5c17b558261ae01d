#include "collect/bpf/memory_tracer.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <map>
#include <set>
#include <thread>
#include <tuple>

#include "collect/bpf/bpf_support.h"
#include "collect/bpf/call_site.h"
#include "collect/procfs/proc_fs.h"
#include "symbolize/elf_binary.h"
#include "symbolize/parsers.h"
#include "symbolize/symbolizer.h"
#include "util/clock.h"
#include "util/owned.h"

#ifdef CHOKEPOINT_HAVE_BPF
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpf/memory.h"
#include "memory.skel.h"
#endif

namespace chokepoint::collect::bpf {
namespace {

// The allocator entry points probed, in the order they are attached.
const std::vector<std::string>& probed_functions() {
  static const std::vector<std::string> kFunctions = {
      "malloc",   "calloc", "realloc", "posix_memalign", "aligned_alloc",
      "memalign", "valloc", "free",    "mmap",           "munmap"};
  return kFunctions;
}

// Which allocator a mapped file is, by its name; "" when it is none we know.
std::string allocator_kind(const std::string& path, const std::string& exe) {
  const std::string base = path.substr(path.rfind('/') + 1);
  if (base.starts_with("libjemalloc")) return "jemalloc";
  if (base.starts_with("libtcmalloc")) return "tcmalloc";
  if (base.starts_with("libmimalloc")) return "mimalloc";
  if (base.starts_with("libc.so") || (base.starts_with("libc-") && base.ends_with(".so"))) {
    return "glibc";
  }
  if (path == exe) return "executable";
  return "";
}

}  // namespace

util::Result<std::vector<ProbedAllocator>> find_allocators(int tgid, const std::string& proc_root) {
  const std::string base = proc_root + "/" + std::to_string(tgid);
  const procfs::ProcFs proc(proc_root);
  auto maps = proc.read_text(std::to_string(tgid) + "/maps", true);
  if (!maps) {
    return util::errno_error(
        fmt::format("cannot read the mappings of pid {}", tgid), maps.error().errno_value,
        ::access(base.c_str(), F_OK) != 0 ? "no such process: it exited, or the pid is wrong"
                                          : "run as root to read another user's process");
  }
  std::string exe;  // "" when unreadable: no mapping is then taken for the executable
  if (auto e = proc.read_exe(tgid)) exe = std::move(*e);

  std::vector<ProbedAllocator> out;
  std::set<std::string> seen;
  std::vector<std::string> looked_at;
  // A dynamic loader mapped and no other shared object: the loader has not run yet.
  bool loader = false, libraries = false;
  for (const symbolize::Mapping& m : symbolize::parse_maps(*maps).mappings) {
    if (m.file_backed() && m.path != exe) {
      const std::string name = m.path.substr(m.path.rfind('/') + 1);
      if (name.find(".so") != std::string::npos) {
        if (name.starts_with("ld-")) {
          loader = true;
        } else {
          libraries = true;
        }
      }
    }
    if (!m.executable || !m.file_backed() || !seen.insert(m.path).second) continue;
    const std::string kind = allocator_kind(m.path, exe);
    if (kind.empty()) continue;
    looked_at.push_back(m.path);
    // Through the process's root: the binary it maps, even in another mount namespace.
    auto defined = symbolize::defined_functions(base + "/root" + m.path, probed_functions());
    if (!defined) continue;
    const auto has = [&](const char* f) {
      return std::find(defined->begin(), defined->end(), f) != defined->end();
    };
    if (!has("malloc") || !has("free")) continue;
    out.push_back({tgid, kind, m.path, std::move(*defined)});
  }
  const bool loader_only = loader && !libraries;
  // A replacement allocator that is mapped (preloaded, or linked before libc) is the one malloc
  // calls reach: libc's malloc then sees none, and probing it would only cost attach and detach
  // time. libc keeps its mmap and munmap, which the program may call itself.
  const bool replaced = std::any_of(out.begin(), out.end(), [](const ProbedAllocator& a) {
    return a.kind != "glibc" && a.kind != "executable";
  });
  if (replaced) {
    for (ProbedAllocator& a : out) {
      if (a.kind != "glibc") continue;
      std::erase_if(a.functions, [](const std::string& f) { return f != "mmap" && f != "munmap"; });
    }
  }
  if (out.empty() && loader_only) {
    // Between exec and its dynamic loader mapping the libraries: a command we started, or a
    // wrapper of it (`sh -c 'exec ...'`, unshare, env) that has just exec'd.
    return util::Error{
        fmt::format("pid {} is still loading its libraries (only its dynamic loader is mapped)",
                    tgid),
        "it has just started: give it a moment, or its --pid once it runs", EAGAIN};
  }
  if (out.empty()) {
    std::string where;
    for (const auto& p : looked_at) where += (where.empty() ? "" : ", ") + p;
    return util::Error{
        fmt::format("pid {} maps no allocator with malloc and free symbols to probe{}", tgid,
                    where.empty() ? std::string(" (no libc, jemalloc or tcmalloc is mapped)")
                                  : " (looked at " + where + ")"),
        "a statically linked program must keep its symbol table (do not strip it; malloc and "
        "free must be in .symtab), and a libc must keep .dynsym; a program with its own "
        "allocator under other names cannot be profiled this way",
        ENOENT};
  }
  return out;
}

#ifndef CHOKEPOINT_HAVE_BPF

util::Result<void> check_memory_support() {
  return util::Error{"memory profiling: chokepoint was built without BPF support", kNoBpfHint, 0};
}

struct MemoryTracer::Impl {
  std::vector<ProbedAllocator> allocators;
};
MemoryTracer::MemoryTracer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
MemoryTracer::~MemoryTracer() = default;
util::Result<std::unique_ptr<MemoryTracer>> MemoryTracer::create(const MemoryOptions&) {
  return check_memory_support().error();
}
const std::vector<ProbedAllocator>& MemoryTracer::allocators() const {
  return impl_->allocators;
}
bool MemoryTracer::any_target_alive() const {
  return false;
}
util::Result<void> MemoryTracer::start() {
  return check_memory_support();
}
util::Result<MemoryResult> MemoryTracer::stop() {
  return check_memory_support().error();
}
util::Result<MemoryResult> MemoryTracer::run(const std::atomic<bool>*) {
  return check_memory_support().error();
}

#else  // CHOKEPOINT_HAVE_BPF

namespace {

using Skeleton = util::Owned<memory_bpf, memory_bpf__destroy>;

struct LinkDeleter {
  void operator()(bpf_link* link) const { bpf_link__destroy(link); }
};
using Link = std::unique_ptr<bpf_link, LinkDeleter>;

// Calls fn(key, value) for every entry of a hash map.
template <typename Key, typename Value, typename Fn>
void for_each_entry(int fd, const Fn& fn) {
  Key key{}, next{};
  Key* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    key = next;
    prev = &key;
    Value value{};
    if (bpf_map_lookup_elem(fd, &key, &value) == 0) fn(key, value);
  }
}

// Destroys the links, in parallel: each detach waits for RCU grace periods (0.1 to 1.4 s per
// uprobe measured here), and waiting for them one after another would take seconds.
void detach(std::vector<Link>& links) {
  std::vector<std::thread> threads;
  threads.reserve(links.size());
  for (Link& link : links) {
    threads.emplace_back([l = std::move(link)]() mutable { l.reset(); });
  }
  for (std::thread& t : threads) t.join();
  links.clear();
}

constexpr const char* kUprobePmu = "/sys/bus/event_source/devices/uprobe/type";

// Alive: present and not a zombie (a launched child that exited stays until it is reaped).
bool process_alive(const std::string& proc_root, int tgid) {
  const std::string stat = read_first_line(proc_root + "/" + std::to_string(tgid) + "/stat");
  const auto paren = stat.rfind(')');  // comm may hold ')' (proc(5): split at the last one)
  if (paren == std::string::npos || paren + 2 >= stat.size()) return false;
  const char state = stat[paren + 2];  // (3) state
  return state != 'Z' && state != 'X';
}

}  // namespace

util::Result<void> check_memory_support() {
  if (::access(kUprobePmu, F_OK) != 0) {
    return util::errno_error(
        "memory profiling needs uprobes, and this kernel has none (" + std::string(kUprobePmu) +
            " is missing)",
        ENOENT,
        "use a kernel built with CONFIG_UPROBE_EVENTS=y (Debian's is); meanwhile a heap profiler "
        "inside the process (jemalloc's prof, tcmalloc's heap profiler, heaptrack) needs none");
  }
  return check_unprivileged_bpf("memory profiling");
}

struct MemoryTracer::Impl {
  MemoryOptions options;
  std::vector<ProbedAllocator> allocators;
  Skeleton skel;
  std::vector<Link> links;
  bool running = false;  // attached and recording (enabled)
  std::int64_t attached_at_ns = 0;
  double attached_s = 0;
};

MemoryTracer::MemoryTracer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
MemoryTracer::~MemoryTracer() {
  detach(impl_->links);
}

const std::vector<ProbedAllocator>& MemoryTracer::allocators() const {
  return impl_->allocators;
}

bool MemoryTracer::any_target_alive() const {
  return std::any_of(impl_->options.tgids.begin(), impl_->options.tgids.end(),
                     [&](int tgid) { return process_alive(impl_->options.proc_root, tgid); });
}

util::Result<std::unique_ptr<MemoryTracer>> MemoryTracer::create(const MemoryOptions& options) {
  if (options.tgids.empty()) {
    return util::Error{"memory profiling needs a target process",
                       "give --pid PID, --name NAME or a command to start", EINVAL};
  }
  if (auto ok = check_memory_support(); !ok) return ok.error();
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  for (int tgid : options.tgids) {
    auto found = find_allocators(tgid, options.proc_root);
    // A process still loading its libraries (a command just started, or a wrapper that just
    // exec'd it) maps its allocator within milliseconds: wait for it, up to 2 s.
    for (int i = 0; i < 100 && !found && found.error().errno_value == EAGAIN; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      found = find_allocators(tgid, options.proc_root);
    }
    if (!found) return found.error();
    impl->allocators.insert(impl->allocators.end(), found->begin(), found->end());
  }

  LogCapture log;
  Skeleton skel(memory_bpf__open());
  if (!skel) return util::errno_error("cannot open the memory BPF object", errno, kNoBpfHint);
  auto* r = skel->rodata;
  // Exponential distances (mean T) at the midpoints of 1024 equal-probability slots, and the
  // weight s / (1 - exp(-s / T)) of an allocation of s bytes: its chance to cross the countdown.
  const double period = static_cast<double>(options.sample_period_bytes);
  r->sample_period = options.sample_period_bytes;
  if (options.sample_period_bytes > 0) {
    for (int i = 0; i < MEMORY_DISTANCE_SLOTS; ++i) {
      const double u = (i + 0.5) / MEMORY_DISTANCE_SLOTS;
      r->distances[i] = static_cast<__u64>(std::llround(-period * std::log(1.0 - u)));
    }
    const std::uint64_t step =
        std::max<std::uint64_t>(1, options.sample_period_bytes / MEMORY_WEIGHT_STEPS_PER_PERIOD);
    r->weight_step = step;
    for (int i = 0; i < MEMORY_WEIGHT_SLOTS; ++i) {
      const double s = (i + 0.5) * static_cast<double>(step);
      r->weights[i] = static_cast<__u64>(std::llround(s / -std::expm1(-s / period)));
    }
  }
  bpf_map__set_max_entries(skel->maps.allocs, options.max_live_samples);
  int err = memory_bpf__load(skel.get());
  if (err != 0) {
    err = -err;
    if (err == EPERM) return permission_error("cannot load the memory BPF programs", err);
    return util::errno_error(
        "cannot load the memory BPF programs" + log.tail(log.mentions_verifier() ? 12 : 6), err,
        "this kernel differs from what the program was built against: rebuild chokepoint on this "
        "machine, and check `dmesg`");
  }
  for (int tgid : options.tgids) {
    const __u32 key = static_cast<__u32>(tgid);
    memory_target text{};
    int slot = 0;
    for (const auto& [start, end] :
         executable_text_ranges(options.proc_root, tgid, MEMORY_MAX_TEXT_RANGES)) {
      text.text_start[slot] = start;
      text.text_end[slot] = end;
      ++slot;
    }
    if (bpf_map__update_elem(skel->maps.targets, &key, sizeof(key), &text, sizeof(text), BPF_ANY) !=
        0) {
      return util::errno_error("cannot add pid " + std::to_string(tgid) + " to the targets",
                               "1024 target processes at most");
    }
  }
  impl->skel = std::move(skel);
  return std::unique_ptr<MemoryTracer>(new MemoryTracer(std::move(impl)));
}

util::Result<void> MemoryTracer::start() {
  memory_bpf* skel = impl_->skel.get();
  if (impl_->running) return {};
  if (!impl_->links.empty()) {
    skel->data->enabled = true;  // started again after a stop(): the probes are still in
    impl_->running = true;
    impl_->attached_at_ns = util::monotonic_ns();
    return {};
  }
  LogCapture log;
  auto attach_uprobe = [&](bpf_program* prog, const ProbedAllocator& a, const std::string& fn,
                           bool ret) -> util::Result<void> {
    // Not LIBBPF_OPTS: a C compound literal in a statement expression, which C++ does not have.
    bpf_uprobe_opts opts{};
    opts.sz = sizeof(opts);
    opts.retprobe = ret;
    opts.func_name = fn.c_str();
    const std::string binary =
        impl_->options.proc_root + "/" + std::to_string(a.tgid) + "/root" + a.path;
    bpf_link* link = bpf_program__attach_uprobe_opts(prog, a.tgid, binary.c_str(), 0, &opts);
    if (link == nullptr) {
      const int e = errno;
      if (!process_alive(impl_->options.proc_root, a.tgid)) {
        return util::errno_error(
            fmt::format("pid {} exited before its allocator was probed", a.tgid), ESRCH,
            "profile a process that is running");
      }
      return util::errno_error(
          fmt::format("cannot attach a {} to {} in {} (pid {}){}", ret ? "uretprobe" : "uprobe", fn,
                      a.path, a.tgid, log.tail(3)),
          e, "uprobes must be enabled (CONFIG_UPROBE_EVENTS) and the binary readable");
    }
    impl_->links.emplace_back(link);
    return {};
  };
  for (const ProbedAllocator& a : impl_->allocators) {
    for (const std::string& fn : a.functions) {
      bpf_program* entry = nullptr;
      bpf_program* exit = skel->progs.memory_alloc_return;
      if (fn == "malloc" || fn == "valloc") entry = skel->progs.memory_malloc;
      if (fn == "calloc") entry = skel->progs.memory_calloc;
      if (fn == "realloc") entry = skel->progs.memory_realloc;
      if (fn == "aligned_alloc" || fn == "memalign") entry = skel->progs.memory_aligned_alloc;
      if (fn == "posix_memalign") {
        entry = skel->progs.memory_posix_memalign;
        exit = skel->progs.memory_posix_memalign_return;
      }
      if (fn == "free") {
        entry = skel->progs.memory_free;
        exit = nullptr;
      }
      if (impl_->options.trace_mmap && fn == "mmap") {
        entry = skel->progs.memory_mmap;
        exit = skel->progs.memory_mmap_return;
      }
      if (impl_->options.trace_mmap && fn == "munmap") {
        entry = skel->progs.memory_munmap;
        exit = nullptr;
      }
      if (entry == nullptr) continue;
      // The return probe first: an entry without its return would leave the thread's nesting
      // depth raised.
      if (exit != nullptr) {
        if (auto ok = attach_uprobe(exit, a, fn, true); !ok) {
          impl_->links.clear();
          return ok;
        }
      }
      if (auto ok = attach_uprobe(entry, a, fn, false); !ok) {
        impl_->links.clear();
        return ok;
      }
    }
  }
  skel->data->enabled = true;
  impl_->running = true;
  impl_->attached_at_ns = util::monotonic_ns();
  return {};
}

util::Result<MemoryResult> MemoryTracer::stop() {
  memory_bpf* skel = impl_->skel.get();
  if (impl_->running) {
    impl_->running = false;
    // The window ends here: the programs stop recording at once (the entries' returns still
    // balance the nesting depth, as is_target is checked at entry only). The probes stay attached
    // until the tracer is destroyed: detaching takes up to a second per probe on these VMs (RCU
    // grace periods), time better spent after the caller has symbolized.
    skel->data->enabled = false;
    impl_->attached_s +=
        static_cast<double>(util::monotonic_ns() - impl_->attached_at_ns) / util::kNsPerSec;
  }
  MemoryResult result;
  result.duration_s = impl_->attached_s;
  result.sample_period_bytes = impl_->options.sample_period_bytes;
  result.max_stack_depth = MEMORY_MAX_STACK_DEPTH;
  result.allocators = impl_->allocators;

  const int ncpu = libbpf_num_possible_cpus();
  if (ncpu > 0) {
    std::vector<__u64> per_cpu(static_cast<std::size_t>(ncpu));
    MemoryCounters& c = result.counters;
    std::uint64_t* slots[] = {&c.alloc_calls, &c.sampled,        &c.frees_matched, &c.allocs_full,
                              &c.stats_full,  &c.stack_failures, &c.free_calls};
    static_assert(sizeof(slots) / sizeof(slots[0]) == MEMORY_COUNTER_NR);
    for (__u32 i = 0; i < MEMORY_COUNTER_NR; ++i) {
      if (bpf_map_lookup_elem(bpf_map__fd(skel->maps.counters), &i, per_cpu.data()) != 0) continue;
      for (__u64 v : per_cpu) *slots[i] += v;
    }
  }

  // Per (tgid, stack): what was allocated and freed ("stats"), and what is live ("allocs").
  std::map<std::tuple<int, int, std::uint64_t>, MemoryRecord> by_stack;
  auto record = [&](__u32 tgid, __s32 stack_id, __u64 leaf_caller) -> MemoryRecord& {
    MemoryRecord& rec = by_stack[{static_cast<int>(tgid), stack_id, leaf_caller}];
    rec.tgid = static_cast<int>(tgid);
    return rec;
  };
  const int stats_fd = bpf_map__fd(skel->maps.stats);
  for_each_entry<memory_stack_key, memory_stack_value>(
      stats_fd, [&](const memory_stack_key& key, const memory_stack_value& v) {
        MemoryRecord& rec = record(key.tgid, key.stack_id, key.leaf_caller);
        rec.allocated_bytes += v.alloc_bytes;
        rec.allocated_samples += v.alloc_samples;
        rec.freed_bytes += v.freed_bytes;
        rec.freed_samples += v.freed_samples;
      });
  const int allocs_fd = bpf_map__fd(skel->maps.allocs);
  for_each_entry<memory_alloc_key, memory_alloc>(
      allocs_fd, [&](const memory_alloc_key& key, const memory_alloc& a) {
        MemoryRecord& rec = record(key.tgid, a.stack_id, a.leaf_caller);
        rec.live_bytes += a.weight_bytes;
        rec.live_samples += 1;
      });
  const int stacks_fd = bpf_map__fd(skel->maps.stacks);
  std::map<int, std::string> comms;
  std::uint64_t leaf_checked = 0, leaf_rejected = 0;
  // Names the functions the proofs of leaf callers compare (call_site.h), made at the first.
  std::unique_ptr<symbolize::Symbolizer> symbolizer;
  bool symbolizer_tried = false;
  for (auto& [id, rec] : by_stack) {
    const int stack_id = std::get<1>(id);
    const std::uint64_t leaf_caller = std::get<2>(id);
    if (stack_id >= 0) {
      __u64 ips[MEMORY_MAX_STACK_DEPTH] = {};
      if (bpf_map_lookup_elem(stacks_fd, &stack_id, ips) == 0) {
        for (__u64 ip : ips) {
          if (ip == 0) break;
          rec.user_addresses.push_back(ip);
        }
      }
    } else {
      rec.stack_error = -stack_id;
    }
    // The caller of a frameless wrapper (operator new): after the leaf, unless the frame-pointer
    // walk has it already, and only when the call before it leads to the wrapper the allocator
    // returned into (user_addresses[0]): a stale word on a reused stack is left out
    // (collect/bpf/call_site.h).
    if (leaf_caller != 0 && !rec.user_addresses.empty() &&
        std::find(rec.user_addresses.begin(), rec.user_addresses.end(), leaf_caller) ==
            rec.user_addresses.end()) {
      ++leaf_checked;
      if (!symbolizer_tried) {
        symbolizer_tried = true;
        symbolize::SymbolizerOptions so;
        so.proc_root = impl_->options.proc_root;
        so.source_lines = false;
        if (auto made = symbolize::Symbolizer::create(so)) symbolizer = std::move(*made);
      }
      const FunctionAt function_at = symbolizer
                                         ? symbolized_function_at(*symbolizer, rec.tgid)
                                         : FunctionAt([](std::uint64_t) { return std::nullopt; });
      if (call_leads_to(leaf_caller, rec.user_addresses[0], process_memory(rec.tgid),
                        function_at)) {
        rec.user_addresses.insert(rec.user_addresses.begin() + 1, leaf_caller);
        rec.leaf_caller_added = true;
      } else {
        ++leaf_rejected;
      }
    }
    auto it = comms.find(rec.tgid);
    if (it == comms.end()) {
      std::string c =
          read_first_line(impl_->options.proc_root + "/" + std::to_string(rec.tgid) + "/comm");
      it = comms.emplace(rec.tgid, c.empty() ? "pid " + std::to_string(rec.tgid) : c).first;
    }
    rec.process_comm = it->second;
    result.records.push_back(std::move(rec));
  }
  for (int tgid : impl_->options.tgids) {
    if (!process_alive(impl_->options.proc_root, tgid)) result.exited.push_back(tgid);
  }
  if (leaf_rejected > 0) {
    result.notes.push_back(fmt::format(
        "{} of {} stacks kept without the caller of the allocator's wrapper: it could not be "
        "confirmed (the process exited, or the word above the stack pointer was not the return "
        "address of a call that leads to the wrapper)",
        leaf_rejected, leaf_checked));
  }
  return result;
}

util::Result<MemoryResult> MemoryTracer::run(const std::atomic<bool>* cancel) {
  if (auto ok = start(); !ok) return ok.error();
  const std::int64_t deadline =
      util::monotonic_ns() + static_cast<std::int64_t>(impl_->options.duration_ns);
  while (util::monotonic_ns() < deadline && !(cancel != nullptr && cancel->load())) {
    if (!any_target_alive()) break;
    const std::int64_t left = deadline - util::monotonic_ns();
    std::this_thread::sleep_for(
        std::chrono::nanoseconds(std::min<std::int64_t>(left, 50 * util::kNsPerMs)));
  }
  return stop();
}

#endif  // CHOKEPOINT_HAVE_BPF

}  // namespace chokepoint::collect::bpf
