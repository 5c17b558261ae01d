// A process whose threads sit in known places, for `chokepoint stacks`: one parked on a mutex
// that main holds, one in read() on a pipe nobody writes, one in sleep(). Each waits in a
// function of its own (park_in_mutex, park_in_read, park_in_sleep) so the dump must name them.
// Prints "ready" once every thread has had time to block, then waits to be killed.
// Usage: stacks_target [extra_sleepers [main_thread_name [spin]]]: extra threads in park_in_sleep
// (the bench), a name for the main thread (tests give it escape sequences), and with "spin" a
// thread "spinner" that runs on a CPU in spin_on_cpu (top's on-CPU profile names it).
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

static pthread_mutex_t g_held = PTHREAD_MUTEX_INITIALIZER;
static int g_pipe[2];

__attribute__((noinline)) static void park_in_mutex(void) {
  pthread_mutex_lock(&g_held);
  pthread_mutex_unlock(&g_held);
}

__attribute__((noinline)) static void park_in_read(void) {
  char c;
  if (read(g_pipe[0], &c, 1) < 0) perror("read");
}

__attribute__((noinline)) static void park_in_sleep(void) {
  for (;;) sleep(1000);
}

static volatile unsigned long g_spins;

__attribute__((noinline)) static void spin_on_cpu(void) {
  for (;;) ++g_spins;
}

static void* spin_thread(void* arg) {
  (void)arg;
  spin_on_cpu();
  return NULL;
}

static void* mutex_thread(void* arg) {
  (void)arg;
  park_in_mutex();
  return NULL;
}

static void* read_thread(void* arg) {
  (void)arg;
  park_in_read();
  return NULL;
}

static void* sleep_thread(void* arg) {
  (void)arg;
  park_in_sleep();
  return NULL;
}

static void start(void* (*fn)(void*), const char* name) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 128 * 1024);
  pthread_t t;
  if (pthread_create(&t, &attr, fn, NULL) != 0) {
    perror("pthread_create");
    exit(1);
  }
  pthread_setname_np(t, name);
  pthread_attr_destroy(&attr);
}

int main(int argc, char** argv) {
  const int extra = argc > 1 ? atoi(argv[1]) : 0;
  if (argc > 2) prctl(PR_SET_NAME, argv[2], 0, 0, 0);
  if (pipe(g_pipe) != 0) return 1;
  pthread_mutex_lock(&g_held);
  start(mutex_thread, "in-mutex");
  start(read_thread, "in-read");
  start(sleep_thread, "in-sleep");
  for (int i = 0; i < extra; ++i) start(sleep_thread, "sleeper");
  if (argc > 3 && strcmp(argv[3], "spin") == 0) start(spin_thread, "spinner");
  usleep(200 * 1000);
  printf("ready\n");
  fflush(stdout);
  for (;;) pause();
}
