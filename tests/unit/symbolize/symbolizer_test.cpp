// The Symbolizer against real processes (a helper built with -g that prints its own addresses),
// the real /proc/kallsyms, and kallsyms fixtures.
#include "symbolize/symbolizer.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include "unit/symbolize/child_process.h"

namespace chokepoint::symbolize {
namespace {

namespace fs = std::filesystem;
using profile::Frame;
using profile::FrameKind;
using testing::ChildProcess;

const std::string kHelper = SYMBOLIZE_TEST_HELPER;
const std::string kStaticHelper = SYMBOLIZE_TEST_HELPER_STATIC;
constexpr uid_t kNobody = 65534;

std::unique_ptr<Symbolizer> make(SymbolizerOptions options = {}) {
  auto s = Symbolizer::create(std::move(options));
  EXPECT_TRUE(s.has_value());
  return std::move(s).value();
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// A private temporary directory, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string templ = (fs::temp_directory_path() / "chokepoint-symbolize-XXXXXX").string();
    path_ = ::mkdtemp(templ.data()) != nullptr ? templ : "";
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// The helper's demangled C++ method, with its source file and line.
void expect_compute(const Frame& f, const ChildProcess& child) {
  EXPECT_EQ(f.kind, FrameKind::kUser) << f.name << " " << f.unresolved;
  EXPECT_EQ(f.name, "demo::Widget::compute(int) const");
  EXPECT_TRUE(ends_with(f.file, "symbolize_test_helper.cpp")) << f.file;
  const int line = static_cast<int>(child.value("compute_line"));
  EXPECT_GE(f.line, line);
  EXPECT_LE(f.line, line + 4);
  EXPECT_TRUE(f.unresolved.empty());
}

TEST(Symbolizer, NamesFunctionsOfARunningPieProcess) {
  ChildProcess child(kHelper);
  ASSERT_TRUE(child.ready());
  auto s = make();
  ASSERT_TRUE(s->attach(child.pid()));

  const Frame compute = s->user(child.pid(), child.value("compute"));
  expect_compute(compute, child);
  EXPECT_EQ(compute.module, kHelper);

  // An address inside the body, not only the entry, names the same function.
  const Frame inside = s->user(child.pid(), child.value("compute") + 4);
  EXPECT_EQ(inside.name, compute.name);

  const Frame plain = s->user(child.pid(), child.value("plain"));
  EXPECT_EQ(plain.name, "plain_c_function");
  EXPECT_TRUE(ends_with(plain.file, "symbolize_test_helper.cpp"));
  EXPECT_GT(plain.line, 0);
}

TEST(Symbolizer, InlinedCodeGetsTheLineOfItsCallInTheNamedFunction) {
  ChildProcess child(kHelper);
  ASSERT_TRUE(child.ready());
  auto s = make();
  const int first_line = static_cast<int>(child.value("compute_line"));
  int addresses = 0;
  for (std::uint64_t a = child.value("compute"); addresses < 512; ++a, ++addresses) {
    const Frame f = s->user(child.pid(), a);
    if (f.name != "demo::Widget::compute(int) const") break;
    EXPECT_GE(f.line, first_line) << "at +" << addresses;
    EXPECT_LE(f.line, first_line + 4) << "at +" << addresses;
  }
  EXPECT_GT(addresses, 8);  // the whole body was walked, including the inlined mix()
}

TEST(Symbolizer, NamesLibcFunctionsThroughTheSharedLibraryMapping) {
  ChildProcess child(kHelper);
  ASSERT_TRUE(child.ready());
  auto s = make();
  // No attach(): the first lookup attaches.
  const Frame f = s->user(child.pid(), child.value("write"));
  EXPECT_EQ(f.kind, FrameKind::kUser) << f.name << " " << f.unresolved;
  EXPECT_NE(f.name.find("write"), std::string::npos) << f.name;
  EXPECT_NE(f.module.find("libc"), std::string::npos) << f.module;

  // The same in our own process, where libc sits at another address.
  const Frame own = s->user(::getpid(), reinterpret_cast<std::uint64_t>(&::write));
  EXPECT_EQ(own.name, f.name);
}

TEST(Symbolizer, ResolvesAfterTheBinaryWasDeletedAndTheProcessExited) {
  if (::geteuid() != 0) GTEST_SKIP() << "reading /proc/PID/map_files needs root";
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const std::string copy = dir.path() + "/deleted_helper";
  fs::copy_file(kHelper, copy);
  ChildProcess child(copy);
  ASSERT_TRUE(child.ready());
  ASSERT_TRUE(fs::remove(copy));

  auto s = make();
  ASSERT_TRUE(s->attach(child.pid()));
  expect_compute(s->user(child.pid(), child.value("compute")), child);

  // After the process is gone the kept descriptors still read the binary; this address was not
  // looked up before, so it is not served from the cache.
  const int pid = child.pid();
  child.stop();
  ASSERT_FALSE(fs::exists("/proc/" + std::to_string(pid) + "/maps"));
  const Frame later = s->user(pid, child.value("compute") + 1);
  EXPECT_EQ(later.name, "demo::Widget::compute(int) const");
  EXPECT_FALSE(s->attach(pid));  // a second attach fails, and keeps the snapshot
  EXPECT_EQ(s->user(pid, child.value("plain")).name, "plain_c_function");
}

// Runs `check` in a child process that dropped root for uid nobody; returns its exit code.
int run_as_nobody(const std::function<int()>& check) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (!ChildProcess::drop_to(kNobody)) _exit(100);
    _exit(check());
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 200;
}

TEST(Symbolizer, WithoutRootDeletedBinariesAndOtherUsersSayWhy) {
  if (::geteuid() != 0) GTEST_SKIP() << "switching to uid nobody needs root";
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  fs::permissions(dir.path(), fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                  fs::perms::others_read | fs::perms::others_exec);
  const std::string copy = dir.path() + "/deleted_helper";
  fs::copy_file(kHelper, copy);
  ChildProcess child(copy, {}, kNobody);
  ASSERT_TRUE(child.ready());
  ASSERT_TRUE(fs::remove(copy));
  const std::uint64_t compute = child.value("compute");
  const int code = run_as_nobody([&]() {
    auto s = Symbolizer::create();
    if (!s) return 1;
    // Our own user's process: the maps are readable, the deleted file is not.
    if (!(*s)->attach(child.pid())) return 2;
    const Frame f = (*s)->user(child.pid(), compute);
    if (f.unresolved != "binary deleted; reading it through /proc/PID/map_files needs root") {
      return 3;
    }
    // root's process (the test itself): its maps are not readable.
    const auto attached = (*s)->attach(static_cast<int>(::getppid()));
    if (attached || attached.error().hint.empty()) return 4;
    if ((*s)->user(static_cast<int>(::getppid()), 0x1000)
            .unresolved.rfind("mappings unreadable", 0) != 0) {
      return 5;
    }
    return 0;
  });
  EXPECT_EQ(code, 0);
}

TEST(Symbolizer, StrippedBinaryGivesTheReason) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const std::string copy = dir.path() + "/stripped_helper";
  fs::copy_file(kHelper, copy);
  ASSERT_EQ(std::system(("strip --strip-all " + copy).c_str()), 0);
  ChildProcess child(copy);
  ASSERT_TRUE(child.ready());

