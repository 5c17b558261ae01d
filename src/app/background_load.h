#pragma once
// Load that runs on its own thread while the caller does something else (diagnose --load, knee
// with a target): started at construction, stopped by finish() or the destructor.
//
// Thread-safety: one owner thread calls finish(); the load thread only touches its options, the
// stop flag and the result slot, which finish() reads after joining it.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <thread>

#include "loadgen/load.h"

namespace chokepoint::app {

class BackgroundLoad {
 public:
  // Starts the load now. options.stop is replaced by this object's own flag.
  explicit BackgroundLoad(loadgen::LoadOptions options) : options_(std::move(options)) {
    options_.stop = &stop_;
    thread_ = std::thread([this] { result_.emplace(loadgen::run_load(options_)); });
  }
  ~BackgroundLoad() { finish(); }
  BackgroundLoad(const BackgroundLoad&) = delete;
  BackgroundLoad& operator=(const BackgroundLoad&) = delete;

  // Waits out the load's warmup (options.warmup_ns) before a measured window opens; returns early
  // when `stop` is set (Ctrl-C).
  void wait_warmup(const std::atomic<bool>& stop) const {
    for (std::int64_t slept = 0; slept < options_.warmup_ns && !stop.load(); slept += 10'000'000) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  // Stops the load (in-flight requests get their grace period), waits for it and returns its
  // result. Idempotent.
  const util::Result<loadgen::LoadResult>& finish() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
    return *result_;
  }
  const loadgen::LoadOptions& options() const { return options_; }

 private:
  loadgen::LoadOptions options_;
  std::atomic<bool> stop_{false};
  std::optional<util::Result<loadgen::LoadResult>> result_;
  std::thread thread_;
};

}  // namespace chokepoint::app
