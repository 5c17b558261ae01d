#include "util/stop_signal.h"

#include <signal.h>

namespace chokepoint::util {
namespace {

std::atomic<bool> g_stop{false};
static_assert(std::atomic<bool>::is_always_lock_free, "a signal handler stores to it");

void on_stop_signal(int) {
  g_stop.store(true);
}

}  // namespace

std::atomic<bool>& stop_flag() {
  return g_stop;
}

std::atomic<bool>& stop_on_signals() {
  g_stop.store(false);
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  return g_stop;
}

}  // namespace chokepoint::util
