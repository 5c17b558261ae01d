#include "app/run_budget.h"

#include <fmt/format.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "util/clock.h"

namespace chokepoint::app {
namespace {

constexpr int kMeasuringNice = -20;

std::int64_t thread_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * util::kNsPerSec + ts.tv_nsec;
}

}  // namespace

RunBudget::RunBudget(std::int64_t asked_ns)
    : start_ns_(util::monotonic_ns()),
      asked_ns_(asked_ns),
      last_mark_ns_(start_ns_),
      start_cpu_ns_(thread_cpu_ns()) {}

void RunBudget::mark(const std::string& phase) {
  const std::int64_t now = util::monotonic_ns();
  phases_.emplace_back(phase, static_cast<double>(now - last_mark_ns_) / 1e9);
  last_mark_ns_ = now;
}

double RunBudget::elapsed_s() const {
  return static_cast<double>(util::monotonic_ns() - start_ns_) / 1e9;
}

double RunBudget::thread_cpu_s() const {
  return static_cast<double>(thread_cpu_ns() - start_cpu_ns_) / 1e9;
}

std::string RunBudget::phases_text() const {
  std::string out;
  for (const auto& [name, s] : phases_) {
    out += fmt::format("{}{} {:.1f} s", out.empty() ? "" : ", ", name, s);
  }
  return out;
}

std::string RunBudget::summary() const {
  return fmt::format("took {:.1f} s of the {:.1f} s promised ({})", elapsed_s(),
                     static_cast<double>(asked_ns_ + kGraceNs) / 1e9, phases_text());
}

bool raise_measuring_priority() {
  // On Linux the nice value is per thread; PRIO_PROCESS with a tid sets that thread's.
  return setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), kMeasuringNice) == 0;
}

bool window_needs_priority(const collect::sampler::TargetSpec& target) {
  collect::procfs::ProcFs proc;
  auto pids = collect::sampler::resolve_pids(target, proc);
  if (!pids) return false;
  std::size_t threads = 0;
  for (int pid : *pids) {
    if (auto tids = proc.list_tids(pid)) threads += tids->size();
    if (threads >= kManyThreads) return true;
  }
  return false;
}

}  // namespace chokepoint::app
