#include "symbolize/deadline_symbolizer.h"

#include <fmt/format.h>

#include <cerrno>

#include "util/clock.h"

namespace chokepoint::symbolize {
namespace {

profile::Frame late_frame(std::uint64_t address, bool kernel) {
  profile::Frame f;
  f.kind = profile::FrameKind::kUnresolved;
  f.name = fmt::format("[0x{:x}]", address);
  f.module = kernel ? "[kernel]" : "";
  f.unresolved = kOutOfTimeReason;
  return f;
}

}  // namespace

bool DeadlineSymbolizer::expired() const {
  return util::monotonic_ns() >= deadline_ns_;
}

util::Result<void> DeadlineSymbolizer::attach(int pid) {
  if (expired()) {
    return util::Error{fmt::format("pid {} was not attached: {}", pid, kOutOfTimeReason),
                       "rerun when the machine is less busy", ETIMEDOUT};
  }
  return inner_.attach(pid);
}

profile::Frame DeadlineSymbolizer::user(int pid, std::uint64_t address) {
  if (expired()) {
    ++late_user_;
    return late_frame(address, false);
  }
  return inner_.user(pid, address);
}

profile::Frame DeadlineSymbolizer::kernel(std::uint64_t address) {
  if (expired()) {
    ++late_kernel_;
    return late_frame(address, true);
  }
  return inner_.kernel(address);
}

std::vector<std::string> DeadlineSymbolizer::notes() const {
  std::vector<std::string> out = inner_.notes();
  if (late_lookups() > 0) {
    out.push_back(fmt::format(
        "{} address lookups ({} user, {} kernel) came after the symbolization deadline and are "
        "bare addresses: the machine was too busy to name them in time (rerun when it is quieter)",
        late_lookups(), late_user_, late_kernel_));
  }
  return out;
}

SymbolizerStats DeadlineSymbolizer::stats() const {
  SymbolizerStats s = inner_.stats();
  s.user_lookups += late_user_;
  s.kernel_lookups += late_kernel_;
  s.unresolved += late_lookups();
  return s;
}

}  // namespace chokepoint::symbolize
