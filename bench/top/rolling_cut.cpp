// The model's cost of a rolling window's cut (model::ObservationSink, as top and the agent feed
// it): THREADS threads in PROCESSES processes, parked (no sample of their own after the first,
// as with the task iterator), a tenth of a percent of them ending and as many new ones each
// window; every window TICKS ticks and a closing one. Prints the CPU time (this thread's) of the
// closing ticks' add plus finish, per window and per thread, the median of REPEATS runs of
// WINDOWS windows. Built against one build's chokepoint_model; bench/top/rolling_cut.sh runs it
// beside another build's.
// Usage: chokepoint-bench-rolling-cut [THREADS] [PROCESSES] [WINDOWS] [TICKS] [REPEATS]
#include <fmt/format.h>
#include <sys/syscall.h>
#include <time.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "model/builder.h"

namespace {

using chokepoint::model::ObservationSink;
using chokepoint::model::ThreadSample;
using chokepoint::model::Tick;

constexpr std::int64_t kTickNs = 100'000'000;

std::int64_t thread_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

ThreadSample first_sample(int pid, int tid, std::int64_t at_ns) {
  ThreadSample s;
  s.key = {pid, tid, static_cast<std::uint64_t>(tid)};
  s.at_ns = at_ns;
  s.prev_poll_ns = at_ns;
  s.first = true;
  s.has_stat = true;
  s.comm = "worker";
  s.process_name = "service";
  s.wait.state = 'S';
  s.wait.where = chokepoint::model::SyscallWhere::kInSyscall;
  s.wait.syscall_nr = SYS_epoll_wait;
  return s;
}

// CPU ns per window of the closing ticks' add and finish over `windows` windows.
double run(int threads, int processes, int windows, int ticks) {
  ObservationSink sink;
  chokepoint::model::RecordingInfo info;
  info.target = {"host", "", {}};
  info.interval_ns = kTickNs;
  sink.begin(info);
  const int per_process = std::max(1, threads / processes);
  const int churn = std::max(1, threads / 1000);
  std::vector<std::pair<int, int>> live;
  Tick t0;
  for (int i = 0; i < threads; ++i) {
    const int pid = 1000 + (i / per_process) * 1000;
    live.emplace_back(pid, pid + i % per_process);
    t0.threads.push_back(first_sample(live.back().first, live.back().second, 0));
  }
  sink.add(std::move(t0));
  int next_tid = 1'000'000;
  std::int64_t at = 0;
  std::int64_t spent_ns = 0;
  for (int w = 0; w < windows; ++w) {
    for (int k = 1; k < ticks; ++k) {
      Tick t;
      at += kTickNs;
      t.at_ns = at;
      if (k == 1) {
        // Some threads end and as many start: a host's churn.
        for (int c = 0; c < churn; ++c) {
          const auto gone = live[static_cast<std::size_t>((w * 7919 + c * 104'729) % threads)];
          t.ended.push_back({gone.first, gone.second, at - kTickNs, 0});
          const int pid = gone.first;
          t.threads.push_back(first_sample(pid, next_tid, at));
          live[static_cast<std::size_t>((w * 7919 + c * 104'729) % threads)] = {pid, next_tid++};
        }
        std::sort(t.threads.begin(), t.threads.end(),
                  [](const ThreadSample& a, const ThreadSample& b) { return a.key < b.key; });
      }
      sink.add(std::move(t));
    }
    Tick close;
    at += kTickNs;
    close.at_ns = at;
    close.closing = true;
    const std::int64_t before = thread_cpu_ns();
    sink.add(std::move(close));
    auto obs = sink.finish();
    spent_ns += thread_cpu_ns() - before;
    if (obs.threads.size() < static_cast<std::size_t>(threads)) {
      fmt::print(stderr, "error: window {} has {} threads, not {}\n", w, obs.threads.size(),
                 threads);
      std::exit(1);
    }
  }
  return static_cast<double>(spent_ns) / windows;
}

}  // namespace

int main(int argc, char** argv) {
  auto arg = [&](int i, int fallback) { return argc > i ? std::atoi(argv[i]) : fallback; };
  const int threads = arg(1, 2000);
  const int processes = arg(2, 100);
  const int windows = arg(3, 30);
  const int ticks = arg(4, 10);
  const int repeats = arg(5, 5);
  if (threads < 1 || processes < 1 || processes > threads || windows < 1 || ticks < 2 ||
      repeats < 1) {
    fmt::print(stderr,
               "error: bad arguments\nhint: THREADS >= PROCESSES >= 1, WINDOWS >= 1, "
               "TICKS >= 2, REPEATS >= 1\n");
    return 2;
  }
  std::vector<double> per_window;
  for (int r = 0; r < repeats; ++r) per_window.push_back(run(threads, processes, windows, ticks));
  std::sort(per_window.begin(), per_window.end());
  const double median = per_window[per_window.size() / 2];
  fmt::print(
      "{} threads in {} processes, {} windows of {} ticks, median of {}: {:.0f} us a cut, "
      "{:.0f} ns a thread\n",
      threads, processes, windows, ticks, repeats, median / 1e3, median / threads);
  return 0;
}
