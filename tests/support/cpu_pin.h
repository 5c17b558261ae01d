#pragma once
// Pinning the calling thread to one CPU, for tests that need two threads to share a CPU (a
// wakee queued behind its waker, a timer interrupt landing in a spinner). Header-only.

#include <sched.h>

namespace chokepoint::test_support {

// Pins the calling thread to `cpu`; false (errno set) when the kernel refuses.
inline bool pin_this_thread_to_cpu(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return sched_setaffinity(0, sizeof(set), &set) == 0;
}

}  // namespace chokepoint::test_support
