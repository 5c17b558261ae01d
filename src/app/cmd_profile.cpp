// chokepoint profile: sample a target's on-CPU stacks with perf_event_open, symbolize them, and
// write flame graphs (folded, SVG, speedscope) and the hottest functions.
#include <fmt/format.h>
#include <linux/magic.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <iostream>
#include <memory>
#include <set>
#include <unordered_set>

#include "app/cli_values.h"
#include "app/launch.h"
#include "app/subcommand.h"
#include "collect/bpf/offcpu_profile.h"
#include "collect/bpf/offcpu_tracer.h"
#include "collect/perf/perf_sampler.h"
#include "collect/procfs/proc_fs.h"
#include "profile/aggregate.h"
#include "profile/top.h"
#include "render/flamegraph_folded.h"
#include "render/flamegraph_svg.h"
#include "render/speedscope.h"
#include "symbolize/symbolizer.h"
#include "util/atomic_file.h"
#include "util/clock.h"
#include "util/fatal.h"

namespace chokepoint::app {
namespace {

std::atomic<bool> g_stop{false};
void on_signal(int) {
  g_stop.store(true);
}

struct ProfileArgs {
  int pid = 0;
  bool children = false;
  std::string name;
  std::string cgroup;
  std::vector<std::string> command;
  std::string duration = "5s";
  double frequency_hz = 99;
  std::vector<std::string> outputs;
  int top = -1;  // -1: not given
  bool threads = false;
  bool user_only = false;
  bool off_cpu = false;
};

enum class Format { kFolded, kSvg, kSpeedscope };

struct Output {
  std::string path;
  Format format;
};

// The format of an -o path, by its extension.
Format format_of(const std::string& path) {
  auto ends = [&](const char* ext) {
    std::string e(ext);
    return path.size() > e.size() && path.compare(path.size() - e.size(), e.size(), e) == 0;
  };
  if (ends(".folded")) return Format::kFolded;
  if (ends(".svg")) return Format::kSvg;
  if (ends(".json")) return Format::kSpeedscope;
  util::usage_error(fmt::format("-o {}: unknown output format", path),
                    "name the file by the format you want: .folded (FlameGraph folded stacks), "
                    ".svg (interactive flame graph) or .json (speedscope)");
}

const char* format_name(Format f) {
  switch (f) {
    case Format::kFolded:
      return "folded stacks";
    case Format::kSvg:
      return "flame graph SVG";
    case Format::kSpeedscope:
      return "speedscope JSON";
  }
  return "";
}

// The symbolizer as the aggregator's Resolver. attach() errors are kept: the symbolizer turns
// that pid's lookups into unresolved frames with the reason, and the app notes the error once.
class SymbolizerResolver : public profile::Resolver {
 public:
  explicit SymbolizerResolver(symbolize::Symbolizer& s) : s_(s) {}
  void attach(int pid) override { note(pid, s_.attach(pid)); }
  profile::Frame user(int pid, std::uint64_t address) override { return s_.user(pid, address); }
  profile::Frame kernel(std::uint64_t address) override { return s_.kernel(address); }
  // Attaches a pid the first time it is seen (during collection, while it is alive).
  void attach_once(int pid) {
    if (attached_.insert(pid).second) attach(pid);
  }
  const std::vector<std::string>& notes() const { return notes_; }

