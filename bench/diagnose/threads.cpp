// A process with N threads for measuring the sampler's cost: `idle` threads block on one condition
// variable for good (they never run: the sampler's cheap path), `parked` threads each on a
// condition variable of their own (every futex address differs, so the sampler's stack scan cannot
// share one answer between them: its worst case), `wake` threads wake every --period-ms and spin
// briefly (they run between every two samples: the deep path).
// Usage: chokepoint-bench-threads N idle|parked|wake [period_ms]. Runs until killed.
#include <pthread.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>

namespace {
std::mutex g_mutex;
std::condition_variable g_never;
int g_period_ms = 20;

void* idle_thread(void*) {
  std::unique_lock<std::mutex> lock(g_mutex);
  g_never.wait(lock, [] { return false; });
  return nullptr;
}

void* parked_thread(void*) {
  std::mutex own_mutex;
  std::condition_variable own;
  std::unique_lock<std::mutex> lock(own_mutex);
  own.wait(lock, [] { return false; });
  return nullptr;
}

void* wake_thread(void*) {
  for (;;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(g_period_ms));
    volatile unsigned x = 0;
    for (int i = 0; i < 2000; ++i) x = x + static_cast<unsigned>(i);
  }
  return nullptr;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s N idle|parked|wake [period_ms]\n", argv[0]);
    return 2;
  }
  int n = std::atoi(argv[1]);
  void* (*body)(void*) = idle_thread;
  if (std::strcmp(argv[2], "wake") == 0) body = wake_thread;
  if (std::strcmp(argv[2], "parked") == 0) body = parked_thread;
  if (argc > 3) g_period_ms = std::atoi(argv[3]);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 64 * 1024);  // 10,000 threads in 640 MiB of address space
  for (int i = 0; i < n; ++i) {
    pthread_t t;
    if (pthread_create(&t, &attr, body, nullptr) != 0) {
      std::fprintf(stderr, "error: could not create thread %d\n", i);
      return 1;
    }
    pthread_detach(t);
  }
  std::printf("ready %d\n", n);
  std::fflush(stdout);
  pause();
  return 0;
}
