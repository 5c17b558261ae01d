// A thread on a 10 ms cycle of the monotonic clock, as a timer wheel or a fixed-rate loop is:
// 3 ms of every cycle in clock_nanosleep (sleep), the rest in select(2) with a timeout and no fds
// (idle). A sampler that reads every 100 ms reads it at the same phase of its cycle every time.
// Runs until killed.
#define _GNU_SOURCE
#include <stdint.h>
#include <sys/select.h>
#include <time.h>

static const int64_t kCycleNs = 10 * 1000 * 1000;
static const int64_t kSleepNs = 3 * 1000 * 1000;

static int64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void sleep_until(int64_t t_ns) {
  struct timespec t = {(time_t)(t_ns / 1000000000), (long)(t_ns % 1000000000)};
  clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL);
}

int main(void) {
  for (int64_t cycle = (now_ns() / kCycleNs + 1) * kCycleNs;; cycle += kCycleNs) {
    sleep_until(cycle);  // the end of the last cycle's select: a few µs
    sleep_until(cycle + kSleepNs);
    // Up to 0.3 ms before the cycle's end: select's timeout runs late by its timer slack.
    const int64_t rest_us = (cycle + kCycleNs - now_ns()) / 1000 - 300;
    struct timeval timeout = {0, rest_us > 0 ? rest_us : 0};
    select(0, NULL, NULL, NULL, &timeout);
  }
}
