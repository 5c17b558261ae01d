#include "analysis/stack_evidence.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <optional>
#include <string_view>
#include <tuple>

#include "analysis/rules/rule.h"
#include "util/plural.h"

namespace chokepoint::analysis {
namespace {

using profile::Frame;
using profile::FrameKind;

bool contains_any(std::string_view name, std::initializer_list<std::string_view> parts) {
  for (auto p : parts) {
    if (name.find(p) != std::string_view::npos) return true;
  }
  return false;
}

// The frames before the woken-by marker: where the thread blocked.
std::vector<Frame>::const_iterator blocked_end(const std::vector<Frame>& frames) {
  return std::find_if(frames.begin(), frames.end(),
                      [](const Frame& f) { return f.name == profile::kWokenByMarker; });
}

bool system_library(const std::string& module) {
  const bool lib_dir = module.rfind("/lib/", 0) == 0 || module.rfind("/lib64/", 0) == 0 ||
                       module.rfind("/usr/lib", 0) == 0 || module.rfind("/usr/local/lib", 0) == 0;
  return lib_dir && module.find(".so") != std::string::npos;
}

// A C++ name without its parameter list and anonymous namespaces, for a sentence:
// "ns::(anonymous namespace)::Store::put(std::string const&)" -> "ns::Store::put".
std::string short_name(std::string name) {
  const std::string anon = "(anonymous namespace)::";
  for (auto pos = name.find(anon); pos != std::string::npos; pos = name.find(anon)) {
    name.erase(pos, anon.size());
  }
  // GCC's clone suffixes (" [clone .isra.0]", " [clone .constprop.1]") name the same function.
  for (auto pos = name.find(" [clone "); pos != std::string::npos; pos = name.find(" [clone ")) {
    auto end = name.find(']', pos);
    name.erase(pos, end == std::string::npos ? std::string::npos : end - pos + 1);
  }
  // The parameter list is the last top-level "(...)"; operator() and friends keep theirs.
  if (!name.empty() && name.back() == ')' && name.find("operator") == std::string::npos) {
    int depth = 0;
    for (std::size_t i = name.size(); i-- > 0;) {
      if (name[i] == ')') ++depth;
      if (name[i] == '(' && --depth == 0) {
        name.resize(i);
        break;
      }
    }
  }
  return name;
}

// "Store::put (store.cpp:41)". A line inside a system header (an inlined std::mutex::lock) says
// nothing about the service's code, so it is left out.
std::string frame_text(const Frame& f) {
  std::string name = short_name(f.name);
  if (f.file.empty() || f.file.rfind("/usr/", 0) == 0) return name;
  const auto slash = f.file.rfind('/');
  const std::string base = slash == std::string::npos ? f.file : f.file.substr(slash + 1);
  return f.line > 0 ? fmt::format("{} ({}:{})", name, base, f.line)
                    : fmt::format("{} ({})", name, base);
}

// Weight summed per function (its short name), shown with the source line that carries most of
// it: several lines of one function are one answer to "where".
class ByFunction {
 public:
  // Returns the function's key.
  std::string add(const Frame& f, std::uint64_t value, bool with_line) {
    std::string key = short_name(f.name);
    Entry& e = entries_[key];
    e.total += value;
    Frame shown = f;
    if (!with_line) shown.line = 0;
    e.by_text[frame_text(shown)] += value;
    return key;
  }
  // (total, key, text with the heaviest line), most weight first.
  std::vector<std::tuple<std::uint64_t, std::string, std::string>> ranked() const {
    std::vector<std::tuple<std::uint64_t, std::string, std::string>> out;
    for (const auto& [key, e] : entries_) {
      auto best =
          std::max_element(e.by_text.begin(), e.by_text.end(),
                           [](const auto& a, const auto& b) { return a.second < b.second; });
      out.emplace_back(e.total, key, best->first);
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
      return std::get<0>(a) != std::get<0>(b) ? std::get<0>(a) > std::get<0>(b)
                                              : std::get<1>(a) < std::get<1>(b);
    });
    return out;
  }

