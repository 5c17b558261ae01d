// A thread that polls with 1 ms timed condition-variable waits beside a thread that spins, both
// pinned to CPU 0: every timeout's timer interrupt comes in while the spinner runs, in its
// context. No thread ever signals the condition variable. Runs until killed.
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t never_signalled = PTHREAD_COND_INITIALIZER;

static void pin_to_cpu0(void) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(0, &set);
  sched_setaffinity(0, sizeof(set), &set);
}

static void* spin(void* arg) {
  (void)arg;
  pin_to_cpu0();
  pthread_setname_np(pthread_self(), "spinner");
  volatile unsigned long n = 0;
  for (;;) ++n;
  return NULL;
}

static void* poll_every_ms(void* arg) {
  (void)arg;
  pin_to_cpu0();
  pthread_setname_np(pthread_self(), "poller");
  for (;;) {
    struct timespec at;
    clock_gettime(CLOCK_REALTIME, &at);
    at.tv_nsec += 1000000;
    if (at.tv_nsec >= 1000000000) {
      at.tv_sec += 1;
      at.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&mutex);
    pthread_cond_timedwait(&never_signalled, &mutex, &at);
    pthread_mutex_unlock(&mutex);
  }
  return NULL;
}

int main(void) {
  pthread_t spinner, poller;
  pthread_create(&spinner, NULL, spin, NULL);
  pthread_create(&poller, NULL, poll_every_ms, NULL);
  pause();
  return 0;
}
