#pragma once
// chokepoint agent's StatsD push (--statsd HOST:PORT): after each window, the target's numbers as
// StatsD lines over UDP, packed into datagrams of at most kMaxDatagramBytes (1,432: fits one
// Ethernet frame with IPv4/IPv6 and UDP headers and room to spare, the size StatsD clients use).
//
//   chokepoint.<target>.thread_seconds.<state>:<seconds in the window>|c
//   chokepoint.<target>.share.<state>:<share>|g            (monitor/threshold.h's StateShares)
//   chokepoint.<target>.bottleneck.<resource>.<kind>:<share>|g   (analysis::share_basis: of busy
//                                                                 time, but backlog and leak)
//   chokepoint.<target>.verdict.<resource>:1|g
//   chokepoint.<target>.up:0|g                             (a window that failed)
//
// <target> is the target's text sanitised: every byte outside [A-Za-z0-9_-] becomes '_' (StatsD
// names have no escapes; '.', ':', '|' and newlines would change the line's meaning), at most 64
// bytes. A send that fails (nothing listens: ECONNREFUSED, a full socket buffer) is a drop,
// counted; the agent goes on.
//
// Thread-safety: push may be called from several threads (each target's); it serialises.

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "monitor/agent.h"
#include "monitor/metrics_server.h"
#include "util/result.h"
#include "util/scoped_fd.h"

namespace chokepoint::monitor {

inline constexpr std::size_t kMaxDatagramBytes = 1432;

// "pid:12 x" -> "pid_12_x".
std::string statsd_name(std::string_view raw);

// Lines packed into datagrams of at most max_bytes, each line whole ('\n' between lines). A line
// longer than max_bytes on its own is left out and counted in `too_long`.
std::vector<std::string> pack_datagrams(const std::vector<std::string>& lines,
                                        std::size_t max_bytes, std::uint64_t* too_long);

// The StatsD lines for one window of a target (or for a failed one, when !state.up).
std::vector<std::string> statsd_lines(const TargetState& state, const model::TimeSplit& window);

class StatsdPusher {
 public:
  // A UDP socket connected to the address. Errors: the socket cannot be made, with hints.
  static util::Result<std::unique_ptr<StatsdPusher>> open(const ListenAddress& address);

  void push(const TargetState& state, const model::TimeSplit& window);

  std::uint64_t datagrams_sent() const { return sent_.load(); }
  std::uint64_t dropped() const { return dropped_.load(); }  // datagrams and over-long lines
  // The agent's exposition lines for these two counters.
  std::string exposition() const;

 private:
  explicit StatsdPusher(util::ScopedFd fd) : fd_(std::move(fd)) {}
  util::ScopedFd fd_;
  std::mutex mu_;
  std::atomic<std::uint64_t> sent_{0};
  std::atomic<std::uint64_t> dropped_{0};
};

}  // namespace chokepoint::monitor
