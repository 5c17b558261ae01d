#include <time.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "util/clock.h"
#include "util/escape.h"
#include "util/fatal.h"
#include "util/result.h"

namespace chokepoint::util {

Error errno_error(const std::string& what, std::string hint) {
  return errno_error(what, errno, std::move(hint));
}

Error errno_error(const std::string& what, int errno_value, std::string hint) {
  return Error{what + ": " + std::strerror(errno_value), std::move(hint), errno_value};
}

void usage_error(std::string message, std::string hint) {
  throw FatalError(Error{std::move(message), std::move(hint), 0}, kExitUsage);
}

void print_error(const Error& error) {
  // Messages quote what the user gave and what was observed (paths, names, input lines, server
  // replies): escaped here, once, so no error can reach the terminal with control characters.
  std::fprintf(stderr, "error: %s\n", terminal_text(error.message).c_str());
  if (!error.hint.empty()) std::fprintf(stderr, "hint: %s\n", terminal_text(error.hint).c_str());
}

static std::int64_t clock_ns(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * kNsPerSec + ts.tv_nsec;
}

std::int64_t monotonic_ns() {
  return clock_ns(CLOCK_MONOTONIC);
}
std::int64_t realtime_ns() {
  return clock_ns(CLOCK_REALTIME);
}

}  // namespace chokepoint::util
