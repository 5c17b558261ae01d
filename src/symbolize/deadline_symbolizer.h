#pragma once
// A Symbolizer that stops symbolizing at a deadline. Naming frames can take seconds when the
// machine is saturated (a binary's symbols are read and indexed on first use) or when a profile
// has many binaries; a run that promised to end by a time keeps its promise: past the deadline,
// attach() refuses and lookups come back as bare addresses (FrameKind::kUnresolved, reason
// kOutOfTimeReason), counted in stats() and said once in notes().
//
// Not thread-safe, like every Symbolizer; the inner one must outlive this one.

#include <cstdint>

#include "symbolize/symbolizer.h"

namespace chokepoint::symbolize {

inline constexpr const char* kOutOfTimeReason = "symbolization ran out of time";

class DeadlineSymbolizer final : public Symbolizer {
 public:
  // deadline_ns: util::monotonic_ns() after which nothing more is resolved.
  DeadlineSymbolizer(Symbolizer& inner, std::int64_t deadline_ns)
      : inner_(inner), deadline_ns_(deadline_ns) {}

  util::Result<void> attach(int pid) override;
  profile::Frame user(int pid, std::uint64_t address) override;
  profile::Frame kernel(std::uint64_t address) override;
  std::vector<std::string> notes() const override;
  SymbolizerStats stats() const override;

  // Lookups answered after the deadline (left unresolved).
  std::uint64_t late_lookups() const { return late_user_ + late_kernel_; }

 private:
  bool expired() const;
  Symbolizer& inner_;
  std::int64_t deadline_ns_;
  std::uint64_t late_user_ = 0, late_kernel_ = 0;
};

}  // namespace chokepoint::symbolize
