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

// -o draws the fit on a page (its browser checks are in report_browser_test.py); bad data or an
// unwritable path is an error with a hint that leaves no page behind.
TEST(UslCli, PageIsWrittenWholeOrNotAtAll) {
  char dir[] = "/tmp/chokepoint-usl-page-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string page = std::string(dir) + "/usl.html";
  auto r = usl({fixture("cisco.csv"), "-o", page});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("wrote"), std::string::npos) << r.err;
  std::ifstream in(page);
  const std::string html((std::istreambuf_iterator<char>(in)), {});
  EXPECT_NE(html.find("<title>chokepoint usl: "), std::string::npos) << html.substr(0, 400);
  EXPECT_NE(html.find("\"usls\""), std::string::npos);
  EXPECT_NE(html.find("\"lambda\":995.6"), std::string::npos);
  std::remove(page.c_str());

  const std::string bad = std::string(dir) + "/bad.csv";
  std::ofstream(bad) << "1,100\n2,oops\n";
  auto b = usl({bad, "-o", page});
  EXPECT_EQ(b.exit_code, 1) << b.err;
  EXPECT_FALSE(std::ifstream(page).good()) << "a page was written for data that does not fit";
  std::remove(bad.c_str());

  auto unwritable = usl({fixture("cisco.csv"), "-o", "/nonexistent/dir/usl.html"});
  EXPECT_EQ(unwritable.exit_code, 1);
  EXPECT_NE(unwritable.err.find("error:"), std::string::npos) << unwritable.err;
  EXPECT_NE(unwritable.err.find("hint:"), std::string::npos) << unwritable.err;
  rmdir(dir);
}

}  // namespace
}  // namespace chokepoint::loadtest
