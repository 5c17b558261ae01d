// A small program the symbolizer tests start and symbolize: it prints the runtime addresses of
// functions whose names and source lines the tests know, then waits until its stdin closes.
// Built with -g; the static variant runs inside a chroot.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

namespace demo {
// Inlined into compute(): its code carries this file's lines from here, but frames in it are
// named compute() and should carry compute()'s lines.
__attribute__((always_inline)) inline int mix(int value, int i) {
  value ^= value >> 7;
  value *= 0x2545f491;
  return value + i;
}

struct Widget {
  int seed;
  int compute(int rounds) const;
};

constexpr int kComputeLine = __LINE__ + 1;
__attribute__((noinline)) int Widget::compute(int rounds) const {
  int value = seed;
  for (int i = 0; i < rounds; ++i) value = mix(value * 31, i);
  return value;
}
}  // namespace demo

extern "C" __attribute__((noinline)) int plain_c_function(int x) {
  asm volatile("" ::: "memory");  // keeps the body, so it is a real function of its own
  return x * 3 + 1;
}

int main() {
  // Never outlive a test that forgot us.
  alarm(120);
  demo::Widget widget{7};
  volatile int sink = widget.compute(3) + plain_c_function(2);
  (void)sink;
  int (demo::Widget::*member)(int) const = &demo::Widget::compute;
  void* compute_address = nullptr;
  static_assert(sizeof(member) >= sizeof(compute_address));
  std::memcpy(&compute_address, &member, sizeof compute_address);  // non-virtual: the code address

  // Anonymous executable memory, as a JIT compiler would create it, holding one `ret`.
  void* jit =
      mmap(nullptr, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (jit != MAP_FAILED) static_cast<unsigned char*>(jit)[0] = 0xc3;

  std::printf("compute=%p\n", compute_address);
  std::printf("compute_line=%d\n", demo::kComputeLine);
  std::printf("plain=%p\n", reinterpret_cast<void*>(&plain_c_function));
  std::printf("write=%p\n", reinterpret_cast<void*>(&::write));  // libc's, through the GOT
  std::printf("jit=%p\n", jit == MAP_FAILED ? nullptr : jit);
  std::printf("ready\n");
  std::fflush(stdout);
  char buf[64];
  while (read(STDIN_FILENO, buf, sizeof buf) > 0) {
  }
  return 0;
}