  auto s = make();
  ASSERT_TRUE(s->attach(child.pid()));
  const Frame f = s->user(child.pid(), child.value("compute"));
  EXPECT_EQ(f.kind, FrameKind::kUnresolved);
  EXPECT_EQ(f.unresolved, "stripped");
  EXPECT_EQ(f.module, copy);
  EXPECT_EQ(f.name.rfind("[stripped_helper+0x", 0), 0u) << f.name;
  // libc's exported names survive stripping in .dynsym.
  EXPECT_NE(s->user(child.pid(), child.value("write")).name.find("write"), std::string::npos);

  const auto notes = s->notes();
  ASSERT_FALSE(notes.empty());
  EXPECT_NE(notes.front().find("stripped"), std::string::npos) << notes.front();
  EXPECT_NE(notes.front().find(copy), std::string::npos) << notes.front();
  EXPECT_EQ(s->stats().unresolved, 1u);
}

TEST(Symbolizer, ResolvesInsideAContainerThroughProcPidRoot) {
  if (::geteuid() != 0) GTEST_SKIP() << "mount namespaces and pivot_root need root";
  TempDir root;
  ASSERT_FALSE(root.path().empty());
  fs::copy_file(kStaticHelper, root.path() + "/helper");
  fs::create_directory(root.path() + "/old");
  ChildProcess child("/helper", root.path());
  ASSERT_TRUE(child.ready());

  // The kernel prints the path as the container sees it; it does not exist outside.
  std::ifstream maps("/proc/" + std::to_string(child.pid()) + "/maps");
  std::stringstream text;
  text << maps.rdbuf();
  ASSERT_NE(text.str().find(" /helper\n"), std::string::npos) << text.str();
  ASSERT_FALSE(fs::exists("/helper"));

  auto s = make();
  ASSERT_TRUE(s->attach(child.pid()));
  const Frame f = s->user(child.pid(), child.value("compute"));
  expect_compute(f, child);
  EXPECT_EQ(f.module, "/helper");
}

TEST(Symbolizer, JitFramesComeFromThePerfMap) {
  ChildProcess child(kHelper);
  ASSERT_TRUE(child.ready());
  const std::uint64_t jit = child.value("jit");
  ASSERT_NE(jit, 0u);

  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  {
    std::ofstream map(dir.path() + "/perf-" + std::to_string(child.pid()) + ".map");
    map << std::hex << jit << " 10 JitFunction::run\n" << jit + 0x10 << " 10 LazyCompile:*fib\n";
  }
  SymbolizerOptions options;
  options.perf_map_dir = dir.path();
  auto s = make(options);
  ASSERT_TRUE(s->attach(child.pid()));
  const Frame f = s->user(child.pid(), jit + 4);
  EXPECT_EQ(f.kind, FrameKind::kJit);
  EXPECT_EQ(f.name, "JitFunction::run");
  EXPECT_EQ(s->user(child.pid(), jit + 0x10).name, "LazyCompile:*fib");
  const Frame missing = s->user(child.pid(), jit + 0x40);
  EXPECT_EQ(missing.kind, FrameKind::kUnresolved);
  EXPECT_EQ(missing.unresolved, "not in the JIT perf map");

  // The runtime appends as it compiles: a later miss re-reads the grown map.
  {
    std::ofstream map(dir.path() + "/perf-" + std::to_string(child.pid()) + ".map", std::ios::app);
    map << std::hex << jit + 0x80 << " 20 LazyCompile:*later\n";
  }
  EXPECT_EQ(s->user(child.pid(), jit + 0x90).name, "LazyCompile:*later");

  // Without a map the same memory is a JIT without a perf map.
  SymbolizerOptions empty;
  empty.perf_map_dir = dir.path() + "/nothing-here";
  auto bare = make(empty);
  const Frame none = bare->user(child.pid(), jit + 4);
  EXPECT_EQ(none.kind, FrameKind::kUnresolved);
  EXPECT_EQ(none.unresolved, "JIT without a perf map");
  EXPECT_EQ(none.name.rfind("[anon+0x4]", 0), 0u) << none.name;
}

TEST(Symbolizer, ProcessThatExitedBeforeAttachIsExplained) {
  const pid_t pid = ::fork();
  if (pid == 0) _exit(0);
  ASSERT_GT(pid, 0);
  ::waitpid(pid, nullptr, 0);
  auto s = make();
  const auto attached = s->attach(pid);
  ASSERT_FALSE(attached);
  EXPECT_FALSE(attached.error().hint.empty());
  const Frame f = s->user(pid, 0x401000);
  EXPECT_EQ(f.kind, FrameKind::kUnresolved);
  EXPECT_EQ(f.unresolved, "process exited before it could be attached");
  EXPECT_EQ(f.name, "[unknown+0x401000]");
}

TEST(Symbolizer, AddressOutsideEveryMappingIsNotMapped) {
  auto s = make();
  const Frame f = s->user(::getpid(), 0x10);
  EXPECT_EQ(f.kind, FrameKind::kUnresolved);
  EXPECT_EQ(f.unresolved, "not mapped");
}

TEST(Symbolizer, NamesVdsoFunctions) {
  // Scan our own [vdso] for a named function; its symbols come from .dynsym.
  std::ifstream maps("/proc/self/maps");
  std::string line;
  std::uint64_t start = 0, end = 0;
  while (std::getline(maps, line)) {
    if (line.find("[vdso]") == std::string::npos) continue;
    start = std::strtoull(line.c_str(), nullptr, 16);
    end = std::strtoull(line.c_str() + line.find('-') + 1, nullptr, 16);
  }
  if (start == 0) GTEST_SKIP() << "no vDSO mapped";
  auto s = make();
  bool found = false;
  for (std::uint64_t a = start; a < end && !found; a += 4) {
    const Frame f = s->user(::getpid(), a);
    if (f.kind == FrameKind::kUser && f.name.find("gettime") != std::string::npos) {
      EXPECT_EQ(f.module, "[vdso]");
      found = true;
    }
  }
  EXPECT_TRUE(found);
}

TEST(Symbolizer, KernelAddressFromTheRealKallsyms) {
  std::ifstream in("/proc/kallsyms");
  std::string line;
  std::uint64_t address = 0;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string addr, type, name;
    fields >> addr >> type >> name;
    if ((type == "T" || type == "t") && name == "schedule") {
      address = std::strtoull(addr.c_str(), nullptr, 16);
      break;
    }
  }
  if (address == 0) GTEST_SKIP() << "/proc/kallsyms hides addresses (kptr_restrict) for this user";
  auto s = make();
  const Frame f = s->kernel(address + 1);
  EXPECT_EQ(f.kind, FrameKind::kKernel);
  EXPECT_EQ(f.name, "schedule");
  EXPECT_EQ(f.module, "[kernel]");
  EXPECT_EQ(s->stats().kernel_lookups, 1u);
}

