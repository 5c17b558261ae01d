#include "model/account.h"

#include <algorithm>
#include <string_view>

namespace chokepoint::model {
namespace {
const std::string kUnseenWaitDetail = "short waits between samples";

// Adds ns to map[key], inserting the key (and copying its detail) only when it is new.
void add_to(std::map<WaitKey, std::int64_t, WaitKeyLess>& map, Resource r, std::string_view detail,
            Hold hold, std::int64_t ns) {
  auto it = map.find(WaitKeyView{r, detail, hold});
  if (it == map.end()) it = map.emplace(WaitKey{r, std::string(detail), hold}, 0).first;
  it->second += ns;
}
}  // namespace

void carry_over(Interval& iv, Carry& carry) {
  const std::int64_t wall = std::max<std::int64_t>(iv.wall_ns, 0);
  const std::int64_t on_cpu = std::max<std::int64_t>(iv.on_cpu_ns, 0) + carry.on_cpu_ns;
  const std::int64_t cpu_wait = std::max<std::int64_t>(iv.cpu_wait_ns, 0) + carry.cpu_wait_ns;
  iv.on_cpu_ns = std::min(on_cpu, wall);
  iv.cpu_wait_ns = std::min(cpu_wait, wall - iv.on_cpu_ns);
  carry.on_cpu_ns = std::min(on_cpu - iv.on_cpu_ns, kMaxCarryNs);
  carry.cpu_wait_ns = std::min(cpu_wait - iv.cpu_wait_ns, kMaxCarryNs);
}

std::int64_t off_cpu_ns(const Interval& iv) {
  const std::int64_t wall = std::max<std::int64_t>(iv.wall_ns, 0);
  const std::int64_t on_cpu = std::clamp<std::int64_t>(iv.on_cpu_ns, 0, wall);
  const std::int64_t cpu_wait = std::clamp<std::int64_t>(iv.cpu_wait_ns, 0, wall - on_cpu);
  return wall - on_cpu - cpu_wait;
}

Resource off_cpu_resource(const Interval& iv) {
  // A wait classified as "running" covers off-CPU time we did not see the cause of: short waits
  // between samples. Count it as idle rather than invent a cause.
  const Resource r = iv.wait.resource;
  return r == Resource::kOnCpu || r == Resource::kCpuWait ? Resource::kIdle : r;
}

void add_interval(ThreadAccount& account, const Interval& iv) {
  const std::int64_t wall = std::max<std::int64_t>(iv.wall_ns, 0);
  std::int64_t on_cpu = std::clamp<std::int64_t>(iv.on_cpu_ns, 0, wall);
  std::int64_t cpu_wait = std::clamp<std::int64_t>(iv.cpu_wait_ns, 0, wall - on_cpu);
  std::int64_t kernel_work = std::clamp<std::int64_t>(iv.kernel_work_ns, 0, on_cpu);
  const std::int64_t off = off_cpu_ns(iv);

  account.split[Resource::kOnCpu] += on_cpu - kernel_work;
  account.split[iv.cpu_wait_resource] += cpu_wait;
  if (iv.cpu_wait_resource != Resource::kCpuWait && cpu_wait > 0) {
    account.details[static_cast<std::size_t>(iv.cpu_wait_resource)][iv.wait.detail] += cpu_wait;
  }
  if (kernel_work > 0) {
    account.split[iv.kernel_work_resource] += kernel_work;
    account.kernel_work_ns += kernel_work;
    account.details[static_cast<std::size_t>(iv.kernel_work_resource)][iv.wait.detail] +=
        kernel_work;
  }

  const Resource where = off_cpu_resource(iv);
  const bool unseen = where != iv.wait.resource;
  const std::string& detail = unseen ? kUnseenWaitDetail : iv.wait.detail;
  if (off > 0) {
    account.split[where] += off;
    account.details[static_cast<std::size_t>(where)][detail] += off;
    if (iv.wait.hold != Hold::kNone) account.held_ns[static_cast<std::size_t>(iv.wait.hold)] += off;
  }
  account.majflt += iv.majflt_delta;
  account.samples += 1;
}

void pool_off_cpu(WaitRatio& ratio, const Interval& iv) {
  const std::int64_t off = off_cpu_ns(iv);
  if (off <= 0) return;
  // The wait add_interval charged it to.
  const Resource where = off_cpu_resource(iv);
  const bool unseen = where != iv.wait.resource;
  add_to(ratio.charged_ns, where, unseen ? kUnseenWaitDetail : iv.wait.detail, iv.wait.hold, off);
}

void count_read(WaitRatio& ratio, const WaitClass& wait) {
  add_to(ratio.reads, wait.resource, wait.detail, wait.hold, 1);
}

void divide_by_reads(ThreadAccount& account, const WaitRatio& ratio) {
  std::int64_t reads = 0;
  for (const auto& [wait, n] : ratio.reads) reads += n;
  std::int64_t pooled_ns = 0;
  for (const auto& [wait, ns] : ratio.charged_ns) pooled_ns += ns;
  if (reads <= 0 || pooled_ns <= 0) return;
  const auto add = [&account](const WaitKey& wait, std::int64_t ns) {
    const auto& [resource, detail, hold] = wait;
    account.split[resource] += ns;
    auto& details = account.details[static_cast<std::size_t>(resource)];
    if ((details[detail] += ns) == 0) details.erase(detail);
    if (hold != Hold::kNone) account.held_ns[static_cast<std::size_t>(hold)] += ns;
  };
  for (const auto& [wait, ns] : ratio.charged_ns) add(wait, -ns);
  std::int64_t given_ns = 0;
  const WaitKey* most = nullptr;
  std::int64_t most_reads = 0;
  for (const auto& [wait, n] : ratio.reads) {
    const auto ns = static_cast<std::int64_t>(static_cast<double>(pooled_ns) *
                                              static_cast<double>(n) / static_cast<double>(reads));
    add(wait, ns);
    given_ns += ns;
    if (n > most_reads) {
      most_reads = n;
      most = &wait;
    }
  }
  if (most != nullptr && given_ns != pooled_ns) add(*most, pooled_ns - given_ns);
}

std::int64_t held_total_ns(const ThreadAccount& account) {
  std::int64_t sum = 0;
  for (std::int64_t ns : account.held_ns) sum += ns;
  return sum;
}

TimeSplit total_split(const std::vector<ThreadAccount>& threads) {
  TimeSplit total;
  for (const auto& t : threads) total += t.split;
  return total;
}

std::vector<std::pair<std::string, std::int64_t>> top_details(
    const std::vector<ThreadAccount>& threads, Resource r, std::size_t limit) {
  std::map<std::string, std::int64_t> sum;
  for (const auto& t : threads) {
    for (const auto& [detail, ns] : t.details[static_cast<std::size_t>(r)]) sum[detail] += ns;
  }
  std::vector<std::pair<std::string, std::int64_t>> out(sum.begin(), sum.end());
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.second > b.second; });
  if (out.size() > limit) out.resize(limit);
  return out;
}

}  // namespace chokepoint::model
