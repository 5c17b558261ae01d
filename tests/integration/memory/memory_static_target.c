// A statically linked, stripped program (no symbol table at all): `profile --memory` must say it
// has no malloc symbol to probe. Sleeps until killed (60 s at most).
#include <stdlib.h>
#include <time.h>

int main(void) {
  void* volatile p = malloc(100);
  free(p);
  struct timespec ts = {0, 100000000L};
  for (int i = 0; i < 600; ++i) nanosleep(&ts, NULL);
  return 0;
}
