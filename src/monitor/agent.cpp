#include "monitor/agent.h"

#include <fmt/format.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "collect/procfs/proc_fs.h"
#include "monitor/window.h"
#include "store/recording.h"
#include "util/escape.h"

namespace chokepoint::monitor {
namespace {

double unix_now_s() {
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) / 1e9;
}

// Sleeps up to `ns`, waking every 100 ms to look at `stop`.
void sleep_unless_stopped(std::int64_t ns, const std::atomic<bool>& stop) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::nanoseconds(ns);
  while (!stop.load() && std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_for(std::min<std::chrono::nanoseconds>(
        std::chrono::milliseconds(100), end - std::chrono::steady_clock::now()));
  }
}

// A file name for a target's recording: its index (labels may collide once made safe) and the
// label with everything but [A-Za-z0-9._-] as '_', at most 64 bytes of it.
std::string recording_name(std::size_t index, const std::string& label) {
  std::string safe;
  for (char c : label.substr(0, 64)) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '-' || c == '_';
    safe += ok ? c : '_';
  }
  return fmt::format("target{}-{}.chokepoint", index, safe);
}

bool same_target(const collect::sampler::TargetSpec& a, const collect::sampler::TargetSpec& b) {
  return a.kind == b.kind && a.pid == b.pid && a.children == b.children && a.name == b.name &&
         a.cgroup_path == b.cgroup_path && a.command_text == b.command_text;
}

}  // namespace

struct Agent::Impl {
  AgentOptions opt;
  WindowObserver on_window;
  double start_unix_s = 0;
  mutable std::mutex mu;
  std::vector<TargetState> states;  // GUARDED_BY(mu)
  // One writer per target, used only by that target's thread.
  std::vector<std::unique_ptr<store::RecordingWriter>> recordings;
  std::vector<bool> recording_begun;

  void watch(std::size_t i, const std::atomic<bool>& stop);
  void failed(std::size_t i, const util::Error& e);
};

void Agent::Impl::failed(std::size_t i, const util::Error& e) {
  std::unique_lock lock(mu);
  TargetState& s = states[i];
  if ((s.up || s.windows_failed == 0) && opt.log) {
    std::cerr << fmt::format("chokepoint agent: target {} is down: {}\n",
                             util::terminal_text(s.label), util::terminal_text(e.message));
  }
  s.up = false;
  s.error = e.message;
  ++s.windows_failed;
  if (on_window) {
    const TargetState copy = s;
    lock.unlock();
    on_window(copy, model::TimeSplit{});
  }
}

void Agent::Impl::watch(std::size_t i, const std::atomic<bool>& stop) {
  const WatchTarget& target = opt.targets[i];
  // One sampler for as long as the target stays what it resolved to: its windows follow each
  // other from one stream of ticks. A target that exited, failed or now resolves to something
  // else (a restarted service's new cgroup) gets a new one.
  std::unique_ptr<WindowSeries> series;
  collect::sampler::TargetSpec series_spec;
  while (!stop.load()) {
    const auto started = std::chrono::steady_clock::now();
    auto spec = resolve(target);
    if (!spec || !series || series->ended() || !same_target(*spec, series_spec)) {
      series.reset();
      util::Result<void> there = spec ? collect::sampler::validate(*spec, collect::procfs::ProcFs())
                                      : util::Result<void>(spec.error());
      if (there) {
        // Every target's windows and ticks on one clock grid: their host reads are shared.
        WindowOptions wo;
        wo.duration_ns = opt.window_ns;
        wo.interval_ns = opt.interval_ns;
        wo.stop = &stop;
        wo.rolling = true;
        wo.shared_clock = true;
        auto opened = WindowSeries::open(*spec, wo);
        if (opened) {
          series = std::move(*opened);
          series_spec = *spec;
        } else {
          there = opened.error();
        }
      }
      if (!there) {
        failed(i, there.error());
        sleep_unless_stopped(opt.window_ns, stop);
        continue;
      }
    }
    auto w = series->next(recordings[i] != nullptr);
    if (!w) {
      failed(i, w.error());
      // A window that failed at once (the target went away between the check and the start)
      // waits out the rest of its time, so a missing target costs one look per window.
      const auto spent = std::chrono::steady_clock::now() - started;
      sleep_unless_stopped(
          opt.window_ns - std::chrono::duration_cast<std::chrono::nanoseconds>(spent).count(),
          stop);
      continue;
    }
    std::uint64_t lost = 0;
    if (recordings[i]) {
      store::RecordingWriter& rec = *recordings[i];
      if (!recording_begun[i]) {
        rec.begin(w->samples.info);
        recording_begun[i] = true;
      }
      for (auto& tick : w->samples.ticks) rec.add(std::move(tick));
      lost = rec.ticks_lost();
    }
    const model::TimeSplit split = w->diagnosis.split;
    std::unique_lock lock(mu);
    TargetState& s = states[i];
    if (!s.up && s.windows_failed > 0 && opt.log) {
      std::cerr << fmt::format("chokepoint agent: target {} is up\n", util::terminal_text(s.label));
    }
    s.up = true;
    s.error.clear();
    ++s.windows_ok;
    for (std::size_t r = 0; r < model::kResourceCount; ++r) {
      s.thread_seconds[r] += static_cast<double>(w->diagnosis.split.ns[r]) / 1e9;
    }
    s.has_window = true;
    s.window_end_unix_s = unix_now_s();
    s.diagnosis = std::move(w->diagnosis);
    s.system = std::move(w->observation.system);
    s.sources = std::move(w->observation.sources);
    s.processes = static_cast<int>(w->observation.processes.size());
    s.threads = static_cast<int>(w->observation.threads.size());
    s.recording_ticks_lost = lost;
    if (on_window) {
      const TargetState copy = s;
      lock.unlock();
      on_window(copy, split);
    }
  }
}

