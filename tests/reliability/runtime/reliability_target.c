// Targets for the reliability tests, each a real process in a state that used to fool chokepoint:
//   reliability_target vfork SECONDS
//       the parent vforks; the child sleeps SECONDS before it exits, so the parent sits in vfork
//       (state D, syscall 58) all that time.
//   reliability_target threads TOTAL SPINNING WAKE_MS
//       TOTAL threads: SPINNING of them burn CPU, the others wake every WAKE_MS and sleep again
//       (a thread-heavy, CPU-saturated service). Prints "ready" once every thread runs.
// Both run until killed (vfork: until the child exits, then sleep forever).
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_int started;
static long wake_ms = 50;

static void* spin(void* arg) {
  (void)arg;
  atomic_fetch_add(&started, 1);
  volatile unsigned long x = 0;
  for (;;) x++;
  return NULL;
}

static void* waker(void* arg) {
  (void)arg;
  atomic_fetch_add(&started, 1);
  struct timespec ts = {wake_ms / 1000, (wake_ms % 1000) * 1000000L};
  for (;;) nanosleep(&ts, NULL);
  return NULL;
}

int main(int argc, char** argv) {
  if (argc >= 3 && strcmp(argv[1], "vfork") == 0) {
    unsigned seconds = (unsigned)atoi(argv[2]);
    pid_t pid = vfork();
    if (pid == 0) {
      sleep(seconds);  // what a slow exec path looks like from the parent
      _exit(0);
    }
    for (;;) pause();
  }
  if (argc >= 5 && strcmp(argv[1], "threads") == 0) {
    int total = atoi(argv[2]);
    int spinning = atoi(argv[3]);
    wake_ms = atol(argv[4]);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    // The spinning threads last: started first, they would starve the creation of the others.
    for (int i = 0; i < total; ++i) {
      pthread_t t;
      if (pthread_create(&t, &attr, i >= total - spinning ? spin : waker, NULL) != 0) {
        fprintf(stderr, "pthread_create failed at thread %d\n", i);
        return 1;
      }
    }
    while (atomic_load(&started) < total) usleep(1000);
    printf("ready\n");
    fflush(stdout);
    for (;;) pause();
  }
  fprintf(stderr, "usage: reliability_target vfork SECONDS | threads TOTAL SPINNING WAKE_MS\n");
  return 2;
}
