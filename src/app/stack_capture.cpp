#include "app/stack_capture.h"

#include <fmt/format.h>
#include <linux/magic.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <set>
#include <span>
#include <unordered_set>
#include <vector>

#include "collect/bpf/memory_tracer.h"
#include "collect/bpf/offcpu_tracer.h"
#include "collect/procfs/proc_fs.h"
#include "model/wait.h"
#include "profile/aggregate.h"
#include "util/clock.h"
#include "util/fd_limit.h"
#include "util/plural.h"

namespace chokepoint::app {

void SymbolizerResolver::note(int pid, const util::Result<void>& r) {
  if (!r && noted_.insert(pid).second) {
    notes_.push_back(
        fmt::format("pid {}: its mappings could not be read ({}); its frames are "
                    "unresolved",
                    pid, r.error().message));
  }
}

namespace {

// Durations for a median in bounded memory: every stride-th one is kept, and when the list fills
// it is thinned to every other entry and the stride doubled, so a long high-frequency run keeps an
// even subsample.
class DurationSample {
 public:
  void add(std::int64_t ns) {
    if (seen_++ % stride_ == 0) kept_.push_back(ns);
    if (kept_.size() < kMaxKept) return;
    for (std::size_t i = 0; i < kept_.size() / 2; ++i) kept_[i] = kept_[2 * i];
    kept_.resize(kept_.size() / 2);
    stride_ *= 2;
  }
  double median_ns() {
    if (kept_.empty()) return 0;
    auto mid = kept_.begin() + static_cast<std::ptrdiff_t>(kept_.size() / 2);
    std::nth_element(kept_.begin(), mid, kept_.end());
    return static_cast<double>(*mid);
  }

