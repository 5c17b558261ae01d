#pragma once
// From raw stack samples (addresses) to a profile::Profile (symbolized frames, outermost first).
//
// StackAggregator is fed during collection: add() only counts each distinct (process, [thread,]
// kernel addresses, user addresses) key, so a million samples cost one hash lookup each and memory
// in proportion to the distinct stacks. build() then resolves every distinct address once through
// a Resolver (the symbolizer, src/symbolize) and turns each key into a Stack:
//
//   [process "comm (pid)"] [thread "name (tid)"]? user frames (outermost..leaf) kernel frames
//   (outermost..leaf)
//
// Callchains come innermost first and every entry but the leaf is a return address, which can
// point past the end of its caller (a call as the last instruction of a noreturn path), so callers
// are looked up at address - 1, as perf and every unwinder do.
//
// Not thread-safe; one collector thread calls add(), then build() once.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "profile/profile.h"

namespace chokepoint::profile {

// What the aggregator needs from a symbolizer (symbolize::Symbolizer provides all three; the app
// adapts it). Implementations must never fail: an address they cannot name comes back as a
// kUnresolved frame carrying the reason.
class Resolver {
 public:
  virtual ~Resolver() = default;
  // Snapshots a process's mappings (again): called the first time a pid is seen in build() when
  // it was not attached during collection, and once more for a pid whose frames came back as
  // "not mapped" (a library loaded after the first snapshot).
  virtual void attach(int pid) = 0;
  virtual Frame user(int pid, std::uint64_t address) = 0;
  virtual Frame kernel(std::uint64_t address) = 0;
};

// One sample (or one off-CPU aggregate) as the collector saw it.
struct RawStack {
  int pid = 0;
  int tid = 0;
  std::string_view process_name{};  // comm; empty when unknown
  std::string_view thread_name{};
  std::span<const std::uint64_t> kernel_ips{};  // innermost (leaf) first
  std::span<const std::uint64_t> user_ips{};    // innermost (leaf) first
  std::uint64_t value = 1;                      // one sample, or ns blocked off-CPU
  std::uint64_t count = 1;                      // events behind value
};

struct AggregateOptions {
  bool thread_frames = false;  // add a "thread-name (tid)" frame below the process
};

class StackAggregator {
 public:
  explicit StackAggregator(AggregateOptions options = {});

  void add(const RawStack& raw);
  // Distinct keys so far, and the total value added.
  std::size_t distinct_stacks() const { return stacks_.size(); }
  std::uint64_t total_value() const { return total_value_; }
  // The pids seen, in first-seen order (to attach the symbolizer while they are alive).
  const std::vector<int>& pids() const { return pid_order_; }

  // Symbolizes and materializes the stacks into `out.stacks` (appending); each distinct address
  // is resolved once per process (user) or once (kernel). Leaves every other field of `out` as
  // it is.
  void build(Resolver& resolver, Profile& out) const;

 private:
  struct KeyHash {
    std::size_t operator()(const std::vector<std::uint64_t>& key) const;
  };
  struct Counts {
    std::uint64_t value = 0;
    std::uint64_t count = 0;
  };
  AggregateOptions options_;
  // Key: pid, tid (0 without thread frames), number of kernel ips, kernel ips, user ips.
  std::unordered_map<std::vector<std::uint64_t>, Counts, KeyHash> stacks_;
  std::unordered_map<int, std::string> process_names_;
  std::unordered_map<int, std::string> thread_names_;
  std::vector<int> pid_order_;
  std::uint64_t total_value_ = 0;
  std::vector<std::uint64_t> key_;  // reused by add()
};

// "comm (pid)", or "[pid]" when the name is unknown.
std::string process_frame_name(std::string_view comm, int pid);

// `p` without its thread frames: stacks that then have the same frames are merged (values and
// counts summed), as if the profile had been taken without thread frames.
Profile without_thread_frames(Profile p);

}  // namespace chokepoint::profile
