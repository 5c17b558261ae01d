// A process that sits near an OS limit it sets up for itself, for diagnose's conntrack and
// rlimits findings. When everything is in place it names itself "limits-ready" (prctl), then
// waits for SIGTERM and exits 0.
//
// limits_holder conntrack FILL PER_S
//   Run inside a network namespace whose netfilter tracks connections: sends one UDP datagram to
//   each of FILL distinct destinations (127.0.A.1, ports 1-60000: each a new conntrack entry that
//   stays 30 s unreplied), then PER_S more new ones a second until SIGTERM.
// limits_holder rlimits NPROC MEMLOCK_BYTES LOCK_BYTES STACK_BYTES STACK_USE_BYTES MAX_THREADS UID
//   Sets RLIMIT_NPROC, RLIMIT_MEMLOCK and RLIMIT_STACK, becomes UID (dropping root's exemptions),
//   locks LOCK_BYTES with mlock, starts threads until pthread_create fails with EAGAIN or
//   MAX_THREADS run, and recurses until STACK_USE_BYTES of the main stack are in use. Prints
//   "threads N eagain E" on stdout.
// limits_holder syn DST_IP PORT COUNT
//   Sends COUNT TCP SYNs over a raw socket to DST_IP:PORT, each from its own address in
//   198.18.0.0/15 (RFC 2544's benchmark range, which the test routes into a link nobody answers
//   on), as a SYN flood with spoofed sources does, then exits 0 (no waiting).
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int fail(const char* what) {
  perror(what);
  return 1;
}

static sigset_t term_set(void) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  return set;
}

static void ready(void) { prctl(PR_SET_NAME, "limits-ready", 0, 0, 0); }

// Destination number i: 127.0.(1 + i / 60000).1, port 1 + i % 60000.
static int send_one(int fd, long i) {
  struct sockaddr_in to;
  memset(&to, 0, sizeof to);
  to.sin_family = AF_INET;
  to.sin_port = htons((unsigned short)(1 + i % 60000));
  to.sin_addr.s_addr = htonl((127u << 24) | ((unsigned)(1 + i / 60000) << 8) | 1u);
  return (int)sendto(fd, "x", 1, 0, (struct sockaddr*)&to, sizeof to);
}

static int conntrack(long fill, long per_s) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail("socket");
  long next = 0;
  for (; next < fill; ++next) send_one(fd, next);  // ICMP errors and ENOBUFS change nothing
  ready();
  const sigset_t set = term_set();
  const struct timespec tick = {0, 10 * 1000 * 1000};
  for (;;) {
    if (sigtimedwait(&set, NULL, &tick) == SIGTERM) break;
    for (long k = 0; k < per_s / 100; ++k) send_one(fd, next++ % (60000L * 250));
  }
  close(fd);
  return 0;
}

static void* park(void* arg) {
  (void)arg;
  for (;;) pause();
  return NULL;
}

// Keeps about `left` bytes of frames on the main stack, then waits for SIGTERM at the bottom.
static int deep(long left) {
  volatile char frame[32 * 1024];
  memset((char*)frame, 1, sizeof frame);
  if (left > (long)sizeof frame) return deep(left - (long)sizeof frame) + frame[7] - 1;
  ready();
  const sigset_t set = term_set();
  int sig = 0;
  sigwait(&set, &sig);
  return frame[0] - 1;
}

static int rlimits(char** argv) {
  const struct rlimit nproc = {strtoul(argv[0], NULL, 10), strtoul(argv[0], NULL, 10)};
  const struct rlimit memlock = {strtoul(argv[1], NULL, 10), strtoul(argv[1], NULL, 10)};
  const size_t lock_bytes = strtoul(argv[2], NULL, 10);
  const struct rlimit stack = {strtoul(argv[3], NULL, 10), RLIM_INFINITY};
  const long stack_use = strtol(argv[4], NULL, 10);
  const long max_threads = strtol(argv[5], NULL, 10);
  const uid_t uid = (uid_t)strtoul(argv[6], NULL, 10);
  if (setrlimit(RLIMIT_NPROC, &nproc) != 0) return fail("setrlimit NPROC");
  if (setrlimit(RLIMIT_MEMLOCK, &memlock) != 0) return fail("setrlimit MEMLOCK");
  if (setrlimit(RLIMIT_STACK, &stack) != 0) return fail("setrlimit STACK");
  if (setgid((gid_t)uid) != 0 || setuid(uid) != 0) return fail("setuid");
  void* locked = mmap(NULL, lock_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (locked == MAP_FAILED) return fail("mmap");
  if (mlock(locked, lock_bytes) != 0) return fail("mlock");
  // SIGTERM is for the main thread's sigwait: blocked here, inherited by every thread.
  const sigset_t set = term_set();
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 64 * 1024);
  long threads = 0, eagain = 0;
  while (threads < max_threads) {
    pthread_t t;
    const int rc = pthread_create(&t, &attr, park, NULL);
    if (rc == EAGAIN) {
      eagain = 1;
      break;
    }
    if (rc != 0) return fail("pthread_create");
    ++threads;
  }
  printf("threads %ld eagain %ld\n", threads, eagain);
  fflush(stdout);
  return deep(stack_use);
}

