// A process that holds shared memory near the limits it sets for itself, for diagnose's
// shared-memory findings. In an IPC and a mount namespace of its own (so nothing it does reaches
// the host): it sets kernel.shmmni there, mounts a tmpfs of its own on /dev/shm, creates and
// attaches SEGMENTS System V segments of SEGMENT_BYTES, fills a POSIX shm file with FILL_BYTES
// (kept open), creates /dev/shm/chokepoint-shm-ready, then waits for SIGTERM and removes it all.
// Usage: shm_holder SEGMENTS SEGMENT_BYTES SHMMNI TMPFS_BYTES FILL_BYTES
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/shm.h>
#include <unistd.h>

#define MAX_SEGMENTS 4096

static int fail(const char* what) {
  perror(what);
  return 1;
}

int main(int argc, char** argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: shm_holder SEGMENTS SEGMENT_BYTES SHMMNI TMPFS_BYTES FILL_BYTES\n");
    return 2;
  }
  const int segments = atoi(argv[1]);
  const size_t segment_bytes = strtoull(argv[2], NULL, 10);
  const char* shmmni = argv[3];
  const char* tmpfs_bytes = argv[4];
  const size_t fill_bytes = strtoull(argv[5], NULL, 10);
  if (segments < 0 || segments > MAX_SEGMENTS) return 2;

  if (unshare(CLONE_NEWIPC | CLONE_NEWNS) != 0) return fail("unshare");
  FILE* f = fopen("/proc/sys/kernel/shmmni", "w");
  if (!f || fputs(shmmni, f) < 0 || fclose(f) != 0) return fail("kernel.shmmni");
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) return fail("make / private");
  char opts[64];
  snprintf(opts, sizeof opts, "size=%s", tmpfs_bytes);
  if (mount("tmpfs", "/dev/shm", "tmpfs", 0, opts) != 0) return fail("mount /dev/shm");

  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigprocmask(SIG_BLOCK, &set, NULL);

  static int ids[MAX_SEGMENTS];
  for (int i = 0; i < segments; ++i) {
    ids[i] = shmget(IPC_PRIVATE, segment_bytes, IPC_CREAT | 0600);
    if (ids[i] < 0) return fail("shmget");
    void* p = shmat(ids[i], NULL, 0);
    if (p == (void*)-1) return fail("shmat");
    memset(p, 1, segment_bytes);
  }
  int fd = shm_open("/chokepoint-shm-test", O_CREAT | O_RDWR, 0600);
  if (fd < 0) return fail("shm_open");
  static char block[65536];
  memset(block, 2, sizeof block);
  for (size_t done = 0; done < fill_bytes;) {
    size_t n = fill_bytes - done < sizeof block ? fill_bytes - done : sizeof block;
    ssize_t w = write(fd, block, n);
    if (w <= 0) return fail("write /dev/shm");
    done += (size_t)w;
  }
  int ready = shm_open("/chokepoint-shm-ready", O_CREAT | O_RDWR, 0600);
  if (ready < 0) return fail("shm_open ready");
  close(ready);

  int sig = 0;
  sigwait(&set, &sig);
  for (int i = 0; i < segments; ++i) shmctl(ids[i], IPC_RMID, NULL);
  close(fd);
  shm_unlink("/chokepoint-shm-test");
  shm_unlink("/chokepoint-shm-ready");
  return 0;
}
