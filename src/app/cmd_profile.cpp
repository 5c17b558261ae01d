// chokepoint profile: sample a target's on-CPU stacks with perf_event_open (or trace its off-CPU
// time, or its allocations, with eBPF), symbolize them, and write flame graphs (folded, SVG,
// speedscope) and the hottest functions (or allocation sites).
#include <fmt/format.h>
#include <linux/magic.h>
#include <sys/resource.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <filesystem>
#include <iostream>
#include <memory>
#include <set>
#include <unordered_set>

#include "analysis/stack_evidence.h"
#include "app/cli_values.h"
#include "app/launch.h"
#include "app/run_budget.h"
#include "app/stack_capture.h"
#include "app/subcommand.h"
#include "app/target_session.h"
#include "collect/bpf/memory_profile.h"
#include "collect/bpf/memory_tracer.h"
#include "collect/bpf/offcpu_profile.h"
#include "collect/bpf/offcpu_tracer.h"
#include "collect/perf/perf_sampler.h"
#include "collect/procfs/proc_fs.h"
#include "profile/aggregate.h"
#include "profile/top.h"
#include "render/flamegraph_folded.h"
#include "render/flamegraph_svg.h"
#include "render/json_text.h"
#include "render/memory_report.h"
#include "render/speedscope.h"
#include "symbolize/deadline_symbolizer.h"
#include "symbolize/symbolizer.h"
#include "util/atomic_file.h"
#include "util/clock.h"
#include "util/escape.h"
#include "util/fatal.h"
#include "util/plural.h"
#include "util/stop_signal.h"

