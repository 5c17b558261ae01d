#pragma once
// Small file helpers for tests: read a whole file, a process's thread ids, and a temporary
// directory removed at the end of its scope. Header-only.

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

namespace chokepoint::test_support {

// The whole file; empty when it cannot be read.
inline std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The ids of process pid's threads (/proc/PID/task); empty when it is gone.
inline std::set<int> thread_ids(int pid) {
  std::set<int> tids;
  std::error_code ec;
  for (const auto& e :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    tids.insert(std::stoi(e.path().filename().string()));
  }
  return tids;
}

// A fresh directory under /tmp named after `prefix`, removed with its contents on destruction.
struct TempDir {
  explicit TempDir(const std::string& prefix = "chokepoint-test") {
    std::string tmpl = "/tmp/" + prefix + ".XXXXXX";
    if (mkdtemp(tmpl.data()) != nullptr) path = tmpl;
  }
  ~TempDir() {
    if (!path.empty()) std::filesystem::remove_all(path);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string path;
};

}  // namespace chokepoint::test_support