 private:
  struct Entry {
    std::uint64_t total = 0;
    std::map<std::string, std::uint64_t> by_text;
  };
  std::map<std::string, Entry> entries_;
};

double seconds(const profile::Profile& p, std::uint64_t value) {
  if (p.weight == profile::Weight::kNanoseconds) return static_cast<double>(value) / 1e9;
  return p.frequency_hz > 0 ? static_cast<double>(value) / p.frequency_hz : 0;
}

const char* wait_noun(Verdict resource) {
  if (resource == Verdict::kLock) return "lock wait";
  if (resource == Verdict::kDisk) return "disk wait";
  if (resource == Verdict::kNetwork) return "network wait";
  return "memory stall";
}

}  // namespace

Verdict offcpu_resource(const profile::Stack& stack) {
  const auto end = blocked_end(stack.frames);
  bool futex = false, mutex = false, condvar = false;
  bool memory = false, disk = false, network = false, file_lock = false;
  for (auto it = stack.frames.begin(); it != end; ++it) {
    const std::string& n = it->name;
    if (it->kind == FrameKind::kKernel) {
      // Order matters: a page fault can wait in io_schedule too, and is memory.
      if (contains_any(n, {"handle_mm_fault", "exc_page_fault", "do_swap_page", "try_to_free_pages",
                           "__alloc_pages_slowpath", "shrink_node", "mem_cgroup_handle_over_high",
                           "workingset_refault"})) {
        memory = true;
      }
      if (contains_any(n,
                       {"fsync", "fdatasync", "sync_file_range", "jbd2", "io_schedule", "writeback",
                        "blk_mq", "submit_bio", "ext4_", "xfs_", "btrfs_", "filemap_read"})) {
        disk = true;
      }
      if (contains_any(n, {"tcp_", "sk_wait", "sk_stream_wait", "inet_", "unix_stream",
                           "__sys_recv", "__sys_send", "sock_", "do_sys_poll"})) {
        network = true;
      }
      if (contains_any(n, {"futex_wait"})) futex = true;
      if (contains_any(n, {"locks_lock_inode_wait", "flock_lock", "fcntl_setlk", "posix_lock"})) {
        file_lock = true;
      }
    } else {
      // glibc 2.36: std::mutex::lock -> pthread_mutex_lock -> __lll_lock_wait -> futex;
      // std::condition_variable::wait -> pthread_cond_wait -> __futex_abstimed_wait_common.
      if (contains_any(n, {"mutex_lock", "__lll_lock_wait", "rwlock", "sem_wait", "sem_timedwait",
                           "mutex::lock", "shared_mutex"})) {
        mutex = true;
      }
      if (contains_any(n,
                       {"cond_wait", "cond_timedwait", "cond_clockwait", "condition_variable"})) {
        condvar = true;
      }
    }
  }
  if (memory) return Verdict::kMemory;
  if (file_lock) return Verdict::kLock;
  // A futex is a lock only when the user frames say mutex; a condition variable is a pool thread
  // waiting for work (idle), and a futex with neither cannot be told apart: left out.
  if (futex) return mutex && !condvar ? Verdict::kLock : Verdict::kNone;
  if (disk) return Verdict::kDisk;
  if (network) return Verdict::kNetwork;
  return Verdict::kNone;
}

const Frame* own_code_frame(const std::vector<Frame>& frames) {
  for (auto it = frames.rbegin(); it != frames.rend(); ++it) {
    if ((it->kind == FrameKind::kUser || it->kind == FrameKind::kJit) &&
        !system_library(it->module)) {
      return &*it;
    }
  }
  return nullptr;
}