namespace chokepoint::app {
namespace {

// Set by SIGINT and SIGTERM once the run starts (util/stop_signal.h).
std::atomic<bool>& g_stop = util::stop_flag();

struct ProfileArgs {
  TargetArgs target;
  std::string duration = "5s";
  double frequency_hz = 99;
  std::vector<std::string> outputs;
  int top = -1;  // -1: not given
  bool threads = false;
  bool user_only = false;
  bool off_cpu = false;
  std::uint32_t off_cpu_budget = collect::bpf::OffCpuOptions{}.full_blocks_per_cpu_per_s;
  std::string call_graph = "fp";
  bool memory = false;
  std::uint64_t sample_bytes = collect::bpf::kDefaultSamplePeriodBytes;
  std::string memory_view = "live";
};

// --call-graph fp | dwarf[,STACK_BYTES] (perf record's spelling) -> bytes of user stack to copy
// per sample, 0 for frame pointers.
std::uint32_t parse_call_graph(const std::string& value) {
  if (value == "fp") return 0;
  const std::string dwarf = "dwarf";
  if (value.rfind(dwarf, 0) != 0 || (value.size() > dwarf.size() && value[dwarf.size()] != ',')) {
    util::usage_error(fmt::format("--call-graph {}: unknown mode", value),
                      "pass fp (frame pointers, the default) or dwarf[,STACK_BYTES], e.g. "
                      "--call-graph dwarf or --call-graph dwarf,16384");
  }
  std::uint64_t bytes = collect::perf::kDefaultUserStackBytes;
  if (value.size() > dwarf.size()) {
    const std::string digits = value.substr(dwarf.size() + 1);
    if (digits.empty() || digits.size() > 9 ||
        digits.find_first_not_of("0123456789") != std::string::npos) {
      util::usage_error(fmt::format("--call-graph {}: STACK_BYTES is not a number", value),
                        "pass the bytes of user stack to copy per sample, e.g. "
                        "--call-graph dwarf,16384");
    }
    bytes = std::stoull(digits);
  }
  if (auto ok = collect::perf::check_user_stack_bytes(bytes); !ok) {
    if (ok.error().errno_value == EINVAL) util::usage_error(ok.error().message, ok.error().hint);
    throw util::FatalError(ok.error());
  }
  return static_cast<std::uint32_t>(bytes);
}

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

// What a collector hands to the common output path.
struct Collected {
  profile::Profile profile;
  bool target_exited = false;
  std::string summary;              // the honesty line(s), printed before the notes
  std::int64_t build_start_ns = 0;  // when symbolizing began, for the cost line
  std::string table;                // --memory: the allocation sites, printed instead of top
  std::shared_ptr<void> keep_until_output;  // --memory: the tracer, detached when dropped
};

// A capture that failed: the command we launched is ended first; EINVAL is a usage error.
[[noreturn]] void capture_failed(const util::Error& e, pid_t launched) {
  if (launched) reap(launched);
  throw util::FatalError(e, e.errno_value == EINVAL ? util::kExitUsage : util::kExitRuntime);
}

Collected collect_on_cpu(const ProfileArgs& a, const collect::perf::PerfOptions& opt,
                         std::int64_t duration_ns, symbolize::Symbolizer& symbolizer,
                         pid_t launched, std::int64_t end_ns) {
  auto captured = capture_on_cpu(
      opt, a.threads, duration_ns, symbolizer, &g_stop,
      [&](const collect::perf::PerfInfo& info) {
        std::cerr << fmt::format(
            "chokepoint: profiling {} on-CPU at {:g} Hz ({}{}) for {:.1f} s (Ctrl-C ends "
            "early)...\n",
            util::terminal_text(describe_target(opt.target)), a.frequency_hz, info.event_name,
            info.user_stack_bytes > 0
                ? fmt::format(", DWARF unwinding of {}-byte stack copies", info.user_stack_bytes)
                : "",
            duration_ns / 1e9);
      },
      end_ns);
  if (!captured) capture_failed(captured.error(), launched);
  const auto& stats = captured->stats;
  const auto& info = captured->info;
  Collected c;
  c.target_exited = stats.target_exited;
  c.build_start_ns = captured->build_start_ns;
  c.profile = std::move(captured->profile);
  profile::Profile& p = c.profile;
  p.title = fmt::format("{}, on-CPU, {:g} Hz ({}), {:.1f} s", describe_target(opt.target),
                        a.frequency_hz, info.event_name, stats.duration_s);
  c.summary = fmt::format(
      "chokepoint: {} in {} from {} in {:.1f} s; lost {}, truncated stacks {}, stacks without "
      "frames {}\n",
      util::count_of(stats.records.samples, "sample"),
      util::count_of(captured->distinct_stacks, "distinct stack"),
      info.per_cpu ? util::count_of(stats.threads_followed, "CPU") + " (one event per CPU)"
                   : util::count_of(stats.threads_followed, "thread"),
      stats.duration_s, p.lost_samples, p.truncated_stacks, p.failed_stacks);
  if (captured->dwarf) {
    const auto& u = captured->unwind;
    c.summary += fmt::format(
        "chokepoint: DWARF-unwound {} user stacks in {:.1f} us each (median), {} to the outermost "
        "frame; stopped early: {} at the end of the stack copy, {} without unwind info, {} at "
        "{} frames, {} of processes gone; {} without user registers\n",
        u.unwinds, captured->unwind_median_us, u.complete, u.stack_copy_too_small, u.no_unwind_info,
        u.depth_limit, symbolize::DwarfUnwinder::kMaxFrames, u.process_unknown, u.no_user_state);
  }
  return c;
}

// Off-CPU: the eBPF tracer (collect/bpf) sums blocked time per stack in the kernel.
Collected collect_off_cpu(const ProfileArgs& a, const collect::sampler::TargetSpec& t,
                          std::int64_t duration_ns, symbolize::Symbolizer& symbolizer,
                          pid_t launched, std::int64_t end_ns) {
  auto captured = capture_off_cpu(
      t,
      {.thread_frames = a.threads,
       .kernel_stacks = !a.user_only,
       .full_blocks_per_cpu_per_s = a.off_cpu_budget,
       .whole_window_blocks = true},
      duration_ns, symbolizer, &g_stop,
      [&](std::uint64_t min_block_ns) {
        std::cerr << fmt::format(
            "chokepoint: tracing {} off-CPU (blocks of at least {} us) for {:.1f} s (Ctrl-C ends "
            "early)...\n",
            util::terminal_text(describe_target(t)), min_block_ns / 1000, duration_ns / 1e9);
      },
      end_ns);
  if (!captured) {
    if (launched) reap(launched);
    throw util::FatalError(captured.error());
  }
  Collected c;
  c.target_exited = captured->target_exited;
  c.build_start_ns = captured->build_start_ns;
  c.profile = std::move(captured->profile);
  const bool sampled = captured->blocks_measured < captured->blocks;
  c.summary = fmt::format(
      "chokepoint: {}{} blocks{} in {} distinct stacks, {}{:.3f} s blocked in total, in {:.1f} s; "
      "lost {}, truncated stacks {}, stacks not captured {}\n",
      sampled ? "an estimated " : "", captured->blocks,
      sampled ? fmt::format(" ({} traced, the rest sampled out)", captured->blocks_measured) : "",
      c.profile.stacks.size(), sampled ? "about " : "",
      static_cast<double>(captured->blocked_ns) / 1e9, captured->duration_s, c.profile.lost_samples,
      c.profile.truncated_stacks, c.profile.failed_stacks);
  return c;
}

// Memory: eBPF uprobes on the target's allocator (collect/bpf) sample allocations by bytes.
Collected collect_memory(const ProfileArgs& a, const collect::sampler::TargetSpec& t,
                         std::int64_t duration_ns, symbolize::Symbolizer& symbolizer,
                         pid_t launched, std::int64_t end_ns, std::size_t top_n) {
  auto captured = capture_memory(
      t, a.sample_bytes, duration_ns, symbolizer, &g_stop,
      [&](const std::vector<collect::bpf::ProbedAllocator>& allocators) {
        const std::string probed = collect::bpf::allocators_text(allocators);
        std::cerr << fmt::format(
            "chokepoint: tracing the allocations of {} ({}; probes in {}) for {:.1f} s (Ctrl-C "
            "ends early)...\n",
            util::terminal_text(describe_target(t)), collect::bpf::sampling_text(a.sample_bytes),
            util::terminal_text(probed), duration_ns / 1e9);
      },
      end_ns);
  if (!captured) capture_failed(captured.error(), launched);
  Collected c;
  c.target_exited = captured->target_exited;
  c.build_start_ns = captured->build_start_ns;
  const auto& k = captured->counters;
  c.summary = fmt::format(
      "chokepoint: {} allocator calls in {:.1f} s, {} sampled ({}); an estimated {} allocated, "
      "{} of it still live at the end; lost {}, stacks not captured {}\n",
      k.alloc_calls, captured->duration_s, k.sampled,
      collect::bpf::sampling_text(captured->sample_period_bytes),
      util::bytes_text(static_cast<double>(captured->allocated_bytes)),
      util::bytes_text(static_cast<double>(captured->live_bytes)), k.allocs_full + k.stats_full,
      k.stack_failures);
  if (top_n > 0) {
    c.table = render::memory_sites_text(
        analysis::memory_sites(captured->live, captured->allocated), captured->duration_s,
        collect::bpf::sampling_text(captured->sample_period_bytes), top_n);
  }
  c.profile = std::move(a.memory_view == "allocated" ? captured->allocated : captured->live);
  c.keep_until_output = std::move(captured->tracer);
  return c;
}

int run_profile(const ProfileArgs& a) {
  // First: beside a CPU-saturated target every step of a nice-0 process waits for a core (a
  // launched command gets the user's priority back, app/launch.h).
  raise_measuring_priority();
  const std::int64_t duration_ns = parse_duration_ns(a.duration, "--duration");
  if (duration_ns <= 0) util::usage_error("--duration must be above 0", "pass e.g. --duration 5s");
  if (a.top < -1 || a.top == 0) util::usage_error("--top must be at least 1", "pass e.g. --top 10");
  std::vector<Output> outputs;
  std::set<std::string> seen;
  for (const auto& path : a.outputs) {
    // Twice the same file would be written twice, the first copy lost: a mistake to point out,
    // however it is spelled (x.svg, ./x.svg, dir/../x.svg).
    std::error_code ec;
    const std::filesystem::path same = std::filesystem::weakly_canonical(path, ec);
    if (!seen.insert(ec ? path : same.string()).second) {
      util::usage_error(fmt::format("-o {} is given twice", path),
                        "name each output once; give another file name for a second copy");
    }
    outputs.push_back({path, format_of(path)});
  }
  for (const auto& o : outputs) {
    if (auto w = util::check_writable(o.path); !w) throw util::FatalError(w.error());
  }
  // Without -o, print the hottest functions so the run always shows something.
  const std::size_t top_n = a.top > 0 ? static_cast<std::size_t>(a.top) : outputs.empty() ? 10 : 0;

  collect::perf::PerfOptions opt;
  opt.user_stack_bytes = parse_call_graph(a.call_graph);
  if (a.memory && a.off_cpu) {
    util::usage_error("--memory and --off-cpu are two different profiles",
                      "run one, then the other");
  }
  if (a.memory && opt.user_stack_bytes > 0) {
    util::usage_error("--call-graph dwarf does not apply to --memory",
                      "allocation stacks come from eBPF (frame pointers); drop --call-graph");
  }
  if (a.memory_view != "live" && a.memory_view != "allocated") {
    util::usage_error(fmt::format("--memory-view {}: unknown view", a.memory_view),
                      "pass live (bytes still live at the end: leak candidates) or allocated "
                      "(all bytes allocated: churn)");
  }
  if (a.off_cpu && opt.user_stack_bytes > 0) {
    util::usage_error("--call-graph dwarf does not apply to --off-cpu",
                      "off-CPU stacks come from eBPF (frame pointers); drop one of the two");
  }
  opt.frequency_hz = a.frequency_hz;
  opt.kernel_stacks = !a.user_only;
  using Kind = collect::sampler::TargetSpec::Kind;
  auto& t = opt.target;
  t = target_spec(a.target);
  pid_t launched = 0;

  // The run's promise: the capture plus a grace (app/run_budget.h).
  RunBudget budget(duration_ns);
  auto inner_symbolizer = symbolize::Symbolizer::create();
  if (!inner_symbolizer) throw util::FatalError(inner_symbolizer.error());
  auto symbolizer = std::make_unique<symbolize::DeadlineSymbolizer>(**inner_symbolizer,
                                                                    budget.symbolize_deadline_ns());
  if (a.off_cpu) {
    if (auto ok = collect::bpf::check_offcpu_support(); !ok) throw util::FatalError(ok.error());
  }
  if (a.memory) {
    if (t.kind == Kind::kHost) {
      util::usage_error("--memory needs a target process",
                        "give --pid PID, --name NAME, --cgroup DIR or a command: the probes go "
                        "into each process's allocator");
    }
    if (auto ok = collect::bpf::check_memory_support(); !ok) throw util::FatalError(ok.error());
  }

  if (t.kind == Kind::kCommand) {
    launched = launch(a.target.command);
    t.pid = launched;
  }
  util::stop_on_signals();

  Collected c = a.memory    ? collect_memory(a, opt.target, duration_ns, *symbolizer, launched,
                                             budget.capture_end_ns(), top_n)
                : a.off_cpu ? collect_off_cpu(a, opt.target, duration_ns, *symbolizer, launched,
                                              budget.capture_end_ns())
                            : collect_on_cpu(a, opt, duration_ns, *symbolizer, launched,
                                             budget.capture_end_ns());
  budget.mark("capture and symbolizing");
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
  for (const auto& n : p.notes) std::cerr << "note: " << util::terminal_text(n) << "\n";

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
        content = render::json_text(render::speedscope(p), -1);
        break;
    }
    if (auto w = util::write_file_atomically(o.path, content); !w)
      throw util::FatalError(w.error());
    std::cerr << fmt::format("chokepoint: wrote {} ({})\n", util::terminal_text(o.path),
                             format_name(o.format));
  }
  if (!c.table.empty()) {
    std::cout << c.table;
  } else if (top_n > 0) {
    std::cout << profile::top_text(p, profile::top(p, top_n));
  }
  // What the profile cost after collection: symbolizing, rendering and writing
  // (docs/benchmarks.md).
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const auto sym = symbolizer->stats();
  std::cerr << fmt::format(
      "chokepoint: symbolized {} ({} user and {} kernel lookups, {} unresolved) and wrote {} "
      "in {:.2f} s; peak RSS {:.1f} MiB\n",
      util::count_of(p.stacks.size(), "stack"), sym.user_lookups, sym.kernel_lookups,
      sym.unresolved, util::count_of(outputs.size(), "output"),
      static_cast<double>(util::monotonic_ns() - c.build_start_ns) / 1e9,
      static_cast<double>(usage.ru_maxrss) / 1024.0);
  std::cout.flush();
  budget.mark("output");
  if (c.keep_until_output) {
    c.keep_until_output.reset();  // --memory: detaching the probes takes a while
    budget.mark("detaching the probes");
  }
  std::cerr << "chokepoint: the run " << budget.summary() << "\n";
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
      "Sample a service's stacks: on the CPU (perf_event_open), blocked (--off-cpu, eBPF) or "
      "allocating (--memory, eBPF uprobes); write flame graphs and the top functions");
  add_target_options(cli, args->target);
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
  cli->add_option("--call-graph", args->call_graph,
                  "how user stacks are walked: fp (frame pointers, cheap) or dwarf[,STACK_BYTES] "
                  "(copy STACK_BYTES of stack per sample, default 8192, and unwind with the "
                  "binaries' CFI: for code built without frame pointers)")
      ->type_name("fp|dwarf[,STACK_BYTES]")
      ->capture_default_str();
  auto* off_cpu = cli->add_flag(
      "--off-cpu", args->off_cpu,
      "where threads block instead of where they run: time blocked per stack (eBPF on "
      "sched_switch; needs root and BTF)");
  cli->add_option("--off-cpu-budget", args->off_cpu_budget,
                  "blocks per CPU per second traced in full with --off-cpu; above it blocks are "
                  "sampled and times become unbiased estimates (0: trace every block)")
      ->capture_default_str()
      ->needs(off_cpu);
  auto* memory = cli->add_flag(
      "--memory", args->memory,
      "where memory is allocated and kept instead of CPU time: allocation sites with the bytes "
      "still live at the end (leak candidates), growth and allocation rates (eBPF uprobes on the "
      "process's malloc; needs root; see docs/memory.md)");
  cli->add_option("--sample-bytes", args->sample_bytes,
                  "with --memory: one sample per this many bytes allocated on average (byte "
                  "sampling as in tcmalloc; figures are unbiased estimates; 0: every allocation)")
      ->capture_default_str()
      ->needs(memory);
  cli->add_option("--memory-view", args->memory_view,
                  "with --memory, what the flame graphs weigh: live (bytes still live at the end) "
                  "or allocated (all bytes allocated)")
      ->type_name("live|allocated")
      ->capture_default_str()
      ->needs(memory);
  cli->footer(
      "Without a target, profile samples the whole host (one event per CPU). Examples:\n"
      "  chokepoint profile --pid 1234 --duration 10s -o cpu.svg\n"
      "  chokepoint profile --name nginx -o nginx.folded -o nginx.json --top 20\n"
      "  chokepoint profile --pid 1234 --call-graph dwarf -o cpu.svg   (code without frame "
      "pointers)\n"
      "  chokepoint profile --pid 1234 --memory --duration 30s -o leak.svg   (leak candidates)\n"
      "  chokepoint profile -- ./server --port 8080");
  return {cli, [args] { return run_profile(*args); }};
}

}  // namespace chokepoint::app
