#pragma once
// A thread's account as the sampler would record it, for tests of the analysis and the report:
// thread `tid` of pid 100 ("worker") spent `share` of a `window_ns` window in each resource, the
// rest idle, with the waits (not on_cpu or cpu_wait) under `detail` ("fdatasync /data/x").
// Header-only.

#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>

#include "model/account.h"

namespace chokepoint::test_support {

inline model::ThreadAccount thread_account(
    int tid, std::initializer_list<std::pair<model::Resource, double>> shares,
    const std::string& detail, std::int64_t window_ns) {
  model::ThreadAccount t;
  t.key = {100, tid, 1};
  t.comm = "worker";
  double used = 0;
  for (auto [r, s] : shares) {
    auto ns = static_cast<std::int64_t>(s * static_cast<double>(window_ns));
    t.split[r] += ns;
    used += s;
    if (!detail.empty() && r != model::Resource::kOnCpu && r != model::Resource::kCpuWait) {
      t.details[static_cast<std::size_t>(r)][detail] += ns;
    }
  }
  t.split[model::Resource::kIdle] +=
      static_cast<std::int64_t>((1.0 - used) * static_cast<double>(window_ns));
  return t;
}

}  // namespace chokepoint::test_support
