#pragma once
// The profile data model: aggregated stacks with their weight, as produced by the on-CPU sampler
// (collect/perf) and the off-CPU tracer (collect/bpf) after symbolization, and as read by every
// output (render/flamegraph: folded, SVG, speedscope; --top; diagnose evidence).
//
// Plain data, no I/O. A Profile owns its frames; stacks are stored outermost frame first (the
// process root, then main/start_thread, ..., the leaf last), the order flame graphs draw them in.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace chokepoint::profile {

enum class FrameKind {
  kProcess,     // the synthetic root frame "comm (pid)" or "comm" for a group of processes
  kThread,      // an optional synthetic frame "thread-name (tid)" below the process
  kUser,        // a user-space function resolved from ELF symbols or debug info
  kKernel,      // a kernel function from /proc/kallsyms
  kJit,         // a function named by a JIT perf map (/tmp/perf-PID.map)
  kUnresolved,  // a bare address; `unresolved` says why (stripped, no symbols, JIT without map)
};

struct Frame {
  std::string name;  // demangled function name, or "[module+0x1f3a]" when unresolved
  FrameKind kind = FrameKind::kUser;
  std::string module;      // the mapped file ("/usr/lib/x86_64-linux-gnu/libc.so.6"), "[kernel]"
  std::string file;        // source file from debug info; empty when unknown
  int line = 0;            // 0 when unknown
  std::string unresolved;  // why `name` is not a function: empty when resolved

  friend bool operator==(const Frame&, const Frame&) = default;
};

// The tid of a thread frame (kThread: "thread-name (tid)", or "[tid]" without a name, as
// profile/aggregate.h writes them); nullopt for any other frame.
inline std::optional<int> thread_frame_tid(const Frame& frame) {
  const std::string& n = frame.name;
  if (frame.kind != FrameKind::kThread || n.size() < 3) return std::nullopt;
  const char close = n.back();
  if (close != ')' && close != ']') return std::nullopt;
  const auto open = n.find_last_of(close == ')' ? '(' : '[');
  if (open == std::string::npos || open + 2 >= n.size()) return std::nullopt;
  int tid = 0;
  for (std::size_t i = open + 1; i + 1 < n.size(); ++i) {
    if (n[i] < '0' || n[i] > '9' || tid > 100'000'000) return std::nullopt;
    tid = tid * 10 + (n[i] - '0');
  }
  return tid;
}

// Off-CPU stacks may carry the waker's stack after a frame with this name (Gregg's offwaketime
// layout): the frames before it are where the thread blocked, the frames after it are the stack
// of the thread that woke it (reversed, so both meet at the marker).
inline constexpr const char* kWokenByMarker = "--- woken by ---";

// One distinct stack and the weight that landed on it.
struct Stack {
  std::vector<Frame> frames;  // outermost first; the last frame is where the time was spent
  std::uint64_t value = 0;    // samples (on-CPU), nanoseconds blocked (off-CPU) or bytes (memory)
  std::uint64_t count = 0;    // events behind `value`: samples, or context switches off-CPU
};

enum class Weight {
  kSamples,      // on-CPU: one unit per sample at `frequency_hz`
  kNanoseconds,  // off-CPU: time blocked
  kBytes,        // memory: bytes allocated (estimates from byte sampling); count: samples
};

struct Profile {
  std::string title;  // e.g. "chokepoint-lab (pid 1234), on-CPU, 99 Hz, 10.0 s"
  bool off_cpu = false;
  Weight weight = Weight::kSamples;
  double frequency_hz = 0;  // on-CPU sampling frequency; 0 off-CPU
  double duration_s = 0;
  std::vector<Stack> stacks;  // distinct stacks; order carries no meaning
  // Honesty counters: shown in every output, never silent.
  std::uint64_t lost_samples = 0;  // perf ring-buffer PERF_RECORD_LOST / BPF map or ringbuf drops
  std::uint64_t truncated_stacks = 0;  // stacks cut at the unwinder's depth limit
  std::uint64_t failed_stacks = 0;     // stacks the kernel could not capture (e.g. -EFAULT)
  std::vector<std::string> notes;      // plain sentences: what the profile cannot see and why
};

}  // namespace chokepoint::profile
