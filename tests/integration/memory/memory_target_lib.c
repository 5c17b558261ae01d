// A shared library the memory_target test program leaks through: a leak inside a third-party
// library must be named by its function (lib_leak_block), not lost in the caller.
#include "memory_target_lib.h"

#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) void* lib_leak_block(size_t bytes) {
  void* p = malloc(bytes);
  if (p) memset(p, 2, 64);
  return p;
}