static unsigned short checksum(const void* data, size_t len, unsigned long sum) {
  const unsigned char* p = data;
  for (; len > 1; p += 2, len -= 2) sum += (unsigned long)((p[0] << 8) | p[1]);
  if (len == 1) sum += (unsigned long)(p[0] << 8);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return htons((unsigned short)~sum);
}

static int syn(const char* dst_text, int port, long count) {
  struct in_addr dst;
  if (inet_pton(AF_INET, dst_text, &dst) != 1) return fail("inet_pton");
  int fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);  // IP_HDRINCL implied
  if (fd < 0) return fail("socket(SOCK_RAW)");
  struct sockaddr_in to;
  memset(&to, 0, sizeof to);
  to.sin_family = AF_INET;
  to.sin_addr = dst;
  for (long i = 0; i < count; ++i) {
    struct {
      struct iphdr ip;
      struct tcphdr tcp;
    } pkt;
    memset(&pkt, 0, sizeof pkt);
    const unsigned src = (198u << 24) | (18u << 16) | (unsigned)(1 + i % 65000);
    pkt.ip.version = 4;
    pkt.ip.ihl = 5;
    pkt.ip.ttl = 64;
    pkt.ip.protocol = IPPROTO_TCP;
    pkt.ip.tot_len = htons(sizeof pkt);
    pkt.ip.saddr = htonl(src);
    pkt.ip.daddr = dst.s_addr;  // the kernel fills id and the header checksum
    pkt.tcp.source = htons((unsigned short)(1024 + i % 60000));
    pkt.tcp.dest = htons((unsigned short)port);
    pkt.tcp.seq = htonl((unsigned)(i * 7919));
    pkt.tcp.doff = 5;
    pkt.tcp.syn = 1;
    pkt.tcp.window = htons(64240);
    // The TCP checksum covers a pseudo header: addresses, protocol and TCP length.
    unsigned long pseudo = (src >> 16) + (src & 0xffff) + (ntohl(dst.s_addr) >> 16) +
                           (ntohl(dst.s_addr) & 0xffff) + IPPROTO_TCP + sizeof pkt.tcp;
    pkt.tcp.check = checksum(&pkt.tcp, sizeof pkt.tcp, pseudo);
    if (sendto(fd, &pkt, sizeof pkt, 0, (struct sockaddr*)&to, sizeof to) < 0)
      return fail("sendto");
  }
  close(fd);
  return 0;
}

int main(int argc, char** argv) {
  const sigset_t set = term_set();
  sigprocmask(SIG_BLOCK, &set, NULL);
  if (argc == 4 && strcmp(argv[1], "conntrack") == 0)
    return conntrack(strtol(argv[2], NULL, 10), strtol(argv[3], NULL, 10));
  if (argc == 9 && strcmp(argv[1], "rlimits") == 0) return rlimits(argv + 2);
  if (argc == 5 && strcmp(argv[1], "syn") == 0)
    return syn(argv[2], atoi(argv[3]), strtol(argv[4], NULL, 10));
  fprintf(stderr,
          "usage: limits_holder conntrack FILL PER_S\n"
          "       limits_holder rlimits NPROC MEMLOCK_BYTES LOCK_BYTES STACK_BYTES "
          "STACK_USE_BYTES MAX_THREADS UID\n"
          "       limits_holder syn DST_IP PORT COUNT\n");
  return 2;
}
