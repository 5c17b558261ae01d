// chokepoint profile on the real lab under real load (wrk): the cpu scenario's two kernels must
// come out in the lab's designed ratio, and agree with perf record / perf report sampling the
// same process over the same window.
//
// What is compared, and why:
// - The lab splits each request's CPU work 70/30 between lab_cpu_hash_rounds and
//   lab_cpu_checksum (by calibrated iteration counts, lab/cpu_work.h). The rest of the lab's
//   on-CPU time (HTTP parsing, epoll, syscalls, the kernel's network stack) belongs to neither,
//   and its size depends on the load and the machine, so the designed ratio holds only between
//   the two functions: we check self(hash) / (self(hash) + self(checksum)) against 0.70 within
//   5 points. (perf record measured 64.0 % and 28.2 % of all samples, i.e. 69/31 of the two.)
//   The lab fixes its iteration counts at startup by timing both kernels, so a machine busy
//   enough to disturb that calibration moves the real ratio itself (one manual run during a
//   heavy build gave 63/37); the test is SERIAL so ctest runs nothing beside it, and the
//   comparison with perf below checks the profiler independently of the lab's calibration.
// - Against perf, both tools sample the same threads during the same seconds, so each function's
//   share of ALL samples is comparable directly: the difference is only sampling noise. We
//   check both functions' self shares within 5 points.
// - Shares from N samples carry binomial noise (sd = sqrt(p(1-p)/N)); at the default 99 Hz a
//   4 s run of a lab that gets about one core yields ~400 samples (sd ~2.3 points), too noisy for
//   a 5-point bound, so these tests sample at 997 Hz (sd ~1 point even when other work leaves the
//   lab a third of a core).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <thread>

#include "support/background.h"
#include "support/cli.h"
#include "support/files.h"
#include "support/lab_process.h"

namespace chokepoint::profile_test {
namespace {

using test_support::chokepoint_bin;
using test_support::read_file;
using test_support::TempDir;

using test_support::Background;
using test_support::LabProcess;

// Self samples per leaf function, and the total, from a folded file.
struct Folded {
  std::map<std::string, std::uint64_t> self;
  std::uint64_t total = 0;
  std::uint64_t leaf_containing(const std::string& fragment) const {
    std::uint64_t n = 0;
    for (const auto& [name, v] : self) {
      if (name.find(fragment) != std::string::npos) n += v;
    }
    return n;
  }
};

Folded parse_folded(const std::string& text) {
  Folded f;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    auto sp = line.rfind(' ');
    if (sp == std::string::npos) continue;
    std::uint64_t v = std::stoull(line.substr(sp + 1));
    std::string stack = line.substr(0, sp);
    auto semi = stack.rfind(';');
    f.self[semi == std::string::npos ? stack : stack.substr(semi + 1)] += v;
    f.total += v;
  }
  return f;
}

class ProfileOnLab : public ::testing::Test {
 protected:
  void SetUp() override {
    auto l = LabProcess::start({"--scenario", "cpu", "--port", "0"});
    ASSERT_TRUE(l) << l.error().message;
    lab_.emplace(std::move(l).value());
    auto w = Background::start("wrk", {"-t1", "-c16", "-d30s", "--timeout", "10s",
                                       "http://127.0.0.1:" + std::to_string(lab_->port()) + "/"});
    ASSERT_TRUE(w) << w.error().message;
    load_.emplace(std::move(w).value());
    std::this_thread::sleep_for(std::chrono::seconds(1));  // warm up
  }
  std::optional<LabProcess> lab_;
  std::optional<Background> load_;
  TempDir dir_{"chokepoint-profile-test"};
};

TEST_F(ProfileOnLab, CpuScenarioSharesMatchTheDesignedRatio) {
  const std::string folded = dir_.path + "/lab.folded";
  const std::string json = dir_.path + "/lab.json";
  const std::string svg = dir_.path + "/lab.svg";
  auto r = test_support::run_to_exit(
      {"profile", "--pid", std::to_string(lab_->pid()), "--duration", "4s", "--frequency", "997",
       "-o", folded, "-o", json, "-o", svg, "--top", "5"},
      chokepoint_bin(), std::chrono::seconds(60));
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->exit_code, 0) << r->stderr_text;
  Folded f = parse_folded(read_file(folded));
  const double hash = static_cast<double>(f.leaf_containing("lab_cpu_hash_rounds"));
  const double sum = static_cast<double>(f.leaf_containing("lab_cpu_checksum"));
  RecordProperty("samples", std::to_string(f.total));
  RecordProperty("hash_share_of_all", std::to_string(hash / f.total));
  RecordProperty("checksum_share_of_all", std::to_string(sum / f.total));
  ASSERT_GT(hash + sum, 600) << "too few samples in the two kernels\n" << r->stderr_text;
  EXPECT_NEAR(hash / (hash + sum), 0.70, 0.05)
      << "hash " << hash << " checksum " << sum << " of " << f.total << "\n"
      << r->stdout_text;
  // The two kernels are most of the lab's time under this load.
  EXPECT_GT((hash + sum) / f.total, 0.5) << r->stdout_text;
  // The table and the honesty line are printed.
  EXPECT_NE(r->stdout_text.find("lab_cpu_hash_rounds"), std::string::npos) << r->stdout_text;
  EXPECT_NE(r->stderr_text.find("lost "), std::string::npos) << r->stderr_text;
  // speedscope: valid JSON whose weights sum to the same total as the folded file.
  auto j = nlohmann::json::parse(read_file(json), nullptr, false);
  ASSERT_FALSE(j.is_discarded());
  std::uint64_t weights = 0;
  for (const auto& w : j["profiles"][0]["weights"]) weights += w.get<std::uint64_t>();
  EXPECT_EQ(weights, f.total);
  // The flame graph names the hot function too.
  const std::string svg_text = read_file(svg);
  EXPECT_NE(svg_text.find("<svg"), std::string::npos);
  EXPECT_NE(svg_text.find("lab_cpu_hash_rounds"), std::string::npos);
}

