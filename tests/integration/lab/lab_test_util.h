#pragma once
// Small helpers shared by the lab integration tests: /proc readers and data-dir lookup.

#include <glob.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace chokepoint::lab_test {

inline bool is_root() {
  return geteuid() == 0;
}

// VmRSS from /proc/PID/status, in bytes (the file reports kB; see proc(5)).
inline std::int64_t rss_bytes(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
  }
  return -1;
}

// majflt, field (12) of /proc/PID/stat (proc(5)); split after the last ')' since comm may hold
// spaces and parentheses.
inline std::int64_t major_faults(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::size_t close = text.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream rest(text.substr(close + 2));
  std::string field;
  // After ')' come field (3) state ... (12) majflt is the 10th of them.
  for (int i = 3; i <= 12; ++i) rest >> field;
  return std::stoll(field);
}

// TcpExt ListenOverflows from /proc/net/netstat: a header line of names, then a line of values.
inline std::int64_t listen_overflows() {
  std::ifstream in("/proc/net/netstat");
  std::string names, values;
  while (std::getline(in, names) && std::getline(in, values)) {
    if (names.rfind("TcpExt:", 0) != 0) continue;
    std::istringstream n(names), v(values);
    std::string name, value;
    while (n >> name && v >> value) {
      if (name == "ListenOverflows") return std::stoll(value);
    }
  }
  return -1;
}

// The temp data dirs a lab with `pid` created (chokepoint-lab.PID.XXXXXX under $TMPDIR or /tmp)
// at or after `since` (seconds since the epoch): a lab killed with SIGKILL leaves its dir behind,
// and a later process may reuse its pid.
inline std::vector<std::string> temp_data_dirs(pid_t pid, std::time_t since = 0) {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern =
      std::string(tmp && *tmp ? tmp : "/tmp") + "/chokepoint-lab." + std::to_string(pid) + ".*";
  std::vector<std::string> out;
  glob_t g{};
  if (glob(pattern.c_str(), 0, nullptr, &g) == 0) {
    for (std::size_t i = 0; i < g.gl_pathc; ++i) {
      struct stat st {};
      if (stat(g.gl_pathv[i], &st) == 0 && st.st_ctime >= since) out.emplace_back(g.gl_pathv[i]);
    }
  }
  globfree(&g);
  return out;
}

}  // namespace chokepoint::lab_test
