// The program the --call-graph tests profile: built -O2 -fomit-frame-pointer, so its own frames
// keep no frame pointer, and half its CPU goes to a qsort comparator called from inside Debian's
// libc (also built without frame pointers). Two call paths, each with named noinline functions:
//   main -> dwarf_outer -> dwarf_middle -> dwarf_leaf          (the hot leaf)
//   main -> dwarf_sort -> qsort (libc internals) -> dwarf_compare
// Usage: dwarf_target SECONDS (runs that long, then exits 0).
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#define NOINLINE __attribute__((noinline, noclone))

volatile uint64_t g_sink;

// A dependent chain of multiplies: pure CPU, no memory traffic, not vectorizable.
static uint64_t burn(uint64_t x, int rounds) {
  for (int i = 0; i < rounds; ++i)
    x = (x * 6364136223846793005ULL + 1442695040888963407ULL) ^ (x >> 29);
  return x;
}

NOINLINE uint64_t dwarf_leaf(uint64_t x) {
  return burn(x, 400000);
}

// Each caller uses its callee's result after the call, so the call is not a tail call (a jump
// would leave no frame to find).
NOINLINE uint64_t dwarf_middle(uint64_t x) {
  uint64_t r = dwarf_leaf(x ^ 0x9e3779b97f4a7c15ULL);
  return r ^ (r >> 7);
}

NOINLINE uint64_t dwarf_outer(uint64_t x) {
  uint64_t r = dwarf_middle(x + 1);
  return r * 3 + 1;
}

NOINLINE int dwarf_compare(const void* a, const void* b) {
  uint64_t x = *(const uint64_t*)a, y = *(const uint64_t*)b;
  g_sink = burn(x ^ y, 2000);
  return x < y ? -1 : x > y;
}

enum { kElements = 64 };

NOINLINE uint64_t dwarf_sort(uint64_t seed) {
  uint64_t v[kElements];
  for (int i = 0; i < kElements; ++i) v[i] = seed = seed * 2862933555777941757ULL + 3037000493ULL;
  qsort(v, kElements, sizeof v[0], dwarf_compare);
  return v[0] + v[kElements - 1];
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? atof(argv[1]) : 5.0;
  const double end = now_s() + seconds;
  uint64_t x = 1;
  while (now_s() < end) {
    x = dwarf_outer(x);
    x += dwarf_sort(x);
  }
  g_sink = x;
  return 0;
}
