/* A target for the report's browser test (issue 11): started through a link named
 * "<img src=x onerror=alert(1)>" (its comm is the first 15 bytes of that), it runs a thread named
 * with quotes and a newline that writes and fdatasyncs a file whose path holds "</script>" and
 * the same tag (so the page's data carries them in a wait detail), and a main thread that waits.
 * argv[1] is that file's path. It runs until killed. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

static const char* path;

static void* writer(void* arg) {
  (void)arg;
  prctl(PR_SET_NAME, "q\"u'ote\nline", 0, 0, 0);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  /* 64 KiB a sync, not 4: on a disk whose write cache makes a 4 KiB fdatasync take less than the
   * pause below, the writer's main state was sleep in every column of a recording (1 in 8
   * recordings here). */
  static char block[64 * 1024];
  memset(block, 'x', sizeof block);
  for (;;) {
    if (fd >= 0 && write(fd, block, sizeof block) > 0) fdatasync(fd);
    if (fd >= 0 && lseek(fd, 0, SEEK_CUR) > (1 << 22)) {
      if (ftruncate(fd, 0) != 0) return NULL;
      lseek(fd, 0, SEEK_SET);
    }
    // A short pause: the thread spends most of its time in fdatasync, so that disk is its main
    // state in every column of the heat map on any disk (the exact split does not round a whole
    // interval to the state seen at its end, as sampling did).
    usleep(100);
  }
  return NULL;
}

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  path = argv[1];
  pthread_t t;
  if (pthread_create(&t, NULL, writer, NULL) != 0) return 1;
  for (;;) pause();
}
