#pragma once
// Waiting for a recording that another process is writing: its first committed tick. A recorder
// creates its file before its first tick (seconds before it on a loaded machine), so a test that
// acts on a recording's phases waits for this, not for the file. Header-only; link
// chokepoint_store.

#include <chrono>
#include <cstdint>
#include <limits>
#include <string>
#include <thread>

#include "model/samples.h"
#include "store/recording.h"

namespace chokepoint::test_support {

// Polls `file` every `poll` until it holds a committed tick; false after `limit`.
inline bool wait_first_tick(const std::string& file, std::chrono::steady_clock::time_point limit,
                            std::chrono::milliseconds poll = std::chrono::milliseconds(2)) {
  while (std::chrono::steady_clock::now() < limit) {
    auto reader = store::RecordingReader::open(file);
    std::size_t ticks = 0;
    if (reader) {
      (void)reader->read_ticks(std::numeric_limits<std::int64_t>::max(), [&](model::Tick&&) {
        ++ticks;
        return false;
      });
    }
    if (ticks > 0) return true;
    std::this_thread::sleep_for(poll);
  }
  return false;
}

}  // namespace chokepoint::test_support
