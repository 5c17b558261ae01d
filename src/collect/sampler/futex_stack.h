#pragma once
// Which libc function a thread asleep in futex(FUTEX_WAIT_BITSET) called: glibc sleeps there for
// rwlocks, semaphores, condition variables, pthread_join and timed mutexes alike, so the syscall
// and its arguments cannot tell a reader queued behind a writer (lock) from a parked pool thread
// (idle). The thread's own stack can: the return address into pthread_rwlock_wrlock or
// pthread_cond_wait sits a few words above the user stack pointer /proc/TID/syscall shows.
//
// How: read a small window of the thread's stack from that sp (process_vm_readv, which needs
// ptrace access: root or the same user), keep the words that point into libc's executable
// mappings, name them from the symbol table of the exact libc file the process maps (.dynsym, and
// .symtab when present; libelf) and take the innermost one model::futex_waiter_function knows.
// Only those few functions (about 20 of libc's 3,000) are kept per process, at their run-time
// addresses, so naming a word is a search in a short table, and a process costs one pass over
// libc's symbols (about a millisecond) instead of a full symbolizer. Internal helpers
// (__futex_abstimed_wait_common) and stale words left in dead frames (_IO_file_sync) are not in
// that list and are skipped.
//
// Some entry points leave no return address of their own: glibc 2.36's sem_wait, sem_timedwait
// and pthread_join jump (tail-call) into unnamed internal functions. For those the scan looks at
// the service's side instead: the first return addresses into other executable mappings (the
// program, libstdc++) are call sites, and the call instruction before each (`call rel32` to a PLT
// stub, whose `jmp *GOT` is followed, or `call *GOT(%rip)` with -fno-plt) names the libc function
// the service called. x86-64 only; elsewhere this step finds nothing.
//
// Cost: a cache keyed by (pid, futex address, syscall pc) answers for every thread asleep on the
// same object through the same futex wrapper, so a pool of thousands of parked threads costs one
// scan per condition variable, not one per thread or per sample. Entries expire after
// kCacheTtlNs, so memory reused for another kind of object is re-read. Each scan reads at most
// kWindowBytes and names at most kMaxLookups addresses.
//
// Thread-safety: none; one sampler thread uses it.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <tuple>
#include <vector>

#include "collect/bpf/call_site.h"

namespace chokepoint::symbolize {
struct MapsFile;
}  // namespace chokepoint::symbolize

namespace chokepoint::collect::sampler {

// The innermost word of `stack_words` (word 0 at the stack pointer) that
// model::futex_waiter_function knows, named by `libc_function_at(word - 1)` (pass the return
// address minus one so a call at a function's very end is named after that function).
// `libc_function_at` returns the libc function holding a code address, or nullopt for anything
// that is not named libc code; it is called for at most `max_lookups` words. Pure.
std::optional<std::string> find_futex_waiter(
    std::span<const std::uint64_t> stack_words,
    const std::function<std::optional<std::string>(std::uint64_t)>& libc_function_at,
    int max_lookups);

// [start, end) of an executable mapping of glibc: libc.so.6, libc-2.NN.so, or libpthread (glibc
// before 2.34 kept the pthread functions there).
struct CodeRange {
  std::uint64_t start = 0, end = 0;
  std::uint64_t offset = 0;  // file offset mapped at start
  std::string path;          // the mapped file, as /proc/PID/maps names it
};

// A libc function model::futex_waiter_function knows, at its run-time address in one process.
struct WaitFunction {
  std::uint64_t start = 0, end = 0;
  std::string name;  // as futex_waiter_function returns it: "pthread_rwlock_wrlock"
};
// The known wait functions of the ELF file open at `fd` (its .dynsym and .symtab), placed at the
// addresses `mapping` gives them. Empty when the file is not ELF or has no such symbols.
std::vector<WaitFunction> load_wait_functions(int fd, const CodeRange& mapping);
std::vector<CodeRange> libc_code_ranges(const symbolize::MapsFile& maps);
// Every other executable file mapping (the program, libstdc++, ...): where call sites are.
std::vector<CodeRange> other_code_ranges(const symbolize::MapsFile& maps);

// x86-64 call-site decoding lives in collect/bpf/call_site.h (its one owner); these names stay
// here for the scanner's tests and fuzzer.
using bpf::CallTarget;
using bpf::decode_call_before;
using bpf::decode_plt_stub;

struct FutexStackStats {
  std::uint64_t scans = 0;       // stack windows read
  std::uint64_t cache_hits = 0;  // answers from the cache
  std::uint64_t named = 0;       // scans that found a known libc wait function
  std::uint64_t failed = 0;      // scans that could not read the stack or the maps
};

class FutexStackScanner {
 public:
  static constexpr std::size_t kWindowBytes = 1024;
  static constexpr int kMaxLookups = 8;
  static constexpr int kMaxCallSites = 4;  // call sites decoded per scan
  static constexpr std::int64_t kCacheTtlNs = 2'000'000'000;
  static constexpr std::size_t kMaxCacheEntries = 4096;

  explicit FutexStackScanner(std::string proc_root);
  ~FutexStackScanner();
  FutexStackScanner(const FutexStackScanner&) = delete;
  FutexStackScanner& operator=(const FutexStackScanner&) = delete;

  // The libc wait function (as model::futex_waiter_function names it) that thread `tid` of `pid`
  // sleeps under, given the futex address and the sp and pc of /proc/TID/syscall; "" when it
  // cannot be told (stack or maps unreadable, no symbols, not glibc, no known function in the
  // window). Never fails.
  std::string caller(int pid, std::uint64_t futex_addr, std::uint64_t sp, std::uint64_t pc,
                     std::int64_t now_ns);

  const FutexStackStats& stats() const { return stats_; }
  // Why scans cannot work ("process_vm_readv: Operation not permitted"); "" when they did.
  const std::string& problem() const { return problem_; }

 private:
  struct Process {
    bool loaded = false;
    std::vector<CodeRange> libc;
    std::vector<CodeRange> other_code;
    std::vector<WaitFunction> waits;  // of every libc mapping, sorted by start
  };
  struct Cached {
    std::string caller;
    std::int64_t at_ns = 0;
  };
  Process& process(int pid, std::int64_t now_ns);
  std::optional<std::string> libc_function(int pid, const Process& p, std::uint64_t address);
  // The known wait function the service called at one of the window's call sites.
  std::optional<std::string> called_wait(int pid, const Process& p,
                                         std::span<const std::uint64_t> window);

  std::string proc_root_;
  bool read_denied_ = false;
  std::map<int, Process> processes_;
  std::map<std::tuple<int, std::uint64_t, std::uint64_t>, Cached> cache_;
  FutexStackStats stats_;
  std::string problem_;
};

}  // namespace chokepoint::collect::sampler