StackEvidence stack_evidence(Verdict resource, const profile::Profile* on_cpu,
                             const profile::Profile* off_cpu, std::size_t top) {
  StackEvidence ev;
  if (resource == Verdict::kCpu) {
    if (!on_cpu) return ev;
    // Self time by own-code function: the leaf-most frame of the service's code, so time in libc
    // called from Store::hash counts for Store::hash.
    ByFunction by_function;
    std::uint64_t total = 0;
    for (const auto& s : on_cpu->stacks) {
      total += s.value;
      const Frame* f = own_code_frame(s.frames);
      if (f) by_function.add(*f, s.value, /*with_line=*/false);
    }
    if (total == 0) return ev;
    const auto ranked = by_function.ranked();
    std::string line = "hottest code on CPU:";
    for (std::size_t i = 0; i < ranked.size() && i < top; ++i) {
      const auto& [value, key, text] = ranked[i];
      line += fmt::format("{} {} {:.0f}%", i ? "," : "", text,
                          100.0 * static_cast<double>(value) / static_cast<double>(total));
    }
    ev.covered_s = seconds(*on_cpu, total);
    ev.lines.push_back(
        line + fmt::format(" (of {} on-CPU samples at {:g} Hz)", total, on_cpu->frequency_hz));
    return ev;
  }
  if (!off_cpu || resource == Verdict::kNone) return ev;
  ByFunction blocked_in;
  std::map<std::string, std::map<std::string, std::uint64_t>> woken_by;
  std::uint64_t total = 0;
  for (const auto& s : off_cpu->stacks) {
    if (offcpu_resource(s) != resource) continue;
    total += s.value;
    const auto end = blocked_end(s.frames);
    std::vector<Frame> blocked(s.frames.begin(), end);
    const Frame* f = own_code_frame(blocked);
    static const Frame kOutside{
        "code outside the service (libraries, kernel)", FrameKind::kUnresolved, "", "", 0, ""};
    const std::string key = blocked_in.add(f ? *f : kOutside, s.value, /*with_line=*/true);
    if (end != s.frames.end()) {
      // The waker's stack is stored reversed after the marker: its leaf-most frame comes first.
      const Frame* waker = nullptr;
      for (auto it = end + 1; it != s.frames.end() && !waker; ++it) {
        if ((it->kind == FrameKind::kUser || it->kind == FrameKind::kJit) &&
            !system_library(it->module)) {
          waker = &*it;
        }
      }
      if (waker) woken_by[key][short_name(waker->name)] += s.value;
    }
  }
  if (total == 0) return ev;
  ev.covered_s = seconds(*off_cpu, total);
  const auto ranked = blocked_in.ranked();
  for (std::size_t i = 0; i < ranked.size() && i < top; ++i) {
    const auto& [value, key, where] = ranked[i];
    std::string line =
        fmt::format("{:.0f}% of {} ({:.2f} thread-seconds in off-CPU stacks) is under {}",
                    100.0 * static_cast<double>(value) / static_cast<double>(total),
                    wait_noun(resource), seconds(*off_cpu, value), where);
    // Who woke a lock waiter is who released the lock. For the other waits the waker is the
    // kernel's completion path or a peer, which says little about the service's code.
    auto w = woken_by.find(key);
    if (resource == Verdict::kLock && w != woken_by.end() && !w->second.empty()) {
      auto best =
          std::max_element(w->second.begin(), w->second.end(),
                           [](const auto& a, const auto& b) { return a.second < b.second; });
      line += ", released by " + best->first;
    }
    ev.lines.push_back(line);
  }
  return ev;
}

namespace {

const Frame kNoOwnCode{
    "code outside the service (libraries)", FrameKind::kUnresolved, "", "", 0, ""};

}  // namespace

