#pragma once
// Internal to collect/bpf: what every tracer here needs around libbpf. Errors for a refused load
// (with the hint that fits: not root, unprivileged BPF disabled, the memlock limit), and the
// capture of libbpf's messages so an error can quote the verifier's last words.

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "util/result.h"

#ifdef CHOKEPOINT_HAVE_BPF
#include <bpf/libbpf.h>
#endif

namespace chokepoint::collect::bpf {

// The hint for a build without the BPF part.
extern const char* const kNoBpfHint;

// "comm (pid 12), other (pid 34), ..." for a profile's title: the processes by pid, cut after
// about 60 characters.
std::string processes_text(const std::map<int, std::string>& comm_by_pid);

// The first line of a small file ("" when unreadable).
std::string read_first_line(const std::string& path);

// What every BTF-based (CO-RE, tp_btf) tracer here needs before loading: the kernel's BTF at
// /sys/kernel/btf/vmlinux, and, for a process that is not root, unprivileged BPF allowed.
// Errors name `what` ("off-CPU tracing") and carry the hint.
util::Result<void> check_btf_tracing(const std::string& what);

// For a process that is not root: an error when kernel.unprivileged_bpf_disabled forbids loading
// BPF programs at all ("<what> cannot load BPF programs", with the hint).
util::Result<void> check_unprivileged_bpf(const std::string& what);

// The executable's own text mappings of `tgid` from its maps, as [start, end) pairs, at most
// `max_ranges`: where the kernel sides look for the return address into the service's code above
// a frameless library function. Empty when the process is gone.
std::vector<std::pair<std::uint64_t, std::uint64_t>> executable_text_ranges(
    const std::string& proc_root, int tgid, std::size_t max_ranges);

// "<what>: <strerror(err)>" with the hint that fits this process (euid, unprivileged_bpf_disabled,
// RLIMIT_MEMLOCK).
util::Error permission_error(const std::string& what, int err);

#ifdef CHOKEPOINT_HAVE_BPF
// While alive, collects libbpf's messages (not its debug ones). One at a time: holds a global
// lock, since libbpf's print callback is global.
class LogCapture {
 public:
  LogCapture();
  ~LogCapture();
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;
  // The last `n` non-empty lines, each on its own indented line: where the verifier says why it
  // refused.
  std::string tail(std::size_t n) const;
  bool mentions_verifier() const;

 private:
  std::lock_guard<std::mutex> lock_;
  std::string text_;
  libbpf_print_fn_t previous_ = nullptr;
};
#endif

}  // namespace chokepoint::collect::bpf
