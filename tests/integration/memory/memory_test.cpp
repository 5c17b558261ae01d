// chokepoint profile --memory on memory_target (memory_target.c), which leaks a known number of
// bytes at one site and allocates and frees as much at another, and prints what it leaked:
// - glibc, and with jemalloc preloaded: the live bytes under memory_leak_site are within 10% of
//   the truth at the default sampling rate, and the churn site keeps next to nothing;
// - a leak inside a shared library the test builds is named by the library's function;
// - a libc stripped of all but .dynsym, loaded from a directory of its own, is probed;
// - a target in another mount namespace (its binary on a tmpfs only that namespace sees) is
//   probed and symbolized through /proc/PID/root;
// - bad input: a stripped static binary (no malloc symbol), a target that exits mid-window, a pid
//   that is gone. Needs root and uprobes (this machine has both: no skip).
#include <elf.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "support/cli.h"
#include "support/files.h"
#include "support/spawn.h"

namespace chokepoint::memory_test {
namespace {

using test_support::expect_cli_error;
using test_support::read_file;
using test_support::run_chokepoint;
using test_support::TempDir;

const char* const kJemalloc = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2";

// A target process with its stdout in a file; killed and reaped at the end.
class Target {
 public:
  Target(const std::vector<std::string>& argv, const std::string& stdout_path) {
    const int fd = ::open(stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    auto pid = test_support::spawn_process(argv, fd, -1);
    ::close(fd);
    if (pid) pid_ = *pid;
  }
  ~Target() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  Target(const Target&) = delete;
  Target& operator=(const Target&) = delete;
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
};

// "name=N" from the target's output; 0 when missing.
std::uint64_t printed(const std::string& text, const std::string& name) {
  const auto at = text.find(name + "=");
  return at == std::string::npos ? 0 : std::stoull(text.substr(at + name.size() + 1));
}

// Bytes of the folded stacks whose last (allocating) frame is `leaf`.
std::uint64_t bytes_under_leaf(const std::string& folded, const std::string& leaf) {
  std::uint64_t sum = 0;
  std::istringstream in(folded);
  for (std::string line; std::getline(in, line);) {
    const auto space = line.rfind(' ');
    if (space == std::string::npos) continue;
    const auto semi = line.rfind(';', space);
    const std::string last = line.substr(semi + 1, space - semi - 1);
    if (last == leaf) sum += std::stoull(line.substr(space + 1));
  }
  return sum;
}

struct Profiled {
  test_support::ExitResult cli;
  std::string folded;
  std::uint64_t leaked = 0;
};

// Profiles the target `argv` runs (memory_target in the end, in the mode given) for 4 s; `d` is
// where its output goes.
Profiled profile_command(const std::vector<std::string>& argv, const TempDir& d) {
  Target target(argv, d.path + "/target.out");
  EXPECT_GT(target.pid(), 0);
  Profiled r;
  r.cli = run_chokepoint({"profile", "--memory", "--pid", std::to_string(target.pid()),
                          "--duration", "4s", "-o", d.path + "/live.folded", "--top", "5"},
                         60);
  r.folded = read_file(d.path + "/live.folded");
  r.leaked = printed(read_file(d.path + "/target.out"), "leaked_bytes");
  return r;
}

// Profiles memory_target MODE (through `prefix`, e.g. env LD_PRELOAD=...) for 4 s.
Profiled profile(const std::string& mode, const std::vector<std::string>& prefix = {}) {
  TempDir d{"chokepoint-memory"};
  std::vector<std::string> argv = prefix;
  argv.push_back(MEMORY_TARGET);
  argv.push_back(mode);
  return profile_command(argv, d);
}

// Runs tool (found in PATH) to completion: "" when it exited 0, else what went wrong.
std::string run_tool_ok(const std::string& tool, const std::vector<std::string>& args) {
  auto r = test_support::run_to_exit(args, tool, std::chrono::seconds(30));
  if (!r) return r.error().message;
  return r->exit_code == 0
             ? ""
             : tool + " exited " + std::to_string(r->exit_code) + ": " + r->stderr_text;
}

// Whether the ELF file at path has a .symtab section (a full symbol table, beyond .dynsym).
bool has_symtab(const std::string& path) {
  const std::string text = read_file(path);
  Elf64_Ehdr eh{};
  if (text.size() < sizeof eh) return false;
  std::memcpy(&eh, text.data(), sizeof eh);
  for (std::size_t i = 0; i < eh.e_shnum; ++i) {
    Elf64_Shdr sh{};
    const std::size_t at = eh.e_shoff + i * sizeof sh;
    if (at + sizeof sh > text.size()) return false;
    std::memcpy(&sh, text.data() + at, sizeof sh);
    if (sh.sh_type == SHT_SYMTAB) return true;
  }
  return false;
}

void expect_leak_named(const Profiled& r, const std::string& leaf) {
  ASSERT_EQ(r.cli.exit_code, 0) << r.cli.stderr_text;
  ASSERT_GT(r.leaked, 0u) << "the target did not leak: " << r.cli.stderr_text;
  const double estimate = static_cast<double>(bytes_under_leaf(r.folded, leaf));
  const double truth = static_cast<double>(r.leaked);
  EXPECT_LT(std::fabs(estimate - truth), 0.10 * truth)
      << leaf << ": estimated " << estimate << " bytes live, truth " << truth << "\n"
      << r.folded << r.cli.stdout_text << r.cli.stderr_text;
  // Freed at once: the churn site keeps (almost) nothing.
  EXPECT_LT(static_cast<double>(bytes_under_leaf(r.folded, "memory_churn_site")), 0.02 * truth)
      << r.folded;
  // The table names the site, and the figures say they are estimates and how they were sampled.
  EXPECT_NE(r.cli.stdout_text.find(leaf), std::string::npos) << r.cli.stdout_text;
  EXPECT_NE(r.cli.stdout_text.find("estimates: one sample per 64 KiB"), std::string::npos)
      << r.cli.stdout_text;
}

TEST(ProfileMemory, NamesTheLeakingSiteWithinTenPercentThroughGlibc) {
  const Profiled r = profile("leak");
  expect_leak_named(r, "memory_leak_site");
  EXPECT_NE(r.cli.stderr_text.find("(glibc)"), std::string::npos) << r.cli.stderr_text;
}

TEST(ProfileMemory, NamesTheLeakingSiteWithinTenPercentThroughJemalloc) {
  ASSERT_EQ(::access(kJemalloc, R_OK), 0) << kJemalloc << " is missing: run scripts/setup";
  const Profiled r = profile("leak", {"env", std::string("LD_PRELOAD=") + kJemalloc});
  expect_leak_named(r, "memory_leak_site");
  EXPECT_NE(r.cli.stderr_text.find("(jemalloc)"), std::string::npos) << r.cli.stderr_text;
}

TEST(ProfileMemory, NamesALeakInsideASharedLibrary) {
  const Profiled r = profile("lib");
  expect_leak_named(r, "lib_leak_block");
  EXPECT_NE(r.cli.stdout_text.find("memory_target_lib.c"), std::string::npos) << r.cli.stdout_text;
}

// A libc stripped of everything but its dynamic symbols (.dynsym: malloc and free are exported),
// loaded from a directory of its own: it is found by its name and probed through .dynsym.
TEST(ProfileMemory, ProbesAStrippedLibcThroughItsDynamicSymbols) {
  TempDir d{"chokepoint-memory"};
  const std::string lib = d.path + "/lib";
  ASSERT_EQ(::mkdir(lib.c_str(), 0755), 0);
  const auto copied = run_tool_ok("cp", {"/lib/x86_64-linux-gnu/libc.so.6", lib + "/libc.so.6"});
  ASSERT_TRUE(copied.empty()) << copied;
  const auto stripped =
      run_tool_ok("strip", {"--strip-all", "--remove-section=.gnu_debuglink", lib + "/libc.so.6"});
  ASSERT_TRUE(stripped.empty()) << stripped;
  ASSERT_FALSE(has_symtab(lib + "/libc.so.6"));
  const Profiled r = profile_command({"env", "LD_LIBRARY_PATH=" + lib, MEMORY_TARGET, "leak"}, d);
  expect_leak_named(r, "memory_leak_site");
  EXPECT_NE(r.cli.stderr_text.find("(glibc)"), std::string::npos) << r.cli.stderr_text;
  EXPECT_NE(r.cli.stderr_text.find(lib + "/libc.so.6"), std::string::npos)
      << "the stripped copy was the one probed: " << r.cli.stderr_text;
}

// The target runs a copy of memory_target on a tmpfs mounted in a mount namespace of its own: the
// path its maps name does not exist in ours (the directory here stays empty), so the probes and
// the symbols must come through /proc/PID/root.
TEST(ProfileMemory, TargetInAnotherMountNamespace) {
  TempDir d{"chokepoint-memory"};
  const std::string dir = d.path + "/ns";
  ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0);
  const Profiled r = profile_command(
      {"unshare", "-m", "--propagation", "private", "sh", "-c",
       "mount -t tmpfs chokepoint-test \"$1\" && cp \"$2\" \"$1\"/memory_target && exec "
       "\"$1\"/memory_target leak",
       "sh", dir, MEMORY_TARGET},
      d);
  EXPECT_NE(::access((dir + "/memory_target").c_str(), F_OK), 0) << "the copy is not in our view";
  expect_leak_named(r, "memory_leak_site");
}

TEST(ProfileMemory, StrippedStaticBinaryHasNoMallocToProbe) {
  TempDir d{"chokepoint-memory"};
  Target target({MEMORY_STATIC_TARGET}, d.path + "/target.out");
  ASSERT_GT(target.pid(), 0);
  expect_cli_error(run_chokepoint({"profile", "--memory", "--pid", std::to_string(target.pid()),
                                   "--duration", "1s"}),
                   1, "no allocator with malloc and free symbols");
}

TEST(ProfileMemory, TargetThatExitsMidWindowKeepsWhatWasTraced) {
  TempDir d{"chokepoint-memory"};
  Target target({MEMORY_TARGET, "exit"}, d.path + "/target.out");
  ASSERT_GT(target.pid(), 0);
  // Not our child: reaped by... nobody until ~Target, so it stays a zombie; the tracer counts a
  // zombie as gone.
  const auto r = run_chokepoint({"profile", "--memory", "--pid", std::to_string(target.pid()),
                                 "--duration", "20s", "-o", d.path + "/live.folded"},
                                60);
  EXPECT_EQ(r.exit_code, 1) << r.stderr_text;
  EXPECT_NE(r.stderr_text.find("exited"), std::string::npos) << r.stderr_text;
  EXPECT_GT(bytes_under_leaf(read_file(d.path + "/live.folded"), "memory_leak_site"), 0u)
      << r.stderr_text;
}

TEST(ProfileMemory, BadInputIsAnErrorWithAHint) {
  expect_cli_error(run_chokepoint({"profile", "--memory", "--pid", "999999999"}), 1,
                   "no process with pid");
  expect_cli_error(run_chokepoint({"profile", "--memory", "--duration", "1s"}), 2,
                   "--memory needs a target process");
  const std::string self = std::to_string(getpid());
  expect_cli_error(run_chokepoint({"profile", "--memory", "--off-cpu", "--pid", self}), 2,
                   "--off-cpu");
  expect_cli_error(run_chokepoint({"profile", "--memory", "--memory-view", "x", "--pid", self}), 2,
                   "unknown view");
}

}  // namespace
}  // namespace chokepoint::memory_test
