/* A process whose every name is hostile (issue 18): run it from a file named "\e[32mGRN". One
 * thread is named "<script>\a\e]0;" and writes and fdatasyncs a file whose name holds ESC and BEL
 * (so a disk verdict quotes it); one spins under a name the kernel cut mid-character (invalid
 * UTF-8); the main thread waits. argv[1] is the directory for the file. With argv[2] "jit", a
 * thread also runs machine code from an anonymous executable mapping, as a JIT does, so a
 * profile looks for /tmp/perf-PID.map. Built without debug info so stack outputs name the
 * executable itself. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

static char path[4096];

static void* writer(void* arg) {
  (void)arg;
  prctl(PR_SET_NAME, "<script>\a\033]0;", 0, 0, 0);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  char block[4096];
  memset(block, 'x', sizeof block);
  for (;;) {
    if (fd >= 0 && write(fd, block, sizeof block) > 0) fdatasync(fd);
    if (fd >= 0 && lseek(fd, 0, SEEK_CUR) > (1 << 22)) ftruncate(fd, 0), lseek(fd, 0, SEEK_SET);
    usleep(2000);
  }
  return NULL;
}

static void* spinner(void* arg) {
  (void)arg;
  /* 14 bytes and a 2-byte character: the kernel keeps 15 bytes, half of the character. */
  prctl(PR_SET_NAME, "aaaaaaaaaaaaaa\xc3\xa9", 0, 0, 0);
  for (;;) {
    for (volatile int i = 0; i < 2000000; ++i) {
    }
    usleep(5000);
  }
  return NULL;
}

/* x86-64: mov ecx, 1000000; 1: dec ecx; jnz 1b; ret */
static const unsigned char kSpinCode[] = {0xB9, 0x40, 0x42, 0x0F, 0x00,
                                          0xFF, 0xC9, 0x75, 0xFC, 0xC3};

static void* jit(void* arg) {
  (void)arg;
  void* page =
      mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED) return NULL;
  memcpy(page, kSpinCode, sizeof kSpinCode);
  /* memcpy, not a cast: ISO C has no conversion from an object pointer to a function pointer. */
  void (*spin)(void);
  memcpy(&spin, &page, sizeof spin);
  for (;;) {
    spin();
    usleep(500);
  }
  return NULL;
}

int main(int argc, char** argv) {
  snprintf(path, sizeof path, "%s/\033]0;evil\a.dat", argc > 1 ? argv[1] : "/tmp");
  pthread_t a, b;
  pthread_create(&a, NULL, writer, NULL);
  pthread_create(&b, NULL, spinner, NULL);
#if defined(__x86_64__)
  pthread_t c;
  if (argc > 2 && strcmp(argv[2], "jit") == 0) pthread_create(&c, NULL, jit, NULL);
#endif
  puts("ready");
  fflush(stdout);
  for (;;) pause();
}