 private:
  void note(int pid, const util::Result<void>& r) {
    if (!r && noted_.insert(pid).second) {
      notes_.push_back(
          fmt::format("pid {}: its mappings could not be read ({}); its frames are "
                      "unresolved",
                      pid, r.error().message));
    }
  }
  symbolize::Symbolizer& s_;
  std::unordered_set<int> attached_;
  std::unordered_set<int> noted_;
  std::vector<std::string> notes_;
};

// Many threads need many fds (one event each): use the hard limit, as perf does.
void raise_fd_limit() {
  rlimit r{};
  if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    setrlimit(RLIMIT_NOFILE, &r);
  }
}

bool is_cgroup2(const std::string& path) {
  struct statfs fs {};
  return statfs(path.c_str(), &fs) == 0 &&
         static_cast<unsigned long>(fs.f_type) == CGROUP2_SUPER_MAGIC;
}

std::string target_text(const collect::sampler::TargetSpec& t) {
  using Kind = collect::sampler::TargetSpec::Kind;
  switch (t.kind) {
    case Kind::kPid:
      return fmt::format("pid {}{}", t.pid, t.children ? " and its children" : "");
    case Kind::kName:
      return "name " + t.name;
    case Kind::kCgroup:
      return "cgroup " + t.cgroup_path;
    case Kind::kCommand:
      return "command " + t.command_text;
    case Kind::kHost:
      return "the whole host";
  }
  return "";
}

// What a collector hands to the common output path.
struct Collected {
  profile::Profile profile;
  bool target_exited = false;
  std::string summary;              // the honesty line(s), printed before the notes
  std::int64_t build_start_ns = 0;  // when symbolizing began, for the cost line
};

Collected collect_on_cpu(const ProfileArgs& a, const collect::perf::PerfOptions& opt,
                         std::int64_t duration_ns, symbolize::Symbolizer& symbolizer,
                         pid_t launched) {
  SymbolizerResolver resolver(symbolizer);
  auto sampler = collect::perf::PerfSampler::open(opt);
  if (!sampler) {
    if (launched) reap(launched);
    throw util::FatalError(sampler.error(), sampler.error().errno_value == EINVAL
                                                ? util::kExitUsage
                                                : util::kExitRuntime);
  }
  const auto& info = sampler->info();
  std::cerr << fmt::format(
      "chokepoint: profiling {} on-CPU at {:g} Hz ({}) for {:.1f} s (Ctrl-C ends early)...\n",
      target_text(opt.target), a.frequency_hz, info.event_name, duration_ns / 1e9);

  profile::StackAggregator aggregator({.thread_frames = a.threads});
  auto stats = sampler->run(duration_ns, &g_stop,
                            [&](const collect::perf::Sample& s, std::string_view process_name,
                                std::string_view thread_name) {
                              int pid = static_cast<int>(s.pid);
                              resolver.attach_once(pid);
                              aggregator.add({.pid = pid,
                                              .tid = static_cast<int>(s.tid),
                                              .process_name = process_name,
                                              .thread_name = thread_name,
                                              .kernel_ips = s.kernel_ips,
                                              .user_ips = s.user_ips,
                                              .value = 1,
                                              .count = 1});
                            });
  if (!stats) {
    if (launched) reap(launched);
    throw util::FatalError(stats.error());
  }
  Collected c;
  c.target_exited = stats->target_exited;
  profile::Profile& p = c.profile;
  p.off_cpu = false;
  p.weight = profile::Weight::kSamples;
  p.frequency_hz = a.frequency_hz;
  p.duration_s = stats->duration_s;
  p.title = fmt::format("{}, on-CPU, {:g} Hz ({}), {:.1f} s", target_text(opt.target),
                        a.frequency_hz, info.event_name, stats->duration_s);
  p.lost_samples = stats->records.lost;
  p.truncated_stacks = stats->records.truncated;
  p.failed_stacks = stats->records.empty_stacks;
  c.build_start_ns = util::monotonic_ns();
  aggregator.build(resolver, p);
  p.notes = sampler->notes();
  for (const auto& n : symbolizer.notes()) p.notes.push_back(n);
  for (const auto& n : resolver.notes()) p.notes.push_back(n);
  c.summary = fmt::format(
      "chokepoint: {} samples in {} distinct stacks from {} {} in {:.1f} s; lost {}, "
      "truncated stacks {}, stacks without frames {}\n",
      stats->records.samples, aggregator.distinct_stacks(), stats->threads_followed,
      info.per_cpu ? "CPUs (one event per CPU)" : "threads", stats->duration_s, p.lost_samples,
      p.truncated_stacks, p.failed_stacks);
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

// Off-CPU: the eBPF tracer (collect/bpf) sums blocked time per stack in the kernel. Processes of
// the target that start during the window are added as they are found (every 200 ms).
Collected collect_off_cpu(const ProfileArgs& a, const collect::sampler::TargetSpec& t,
                          std::int64_t duration_ns, symbolize::Symbolizer& symbolizer,
                          pid_t launched) {
  using Kind = collect::sampler::TargetSpec::Kind;
  collect::procfs::ProcFs proc;
  auto fail = [&](const util::Error& e) {
    if (launched) reap(launched);
    throw util::FatalError(e);
  };
  if (auto v = collect::sampler::validate(t, proc); !v) fail(v.error());
  collect::bpf::OffCpuOptions o;
  o.duration_ns = static_cast<std::uint64_t>(duration_ns);
  o.kernel_stacks = !a.user_only;
  const bool follow =
      t.kind != Kind::kHost && !(t.kind == Kind::kCgroup && is_cgroup2(t.cgroup_path));
  std::set<int> attached;
  if (t.kind == Kind::kCgroup && !follow) o.cgroup_path = t.cgroup_path;
  if (follow) {
    auto pids = collect::sampler::resolve_pids(t, proc);
    if (!pids) fail(pids.error());
    if (pids->empty())
      fail({"the target has no process to trace", "check that it is running", ESRCH});
    o.tgids = *pids;
  }
  for (int pid : o.tgids) {
    if (symbolizer.attach(pid)) attached.insert(pid);
  }
  auto tracer = collect::bpf::OffCpuTracer::create(o);
  if (!tracer) fail(tracer.error());
  std::cerr << fmt::format(
      "chokepoint: tracing {} off-CPU (blocks of at least {} us) for {:.1f} s (Ctrl-C ends "
      "early)...\n",
      target_text(t), o.min_block_ns / 1000, duration_ns / 1e9);
  if (auto r = (*tracer)->start(); !r) fail(r.error());
  const std::int64_t start = util::monotonic_ns();
  const std::int64_t end = start + duration_ns;
  bool exited = false;
  while (!g_stop.load()) {
    const std::int64_t now = util::monotonic_ns();
    if (now >= end) break;
    usleep(static_cast<useconds_t>(std::min<std::int64_t>(end - now, 200 * util::kNsPerMs) / 1000));
    if (!follow) continue;
    auto pids = collect::sampler::resolve_pids(t, proc);
    if (!pids) continue;
    if (pids->empty()) {
      exited = true;
      break;
    }
    for (int pid : *pids) {
      if (attached.count(pid)) continue;
      if ((*tracer)->add_target(pid)) {
        if (symbolizer.attach(pid)) attached.insert(pid);
      }
    }
  }
  auto result = (*tracer)->stop();
  if (!result) fail(result.error());
  Collected c;
  c.target_exited = exited;
  c.build_start_ns = util::monotonic_ns();
  c.profile = collect::bpf::to_profile(*result, symbolizer,
                                       {.thread_frames = a.threads,
                                        .wakers = collect::bpf::WakerLayout::kNone,
                                        .attached_pids = attached});
  for (const auto& n : result->notes) c.profile.notes.push_back(n);
  std::uint64_t blocks = 0, blocked_ns = 0;
  for (const auto& r : result->records) {
    blocks += r.count;
    blocked_ns += r.total_ns;
  }
  c.summary = fmt::format(
      "chokepoint: {} blocks in {} distinct stacks, {:.3f} s blocked in total, in {:.1f} s; lost "
      "{}, truncated stacks {}, stacks not captured {}\n",
      blocks, c.profile.stacks.size(), static_cast<double>(blocked_ns) / 1e9, result->duration_s,
      c.profile.lost_samples, c.profile.truncated_stacks, c.profile.failed_stacks);
  return c;
}

int run_profile(const ProfileArgs& a) {
  int targets = (a.pid != 0) + !a.name.empty() + !a.cgroup.empty() + !a.command.empty();
  if (targets > 1) {
    util::usage_error("give one target: --pid, --name, --cgroup or -- COMMAND",
                      "without a target, profile samples the whole host");
  }
  if (a.pid < 0)
    util::usage_error(fmt::format("--pid {} is not a process id", a.pid), "pass a positive pid");
  if (a.children && a.pid == 0)
    util::usage_error("--children needs --pid", "pass --pid PID --children");
  const std::int64_t duration_ns = parse_duration_ns(a.duration, "--duration");
  if (duration_ns <= 0) util::usage_error("--duration must be above 0", "pass e.g. --duration 5s");
  if (a.top < -1 || a.top == 0) util::usage_error("--top must be at least 1", "pass e.g. --top 10");
  std::vector<Output> outputs;
  for (const auto& path : a.outputs) outputs.push_back({path, format_of(path)});
  for (const auto& o : outputs) {
    if (auto w = util::check_writable(o.path); !w) throw util::FatalError(w.error());
  }
  // Without -o, print the hottest functions so the run always shows something.
  const std::size_t top_n = a.top > 0 ? static_cast<std::size_t>(a.top) : outputs.empty() ? 10 : 0;

  collect::perf::PerfOptions opt;
  opt.frequency_hz = a.frequency_hz;
  opt.kernel_stacks = !a.user_only;
  using Kind = collect::sampler::TargetSpec::Kind;
  auto& t = opt.target;
  pid_t launched = 0;
  if (a.pid) {
    t.kind = Kind::kPid;
    t.pid = a.pid;
    t.children = a.children;
  } else if (!a.name.empty()) {
    t.kind = Kind::kName;
    t.name = a.name;
  } else if (!a.cgroup.empty()) {
    t.kind = Kind::kCgroup;
    t.cgroup_path = a.cgroup;
  } else if (!a.command.empty()) {
    t.kind = Kind::kCommand;
    for (const auto& c : a.command) t.command_text += (t.command_text.empty() ? "" : " ") + c;
  }

  auto symbolizer = symbolize::Symbolizer::create();
  if (!symbolizer) throw util::FatalError(symbolizer.error());
  if (a.off_cpu) {
    if (auto ok = collect::bpf::check_offcpu_support(); !ok) throw util::FatalError(ok.error());
  }

  raise_fd_limit();
  if (t.kind == Kind::kCommand) {
    launched = launch(a.command);
    t.pid = launched;
  }
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  Collected c = a.off_cpu ? collect_off_cpu(a, opt.target, duration_ns, **symbolizer, launched)
                          : collect_on_cpu(a, opt, duration_ns, **symbolizer, launched);
  if (launched) reap(launched);
  profile::Profile& p = c.profile;
  if (c.target_exited && !launched) {
    p.notes.push_back(
        fmt::format("the target exited after {:.1f} s: the profile covers the time "
                    "until then",
                    p.duration_s));
  }
  // The honesty counters, always, on stderr (stdout is for the table).
  std::cerr << c.summary;
  for (const auto& n : p.notes) std::cerr << "note: " << n << "\n";

  for (const auto& o : outputs) {
    std::string content;
    switch (o.format) {
      case Format::kFolded:
        content = render::folded(p);
        break;
      case Format::kSvg:
        content = render::flamegraph_svg(p);
        break;
      case Format::kSpeedscope:
        content = render::speedscope(p).dump() + "\n";
        break;
    }
    if (auto w = util::write_file_atomically(o.path, content); !w)
      throw util::FatalError(w.error());
    std::cerr << fmt::format("chokepoint: wrote {} ({})\n", o.path, format_name(o.format));
  }
  if (top_n > 0) std::cout << profile::top_text(p, profile::top(p, top_n));
  // What the profile cost after collection: symbolizing, rendering and writing
  // (docs/benchmarks.md).
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const auto sym = (*symbolizer)->stats();
  std::cerr << fmt::format(
      "chokepoint: symbolized {} stacks ({} user and {} kernel lookups, {} unresolved) and wrote "
      "{} outputs in {:.2f} s; peak RSS {:.1f} MiB\n",
      p.stacks.size(), sym.user_lookups, sym.kernel_lookups, sym.unresolved, outputs.size(),
      static_cast<double>(util::monotonic_ns() - c.build_start_ns) / 1e9,
      static_cast<double>(usage.ru_maxrss) / 1024.0);
  std::cout.flush();
  if (c.target_exited && !launched) {
    util::print_error(
        {"the target exited during the window", "the profile covers the time until it exited", 0});
    return util::kExitRuntime;
  }
  return util::kExitOk;
}

}  // namespace

Subcommand make_profile_command(CLI::App& root) {
  auto args = std::make_shared<ProfileArgs>();
  CLI::App* cli = root.add_subcommand(
      "profile",
      "Sample a service's on-CPU stacks (perf_event_open) and write flame graphs and the "
      "hottest functions");
  cli->add_option("-p,--pid", args->pid, "a process (all its threads)");
  cli->add_flag("--children", args->children, "with --pid: its descendants too");
  cli->add_option("-n,--name", args->name, "every process with this name (comm or executable)");
  cli->add_option("--cgroup", args->cgroup,
                  "every task in a cgroup directory (v2: one event per CPU; v1: per thread)");
  cli->add_option("-d,--duration", args->duration, "how long to sample (500ms, 5s, 2m)")
      ->capture_default_str();
  cli->add_option("-F,--frequency", args->frequency_hz,
                  "samples per second per running thread (99 avoids lockstep with 100 Hz timers)")
      ->capture_default_str();
  cli->add_option("-o,--output", args->outputs,
                  "write FILE; the format follows the extension: .folded, .svg, .json "
                  "(speedscope); repeatable")
      ->allow_extra_args(false);
  cli->add_option("--top", args->top,
                  "print the N hottest functions by self and total (default 10 when no -o)");
  cli->add_flag("--threads", args->threads, "add a frame per thread below each process");
  cli->add_flag("--user-only", args->user_only, "leave kernel frames out");
  cli->add_flag("--off-cpu", args->off_cpu,
                "where threads block instead of where they run: time blocked per stack (eBPF on "
                "sched_switch; needs root and BTF)");
  cli->add_option("command", args->command, "after --: a command to start and profile")
      ->expected(-1);
  cli->footer(
      "Without a target, profile samples the whole host (one event per CPU). Examples:\n"
      "  chokepoint profile --pid 1234 --duration 10s -o cpu.svg\n"
      "  chokepoint profile --name nginx -o nginx.folded -o nginx.json --top 20\n"
      "  chokepoint profile -- ./server --port 8080");
  return {cli, [args] { return run_profile(*args); }};
}

}  // namespace chokepoint::app