std::map<int, ThreadFunction> thread_functions(const profile::Profile& on_cpu) {
  std::map<int, ByFunction> by_thread;
  std::map<int, std::uint64_t> totals;
  for (const auto& s : on_cpu.stacks) {
    std::optional<int> tid;
    for (const Frame& f : s.frames) {
      if ((tid = profile::thread_frame_tid(f))) break;
    }
    if (!tid) continue;
    totals[*tid] += s.value;
    if (const Frame* f = own_code_frame(s.frames)) by_thread[*tid].add(*f, s.value, true);
  }
  std::map<int, ThreadFunction> out;
  for (const auto& [tid, functions] : by_thread) {
    const auto ranked = functions.ranked();
    if (ranked.empty() || totals[tid] == 0) continue;
    const auto& [value, key, text] = ranked.front();
    out[tid] = {text, static_cast<double>(value) / static_cast<double>(totals[tid])};
  }
  return out;
}

void name_chain_roots(Diagnosis& d, const std::map<int, ThreadFunction>& functions) {
  if (d.bottlenecks.empty() || functions.empty()) return;
  Bottleneck& b = d.bottlenecks.front();
  for (auto& chain : b.chains) {
    const bool on_a_cpu = chain.root_resource == model::Resource::kOnCpu ||
                          chain.root_resource == model::Resource::kCpuWait;
    auto f = functions.find(chain.root_tid);
    if (!on_a_cpu || chain.root_kind != model::WakerKind::kThread || f == functions.end()) continue;
    const std::string before = rules::chain_text(chain);
    chain.root_function = f->second.function;
    chain.root_function_share = f->second.share;
    const std::string after = rules::chain_text(chain);
    for (auto& line : b.evidence) {
      if (auto at = line.find(before); at != std::string::npos)
        line.replace(at, before.size(), after);
    }
  }
}

std::vector<MemorySite> memory_sites(const profile::Profile& live,
                                     const profile::Profile& allocated) {
  ByFunction live_by, allocated_by;
  for (const auto& s : live.stacks) {
    const Frame* f = own_code_frame(s.frames);
    live_by.add(f ? *f : kNoOwnCode, s.value, /*with_line=*/true);
  }
  for (const auto& s : allocated.stacks) {
    const Frame* f = own_code_frame(s.frames);
    allocated_by.add(f ? *f : kNoOwnCode, s.value, /*with_line=*/true);
  }
  std::map<std::string, MemorySite> sites;
  for (const auto& [value, key, text] : allocated_by.ranked()) {
    MemorySite& site = sites[key];
    site.function = key;
    site.text = text;
    site.allocated_bytes = value;
  }
  for (const auto& [value, key, text] : live_by.ranked()) {
    MemorySite& site = sites[key];
    site.function = key;
    site.text = text;  // the line that keeps the most
    site.live_bytes = value;
  }
  std::vector<MemorySite> out;
  out.reserve(sites.size());
  for (auto& [key, site] : sites) out.push_back(std::move(site));
  std::sort(out.begin(), out.end(), [](const MemorySite& a, const MemorySite& b) {
    return std::tie(b.live_bytes, b.allocated_bytes, a.function) <
           std::tie(a.live_bytes, a.allocated_bytes, b.function);
  });
  return out;
}

StackEvidence memory_evidence(const profile::Profile& live, std::size_t top) {
  StackEvidence ev;
  ByFunction by;
  std::uint64_t total = 0;
  for (const auto& s : live.stacks) {
    total += s.value;
    const Frame* f = own_code_frame(s.frames);
    by.add(f ? *f : kNoOwnCode, s.value, /*with_line=*/true);
  }
  if (total == 0 || live.duration_s <= 0) return ev;
  const auto ranked = by.ranked();
  for (std::size_t i = 0; i < ranked.size() && i < top; ++i) {
    const auto& [value, key, where] = ranked[i];
    // Below 1% a site is noise next to the first: not evidence.
    if (i > 0 && static_cast<double>(value) < 0.01 * static_cast<double>(total)) break;
    ev.lines.push_back(fmt::format("{:.0f}% of the growth is under {}, +{}/s",
                                   100.0 * static_cast<double>(value) / static_cast<double>(total),
                                   where,
                                   util::bytes_text(static_cast<double>(value) / live.duration_s)));
  }
  return ev;
}

}  // namespace chokepoint::analysis