Agent::Agent(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Agent::~Agent() = default;

util::Result<std::unique_ptr<Agent>> Agent::create(AgentOptions options, WindowObserver on_window) {
  if (options.targets.empty()) {
    return util::Error{"the agent has no target", "pass --target host, or targets in --config",
                       EINVAL};
  }
  auto impl = std::make_unique<Impl>();
  impl->start_unix_s = unix_now_s();
  impl->opt = std::move(options);
  impl->on_window = std::move(on_window);
  const AgentOptions& o = impl->opt;
  for (std::size_t i = 0; i < o.targets.size(); ++i) {
    TargetState s;
    s.label = o.targets[i].text;
    std::unique_ptr<store::RecordingWriter> writer;
    if (!o.record_dir.empty()) {
      std::error_code ec;
      std::filesystem::create_directories(o.record_dir, ec);
      if (ec) {
        return util::Error{
            fmt::format("cannot create the recording directory {}: {}", o.record_dir, ec.message()),
            "pass --record-dir a directory the agent can write", ec.value()};
      }
      s.recording = o.record_dir + "/" + recording_name(i, s.label);
      store::WriterOptions wo;
      wo.chokepoint_version = o.chokepoint_version;
      wo.keep_for_ns = o.keep_for_ns;
      wo.max_bytes = o.record_max_bytes;
      const std::string label = s.label;
      wo.on_write_error = [label](const util::Error& e) {
        std::cerr << fmt::format("chokepoint agent: recording of {} failed: {}\n",
                                 util::terminal_text(label), util::terminal_text(e.message));
      };
      auto w = store::RecordingWriter::create(s.recording, std::move(wo));
      if (!w) return w.error();
      writer = std::move(*w);
    }
    impl->recordings.push_back(std::move(writer));
    impl->recording_begun.push_back(false);
    impl->states.push_back(std::move(s));
  }
  return std::unique_ptr<Agent>(new Agent(std::move(impl)));
}

void Agent::run(const std::atomic<bool>& stop) {
  std::vector<std::thread> threads;
  threads.reserve(impl_->opt.targets.size());
  for (std::size_t i = 0; i < impl_->opt.targets.size(); ++i) {
    threads.emplace_back([this, i, &stop] { impl_->watch(i, stop); });
  }
  for (auto& t : threads) t.join();
}

std::vector<TargetState> Agent::snapshot() const {
  std::lock_guard lock(impl_->mu);
  return impl_->states;
}

AgentSelfStats Agent::self_stats() const {
  AgentSelfStats s;
  s.start_unix_s = impl_->start_unix_s;
  rusage ru{};
  if (getrusage(RUSAGE_SELF, &ru) == 0) {
    auto secs = [](const timeval& tv) {
      return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
    };
    s.cpu_seconds = secs(ru.ru_utime) + secs(ru.ru_stime);
  }
  // statm(5): size resident shared ... in pages.
  std::ifstream statm("/proc/self/statm");
  std::uint64_t size = 0;
  std::uint64_t resident = 0;
  if (statm >> size >> resident) {
    s.resident_bytes = resident * static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
  }
  return s;
}

}  // namespace chokepoint::monitor
