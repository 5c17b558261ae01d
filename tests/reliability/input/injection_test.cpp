// Issue 18 item 1: a terminal that cannot be hijacked. A real process named "\e[32mGRN" with a
// thread named "<script>\a\e]0;" (and one whose name the kernel cut mid-character) is diagnosed
// and profiled by the real binary; the raw bytes of every output are checked.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "support/background.h"
#include "support/cli.h"
#include "support/files.h"

namespace chokepoint::reliability {
namespace {

using test_support::Background;
using test_support::ExitResult;
using test_support::read_file;
using test_support::run_chokepoint;
using test_support::TempDir;

const std::string kExeName = "\x1b[32mGRN";
const std::string kThreadName = "<script>\a\x1b]0;";

// "" when `bytes` holds nothing a terminal acts on; else where the first such byte is. Allowed:
// '\n' (and '\t' where `tabs`). Refused: other C0 bytes, DEL, and C1 controls in UTF-8 (C2 80-9F).
std::string first_control(const std::string& bytes, bool tabs = false) {
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    const bool c1 = c == 0xC2 && i + 1 < bytes.size() &&
                    static_cast<unsigned char>(bytes[i + 1]) >= 0x80 &&
                    static_cast<unsigned char>(bytes[i + 1]) <= 0x9F;
    if ((c < 0x20 && c != '\n' && !(tabs && c == '\t')) || c == 0x7f || c1) {
      return "byte 0x" + std::to_string(c) + " at offset " + std::to_string(i) +
             " near: " + bytes.substr(i > 40 ? i - 40 : 0, 80);
    }
  }
  return "";
}

void expect_clean(const ExitResult& r, const std::string& what) {
  EXPECT_EQ(first_control(r.stdout_text), "") << what << " stdout";
  EXPECT_EQ(first_control(r.stderr_text), "") << what << " stderr";
}

// The hostile program, copied to DIR/"\e[32mGRN" and started with DIR as its argument.
class HostileNames : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path.empty());
    exe_ = dir_.path + "/" + kExeName;
    std::filesystem::copy_file(HOSTILE_TARGET, exe_);
    ::chmod(exe_.c_str(), 0755);
  }

  // Starts the program and waits until its threads carry their names.
  pid_t start(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {dir_.path};
    args.insert(args.end(), extra.begin(), extra.end());
    auto p = Background::start(exe_, args);
    EXPECT_TRUE(p) << p.error().message;
    if (!p) return 0;
    process_.emplace(std::move(*p));
    const pid_t pid = process_->pid();
    for (int i = 0; i < 200; ++i) {
      int named = 0;
      std::error_code ec;
      for (const auto& t :
           std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
        const std::string comm = read_file(t.path().string() + "/comm");
        if (comm == kThreadName + "\n" || comm.rfind("aaaaaaaaaaaaaa", 0) == 0) ++named;
      }
      if (named == 2) return pid;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ADD_FAILURE() << "the hostile program's threads never took their names";
    return 0;
  }

  TempDir dir_{"chokepoint-hostile"};
  std::string exe_;
  std::optional<Background> process_;
};

TEST_F(HostileNames, DiagnoseTextIsEscaped) {
  const pid_t pid = start();
  ASSERT_GT(pid, 0);
  const std::string p = std::to_string(pid);
  auto r = run_chokepoint({"diagnose", "--pid", p, "-d", "2s", "--stacks-duration", "1s"}, 60);
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  expect_clean(r, "diagnose");
  // The name is shown, visibly escaped, once with the pid ("pid N (name)", not "(name, pid N)").
  EXPECT_NE(r.stdout_text.find("pid " + p + " (\\e[32mGRN), "), std::string::npos) << r.stdout_text;
  EXPECT_NE(r.stderr_text.find("watching pid " + p), std::string::npos) << r.stderr_text;
}

