#pragma once
// One loaded BPF object per process, shared by every user while any of them holds it.
//
// Why: libbpf 1.1 (Debian 12) reads and parses /sys/kernel/btf/vmlinux on every object load and
// cannot hand one parsed BTF to another object; a load costs about 100 ms of CPU. The agent runs
// one sampler per target (the host and every service), and each asked for its own task iterator
// and socket-order tracer: 22 loads at start-up for 11 targets. Through a SharedObject they ask
// for the one loaded object, and make their own links and filters on it.
//
// Lifetime: the object is loaded by the first acquire() and destroyed with its last holder; an
// acquire() after that loads it again. A failed load is not remembered (the next acquire tries
// again, as each user's own load did).
//
// Thread-safety: acquire() and loads() may be called from any thread (the agent's targets each
// run on a thread of their own). What the object itself allows is its owner's contract.

#include <cstdint>
#include <memory>
#include <mutex>

#include "util/result.h"

namespace chokepoint::collect::bpf {

template <typename T>
class SharedObject {
 public:
  // The loaded object, loading it with `load` (a callable returning
  // util::Result<std::unique_ptr<T>>) when nobody holds one. Errors: load's.
  template <typename Load>
  util::Result<std::shared_ptr<T>> acquire(Load&& load) {
    std::lock_guard<std::mutex> lock(mu_);
    if (std::shared_ptr<T> held = held_.lock()) return held;
    auto loaded = load();
    if (!loaded) return loaded.error();
    std::shared_ptr<T> object(std::move(*loaded));
    held_ = object;
    ++loads_;
    return object;
  }

  // How many times the object was loaded in this process (a test's check that it is shared).
  std::uint64_t loads() const {
    std::lock_guard<std::mutex> lock(mu_);
    return loads_;
  }

 private:
  mutable std::mutex mu_;
  std::weak_ptr<T> held_;
  std::uint64_t loads_ = 0;
};

}  // namespace chokepoint::collect::bpf
