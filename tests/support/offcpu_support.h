#pragma once
// Whether off-CPU tracing (collect/bpf/offcpu_tracer.h) can run on this machine, for tests that
// need it. A test skips only with this reason; once it is "", a tracer or a `profile --off-cpu`
// that fails is a failure of the code under test, never a skip. Link
// chokepoint_test_support_offcpu.

#include <string>

namespace chokepoint::test_support {

// Why off-CPU tracing cannot run here ("" when it can): not root, or the kernel or the build lacks
// BPF/BTF (collect::bpf::check_offcpu_support's message).
std::string offcpu_unavailable();

}  // namespace chokepoint::test_support
