// A shared library the memory_target test program leaks through (memory_target_lib.c).
#pragma once
#include <stddef.h>

// Allocates `bytes` and hands them to the caller, who keeps them: the leak is in this library.
void* lib_leak_block(size_t bytes);
