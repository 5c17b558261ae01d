// The program the --memory tests profile: known allocation sites, and it knows what it leaked.
//   memory_target leak   leaks LEAK_BYTES at memory_leak_site, churns (allocates and frees at
//                        once) as much at memory_churn_site
//   memory_target lib    the same, but the leak is in lib_leak_block (memory_target_lib.so)
//   memory_target exit   leaks a little, then exits 1 s later (a target that exits mid-window)
// It first waits until its malloc, calloc, realloc and free carry the uprobe's breakpoint (an
// int3, 0xcc, at the function's first byte: the probes are in), so the whole leak falls inside
// the profile's window; then it leaks, prints "leaked_bytes=N" and "churned_bytes=N" on stdout,
// and sleeps until killed (60 s at most). Exit 3: the probes never came (after 20 s).
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "memory_target_lib.h"

#define NOINLINE __attribute__((noinline, noclone))
#define LEAK_BYTES (64ull << 20)

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

// The first byte of the function at `fn` (a function pointer's bytes: ISO C has no cast from a
// function pointer to an object pointer).
static int probed(const void* fn_pointer, size_t size) {
  uintptr_t address = 0;
  memcpy(&address, fn_pointer, size < sizeof(address) ? size : sizeof(address));
  return *(volatile const unsigned char*)address == 0xcc;
}

static int wait_for_probes(void) {
  void* (*m)(size_t) = malloc;
  void* (*c)(size_t, size_t) = calloc;
  void* (*r)(void*, size_t) = realloc;
  void (*f)(void*) = free;
  for (int i = 0; i < 2000; ++i) {
    if (probed(&m, sizeof(m)) && probed(&c, sizeof(c)) && probed(&r, sizeof(r)) &&
        probed(&f, sizeof(f))) {
      sleep_ms(300);  // the rest of the probes (and the mmap tracepoints) attach after these
      return 1;
    }
    sleep_ms(10);
  }
  return 0;
}

// Sizes from 1 KiB to 32 KiB, from a fixed-seed generator: the same sequence every run.
static uint64_t g_state = 0x9e3779b97f4a7c15ull;
static size_t next_size(void) {
  g_state = g_state * 6364136223846793005ull + 1442695040888963407ull;
  return 1024 + (size_t)((g_state >> 33) % (31 * 1024));
}

NOINLINE void* memory_leak_site(size_t bytes) {
  void* p = malloc(bytes);
  if (p) memset(p, 1, 64);
  return p;
}

NOINLINE void memory_churn_site(size_t bytes) {
  char* p = calloc(1, bytes);
  if (p) p[0] = 1;
  char* q = realloc(p, bytes + 512);
  free(q ? q : p);
}

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "leak";
  if (!wait_for_probes()) {
    fprintf(stderr, "memory_target: the probes never came\n");
    return 3;
  }
  const int lib = strcmp(mode, "lib") == 0;
  const uint64_t target = strcmp(mode, "exit") == 0 ? (4ull << 20) : LEAK_BYTES;
  uint64_t leaked = 0, churned = 0;
  size_t n = 0, cap = 1 << 16;
  void** keep = malloc(cap * sizeof(void*));
  while (leaked < target && n < cap) {
    const size_t s = next_size();
    keep[n++] = lib ? lib_leak_block(s) : memory_leak_site(s);
    leaked += s;
    const size_t c = next_size();
    memory_churn_site(c);
    churned += c;
  }
  printf("leaked_bytes=%llu\nchurned_bytes=%llu\n", (unsigned long long)leaked,
         (unsigned long long)churned);
  fflush(stdout);
  if (strcmp(mode, "exit") == 0) {
    sleep_ms(1000);
    return 0;
  }
  for (int i = 0; i < 600; ++i) sleep_ms(100);
  return 0;
}
