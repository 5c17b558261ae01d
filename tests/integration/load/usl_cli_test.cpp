// chokepoint usl end to end: golden JSON from the reference datasets, and errors with hints.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "harness.h"

namespace chokepoint::loadtest {
namespace {

using namespace std::chrono_literals;

RunResult usl(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {chokepoint_binary(), "usl"};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, 10s);
}

std::string fixture(const std::string& name) {
  return std::string(CHOKEPOINT_FIXTURES_DIR) + "/usl/" + name;
}

TEST(UslCli, CiscoJson) {
  auto r = usl({fixture("cisco.csv"), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_NEAR(j["sigma"].get<double>(), 0.02672, 0.00005);
  EXPECT_NEAR(j["kappa"].get<double>(), 7.691e-4, 0.002e-4);
  EXPECT_NEAR(j["lambda"].get<double>(), 995.65, 0.1);
  EXPECT_NEAR(j["n_star"].get<double>(), 35.6, 0.05);
  EXPECT_NEAR(j["x_max"].get<double>(), 12341, 25);
  EXPECT_GT(j["r2"].get<double>(), 0.99);
  EXPECT_EQ(j["points"].size(), 32u);
}

TEST(UslCli, SpecSdm91TextTable) {
  auto r = usl({fixture("specsdm91.csv")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* s : {"0.02773", "0.0001043", "89.99", "96.5", "measured", "fitted"}) {
    EXPECT_NE(r.out.find(s), std::string::npos) << s << " missing in:\n" << r.out;
  }
}

TEST(UslCli, LinearDataReportsInfiniteNStar) {
  char path[] = "/tmp/chokepoint-usl-XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  std::ofstream(path) << "1,100\n2,200\n4,400\n8,800\n";
  auto r = usl({path, "--json"});
  auto t = usl({path});
  std::remove(path);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_TRUE(j["n_star"].is_null());
  EXPECT_TRUE(j["n_star_infinite"].get<bool>());
  EXPECT_NEAR(j["kappa"].get<double>(), 0.0, 1e-12);
  EXPECT_NE(t.out.find("inf"), std::string::npos) << t.out;
}

TEST(UslCli, BadInputIsAnErrorWithLineAndHint) {
  char path[] = "/tmp/chokepoint-usl-XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  std::ofstream(path) << "concurrency,throughput\n1,100\n2,oops\n";
  auto r = usl({path});
  std::ofstream(path) << "1,100\n";
  auto one = usl({path});
  std::remove(path);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("line 3"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("hint:"), std::string::npos) << r.err;
  EXPECT_EQ(one.exit_code, 1);
  EXPECT_NE(one.err.find("at least 3"), std::string::npos) << one.err;

  auto missing = usl({"/nonexistent/data.csv"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("cannot open"), std::string::npos);
  EXPECT_EQ(usl({}).exit_code, 2);
}

}  // namespace
}  // namespace chokepoint::loadtest