 private:
  static constexpr std::size_t kMaxKept = 65536;
  std::vector<std::int64_t> kept_;
  std::uint64_t seen_ = 0, stride_ = 1;
};

// How long to capture: duration_ns, or less when that would end after end_ns (at least 10 ms, so
// that a late start still yields a sample of what runs).
std::int64_t capture_ns(std::int64_t duration_ns, std::int64_t end_ns) {
  if (end_ns <= 0) return duration_ns;
  const std::int64_t left = end_ns - util::monotonic_ns();
  return std::clamp<std::int64_t>(left, std::min<std::int64_t>(duration_ns, 10 * util::kNsPerMs),
                                  duration_ns);
}

std::string cut_short_note(std::int64_t asked_ns, std::int64_t run_ns) {
  return fmt::format(
      "the capture ran {:.2f} s of the {:.1f} s asked: starting it took long (a busy machine, "
      "many threads), and the run keeps its deadline",
      static_cast<double>(run_ns) / 1e9, static_cast<double>(asked_ns) / 1e9);
}

// Threads that never ran while the tracer was attached: blocked for the whole window (a deadlock,
// a wait for something that never comes). The tracer counts a block at its wakeup (or switch-in),
// so such a thread never appears in its records; /proc names it instead. Keyed by (pid, tid).
using QuietThreads = std::map<std::pair<int, int>, collect::procfs::Schedstat>;

QuietThreads snapshot_threads(const collect::procfs::ProcFs& proc, const std::vector<int>& pids) {
  QuietThreads out;
  for (int pid : pids) {
    auto tids = proc.list_tids(pid);
    if (!tids) continue;
    for (int tid : *tids) {
      if (auto st = proc.read_task_schedstat(pid, tid)) out[{pid, tid}] = *st;
    }
  }
  return out;
}

// Adds a stack for every thread of `before` whose schedstat did not move (it never ran) and that
// is still blocked: its kernel stack (/proc/PID/task/TID/stack, innermost last once reversed)
// under a frame naming the syscall it waits in; its user stack is not known (the tracer takes
// stacks at a switch-out, and this one happened before the window). Returns how many it added.
std::size_t add_whole_window_blocks(const collect::procfs::ProcFs& proc, const QuietThreads& before,
                                    std::uint64_t window_ns, bool thread_frames,
                                    profile::Profile& p) {
  std::size_t added = 0;
  for (const auto& [key, sched] : before) {
    const auto [pid, tid] = key;
    auto now = proc.read_task_schedstat(pid, tid);
    if (!now || now->run_ns != sched.run_ns || now->timeslices != sched.timeslices) continue;
    auto st = proc.read_task_stat(pid, tid);
    if (!st || st->state == 'R' || st->state == 'Z' || st->state == 'X') continue;
    auto leader = proc.read_task_stat(pid, pid);
    profile::Stack s;
    s.value = window_ns;
    s.count = 1;
    profile::Frame root;
    root.kind = profile::FrameKind::kProcess;
    root.name = (leader ? leader->comm : std::string()) + " (" + std::to_string(pid) + ")";
    s.frames.push_back(root);
    if (thread_frames) {
      profile::Frame t;
      t.kind = profile::FrameKind::kThread;
      t.name = st->comm + " (" + std::to_string(tid) + ")";
      s.frames.push_back(t);
    }
    std::string where = "blocked";
    if (auto sc = proc.read_task_syscall(pid, tid);
        sc && sc->kind == collect::procfs::SyscallState::Kind::kInSyscall) {
      where = "in " + model::syscall_name(static_cast<long>(sc->nr));
    }
    profile::Frame user;
    user.kind = profile::FrameKind::kUnresolved;
    user.name = "[" + where + " for the whole window]";
    user.unresolved = "the thread never woke while traced: its user stack was not taken";
    s.frames.push_back(user);
    if (auto text =
            proc.read_text(std::to_string(pid) + "/task/" + std::to_string(tid) + "/stack", true)) {
      std::vector<profile::Frame> kernel;  // innermost first
      for (auto& name : collect::procfs::parse_kernel_stack(*text)) {
        profile::Frame f;
        f.kind = profile::FrameKind::kKernel;
        f.name = std::move(name);
        f.module = "[kernel]";
        kernel.push_back(std::move(f));
      }
      s.frames.insert(s.frames.end(), kernel.rbegin(), kernel.rend());
    }
    p.stacks.push_back(std::move(s));
    ++added;
  }
  return added;
}

bool is_cgroup2(const std::string& path) {
  struct statfs fs {};
  return statfs(path.c_str(), &fs) == 0 &&
         static_cast<unsigned long>(fs.f_type) == CGROUP2_SUPER_MAGIC;
}

}  // namespace

util::Result<OnCpuCapture> capture_on_cpu(
    const collect::perf::PerfOptions& options, bool thread_frames, std::int64_t duration_ns,
    symbolize::Symbolizer& symbolizer, const std::atomic<bool>* stop,
    const std::function<void(const collect::perf::PerfInfo&)>& on_open, std::int64_t end_ns) {
  util::raise_fd_limit_to_hard();  // one perf event per thread
  SymbolizerResolver resolver(symbolizer);
  std::unique_ptr<symbolize::DwarfUnwinder> unwinder;
  if (options.user_stack_bytes > 0) {
    auto u = symbolize::DwarfUnwinder::create();
    if (!u) return u.error();
    unwinder = std::move(u).value();
  }
  // The capture may end at end_ns after duration_ns of sampling: what comes before that is the
  // start-up's share, and opening the events stops there (app/run_budget.h).
  collect::perf::PerfOptions opened_by = options;
  if (end_ns > 0 && opened_by.open_deadline_ns == 0)
    opened_by.open_deadline_ns = end_ns - duration_ns;
  auto sampler = collect::perf::PerfSampler::open(opened_by);
  if (!sampler) return sampler.error();
  if (on_open) on_open(sampler->info());
  const std::uint64_t regs_mask = sampler->info().regs_user_mask;
  profile::StackAggregator aggregator({.thread_frames = thread_frames});
  std::vector<std::uint64_t> unwound;
  DurationSample unwind_times;
  const std::int64_t run_ns = capture_ns(duration_ns, end_ns);
  auto stats =
      sampler->run(run_ns, stop,
                   [&](const collect::perf::Sample& s, std::string_view process_name,
                       std::string_view thread_name) {
                     int pid = static_cast<int>(s.pid);
                     resolver.attach_once(pid);
                     std::span<const std::uint64_t> user_ips = s.user_ips;
                     if (unwinder) {
                       const std::int64_t t0 = util::monotonic_ns();
                       unwinder->unwind(pid, static_cast<int>(s.tid),
                                        {.abi = s.regs_abi,
                                         .regs_mask = regs_mask,
                                         .regs = s.user_regs,
                                         .stack = s.user_stack,
                                         .stack_requested_bytes = s.user_stack_requested_bytes},
                                        unwound);
                       unwind_times.add(util::monotonic_ns() - t0);
                       user_ips = unwound;
                     }
                     aggregator.add({.pid = pid,
                                     .tid = static_cast<int>(s.tid),
                                     .process_name = process_name,
                                     .thread_name = thread_name,
                                     .kernel_ips = s.kernel_ips,
                                     .user_ips = user_ips,
                                     .value = 1,
                                     .count = 1});
                   });
  if (!stats) return stats.error();
  OnCpuCapture c;
  c.cut_short = run_ns < duration_ns;
  if (unwinder) {
    c.dwarf = true;
    c.unwind = unwinder->stats();
    c.unwind_median_us = unwind_times.median_ns() / 1e3;
  }
  c.info = sampler->info();
  c.stats = *stats;
  c.distinct_stacks = aggregator.distinct_stacks();
  profile::Profile& p = c.profile;
  p.off_cpu = false;
  p.weight = profile::Weight::kSamples;
  p.frequency_hz = options.frequency_hz;
  p.duration_s = stats->duration_s;
  p.lost_samples = stats->records.lost;
  p.truncated_stacks = stats->records.truncated + c.unwind.truncated();
  p.failed_stacks = stats->records.empty_stacks;
  c.build_start_ns = util::monotonic_ns();
  aggregator.build(resolver, p);
  p.notes = sampler->notes();
  if (unwinder) {
    for (const auto& n : unwinder->notes()) p.notes.push_back(n);
  }
  for (const auto& n : symbolizer.notes()) p.notes.push_back(n);
  for (const auto& n : resolver.notes()) p.notes.push_back(n);
  if (c.cut_short) p.notes.push_back(cut_short_note(duration_ns, run_ns));
  if (p.lost_samples > 0) {
    p.notes.push_back(
        fmt::format("{} samples were lost (the ring buffer was full): shares are "
                    "computed from the {} that arrived",
                    p.lost_samples, stats->records.samples));
  }
  if (stats->records.samples == 0) {
    p.notes.push_back(
        "no samples: the target did not run on a CPU during the window (idle, or blocked); "
        "profile it under load, for longer, or look at its off-CPU time (--off-cpu)");
  }
  return c;
}

namespace {

// Waits until `end` (util::monotonic_ns()) or *stop, calling `poll` every poll_ns; false as soon as
// poll says the target is gone, true otherwise.
bool wait_window(std::int64_t end, const std::atomic<bool>* stop, std::int64_t poll_ns,
                 const std::function<bool()>& poll) {
  while (!(stop && stop->load())) {
    const std::int64_t now = util::monotonic_ns();
    if (now >= end) break;
    usleep(static_cast<useconds_t>(std::min<std::int64_t>(end - now, poll_ns) / 1000));
    if (!poll()) return false;
  }
  return true;
}

}  // namespace

util::Result<OffCpuCapture> capture_off_cpu(
    const collect::sampler::TargetSpec& t, const OffCpuSettings& settings, std::int64_t duration_ns,
    symbolize::Symbolizer& symbolizer, const std::atomic<bool>* stop,
    const std::function<void(std::uint64_t)>& on_start, std::int64_t end_ns) {
  using Kind = collect::sampler::TargetSpec::Kind;
  collect::procfs::ProcFs proc;
  if (auto v = collect::sampler::validate(t, proc); !v) return v.error();
  collect::bpf::OffCpuOptions o;
  o.duration_ns = static_cast<std::uint64_t>(duration_ns);
  o.kernel_stacks = settings.kernel_stacks;
  o.full_blocks_per_cpu_per_s = settings.full_blocks_per_cpu_per_s;
  // A cgroup v2 target is filtered in the kernel by cgroup id; the host is every task; anything
  // else is a set of processes, re-resolved every 200 ms to add the ones that start.
  const bool follow =
      t.kind != Kind::kHost && !(t.kind == Kind::kCgroup && is_cgroup2(t.cgroup_path));
  std::set<int> attached;
  if (t.kind == Kind::kCgroup && !follow) o.cgroup_path = t.cgroup_path;
  if (follow) {
    auto pids = collect::sampler::resolve_pids(t, proc);
    if (!pids) return pids.error();
    if (pids->empty()) {
      return util::Error{"the target has no process to trace", "check that it is running", ESRCH};
    }
    o.tgids = *pids;
  }
  for (int pid : o.tgids) {
    if (symbolizer.attach(pid)) attached.insert(pid);
  }
  // The whole host has too many threads to read twice; a cgroup v2 target is resolved here only
  // for this.
  QuietThreads quiet;
  if (settings.whole_window_blocks && t.kind != Kind::kHost) {
    auto pids =
        follow ? util::Result<std::vector<int>>(o.tgids) : collect::sampler::resolve_pids(t, proc);
    if (pids) quiet = snapshot_threads(proc, *pids);
  }
  auto tracer = collect::bpf::OffCpuTracer::create(o);
  if (!tracer) return tracer.error();
  if (on_start) on_start(o.min_block_ns);
  if (auto r = (*tracer)->start(); !r) return r.error();
  const std::int64_t run_ns = capture_ns(duration_ns, end_ns);
  const std::int64_t end = util::monotonic_ns() + run_ns;
  const bool exited = !wait_window(end, stop, 200 * util::kNsPerMs, [&] {
    if (!follow) return true;
    auto pids = collect::sampler::resolve_pids(t, proc);
    if (!pids) return true;
    if (pids->empty()) return false;
    for (int pid : *pids) {
      if (attached.count(pid)) continue;
      if ((*tracer)->add_target(pid)) {
        if (symbolizer.attach(pid)) attached.insert(pid);
      }
    }
    return true;
  });
  auto result = (*tracer)->stop();
  if (!result) return result.error();
  OffCpuCapture c;
  c.cut_short = run_ns < duration_ns;
  c.target_exited = exited;
  c.duration_s = result->duration_s;
  c.attach_kind = result->attach_kind;
  c.min_block_ns = result->min_block_ns;
  c.build_start_ns = util::monotonic_ns();
  c.profile = collect::bpf::to_profile(*result, symbolizer,
                                       {.thread_frames = settings.thread_frames,
                                        .wakers = settings.wakers,
                                        .attached_pids = attached});
  if (c.cut_short) c.profile.notes.push_back(cut_short_note(duration_ns, run_ns));
  for (const auto& r : result->records) {
    c.blocks += r.count;
    c.blocked_ns += r.total_ns;
    c.blocks_measured += r.measured;
  }
  const auto window_ns = static_cast<std::uint64_t>(result->duration_s * 1e9);
  if (const std::size_t whole =
          add_whole_window_blocks(proc, quiet, window_ns, settings.thread_frames, c.profile);
      whole > 0) {
    c.blocks += whole;
    c.blocks_measured += whole;
    c.blocked_ns += whole * window_ns;
    c.profile.notes.push_back(fmt::format(
        "{} blocked for the whole window (never ran): shown with the syscall waited in and the "
        "kernel stack from /proc; the user stack is not known",
        util::count_of(whole, "thread was", "threads were")));
  }
  return c;
}

util::Result<MemoryCapture> capture_memory(
    const collect::sampler::TargetSpec& t, std::uint64_t sample_period_bytes,
    std::int64_t duration_ns, symbolize::Symbolizer& symbolizer, const std::atomic<bool>* stop,
    const std::function<void(const std::vector<collect::bpf::ProbedAllocator>&)>& on_start,
    std::int64_t end_ns) {
  using Kind = collect::sampler::TargetSpec::Kind;
  if (t.kind == Kind::kHost) {
    return util::Error{"memory profiling needs a target process",
                       "give --pid PID, --name NAME, --cgroup DIR or a command: the probes go "
                       "into each process's allocator",
                       EINVAL};
  }
  if (auto ok = collect::bpf::check_memory_support(); !ok) return ok.error();
  collect::procfs::ProcFs proc;
  if (auto v = collect::sampler::validate(t, proc); !v) return v.error();
  auto pids = collect::sampler::resolve_pids(t, proc);
  if (!pids) return pids.error();
  if (pids->empty()) {
    return util::Error{"the target has no process to trace", "check that it is running", ESRCH};
  }
  if (t.kind == Kind::kCommand) {
    // Right after exec the dynamic loader may not have mapped libc yet.
    const std::int64_t give_up = util::monotonic_ns() + 2 * util::kNsPerSec;
    while (!collect::bpf::find_allocators(t.pid) && util::monotonic_ns() < give_up) {
      usleep(20'000);
    }
  }
  collect::bpf::MemoryOptions o;
  o.tgids = *pids;
  o.sample_period_bytes = sample_period_bytes;
  o.duration_ns = static_cast<std::uint64_t>(duration_ns);
  std::set<int> attached;
  for (int pid : o.tgids) {
    if (symbolizer.attach(pid)) attached.insert(pid);
  }
  auto tracer = collect::bpf::MemoryTracer::create(o);
  if (!tracer) return tracer.error();
  if (auto r = (*tracer)->start(); !r) return r.error();
  if (on_start) on_start((*tracer)->allocators());
  const std::int64_t run_ns = capture_ns(duration_ns, end_ns);
  const std::int64_t end = util::monotonic_ns() + run_ns;
  const bool exited =
      !wait_window(end, stop, 100 * util::kNsPerMs, [&] { return (*tracer)->any_target_alive(); });
  auto result = (*tracer)->stop();
  if (!result) return result.error();
  MemoryCapture c;
  c.tracer = std::move(*tracer);
  c.cut_short = run_ns < duration_ns;
  c.target_exited = exited || !result->exited.empty();
  c.duration_s = result->duration_s;
  c.counters = result->counters;
  c.allocators = result->allocators;
  c.sample_period_bytes = result->sample_period_bytes;
  c.build_start_ns = util::monotonic_ns();
  for (const auto& r : result->records) {
    c.live_bytes += r.live_bytes;
    c.allocated_bytes += r.allocated_bytes;
  }
  c.live = collect::bpf::to_profile(
      *result, symbolizer, {.view = collect::bpf::MemoryView::kLive, .attached_pids = attached});
  c.allocated = collect::bpf::to_profile(
      *result, symbolizer,
      {.view = collect::bpf::MemoryView::kAllocated, .attached_pids = attached});
  if (o.tgids.size() > 1 || t.kind == Kind::kCgroup || t.children) {
    c.live.notes.push_back(
        "processes are taken at the start: one that starts during the window is not traced");
  }
  if (c.cut_short) {
    c.live.notes.push_back(cut_short_note(duration_ns, run_ns));
    c.allocated.notes.push_back(cut_short_note(duration_ns, run_ns));
  }
  return c;
}

}  // namespace chokepoint::app
