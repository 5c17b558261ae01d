#include "collect/bpf/bpf_support.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <vector>

#include "collect/procfs/proc_fs.h"
#include "symbolize/parsers.h"

namespace chokepoint::collect::bpf {

const char* const kNoBpfHint =
    "install clang, bpftool and libbpf-dev (scripts/setup) and rebuild on a machine with "
    "/sys/kernel/btf/vmlinux; see docs/offcpu.md";

std::string processes_text(const std::map<int, std::string>& comm_by_pid) {
  std::string who;
  for (const auto& [pid, comm] : comm_by_pid) {
    if (who.size() > 60) {
      who += ", ...";
      break;
    }
    who += (who.empty() ? "" : ", ") + comm + " (pid " + std::to_string(pid) + ")";
  }
  return who;
}

std::string read_first_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

std::vector<std::pair<std::uint64_t, std::uint64_t>> executable_text_ranges(
    const std::string& proc_root, int tgid, std::size_t max_ranges) {
  std::vector<std::pair<std::uint64_t, std::uint64_t>> out;
  const procfs::ProcFs proc(proc_root);
  auto exe_path = proc.read_exe(tgid);
  if (!exe_path || exe_path->empty()) return out;
  auto maps = proc.read_text(std::to_string(tgid) + "/maps", true);
  if (!maps) return out;
  for (const symbolize::Mapping& m : symbolize::parse_maps(*maps).mappings) {
    if (out.size() >= max_ranges) break;
    if (!m.executable || m.path != *exe_path) continue;
    out.emplace_back(m.start, m.end);
  }
  return out;
}

util::Result<void> check_btf_tracing(const std::string& what) {
  constexpr const char* kBtfPath = "/sys/kernel/btf/vmlinux";
  if (::access(kBtfPath, R_OK) != 0) {
    return util::errno_error(what + " needs kernel BTF, and " + kBtfPath + " is missing",
                             "use a kernel built with CONFIG_DEBUG_INFO_BTF=y (Debian's and most "
                             "distributions' kernels since 5.x are)");
  }
  return check_unprivileged_bpf(what);
}

util::Result<void> check_unprivileged_bpf(const std::string& what) {
  if (geteuid() != 0) {
    const std::string disabled = read_first_line("/proc/sys/kernel/unprivileged_bpf_disabled");
    if (!disabled.empty() && disabled != "0") {
      return permission_error(what + " cannot load BPF programs", EPERM);
    }
  }
  return {};
}

util::Error permission_error(const std::string& what, int err) {
  std::string hint;
  if (geteuid() != 0) {
    std::string disabled = read_first_line("/proc/sys/kernel/unprivileged_bpf_disabled");
    hint = "run as root (or with CAP_BPF and CAP_PERFMON)";
    if (!disabled.empty() && disabled != "0") {
      hint += "; kernel.unprivileged_bpf_disabled is " + disabled +
              ", so unprivileged users cannot load BPF programs at all";
    }
  } else {
    rlimit lim{};
    getrlimit(RLIMIT_MEMLOCK, &lim);
    hint =
        "running as root, so the likely cause is the locked-memory limit (RLIMIT_MEMLOCK) on a "
        "kernel older than 5.11, or a security module (lockdown, SELinux) refusing BPF";
    if (lim.rlim_cur != RLIM_INFINITY) {
      hint += "; the memlock limit is " + std::to_string(lim.rlim_cur / 1024) +
              " KiB: raise it with `ulimit -l unlimited` (or LimitMEMLOCK=infinity in a systemd "
              "unit)";
    }
  }
  return util::errno_error(what, err, hint);
}

#ifdef CHOKEPOINT_HAVE_BPF
namespace {

// libbpf reports through one global print callback. While a tracer loads, its messages (the
// verifier log among them) are collected here so an error can quote them.
std::mutex g_log_mutex;
std::string* g_log = nullptr;  // guarded by g_log_mutex

int capture_libbpf_print(enum libbpf_print_level level, const char* format, va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  char buf[4096];
  int n = std::vsnprintf(buf, sizeof(buf), format, args);
  if (n > 0 && g_log != nullptr) g_log->append(buf, std::min<std::size_t>(n, sizeof(buf) - 1));
  return 0;
}

}  // namespace

LogCapture::LogCapture() : lock_(g_log_mutex) {
  g_log = &text_;
  previous_ = libbpf_set_print(capture_libbpf_print);
}

LogCapture::~LogCapture() {
  libbpf_set_print(previous_);
  g_log = nullptr;
}

std::string LogCapture::tail(std::size_t n) const {
  std::vector<std::string> lines;
  std::istringstream in(text_);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  std::string out;
  for (std::size_t i = lines.size() > n ? lines.size() - n : 0; i < lines.size(); ++i) {
    out += "\n  " + lines[i];
  }
  return out;
}

bool LogCapture::mentions_verifier() const {
  return text_.find("BEGIN PROG LOAD LOG") != std::string::npos ||
         text_.find("processed ") != std::string::npos;
}
#endif

}  // namespace chokepoint::collect::bpf
