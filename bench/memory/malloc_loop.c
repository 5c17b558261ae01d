// bench/memory/memory_overhead.sh's third target: N malloc+free pairs of 64 bytes in a loop, timed.
// Prints "ns_per_pair=X". With `chokepoint profile --memory` attached, the difference is the cost
// of the probes on one allocator call pair (four probe hits: malloc's entry and return, free's
// entry; no sampling happens at 64 bytes a call, about one in a thousand at the default rate).
// Usage: malloc_loop N SLEEP_S (sleeps SLEEP_S first, for the profiler to attach)
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char** argv) {
  const long n = argc > 1 ? atol(argv[1]) : 200000;
  if (argc > 2) sleep((unsigned)atoi(argv[2]));
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (long i = 0; i < n; ++i) {
    void* volatile p = malloc(64);
    free(p);
  }
  clock_gettime(CLOCK_MONOTONIC, &b);
  const double ns = (double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec);
  printf("ns_per_pair=%.1f\n", ns / (double)n);
  return 0;
}
