// chokepoint top: the target's rolling diagnosis, one window per interval, printed as plain-text
// frames (like top -b) or one JSON line per interval; live (collect -> model -> analysis, the
// path diagnose takes, one window per frame, all from one sampler) or from a recording (--replay:
// the recording cut into windows of --interval, each built with model::build_observation and
// diagnosed).
#include <fmt/format.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "analysis/diagnosis.h"
#include "app/cli_values.h"
#include "app/stack_capture.h"
#include "app/subcommand.h"
#include "app/target_session.h"
#include "model/builder.h"
#include "profile/top.h"
#include "render/top_frame.h"
#include "store/recording.h"
#include "symbolize/symbolizer.h"
#include "tui/top_screen.h"
#include "util/escape.h"
#include "util/fatal.h"
#include "util/stop_signal.h"

namespace chokepoint::app {
namespace {

// The full-screen view's P: an on-CPU profile of a process (tid != 0: of one of its threads) for
// duration_ns, at 199 Hz as diagnose's evidence takes it, as the hottest functions by self and
// by total time (profile::top_text), or the error with its hint.
std::string profile_text(int pid, int tid, std::int64_t duration_ns,
                         const std::atomic<bool>* stop) {
  const auto error_text = [](const util::Error& e) {
    std::string out = "error: " + util::terminal_text(e.message) + "\n";
    if (!e.hint.empty()) out += "hint: " + util::terminal_text(e.hint) + "\n";
    return out;
  };
  auto symbolizer = symbolize::Symbolizer::create();
  if (!symbolizer) return error_text(symbolizer.error());
  collect::perf::PerfOptions options;
  options.target.kind = collect::sampler::TargetSpec::Kind::kPid;
  options.target.pid = pid;
  options.frequency_hz = 199;
  // A thread's profile: its stacks, by the thread frames the capture adds.
  auto c = capture_on_cpu(options, tid != 0, duration_ns, **symbolizer, stop);
  if (!c) return error_text(c.error());
  profile::Profile& p = c->profile;
  if (tid != 0) {
    std::erase_if(p.stacks, [tid](const profile::Stack& s) {
      return std::none_of(s.frames.begin(), s.frames.end(), [tid](const profile::Frame& f) {
        return profile::thread_frame_tid(f) == tid;
      });
    });
  }
  std::uint64_t samples = 0;
  for (const auto& s : p.stacks) samples += s.value;
  std::string out = fmt::format(
      "{} samples at {:.0f} Hz over {:.1f} s ({:.2f} cores on CPU)\n\n", samples, p.frequency_hz,
      p.duration_s,
      p.duration_s > 0 ? static_cast<double>(samples) / p.frequency_hz / p.duration_s : 0.0);
  if (samples == 0) {
    return out +
           "it did not run on a CPU while sampled: its time is off-CPU (the frame's WAIT "
           "column says where)\n";
  }
  return out + profile::top_text(p, profile::top(p, 20));
}

struct TopArgs {
  TargetArgs target;
  std::string interval = "1s";
  std::string sample_interval = "100ms";
  int iterations = 0;  // 0: until interrupted (live) or the recording's end (replay)
  bool batch = false;
  bool json = false;
  std::string sort = "cpu";
  std::size_t threads = 16;
  std::string replay;
  bool no_color = false;
  std::string mode;  // --mode: the time split (empty: sampled, and no word about it)
};

// The full-screen view when stdout and stdin are terminals and neither --batch nor --json asks
// for text.
bool interactive(const TopArgs& a) {
  return !a.batch && !a.json && isatty(STDOUT_FILENO) == 1 && isatty(STDIN_FILENO) == 1;
}

tui::TopScreenOptions screen_options(const TopArgs& a, const render::TopFrameOptions& frame) {
  const char* no_color = std::getenv("NO_COLOR");
  return {frame, !a.no_color && (no_color == nullptr || *no_color == '\0')};
}

void print_frame(const model::Observation& obs, const analysis::Diagnosis& d,
                 const render::TopFrameInfo& info, const render::TopFrameOptions& options,
                 bool json, bool split_source = false) {
  if (json) {
    std::cout << render::top_frame_json(obs, d, info, options);
  } else {
    std::cout << render::top_frame_text(obs, d, info, options) << "\n";
    // With --mode: which time split ran and why, as diagnose's sources line says it.
    for (const auto& s : obs.sources) {
      if (split_source && s.name == "time split") {
        std::cout << (s.available ? "  + " : "  - ") << s.name << ": "
                  << (s.available ? s.detail : s.hint) << "\n\n";
      }
    }
  }
  std::cout.flush();
}

int run_replay(const TopArgs& a, std::int64_t interval_ns, const render::TopFrameOptions& options) {
  if (!a.target.command.empty() || !a.target.pids.empty() || !a.target.name.empty() ||
      !a.target.cgroup.empty()) {
    util::usage_error("--replay plays the target the recording holds",
                      "leave out --pid, --name, --cgroup and -- COMMAND with --replay");
  }
  auto samples = store::read_all(a.replay);
  if (!samples) throw util::FatalError(samples.error());
  if (samples->ticks.empty()) {
    throw util::FatalError(util::Error{a.replay + " holds no samples",
                                       "record a window first: chokepoint record --pid PID", 0});
  }
  const std::int64_t first_ns = samples->ticks.front().at_ns;
  const std::int64_t last_ns = samples->ticks.back().at_ns;
  // Windows of interval_ns from the first tick; a tail shorter than half an interval is left out
  // (a frame of a few milliseconds says nothing).
  std::vector<model::Window> windows;
  for (std::int64_t from = first_ns; last_ns - from >= interval_ns / 2; from += interval_ns) {
    if (a.iterations > 0 && windows.size() >= static_cast<std::size_t>(a.iterations)) break;
    windows.push_back({from, std::min(from + interval_ns, last_ns)});
  }
  auto frame_at = [&samples, &windows, first_ns](std::size_t i) {
    auto obs = model::build_observation(samples->info, samples->ticks, windows[i]);
    auto d = analysis::diagnose(obs);
    return tui::TopScreenFrame{std::move(obs),
                               std::move(d),
                               {i + 1, static_cast<double>(*windows[i].to_ns - first_ns) / 1e9}};
  };
  if (interactive(a)) {
    tui::TopScreenSource source;
    source.replay_count = windows.size();
    source.replay_frame = frame_at;
    source.interval_ns = interval_ns;
    std::atomic<bool>& stop = util::stop_on_signals();
    return tui::run_top_screen(source, screen_options(a, options), [&stop] { return stop.load(); });
  }
  for (std::size_t i = 0; i < windows.size(); ++i) {
    const auto f = frame_at(i);
    print_frame(f.observation, f.diagnosis, f.info, options, a.json);
  }
  return util::kExitOk;
}

// Windows are collected on a thread of their own so the screen answers keys while one fills;
// the screen takes the newest finished window. A collection error ends the view and is thrown.
int run_live_screen(const TopArgs& a, TargetSession& session, std::int64_t interval_ns,
                    std::int64_t sample_ns, const render::TopFrameOptions& options,
                    std::atomic<bool>& stop) {
  std::mutex mu;
  std::optional<tui::TopScreenFrame> ready;
  std::optional<util::Error> failed;
  bool exited = false;  // the target exited after a frame (as in --batch: not an error)
  std::atomic<bool> done{false};
  std::optional<collect::sampler::SplitMode> split_mode;
  if (!a.mode.empty()) split_mode = parse_split_mode_arg(a.mode);
  std::thread collector([&] {
    std::uint64_t frame = 0;
    double at_s = 0;
    while (!stop.load() && !done.load()) {
      auto w = session.next_window(interval_ns, sample_ns, &stop, split_mode);
      if (stop.load() || done.load()) break;
      const std::lock_guard lock(mu);
      if (!w) {
        exited = frame > 0 && w.error().errno_value == ESRCH;
        if (!exited) failed = w.error();
        done = true;
        break;
      }
      at_s += static_cast<double>(w->observation.duration_ns) / 1e9;
      ready =
          tui::TopScreenFrame{std::move(w->observation), std::move(w->diagnosis), {++frame, at_s}};
    }
  });
  tui::TopScreenSource source;
  source.interval_ns = interval_ns;
  source.waiting = fmt::format("chokepoint top - collecting the first window ({})...", a.interval);
  source.profile = [ns = source.profile_ns](int pid, int tid,
                                            const std::atomic<bool>* profile_stop) {
    return profile_text(pid, tid, ns, profile_stop);
  };
  source.poll_live = [&]() -> std::optional<tui::TopScreenFrame> {
    const std::lock_guard lock(mu);
    std::optional<tui::TopScreenFrame> out;
    out.swap(ready);
    return out;
  };
  int code = 0;
  try {
    code = tui::run_top_screen(source, screen_options(a, options),
                               [&] { return stop.load() || done.load(); });
  } catch (...) {
    stop = true;
    collector.join();
    throw;
  }
  // Ends the window being collected now (diagnose watches the flag).
  stop = true;
  collector.join();
  if (failed) throw util::FatalError(*failed);
  if (exited) std::cerr << "chokepoint top: the target exited\n";
  return code;
}

int run_top(const TopArgs& a) {
  const std::int64_t interval_ns = parse_duration_ns(a.interval, "--interval");
  const std::int64_t sample_ns = parse_duration_ns(a.sample_interval, "--sample-interval");
  if (interval_ns < 100'000'000) {
    util::usage_error("--interval must be at least 100ms", "pass e.g. --interval 1s");
  }
  if (sample_ns < 1'000'000 || sample_ns > interval_ns) {
    util::usage_error("--sample-interval must be at least 1ms and at most --interval",
                      "pass e.g. --sample-interval 100ms");
  }
  if (a.iterations < 0)
    util::usage_error("--iterations must be 0 or more", "pass e.g. --iterations 5");
  if (a.batch && a.json) {
    util::usage_error("--batch and --json do not go together",
                      "pass --batch for text frames or --json for one JSON line per interval");
  }
  auto sort = render::top_sort_from_name(a.sort);
  if (!sort) {
    util::usage_error(fmt::format("--sort {}: unknown column", a.sort),
                      "pass one of cpu, runq, disk, rss, pid, name");
  }
  render::TopFrameOptions options;
  options.sort = *sort;
  options.threads_per_process = a.threads;
  if (!a.replay.empty()) {
    if (!a.mode.empty()) {
      util::usage_error("--mode chooses how a live target is watched",
                        "leave out --mode with --replay (chokepoint replay FILE --mode sample "
                        "sets a recording's kernel sums aside)");
    }
    return run_replay(a, interval_ns, options);
  }
  std::optional<collect::sampler::SplitMode> split_mode;
  if (!a.mode.empty()) split_mode = parse_split_mode_arg(a.mode);

  auto session = TargetSession::open(a.target);
  std::atomic<bool>& stop = util::stop_on_signals();
  if (interactive(a)) return run_live_screen(a, *session, interval_ns, sample_ns, options, stop);
  std::uint64_t frame = 0;
  double at_s = 0;
  while (!stop.load() && (a.iterations == 0 || frame < static_cast<std::uint64_t>(a.iterations))) {
    auto w = session->next_window(interval_ns, sample_ns, &stop, split_mode);
    if (!w) {
      if (frame > 0 && w.error().errno_value == ESRCH) {
        std::cerr << "chokepoint top: the target exited\n";
        return util::kExitOk;
      }
      throw util::FatalError(w.error());
    }
    at_s += static_cast<double>(w->observation.duration_ns) / 1e9;
    print_frame(w->observation, w->diagnosis, {++frame, at_s}, options, a.json,
                split_mode.has_value());
  }
  return util::kExitOk;
}

}  // namespace

Subcommand make_top_command(CLI::App& root) {
  auto args = std::make_shared<TopArgs>();
  CLI::App* cli = root.add_subcommand(
      "top",
      "Watch the target's rolling verdict and its processes and threads, one frame per interval "
      "(plain text like top -b, or --json lines); live or from a recording (--replay)");
  add_target_options(cli, args->target);
  cli->add_option("-d,--interval", args->interval, "one frame per INTERVAL (500ms, 1s, 5s)")
      ->capture_default_str();
  cli->add_option("--sample-interval", args->sample_interval,
                  "how often thread states are read within a frame")
      ->capture_default_str();
  cli->add_option("--iterations", args->iterations,
                  "stop after N frames (0: until Ctrl-C, or the recording's end)")
      ->capture_default_str();
  cli->add_flag("-b,--batch", args->batch,
                "plain text frames (without it, a terminal gets the full-screen view)");
  cli->add_flag("--json", args->json, "one JSON line per interval");
  cli->add_option("-s,--sort", args->sort, "order rows by cpu, runq, disk, rss, pid or name")
      ->type_name("cpu|runq|disk|rss|pid|name")
      ->capture_default_str();
  cli->add_option("--threads", args->threads,
                  "threads shown under each process (the busiest; 0: processes only)")
      ->capture_default_str();
  cli->add_flag("--no-color", args->no_color,
                "no colours on the full-screen view (so does a non-empty NO_COLOR)");
  cli->add_option("--mode", args->mode,
                  std::string(kSplitModeHelp) +
                      " (without it: sampled; with it, --batch frames end with the time split's "
                      "source)")
      ->type_name("exact|sample|auto");
  cli->add_option("--replay", args->replay,
                  "play a recording (chokepoint record, diagnose --record) frame by frame");
  cli->footer(
      "Without a target, top watches the whole host. Examples:\n"
      "  chokepoint top --pid 1234 --batch --iterations 5\n"
      "  chokepoint top --name nginx --json --interval 2s\n"
      "  chokepoint top --replay run.chokepoint --interval 500ms");
  return {cli, [args] { return run_top(*args); }};
}

}  // namespace chokepoint::app
