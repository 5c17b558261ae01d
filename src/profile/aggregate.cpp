#include "profile/aggregate.h"

#include <fmt/format.h>

#include <map>
#include <set>
#include <utility>

namespace chokepoint::profile {

std::string process_frame_name(std::string_view comm, int pid) {
  if (comm.empty()) return fmt::format("[{}]", pid);
  return fmt::format("{} ({})", comm, pid);
}

std::size_t StackAggregator::KeyHash::operator()(const std::vector<std::uint64_t>& key) const {
  // FNV-1a over the words, with a final mix: addresses share high bits, so mix all of them.
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (std::uint64_t w : key) {
    h ^= w;
    h *= 0x100000001b3ULL;
    h ^= h >> 29;
  }
  return static_cast<std::size_t>(h);
}

StackAggregator::StackAggregator(AggregateOptions options) : options_(options) {}

void StackAggregator::add(const RawStack& raw) {
  key_.clear();
  key_.push_back(static_cast<std::uint64_t>(raw.pid));
  key_.push_back(options_.thread_frames ? static_cast<std::uint64_t>(raw.tid) : 0);
  key_.push_back(raw.kernel_ips.size());
  key_.insert(key_.end(), raw.kernel_ips.begin(), raw.kernel_ips.end());
  key_.insert(key_.end(), raw.user_ips.begin(), raw.user_ips.end());
  auto it = stacks_.find(key_);
  if (it == stacks_.end()) it = stacks_.emplace(key_, Counts{}).first;
  it->second.value += raw.value;
  it->second.count += raw.count;
  total_value_ += raw.value;
  auto [p, inserted] = process_names_.try_emplace(raw.pid, raw.process_name);
  if (inserted) pid_order_.push_back(raw.pid);
  // The latest name wins: exec renames a process mid-run.
  else if (!raw.process_name.empty() && p->second != raw.process_name)
    p->second = raw.process_name;
  if (options_.thread_frames && !raw.thread_name.empty()) thread_names_[raw.tid] = raw.thread_name;
}

void StackAggregator::build(Resolver& resolver, Profile& out) const {
  // Caches: one resolution per (pid, lookup address) and per kernel lookup address.
  std::map<std::pair<int, std::uint64_t>, Frame> user_cache;
  std::map<std::uint64_t, Frame> kernel_cache;
  std::set<int> reattached;
  auto user = [&](int pid, std::uint64_t address) -> const Frame& {
    auto key = std::make_pair(pid, address);
    auto it = user_cache.find(key);
    if (it != user_cache.end()) return it->second;
    Frame f = resolver.user(pid, address);
    if (f.kind == FrameKind::kUnresolved && f.unresolved == "not mapped" &&
        reattached.insert(pid).second) {
      // A library mapped after the snapshot (dlopen): look again once per process.
      resolver.attach(pid);
      f = resolver.user(pid, address);
    }
    return user_cache.emplace(key, std::move(f)).first->second;
  };
  auto kernel = [&](std::uint64_t address) -> const Frame& {
    auto it = kernel_cache.find(address);
    if (it != kernel_cache.end()) return it->second;
    return kernel_cache.emplace(address, resolver.kernel(address)).first->second;
  };

  out.stacks.reserve(out.stacks.size() + stacks_.size());
  for (const auto& [key, counts] : stacks_) {
    const int pid = static_cast<int>(key[0]);
    const int tid = static_cast<int>(key[1]);
    const std::size_t nk = key[2];
    const std::size_t kbegin = 3, ubegin = 3 + nk;
    Stack s;
    s.value = counts.value;
    s.count = counts.count;
    s.frames.reserve(2 + key.size() - 3);
    auto pn = process_names_.find(pid);
    Frame root;
    root.kind = FrameKind::kProcess;
    root.name = process_frame_name(pn == process_names_.end() ? "" : pn->second, pid);
    s.frames.push_back(std::move(root));
    if (options_.thread_frames) {
      auto tn = thread_names_.find(tid);
      Frame t;
      t.kind = FrameKind::kThread;
      t.name = tn == thread_names_.end() ? fmt::format("[{}]", tid)
                                         : fmt::format("{} ({})", tn->second, tid);
      s.frames.push_back(std::move(t));
    }
    // User frames: the chain is leaf first; walk it backwards so the outermost comes first. The
    // leaf (index 0) is the sampled ip itself; the rest are return addresses (looked up at -1).
    const std::size_t nu = key.size() - ubegin;
    for (std::size_t i = nu; i-- > 0;) {
      std::uint64_t a = key[ubegin + i];
      s.frames.push_back(user(pid, i == 0 || a == 0 ? a : a - 1));
    }
    // Kernel frames sit below the user frames (the kernel was entered from user space). A user
    // leaf is the user ip at the sample or at kernel entry (the instruction after the syscall):
    // either way it is inside the function that ran, so it is looked up as is.
    for (std::size_t i = nk; i-- > 0;) {
      std::uint64_t a = key[kbegin + i];
      s.frames.push_back(kernel(i == 0 || a == 0 ? a : a - 1));
    }
    out.stacks.push_back(std::move(s));
  }
}

Profile without_thread_frames(Profile p) {
  std::map<std::string, std::size_t> index;  // a stack's frames, every field -> its merged stack
  std::vector<Stack> merged;
  for (Stack& s : p.stacks) {
    std::erase_if(s.frames, [](const Frame& f) { return f.kind == FrameKind::kThread; });
    // Every field of every frame, each string prefixed by its length (names are hostile).
    std::string key;
    for (const Frame& f : s.frames) {
      for (const std::string* field : {&f.name, &f.module, &f.file, &f.unresolved}) {
        key += fmt::format("{}:{}", field->size(), *field);
      }
      key += fmt::format("{}:{};", static_cast<int>(f.kind), f.line);
    }
    auto [it, inserted] = index.emplace(std::move(key), merged.size());
    if (inserted) {
      merged.push_back(std::move(s));
    } else {
      merged[it->second].value += s.value;
      merged[it->second].count += s.count;
    }
  }
  p.stacks = std::move(merged);
  return p;
}

}  // namespace chokepoint::profile
