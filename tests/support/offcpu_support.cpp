#include "support/offcpu_support.h"

#include <unistd.h>

#include "collect/bpf/offcpu_tracer.h"

namespace chokepoint::test_support {

std::string offcpu_unavailable() {
  if (geteuid() != 0) return "needs root to load BPF programs";
  if (auto ok = collect::bpf::check_offcpu_support(); !ok) return ok.error().message;
  return "";
}

}  // namespace chokepoint::test_support
