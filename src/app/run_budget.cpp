#include "app/run_budget.h"

#include <fmt/format.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <fstream>
#include <iterator>
#include <sstream>

#include "util/clock.h"

namespace chokepoint::app {
namespace {

constexpr int kMeasuringNice = -20;

// The nice value the thread had before raise_measuring_priority() first changed it (kNoNice: not
// changed). Written once, by the owning thread, before any child is launched.
constexpr int kNoNice = 100;
int g_nice_before_raise = kNoNice;

// util::monotonic_ns() when app::run() began (0: not marked). Written once, before any thread.
std::int64_t g_main_start_ns = 0;

// util::monotonic_ns() when this process was exec'd: /proc/self/stat's starttime (clock ticks
// since boot) against CLOCK_BOOTTIME, 10 ms resolution. `fallback` when it cannot be read.
std::int64_t process_start_ns(std::int64_t fallback) {
  std::ifstream in("/proc/self/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Field 22, counted after the ')' that ends the comm (which may hold spaces and parens).
  const std::size_t close = stat.rfind(')');
  if (close == std::string::npos) return fallback;
  std::istringstream fields(stat.substr(close + 1));
  std::string field;
  for (int i = 3; i <= 22 && fields >> field; ++i) {
    if (i != 22) continue;
    const long ticks_per_s = sysconf(_SC_CLK_TCK);
    std::uint64_t ticks = 0;
    auto [ptr, ec] = std::from_chars(field.data(), field.data() + field.size(), ticks);
    if (ec != std::errc{} || ticks_per_s <= 0) return fallback;
    timespec boot{};
    clock_gettime(CLOCK_BOOTTIME, &boot);
    const std::int64_t since_boot_ns =
        static_cast<std::int64_t>(boot.tv_sec) * util::kNsPerSec + boot.tv_nsec;
    const std::int64_t started_ns =
        static_cast<std::int64_t>(ticks) * (util::kNsPerSec / ticks_per_s);
    const std::int64_t age_ns = since_boot_ns - started_ns;
    // Between 0 and a minute: anything else is a clock we do not understand.
    if (age_ns < 0 || age_ns > 60 * util::kNsPerSec) return fallback;
    return util::monotonic_ns() - age_ns;
  }
  return fallback;
}

std::int64_t thread_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * util::kNsPerSec + ts.tv_nsec;
}

}  // namespace

RunBudget::RunBudget(std::int64_t asked_ns)
    : start_ns_(g_main_start_ns != 0 ? g_main_start_ns : util::monotonic_ns()),
      asked_ns_(asked_ns),
      last_mark_ns_(start_ns_),
      start_cpu_ns_(thread_cpu_ns()) {
  exec_ns_ = std::min(process_start_ns(start_ns_), start_ns_);
  phases_.emplace_back("loading", loading_s());
}

void RunBudget::mark(const std::string& phase) {
  const std::int64_t now = util::monotonic_ns();
  phases_.emplace_back(phase, static_cast<double>(now - last_mark_ns_) / 1e9);
  last_mark_ns_ = now;
}

double RunBudget::elapsed_s() const {
  return static_cast<double>(util::monotonic_ns() - exec_ns_) / 1e9;
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
  const double promised_s = static_cast<double>(asked_ns_ + kGraceNs) / 1e9;
  if (loading_s() < 1.0) {
    return fmt::format("took {:.1f} s of the {:.1f} s promised ({})", elapsed_s(), promised_s,
                       phases_text());
  }
  std::string after;
  for (std::size_t i = 1; i < phases_.size(); ++i) {
    after += fmt::format("{}{} {:.1f} s", after.empty() ? "" : ", ", phases_[i].first,
                         phases_[i].second);
  }
  return fmt::format(
      "took {:.1f} s: loading {:.1f} s before chokepoint's code ran (the dynamic loader; long "
      "when every CPU is busy), then {:.1f} s of the {:.1f} s promised ({})",
      elapsed_s(), loading_s(), elapsed_s() - loading_s(), promised_s, after);
}

void mark_main_start() {
  g_main_start_ns = util::monotonic_ns();
}

bool raise_measuring_priority() {
  // On Linux the nice value is per thread; PRIO_PROCESS with a tid sets that thread's.
  const auto tid = static_cast<id_t>(gettid());
  errno = 0;
  const int before = getpriority(PRIO_PROCESS, tid);
  const bool known = errno == 0;
  if (setpriority(PRIO_PROCESS, tid, kMeasuringNice) != 0) return false;
  if (known && g_nice_before_raise == kNoNice) g_nice_before_raise = before;
  return true;
}

void restore_user_priority() {
  if (g_nice_before_raise == kNoNice) return;
  setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), g_nice_before_raise);
}

std::optional<int> nice_before_raise() {
  if (g_nice_before_raise == kNoNice) return std::nullopt;
  return g_nice_before_raise;
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