TEST_F(HostileNames, DiagnoseJsonHoldsRawNamesInOneRepresentation) {
  const pid_t pid = start();
  ASSERT_GT(pid, 0);
  auto r = run_chokepoint({"diagnose", "--pid", std::to_string(pid), "-d", "1s", "--json"}, 60);
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  expect_clean(r, "diagnose --json");
  const auto j = nlohmann::json::parse(r.stdout_text);
  ASSERT_EQ(j["processes"].size(), 1u);
  // processes[].name and threads[].comm: both the comm's raw bytes (JSON escapes them).
  EXPECT_EQ(j["processes"][0]["name"], kExeName);
  bool main_seen = false, script_seen = false, cut_seen = false;
  for (const auto& t : j["threads"]) {
    const std::string comm = t["comm"];
    if (t["tid"] == pid) main_seen = comm == kExeName;
    script_seen |= comm == kThreadName;
    cut_seen |= comm == "aaaaaaaaaaaaaa\xEF\xBF\xBD";  // the cut character becomes U+FFFD
  }
  EXPECT_TRUE(main_seen) << r.stdout_text;
  EXPECT_TRUE(script_seen) << r.stdout_text;
  EXPECT_TRUE(cut_seen) << r.stdout_text;
  EXPECT_NE(r.stdout_text.find("\"<script>\\u0007\\u001b]0;\""), std::string::npos);
}

TEST_F(HostileNames, ProfileTopAndEveryOutputFormatAreClean) {
  const std::string svg = dir_.path + "/p.svg", folded = dir_.path + "/p.folded",
                    speedscope = dir_.path + "/p.json";
  // Launched as a command: its path is in the progress line, and its frames name the file.
  auto r = run_chokepoint({"profile", "-d", "1s", "--threads", "--top", "30", "-o", svg, "-o",
                           folded, "-o", speedscope, "--", exe_, dir_.path},
                          60);
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  expect_clean(r, "profile");
  EXPECT_NE(r.stderr_text.find("\\e[32mGRN"), std::string::npos) << r.stderr_text;
  EXPECT_NE(r.stdout_text.find("\\e[32mGRN"), std::string::npos) << r.stdout_text;
  EXPECT_EQ(first_control(read_file(svg), true), "") << "svg";
  EXPECT_EQ(first_control(read_file(folded)), "") << "folded";
  const std::string json = read_file(speedscope);
  EXPECT_EQ(first_control(json), "") << "speedscope";
  EXPECT_FALSE(nlohmann::json::parse(json, nullptr, false).is_discarded()) << "speedscope json";
}

#if defined(__x86_64__)
// Issue 18 item 5: /tmp/perf-PID.map is written by whoever can write /tmp. As a FIFO it made the
// symbolizer wait for a writer forever; as a link to /dev/zero it grew without end.
TEST_F(HostileNames, PerfMapThatIsAFifoOrDevZeroCannotStallTheProfile) {
  const pid_t pid = start({"jit"});
  ASSERT_GT(pid, 0);
  const std::string map = "/tmp/perf-" + std::to_string(pid) + ".map";
  struct Remove {
    std::string path;
    ~Remove() { std::filesystem::remove(path); }
  } remove{map};
  ASSERT_EQ(::mkfifo(map.c_str(), 0600), 0);
  auto fifo = run_chokepoint({"profile", "--pid", std::to_string(pid), "-d", "1s"}, 30);
  ASSERT_EQ(fifo.exit_code, 0) << fifo.stderr_text;
  EXPECT_NE(fifo.stdout_text.find("[anon"), std::string::npos) << fifo.stdout_text;
  std::filesystem::remove(map);
  std::filesystem::create_symlink("/dev/zero", map);
  auto zero = run_chokepoint({"profile", "--pid", std::to_string(pid), "-d", "1s"}, 30);
  ASSERT_EQ(zero.exit_code, 0) << zero.stderr_text;
}
#endif

TEST(HostileInput, ErrorsNeverEchoControlCharacters) {
  TempDir d{"chokepoint-hostile-input"};
  auto url = run_chokepoint({"load", "http://127.0.0.1:1/\x1b]0;evil\a", "-d", "1s"});
  EXPECT_NE(url.exit_code, 0);
  expect_clean(url, "load URL");
  const std::string csv = d.path + "/junk\x1b[31m.csv";
  std::ofstream(csv) << "1,10\n\x1b]0;pwned\a,\xff\x9b\n";
  auto usl = run_chokepoint({"usl", csv});
  test_support::expect_cli_error(usl, 1, "line 2: expected two numbers");
  expect_clean(usl, "usl");
  EXPECT_NE(usl.stderr_text.find("\\e]0;pwned\\x07,\\xff\\x9b"), std::string::npos)
      << usl.stderr_text;
}

}  // namespace
}  // namespace chokepoint::reliability