TEST(Symbolizer, KernelFixtureNamesModules) {
  SymbolizerOptions options;
  options.proc_root = std::string(CHOKEPOINT_FIXTURES_DIR) + "/symbolize/proc_visible";
  auto s = make(options);
  const Frame f = s->kernel(0xffffffffc0a01210);
  EXPECT_EQ(f.kind, FrameKind::kKernel);
  EXPECT_EQ(f.name, "nft_do_chain");
  EXPECT_EQ(f.module, "[nf_tables]");
  const Frame below = s->kernel(0xffffffff80000000);
  EXPECT_EQ(below.kind, FrameKind::kUnresolved);
  EXPECT_EQ(below.unresolved, "not in /proc/kallsyms");
  EXPECT_EQ(below.name, "[kernel+0xffffffff80000000]");
}

TEST(Symbolizer, HiddenKernelAddressesSayWhy) {
  SymbolizerOptions options;
  options.proc_root = std::string(CHOKEPOINT_FIXTURES_DIR) + "/symbolize/proc_hidden";
  auto s = make(options);
  const Frame f = s->kernel(0xffffffff81004010);
  EXPECT_EQ(f.kind, FrameKind::kUnresolved);
  EXPECT_EQ(f.unresolved, "kernel addresses hidden (kptr_restrict)");
  const auto notes = s->notes();
  ASSERT_FALSE(notes.empty());
  EXPECT_NE(notes.front().find("kernel.kptr_restrict=2"), std::string::npos) << notes.front();
}

TEST(Symbolizer, RepeatedLookupsAreCachedAndCounted) {
  ChildProcess child(kHelper);
  ASSERT_TRUE(child.ready());
  auto s = make();
  ASSERT_TRUE(s->attach(child.pid()));
  const Frame first = s->user(child.pid(), child.value("compute"));
  for (int i = 0; i < 1000; ++i) {
    ASSERT_EQ(s->user(child.pid(), child.value("compute")), first);
  }
  EXPECT_EQ(s->stats().user_lookups, 1001u);
  EXPECT_EQ(s->stats().unresolved, 0u);
}

TEST(Symbolizer, CreateRejectsAMissingProcRoot) {
  SymbolizerOptions options;
  options.proc_root = "/nonexistent-proc-root";
  auto s = Symbolizer::create(options);
  ASSERT_FALSE(s);
  EXPECT_FALSE(s.error().hint.empty());
}

}  // namespace
}  // namespace chokepoint::symbolize