// Self share of all samples per symbol from `perf report --stdio --no-children --sort symbol`.
std::map<std::string, double> perf_report_self(const std::string& data) {
  std::map<std::string, double> out;
  FILE* p =
      popen(("perf report -i " + data + " --stdio --no-children --sort symbol -g none 2>/dev/null")
                .c_str(),
            "r");
  if (!p) return out;
  char buf[4096];
  std::regex line(R"(^\s*([0-9.]+)%\s+\[[.k]\]\s+(.*?)\s*$)");
  while (fgets(buf, sizeof buf, p)) {
    std::cmatch m;
    if (std::regex_match(buf, m, line)) out[m[2].str()] += std::stod(m[1].str()) / 100.0;
  }
  pclose(p);
  return out;
}

double share_containing(const std::map<std::string, double>& m, const std::string& fragment) {
  double s = 0;
  for (const auto& [name, v] : m) {
    if (name.find(fragment) != std::string::npos) s += v;
  }
  return s;
}

TEST_F(ProfileOnLab, AgreesWithPerfRecordOnTheSameWindow) {
  if (system("perf --version >/dev/null 2>&1") != 0) GTEST_SKIP() << "perf is not installed";
  const std::string data = dir_.path + "/perf.data";
  const std::string folded = dir_.path + "/lab.folded";
  // perf samples the same threads for the same 4 s, with the same event and frequency.
  auto perf =
      Background::start("perf", {"record", "-q", "-e", "cpu-clock", "-F", "997", "-g", "-p",
                                 std::to_string(lab_->pid()), "-o", data, "--", "sleep", "4"});
  ASSERT_TRUE(perf) << perf.error().message;
  auto r = test_support::run_to_exit({"profile", "--pid", std::to_string(lab_->pid()), "--duration",
                                      "4s", "--frequency", "997", "-o", folded},
                                     chokepoint_bin(), std::chrono::seconds(60));
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->exit_code, 0) << r->stderr_text;
  auto perf_exit = perf->wait(30'000);
  ASSERT_TRUE(perf_exit) << perf_exit.error().message;
  if (*perf_exit != 0) GTEST_SKIP() << "perf record failed here (exit " << *perf_exit << ")";
  auto theirs = perf_report_self(data);
  ASSERT_FALSE(theirs.empty()) << "perf report printed no symbols";
  Folded ours = parse_folded(read_file(folded));
  ASSERT_GT(ours.total, 500u);
  for (const std::string fn : {"lab_cpu_hash_rounds", "lab_cpu_checksum"}) {
    const double mine = static_cast<double>(ours.leaf_containing(fn)) / ours.total;
    const double perfs = share_containing(theirs, fn);
    RecordProperty(fn + "_ours", std::to_string(mine));
    RecordProperty(fn + "_perf", std::to_string(perfs));
    EXPECT_NEAR(mine, perfs, 0.05) << fn << ": chokepoint " << mine << ", perf " << perfs;
  }
}

}  // namespace
}  // namespace chokepoint::profile_test
